//! Deciding one admission request, without I/O: which custom verbs it needs, whether the
//! spec makes sense beyond what the CRD schema checks, what to look up for warnings, and the
//! audit event it becomes. The handler asks the questions this module lists.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    access::identity::UserInfo,
    catalog::{canonical_json, validate_assets},
    crd::{CHANGE_REASON_ANNOTATION, CatalogSource, CatalogSourceSpec, RefreshJob},
    decisions::curation::Curation,
    store::{Namespace, NewAuditEvent},
};

/// The resources the webhook is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    CatalogSources,
    RefreshJobs,
}

impl Resource {
    pub fn parse(plural: &str) -> Option<Self> {
        match plural {
            "catalogsources" => Some(Self::CatalogSources),
            "refreshjobs" => Some(Self::RefreshJobs),
            _ => None,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::CatalogSources => "catalogsources",
            Self::RefreshJobs => "refreshjobs",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The finer actions on `catalogsources` that RBAC grants separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CustomVerb {
    /// Turning `spec.curation[].approved` on or off.
    Approve,
    /// Changing a `spec.curation[].stage`.
    Promote,
}

impl CustomVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Promote => "promote",
        }
    }
}

/// What the webhook needs from an AdmissionRequest, already typed.
#[derive(Clone, Debug)]
pub struct Request {
    /// The apiserver's request uid: the audit event's request id and idempotency key.
    pub uid: String,
    pub resource: Resource,
    pub operation: Operation,
    pub namespace: String,
    pub name: String,
    pub user: UserInfo,
    /// The object after the change (CREATE, UPDATE).
    pub object: Option<Value>,
    /// The object before the change (UPDATE, DELETE).
    pub old_object: Option<Value>,
    pub dry_run: bool,
}

/// Something in the cluster the spec refers to; a missing one is a warning, not a denial
/// (GitOps tools apply a source and its Secret in either order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Secret(String),
    ConfigMap(String),
    Source(String),
}

impl Reference {
    pub fn missing_warning(&self, namespace: &str) -> String {
        match self {
            Self::Secret(name) => format!("Secret {namespace}/{name} does not exist (yet)"),
            Self::ConfigMap(name) => format!("ConfigMap {namespace}/{name} does not exist (yet)"),
            Self::Source(name) => {
                format!("CatalogSource {namespace}/{name} does not exist (yet)")
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Custom verbs to check with a SubjectAccessReview, in order.
    pub verbs: Vec<CustomVerb>,
    /// The spec is invalid: deny with this message.
    pub invalid: Option<String>,
    pub warnings: Vec<String>,
    pub references: Vec<Reference>,
    /// A metadata-only update (finalizers, owner references, managed fields): admitted
    /// without an audit event, since it changes nothing a person asked for.
    pub housekeeping: bool,
    pub reason: Option<String>,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub object_uid: Option<String>,
}

impl Plan {
    /// The verb the audit trail shows: the finest action the change took.
    pub fn audit_verb(&self, operation: Operation) -> &'static str {
        match operation {
            Operation::Update => self.verbs.first().map_or(operation.verb(), |v| v.as_str()),
            _ => operation.verb(),
        }
    }
}

/// The outcome the webhook reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Denied because a permission is missing (or could not be checked).
    Forbidden(String),
    /// Denied because the object is invalid.
    Invalid(String),
}

/// Sha-256 of the canonical JSON of a value (the spec), as the audit trail's digests.
fn spec_digest(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(value).as_bytes()))
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn annotation(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CHANGE_REASON_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .map(str::to_owned)
}

/// Everything but the fields the apiserver and controllers maintain.
fn meaningful(object: &Value) -> Value {
    json!({
        "spec": object.get("spec"),
        "labels": object.pointer("/metadata/labels"),
        "annotations": object.pointer("/metadata/annotations").map(|a| {
            let mut a = a.clone();
            if let Some(map) = a.as_object_mut() {
                // kubectl's copy of the last applied object changes with every apply.
                map.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
            a
        }),
        "deleting": object.pointer("/metadata/deletionTimestamp").is_some(),
    })
}

/// `(match, approved)` and `(match, stage)` of the rules that set them, in order: rules apply
/// in order and later ones win, so any difference here can change an outcome.
/// `(match, approved)` pairs and `(match, stage)` pairs.
type Projection<'a> = (Vec<(&'a str, bool)>, Vec<(&'a str, &'a str)>);

