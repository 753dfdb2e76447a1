//! kstatus conditions for a CatalogSource: `Ready` always; `Reconciling` and `Stalled` only while
//! true (their abnormal-true polarity), as kstatus-aware tools (Flux, Argo CD, kpt) expect.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// Set by standalone mode while a source's manifest is refused (`False`, with the reason), and
/// removed once it is accepted again. Not the reconcile's: it keeps it as it finds it.
pub const ACCEPTED: &str = "Accepted";
/// The reason on `Reconciling=False` while a policy or the kill switch pauses refreshes.
pub const PAUSED_BY_POLICY: &str = "PausedByPolicy";

/// What the last reconcile came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The catalog matches the source.
    Ready { message: String },
    /// Work under way (first fetch, a refresh running).
    Progressing { reason: String, message: String },
    /// A failure that a retry may fix (unreachable URL, database down): retrying.
    Retrying { reason: String, message: String },
    /// A failure only a change can fix (invalid document, missing ConfigMap key): stalled
    /// until the spec or the referenced object changes.
    Stalled { reason: String, message: String },
    /// Refreshes are paused by a policy or the kill switch: `Reconciling=False` with reason
    /// [`PAUSED_BY_POLICY`]. `Ready` (and `Stalled`) stay as they were: the last good catalog
    /// is still served.
    Paused { message: String },
}

/// Whether the conditions say a policy paused the source.
pub fn is_paused(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == RECONCILING && c.status == "False" && c.reason == PAUSED_BY_POLICY)
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: i64,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(generation),
        last_transition_time: now.clone(),
    }
}

/// The conditions after `outcome`. A condition whose status did not change keeps its
/// `lastTransitionTime`, so the time says when things changed, not when they were last checked.
pub fn conditions(
    previous: &[Condition],
    outcome: &Outcome,
    generation: i64,
    now: Time,
) -> Vec<Condition> {
    let mut next = match outcome {
        Outcome::Ready { message } => vec![condition(
            READY,
            "True",
            "Succeeded",
            message,
            generation,
            &now,
        )],
        Outcome::Progressing { reason, message } => vec![
            condition(READY, "Unknown", reason, message, generation, &now),
            condition(RECONCILING, "True", reason, message, generation, &now),
        ],
        Outcome::Retrying { reason, message } => vec![
            condition(READY, "False", reason, message, generation, &now),
            condition(RECONCILING, "True", "Retrying", message, generation, &now),
        ],
        Outcome::Stalled { reason, message } => vec![
            condition(READY, "False", reason, message, generation, &now),
            condition(STALLED, "True", reason, message, generation, &now),
        ],
        Outcome::Paused { message } => {
            let mut kept: Vec<Condition> = previous
                .iter()
                .filter(|c| [READY, STALLED].contains(&c.type_.as_str()))
                .cloned()
                .collect();
            if !kept.iter().any(|c| c.type_ == READY) {
                kept.push(condition(
                    READY,
                    "Unknown",
                    PAUSED_BY_POLICY,
                    message,
                    generation,
                    &now,
                ));
            }
            kept.push(condition(
                RECONCILING,
                "False",
                PAUSED_BY_POLICY,
                message,
                generation,
                &now,
            ));
            kept
        }
    };
    for condition in &mut next {
        if let Some(before) = previous
            .iter()
            .find(|c| c.type_ == condition.type_ && c.status == condition.status)
        {
            condition.last_transition_time = before.last_transition_time.clone();
        }
    }
    // Conditions of other types belong to someone else: keep them as they are.
    next.extend(
        previous
            .iter()
            .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
            .cloned(),
    );
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap())
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
        conditions.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn ready_has_only_a_true_ready_condition() {
        let c = conditions(
            &[],
            &Outcome::Ready {
                message: "42 assets".into(),
            },
            3,
            at(0),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].type_.as_str(),
                c[0].status.as_str(),
                c[0].reason.as_str()
            ),
            ("Ready", "True", "Succeeded")
        );
        assert_eq!(c[0].observed_generation, Some(3));
    }

    #[test]
    fn a_bad_document_stalls_and_a_fetch_error_retries() {
        let stalled = conditions(
            &[],
            &Outcome::Stalled {
                reason: "InvalidCatalog".into(),
                message: "assets[2].name: …".into(),
            },
            1,
            at(0),
        );
        assert_eq!(find(&stalled, READY).unwrap().status, "False");
        assert_eq!(find(&stalled, STALLED).unwrap().reason, "InvalidCatalog");
        assert!(find(&stalled, RECONCILING).is_none());
        let retrying = conditions(
            &[],
            &Outcome::Retrying {
                reason: "FetchFailed".into(),
                message: "connect: refused".into(),
            },
            1,
            at(0),
        );
        assert_eq!(find(&retrying, READY).unwrap().reason, "FetchFailed");
        assert_eq!(find(&retrying, RECONCILING).unwrap().status, "True");
        assert!(find(&retrying, STALLED).is_none());
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = conditions(
            &[],
            &Outcome::Ready {
                message: "a".into(),
            },
            1,
            at(0),
        );
        let again = conditions(
            &first,
            &Outcome::Ready {
                message: "b".into(),
            },
            2,
            at(60),
        );
        assert_eq!(find(&again, READY).unwrap().last_transition_time, at(0));
        assert_eq!(find(&again, READY).unwrap().message, "b");
        let failed = conditions(
            &again,
            &Outcome::Stalled {
                reason: "InvalidCatalog".into(),
                message: "x".into(),
            },
            3,
            at(120),
        );
        assert_eq!(find(&failed, READY).unwrap().last_transition_time, at(120));
    }

    #[test]
    fn conditions_of_other_types_are_kept() {
        let accepted = Condition {
            type_: ACCEPTED.into(),
            status: "False".into(),
            reason: "InvalidManifest".into(),
            message: "spec.sorce: unknown field".into(),
            observed_generation: Some(1),
            last_transition_time: at(0),
        };
        let c = conditions(
            std::slice::from_ref(&accepted),
            &Outcome::Ready {
                message: "1 asset".into(),
            },
            1,
            at(5),
        );
        assert_eq!(find(&c, ACCEPTED), Some(&accepted));
        assert_eq!(find(&c, READY).map(|c| c.status.as_str()), Some("True"));
    }

    #[test]
    fn pausing_keeps_ready_and_says_why_until_the_next_outcome() {
        let ready = conditions(
            &[],
            &Outcome::Ready {
                message: "3 assets".into(),
            },
            1,
            at(0),
        );
        let paused = conditions(
            &ready,
            &Outcome::Paused {
                message: "paused by CatalogPolicy \"freeze\"".into(),
            },
            1,
            at(10),
        );
        assert_eq!(find(&paused, READY), find(&ready, READY), "Ready untouched");
        let reconciling = find(&paused, RECONCILING).unwrap();
        assert_eq!(
            (reconciling.status.as_str(), reconciling.reason.as_str()),
            ("False", PAUSED_BY_POLICY)
        );
        assert!(is_paused(&paused));
        let resumed = conditions(
            &paused,
            &Outcome::Ready {
                message: "3 assets".into(),
            },
            1,
            at(20),
        );
        assert!(!is_paused(&resumed));
        assert!(find(&resumed, RECONCILING).is_none());
        // Paused before the first refresh: Ready is Unknown, not absent.
        let first = conditions(
            &[],
            &Outcome::Paused {
                message: "paused".into(),
            },
            1,
            at(0),
        );
        assert_eq!(find(&first, READY).unwrap().status, "Unknown");
    }
}
