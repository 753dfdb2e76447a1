//! A cluster for reconcile and job tests: the library's in-memory cluster, plus a record of
//! every status write and switches that make writes fail (a controller dying between its store
//! transaction and its status write).

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use curio::{
    cluster::{Cluster, ClusterError, EventNote, memory::MemoryCluster},
    crd::{CatalogPolicyStatus, CatalogSource, CatalogSourceStatus, RefreshJob, RefreshJobStatus},
};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::Selector;

#[derive(Default)]
pub struct TestCluster {
    pub inner: MemoryCluster,
    pub statuses: Mutex<Vec<CatalogSourceStatus>>,
    pub job_statuses: Mutex<Vec<RefreshJobStatus>>,
    /// ConfigMap reads.
    pub reads: AtomicUsize,
    /// Fail this many source status writes.
    pub failing_status_writes: AtomicUsize,
    /// Fail job status writes once this many more have succeeded (`usize::MAX`: never).
    pub job_status_writes_before_failure: AtomicUsize,
}

fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl TestCluster {
    pub fn new() -> Self {
        let cluster = Self::default();
        cluster
            .job_status_writes_before_failure
            .store(usize::MAX, Ordering::SeqCst);
        cluster
    }

    pub fn put_config_map(&self, ns: &str, name: &str, key: &str, text: &str) {
        self.inner.put_config_map(
            ns,
            name,
            BTreeMap::from([(key.to_string(), text.to_string())]),
        );
    }

    pub fn last_status(&self) -> CatalogSourceStatus {
        self.statuses
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a status was written")
    }

    pub fn events(&self) -> Vec<EventNote> {
        self.inner.events().into_iter().map(|(_, e)| e).collect()
    }
}

#[async_trait]
impl Cluster for TestCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.config_map(namespace, name).await
    }
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClusterError> {
        self.inner.secret(namespace, name).await
    }
    async fn source(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CatalogSource>, ClusterError> {
        self.inner.source(namespace, name).await
    }
    async fn sources(
        &self,
        namespace: &str,
        selector: &Selector,
    ) -> Result<Vec<CatalogSource>, ClusterError> {
        self.inner.sources(namespace, selector).await
    }
    async fn write_source_status(
        &self,
        source: &CatalogSource,
        status: &CatalogSourceStatus,
    ) -> Result<(), ClusterError> {
        if take_one(&self.failing_status_writes) {
            return Err(ClusterError::unavailable(
                "update status",
                std::io::Error::other("connection reset"),
            ));
        }
        self.statuses.lock().unwrap().push(status.clone());
        // Sources built by a test without the cluster have nowhere to keep the status.
        match self.inner.write_source_status(source, status).await {
            Err(ClusterError::Gone(_)) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
    async fn job(&self, namespace: &str, name: &str) -> Result<Option<RefreshJob>, ClusterError> {
        self.inner.job(namespace, name).await
    }
    async fn write_job_status(
        &self,
        job: &RefreshJob,
        status: &RefreshJobStatus,
    ) -> Result<RefreshJob, ClusterError> {
        if !take_one(&self.job_status_writes_before_failure) {
            return Err(ClusterError::unavailable(
                "update status",
                std::io::Error::other("the controller died"),
            ));
        }
        self.job_statuses.lock().unwrap().push(status.clone());
        self.inner.write_job_status(job, status).await
    }
    async fn adopt_job(&self, job: &RefreshJob, owner: &CatalogSource) -> Result<(), ClusterError> {
        self.inner.adopt_job(job, owner).await
    }
    async fn delete_job(&self, job: &RefreshJob) -> Result<(), ClusterError> {
        self.inner.delete_job(job).await
    }
    async fn record_event(
        &self,
        regarding: &ObjectReference,
        event: EventNote,
    ) -> Result<(), ClusterError> {
        self.inner.record_event(regarding, event).await
    }

    async fn write_policy_status(
        &self,
        name: &str,
        status: &CatalogPolicyStatus,
    ) -> Result<(), ClusterError> {
        self.inner.write_policy_status(name, status).await
    }
}

/// The actor the controller records in these tests.
pub const CONTROLLER: &str = "system:serviceaccount:curio-system:curio";

/// A controller context on a fresh PostgreSQL database and an in-memory cluster, fetching URLs
/// under `policy`.
pub async fn controller_context(
    policy: curio::source::policy::AddressPolicy,
) -> (curio::controller::Context, std::sync::Arc<TestCluster>) {
    let (store, _) = super::postgres_store().await;
    let cluster = std::sync::Arc::new(TestCluster::new());
    let ctx = curio::controller::Context::new(
        store,
        cluster.clone(),
        CONTROLLER.into(),
        curio::source::http::UrlFetcher::new(policy, std::time::Duration::from_secs(2))
            .expect("a URL fetcher"),
    );
    (ctx, cluster)
}