fn curation_projection(spec: &CatalogSourceSpec) -> Projection<'_> {
    let approvals = spec
        .curation
        .iter()
        .filter_map(|r| r.approved.map(|a| (r.match_glob.as_str(), a)))
        .collect();
    let stages = spec
        .curation
        .iter()
        .filter_map(|r| r.stage.as_deref().map(|s| (r.match_glob.as_str(), s)))
        .collect();
    (approvals, stages)
}

/// The custom verbs a change from `old` to `new` needs.
pub fn required_verbs(
    old: Option<&CatalogSourceSpec>,
    new: Option<&CatalogSourceSpec>,
) -> Vec<CustomVerb> {
    let Some(new) = new else {
        // Deleting a source is RBAC's `delete`, nothing finer.
        return Vec::new();
    };
    let (new_approvals, new_stages) = curation_projection(new);
    let mut verbs = Vec::new();
    match old {
        None => {
            if new_approvals.iter().any(|(_, approved)| *approved) {
                verbs.push(CustomVerb::Approve);
            }
            if !new_stages.is_empty() {
                verbs.push(CustomVerb::Promote);
            }
        }
        Some(old) => {
            let (old_approvals, old_stages) = curation_projection(old);
            if old_approvals != new_approvals {
                verbs.push(CustomVerb::Approve);
            }
            if old_stages != new_stages {
                verbs.push(CustomVerb::Promote);
            }
        }
    }
    verbs
}

/// Semantic checks of a CatalogSource spec; `Err` is the denial message.
fn check_source(
    spec: &CatalogSourceSpec,
    allow_http: bool,
    warnings: &mut Vec<String>,
    references: &mut Vec<Reference>,
) -> Result<(), String> {
    Curation::compile(spec).map_err(|e| e.to_string())?;
    let source = &spec.source;
    let kinds = [
        source.inline.is_some(),
        source.config_map.is_some(),
        source.url.is_some(),
        source.mcp_registry.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(
            "spec.source: set exactly one of inline, configMap, url and mcpRegistry".into(),
        );
    }
    if let Some(inline) = &source.inline {
        validate_assets(&inline.assets, "spec.source.inline.assets").map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            text.join("; ")
        })?;
        // A rule that matches nothing is allowed (the catalog may grow into it), but say so.
        for (index, rule) in spec.curation.iter().enumerate() {
            let matcher = globset::Glob::new(&rule.match_glob)
                .map_err(|e| format!("spec.curation[{index}]: {e}"))?
                .compile_matcher();
            if !inline.assets.iter().any(|a| matcher.is_match(&a.name)) {
                warnings.push(format!(
                    "spec.curation[{index}]: {:?} matches no inline asset",
                    rule.match_glob
                ));
            }
        }
    }
    if let Some(config_map) = &source.config_map {
        references.push(Reference::ConfigMap(config_map.name.clone()));
    }
    if let Some(url) = &source.url {
        check_fetched_url("spec.source.url.url", &url.url, allow_http, warnings)?;
        if let Some(secret) = &url.secret_ref {
            references.push(Reference::Secret(secret.name.clone()));
        }
    }
    if let Some(registry) = &source.mcp_registry {
        check_fetched_url(
            "spec.source.mcpRegistry.url",
            &registry.url,
            allow_http,
            warnings,
        )?;
        if let Some(secret) = &registry.secret_ref {
            references.push(Reference::Secret(secret.name.clone()));
        }
    }
    Ok(())
}

/// A URL the controller will fetch: https (http only where allowed, with a warning), and no
/// credentials in it.
fn check_fetched_url(
    field: &str,
    url: &str,
    allow_http: bool,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{field}: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => warnings.push(format!(
            "{field} uses plain http: the catalog can be read or changed in transit"
        )),
        scheme => {
            return Err(format!(
                "{field}: scheme {scheme:?} is not allowed; use https"
            ));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{field}: credentials in the URL are not allowed; use secretRef"
        ));
    }
    Ok(())
}

fn typed<T: serde::de::DeserializeOwned>(object: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(object.clone()).map_err(|e| format!("{what}: {e}"))
}

