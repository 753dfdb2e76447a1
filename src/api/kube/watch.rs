//! Watches: the change feed streamed to one caller, from a revision, as Kubernetes watch events
//! (`catalog.curio.dev`) or server-sent events (the `/api/v1` lists).
//!
//! One task per stream: it drains the feed up to the newest revision it has heard of, then
//! waits for a commit in one of its namespaces, a bookmark tick, a re-check of the caller's
//! rights, the timeout, or the client going away. A right that is gone ends the stream.

use std::{future::Future, pin::Pin, time::Duration};

use axum::body::{Body, Bytes};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::{
    api::error::ApiError,
    store::{Change, FeedCursor, FeedEvent, Namespace, NamespaceScope, Store},
};
use curio_core::catalog::AssetKind;

/// Rows read from the feed per round trip.
const FEED_PAGE: u64 = 500;
/// Encoded events a stream may have waiting for a slow client before its task waits too.
const STREAM_BUFFER: usize = 16;

/// How watches behave over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSettings {
    /// How often a watch asks again whether its caller may still watch: a revoked right ends
    /// the stream within this (the authorization cache's lifetime on top).
    pub recheck: Duration,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            recheck: Duration::from_secs(10),
            bookmark: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// How a stream writes its events.
pub trait Encoder: Send + 'static {
    /// `resource_version` is the event's position: resuming from it loses nothing.
    fn event(&mut self, kind: EventType, event: &FeedEvent, resource_version: i64) -> Bytes;
    fn bookmark(&mut self, resource_version: i64) -> Bytes;
    /// The stream's last words.
    fn error(&mut self, error: &ApiError) -> Bytes;
}

/// Whose rows the stream may carry, and how that is decided again over time.
pub type Recheck =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<bool, ApiError>> + Send>> + Send + Sync>;

/// The namespaces a stream reads: fixed, or every namespace with catalog data (a cluster-wide
/// reader's `-A`), found again when a commit names one it does not know.
pub enum Namespaces {
    Fixed(NamespaceScope),
    All,
}

pub struct WatchSpec {
    pub namespaces: Namespaces,
    pub kinds: Vec<AssetKind>,
    /// Deliver changes after this revision; `None`: every current asset as `ADDED` first.
    pub since: Option<i64>,
    pub bookmarks: Option<Duration>,
    pub timeout: Duration,
    pub recheck_every: Duration,
    pub recheck: Recheck,
    /// Cancelled when the server shuts down: streams end so the drain does not wait on them.
    pub stop: tokio_util::sync::CancellationToken,
}

/// Starts the stream's task; the body ends when the task does.
pub async fn start(
    store: Store,
    spec: WatchSpec,
    mut encoder: impl Encoder,
) -> Result<Body, ApiError> {
    // Subscribed before the head is read: a commit after the read is always heard of.
    let changes = store.subscribe().await;
    let head = store.feed_head().await?;
    let (sender, receiver) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    if let Some(since) = spec.since
        && (since < head.compacted || since > head.revision)
    {
        let gone = ApiError::Gone(format!(
            "too old resource version: {since} ({})",
            head.compacted
        ));
        let _ = sender.send(encoder.error(&gone)).await;
    } else {
        let task = run(store, spec, encoder, changes, head.revision, sender);
        tracing::trace!(bytes = std::mem::size_of_val(&task), "watch task");
        tokio::spawn(task);
    }
    let stream = tokio_stream_from(receiver);
    Ok(Body::from_stream(stream))
}

fn tokio_stream_from(
    receiver: mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok(bytes), receiver))
    })
    .fuse()
}

impl Namespaces {
    /// One namespace, or (for a cluster-scope request) all of them.
    pub fn of(namespace: Option<Namespace>) -> Self {
        match namespace {
            Some(ns) => Self::Fixed(NamespaceScope::single(ns)),
            None => Self::All,
        }
    }
}

/// The namespaces a request reads now; `None` when there is no catalog data anywhere.
pub async fn scope_of(
    store: &Store,
    namespaces: &Namespaces,
) -> Result<Option<NamespaceScope>, ApiError> {
    match namespaces {
        Namespaces::Fixed(scope) => Ok(Some(scope.clone())),
        Namespaces::All => {
            let names = store.catalog_namespaces().await?;
            let names: Vec<Namespace> = names
                .into_iter()
                .filter_map(|n| Namespace::new(n).ok())
                .collect();
            Ok(NamespaceScope::new(names).ok())
        }
    }
}

