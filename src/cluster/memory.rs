//! The [`Cluster`] seam held in memory: the resources standalone mode loads from manifests,
//! and the cluster of tests that need no API server. Writes bump a resourceVersion and the
//! generation (on spec changes) as the API server would, so the reconcile logic sees what it
//! would see on a cluster.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use k8s_openapi::{
    api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Resource, ResourceExt,
    core::{Selector, SelectorExt},
};

use super::{Cluster, ClusterError, EventNote};
use crate::crd::{
    CatalogPolicyStatus, CatalogSource, CatalogSourceStatus, RefreshJob, RefreshJobStatus,
};

/// (namespace, name)
pub type Key = (String, String);

#[derive(Default)]
struct State {
    config_maps: BTreeMap<Key, BTreeMap<String, String>>,
    secrets: BTreeMap<Key, BTreeMap<String, Vec<u8>>>,
    sources: BTreeMap<Key, CatalogSource>,
    jobs: BTreeMap<Key, RefreshJob>,
    events: Vec<(ObjectReference, EventNote)>,
    policy_statuses: BTreeMap<String, CatalogPolicyStatus>,
    version: u64,
}

impl State {
    fn next_version(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }
}

#[derive(Default)]
pub struct MemoryCluster {
    state: Mutex<State>,
}

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

fn key_of<K: Resource>(object: &K) -> Key {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

impl MemoryCluster {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every write below is a single map operation: a poisoned lock holds a consistent map.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn put_config_map(&self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        self.state().config_maps.insert(key(namespace, name), data);
    }

    pub fn remove_config_map(&self, namespace: &str, name: &str) {
        self.state().config_maps.remove(&key(namespace, name));
    }

    /// Replaces every ConfigMap at once (standalone mode's view of its folder).
    /// A ConfigMap's data as stored now, if any.
    pub fn get_config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self.state().config_maps.get(&key(namespace, name)).cloned()
    }

    /// A Secret's data as stored now, if any.
    pub fn get_secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.state().secrets.get(&key(namespace, name)).cloned()
    }

    /// Every ConfigMap's data.
    pub fn config_maps(&self) -> BTreeMap<Key, BTreeMap<String, String>> {
        self.state().config_maps.clone()
    }

    /// Every Secret's data.
    pub fn secrets(&self) -> BTreeMap<Key, BTreeMap<String, Vec<u8>>> {
        self.state().secrets.clone()
    }

    pub fn replace_config_maps(&self, all: BTreeMap<Key, BTreeMap<String, String>>) {
        self.state().config_maps = all;
    }

    /// Replaces every Secret at once.
    pub fn replace_secrets(&self, all: BTreeMap<Key, BTreeMap<String, Vec<u8>>>) {
        self.state().secrets = all;
    }

    pub fn put_secret(&self, namespace: &str, name: &str, data: BTreeMap<String, Vec<u8>>) {
        self.state().secrets.insert(key(namespace, name), data);
    }

    pub fn remove_secret(&self, namespace: &str, name: &str) {
        self.state().secrets.remove(&key(namespace, name));
    }

    /// Creates or updates a source: keeps its uid and status, bumps the generation when the
    /// spec changed. Returns the stored object.
    pub fn apply_source(&self, mut source: CatalogSource) -> CatalogSource {
        let mut state = self.state();
        let at = key_of(&source);
        let previous = state.sources.get(&at).cloned();
        let version = state.next_version();
        let meta = &mut source.metadata;
        meta.resource_version = Some(version);
        match previous {
            Some(old) => {
                meta.uid = old.metadata.uid.clone();
                meta.creation_timestamp = old.metadata.creation_timestamp.clone();
                let generation = old.metadata.generation.unwrap_or(1);
                meta.generation = Some(if old.spec == source.spec {
                    generation
                } else {
                    generation + 1
                });
                source.status = old.status;
            }
            None => {
                meta.uid = Some(meta.uid.clone().unwrap_or_else(new_uid));
                meta.generation = Some(1);
                source.status = None;
            }
        }
        state.sources.insert(at, source.clone());
        source
    }

    /// Puts back a source as it was kept (uid, generation and status as given): a restart.
    pub fn restore_source(&self, mut source: CatalogSource) {
        let mut state = self.state();
        source.metadata.resource_version = Some(state.next_version());
        state.sources.insert(key_of(&source), source);
    }

    /// The source as stored now, if any.
    pub fn get_source(&self, namespace: &str, name: &str) -> Option<CatalogSource> {
        self.state().sources.get(&key(namespace, name)).cloned()
    }

    pub fn remove_source(&self, namespace: &str, name: &str) -> Option<CatalogSource> {
        self.state().sources.remove(&key(namespace, name))
    }

    pub fn all_sources(&self) -> Vec<CatalogSource> {
        self.state().sources.values().cloned().collect()
    }

    /// Creates or updates a job's spec, keeping its uid and status.
    pub fn apply_job(&self, mut job: RefreshJob) -> RefreshJob {
        let mut state = self.state();
        let at = key_of(&job);
        let previous = state.jobs.get(&at).cloned();
        let version = state.next_version();
        job.metadata.resource_version = Some(version);
        match previous {
            Some(old) => {
                job.metadata.uid = old.metadata.uid.clone();
                job.metadata.owner_references = old.metadata.owner_references.clone();
                job.status = old.status;
            }
            None => {
                job.metadata.uid = Some(job.metadata.uid.clone().unwrap_or_else(new_uid));
                job.status = None;
            }
        }
        state.jobs.insert(at, job.clone());
        job
    }

    /// Puts back a job as it was kept (uid and status as given): a restart.
    pub fn restore_job(&self, mut job: RefreshJob) {
        let mut state = self.state();
        job.metadata.resource_version = Some(state.next_version());
        state.jobs.insert(key_of(&job), job);
    }

    /// The job as stored now, if any.
    pub fn get_job(&self, namespace: &str, name: &str) -> Option<RefreshJob> {
        self.state().jobs.get(&key(namespace, name)).cloned()
    }

    pub fn remove_job(&self, namespace: &str, name: &str) -> Option<RefreshJob> {
        self.state().jobs.remove(&key(namespace, name))
    }

    pub fn all_jobs(&self) -> Vec<RefreshJob> {
        self.state().jobs.values().cloned().collect()
    }

    /// Events recorded so far, oldest first.
    pub fn policy_status(&self, name: &str) -> Option<CatalogPolicyStatus> {
        self.state().policy_statuses.get(name).cloned()
    }

    pub fn events(&self) -> Vec<(ObjectReference, EventNote)> {
        self.state().events.clone()
    }
}

fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[async_trait]
impl Cluster for MemoryCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        Ok(self.state().config_maps.get(&key(namespace, name)).cloned())
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClusterError> {
        Ok(self.state().secrets.get(&key(namespace, name)).cloned())
    }

    async fn source(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CatalogSource>, ClusterError> {
        Ok(self.state().sources.get(&key(namespace, name)).cloned())
    }

    async fn sources(
        &self,
        namespace: &str,
        selector: &Selector,
    ) -> Result<Vec<CatalogSource>, ClusterError> {
        Ok(self
            .state()
            .sources
            .values()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
            .filter(|s| selector.matches(s.labels()))
            .cloned()
            .collect())
    }

    async fn write_source_status(
        &self,
        source: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError> {
        let mut state = self.state();
        let version = state.next_version();
        let at = key_of(source);
        let stored = state
            .sources
            .get_mut(&at)
            .filter(|s| s.metadata.uid == source.metadata.uid)
            .ok_or_else(|| ClusterError::Gone(format!("CatalogSource {}/{}", at.0, at.1)))?;
        stored.status = Some(status.clone());
        stored.metadata.resource_version = Some(version);
        Ok(())
    }

    async fn job(&self, namespace: &str, name: &str) -> Result<Option<RefreshJob>, ClusterError> {
        Ok(self.state().jobs.get(&key(namespace, name)).cloned())
    }

    async fn write_job_status(
        &self,
        job: &RefreshJob,
        status: &RefreshJobStatus,
    ) -> Result<RefreshJob, ClusterError> {
        let mut state = self.state();
        let version = state.next_version();
        let at = key_of(job);
        let stored = state
            .jobs
            .get_mut(&at)
            .filter(|j| j.metadata.uid == job.metadata.uid)
            .ok_or_else(|| ClusterError::Gone(format!("RefreshJob {}/{}", at.0, at.1)))?;
        if stored.metadata.resource_version != job.metadata.resource_version {
            return Err(ClusterError::Conflict(format!(
                "RefreshJob {}/{}",
                at.0, at.1
            )));
        }
        stored.status = Some(status.clone());
        stored.metadata.resource_version = Some(version);
        Ok(stored.clone())
    }

    async fn adopt_job(&self, job: &RefreshJob, owner: &CatalogSource) -> Result<(), ClusterError> {
        let reference = OwnerReference {
            api_version: CatalogSource::api_version(&()).into_owned(),
            kind: CatalogSource::kind(&()).into_owned(),
            name: owner.name_any(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let mut state = self.state();
        let version = state.next_version();
        if let Some(stored) = state.jobs.get_mut(&key_of(job)) {
            stored.metadata.owner_references = Some(vec![reference]);
            stored.metadata.resource_version = Some(version);
        }
        Ok(())
    }

    async fn delete_job(&self, job: &RefreshJob) -> Result<(), ClusterError> {
        let mut state = self.state();
        let at = key_of(job);
        if state.jobs.get(&at).map(|j| &j.metadata.uid) == Some(&job.metadata.uid) {
            state.jobs.remove(&at);
        }
        Ok(())
    }

    async fn write_policy_status(
        &self,
        name: &str,
        status: &CatalogPolicyStatus,
    ) -> Result<(), ClusterError> {
        self.state()
            .policy_statuses
            .insert(name.to_owned(), status.clone());
        Ok(())
    }

    async fn record_event(
        &self,
        regarding: &ObjectReference,
        event: EventNote,
    ) -> Result<(), ClusterError> {
        self.state().events.push((regarding.clone(), event));
        Ok(())
    }
}
