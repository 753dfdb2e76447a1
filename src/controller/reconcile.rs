//! Reconciling one CatalogSource: fetch → parse and validate → curate → diff → apply with its
//! audit events in one transaction → status and an Event. A failure keeps the last good assets,
//! says why in the status, and tells the caller whether a retry may help.

use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    cluster::{Cluster, ClusterError, EventNote},
    conditions::{Outcome, conditions},
    curation::Curation,
    fetch::{Content, fetch},
};
use crate::{
    catalog::{AssetRecord, Diff, Limits, diff, document_digest, parse_document, validate_assets},
    crd::{CatalogSource, CatalogSourceStatus},
    store::{ApplyOutcome, Namespace, NewAuditEvent, ObjectRecord, Store},
};

/// The annotation whose value is recorded as the "why" of a change.
pub const CHANGE_REASON_ANNOTATION: &str = "curio.dev/change-reason";

pub struct Context {
    pub store: Store,
    pub cluster: Arc<dyn Cluster>,
    /// Recorded as the actor of controller-driven changes.
    pub identity: String,
    pub limits: Limits,
    pub urls: crate::source::http::UrlFetcher,
}

/// How a reconcile ended, for the caller's requeue decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Applied(ApplyOutcome),
    Suspended,
    /// Status says why; `transient` failures are retried with backoff, others wait for a change.
    Failed {
        transient: bool,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0} has no namespace or name")]
    Unidentified(String),
    #[error("invalid namespace: {0}")]
    Namespace(#[from] crate::store::ScopeError),
    #[error("writing status: {0}")]
    Status(#[from] ClusterError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

struct Identity {
    namespace: Namespace,
    name: String,
    uid: String,
    generation: i64,
}

fn identity(source: &CatalogSource) -> Result<Identity, ReconcileError> {
    let meta = &source.metadata;
    let (Some(namespace), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
        return Err(ReconcileError::Unidentified("CatalogSource".into()));
    };
    Ok(Identity {
        namespace: Namespace::new(namespace)?,
        name,
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or(0),
    })
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// A failure the reconcile turns into status: what to say and whether to retry.
struct Failure {
    transient: bool,
    reason: String,
    message: String,
}

impl From<crate::store::StoreError> for Failure {
    /// The database may come back: retry with backoff, keeping the last good assets.
    fn from(e: crate::store::StoreError) -> Self {
        Self {
            transient: true,
            reason: "StoreUnavailable".into(),
            message: e.to_string(),
        }
    }
}

impl Failure {
    fn stalled(reason: &str, message: String) -> Self {
        Self {
            transient: false,
            reason: reason.into(),
            message,
        }
    }
}

pub async fn reconcile_source(
    ctx: &Context,
    source: &CatalogSource,
) -> Result<Report, ReconcileError> {
    let id = identity(source)?;
    if source.spec.suspend {
        return Ok(Report::Suspended);
    }
    let (records, etag) = match desired_records(ctx, source).await {
        Ok(Desired::Records { records, etag }) => (records, etag),
        Ok(Desired::Unchanged) => {
            // 304 for an unchanged spec whose last refresh succeeded: nothing to write.
            let unchanged = source
                .status
                .as_ref()
                .and_then(|s| s.asset_count)
                .unwrap_or(0);
            return Ok(Report::Applied(ApplyOutcome {
                unchanged: usize::try_from(unchanged).unwrap_or(0),
                ..Default::default()
            }));
        }
        Err(failure) => return fail(ctx, source, &id, failure).await,
    };
    let stored = match ctx.store.source_digests(&id.namespace, &id.name).await {
        Ok(stored) => stored,
        Err(e) => return fail(ctx, source, &id, e.into()).await,
    };
    let content_digest = document_digest(&records);
    let count = records.len() as i64;
    let change = diff(&stored, records);
    let events = audit_events(ctx, source, &id, &change);
    let outcome = match ctx
        .store
        .apply_refresh(&id.namespace, &id.name, &change, &events)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return fail(ctx, source, &id, e.into()).await,
    };
    let message = format!(
        "{count} assets (added {}, updated {}, removed {}, unchanged {})",
        outcome.added, outcome.updated, outcome.removed, outcome.unchanged
    );
    let previous = source.status.clone().unwrap_or_default();
    let status = CatalogSourceStatus {
        observed_generation: Some(id.generation),
        conditions: conditions(
            &previous.conditions,
            &Outcome::Ready {
                message: message.clone(),
            },
            id.generation,
            now(),
        ),
        asset_count: Some(count),
        last_refresh_time: Some(now()),
        content_digest: Some(content_digest),
        etag,
        last_handled_refresh: previous.last_handled_refresh,
        message: Some(message.clone()),
    };
    publish(ctx, source, &id, &status).await?;
    if !change.is_empty() {
        // Events are a courtesy; the audit trail is the record.
        let _ = ctx
            .cluster
            .record_event(
                source,
                EventNote {
                    warning: false,
                    reason: "Refreshed".into(),
                    note: message,
                },
            )
            .await;
    }
    Ok(Report::Applied(outcome))
}

enum Desired {
    Records {
        records: Vec<AssetRecord>,
        etag: Option<String>,
    },
    /// A URL source answered 304 to the last ETag.
    Unchanged,
}

async fn desired_records(ctx: &Context, source: &CatalogSource) -> Result<Desired, Failure> {
    let fetched = fetch(
        source,
        ctx.cluster.as_ref(),
        &ctx.urls,
        ctx.limits.max_bytes,
    )
    .await;
    let (assets, etag) = match fetched {
        Ok(Content::NotModified) => return Ok(Desired::Unchanged),
        Ok(Content::Inline(assets)) => {
            validate_assets(&assets, "spec.source.inline.assets").map_err(|problems| {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                Failure::stalled("InvalidCatalog", text.join("; "))
            })?;
            (assets, None)
        }
        Ok(Content::Document { bytes, etag }) => {
            let assets = parse_document(&bytes, ctx.limits)
                .map_err(|e| Failure::stalled("InvalidCatalog", e.to_string()))?;
            (assets, etag)
        }
        Err(e) => {
            return Err(Failure {
                transient: e.is_transient(),
                reason: e.reason().into(),
                message: e.to_string(),
            });
        }
    };
    let curation = Curation::compile(&source.spec)
        .map_err(|e| Failure::stalled("InvalidSpec", e.to_string()))?;
    Ok(Desired::Records {
        records: curation.apply(assets),
        etag,
    })
}

/// Status and Event for a failure; the assets already in the store stay as they are.
async fn fail(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    failure: Failure,
) -> Result<Report, ReconcileError> {
    let previous = source.status.clone().unwrap_or_default();
    let outcome = if failure.transient {
        Outcome::Retrying {
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        }
    } else {
        Outcome::Stalled {
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        }
    };
    let status = CatalogSourceStatus {
        observed_generation: Some(id.generation),
        conditions: conditions(&previous.conditions, &outcome, id.generation, now()),
        message: Some(format!(
            "{}; keeping the last good catalog",
            failure.message
        )),
        ..previous
    };
    publish(ctx, source, id, &status).await?;
    let _ = ctx
        .cluster
        .record_event(
            source,
            EventNote {
                warning: true,
                reason: failure.reason.clone(),
                note: failure.message,
            },
        )
        .await;
    Ok(Report::Failed {
        transient: failure.transient,
        reason: failure.reason,
    })
}

/// Writes the status to the cluster and the API's copy of the source to the store.
async fn publish(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    status: &CatalogSourceStatus,
) -> Result<(), ReconcileError> {
    ctx.cluster.write_source_status(source, status).await?;
    ctx.store
        .upsert_source(&ObjectRecord {
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            uid: id.uid.clone(),
            generation: id.generation,
            spec: serde_json::to_value(&source.spec).unwrap_or_default(),
            status: serde_json::to_value(status).ok(),
            created_at: source
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
                .unwrap_or_else(Utc::now),
        })
        .await?;
    Ok(())
}

fn change_reason(source: &CatalogSource, generation: i64) -> String {
    source
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_REASON_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| format!("CatalogSource reconciled at generation {generation}"))
}

fn audit_events(
    ctx: &Context,
    source: &CatalogSource,
    id: &Identity,
    change: &Diff,
) -> Vec<NewAuditEvent> {
    let reason = change_reason(source, id.generation);
    let correlation = uuid::Uuid::new_v4().to_string();
    let event = |verb: &str,
                 kind: crate::catalog::AssetKind,
                 name: &str,
                 version: &str,
                 before: Option<&str>,
                 after: Option<&str>| NewAuditEvent {
        namespace: id.namespace.clone(),
        occurred_at: Utc::now(),
        actor: ctx.identity.clone(),
        actor_groups: Vec::new(),
        verb: verb.into(),
        resource: kind.plural().into(),
        object_name: name.into(),
        object_uid: Some(id.uid.clone()).filter(|u| !u.is_empty()),
        before_digest: before.map(str::to_owned),
        after_digest: after.map(str::to_owned),
        reason: Some(reason.clone()),
        request_id: Some(correlation.clone()),
        client: None,
        details: Some(serde_json::json!({"source": id.name, "version": version})),
        idempotency_key: None,
    };
    change
        .added
        .iter()
        .map(|r| {
            event(
                "create",
                r.kind(),
                r.name(),
                r.version(),
                None,
                Some(r.digest()),
            )
        })
        .chain(change.updated.iter().map(|u| {
            let r = &u.record;
            event(
                "update",
                r.kind(),
                r.name(),
                r.version(),
                Some(&u.previous_digest),
                Some(r.digest()),
            )
        }))
        .chain(change.removed.iter().map(|r| {
            event(
                "delete",
                r.key.kind,
                &r.key.name,
                &r.key.version,
                Some(&r.previous_digest),
                None,
            )
        }))
        .collect()
}

/// Removes a deleted source's assets (audited) and the API's copy of it.
pub async fn cleanup_source(
    ctx: &Context,
    source: &CatalogSource,
) -> Result<ApplyOutcome, ReconcileError> {
    let id = identity(source)?;
    let stored = ctx.store.source_digests(&id.namespace, &id.name).await?;
    let change = diff(&stored, Vec::new());
    let events = audit_events(ctx, source, &id, &change);
    let outcome = ctx
        .store
        .apply_refresh(&id.namespace, &id.name, &change, &events)
        .await?;
    ctx.store.delete_source(&id.namespace, &id.name).await?;
    Ok(outcome)
}
