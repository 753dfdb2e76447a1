//! sea-orm entities, one per table.

pub mod asset;
pub mod audit_event;
pub mod catalog_source;
pub mod refresh_job;

/// A timestamp as the API shows it: RFC 3339 in UTC, whole seconds (`2026-11-22T10:00:00Z`).
pub fn rfc3339_seconds<S: serde::Serializer>(
    at: &chrono::DateTime<chrono::Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
