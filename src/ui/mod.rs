//! The catalog browser under `/ui/`: one HTML shell, one script and one stylesheet compiled
//! into the binary. The script reads the public JSON API with the caller's own credentials
//! (a bearer token kept in the tab's session storage, or an authenticating proxy's identity),
//! so the UI can show nothing the API would not; these routes serve only static files.

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

/// A file of the browser, compiled in, with a validator from its contents: a browser
/// revalidates (`no-cache`) and gets a 304 until the binary serves a different file.
struct StaticFile {
    content_type: &'static str,
    body: &'static str,
    etag: LazyLock<String>,
}

fn etag_of(body: &str) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");

static INDEX: StaticFile = StaticFile {
    content_type: "text/html; charset=utf-8",
    body: INDEX_HTML,
    etag: LazyLock::new(|| etag_of(INDEX_HTML)),
};
static SCRIPT: StaticFile = StaticFile {
    content_type: "text/javascript; charset=utf-8",
    body: APP_JS,
    etag: LazyLock::new(|| etag_of(APP_JS)),
};
static STYLE: StaticFile = StaticFile {
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/app.css"),
    etag: LazyLock::new(|| etag_of(include_str!("assets/app.css"))),
};
static ICON: StaticFile = StaticFile {
    content_type: "image/svg+xml",
    body: include_str!("assets/icon.svg"),
    etag: LazyLock::new(|| etag_of(include_str!("assets/icon.svg"))),
};

/// Only this origin's script and stylesheet; no inline code, no plugins, no framing, no
/// other origins to talk to. Catalog text cannot become code even if it reached the DOM as
/// markup.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|h: HeaderMap| async move { serve(&h, &INDEX) }))
        .route(
            "/ui/assets/app.js",
            get(|h: HeaderMap| async move { serve(&h, &SCRIPT) }),
        )
        .route(
            "/ui/assets/app.css",
            get(|h: HeaderMap| async move { serve(&h, &STYLE) }),
        )
        .route(
            "/ui/assets/icon.svg",
            get(|h: HeaderMap| async move { serve(&h, &ICON) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/ui/assets/icon.svg") }),
        )
        // Every other page of the browser is the same shell; the script routes by path.
        .route(
            "/ui/{*path}",
            get(|h: HeaderMap| async move { serve(&h, &INDEX) }),
        )
}

fn serve(request: &HeaderMap, file: &'static StaticFile) -> Response {
    let tag = file.etag.as_str();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, "")
    } else {
        (StatusCode::OK, file.body)
    };
    (
        status,
        [
            (header::ETAG, HeaderValue::from_static(tag)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_parses_markup() {
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(forbidden), "app.js uses {forbidden}");
        }
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains("style="));
        // No event-handler attribute (` onload=`, ` onclick=`, …).
        let handler = INDEX_HTML.match_indices(" on").any(|(i, _)| {
            let rest = &INDEX_HTML[i + 3..];
            let name_end = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            name_end > 0 && rest[name_end..].starts_with('=')
        });
        assert!(!handler, "index.html has an event-handler attribute");
        // The only script is the external module.
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(INDEX_HTML.contains(r#"<script src="/ui/assets/app.js"></script>"#));
    }
}
