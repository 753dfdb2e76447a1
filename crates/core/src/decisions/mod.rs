//! Pure decisions: conditions, curation, retry delays, fair queueing, durations, job plans and
//! catalog policies.

pub mod backoff;
pub mod conditions;
pub mod curation;
pub mod duration;
pub mod fairness;
pub mod job_plan;
pub mod policy;
