//! The `CatalogPolicy`s in force and the namespaces' labels they select by, as last seen: from
//! watches on a cluster, from the folder in standalone mode, or set by a test.

use std::{
    collections::BTreeMap,
    hash::{Hash, Hasher},
    sync::{Arc, RwLock},
};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::watch;

use crate::{
    crd::CatalogPolicy,
    decisions::policy::{EffectivePolicy, effective},
};

/// The label the apiserver puts on every namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the policies and namespace labels come from.
pub trait PolicyView: Send + Sync {
    fn policies(&self) -> Vec<CatalogPolicy>;
    /// The namespace's labels, or `None` if it is not known (yet).
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
    /// Every known namespace with its labels.
    fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>>;
    /// Whether the first complete view has arrived; until then decisions must not rely on it.
    fn is_ready(&self) -> bool {
        true
    }
    /// Ticks whenever a policy's spec or a namespace's labels change.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// The effective policy of any namespace, plus the global kill switch. Cheap to clone.
#[derive(Clone)]
pub struct Policies {
    view: Arc<dyn PolicyView>,
    paused_globally: bool,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("paused_globally", &self.paused_globally)
            .finish_non_exhaustive()
    }
}

impl Default for Policies {
    /// No policies, nothing paused.
    fn default() -> Self {
        Self::new(Arc::new(StaticPolicies::default()), false)
    }
}

impl Policies {
    pub fn new(view: Arc<dyn PolicyView>, paused_globally: bool) -> Self {
        Self {
            view,
            paused_globally,
        }
    }

    pub fn paused_globally(&self) -> bool {
        self.paused_globally
    }

    pub fn is_ready(&self) -> bool {
        self.view.is_ready()
    }

    pub fn all(&self) -> Vec<CatalogPolicy> {
        self.view.policies()
    }

    pub fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.view.namespaces()
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.view.changes()
    }

    /// Whether the namespace exists (as far as the view knows).
    pub fn knows_namespace(&self, namespace: &str) -> bool {
        self.view.namespace_labels(namespace).is_some()
    }

    /// The namespace's labels; an unknown namespace has the one label every namespace has.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.view.namespace_labels(namespace).unwrap_or_else(|| {
            BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())])
        })
    }

    pub fn for_namespace(&self, namespace: &str) -> EffectivePolicy {
        effective(
            &self.view.policies(),
            &self.namespace_labels(namespace),
            self.paused_globally,
        )
    }
}

/// Policies and labels held in memory: standalone mode's folder, and tests.
pub struct StaticPolicies {
    policies: RwLock<Vec<CatalogPolicy>>,
    labels: RwLock<BTreeMap<String, BTreeMap<String, String>>>,
    changes: watch::Sender<u64>,
}

impl Default for StaticPolicies {
    fn default() -> Self {
        Self {
            policies: RwLock::default(),
            labels: RwLock::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl StaticPolicies {
    pub fn replace_policies(&self, policies: Vec<CatalogPolicy>) {
        *self
            .policies
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = policies;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sets a namespace's labels (its name label is added).
    pub fn set_namespace_labels(&self, namespace: &str, mut labels: BTreeMap<String, String>) {
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        let previous = self
            .labels
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(namespace.to_owned(), labels.clone());
        if previous.as_ref() != Some(&labels) {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl PolicyView for StaticPolicies {
    fn policies(&self) -> Vec<CatalogPolicy> {
        self.policies
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.labels
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(namespace)
            .cloned()
    }

    fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.labels
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Policies and namespace labels from two watches (namespaces as metadata only).
pub struct WatchedPolicies {
    policies: Store<CatalogPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    changes: watch::Sender<u64>,
}

/// A digest of what policy decisions depend on: the policies' specs and the namespaces'
/// labels (not statuses, so a status write does not look like a change).
fn fingerprint(
    policies: &Store<CatalogPolicy>,
    namespaces: &Store<PartialObjectMeta<Namespace>>,
) -> u64 {
    let mut specs: Vec<(String, String)> = policies
        .state()
        .iter()
        .map(|p| {
            (
                p.name_any(),
                serde_json::to_string(&p.spec).unwrap_or_default(),
            )
        })
        .collect();
    specs.sort();
    let mut labels: Vec<(String, BTreeMap<String, String>)> = namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    labels.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (specs, labels).hash(&mut hasher);
    hasher.finish()
}

/// Keeps `writer`'s store in step with `api` (with backoff, as long as the process runs),
/// calling `after_event` after every event.
fn reflect<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    what: &'static str,
    after_event: impl Fn() + Send + 'static,
) where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    tokio::spawn(
        watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer)
            .for_each(move |event| {
                if let Err(e) = event {
                    tracing::warn!(error = %e, "watching {what}");
                }
                after_event();
                async {}
            }),
    );
}

impl WatchedPolicies {
    /// Starts the watches on the runtime; they run (with backoff) as long as the process.
    pub fn start(client: &Client) -> Arc<Self> {
        let (policies, policy_writer) = reflector::store();
        let (namespaces, namespace_writer) = reflector::store();
        let this = Arc::new(Self {
            policies,
            namespaces,
            changes: watch::Sender::new(0),
        });
        let watched = this.clone();
        reflect(
            Api::<CatalogPolicy>::all(client.clone()),
            policy_writer,
            "CatalogPolicies",
            move || watched.notice(),
        );
        let watched = this.clone();
        // Metadata only: the labels are all a selector needs.
        reflect(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            namespace_writer,
            "Namespaces",
            move || watched.notice(),
        );
        this
    }

    /// Ticks `changes` if what decisions depend on changed.
    fn notice(&self) {
        let now = fingerprint(&self.policies, &self.namespaces);
        self.changes.send_if_modified(|seen| {
            let changed = *seen != now;
            *seen = now;
            changed
        });
    }
}

impl PolicyView for WatchedPolicies {
    fn policies(&self) -> Vec<CatalogPolicy> {
        self.policies
            .state()
            .iter()
            .map(|p| CatalogPolicy::clone(p))
            .collect()
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
    }

    fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.namespaces
            .state()
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn is_ready(&self) -> bool {
        // A store is ready once its first list has completed.
        self.policies
            .wait_until_ready()
            .now_or_never()
            .is_some_and(|r| r.is_ok())
            && self
                .namespaces
                .wait_until_ready()
                .now_or_never()
                .is_some_and(|r| r.is_ok())
    }
}
