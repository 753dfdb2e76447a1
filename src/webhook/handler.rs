//! `POST /validate`: one AdmissionReview in, one out. Plans the request, asks the authorizer
//! for the custom verbs, looks up what the spec refers to, records the audit event and
//! answers. Fails closed: no decision or no audit trail means the change is refused.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::{
    DynamicObject,
    admission::{self, AdmissionRequest, AdmissionResponse, AdmissionReview},
};

use super::metrics::{AdmissionLabels, AdmissionMetrics};
use super::review::{
    self, CustomVerb, Operation, Plan, Reference, Request, Resource, Verdict, forbidden_message,
};
use crate::{
    access::authz::{Attributes, Authorizer, Decision},
    cluster::{Cluster, EventNote, policies::Policies},
    crd::CatalogSource,
    decisions::policy,
    store::Store,
};

/// How long a warning's lookup of a referenced object may take.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Where the apiserver sends reviews (the ValidatingWebhookConfiguration's path).
pub const VALIDATE_PATH: &str = "/validate";

pub struct Webhook {
    pub store: Store,
    /// Answers the `approve` and `promote` questions; uncached, so a grant or a revocation
    /// takes effect at once.
    pub authorizer: Arc<dyn Authorizer>,
    /// Looks up referenced Secrets, ConfigMaps and sources (for warnings) and records Events.
    pub cluster: Option<Arc<dyn Cluster>>,
    /// Lets URL sources use plain http.
    pub allow_http: bool,
    /// The CatalogPolicies a source must keep to (`None`: none are enforced at admission).
    pub policies: Option<Policies>,
    /// Shared with the controller, whose metrics address serves them.
    pub metrics: AdmissionMetrics,
}

pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(webhook)
}

async fn validate(State(webhook): State<Arc<Webhook>>, body: Bytes) -> Response {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            let response = AdmissionResponse::invalid(format!("not an AdmissionReview: {e}"));
            return (StatusCode::BAD_REQUEST, Json(response.into_review())).into_response();
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            let response = AdmissionResponse::invalid("the AdmissionReview has no request");
            return (StatusCode::BAD_REQUEST, Json(response.into_review())).into_response();
        }
    };
    Json(webhook.review(&request).await.into_review()).into_response()
}

fn typed_request(request: &AdmissionRequest<DynamicObject>) -> Option<Request> {
    let resource = Resource::parse(&request.resource.resource)?;
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return None;
    }
    let operation = match request.operation {
        admission::Operation::Create => Operation::Create,
        admission::Operation::Update => Operation::Update,
        admission::Operation::Delete => Operation::Delete,
        admission::Operation::Connect => return None,
    };
    let to_value =
        |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let object = to_value(&request.object);
    let name = if request.name.is_empty() {
        // generateName: the apiserver fills the name in before validation; fall back to it.
        object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned()
    } else {
        request.name.clone()
    };
    Some(Request {
        uid: request.uid.clone(),
        resource,
        operation,
        namespace: request.namespace.clone().unwrap_or_default(),
        name,
        user: review::user_info(&request.user_info),
        object,
        old_object: to_value(&request.old_object),
        dry_run: request.dry_run,
    })
}

fn deny(response: AdmissionResponse, code: u16, reason: &str, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = code;
    response.result.reason = reason.into();
    response
}

impl Webhook {
    /// Decides one request. Never panics and never admits without a recorded event (except
    /// dry runs and metadata-only updates, which change nothing a person asked for).
    pub async fn review(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let started = std::time::Instant::now();
        let response = self.decide(request).await;
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        response
    }

