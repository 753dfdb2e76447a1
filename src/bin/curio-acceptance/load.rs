//! The readers: per tenant an open-loop request rate, each answer checked (status, cross-tenant
//! markers, RBAC refusals), every request one [`Sample`].

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Exp};
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
    /// The name the JSON gives it (`page_walk`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{self:?}"))
    }

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

/// When one tenant's requests are due: a Poisson process at `rate` (exponential gaps), seeded
/// by the tenant so a run can be repeated. Tenants are independent users: a shared fixed
/// period would have every tenant ask in the same instant — a burst of `--tenants` requests
/// each period, whose queueing the latencies would then measure instead of the steady rate
/// (100 tenants at 1/s measured a 33 ms get that `curl` saw answered in 2 ms).
pub struct Arrivals {
    rng: StdRng,
    /// `None`: a rate that is not positive and finite, which asks nothing.
    gaps: Option<Exp<f64>>,
    next: Instant,
}

impl Arrivals {
    /// A harness that falls further behind than this skips the arrivals it missed rather
    /// than sending them at once (it measures Curio, not its own backlog).
    const MAX_LATE: Duration = Duration::from_secs(1);

    pub fn new(seed: u64, rate: f64, start: Instant) -> Self {
        let mut arrivals = Self {
            rng: StdRng::seed_from_u64(seed),
            gaps: Exp::new(rate).ok().filter(|_| rate.is_finite()),
            next: start,
        };
        // The first arrival is a gap away too, so tenants do not start in step.
        arrivals.next = start + arrivals.gap();
        arrivals
    }

    fn gap(&mut self) -> Duration {
        const NEVER: Duration = Duration::from_secs(86_400);
        self.gaps
            .map(|gaps| gaps.sample(&mut self.rng))
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .map_or(NEVER, |gap| gap.min(NEVER))
    }

    /// The next arrival's time (possibly already past), as of `now`.
    pub fn next_due(&mut self, now: Instant) -> Instant {
        if self.next + Self::MAX_LATE < now {
            self.next = now;
        }
        let due = self.next;
        // A gap is at most a day: the sum cannot overflow an `Instant` of this century.
        self.next = due + self.gap();
        due
    }
}

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

    /// Reads as `tenant` at `rate` requests a second on average (see [`Arrivals`]) until
    /// `stop`, with at most `in_flight` requests outstanding (an arrival with none free is
    /// skipped and not counted).
    pub async fn run(
        self,
        tenant: Tenant,
        tenants: usize,
        rate: f64,
        in_flight: usize,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(in_flight));
        let mut arrivals = Arrivals::new(tenant.index as u64, rate, Instant::now());
        let tenant = Arc::new(tenant);
        let mut n: usize = tenant.index * 7;
        loop {
            let due = arrivals.next_due(Instant::now());
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64, rate: f64, start: Instant) -> Vec<Duration> {
        let mut arrivals = Arrivals::new(seed, rate, start);
        (0..2_000)
            .map(|_| arrivals.next_due(start) - start)
            .collect()
    }

    #[test]
    fn arrivals_keep_the_rate_on_average_with_uneven_gaps() {
        let start = Instant::now();
        let due = first(7, 10.0, start);
        // 2,000 arrivals at 10/s take about 200 s (σ of the sum ≈ 4.5 s).
        let span = due[due.len() - 1].as_secs_f64();
        assert!((180.0..220.0).contains(&span), "{span}");
        let gaps: Vec<f64> = due
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        // Exponential, not a fixed period: about 63% of gaps are shorter than the mean.
        let short = gaps.iter().filter(|g| **g < 0.1).count() as f64 / gaps.len() as f64;
        assert!((0.58..0.68).contains(&short), "{short}");
        assert!(due.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn tenants_do_not_ask_in_step_and_a_seed_repeats() {
        let start = Instant::now();
        let tenants: Vec<Duration> = (0..100).map(|seed| first(seed, 1.0, start)[0]).collect();
        let mut distinct = tenants.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 100);
        // Spread over the first seconds, not piled at the start.
        assert!(tenants.iter().filter(|d| d.as_secs_f64() < 0.1).count() < 25);
        assert_eq!(first(3, 1.0, start), first(3, 1.0, start));
    }

    #[test]
    fn a_harness_far_behind_skips_what_it_missed() {
        let start = Instant::now();
        let mut arrivals = Arrivals::new(1, 100.0, start);
        let late = start + Duration::from_secs(5);
        // Five seconds late: no backlog of ~500 arrivals, the next one is now.
        assert_eq!(arrivals.next_due(late), late);
        assert!(arrivals.next_due(late) >= late);
    }

    #[test]
    fn a_rate_that_asks_nothing_waits_a_day() {
        let start = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut arrivals = Arrivals::new(1, rate, start);
            assert_eq!(
                arrivals.next_due(start) - start,
                Duration::from_secs(86_400)
            );
        }
    }
}
