//! Admission review metrics.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};

use crate::telemetry::{Registry, latency_histogram, register};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub resource: String,
    /// `create`, `update`, `delete`.
    pub operation: String,
    /// `admitted`, `forbidden`, `invalid`, `audit_unavailable`, `skipped` (housekeeping).
    pub outcome: String,
}

#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    pub reviews: Family<AdmissionLabels, Counter>,
    pub duration: Histogram,
}

impl Default for AdmissionMetrics {
    fn default() -> Self {
        Self {
            reviews: Family::default(),
            duration: latency_histogram(),
        }
    }
}

impl AdmissionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        register!(registry, Self::default(), {
            reviews: "admission_reviews", "Admission reviews answered by the webhook, by resource, operation and outcome";
            duration: "admission_review_duration_seconds", "Time to answer an admission review (SubjectAccessReviews and the audit write included)";
        })
    }
}
