//! Label and field selectors of the `catalog.curio.dev` lists and watches, as store queries,
//! and the same test applied to one watch event.

use serde_json::Value;

use crate::{
    api::{error::ApiError, selector::parse_selector},
    store::{AssetQuery, LabelRequirement, entity::asset},
};
use curio_core::{
    catalog::search_terms,
    catalog_api::{NAME_LABEL, SOURCE_LABEL},
};

/// The fields a `fieldSelector` may name (equality only).
pub const FIELDS: [&str; 7] = [
    "metadata.name",
    "metadata.namespace",
    "spec.name",
    "spec.version",
    "status.source",
    "status.stage",
    "status.approved",
];

/// Narrows `query` by the selectors. The synthesized labels become the filters they stand for.
pub fn apply(
    query: &mut AssetQuery,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(selector) = label_selector {
        for requirement in parse_selector(selector)? {
            match &requirement {
                LabelRequirement::Equals(k, v) if k == SOURCE_LABEL => {
                    query.sources = vec![v.clone()]
                }
                LabelRequirement::In(k, values) if k == SOURCE_LABEL => {
                    query.sources = values.clone()
                }
                LabelRequirement::Equals(k, v) if k == NAME_LABEL => query.name = Some(v.clone()),
                LabelRequirement::Equals(k, _)
                | LabelRequirement::NotEquals(k, _)
                | LabelRequirement::In(k, _)
                | LabelRequirement::NotIn(k, _)
                | LabelRequirement::Exists(k)
                | LabelRequirement::NotExists(k)
                    if k == SOURCE_LABEL || k == NAME_LABEL =>
                {
                    return Err(ApiError::BadRequest(format!(
                        "label {k} supports = (and, for {SOURCE_LABEL}, in) only"
                    )));
                }
                _ => query.labels.push(requirement),
            }
        }
    }
    if let Some(selector) = field_selector {
        for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value) = part
                .split_once("==")
                .or_else(|| part.split_once('='))
                .filter(|(f, _)| !f.ends_with('!'))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "invalid fieldSelector {part:?}: only field=value is supported, on {}",
                        FIELDS.join(", ")
                    ))
                })?;
            let value = value.to_owned();
            match field.trim() {
                "metadata.name" => query.object_name = Some(value),
                // The namespace is the route's; a different one matches nothing.
                "metadata.namespace" => query.namespace = Some(value),
                "spec.name" => query.name = Some(value),
                "spec.version" => query.version = Some(value),
                "status.source" => query.sources = vec![value],
                "status.stage" => query.stages = vec![value],
                "status.approved" => {
                    query.approved = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ApiError::BadRequest(format!(
                                "status.approved must be true or false, got {value:?}"
                            )));
                        }
                    })
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "field label not supported: {other} (supported: {})",
                        FIELDS.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

fn label<'a>(labels: &'a Value, key: &str) -> Option<&'a str> {
    labels.get(key).and_then(Value::as_str)
}

/// Whether one watch event's asset passes `query`. A deletion is matched on its identity only
/// (its labels are gone with it): a client told of a deletion it never saw ignores it.
pub fn matches(query: &AssetQuery, a: &asset::Model, deleted: bool) -> bool {
    let identity = query
        .object_name
        .as_ref()
        .is_none_or(|n| *n == a.object_name)
        && query.namespace.as_ref().is_none_or(|n| *n == a.namespace)
        && query.name.as_ref().is_none_or(|n| *n == a.name)
        && query.version.as_ref().is_none_or(|v| *v == a.version)
        && (query.sources.is_empty() || query.sources.contains(&a.source));
    if deleted || !identity {
        return identity;
    }
    let tags_match = query.tags.is_empty()
        || a.tags.as_array().is_some_and(|tags| {
            tags.iter().any(|t| {
                t.as_str()
                    .is_some_and(|t| query.tags.iter().any(|q| q == t))
            })
        });
    let text_match = query.text.as_ref().is_none_or(|q| {
        search_terms::matches(q, &a.name, a.display_name.as_deref(), &a.description_terms)
    });
    tags_match
        && text_match
        && (query.stages.is_empty() || a.stage.as_ref().is_some_and(|s| query.stages.contains(s)))
        && query.approved.is_none_or(|want| want == a.approved)
        && query.labels.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => label(&a.labels, k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => label(&a.labels, k) != Some(v.as_str()),
            LabelRequirement::In(k, values) => {
                label(&a.labels, k).is_some_and(|l| values.iter().any(|v| v == l))
            }
            LabelRequirement::NotIn(k, values) => {
                label(&a.labels, k).is_none_or(|l| !values.iter().any(|v| v == l))
            }
            LabelRequirement::Exists(k) => label(&a.labels, k).is_some(),
            LabelRequirement::NotExists(k) => label(&a.labels, k).is_none(),
        })
}