/// Plans the checks for one request.
pub fn plan(request: &Request, allow_http: bool) -> Plan {
    let mut plan = Plan {
        before_digest: request
            .old_object
            .as_ref()
            .and_then(|o| o.get("spec"))
            .map(spec_digest),
        after_digest: request
            .object
            .as_ref()
            .and_then(|o| o.get("spec"))
            .map(spec_digest),
        object_uid: request
            .object
            .as_ref()
            .or(request.old_object.as_ref())
            .and_then(|o| text(o, "/metadata/uid"))
            .map(str::to_owned),
        ..Plan::default()
    };
    if request.operation == Operation::Update
        && let (Some(old), Some(new)) = (&request.old_object, &request.object)
        && meaningful(old) == meaningful(new)
    {
        plan.housekeeping = true;
        return plan;
    }
    // The why: the reason on the object as it will be (as it was, for a delete).
    let current = request.object.as_ref().or(request.old_object.as_ref());
    match request.resource {
        Resource::CatalogSources => {
            plan.reason = current.and_then(annotation);
            let parse = |object: &Option<Value>, what: &str| {
                object
                    .as_ref()
                    .map(|o| typed::<CatalogSource>(o, what).map(|s| s.spec))
                    .transpose()
            };
            let (old, new) = match (
                parse(&request.old_object, "oldObject"),
                parse(&request.object, "object"),
            ) {
                (Ok(old), Ok(new)) => (old, new),
                (Err(e), _) | (_, Err(e)) => {
                    plan.invalid = Some(e);
                    return plan;
                }
            };
            plan.verbs = required_verbs(old.as_ref(), new.as_ref());
            if let Some(new) = &new
                && let Err(message) =
                    check_source(new, allow_http, &mut plan.warnings, &mut plan.references)
            {
                plan.invalid = Some(message);
            }
        }
        Resource::RefreshJobs => {
            let job = match current
                .map(|o| typed::<RefreshJob>(o, "object"))
                .transpose()
            {
                Ok(job) => job,
                Err(e) => {
                    plan.invalid = Some(e);
                    return plan;
                }
            };
            plan.reason = job
                .as_ref()
                .and_then(|j| j.spec.reason.clone())
                .filter(|r| !r.trim().is_empty())
                .or_else(|| current.and_then(annotation));
            if request.operation != Operation::Delete
                && let Some(job) = &job
            {
                match (&job.spec.source_ref, &job.spec.selector) {
                    (Some(source), None) => {
                        plan.references.push(Reference::Source(source.name.clone()));
                    }
                    (None, Some(_)) => {}
                    _ => {
                        plan.invalid =
                            Some("spec: set exactly one of sourceRef and selector".into());
                    }
                }
            }
        }
    }
    plan
}

/// The denial message for a custom verb the user lacks, naming the permission.
pub fn forbidden_message(request: &Request, verb: CustomVerb, reason: &str) -> String {
    let mut message = format!(
        "user {:?} cannot {} catalogsources.curio.dev {:?} in namespace {:?}: changing {} needs the {:?} verb on catalogsources in API group \"curio.dev\"",
        request.user.username,
        verb.as_str(),
        request.name,
        request.namespace,
        match verb {
            CustomVerb::Approve => "spec.curation[].approved",
            CustomVerb::Promote => "spec.curation[].stage",
        },
        verb.as_str(),
    );
    if !reason.is_empty() {
        message.push_str(&format!(" ({reason})"));
    }
    message
}

/// The audit event one decided request becomes.
pub fn audit_event(
    request: &Request,
    plan: &Plan,
    verdict: &Verdict,
    warnings: &[String],
    occurred_at: DateTime<Utc>,
) -> Result<NewAuditEvent, String> {
    let namespace = Namespace::new(&request.namespace).map_err(|e| e.to_string())?;
    let (allowed, message) = match verdict {
        Verdict::Admit => (true, None),
        Verdict::Forbidden(m) | Verdict::Invalid(m) => (false, Some(m.clone())),
    };
    let mut details = json!({
        "admission": {
            "operation": request.operation.verb(),
            "allowed": allowed,
        },
        "user": {
            "uid": request.user.uid,
            "extra": request.user.extra,
        },
    });
    if let Some(message) = message {
        details["admission"]["message"] = message.into();
    }
    if !plan.verbs.is_empty() {
        details["admission"]["checkedVerbs"] = plan
            .verbs
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .into();
    }
    if !warnings.is_empty() {
        details["admission"]["warnings"] = warnings.to_vec().into();
    }
    Ok(NewAuditEvent {
        namespace,
        occurred_at,
        actor: request.user.username.clone(),
        actor_groups: request.user.groups.clone(),
        verb: plan.audit_verb(request.operation).into(),
        resource: request.resource.plural().into(),
        object_name: request.name.clone(),
        object_uid: plan.object_uid.clone(),
        before_digest: plan.before_digest.clone(),
        after_digest: plan.after_digest.clone(),
        reason: plan.reason.clone(),
        request_id: Some(request.uid.clone()),
        client: None,
        details: Some(details),
        idempotency_key: Some(format!("admission/{}", request.uid)),
    })
}

