//! Keeps each `CatalogPolicy`'s status current: how many namespaces it selects and what each
//! of them holds. Run by the leader, on every policy or namespace change and once a period
//! (usage changes with every refresh).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::reconcile::Context;
use crate::{
    crd::CatalogPolicyStatus,
    decisions::{
        conditions::{Outcome, conditions},
        policy::usage_status,
    },
};

/// Namespaces listed in one policy's status at most, the largest first: the status must stay
/// well under the apiserver's object size limit however many tenants a policy selects.
const MAX_LISTED: usize = 500;

/// Writes every policy's status once, and the paused-namespaces gauge.
pub async fn update(ctx: &Context) -> Result<usize, super::reconcile::ReconcileError> {
    ctx.ensure_leader()?;
    let usage: BTreeMap<String, (i64, i64)> = ctx
        .store
        .usage_by_namespace()
        .await?
        .into_iter()
        .map(|(namespace, u)| (namespace, (u.sources, u.assets)))
        .collect();
    let policies = &ctx.policies;
    let paused = usage
        .iter()
        .filter(|(namespace, (sources, _))| {
            *sources > 0 && policies.for_namespace(namespace).paused_by.is_some()
        })
        .count();
    ctx.metrics
        .paused_namespaces
        .set(i64::try_from(paused).unwrap_or(i64::MAX));
    let mut namespaces = policies.namespaces();
    // Namespaces the store knows but the namespace watch does not (yet) still count.
    for namespace in usage.keys() {
        namespaces
            .entry(namespace.clone())
            .or_insert_with(|| policies.namespace_labels(namespace));
    }
    let mut written = 0;
    for policy in policies.all() {
        let (count, listed) = usage_status(
            &policy,
            &namespaces,
            &usage,
            policies.paused_globally(),
            MAX_LISTED,
        );
        let previous = policy.status.clone().unwrap_or_default();
        let generation = policy.metadata.generation.unwrap_or(0);
        let message = format!(
            "selects {count} namespace{}",
            if count == 1 { "" } else { "s" }
        );
        let status = CatalogPolicyStatus {
            observed_generation: Some(generation),
            conditions: conditions(
                &previous.conditions,
                &Outcome::Ready { message },
                generation,
                Time(Timestamp::now()),
            ),
            namespace_count: Some(count),
            namespaces: listed,
        };
        if status == previous {
            continue;
        }
        ctx.ensure_leader()?;
        ctx.cluster
            .write_policy_status(&policy.name_any(), &status)
            .await?;
        written += 1;
    }
    Ok(written)
}

/// Updates the statuses on every policy change and every `period`, until `stop`.
pub async fn run(ctx: &Context, period: Duration, stop: CancellationToken) {
    let mut changes = ctx.policies.changes();
    loop {
        if let Err(e) = update(ctx).await {
            tracing::warn!(error = %e, "updating CatalogPolicy statuses failed");
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    // No more change notices: keep to the period.
                    changes = ctx.policies.changes();
                    tokio::time::sleep(period).await;
                }
            }
            () = stop.cancelled() => return,
        }
    }
}
