//! A2A Agent Cards (one, or a list of them), mapped onto `Agent` assets.
//!
//! A card's `name` is a display name ("Recipe Agent"); the asset's name is its slug
//! (`recipe-agent`). The whole card is kept under `metadata.agentCard`.

use serde_json::{Map, Value};

use super::{
    details::{
        AgentDetails, AgentInterface, AgentSkill, FieldError, SecurityScheme, list_field,
        push_link, push_tag, slug, text_field,
    },
    error::{CatalogError, map_items},
    model::{Asset, AssetKind},
    validate::MAX_NAME,
};

/// Where the original Agent Card is kept in an asset's metadata.
pub const AGENT_CARD_KEY: &str = "agentCard";

/// Whether a mapping reads as an Agent Card.
pub(super) fn looks_like_card(top: &Map<String, Value>) -> bool {
    top.contains_key("name")
        && (top.contains_key("skills")
            || top.contains_key("capabilities")
            || top.contains_key("protocolVersion"))
}

/// Cards as assets; `list` names them in errors (`agentCards[3].skills[0].id`).
pub(super) fn cards_to_assets(
    items: Vec<Value>,
    list: &'static str,
) -> Result<Vec<Asset>, CatalogError> {
    map_items(items, list, |card| card_to_asset(card).map(Some))
}

fn card_to_asset(card: Value) -> Result<Asset, FieldError> {
    let Value::Object(doc) = card else {
        return Err((None, "an Agent Card must be a mapping".into()));
    };
    let display =
        text_field(&doc, "name")?.ok_or_else(|| (Some("name".into()), "is required".into()))?;
    let name = slug(&display, MAX_NAME);
    if name.is_empty() {
        return Err((
            Some("name".into()),
            format!("{display:?} has no ASCII letters or digits to make an asset name from"),
        ));
    }
    let mut details = AgentDetails {
        url: text_field(&doc, "url")?,
        protocol_version: text_field(&doc, "protocolVersion")?,
        input_modes: strings(&doc, "defaultInputModes")?,
        output_modes: strings(&doc, "defaultOutputModes")?,
        ..AgentDetails::default()
    };
    let mut tags = Vec::new();
    let mut links = Vec::new();
    for (i, skill) in list_field(&doc, "skills")?.iter().enumerate() {
        let Value::Object(skill) = skill else {
            return Err((Some(format!("skills[{i}]")), "must be a mapping".into()));
        };
        let field = |f: &str| Some(format!("skills[{i}].{f}"));
        let id = text_field(skill, "id")
            .map_err(|(_, m)| (field("id"), m))?
            .ok_or_else(|| (field("id"), "is required".into()))?;
        let skill_tags = strings(skill, "tags").map_err(|(_, m)| (field("tags"), m))?;
        push_tag(&mut tags, "skill", &id);
        for tag in &skill_tags {
            push_tag(&mut tags, "", tag);
        }
        details.skills.push(AgentSkill {
            name: text_field(skill, "name")
                .map_err(|(_, m)| (field("name"), m))?
                .unwrap_or_else(|| id.clone()),
            id,
            description: text_field(skill, "description")
                .map_err(|(_, m)| (field("description"), m))?,
            tags: skill_tags,
        });
    }
    if let Some(capabilities) = doc.get("capabilities").and_then(Value::as_object) {
        for (key, value) in capabilities {
            if value.as_bool() == Some(true) {
                details.capabilities.push(key.clone());
                push_tag(&mut tags, "capability", key);
            }
        }
        for extension in capabilities
            .get("extensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(uri) = extension.get("uri").and_then(Value::as_str) {
                details.capabilities.push(uri.to_owned());
            }
        }
    }
    // The main endpoint speaks the preferred transport (JSON-RPC unless the card says).
    let preferred = text_field(&doc, "preferredTransport")?.unwrap_or_else(|| "JSONRPC".into());
    if let Some(url) = &details.url {
        details.interfaces.push(AgentInterface {
            transport: preferred,
            url: url.clone(),
        });
        push_link(&mut links, "endpoint", url);
    }
    for (i, interface) in list_field(&doc, "additionalInterfaces")?.iter().enumerate() {
        let (Some(url), Some(transport)) = (
            interface.get("url").and_then(Value::as_str),
            interface.get("transport").and_then(Value::as_str),
        ) else {
            return Err((
                Some(format!("additionalInterfaces[{i}]")),
                "needs url and transport strings".into(),
            ));
        };
        let entry = AgentInterface {
            transport: transport.to_owned(),
            url: url.to_owned(),
        };
        if !details.interfaces.contains(&entry) {
            details.interfaces.push(entry);
        }
    }
    for interface in &details.interfaces {
        push_tag(&mut tags, "transport", &interface.transport);
    }
    if let Some(schemes) = doc.get("securitySchemes").and_then(Value::as_object) {
        for (scheme_name, scheme) in schemes {
            let scheme_type = scheme
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            push_tag(&mut tags, "security", scheme_type);
            details.security_schemes.push(SecurityScheme {
                name: scheme_name.clone(),
                scheme_type: scheme_type.to_owned(),
            });
        }
    }
    if let Some(docs) = text_field(&doc, "documentationUrl")? {
        push_link(&mut links, "docs", &docs);
    }
    if let Some(icon) = text_field(&doc, "iconUrl")? {
        push_link(&mut links, "icon", &icon);
    }
    let provider = doc.get("provider");
    if let Some(url) = provider.and_then(|p| p.get("url")).and_then(Value::as_str) {
        push_link(&mut links, "provider", url);
    }
    let provider = provider
        .and_then(|p| p.get("organization"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = text_field(&doc, "version")?.unwrap_or_default();
    let description = text_field(&doc, "description")?;
    let mut metadata = Map::new();
    metadata.insert(AGENT_CARD_KEY.into(), Value::Object(doc));
    Ok(Asset {
        kind: AssetKind::Agent,
        name,
        version,
        display_name: Some(display),
        description,
        provider,
        license: None,
        tags,
        labels: Default::default(),
        links,
        metadata: Some(Value::Object(metadata)),
        mcp: None,
        agent: Some(details),
    })
}

fn strings(doc: &Map<String, Value>, field: &str) -> Result<Vec<String>, FieldError> {
    list_field(doc, field)?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| (Some(field.into()), "must be a list of strings".into()))
}

