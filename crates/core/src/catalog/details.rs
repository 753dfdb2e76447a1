//! What an MCP server or an agent needs beyond the common fields, so a UI or a client can
//! show and reach it: transports and packages of MCP servers, skills and interfaces of agents.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How MCP clients install or reach an MCP server (from its `server.json`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerDetails {
    /// Transport types it speaks: `stdio`, `streamable-http`, `sse`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 63)))]
    pub transports: Vec<String>,
    /// Packages a client can run locally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub packages: Vec<McpPackage>,
    /// Endpoints a client can connect to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub remotes: Vec<McpRemote>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpPackage {
    /// `npm`, `pypi`, `oci`, `nuget`, `mcpb`, `cargo`…
    #[schemars(length(min = 1, max = 63))]
    pub registry_type: String,
    /// The package name (or a download URL).
    #[schemars(length(min = 1, max = 2048))]
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub version: Option<String>,
    /// The transport the package speaks once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub transport: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpRemote {
    /// `streamable-http` or `sse`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub transport: String,
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
}

/// What an A2A agent offers and how to reach it (from its Agent Card).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentDetails {
    /// The agent's preferred endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub protocol_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub skills: Vec<AgentSkill>,
    /// Capabilities it declares true: `streaming`, `pushNotifications`,
    /// `stateTransitionHistory`, and extension URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 2048)))]
    pub capabilities: Vec<String>,
    /// Every endpoint with its transport (`JSONRPC`, `GRPC`, `HTTP+JSON`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub interfaces: Vec<AgentInterface>,
    /// The security schemes it accepts, by name and type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub security_schemes: Vec<SecurityScheme>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 255)))]
    pub input_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 255)))]
    pub output_modes: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentSkill {
    #[schemars(length(min = 1, max = 255))]
    pub id: String,
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 255)))]
    pub tags: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentInterface {
    #[schemars(length(min = 1, max = 63))]
    pub transport: String,
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecurityScheme {
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// `apiKey`, `http`, `oauth2`, `openIdConnect`, `mutualTLS`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub scheme_type: String,
}

/// Bounds of the details, checked with the rest of an asset (see validate.rs).
pub(super) fn check_mcp(details: &McpServerDetails, report: &mut impl FnMut(&str, String)) {
    check_list(&details.transports, 8, 63, "mcp.transports", report);
    if details.packages.len() > 32 {
        report("mcp.packages", "at most 32 packages".into());
    }
    for (i, package) in details.packages.iter().enumerate() {
        check_str(
            &package.registry_type,
            63,
            &format!("mcp.packages[{i}].registryType"),
            report,
        );
        check_str(
            &package.identifier,
            2048,
            &format!("mcp.packages[{i}].identifier"),
            report,
        );
    }
    if details.remotes.len() > 32 {
        report("mcp.remotes", "at most 32 remotes".into());
    }
    for (i, remote) in details.remotes.iter().enumerate() {
        check_str(
            &remote.transport,
            63,
            &format!("mcp.remotes[{i}].type"),
            report,
        );
        check_str(&remote.url, 2048, &format!("mcp.remotes[{i}].url"), report);
    }
}

pub(super) fn check_agent(details: &AgentDetails, report: &mut impl FnMut(&str, String)) {
    if details.skills.len() > 128 {
        report("agent.skills", "at most 128 skills".into());
    }
    for (i, skill) in details.skills.iter().enumerate() {
        check_str(&skill.id, 255, &format!("agent.skills[{i}].id"), report);
        check_str(&skill.name, 255, &format!("agent.skills[{i}].name"), report);
        check_list(
            &skill.tags,
            32,
            255,
            &format!("agent.skills[{i}].tags"),
            report,
        );
    }
    check_list(
        &details.capabilities,
        32,
        2048,
        "agent.capabilities",
        report,
    );
    check_list(&details.input_modes, 32, 255, "agent.inputModes", report);
    check_list(&details.output_modes, 32, 255, "agent.outputModes", report);
    if details.interfaces.len() > 32 {
        report("agent.interfaces", "at most 32 interfaces".into());
    }
    if details.security_schemes.len() > 32 {
        report(
            "agent.securitySchemes",
            "at most 32 security schemes".into(),
        );
    }
}

fn check_list(
    values: &[String],
    max_items: usize,
    max_len: usize,
    field: &str,
    report: &mut impl FnMut(&str, String),
) {
    if values.len() > max_items {
        report(
            field,
            format!("at most {max_items} entries, got {}", values.len()),
        );
    }
    for value in values {
        check_str(value, max_len, field, report);
    }
}

fn check_str(value: &str, max: usize, field: &str, report: &mut impl FnMut(&str, String)) {
    if value.is_empty() || value.len() > max {
        report(field, format!("must be 1 to {max} characters"));
    } else if value.chars().any(char::is_control) {
        report(field, "contains control characters".into());
    }
}

/// A field that failed to read: its path and why.
pub(super) type FieldError = (Option<String>, String);

/// An optional string field of a mapping.
pub(super) fn text_field(
    doc: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match doc.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((Some(field.into()), "must be a string".into())),
    }
}

