//! The controller's pure decisions: status conditions, retry delays, fair job order, and how a
//! source's spec shapes its assets. The reconcilers, job pool, leader election and cluster
//! adapter that use them are not built yet (issue 3).

pub mod backoff;
pub mod conditions;
pub mod curation;
pub mod fairness;