#[cfg(test)]
mod tests {
    use crate::catalog::{AssetKind, Limits, parse_document};

    pub const CARD: &str = r#"{
  "protocolVersion": "0.3.0",
  "name": "Recipe Agent",
  "description": "Finds recipes and plans meals",
  "url": "https://agents.example.com/recipes/a2a",
  "preferredTransport": "JSONRPC",
  "additionalInterfaces": [
    {"url": "https://agents.example.com/recipes/a2a", "transport": "JSONRPC"},
    {"url": "https://agents.example.com/recipes/grpc", "transport": "GRPC"}
  ],
  "provider": {"organization": "Example Foods", "url": "https://example.com"},
  "version": "2.1.0",
  "documentationUrl": "https://docs.example.com/recipes",
  "capabilities": {"streaming": true, "pushNotifications": false},
  "securitySchemes": {"corp": {"type": "openIdConnect", "openIdConnectUrl": "https://id.example.com"}},
  "security": [{"corp": []}],
  "defaultInputModes": ["text/plain"],
  "defaultOutputModes": ["text/plain", "application/json"],
  "skills": [
    {"id": "find-recipe", "name": "Find recipe", "description": "Search recipes", "tags": ["cooking", "search"]},
    {"id": "plan_week", "name": "Plan a week", "tags": ["planning"]}
  ]
}"#;

    #[test]
    fn an_agent_card_is_one_agent() {
        let assets = parse_document(CARD.as_bytes(), Limits::default()).expect("valid");
        assert_eq!(assets.len(), 1);
        let agent = &assets[0];
        assert_eq!(agent.kind, AssetKind::Agent);
        assert_eq!(agent.name, "recipe-agent");
        assert_eq!(agent.display_name.as_deref(), Some("Recipe Agent"));
        assert_eq!(agent.version, "2.1.0");
        assert_eq!(agent.provider.as_deref(), Some("Example Foods"));
        let details = agent.agent.as_ref().unwrap();
        assert_eq!(details.skills.len(), 2);
        assert_eq!(details.capabilities, ["streaming"]);
        assert_eq!(
            details.interfaces.len(),
            2,
            "the duplicate interface is one"
        );
        assert_eq!(details.security_schemes[0].scheme_type, "openIdConnect");
        for tag in [
            "skill.find-recipe",
            "skill.plan_week",
            "cooking",
            "capability.streaming",
            "transport.grpc",
            "security.openidconnect",
        ] {
            assert!(
                agent.tags.contains(&tag.to_owned()),
                "{tag} in {:?}",
                agent.tags
            );
        }
        let original: serde_json::Value = serde_json::from_str(CARD).unwrap();
        assert_eq!(agent.metadata.as_ref().unwrap()["agentCard"], original);
    }

    #[test]
    fn a_list_of_cards_is_many_agents() {
        let doc =
            r#"[{"name": "Triage Bot", "skills": []}, {"name": "Support", "capabilities": {}}]"#;
        let assets = parse_document(doc.as_bytes(), Limits::default()).unwrap();
        let names: Vec<_> = assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["triage-bot", "support"]);
    }

    #[test]
    fn a_card_without_a_usable_name_is_refused_by_index() {
        let doc = r#"[{"name": "ok", "skills": []}, {"name": "???", "skills": []}]"#;
        let err = parse_document(doc.as_bytes(), Limits::default()).unwrap_err();
        assert!(err.to_string().contains("agentCards[1].name"), "{err}");
    }
}
