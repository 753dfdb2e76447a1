//! MCP `server.json` documents, and MCP Registry API answers (`{"servers": [...]}`), mapped
//! onto `McpServer` assets.
//!
//! Nothing is dropped: the document is kept whole under `metadata.serverJson` (and the
//! registry's own `_meta` under `metadata.registry`), so the registry API can serve back the
//! very document it was given.

use serde_json::{Map, Value};

use super::{
    details::{
        FieldError, McpPackage, McpRemote, McpServerDetails, list_field, push_link, push_tag,
        text_field,
    },
    error::{CatalogError, Problem, map_items},
    model::{Asset, AssetKind},
};

/// Where the original `server.json` is kept in an asset's metadata.
pub const SERVER_JSON_KEY: &str = "serverJson";
/// Where an upstream registry's official `_meta` block is kept in an asset's metadata.
pub const REGISTRY_META_KEY: &str = "registry";
/// The official registry's key in a server response's `_meta`.
pub const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";

/// Whether a mapping reads as one `server.json` rather than another format.
pub(super) fn looks_like_server(top: &Map<String, Value>) -> bool {
    let schema = top
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("server.schema.json"));
    let named = top
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.contains('/'));
    schema
        || (named
            && (top.contains_key("packages")
                || top.contains_key("remotes")
                || (top.contains_key("version") && top.contains_key("description"))))
}

/// A registry answer's `servers`: each a `{server, _meta}` response or a bare `server.json`.
/// Entries the registry marks deleted are left out.
pub(super) fn registry_to_assets(items: Vec<Value>) -> Result<Vec<Asset>, CatalogError> {
    map_items(items, "servers", |item| {
        let (server, official) = match item {
            Value::Object(mut response) if response.contains_key("server") => {
                let official = response
                    .get("_meta")
                    .and_then(|m| m.get(OFFICIAL_META))
                    .cloned();
                (response.remove("server").unwrap_or(Value::Null), official)
            }
            other => (other, None),
        };
        let deleted = official
            .as_ref()
            .and_then(|o| o.get("status"))
            .and_then(Value::as_str)
            == Some("deleted");
        if deleted {
            return Ok(None);
        }
        server_to_asset(server, official)
            .map(Some)
            .map_err(|(field, message)| (field.map(|f| format!("server.{f}")), message))
    })
}

/// One `server.json` document as a catalog.
pub(super) fn server_document(server: Value) -> Result<Vec<Asset>, CatalogError> {
    server_to_asset(server, None)
        .map(|asset| vec![asset])
        .map_err(|(field, message)| {
            CatalogError::Invalid(vec![Problem {
                list: "server.json",
                index: 0,
                field,
                message,
            }])
        })
}

