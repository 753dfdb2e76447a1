//! The [`Cluster`] seam on a real Kubernetes API.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions},
    core::Selector,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

use super::{Cluster, ClusterError, EventNote};
use crate::crd::{
    CatalogPolicy, CatalogPolicyStatus, CatalogSource, CatalogSourceStatus, RefreshJob,
    RefreshJobStatus,
};

/// Event notes are capped at 1 kB by the API.
const MAX_NOTE: usize = 1000;

pub struct KubeCluster {
    client: Client,
    recorder: Recorder,
}

impl KubeCluster {
    /// `instance` tells replicas' events apart (the pod name).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: "curio-controller".into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }
}

fn classify(what: String, error: kube::Error) -> ClusterError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => ClusterError::Conflict(what),
        kube::Error::Api(status) if status.code == 404 => ClusterError::Gone(what),
        kube::Error::Api(status) if status.code < 500 && status.code != 429 => {
            ClusterError::Refused {
                what,
                message: status.message.clone(),
                source: error.into(),
            }
        }
        _ => ClusterError::unavailable(what, error),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| classify(format!("reading ConfigMap {namespace}/{name}"), e))?;
        Ok(found.map(|cm| cm.data.unwrap_or_default()))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| classify(format!("reading Secret {namespace}/{name}"), e))?;
        Ok(found.map(|secret| {
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }

    async fn write_source_status(
        &self,
        source: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError> {
        let namespace = source.metadata.namespace.clone().unwrap_or_default();
        let name = source.metadata.name.clone().unwrap_or_default();
        let api: Api<CatalogSource> = Api::namespaced(self.client.clone(), &namespace);
        // The object as read, carrying its resourceVersion: a concurrent change is a conflict.
        let mut object = source.clone();
        object.status = Some(status.clone());
        api.replace_status(&name, &PostParams::default(), &object)
            .await
            .map_err(|e| {
                classify(
                    format!("writing the status of CatalogSource {namespace}/{name}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn write_policy_status(
        &self,
        name: &str,
        status: &CatalogPolicyStatus,
    ) -> Result<(), ClusterError> {
        let api: Api<CatalogPolicy> = Api::all(self.client.clone());
        // A merge patch of the status alone: the controller owns it, and a spec edit in
        // between must not be a conflict.
        let mut status_value = serde_json::to_value(status).unwrap_or_default();
        // An empty list is left out when serialized; a merge patch must still clear it.
        status_value["namespaces"] = serde_json::json!(status.namespaces);
        let patch = serde_json::json!({ "status": status_value });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| classify(format!("writing the status of CatalogPolicy {name}"), e))?;
        Ok(())
    }

    async fn source(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CatalogSource>, ClusterError> {
        let api: Api<CatalogSource> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .map_err(|e| classify(format!("reading CatalogSource {namespace}/{name}"), e))
    }

    async fn sources(
        &self,
        namespace: &str,
        selector: &Selector,
    ) -> Result<Vec<CatalogSource>, ClusterError> {
        let api: Api<CatalogSource> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(&selector.to_string());
        let list = api
            .list(&params)
            .await
            .map_err(|e| classify(format!("listing CatalogSources in {namespace}"), e))?;
        Ok(list.items)
    }

    async fn job(&self, namespace: &str, name: &str) -> Result<Option<RefreshJob>, ClusterError> {
        let api: Api<RefreshJob> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .map_err(|e| classify(format!("reading RefreshJob {namespace}/{name}"), e))
    }

    async fn write_job_status(
        &self,
        job: &RefreshJob,
        status: &RefreshJobStatus,
    ) -> Result<RefreshJob, ClusterError> {
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let api: Api<RefreshJob> = Api::namespaced(self.client.clone(), &namespace);
        let mut object = job.clone();
        object.status = Some(status.clone());
        api.replace_status(&name, &PostParams::default(), &object)
            .await
            .map_err(|e| {
                classify(
                    format!("writing the status of RefreshJob {namespace}/{name}"),
                    e,
                )
            })
    }

    async fn adopt_job(&self, job: &RefreshJob, owner: &CatalogSource) -> Result<(), ClusterError> {
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let Some(reference) = owner.controller_owner_ref(&()) else {
            return Ok(());
        };
        let api: Api<RefreshJob> = Api::namespaced(self.client.clone(), &namespace);
        // A merge patch carrying the resourceVersion: only the object as read is adopted.
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": job.metadata.resource_version,
                "ownerReferences": [reference],
            }
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| classify(format!("adopting RefreshJob {namespace}/{name}"), e))?;
        Ok(())
    }

    async fn delete_job(&self, job: &RefreshJob) -> Result<(), ClusterError> {
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let api: Api<RefreshJob> = Api::namespaced(self.client.clone(), &namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: job.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(classify(
                format!("deleting RefreshJob {namespace}/{name}"),
                e,
            )),
        }
    }

    async fn record_event(
        &self,
        reference: &ObjectReference,
        event: EventNote,
    ) -> Result<(), ClusterError> {
        let event = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason,
            note: Some(truncate(&event.note, MAX_NOTE)),
            action: "Reconcile".into(),
            secondary: None,
        };
        self.recorder
            .publish(&event, reference)
            .await
            .map_err(|e| classify("recording an event".into(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curio_core::fixtures::catalog_source;
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn cluster() -> (KubeCluster, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (
            KubeCluster::new(Client::new(service, "default"), Some("pod-0".into())),
            handle,
        )
    }

    async fn answer(
        handle: &mut Handle,
        method: Method,
        path: &str,
        code: u16,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let (request, respond) = handle.next_request().await.expect("a request");
        assert_eq!((request.method(), request.uri().path()), (&method, path));
        let sent = request.into_body().collect_bytes().await.unwrap();
        respond.send_response(
            Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
        serde_json::from_slice(&sent).unwrap_or(serde_json::Value::Null)
    }

    /// A Status as the apiserver sends it, with the reason that goes with the code.
    fn status(code: u16) -> serde_json::Value {
        let reason = match code {
            404 => "NotFound",
            409 => "Conflict",
            _ => "InternalError",
        };
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": reason, "reason": reason})
    }

    fn source() -> CatalogSource {
        catalog_source("team-a", "models")
            .resource_version("41")
            .uid("u1")
            .spec(json!({"source": {"configMap": {"name": "catalog"}}}))
            .build()
    }

    #[tokio::test]
    async fn reads_config_maps_and_secrets_in_the_sources_namespace() {
        let (cluster, mut handle) = cluster();
        let server = tokio::spawn(async move {
            answer(&mut handle, Method::GET, "/api/v1/namespaces/team-a/configmaps/catalog", 200,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "catalog"}, "data": {"catalog.yaml": "assets: []"}})).await;
            answer(
                &mut handle,
                Method::GET,
                "/api/v1/namespaces/team-a/configmaps/absent",
                404,
                status(404),
            )
            .await;
            answer(&mut handle, Method::GET, "/api/v1/namespaces/team-a/secrets/token", 200,
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "data": {"token": "czNjcmV0"}})).await;
        });
        let data = cluster
            .config_map("team-a", "catalog")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(data["catalog.yaml"], "assets: []");
        assert!(
            cluster
                .config_map("team-a", "absent")
                .await
                .unwrap()
                .is_none()
        );
        let secret = cluster.secret("team-a", "token").await.unwrap().unwrap();
        assert_eq!(secret["token"], b"s3cret");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn status_writes_carry_the_resource_version_and_report_conflicts() {
        let (cluster, mut handle) = cluster();
        let server = tokio::spawn(async move {
            let path = "/apis/curio.dev/v1alpha1/namespaces/team-a/catalogsources/models/status";
            let sent = answer(&mut handle, Method::PUT, path, 409, status(409)).await;
            assert_eq!(sent["metadata"]["resourceVersion"], "41");
            assert_eq!(sent["status"]["assetCount"], 3);
        });
        let status = CatalogSourceStatus {
            asset_count: Some(3),
            ..Default::default()
        };
        let err = cluster
            .write_source_status(&source(), &status)
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Conflict(_)), "{err}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn events_are_recorded_against_the_source() {
        let (cluster, mut handle) = cluster();
        let server = tokio::spawn(async move {
            let (request, respond) = handle.next_request().await.unwrap();
            assert_eq!(request.method(), Method::POST);
            assert_eq!(
                request.uri().path(),
                "/apis/events.k8s.io/v1/namespaces/team-a/events"
            );
            let sent: serde_json::Value =
                serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap())
                    .unwrap();
            assert_eq!(sent["type"], "Warning");
            assert_eq!(sent["reason"], "InvalidCatalog");
            assert_eq!(sent["regarding"]["name"], "models");
            assert!(sent["note"].as_str().unwrap().len() <= MAX_NOTE + 3);
            respond.send_response(
                Response::builder()
                    .status(201)
                    .body(Body::from(serde_json::to_vec(&sent).unwrap()))
                    .unwrap(),
            );
        });
        let note = EventNote {
            warning: true,
            reason: "InvalidCatalog".into(),
            note: "x".repeat(5000),
        };
        cluster
            .record_event(&source().object_ref(&()), note)
            .await
            .unwrap();
        server.await.unwrap();
    }
}
