//! The MCP Registry API's view of a namespace's `McpServer` assets: `server.json` documents,
//! which version is the latest, and the pages `GET /v0.1/servers` answers. Pure: the API
//! reads the rows and authorizes; this decides what they look like.

use std::{cmp::Ordering, collections::BTreeMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{Link, McpServerDetails, OFFICIAL_META, REGISTRY_META_KEY, SERVER_JSON_KEY};

/// Curio's own facts about an entry, under this key of the response's `_meta`.
pub const CURIO_META: &str = "dev.curio/catalog";
/// The `$schema` of documents Curio builds from its own fields.
pub const SERVER_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
pub const DEFAULT_LIMIT: usize = 30;
pub const MAX_LIMIT: usize = 100;

/// One `McpServer` asset as the registry sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub namespace: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub stage: Option<String>,
    pub approved: bool,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub mcp: Option<McpServerDetails>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a list asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Case-insensitive substring of the server name.
    pub search: Option<String>,
    /// Entries updated after this time (strictly: a syncing client sends the newest
    /// `updatedAt` it holds).
    pub updated_since: Option<DateTime<Utc>>,
    pub version: VersionFilter,
    /// Only approved entries.
    pub approved_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum VersionFilter {
    #[default]
    Any,
    Latest,
    Exact(String),
}

/// Where a page ends: the last entry's name and version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub servers: Vec<Value>,
    pub next: Option<Position>,
}

/// The namespace's entries, one per `(name, version)` (where two sources hold the same one,
/// the first source by name answers), each with whether it is its server's latest version.
pub struct Registry {
    entries: Vec<(Entry, bool)>,
}

impl Registry {
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| {
            (&a.name, &a.version, &a.source).cmp(&(&b.name, &b.version, &b.source))
        });
        entries.dedup_by(|b, a| a.name == b.name && a.version == b.version);
        let mut latest: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            match latest.get(entry.name.as_str()) {
                Some(&best) if newer(&entries[best], entry) != Ordering::Less => {}
                _ => {
                    latest.insert(&entry.name, i);
                }
            }
        }
        let latest: std::collections::BTreeSet<usize> = latest.into_values().collect();
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, latest.contains(&i)))
            .collect();
        Self { entries }
    }

    /// `GET /v0.1/servers`: by name then version, after `after`, at most `limit`.
    pub fn list(&self, query: &Query, after: Option<&Position>, limit: usize) -> Page {
        let search = query.search.as_deref().map(str::to_lowercase);
        let mut matching = self.entries.iter().filter(|(e, latest)| {
            (!query.approved_only || e.approved)
                && search
                    .as_deref()
                    .is_none_or(|s| e.name.to_lowercase().contains(s))
                && query.updated_since.is_none_or(|t| e.updated_at > t)
                && match &query.version {
                    VersionFilter::Any => true,
                    VersionFilter::Latest => *latest,
                    VersionFilter::Exact(v) => &e.version == v,
                }
                && after.is_none_or(|p| (&e.name, &e.version) > (&p.name, &p.version))
        });
        let page: Vec<&(Entry, bool)> = matching.by_ref().take(limit).collect();
        let next = match (page.last(), matching.next()) {
            (Some((last, _)), Some(_)) => Some(Position {
                name: last.name.clone(),
                version: last.version.clone(),
            }),
            _ => None,
        };
        Page {
            servers: page
                .iter()
                .map(|(e, latest)| response(e, *latest))
                .collect(),
            next,
        }
    }

    /// `GET /v0.1/servers/{name}/versions`: newest first; `None` when there is no such server.
    pub fn versions(&self, name: &str, approved_only: bool) -> Option<Vec<Value>> {
        let mut found: Vec<&(Entry, bool)> = self
            .entries
            .iter()
            .filter(|(e, _)| e.name == name && (!approved_only || e.approved))
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by(|(a, _), (b, _)| newer(b, a));
        Some(
            found
                .iter()
                .map(|(e, latest)| response(e, *latest))
                .collect(),
        )
    }

    /// `GET /v0.1/servers/{name}/versions/{version|latest}`.
    pub fn version(&self, name: &str, version: &str, approved_only: bool) -> Option<Value> {
        let mut candidates = self
            .entries
            .iter()
            .filter(|(e, _)| e.name == name && (!approved_only || e.approved));
        let found = if version == "latest" {
            // With approved_only, the newest approved version even if a newer one is not.
            candidates.max_by(|(a, _), (b, _)| newer(a, b))
        } else {
            candidates.find(|(e, _)| e.version == version)
        };
        found.map(|(e, latest)| response(e, *latest))
    }
}

