//! How a source's spec shapes its assets: `filter` keeps or drops them by name, `labels` are
//! added to every one (winning over the document's own), and `curation` rules, in order, add
//! tags and set stage and approval for the names their glob matches (later rules win).
//! Globs are matched against the whole asset name; `*` also matches `/`.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::{
    catalog::{Asset, AssetRecord, validate_label_key, validate_label_value, validate_tag},
    crd::{CatalogSourceSpec, CurationRule},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurationError {
    #[error("spec.filter.{list}[{index}]: {message}")]
    Filter {
        list: &'static str,
        index: usize,
        message: String,
    },
    #[error("spec.curation[{index}]: {message}")]
    Rule { index: usize, message: String },
    #[error("spec.labels: {0}")]
    Labels(String),
}

#[derive(Debug, Clone)]
pub struct Curation {
    include: Option<GlobSet>,
    exclude: GlobSet,
    labels: BTreeMap<String, String>,
    rules: Vec<(GlobMatcher, CurationRule)>,
}

fn glob_set(list: &'static str, patterns: &[String]) -> Result<GlobSet, CurationError> {
    let mut builder = GlobSetBuilder::new();
    for (index, pattern) in patterns.iter().enumerate() {
        let glob = Glob::new(pattern).map_err(|e| CurationError::Filter {
            list,
            index,
            message: e.to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| CurationError::Filter {
        list,
        index: 0,
        message: e.to_string(),
    })
}

impl Curation {
    /// Checks and compiles the spec's filter, labels and rules; an error names the field.
    pub fn compile(spec: &CatalogSourceSpec) -> Result<Self, CurationError> {
        let filter = spec.filter.clone().unwrap_or_default();
        let include = if filter.include.is_empty() {
            None
        } else {
            Some(glob_set("include", &filter.include)?)
        };
        let exclude = glob_set("exclude", &filter.exclude)?;
        for (key, value) in &spec.labels {
            validate_label_key(key).map_err(CurationError::Labels)?;
            validate_label_value(value).map_err(CurationError::Labels)?;
        }
        let rules = spec
            .curation
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                for tag in &rule.tags {
                    validate_tag(tag).map_err(|message| CurationError::Rule { index, message })?;
                }
                let matcher = Glob::new(&rule.match_glob)
                    .map_err(|e| CurationError::Rule {
                        index,
                        message: format!("match: {e}"),
                    })?
                    .compile_matcher();
                Ok((matcher, rule.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            include,
            exclude,
            labels: spec.labels.clone(),
            rules,
        })
    }

    pub fn keeps(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(name)) && !self.exclude.is_match(name)
    }

    /// The records the store should hold for these assets.
    pub fn apply(&self, assets: Vec<Asset>) -> Vec<AssetRecord> {
        assets
            .into_iter()
            .filter(|asset| self.keeps(&asset.name))
            .map(|asset| {
                let name = asset.name.clone();
                let mut tags = Vec::new();
                let (mut stage, mut approved) = (None, false);
                for (matcher, rule) in &self.rules {
                    if matcher.is_match(&name) {
                        tags.extend(rule.tags.iter().cloned());
                        if let Some(s) = &rule.stage {
                            stage = Some(s.clone());
                        }
                        if let Some(a) = rule.approved {
                            approved = a;
                        }
                    }
                }
                AssetRecord::curated(asset, self.labels.clone(), tags, stage, approved)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::AssetKind;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> CatalogSourceSpec {
        serde_json::from_value(value).unwrap()
    }

    fn asset(name: &str) -> Asset {
        serde_json::from_value(json!({"kind": "Model", "name": name, "labels": {"team": "doc", "task": "chat"}, "tags": ["llm"]})).unwrap()
    }

    #[test]
    fn filter_labels_and_rules_shape_the_records() {
        let curation = Curation::compile(&spec(json!({
            "source": {"inline": {"assets": []}},
            "filter": {"include": ["granite-*", "llama-*", "ibm/*"], "exclude": ["*-preview"]},
            "labels": {"team": "platform"},
            "curation": [
                {"match": "*", "tags": ["curated"], "stage": "experimental"},
                {"match": "granite-*", "stage": "production", "approved": true},
                {"match": "granite-3-2b", "approved": false, "tags": ["small"]}
            ]
        })))
        .unwrap();
        let records = curation.apply(
            [
                "granite-3-8b",
                "granite-3-2b",
                "llama-3-70b",
                "granite-4-preview",
                "mistral-7b",
                "ibm/granite-code",
            ]
            .map(asset)
            .to_vec(),
        );
        let by_name = |n: &str| records.iter().find(|r| r.name() == n).unwrap();
        assert_eq!(
            records.len(),
            4,
            "mistral not included, the preview excluded"
        );
        let g8 = by_name("granite-3-8b");
        assert_eq!(
            (g8.fields().stage.as_deref(), g8.fields().approved),
            (Some("production"), true)
        );
        assert_eq!(g8.fields().tags, ["curated", "llm"]);
        assert_eq!(
            g8.fields().labels["team"],
            "platform",
            "the source's labels win"
        );
        assert_eq!(g8.fields().labels["task"], "chat");
        let g2 = by_name("granite-3-2b");
        assert_eq!(
            (g2.fields().stage.as_deref(), g2.fields().approved),
            (Some("production"), false),
            "later rules win"
        );
        assert_eq!(g2.fields().tags, ["curated", "llm", "small"]);
        let llama = by_name("llama-3-70b");
        assert_eq!(
            (llama.fields().stage.as_deref(), llama.fields().approved),
            (Some("experimental"), false)
        );
        assert_eq!(by_name("ibm/granite-code").kind(), AssetKind::Model);
    }

    #[test]
    fn curation_changes_the_digest_so_a_refresh_writes_it() {
        let plain =
            Curation::compile(&spec(json!({"source": {"inline": {"assets": []}}}))).unwrap();
        let approving = Curation::compile(&spec(json!({"source": {"inline": {"assets": []}}, "curation": [{"match": "*", "approved": true}]}))).unwrap();
        let a = plain.apply(vec![asset("m")]);
        let b = approving.apply(vec![asset("m")]);
        assert_ne!(a[0].digest(), b[0].digest());
    }

    #[test]
    fn bad_globs_tags_and_labels_name_their_field() {
        let err = Curation::compile(&spec(json!({"source": {"inline": {"assets": []}}, "filter": {"exclude": ["ok", "[unclosed"]}}))).unwrap_err();
        assert!(
            matches!(
                err,
                CurationError::Filter {
                    list: "exclude",
                    index: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = Curation::compile(&spec(json!({"source": {"inline": {"assets": []}}, "curation": [{"match": "*", "tags": ["bad tag"]}]}))).unwrap_err();
        assert_eq!(err.to_string().split(':').next(), Some("spec.curation[0]"));
        let err = Curation::compile(&spec(
            json!({"source": {"inline": {"assets": []}}, "labels": {"Bad Key": "x"}}),
        ))
        .unwrap_err();
        assert!(err.to_string().starts_with("spec.labels"), "{err}");
    }
}
