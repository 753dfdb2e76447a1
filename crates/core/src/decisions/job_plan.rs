//! What to do with a RefreshJob, decided from its spec and status alone.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::crd::{JobPhase, RefreshJob};

/// `spec.backoffLimit` when absent: retries after the first attempt, as for a batch Job.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;

/// What to do with a job, from its status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPlan {
    /// Queued (new, or waiting to retry): the next attempt is `attempt`.
    Start { attempt: i32 },
    /// `Running`: an attempt was under way when its leader went; run that attempt again.
    Resume { attempt: i32 },
    /// Finished; deleted after `expires_in` when a TTL is set.
    Finished { expires_in: Option<Duration> },
    /// Finished and past its TTL: delete it.
    Expired,
}

pub fn plan(job: &RefreshJob, now: Timestamp) -> JobPlan {
    let status = job.status.clone().unwrap_or_default();
    match status.phase.unwrap_or_default() {
        JobPhase::Pending => JobPlan::Start {
            attempt: status.attempts.max(0) + 1,
        },
        JobPhase::Running => JobPlan::Resume {
            attempt: status.attempts.max(1),
        },
        JobPhase::Succeeded | JobPhase::Failed => {
            let (Some(ttl), Some(done)) = (
                job.spec.ttl_seconds_after_finished,
                status.completion_time.as_ref(),
            ) else {
                return JobPlan::Finished { expires_in: None };
            };
            let age = now.duration_since(done.0).as_secs_f64().max(0.0);
            let left = f64::from(ttl.max(0)) - age;
            if left <= 0.0 {
                JobPlan::Expired
            } else {
                JobPlan::Finished {
                    expires_in: Some(Duration::from_secs_f64(left)),
                }
            }
        }
    }
}

/// Retries allowed after the first attempt.
pub fn backoff_limit(job: &RefreshJob) -> i32 {
    job.spec
        .backoff_limit
        .unwrap_or(DEFAULT_BACKOFF_LIMIT)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::refresh_job;
    use serde_json::json;

    fn job(status: serde_json::Value, ttl: Option<i32>) -> RefreshJob {
        refresh_job("team-a", "j")
            .uid("u")
            .for_source("models")
            .spec_field("ttlSecondsAfterFinished", json!(ttl))
            .status(status)
            .build()
    }

    #[test]
    fn new_jobs_start_their_first_attempt() {
        assert_eq!(
            plan(&job(json!(null), None), Timestamp::now()),
            JobPlan::Start { attempt: 1 }
        );
        assert_eq!(
            plan(
                &job(json!({"phase": "Pending", "attempts": 2}), None),
                Timestamp::now()
            ),
            JobPlan::Start { attempt: 3 }
        );
    }

    #[test]
    fn a_running_job_resumes_the_same_attempt() {
        assert_eq!(
            plan(
                &job(json!({"phase": "Running", "attempts": 2}), None),
                Timestamp::now()
            ),
            JobPlan::Resume { attempt: 2 }
        );
    }

    #[test]
    fn finished_jobs_expire_after_their_ttl() {
        let done = "2026-01-01T00:00:00Z";
        let finished = job(
            json!({"phase": "Succeeded", "attempts": 1, "completionTime": done}),
            Some(60),
        );
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            plan(&finished, at("2026-01-01T00:00:45Z")),
            JobPlan::Finished {
                expires_in: Some(Duration::from_secs(15))
            }
        );
        assert_eq!(
            plan(&finished, at("2026-01-01T00:01:00Z")),
            JobPlan::Expired
        );
        let kept = job(
            json!({"phase": "Failed", "attempts": 4, "completionTime": done}),
            None,
        );
        assert_eq!(
            plan(&kept, at("2030-01-01T00:00:00Z")),
            JobPlan::Finished { expires_in: None }
        );
    }
}
