//! What the `CatalogPolicy`s selecting a namespace add up to, and whether a source keeps to it.
//!
//! The rule: every policy whose selector matches the namespace applies, and for each limit the
//! most restrictive value wins (the smallest number, the longest minimum interval, the
//! intersection of allowed source types, every policy's URL host rules). A namespace is paused
//! when any of them pauses it. So adding a policy can only tighten, never loosen, what another
//! policy set, and the order policies were created in does not matter. Each limit remembers the
//! policy it came from (the first by name among equals), so a refusal can name it.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use ipnet::IpNet;
use kube::{
    ResourceExt,
    core::{Selector, SelectorExt},
};

use super::duration::parse_go_duration;
use crate::crd::{CatalogPolicy, CatalogSourceSpec, NamespaceUsage, SourceType, UrlHostRules};

/// Where the global kill switch comes from, when it is pulled.
pub const GLOBAL_PAUSE: &str = "--pause-refreshes";

/// A limit and the policy that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound<T> {
    pub value: T,
    pub policy: String,
}

/// The limits in force for one namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The policies that select the namespace, by name.
    pub policies: Vec<String>,
    /// Who paused the namespace's refreshes: a policy's name or [`GLOBAL_PAUSE`].
    pub paused_by: Option<String>,
    pub max_sources: Option<Bound<i64>>,
    pub max_assets_per_namespace: Option<Bound<i64>>,
    pub max_assets_per_source: Option<Bound<i64>>,
    pub max_document_bytes: Option<Bound<i64>>,
    pub max_concurrent_refresh_jobs: Option<Bound<i64>>,
    pub min_interval: Option<Bound<Duration>>,
    /// Each policy's allowed types; a type must be in every list.
    pub allowed_source_types: Vec<Bound<Vec<SourceType>>>,
    /// Each policy's host rules; a URL must pass every one.
    pub url_hosts: Vec<Bound<UrlHostRules>>,
    /// The read API's bucket for the namespace: (requests per second, burst).
    pub namespace_rate: Option<Bound<(u32, u32)>>,
}

/// Whether `policy` selects a namespace with `labels`. A selector that does not parse selects
/// nothing (the CRD's CEL rule refuses such selectors; the policy's status would say so).
pub fn selects(policy: &CatalogPolicy, labels: &BTreeMap<String, String>) -> bool {
    match &policy.spec.namespace_selector {
        None => true,
        Some(selector) => Selector::try_from(selector.clone())
            .map(|s| s.matches(labels))
            .unwrap_or(false),
    }
}

/// Keeps the smaller of `current` and `candidate` (by `key`), or the one there is.
fn tighter<T: Clone, K: PartialOrd>(
    current: &mut Option<Bound<T>>,
    candidate: Option<T>,
    policy: &str,
    key: impl Fn(&T) -> K,
) {
    let Some(value) = candidate else { return };
    let replace = match current {
        None => true,
        Some(bound) => key(&value) < key(&bound.value),
    };
    if replace {
        *current = Some(Bound {
            value,
            policy: policy.to_owned(),
        });
    }
}