/// Which of two versions of one server is newer: by semantic version when both are one,
/// otherwise by when each was first published (as the official registry decides).
fn newer(a: &Entry, b: &Entry) -> Ordering {
    match (
        semver::Version::parse(&a.version),
        semver::Version::parse(&b.version),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a
            .created_at
            .cmp(&b.created_at)
            .then_with(|| a.version.cmp(&b.version)),
    }
}

/// With the store's full precision, so a client's `updated_since` (the newest `updatedAt` it
/// saw) does not ask again for everything written in that second.
/// `text` in at most `max` characters, ending in `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A registry `ServerResponse`: the `server.json` and the registry's `_meta`.
pub fn response(entry: &Entry, is_latest: bool) -> Value {
    let upstream_status = entry
        .metadata
        .get(REGISTRY_META_KEY)
        .and_then(|m| m.get("status"))
        .and_then(Value::as_str);
    let status =
        if entry.stage.as_deref() == Some("deprecated") || upstream_status == Some("deprecated") {
            "deprecated"
        } else {
            "active"
        };
    json!({
        "server": server_json(entry),
        "_meta": {
            OFFICIAL_META: {
                "status": status,
                "publishedAt": time(&entry.created_at),
                "updatedAt": time(&entry.updated_at),
                "isLatest": is_latest,
            },
            CURIO_META: {
                "namespace": entry.namespace,
                "source": entry.source,
                "stage": entry.stage,
                "approved": entry.approved,
                "tags": entry.tags,
            },
        },
    })
}

