//! An `mcpRegistry` source's sync: full or incremental (decided from its status), the pages
//! fetched, merged with the servers it already holds, and where the next sync starts.

use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::{Value, json};

use super::{
    Context,
    fetch::{Content, FetchError, credentials},
    reconcile::is_ready,
};
use crate::{
    catalog::{AssetKind, OFFICIAL_META, REGISTRY_META_KEY, SERVER_JSON_KEY},
    crd::{CatalogSource, McpRegistrySource, RegistrySync},
    decisions::duration::parse_go_duration,
    source::registry::{RegistryRequest, fetch_servers, merge, newest_update},
    store::{AssetQuery, AssetSort, Namespace, NamespaceScope},
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_FULL_SYNC_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Where an incremental sync starts, or `None` for a full one: only when the last sync of this
/// very spec succeeded, said where it got to, and the last full sync is recent enough.
pub fn incremental_since(
    source: &CatalogSource,
    spec: &McpRegistrySource,
    now: Timestamp,
) -> Option<String> {
    let status = source.status.as_ref()?;
    if !is_ready(status) || status.observed_generation != source.metadata.generation {
        return None;
    }
    let sync = status.registry_sync.as_ref()?;
    let last_full = sync.last_full_sync_time.as_ref()?;
    let every = spec
        .full_sync_interval
        .as_deref()
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_FULL_SYNC_INTERVAL);
    let since_full = now.duration_since(last_full.0);
    (since_full.as_secs_f64() < every.as_secs_f64())
        .then(|| sync.updated_up_to.clone())
        .flatten()
}

/// Syncs `source` from its registry: the whole catalog as a registry answer, ready to parse.
pub async fn sync(
    ctx: &Context,
    source: &CatalogSource,
    spec: &McpRegistrySource,
    max_bytes: usize,
) -> Result<Content, FetchError> {
    let namespace = source.metadata.namespace.clone().unwrap_or_default();
    let name = source.metadata.name.clone().unwrap_or_default();
    let now = Timestamp::now();
    let mut since = incremental_since(source, spec, now);
    let held = match &since {
        Some(_) => held_servers(ctx, &namespace, &name).await?,
        None => Vec::new(),
    };
    if held.is_empty() {
        // Nothing held (a new source, or a database restored empty): start over.
        since = None;
    }
    let request = RegistryRequest {
        base: &spec.url,
        search: spec.search.as_deref(),
        updated_since: since.as_deref().or(spec.updated_since.as_deref()),
        timeout: spec
            .timeout
            .as_deref()
            .and_then(parse_go_duration)
            .unwrap_or(DEFAULT_TIMEOUT),
        max_bytes,
        max_servers: ctx.limits.max_assets,
        credentials: credentials(ctx.cluster.as_ref(), &namespace, spec.secret_ref.as_ref())
            .await?,
    };
    let changed = fetch_servers(&ctx.urls, &request).await?;
    let full = since.is_none();
    let servers = if full {
        merge(Vec::new(), changed)
    } else {
        merge(held, changed)
    };
    let previous = source
        .status
        .as_ref()
        .and_then(|s| s.registry_sync.clone())
        .unwrap_or_default();
    let state = RegistrySync {
        // An answer without times keeps the last mark (and an empty one has none).
        updated_up_to: newest_update(&servers).or(if full { None } else { since }),
        last_full_sync_time: if full {
            Some(Time(now))
        } else {
            previous.last_full_sync_time
        },
    };
    // Plain data: serialization cannot fail.
    let bytes = serde_json::to_vec(&json!({ "servers": servers })).unwrap_or_default();
    Ok(Content::Registry { bytes, state })
}

/// The servers the source holds, as the registry answered them (their `server.json` and the
/// registry's `_meta`, both kept in each asset's metadata).
async fn held_servers(
    ctx: &Context,
    namespace: &str,
    source: &str,
) -> Result<Vec<Value>, FetchError> {
    let Ok(namespace) = Namespace::new(namespace) else {
        return Ok(Vec::new());
    };
    let scope = NamespaceScope::single(namespace);
    let query = AssetQuery {
        kinds: Some(vec![AssetKind::McpServer]),
        sources: vec![source.to_owned()],
        ..AssetQuery::default()
    };
    let mut held = Vec::new();
    let mut after = None;
    loop {
        let page = ctx
            .store
            .list_assets(&scope, &query, AssetSort::Key, after.as_ref(), 1_000)
            .await
            .map_err(|e| FetchError::Store(e.to_string()))?;
        for row in page.items {
            if let Some(server) = row.metadata.get(SERVER_JSON_KEY) {
                let mut item = json!({ "server": server });
                if let Some(official) = row.metadata.get(REGISTRY_META_KEY) {
                    item["_meta"] = json!({ OFFICIAL_META: official });
                }
                held.push(item);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CatalogSourceStatus, SourceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn source(status: Option<CatalogSourceStatus>) -> (CatalogSource, McpRegistrySource) {
        let spec = McpRegistrySource {
            url: "https://registry.example.com".into(),
            secret_ref: None,
            search: None,
            updated_since: None,
            timeout: None,
            full_sync_interval: Some("1h".into()),
        };
        let mut source = CatalogSource::new(
            "servers",
            crate::crd::CatalogSourceSpec {
                source: SourceSpec {
                    mcp_registry: Some(spec.clone()),
                    ..SourceSpec::default()
                },
                suspend: false,
                interval: None,
                filter: None,
                labels: Default::default(),
                curation: vec![],
            },
        );
        source.metadata.generation = Some(2);
        source.status = status;
        (source, spec)
    }

    fn ready(generation: i64, sync: Option<RegistrySync>) -> CatalogSourceStatus {
        CatalogSourceStatus {
            observed_generation: Some(generation),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Refreshed".into(),
                message: String::new(),
                last_transition_time: Time(Timestamp::now()),
                observed_generation: Some(generation),
            }],
            registry_sync: sync,
            ..CatalogSourceStatus::default()
        }
    }

    #[test]
    fn syncs_are_incremental_only_after_a_recent_full_one_of_the_same_spec() {
        let now = Timestamp::now();
        let recent = RegistrySync {
            updated_up_to: Some("2026-01-01T00:00:00Z".into()),
            last_full_sync_time: Some(Time(now - k8s_openapi::jiff::SignedDuration::from_mins(10))),
        };
        let (s, spec) = source(Some(ready(2, Some(recent.clone()))));
        assert_eq!(
            incremental_since(&s, &spec, now).as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        let (s, spec) = source(Some(ready(1, Some(recent.clone()))));
        assert_eq!(incremental_since(&s, &spec, now), None, "the spec changed");
        let (s, spec) = source(None);
        assert_eq!(incremental_since(&s, &spec, now), None, "never synced");
        let stale = RegistrySync {
            last_full_sync_time: Some(Time(now - k8s_openapi::jiff::SignedDuration::from_hours(2))),
            ..recent
        };
        let (s, spec) = source(Some(ready(2, Some(stale))));
        assert_eq!(
            incremental_since(&s, &spec, now),
            None,
            "the full sync is due"
        );
    }
}