    fn count(&self, request: &Request, outcome: &str) {
        self.metrics
            .reviews
            .get_or_create(&AdmissionLabels {
                resource: request.resource.plural().into(),
                operation: request.operation.verb().into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    async fn decide(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let response = AdmissionResponse::from(request);
        let Some(request) = typed_request(request) else {
            // Not a change this webhook judges (a subresource, CONNECT, another resource the
            // configuration should not have sent): not ours to refuse.
            tracing::debug!(resource = %request.resource.resource, "admission request outside the webhook's scope");
            return response;
        };
        let plan = review::plan(&request, self.allow_http);
        if plan.housekeeping {
            self.count(&request, "skipped");
            return response;
        }
        let verdict = self.verdict(&request, &plan).await;
        let warnings = if verdict == Verdict::Admit {
            self.warnings(&request, &plan).await
        } else {
            Vec::new()
        };
        if !request.dry_run {
            // The change is recorded before it is admitted: no audit row, no change.
            match review::audit_event(&request, &plan, &verdict, &warnings, Utc::now()) {
                Ok(event) => {
                    if let Err(e) = self.store.record_audit_events(&[event]).await {
                        tracing::error!(error = %e, uid = %request.uid, "recording an admission audit event failed; refusing the request");
                        if verdict == Verdict::Admit {
                            self.count(&request, "audit_unavailable");
                            return deny(
                                response,
                                503,
                                "ServiceUnavailable",
                                "Curio cannot record this change in its audit trail (database unavailable); try again later",
                            );
                        }
                    }
                }
                Err(e) => {
                    return deny(response, 400, "BadRequest", &format!("namespace: {e}"));
                }
            }
        }
        tracing::info!(
            uid = %request.uid,
            user = %request.user.username,
            operation = request.operation.verb(),
            resource = request.resource.plural(),
            namespace = %request.namespace,
            name = %request.name,
            dry_run = request.dry_run,
            allowed = verdict == Verdict::Admit,
            "admission review"
        );
        self.count(
            &request,
            match verdict {
                Verdict::Admit => "admitted",
                Verdict::Forbidden(_) => "forbidden",
                Verdict::Invalid(_) => "invalid",
            },
        );
        match verdict {
            Verdict::Admit => {
                if !request.dry_run {
                    self.record_transitions(&request, &plan);
                }
                let mut response = response;
                if !warnings.is_empty() {
                    response.warnings = Some(warnings);
                }
                response
            }
            Verdict::Forbidden(message) => deny(response, 403, "Forbidden", &message),
            Verdict::Invalid(message) => deny(response, 422, "Invalid", &message),
        }
    }

    async fn verdict(&self, request: &Request, plan: &Plan) -> Verdict {
        if let Some(message) = &plan.invalid {
            return Verdict::Invalid(format!(
                "{} {}/{}: {message}",
                request.resource.plural(),
                request.namespace,
                request.name
            ));
        }
        for verb in &plan.verbs {
            let attributes = Attributes {
                user: request.user.clone(),
                group: crate::access::authz::API_GROUP,
                verb: verb.as_str(),
                resource: Resource::CatalogSources.plural().into(),
                namespace: request.namespace.clone(),
                name: Some(request.name.clone()),
            };
            match self.authorizer.authorize(&attributes).await {
                Ok(Decision::Allow) => {}
                Ok(Decision::Deny { reason }) => {
                    return Verdict::Forbidden(forbidden_message(request, *verb, &reason));
                }
                Err(e) => {
                    return Verdict::Forbidden(format!(
                        "cannot check whether user {:?} may {} catalogsources.curio.dev {:?}: {e}",
                        request.user.username,
                        verb.as_str(),
                        request.name
                    ));
                }
            }
        }
        match self.policy_refusal(request).await {
            Some(message) => Verdict::Forbidden(format!(
                "{} {}/{}: {message}",
                request.resource.plural(),
                request.namespace,
                request.name
            )),
            None => Verdict::Admit,
        }
    }

    /// Why the namespace's CatalogPolicies refuse a created or changed source, if they do.
    /// Fails closed: policies not read yet, or sources that cannot be counted, refuse.
    async fn policy_refusal(&self, request: &Request) -> Option<String> {
        let policies = self.policies.as_ref()?;
        if request.resource != Resource::CatalogSources || request.operation == Operation::Delete {
            return None;
        }
        let source: CatalogSource = serde_json::from_value(request.object.clone()?).ok()?;
        if !policies.is_ready() {
            return Some("CatalogPolicies have not been read yet; try again in a moment".into());
        }
        let effective = policies.for_namespace(&request.namespace);
        if effective.policies.is_empty() && effective.paused_by.is_none() {
            return None;
        }
        let mut refusals: Vec<String> = policy::check_spec(&effective, &source.spec)
            .iter()
            .map(ToString::to_string)
            .collect();
        if request.operation == Operation::Create && effective.max_sources.is_some() {
            let everything = kube::core::Selector::default();
            let counted = match &self.cluster {
                Some(cluster) => tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    cluster.sources(&request.namespace, &everything),
                )
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string())),
                None => Err("no cluster to count them in".to_owned()),
            };
            match counted {
                Ok(existing) => {
                    let existing = existing
                        .iter()
                        .filter(|s| s.metadata.deletion_timestamp.is_none())
                        .count();
                    if let Some(violation) = policy::check_new_source(&effective, existing) {
                        refusals.push(violation.to_string());
                    }
                }
                Err(e) => refusals.push(format!(
                    "cannot count the namespace's CatalogSources for maxSources: {e}"
                )),
            }
        }
        (!refusals.is_empty()).then(|| refusals.join("; "))
    }

    async fn warnings(&self, request: &Request, plan: &Plan) -> Vec<String> {
        let mut warnings = plan.warnings.clone();
        let Some(cluster) = &self.cluster else {
            return warnings;
        };
        let ns = request.namespace.as_str();
        for reference in &plan.references {
            let lookup = async {
                match reference {
                    Reference::Secret(name) => cluster.secret(ns, name).await.map(|s| s.is_some()),
                    Reference::ConfigMap(name) => {
                        cluster.config_map(ns, name).await.map(|c| c.is_some())
                    }
                    Reference::Source(name) => cluster.source(ns, name).await.map(|s| s.is_some()),
                }
            };
            // Warnings are advice: a slow apiserver must not hold the admission up.
            match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => warnings.push(reference.missing_warning(ns)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "looking up a referenced object failed");
                }
                Err(_) => tracing::warn!("looking up a referenced object timed out"),
            }
        }
        warnings
    }

    /// Kubernetes Events for approvals and promotions (summaries; the audit trail has the
    /// rest), sent in the background: best effort, never in the admission's way.
    fn record_transitions(&self, request: &Request, plan: &Plan) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let mut events = Vec::new();
        for verb in &plan.verbs {
            let (reason, did) = match verb {
                CustomVerb::Approve => ("Approved", "changed approvals"),
                CustomVerb::Promote => ("Promoted", "changed stages"),
            };
            let mut note = format!("{} {did}", request.user.username);
            if let Some(why) = &plan.reason {
                note.push_str(&format!(": {why}"));
            }
            let regarding = ObjectReference {
                api_version: Some(format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION)),
                kind: Some("CatalogSource".into()),
                namespace: Some(request.namespace.clone()),
                name: Some(request.name.clone()),
                uid: plan.object_uid.clone(),
                ..ObjectReference::default()
            };
            events.push((regarding, EventNote::normal(reason, note)));
        }
        tokio::spawn(async move {
            for (regarding, note) in events {
                if let Err(e) = cluster.record_event(&regarding, note).await {
                    tracing::warn!(error = %e, "recording an Event failed");
                }
            }
        });
    }
}