/// The entry's `server.json`: the document it was ingested from, as it was, or one built from
/// its fields when it was written in another format.
pub fn server_json(entry: &Entry) -> Value {
    if let Some(original) = entry
        .metadata
        .get(SERVER_JSON_KEY)
        .filter(|v| v.is_object())
    {
        return original.clone();
    }
    let mut doc = Map::new();
    doc.insert("$schema".into(), json!(SERVER_SCHEMA));
    doc.insert("name".into(), json!(entry.name));
    // The format asks for 1 to 100 characters.
    let description = entry
        .description
        .as_deref()
        .or(entry.display_name.as_deref())
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(&entry.name);
    doc.insert("description".into(), json!(shorten(description, 100)));
    if let Some(title) = &entry.display_name {
        doc.insert("title".into(), json!(title));
    }
    doc.insert("version".into(), json!(entry.version));
    let link = |kind: &str| entry.links.iter().find(|l| l.link_type == kind);
    if let Some(repository) = link("repository").or_else(|| link("source")) {
        doc.insert("repository".into(), json!({ "url": repository.uri }));
    }
    if let Some(website) = link("website").or_else(|| link("docs")) {
        doc.insert("websiteUrl".into(), json!(website.uri));
    }
    if let Some(mcp) = &entry.mcp {
        if !mcp.packages.is_empty() {
            let packages: Vec<Value> = mcp
                .packages
                .iter()
                .map(|p| {
                    let mut package = json!({
                        "registryType": p.registry_type,
                        "identifier": p.identifier,
                        "transport": {"type": p.transport.as_deref().unwrap_or("stdio")},
                    });
                    if let Some(version) = &p.version {
                        package["version"] = json!(version);
                    }
                    package
                })
                .collect();
            doc.insert("packages".into(), Value::Array(packages));
        }
        if !mcp.remotes.is_empty() {
            let remotes: Vec<Value> = mcp
                .remotes
                .iter()
                .map(|r| json!({"type": r.transport, "url": r.url}))
                .collect();
            doc.insert("remotes".into(), Value::Array(remotes));
        }
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, day: u32) -> Entry {
        let at = DateTime::parse_from_rfc3339(&format!("2026-01-{day:02}T00:00:00Z"))
            .unwrap()
            .with_timezone(&Utc);
        Entry {
            namespace: "team-a".into(),
            source: "servers".into(),
            name: name.into(),
            version: version.into(),
            display_name: None,
            description: Some(format!("{name} {version}")),
            stage: None,
            approved: false,
            tags: vec![],
            links: vec![],
            mcp: None,
            metadata: json!({}),
            created_at: at,
            updated_at: at,
        }
    }

    fn names(page: &Page) -> Vec<String> {
        page.servers
            .iter()
            .map(|s| {
                format!(
                    "{}@{}",
                    s["server"]["name"].as_str().unwrap(),
                    s["server"]["version"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn the_latest_version_is_the_highest_semver_and_otherwise_the_newest() {
        let registry = Registry::new(vec![
            entry("a/x", "1.10.0", 1),
            entry("a/x", "1.9.0", 5),
            entry("a/y", "nightly", 1),
            entry("a/y", "stable", 3),
        ]);
        let latest = registry.list(
            &Query {
                version: VersionFilter::Latest,
                ..Query::default()
            },
            None,
            10,
        );
        assert_eq!(names(&latest), ["a/x@1.10.0", "a/y@stable"]);
        let versions = registry.versions("a/x", false).unwrap();
        assert_eq!(versions[0]["server"]["version"], "1.10.0");
        assert_eq!(versions[0]["_meta"][OFFICIAL_META]["isLatest"], true);
        assert_eq!(versions[1]["_meta"][OFFICIAL_META]["isLatest"], false);
        assert_eq!(
            registry.version("a/x", "latest", false).unwrap()["server"]["version"],
            "1.10.0"
        );
        assert!(registry.version("a/x", "2.0.0", false).is_none());
        assert!(registry.versions("a/z", false).is_none());
    }

    #[test]
    fn pages_walk_every_entry_once_with_filters() {
        let entries: Vec<Entry> = (0..25)
            .map(|i| {
                let mut e = entry(&format!("io.example/s{i:02}"), "1.0.0", 1 + (i % 28) as u32);
                e.approved = i % 2 == 0;
                e
            })
            .collect();
        let registry = Registry::new(entries);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = registry.list(&Query::default(), after.as_ref(), 7);
            seen.extend(names(&page));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen);
        let approved = registry.list(
            &Query {
                approved_only: true,
                search: Some("S1".into()),
                ..Query::default()
            },
            None,
            100,
        );
        assert_eq!(
            names(&approved),
            [
                "io.example/s10@1.0.0",
                "io.example/s12@1.0.0",
                "io.example/s14@1.0.0",
                "io.example/s16@1.0.0",
                "io.example/s18@1.0.0"
            ]
        );
        let since = registry.list(
            &Query {
                updated_since: Some(entry("x/x", "1", 20).updated_at),
                ..Query::default()
            },
            None,
            100,
        );
        assert_eq!(since.servers.len(), 5, "days 21 to 25");
    }

    #[test]
    fn a_server_json_is_served_as_ingested_or_built_from_fields() {
        let mut ingested = entry("a/x", "1.0.0", 1);
        ingested.metadata = json!({"serverJson": {"name": "a/x", "version": "1.0.0", "description": "d", "_meta": {"k": 1}}});
        assert_eq!(server_json(&ingested)["_meta"]["k"], 1);
        let mut built = entry("a/y", "2.0.0", 1);
        built.links = vec![Link {
            link_type: "repository".into(),
            uri: "https://git.example/y".into(),
        }];
        built.mcp = Some(McpServerDetails {
            transports: vec!["streamable-http".into()],
            packages: vec![],
            remotes: vec![crate::catalog::McpRemote {
                transport: "streamable-http".into(),
                url: "https://y.example/mcp".into(),
            }],
        });
        built.stage = Some("deprecated".into());
        let doc = response(&built, true);
        assert_eq!(doc["server"]["repository"]["url"], "https://git.example/y");
        assert_eq!(doc["server"]["remotes"][0]["url"], "https://y.example/mcp");
        assert_eq!(doc["_meta"][OFFICIAL_META]["status"], "deprecated");
        assert_eq!(doc["_meta"][CURIO_META]["namespace"], "team-a");
        built.description = Some("x".repeat(500));
        let long = server_json(&built)["description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(long.chars().count(), 100);
        built.description = None;
        assert_eq!(server_json(&built)["description"], "a/y");
    }
}
