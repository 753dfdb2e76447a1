//! The aggregation layer's front proxy, as the cluster describes it: the
//! `kube-system/extension-apiserver-authentication` ConfigMap (its request-header CA, allowed
//! names and header names), watched so a rotated CA is trusted without a restart, as
//! `k8s.io/apiserver` does. Reading it takes the `extension-apiserver-authentication-reader`
//! Role in `kube-system`.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};

use crate::access::proxy::{ProxyTrust, from_configmap};

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "extension-apiserver-authentication";

/// Applies one version of the ConfigMap (`None`: deleted) to `trust`. A malformed one keeps
/// what was trusted before, and says why.
pub fn apply(trust: &ProxyTrust, configmap: Option<&ConfigMap>) {
    let data = configmap.and_then(|c| c.data.clone()).unwrap_or_default();
    match from_configmap(&data).and_then(|config| trust.set_cluster(config.as_ref())) {
        Ok(()) => tracing::info!(
            configured = trust.is_configured(),
            "front proxy: {NAMESPACE}/{NAME} applied"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "front proxy: {NAMESPACE}/{NAME} is not usable; keeping the previous trust")
        }
    }
}

/// Watches the ConfigMap for as long as the process runs (with backoff).
pub fn watch(client: Client, trust: Arc<ProxyTrust>) {
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    tokio::spawn(
        watcher(api, config)
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(watcher::Event::Apply(cm)) | Ok(watcher::Event::InitApply(cm)) => {
                        apply(&trust, Some(&cm))
                    }
                    Ok(watcher::Event::Delete(_)) => apply(&trust, None),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "front proxy: watching {NAMESPACE}/{NAME}")
                    }
                }
                async {}
            }),
    );
}
