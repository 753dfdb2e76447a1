//! Watches: every tenant's viewer keeps one server-sent-event watch of its models open, as a
//! dashboard would, and the time from a model change being written to its event arriving is
//! the watch event lag. A dropped watch is opened again from the last event it saw.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{load::Reader, report::LagSample, tenants::Tenant};

/// Changes written and not yet seen on a watch, and the lags of those seen.
#[derive(Debug, Default)]
pub struct WatchLags {
    /// The text the change puts in its model's description → (tenant, written, at_s).
    pending: Mutex<HashMap<String, (usize, Instant, f64)>>,
    seen: Mutex<Vec<LagSample>>,
    /// Watches that have been answered at least once.
    opened: AtomicUsize,
}

impl WatchLags {
    /// How many tenants' watches have been answered at least once.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// A change to a model was written now; its event should carry `text`.
    pub fn expect(&self, tenant: usize, text: String, at_s: f64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(text, (tenant, Instant::now(), at_s));
        }
    }

    /// Marks as seen every pending change of `tenant` whose text is in `line`.
    fn saw(&self, tenant: usize, line: &str) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let found: Vec<String> = pending
            .iter()
            .filter(|(text, (t, _, _))| *t == tenant && line.contains(text.as_str()))
            .map(|(text, _)| text.clone())
            .collect();
        for text in found {
            if let Some((tenant, written, at_s)) = pending.remove(&text)
                && let Ok(mut seen) = self.seen.lock()
            {
                seen.push(LagSample {
                    tenant,
                    at_s,
                    lag_s: Some(written.elapsed().as_secs_f64()),
                });
            }
        }
    }

    /// Every lag seen, and every change still pending as never seen.
    pub fn samples(&self) -> Vec<LagSample> {
        let mut out = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(pending) = self.pending.lock() {
            out.extend(pending.values().map(|(tenant, _, at_s)| LagSample {
                tenant: *tenant,
                at_s: *at_s,
                lag_s: None,
            }));
        }
        out
    }
}

/// Keeps `tenant`'s watch of its models open until `stop`, noting every awaited change it sees.
pub async fn follow(reader: Reader, tenant: Tenant, lags: Arc<WatchLags>, stop: CancellationToken) {
    let path = format!("/api/v1/namespaces/{}/models?watch=true", tenant.namespace);
    let mut last_event: Option<String> = None;
    let mut opened = false;
    while !stop.is_cancelled() {
        if last_event.is_none() {
            // As an informer does: the state from a list, then the watch from its revision
            // (a watch without one would replay every model as ADDED first).
            last_event = present_revision(&reader, &tenant).await;
        }
        let mut request = reader
            .http
            .get(format!("{}{path}", reader.base_url()))
            .bearer_auth(tenant.viewer_token())
            .header("Accept", "text/event-stream");
        if let Some(id) = &last_event {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::select! {
            r = request.send() => r,
            () = stop.cancelled() => return,
        };
        if let Ok(r) = &response
            && r.status() == reqwest::StatusCode::GONE
        {
            // The store was replaced (a restore): start from its present.
            last_event = None;
        }
        if let Ok(mut response) = response.and_then(|r| r.error_for_status()) {
            if !std::mem::replace(&mut opened, true) {
                lags.opened.fetch_add(1, Ordering::Relaxed);
            }
            let mut partial = String::new();
            loop {
                let chunk = tokio::select! {
                    c = response.chunk() => c,
                    () = stop.cancelled() => return,
                };
                let Ok(Some(chunk)) = chunk else { break };
                partial.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = partial.find('\n') {
                    let line: String = partial.drain(..=end).collect();
                    if let Some(id) = line.strip_prefix("id:") {
                        last_event = Some(id.trim().to_owned());
                    } else if line.starts_with("data:") {
                        if is_gone(&line) {
                            // The resume point is not in this store's history (too old, or
                            // from before a restore): start again from the present, as a
                            // kube client re-lists.
                            last_event = None;
                        }
                        lags.saw(tenant.index, &line);
                    }
                }
            }
        }
        // Dropped or refused (a fault, a restart): open it again shortly.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The revision of the tenant's models as a list reports it now (`None`: no answer).
async fn present_revision(reader: &Reader, tenant: &Tenant) -> Option<String> {
    let path = format!("/api/v1/namespaces/{}/models?limit=1", tenant.namespace);
    let (status, body) = reader.get(&path, &tenant.viewer_token()).await;
    if status != 200 {
        return None;
    }
    list_revision(&body)
}

/// A list's `metadata.resourceVersion`.
fn list_revision(body: &str) -> Option<String> {
    let list: serde_json::Value = serde_json::from_str(body).ok()?;
    list["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
}

/// Whether a stream's `data:` line is its closing 410 Gone.
fn is_gone(line: &str) -> bool {
    let Some(data) = line.strip_prefix("data:") else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(data.trim())
        .is_ok_and(|event| event["type"] == "ERROR" && event["object"]["code"] == 410)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closing_410_sends_the_watch_back_to_the_present() {
        assert!(is_gone(
            r#"data: {"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Gone"}}"#
        ));
        assert!(!is_gone(
            r#"data: {"type":"ERROR","object":{"kind":"Status","code":500}}"#
        ));
        assert!(!is_gone(r#"data: {"type":"ADDED","object":{"code":410}}"#));
        assert!(!is_gone("id: 410"));
    }

    #[test]
    fn a_watch_starts_from_the_revision_its_list_reports() {
        assert_eq!(
            list_revision(
                r#"{"kind":"AssetList","metadata":{"resourceVersion":"303"},"items":[]}"#
            ),
            Some("303".to_owned())
        );
        assert_eq!(list_revision(r#"{"metadata":{}}"#), None);
        assert_eq!(list_revision("not json"), None);
    }

    #[test]
    fn a_change_is_seen_once_by_its_own_tenant_only() {
        let lags = WatchLags::default();
        lags.expect(1, "marker-1-rev-2".into(), 3.0);
        lags.saw(2, "data: {\"description\":\"marker-1-rev-2\"}");
        assert_eq!(lags.samples()[0].lag_s, None);
        lags.saw(1, "data: {\"description\":\"marker-1-rev-2\"}");
        lags.saw(1, "data: {\"description\":\"marker-1-rev-2\"}");
        let samples = lags.samples();
        assert_eq!(samples.len(), 1);
        assert!(samples[0].lag_s.is_some());
        assert_eq!(samples[0].at_s, 3.0);
    }
}