/// The effective policy for a namespace with `labels`, from all `policies` in the cluster.
pub fn effective(
    policies: &[CatalogPolicy],
    labels: &BTreeMap<String, String>,
    paused_globally: bool,
) -> EffectivePolicy {
    let mut selected: Vec<&CatalogPolicy> = policies
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && selects(p, labels))
        .collect();
    selected.sort_by_key(|p| p.name_any());
    let mut out = EffectivePolicy {
        paused_by: paused_globally.then(|| GLOBAL_PAUSE.to_owned()),
        ..EffectivePolicy::default()
    };
    for policy in selected {
        let name = policy.name_any();
        let spec = &policy.spec;
        let limits = &spec.limits;
        if spec.paused && out.paused_by.is_none() {
            out.paused_by = Some(name.clone());
        }
        tighter(&mut out.max_sources, limits.max_sources, &name, |v| *v);
        tighter(
            &mut out.max_assets_per_namespace,
            limits.max_assets_per_namespace,
            &name,
            |v| *v,
        );
        tighter(
            &mut out.max_assets_per_source,
            limits.max_assets_per_source,
            &name,
            |v| *v,
        );
        tighter(
            &mut out.max_document_bytes,
            limits.max_document_bytes,
            &name,
            |v| *v,
        );
        tighter(
            &mut out.max_concurrent_refresh_jobs,
            limits.max_concurrent_refresh_jobs,
            &name,
            |v| *v,
        );
        // A longer minimum is the tighter one.
        tighter(
            &mut out.min_interval,
            limits.min_interval.as_deref().and_then(parse_go_duration),
            &name,
            |v| std::cmp::Reverse(*v),
        );
        if let Some(types) = &limits.allowed_source_types {
            out.allowed_source_types.push(Bound {
                value: types.clone(),
                policy: name.clone(),
            });
        }
        if let Some(rules) = &limits.url_hosts {
            out.url_hosts.push(Bound {
                value: rules.clone(),
                policy: name.clone(),
            });
        }
        if let Some(rate) = &spec.api_rate_limits
            && let Some(per_second) = rate.namespace_requests_per_second
        {
            let burst = rate.namespace_burst.unwrap_or(per_second.saturating_mul(2));
            tighter(
                &mut out.namespace_rate,
                Some((per_second, burst)),
                &name,
                |(rps, burst)| (*rps, *burst),
            );
        }
        out.policies.push(name);
    }
    out
}

/// A limit a source or a namespace breaks, naming the policy that set it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CatalogPolicy {policy:?}: {message}")]
pub struct Violation {
    pub policy: String,
    /// The limit's field in `spec.limits` (`maxSources`, `urlHosts`, …).
    pub limit: &'static str,
    pub message: String,
}

impl Violation {
    /// A count limit (sources, assets), as opposed to a rule about the spec's content.
    pub fn is_quota(&self) -> bool {
        matches!(
            self.limit,
            "maxSources" | "maxAssetsPerNamespace" | "maxAssetsPerSource"
        )
    }

    fn new(bound_policy: &str, limit: &'static str, message: String) -> Self {
        Self {
            policy: bound_policy.to_owned(),
            limit,
            message,
        }
    }
}

pub fn source_type(spec: &CatalogSourceSpec) -> Option<SourceType> {
    let source = &spec.source;
    if source.inline.is_some() {
        Some(SourceType::Inline)
    } else if source.config_map.is_some() {
        Some(SourceType::ConfigMap)
    } else if source.url.is_some() {
        Some(SourceType::Url)
    } else if source.mcp_registry.is_some() {
        Some(SourceType::McpRegistry)
    } else {
        None
    }
}

/// Whether `host` matches a pattern: a name (`models.example.com`), a wildcard for its
/// subdomains (`*.example.com`), or a CIDR (for hosts that are IP addresses).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if let Ok(net) = pattern.parse::<IpNet>() {
        return host
            .parse::<IpAddr>()
            .is_ok_and(|ip| net.contains(&ip.to_canonical()));
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return host.parse::<IpAddr>().is_ok_and(|h| h.to_canonical() == ip);
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => host == pattern,
    }
}

/// Why `rules` refuse `host`, if they do.
fn host_refusal(rules: &UrlHostRules, host: &str) -> Option<String> {
    if let Some(pattern) = rules.deny.iter().find(|p| host_matches(p, host)) {
        return Some(format!(
            "URL host {host:?} is denied (urlHosts.deny {pattern:?})"
        ));
    }
    if !rules.allow.is_empty() && !rules.allow.iter().any(|p| host_matches(p, host)) {
        return Some(format!(
            "URL host {host:?} is not in urlHosts.allow {:?}",
            rules.allow
        ));
    }
    None
}