/// The stream's loop. Events of one revision are written together; all but the last of them
/// carry the revision before, so a client resuming from any event's resourceVersion sees the
/// rest of that revision again rather than missing it.
async fn run(
    store: Store,
    spec: WatchSpec,
    mut encoder: impl Encoder,
    mut changes: broadcast::Receiver<Change>,
    head: i64,
    sender: mpsc::Sender<Bytes>,
) {
    let initial = spec.since.is_none();
    let since = spec.since.unwrap_or(0);
    let mut position = since;
    let mut target = head;
    let mut cursor = FeedCursor::after(since);
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut bookmark = spec
        .bookmarks
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let mut recheck = tokio::time::interval(spec.recheck_every);
    recheck.tick().await; // the first tick is immediate; the request was just authorized
    let mut scope = match Box::pin(scope_of(&store, &spec.namespaces)).await {
        Ok(scope) => scope,
        Err(e) => {
            let _ = sender.send(encoder.error(&e)).await;
            return;
        }
    };
    loop {
        // Drain the feed up to `target`.
        while position < target {
            let Some(current) = &scope else {
                position = target;
                break;
            };
            // The initial listing is the current assets, every one ADDED; no deletions.
            let in_initial = initial && position < head;
            // Boxed: a query's future is large, and inline it would size every idle stream's
            // task for it (measured: `cargo bench --bench watch`).
            let page = Box::pin(store.feed_page(
                current,
                &spec.kinds,
                cursor,
                target,
                FEED_PAGE,
                !in_initial,
            ))
            .await;
            let (events, next, done) = match page {
                Ok(page) => page,
                Err(e) => {
                    let _ = sender.send(encoder.error(&ApiError::from(e))).await;
                    return;
                }
            };
            cursor = next;
            let mut out = Vec::with_capacity(events.len());
            for (i, event) in events.iter().enumerate() {
                // The last event of a page that is not done may share its revision with the
                // next page's first: it is not known to be the last of its revision.
                let last_of_revision = events
                    .get(i + 1)
                    .map_or(done, |next| next.revision != event.revision);
                let kind = if event.deleted {
                    EventType::Deleted
                } else if in_initial || event.asset.created_revision > position {
                    // Created after everything the client has seen: new to it.
                    EventType::Added
                } else {
                    EventType::Modified
                };
                let rv = if last_of_revision {
                    event.revision
                } else {
                    event.revision - 1
                };
                out.push(encoder.event(kind, event, rv));
            }
            for bytes in out {
                if sender.send(bytes).await.is_err() {
                    return;
                }
            }
            if done {
                position = target;
            }
        }
        tokio::select! {
            change = changes.recv() => {
                match change {
                    Ok(Change { namespace: Some(ns), revision }) => {
                        let known = scope.as_ref().is_some_and(|s| {
                            Namespace::new(ns.clone()).is_ok_and(|n| s.contains(&n))
                        });
                        if !known && matches!(spec.namespaces, Namespaces::All) {
                            scope = match Box::pin(scope_of(&store, &spec.namespaces)).await {
                                Ok(scope) => scope,
                                Err(e) => {
                                    let _ = sender.send(encoder.error(&e)).await;
                                    return;
                                }
                            };
                            target = target.max(revision);
                        } else if known {
                            target = target.max(revision);
                        }
                    }
                    Ok(Change { namespace: None, .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Some commits went unheard (a lost LISTEN connection, or this stream
                        // fell behind): take the head, and for every-namespace streams the
                        // namespaces again, since an unheard commit may have made one.
                        let head = Box::pin(store.feed_head()).await;
                        let rescoped = match spec.namespaces {
                            Namespaces::All => Box::pin(scope_of(&store, &spec.namespaces)).await.map(Some),
                            Namespaces::Fixed(_) => Ok(None),
                        };
                        match (head, rescoped) {
                            (Ok(head), Ok(rescoped)) => {
                                target = target.max(head.revision);
                                if let Some(rescoped) = rescoped {
                                    scope = rescoped;
                                }
                            }
                            (Err(e), _) => {
                                let _ = sender.send(encoder.error(&ApiError::from(e))).await;
                                return;
                            }
                            (_, Err(e)) => {
                                let _ = sender.send(encoder.error(&e)).await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            _ = tick(&mut bookmark) => {
                if sender.send(encoder.bookmark(position)).await.is_err() {
                    return;
                }
            }
            _ = recheck.tick() => {
                match (spec.recheck)().await {
                    Ok(true) => {}
                    Ok(false) => {
                        let forbidden = ApiError::Forbidden("access to this watch was revoked".into());
                        let _ = sender.send(encoder.error(&forbidden)).await;
                        return;
                    }
                    Err(e) => {
                        let _ = sender.send(encoder.error(&e)).await;
                        return;
                    }
                }
            }
            _ = &mut deadline => return,
            _ = spec.stop.cancelled() => return,
            _ = sender.closed() => return,
        }
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Streams answer with these headers: no caching, no proxy buffering.
pub fn streaming(body: Body, content_type: &'static str) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = axum::response::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
