//! The readers: per tenant an open-loop request rate, each answer checked (status, cross-tenant
//! markers, RBAC refusals), every request one [`Sample`].

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use crate::tenants::{Tenant, foreign_markers};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    List,
    Get,
    Search,
    Facets,
    CrossNamespaceList,
    PageWalk,
    /// Another tenant's namespace: must be refused.
    OtherTenant,
    /// A kind the models-only user may not list: must be refused.
    ForbiddenKind,
}

impl Op {
    pub fn expects_refusal(self) -> bool {
        matches!(self, Self::OtherTenant | Self::ForbiddenKind)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the run started.
    pub at: Duration,
    pub tenant: u16,
    pub op: Op,
    /// HTTP status; 0 when no answer came (connection refused or reset).
    pub status: u16,
    pub latency_ms: f32,
    /// Markers of other tenants in the answer.
    pub leaks: u16,
    /// A refusal expected and a 200 given.
    pub rbac_violation: bool,
    /// A 200 that cannot be right: an empty list, a get without its own marker.
    pub wrong: bool,
}

pub type Samples = Arc<Mutex<Vec<Sample>>>;

#[derive(Clone)]
pub struct Reader {
    pub http: reqwest::Client,
    pub base: Arc<Mutex<String>>,
    pub started: Instant,
    pub samples: Samples,
}

impl Reader {
    pub fn base_url(&self) -> String {
        self.base.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Reads as `tenant` at `rate` requests a second until `stop`, with at most `in_flight`
    /// requests outstanding (a tick with none free is skipped and not counted).
    pub async fn run(
        self,
        tenant: Tenant,
        tenants: usize,
        rate: f64,
        in_flight: usize,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(in_flight));
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let tenant = Arc::new(tenant);
        let mut n: usize = tenant.index * 7;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            n += 1;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let (reader, tenant) = (self.clone(), tenant.clone());
            tokio::spawn(async move {
                reader.one(&tenant, tenants, n).await;
                drop(permit);
            });
        }
    }

    async fn one(&self, tenant: &Tenant, tenants: usize, n: usize) {
        let ns = &tenant.namespace;
        let other = tenant.sibling((tenant.index + 1 + n % tenants.max(2)) % tenants.max(1));
        let asset = (n * 31) % tenant.assets;
        let (op, path, token) = match n % 10 {
            0..=2 => (
                Op::List,
                format!("/api/v1/namespaces/{ns}/assets?limit=50"),
                tenant.viewer_token(),
            ),
            3 | 4 => (
                Op::Get,
                format!(
                    "/api/v1/namespaces/{ns}/{}/{}",
                    Tenant::plural(asset),
                    Tenant::name(asset)
                ),
                tenant.viewer_token(),
            ),
            5 => (
                Op::Search,
                format!(
                    "/api/v1/namespaces/{ns}/assets?limit=50&q=asset-00{:02}",
                    n % 100
                ),
                tenant.viewer_token(),
            ),
            6 => (
                Op::Facets,
                format!("/api/v1/namespaces/{ns}/assets/facets"),
                tenant.viewer_token(),
            ),
            7 => (
                Op::CrossNamespaceList,
                "/api/v1/assets?limit=50".to_owned(),
                tenant.viewer_token(),
            ),
            8 => (
                Op::PageWalk,
                format!("/api/v1/namespaces/{ns}/models?limit=100"),
                tenant.models_token(),
            ),
            _ if n % 20 == 9 && other != *ns => (
                Op::OtherTenant,
                format!("/api/v1/namespaces/{other}/assets?limit=5"),
                tenant.viewer_token(),
            ),
            _ => (
                Op::ForbiddenKind,
                format!("/api/v1/namespaces/{ns}/agents?limit=5"),
                tenant.models_token(),
            ),
        };
        let at = self.started.elapsed();
        let t = Instant::now();
        let (status, body) = self.get(&path, &token).await;
        let mut latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut body = body;
        let mut status = status;
        // A page walk follows up to three continue tokens (one sample, its total time).
        if op == Op::PageWalk && status == 200 {
            for _ in 0..3 {
                let Some(token_value) = continue_token(&body) else {
                    break;
                };
                let next = format!("{path}&continue={token_value}");
                let (s, b) = self.get(&next, &token).await;
                status = s;
                if s != 200 {
                    break;
                }
                body.push_str(&b);
            }
            latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        }
        let own = format!("{ns}-");
        let leaks = u16::try_from(foreign_markers(&body, &own)).unwrap_or(u16::MAX);
        let rbac_violation = op.expects_refusal() && (200..300).contains(&status);
        let wrong = status == 200
            && match op {
                Op::List | Op::CrossNamespaceList | Op::PageWalk => {
                    !body.contains(&tenant.marker())
                }
                Op::Get => !body.contains(
                    &tenant
                        .revision_text(asset, 0)
                        .rsplit_once("-rev-")
                        .map(|(p, _)| p.to_owned())
                        .unwrap_or_default(),
                ),
                _ => false,
            };
        let sample = Sample {
            at,
            tenant: u16::try_from(tenant.index).unwrap_or(u16::MAX),
            op,
            status,
            latency_ms: latency_ms as f32,
            leaks,
            rbac_violation,
            wrong,
        };
        if let Ok(mut samples) = self.samples.lock() {
            samples.push(sample);
        }
    }

    /// A GET with `token`: status (0 without an answer) and body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base_url());
        match self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            // A body cut off (the timeout covers it too) is no answer, not an empty one.
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) => (status, body),
                    Err(_) => (0, String::new()),
                }
            }
            Err(_) => (0, String::new()),
        }
    }
}

fn continue_token(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let token = value["metadata"]["continue"].as_str()?;
    (!token.is_empty()).then(|| url::form_urlencoded::byte_serialize(token.as_bytes()).collect())
}