/// The URL's host as written (no port, no brackets), or `None` if it has none.
fn url_host(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

/// The limits a source's spec breaks by itself (no counting needed): its type, its URL's
/// host, its interval, its inline assets and its URL's size limit.
pub fn check_spec(policy: &EffectivePolicy, spec: &CatalogSourceSpec) -> Vec<Violation> {
    let mut found = Vec::new();
    if let Some(kind) = source_type(spec) {
        for allowed in &policy.allowed_source_types {
            if !allowed.value.contains(&kind) {
                let names: Vec<&str> = allowed.value.iter().map(|t| t.as_str()).collect();
                found.push(Violation::new(
                    &allowed.policy,
                    "allowedSourceTypes",
                    format!(
                        "source type {:?} is not allowed (allowedSourceTypes: {names:?})",
                        kind.as_str()
                    ),
                ));
            }
        }
    }
    let fetched_url = spec.source.url.as_ref().map(|u| u.url.as_str()).or(spec
        .source
        .mcp_registry
        .as_ref()
        .map(|r| r.url.as_str()));
    if let Some(fetched) = fetched_url {
        match url_host(fetched) {
            Some(host) => {
                for rules in &policy.url_hosts {
                    if let Some(message) = host_refusal(&rules.value, &host) {
                        found.push(Violation::new(&rules.policy, "urlHosts", message));
                    }
                }
            }
            None if !policy.url_hosts.is_empty() => {
                let rules = &policy.url_hosts[0];
                found.push(Violation::new(
                    &rules.policy,
                    "urlHosts",
                    format!("URL {fetched:?} has no host to check"),
                ));
            }
            None => {}
        }
    }
    if let Some(url) = &spec.source.url
        && let (Some(limit), Some(asked)) = (&policy.max_document_bytes, url.max_size_bytes)
        && asked > limit.value
    {
        found.push(Violation::new(
            &limit.policy,
            "maxDocumentBytes",
            format!(
                "spec.source.url.maxSizeBytes {asked} is over maxDocumentBytes {}",
                limit.value
            ),
        ));
    }
    if let Some(minimum) = &policy.min_interval
        && let Some(asked) = spec.interval.as_deref().and_then(parse_go_duration)
        && asked < minimum.value
    {
        found.push(Violation::new(
            &minimum.policy,
            "minInterval",
            format!(
                "spec.interval {} is shorter than minInterval {}",
                spec.interval.as_deref().unwrap_or_default(),
                humanize(minimum.value)
            ),
        ));
    }
    if let Some(inline) = &spec.source.inline {
        found.extend(check_source_assets(policy, inline.assets.len()));
    }
    found
}

/// Whether a namespace that already has `existing` sources may have one more.
pub fn check_new_source(policy: &EffectivePolicy, existing: usize) -> Option<Violation> {
    let limit = policy.max_sources.as_ref()?;
    let existing = i64::try_from(existing).unwrap_or(i64::MAX);
    (existing >= limit.value).then(|| {
        Violation::new(
            &limit.policy,
            "maxSources",
            format!(
                "maxSources is {}: the namespace already has {existing} CatalogSource{}",
                limit.value,
                if existing == 1 { "" } else { "s" }
            ),
        )
    })
}

/// Whether one source's catalog of `assets` entries keeps to the per-source limit.
pub fn check_source_assets(policy: &EffectivePolicy, assets: usize) -> Option<Violation> {
    let limit = policy.max_assets_per_source.as_ref()?;
    let assets = i64::try_from(assets).unwrap_or(i64::MAX);
    (assets > limit.value).then(|| {
        Violation::new(
            &limit.policy,
            "maxAssetsPerSource",
            format!(
                "the catalog has {assets} assets; maxAssetsPerSource is {}",
                limit.value
            ),
        )
    })
}

/// Whether a source's catalog of `assets` entries, with `elsewhere` assets in the namespace's
/// other sources, keeps to both asset limits.
pub fn check_catalog_size(
    policy: &EffectivePolicy,
    assets: usize,
    elsewhere: i64,
) -> Option<Violation> {
    if let Some(violation) = check_source_assets(policy, assets) {
        return Some(violation);
    }
    let limit = policy.max_assets_per_namespace.as_ref()?;
    let total = i64::try_from(assets)
        .unwrap_or(i64::MAX)
        .saturating_add(elsewhere);
    (total > limit.value).then(|| {
        Violation::new(
            &limit.policy,
            "maxAssetsPerNamespace",
            format!(
                "the namespace would hold {total} assets ({assets} from this source); maxAssetsPerNamespace is {}",
                limit.value
            ),
        )
    })
}

/// The interval a source refreshes at: its own, but never more often than the policy allows.
pub fn refresh_interval(policy: &EffectivePolicy, asked: Option<Duration>) -> Option<Duration> {
    match (asked, &policy.min_interval) {
        (Some(asked), Some(minimum)) => Some(asked.max(minimum.value)),
        (asked, _) => asked,
    }
}

/// What a policy's status shows: how many known namespaces it selects, and the usage of each
/// selected namespace that holds anything (`usage`: namespace → (sources, assets)). At most
/// `max_listed` namespaces are listed, the largest by assets first.
pub fn usage_status(
    policy: &CatalogPolicy,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    usage: &BTreeMap<String, (i64, i64)>,
    paused_globally: bool,
    max_listed: usize,
) -> (i64, Vec<NamespaceUsage>) {
    let selected: Vec<&String> = namespaces
        .iter()
        .filter(|(_, labels)| selects(policy, labels))
        .map(|(name, _)| name)
        .collect();
    let mut listed: Vec<NamespaceUsage> = selected
        .iter()
        .filter_map(|name| {
            let (sources, assets) = usage.get(*name)?;
            Some(NamespaceUsage {
                namespace: (*name).clone(),
                sources: *sources,
                assets: *assets,
                paused: paused_globally || policy.spec.paused,
            })
        })
        .collect();
    listed.sort_by(|a, b| {
        b.assets
            .cmp(&a.assets)
            .then_with(|| a.namespace.cmp(&b.namespace))
    });
    listed.truncate(max_listed);
    (i64::try_from(selected.len()).unwrap_or(i64::MAX), listed)
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(3600) && seconds > 0 {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) && seconds > 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, spec: serde_json::Value) -> CatalogPolicy {
        serde_json::from_value(json!({
            "apiVersion": "curio.dev/v1alpha1",
            "kind": "CatalogPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec(value: serde_json::Value) -> CatalogSourceSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_most_restrictive_value_wins_and_names_its_policy() {
        let policies = [
            policy(
                "b-tight",
                json!({"limits": {"maxSources": 2, "minInterval": "10m"}}),
            ),
            policy(
                "a-loose",
                json!({"limits": {"maxSources": 5, "maxAssetsPerSource": 100, "minInterval": "1h"}}),
            ),
            policy(
                "c-other-tenant",
                json!({"namespaceSelector": {"matchLabels": {"tier": "free"}}, "limits": {"maxSources": 1}}),
            ),
        ];
        let team = effective(&policies, &labels(&[("tier", "paid")]), false);
        assert_eq!(team.policies, ["a-loose", "b-tight"]);
        assert_eq!(
            team.max_sources,
            Some(Bound {
                value: 2,
                policy: "b-tight".into()
            })
        );
        assert_eq!(team.max_assets_per_source.unwrap().policy, "a-loose");
        // The longer minimum interval is the more restrictive one.
        assert_eq!(
            team.min_interval,
            Some(Bound {
                value: Duration::from_secs(3600),
                policy: "a-loose".into()
            })
        );
        let free = effective(&policies, &labels(&[("tier", "free")]), false);
        assert_eq!(free.max_sources.unwrap().policy, "c-other-tenant");
    }

    #[test]
    fn equal_limits_name_the_first_policy_whatever_the_order() {
        let a = policy("alpha", json!({"limits": {"maxSources": 3}}));
        let b = policy("beta", json!({"limits": {"maxSources": 3}}));
        let one = effective(&[a.clone(), b.clone()], &BTreeMap::new(), false);
        let other = effective(&[b, a], &BTreeMap::new(), false);
        assert_eq!(one, other);
        assert_eq!(one.max_sources.unwrap().policy, "alpha");
    }

    #[test]
    fn any_pausing_policy_or_the_global_switch_pauses() {
        let policies = [
            policy("open", json!({})),
            policy(
                "freeze",
                json!({"paused": true, "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}]}}),
            ),
        ];
        let a = labels(&[("kubernetes.io/metadata.name", "team-a")]);
        let b = labels(&[("kubernetes.io/metadata.name", "team-b")]);
        assert_eq!(
            effective(&policies, &a, false).paused_by.as_deref(),
            Some("freeze")
        );
        assert_eq!(effective(&policies, &b, false).paused_by, None);
        assert_eq!(
            effective(&policies, &b, true).paused_by.as_deref(),
            Some(GLOBAL_PAUSE)
        );
    }

    #[test]
    fn an_unparseable_selector_selects_nothing() {
        let bad = policy(
            "bad",
            json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}, "paused": true}),
        );
        assert!(!selects(&bad, &labels(&[("a", "b")])));
    }

    #[test]
    fn source_types_must_be_allowed_by_every_policy() {
        let policies = [
            policy(
                "no-url",
                json!({"limits": {"allowedSourceTypes": ["inline", "configMap"]}}),
            ),
            policy(
                "inline-only",
                json!({"limits": {"allowedSourceTypes": ["inline"]}}),
            ),
        ];
        let effective = effective(&policies, &BTreeMap::new(), false);
        let config_map = spec(json!({"source": {"configMap": {"name": "c"}}}));
        let found = check_spec(&effective, &config_map);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].policy, "inline-only");
        assert_eq!(found[0].limit, "allowedSourceTypes");
        let inline = spec(json!({"source": {"inline": {"assets": []}}}));
        assert!(check_spec(&effective, &inline).is_empty());
        let registry = spec(json!({"source": {"mcpRegistry": {"url": "https://r.example.com"}}}));
        let found = check_spec(&effective, &registry);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].to_string().contains("\"mcpRegistry\""),
            "{}",
            found[0]
        );
    }

    #[test]
    fn url_hosts_deny_and_allow_by_name_wildcard_and_cidr() {
        let rules = policy(
            "hosts",
            json!({"limits": {"urlHosts": {"allow": ["*.example.com", "models.acme.io", "10.0.0.0/8"], "deny": ["evil.example.com"]}}}),
        );
        let effective = effective(&[rules], &BTreeMap::new(), false);
        let url = |u: &str| spec(json!({"source": {"url": {"url": u}}}));
        for ok in [
            "https://hub.example.com/c.yaml",
            "https://a.b.example.com/c.yaml",
            "https://MODELS.acme.io:8443/x",
            "http://10.1.2.3/x",
        ] {
            assert!(check_spec(&effective, &url(ok)).is_empty(), "{ok}");
        }
        for refused in [
            "https://evil.example.com/c.yaml",
            "https://example.com/c.yaml",
            "https://notexample.com/c.yaml",
            "https://models.acme.io.evil.net/x",
            "http://11.0.0.1/x",
            "http://[::1]/x",
        ] {
            let found = check_spec(&effective, &url(refused));
            assert_eq!(found.len(), 1, "{refused}: {found:?}");
            assert_eq!(found[0].limit, "urlHosts");
        }
        assert!(
            check_spec(&effective, &url("https://evil.example.com/"))[0]
                .to_string()
                .contains("denied")
        );
        // A registry source's URL meets the same host rules.
        let registry = |u: &str| spec(json!({"source": {"mcpRegistry": {"url": u}}}));
        assert!(check_spec(&effective, &registry("https://hub.example.com")).is_empty());
        let found = check_spec(&effective, &registry("https://evil.example.com"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].limit, "urlHosts");
    }

    #[test]
    fn interval_inline_assets_and_document_size_are_checked_from_the_spec() {
        let limits = policy(
            "limits",
            json!({"limits": {"minInterval": "5m", "maxAssetsPerSource": 1, "maxDocumentBytes": 1000}}),
        );
        let effective = effective(&[limits], &BTreeMap::new(), false);
        let fast = spec(json!({"source": {"inline": {"assets": []}}, "interval": "1m"}));
        let found = check_spec(&effective, &fast);
        assert_eq!(found[0].limit, "minInterval");
        assert!(found[0].message.contains("shorter than minInterval 5m"));
        let two = spec(json!({"source": {"inline": {"assets": [
            {"kind": "Model", "name": "a"}, {"kind": "Model", "name": "b"}
        ]}}}));
        assert_eq!(check_spec(&effective, &two)[0].limit, "maxAssetsPerSource");
        let big = spec(json!({"source": {"url": {"url": "https://x.io/c", "maxSizeBytes": 5000}}}));
        assert_eq!(check_spec(&effective, &big)[0].limit, "maxDocumentBytes");
        assert_eq!(
            refresh_interval(&effective, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(300))
        );
        assert_eq!(refresh_interval(&effective, None), None);
    }

    #[test]
    fn counting_limits() {
        let limits = policy(
            "quota",
            json!({"limits": {"maxSources": 2, "maxAssetsPerNamespace": 10, "maxAssetsPerSource": 8}}),
        );
        let effective = effective(&[limits], &BTreeMap::new(), false);
        assert!(check_new_source(&effective, 1).is_none());
        let refused = check_new_source(&effective, 2).unwrap();
        assert_eq!(
            refused.to_string(),
            "CatalogPolicy \"quota\": maxSources is 2: the namespace already has 2 CatalogSources"
        );
        assert!(check_catalog_size(&effective, 8, 2).is_none());
        assert_eq!(
            check_catalog_size(&effective, 9, 0).unwrap().limit,
            "maxAssetsPerSource"
        );
        assert_eq!(
            check_catalog_size(&effective, 8, 3).unwrap().limit,
            "maxAssetsPerNamespace"
        );
        // No policy, no limits.
        let none = super::effective(&[], &BTreeMap::new(), false);
        assert!(check_new_source(&none, 10_000).is_none());
        assert!(check_catalog_size(&none, 1_000_000, 1_000_000).is_none());
    }

    #[test]
    fn usage_lists_the_selected_namespaces_that_hold_something() {
        let gold = policy(
            "gold",
            json!({"namespaceSelector": {"matchLabels": {"tier": "gold"}}}),
        );
        let namespaces = BTreeMap::from([
            ("a".to_owned(), labels(&[("tier", "gold")])),
            ("b".to_owned(), labels(&[("tier", "gold")])),
            ("c".to_owned(), labels(&[("tier", "free")])),
            ("empty".to_owned(), labels(&[("tier", "gold")])),
        ]);
        let usage = BTreeMap::from([
            ("a".to_owned(), (1, 10)),
            ("b".to_owned(), (2, 30)),
            ("c".to_owned(), (5, 50)),
        ]);
        let (count, listed) = usage_status(&gold, &namespaces, &usage, false, 10);
        assert_eq!(count, 3);
        let names: Vec<&str> = listed.iter().map(|u| u.namespace.as_str()).collect();
        assert_eq!(names, ["b", "a"], "largest first; c is not selected");
        assert_eq!((listed[0].sources, listed[0].assets), (2, 30));
        let (_, one) = usage_status(&gold, &namespaces, &usage, false, 1);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn the_tighter_api_rate_wins() {
        let policies = [
            policy(
                "a",
                json!({"apiRateLimits": {"namespaceRequestsPerSecond": 50}}),
            ),
            policy(
                "b",
                json!({"apiRateLimits": {"namespaceRequestsPerSecond": 20, "namespaceBurst": 30}}),
            ),
        ];
        let rate = effective(&policies, &BTreeMap::new(), false)
            .namespace_rate
            .unwrap();
        assert_eq!((rate.value, rate.policy.as_str()), ((20, 30), "b"));
    }
}