/// An optional list field of a mapping (absent: empty).
pub(super) fn list_field<'a>(
    doc: &'a serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<&'a [serde_json::Value], FieldError> {
    match doc.get(field) {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(_) => Err((Some(field.into()), "must be a list".into())),
    }
}

/// `text` as a name or tag segment: ASCII lowercase letters, digits, `.`, `_` and `-`, every
/// other run of characters one `-`, starting and ending with a letter or digit, at most `max`
/// bytes. Empty when nothing of `text` is usable.
pub(super) fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Adds `prefix.value` (slugged) to `tags` unless it is there already or `tags` is full: how
/// the ecosystem formats make transports, skills and capabilities filterable as tags.
pub(super) fn push_tag(tags: &mut Vec<String>, prefix: &str, value: &str) {
    let tag = if prefix.is_empty() {
        slug(value, 63)
    } else {
        let rest = slug(value, 63 - prefix.len() - 1);
        if rest.is_empty() {
            String::new()
        } else {
            format!("{prefix}.{rest}")
        }
    };
    if !tag.is_empty() && !tags.contains(&tag) && tags.len() < super::validate::MAX_TAGS {
        tags.push(tag);
    }
}

/// A link for `uri` if it is an absolute URL (templates such as `{baseUrl}/mcp` are not).
pub(super) fn push_link(links: &mut Vec<super::Link>, link_type: &str, uri: &str) {
    let absolute = url::Url::parse(uri).is_ok_and(|u| u.has_host());
    if absolute && uri.len() <= super::validate::MAX_URI && links.len() < super::validate::MAX_LINKS
    {
        links.push(super::Link {
            link_type: link_type.to_owned(),
            uri: uri.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_names() {
        assert_eq!(slug("Recipe Agent", 253), "recipe-agent");
        assert_eq!(slug("  Hello, World!  ", 253), "hello-world");
        assert_eq!(slug("JSONRPC", 63), "jsonrpc");
        assert_eq!(slug("HTTP+JSON", 63), "http-json");
        assert_eq!(slug("日本語", 63), "");
        assert_eq!(slug(&"a".repeat(300), 253).len(), 253);
    }

    #[test]
    fn derived_tags_are_valid_and_unique() {
        let mut tags = Vec::new();
        push_tag(&mut tags, "transport", "streamable-http");
        push_tag(&mut tags, "transport", "streamable-http");
        push_tag(&mut tags, "skill", "Find Recipe!");
        push_tag(&mut tags, "skill", "???");
        assert_eq!(tags, ["transport.streamable-http", "skill.find-recipe"]);
        for tag in &tags {
            crate::catalog::validate_tag(tag).unwrap();
        }
    }
}