fn server_to_asset(server: Value, official: Option<Value>) -> Result<Asset, FieldError> {
    let Value::Object(doc) = server else {
        return Err((None, "a server must be a mapping (server.json)".into()));
    };
    let name =
        text_field(&doc, "name")?.ok_or_else(|| (Some("name".into()), "is required".into()))?;
    let version = text_field(&doc, "version")?.unwrap_or_default();
    let mut details = McpServerDetails::default();
    let mut tags = Vec::new();
    let mut links = Vec::new();
    if let Some(repository) = doc.get("repository").filter(|r| !r.is_null()) {
        let url = repository
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| (Some("repository.url".into()), "must be a string".into()))?;
        push_link(&mut links, "repository", url);
    }
    if let Some(website) = text_field(&doc, "websiteUrl")? {
        push_link(&mut links, "website", &website);
    }
    for (i, package) in list_field(&doc, "packages")?.iter().enumerate() {
        let field = |f: &str| format!("packages[{i}].{f}");
        let registry_type = package
            .get("registryType")
            .and_then(Value::as_str)
            .ok_or_else(|| (Some(field("registryType")), "is required".into()))?;
        let identifier = package
            .get("identifier")
            .and_then(Value::as_str)
            .ok_or_else(|| (Some(field("identifier")), "is required".into()))?;
        let transport = package
            .get("transport")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str);
        details.packages.push(McpPackage {
            registry_type: registry_type.to_owned(),
            identifier: identifier.to_owned(),
            version: package
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_owned),
            transport: transport.map(str::to_owned),
        });
        details.transports.extend(transport.map(str::to_owned));
        push_tag(&mut tags, "package", registry_type);
    }
    for (i, remote) in list_field(&doc, "remotes")?.iter().enumerate() {
        let field = |f: &str| format!("remotes[{i}].{f}");
        let transport = remote
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| (Some(field("type")), "is required".into()))?;
        let url = remote
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| (Some(field("url")), "is required".into()))?;
        details.remotes.push(McpRemote {
            transport: transport.to_owned(),
            url: url.to_owned(),
        });
        details.transports.push(transport.to_owned());
        push_link(&mut links, "endpoint", url);
    }
    details.transports.sort();
    details.transports.dedup();
    for transport in &details.transports {
        push_tag(&mut tags, "transport", transport);
    }
    if let Some(icon) = list_field(&doc, "icons")?
        .first()
        .and_then(|i| i.get("src"))
        .and_then(Value::as_str)
    {
        push_link(&mut links, "icon", icon);
    }
    let mut metadata = Map::new();
    let description = text_field(&doc, "description")?;
    let display_name = text_field(&doc, "title")?;
    // The reverse-DNS namespace says who publishes it: `io.github.acme` of `io.github.acme/x`.
    let provider = name.split_once('/').map(|(owner, _)| owner.to_owned());
    metadata.insert(SERVER_JSON_KEY.into(), Value::Object(doc));
    if let Some(official) = official {
        metadata.insert(REGISTRY_META_KEY.into(), official);
    }
    Ok(Asset {
        kind: AssetKind::McpServer,
        name,
        version,
        display_name,
        description,
        provider,
        license: None,
        tags,
        labels: Default::default(),
        links,
        metadata: Some(Value::Object(metadata)),
        mcp: Some(details),
        agent: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::catalog::{AssetKind, Limits, parse_document};

    pub const SERVER_JSON: &str = r#"{
  "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
  "name": "io.github.acme/weather",
  "title": "Weather",
  "description": "Forecasts and alerts for any city",
  "version": "1.4.0",
  "repository": {"url": "https://github.com/acme/weather-mcp", "source": "github"},
  "websiteUrl": "https://acme.example.com/weather",
  "packages": [
    {"registryType": "npm", "identifier": "@acme/weather-mcp", "version": "1.4.0",
     "transport": {"type": "stdio"},
     "environmentVariables": [{"name": "WEATHER_API_KEY", "isSecret": true}]}
  ],
  "remotes": [{"type": "streamable-http", "url": "https://mcp.acme.example.com/weather"},
              {"type": "sse", "url": "{baseUrl}/sse"}],
  "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {"tool": "ci"}}
}"#;

    #[test]
    fn a_server_json_is_one_mcp_server() {
        let assets = parse_document(SERVER_JSON.as_bytes(), Limits::default()).expect("valid");
        assert_eq!(assets.len(), 1);
        let server = &assets[0];
        assert_eq!(server.kind, AssetKind::McpServer);
        assert_eq!(server.name, "io.github.acme/weather");
        assert_eq!(server.version, "1.4.0");
        assert_eq!(server.display_name.as_deref(), Some("Weather"));
        assert_eq!(server.provider.as_deref(), Some("io.github.acme"));
        let mcp = server.mcp.as_ref().unwrap();
        assert_eq!(mcp.transports, ["sse", "stdio", "streamable-http"]);
        assert_eq!(mcp.packages[0].identifier, "@acme/weather-mcp");
        assert_eq!(mcp.packages[0].transport.as_deref(), Some("stdio"));
        assert_eq!(mcp.remotes.len(), 2);
        assert!(server.tags.contains(&"transport.stdio".to_owned()));
        assert!(server.tags.contains(&"package.npm".to_owned()));
        // The template URL is not a link; the real ones are.
        let links: Vec<_> = server.links.iter().map(|l| l.link_type.as_str()).collect();
        assert_eq!(links, ["repository", "website", "endpoint"]);
        let original: serde_json::Value = serde_json::from_str(SERVER_JSON).unwrap();
        assert_eq!(server.metadata.as_ref().unwrap()["serverJson"], original);
    }

    #[test]
    fn a_registry_answer_is_many_servers_and_drops_deleted_ones() {
        let doc = serde_json::json!({
            "servers": [
                {"server": {"name": "com.example/a", "description": "A", "version": "1.0.0"},
                 "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active", "isLatest": true,
                           "publishedAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-02-01T00:00:00Z"}}},
                {"server": {"name": "com.example/b", "description": "B", "version": "2.0.0"},
                 "_meta": {"io.modelcontextprotocol.registry/official": {"status": "deleted"}}},
                {"name": "com.example/c", "description": "C", "version": "0.1.0"}
            ],
            "metadata": {"count": 3}
        });
        let assets = parse_document(doc.to_string().as_bytes(), Limits::default()).unwrap();
        let names: Vec<_> = assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["com.example/a", "com.example/c"]);
        assert_eq!(
            assets[0].metadata.as_ref().unwrap()["registry"]["updatedAt"],
            "2025-02-01T00:00:00Z"
        );
    }

    #[test]
    fn a_bad_server_names_its_index_and_field() {
        let doc = r#"{"servers": [{"server": {"name": "com.example/a", "version": "1"}},
                                  {"server": {"description": "no name"}}]}"#;
        let err = parse_document(doc.as_bytes(), Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 invalid asset: servers[1].server.name: is required"
        );
    }
}
