//! Pure decisions: conditions, curation, retry delays, fair queueing, durations and job plans.

pub mod backoff;
pub mod conditions;
pub mod curation;
pub mod duration;
pub mod fairness;
pub mod job_plan;