/// The user as the apiserver reported it.
pub fn user_info(user: &k8s_openapi::api::authentication::v1::UserInfo) -> UserInfo {
    UserInfo {
        username: user.username.clone().unwrap_or_default(),
        uid: user.uid.clone().filter(|u| !u.is_empty()),
        groups: user.groups.clone().unwrap_or_default(),
        extra: user
            .extra
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curio_core::fixtures::{catalog_source, inline_spec, refresh_job};

    fn source(curation: Value) -> Value {
        catalog_source("team-a", "models")
            .uid("u-1")
            .reason("onboarding")
            .spec(inline_spec(json!([
                {"kind": "Model", "name": "granite-3-8b"}, {"kind": "Model", "name": "llama-3"}])))
            .spec_field("curation", curation)
            .json()
    }

    fn request(operation: Operation, old: Option<Value>, new: Option<Value>) -> Request {
        Request {
            uid: "req-1".into(),
            resource: Resource::CatalogSources,
            operation,
            namespace: "team-a".into(),
            name: "models".into(),
            user: UserInfo::authenticated("alice".into(), None, vec!["team-a".into()]),
            object: new,
            old_object: old,
            dry_run: false,
        }
    }

    #[test]
    fn approving_and_promoting_need_their_verbs() {
        let old = source(json!([{"match": "granite-*", "tags": ["ibm"]}]));
        let approve = source(json!([{"match": "granite-*", "tags": ["ibm"], "approved": true}]));
        let promote =
            source(json!([{"match": "granite-*", "tags": ["ibm"], "stage": "production"}]));
        let both = source(json!([{"match": "granite-*", "approved": true, "stage": "staging"}]));
        let retag = source(json!([{"match": "granite-*", "tags": ["ibm", "llm"]}]));
        let cases = [
            (&approve, vec![CustomVerb::Approve]),
            (&promote, vec![CustomVerb::Promote]),
            (&both, vec![CustomVerb::Approve, CustomVerb::Promote]),
            (&retag, vec![]),
        ];
        for (new, verbs) in cases {
            let plan = plan(
                &request(Operation::Update, Some(old.clone()), Some(new.clone())),
                false,
            );
            assert_eq!(plan.verbs, verbs, "{new}");
            assert_eq!(plan.invalid, None);
        }
        // Turning approval off is an approval decision too.
        let plan_off = plan(
            &request(Operation::Update, Some(approve.clone()), Some(old.clone())),
            false,
        );
        assert_eq!(plan_off.verbs, vec![CustomVerb::Approve]);
        assert_eq!(plan_off.audit_verb(Operation::Update), "approve");
        // Reordering rules that set approval can change the outcome (later rules win).
        let two = source(
            json!([{"match": "*", "approved": true}, {"match": "llama-*", "approved": false}]),
        );
        let swapped = source(
            json!([{"match": "llama-*", "approved": false}, {"match": "*", "approved": true}]),
        );
        assert_eq!(
            plan(&request(Operation::Update, Some(two), Some(swapped)), false).verbs,
            vec![CustomVerb::Approve]
        );
    }

    #[test]
    fn creating_an_approving_source_needs_approve_but_deleting_does_not() {
        let approving = source(json!([{"match": "granite-*", "approved": true}]));
        let unapproving = source(json!([{"match": "granite-*", "approved": false}]));
        assert_eq!(
            plan(
                &request(Operation::Create, None, Some(approving.clone())),
                false
            )
            .verbs,
            vec![CustomVerb::Approve]
        );
        assert!(
            plan(&request(Operation::Create, None, Some(unapproving)), false)
                .verbs
                .is_empty()
        );
        let delete = plan(&request(Operation::Delete, Some(approving), None), false);
        assert!(delete.verbs.is_empty());
        assert_eq!(delete.reason.as_deref(), Some("onboarding"));
        assert!(delete.before_digest.is_some() && delete.after_digest.is_none());
    }

    #[test]
    fn metadata_only_updates_are_housekeeping() {
        let old = source(json!([]));
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["curio.dev/cleanup"]);
        new["metadata"]["resourceVersion"] = json!("42");
        assert!(
            plan(
                &request(Operation::Update, Some(old.clone()), Some(new)),
                false
            )
            .housekeeping
        );
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"team": "a"});
        assert!(
            !plan(
                &request(Operation::Update, Some(old), Some(relabelled)),
                false
            )
            .housekeeping
        );
    }

    #[test]
    fn semantic_validation_denies_bad_specs_and_warns_on_odd_ones() {
        let mut bad_glob = source(json!([{"match": "granite-[", "approved": false}]));
        let plan_bad = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            false,
        );
        assert!(
            plan_bad
                .invalid
                .as_deref()
                .is_some_and(|m| m.contains("spec.curation[0]"))
        );

        let nothing = source(json!([{"match": "mistral-*", "tags": ["x"]}]));
        let plan_nothing = plan(&request(Operation::Create, None, Some(nothing)), false);
        assert_eq!(plan_nothing.invalid, None);
        assert!(plan_nothing.warnings[0].contains("matches no inline asset"));

        bad_glob["spec"] = json!({"source": {"url": {"url": "http://catalog.example.com/models.yaml",
                                                     "secretRef": {"name": "catalog-token"}}}});
        let http = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            false,
        );
        assert!(
            http.invalid
                .as_deref()
                .is_some_and(|m| m.contains("use https"))
        );
        let allowed = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            true,
        );
        assert_eq!(allowed.invalid, None);
        assert_eq!(
            allowed.references,
            vec![Reference::Secret("catalog-token".into())]
        );

        bad_glob["spec"] =
            json!({"source": {"url": {"url": "https://user:pw@catalog.example.com/x"}}});
        let creds = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            false,
        );
        assert!(
            creds
                .invalid
                .as_deref()
                .is_some_and(|m| m.contains("secretRef"))
        );

        // A registry source's URL is held to the same rules, and its Secret is a reference.
        bad_glob["spec"] = json!({"source": {"mcpRegistry": {"url": "http://registry.example.com",
                                                             "secretRef": {"name": "registry-token"}}}});
        let registry_http = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            false,
        );
        assert!(
            registry_http.invalid.as_deref().is_some_and(|m| m
                .contains("spec.source.mcpRegistry.url")
                && m.contains("use https")),
            "{:?}",
            registry_http.invalid
        );
        let registry_allowed = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            true,
        );
        assert_eq!(registry_allowed.invalid, None);
        assert_eq!(
            registry_allowed.references,
            vec![Reference::Secret("registry-token".into())]
        );
        bad_glob["spec"] =
            json!({"source": {"mcpRegistry": {"url": "https://user:pw@registry.example.com"}}});
        let registry_creds = plan(
            &request(Operation::Create, None, Some(bad_glob.clone())),
            false,
        );
        assert!(
            registry_creds
                .invalid
                .as_deref()
                .is_some_and(|m| m.contains("secretRef"))
        );

        bad_glob["spec"] = json!({"source": {"inline": {"assets": [
            {"kind": "Model", "name": "a"}, {"kind": "Model", "name": "a"}]}}});
        let duplicate = plan(&request(Operation::Create, None, Some(bad_glob)), false);
        assert!(duplicate.invalid.is_some());
    }

    #[test]
    fn refresh_jobs_take_their_reason_from_the_spec() {
        let job = refresh_job("team-a", "refresh")
            .uid("j-1")
            .for_source("models")
            .spec_field("reason", "quarterly review".into())
            .json();
        let mut req = request(Operation::Create, None, Some(job));
        req.resource = Resource::RefreshJobs;
        let plan = plan(&req, false);
        assert_eq!(plan.reason.as_deref(), Some("quarterly review"));
        assert_eq!(plan.references, vec![Reference::Source("models".into())]);
        let event = audit_event(&req, &plan, &Verdict::Admit, &[], Utc::now()).unwrap();
        assert_eq!(
            (
                event.verb.as_str(),
                event.resource.as_str(),
                event.actor.as_str()
            ),
            ("create", "refreshjobs", "alice")
        );
        assert_eq!(event.idempotency_key.as_deref(), Some("admission/req-1"));
        assert_eq!(event.object_uid.as_deref(), Some("j-1"));
    }

    #[test]
    fn denials_are_recorded_with_their_message() {
        let req = request(
            Operation::Update,
            Some(source(json!([]))),
            Some(source(json!([{"match": "*", "approved": true}]))),
        );
        let plan = plan(&req, false);
        let message = forbidden_message(&req, CustomVerb::Approve, "");
        assert!(message.contains("\"approve\" verb"), "{message}");
        let event = audit_event(
            &req,
            &plan,
            &Verdict::Forbidden(message.clone()),
            &[],
            Utc::now(),
        )
        .unwrap();
        let details = event.details.unwrap();
        assert_eq!(details["admission"]["allowed"], false);
        assert_eq!(details["admission"]["message"], message);
        assert_eq!(event.verb, "approve");
    }
}
