//! The catalog browser under `/ui/`: one HTML shell, one script and one stylesheet compiled
//! into the binary. The script reads the public JSON API with the caller's own credentials
//! (a bearer token kept in the tab's session storage, or an authenticating proxy's identity),
//! so the UI can show nothing the API would not; these routes serve only static files.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");

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
        .route("/ui/", get(|| async { page() }))
        .route(
            "/ui/assets/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/assets/app.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/ui/assets/icon.svg",
            get(|| async { file("image/svg+xml", ICON) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/ui/assets/icon.svg") }),
        )
        // Every other page of the browser is the same shell; the script routes by path.
        .route("/ui/{*path}", get(|| async { page() }))
}

fn page() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
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
            // Revalidated each time: a new binary's script is picked up at once.
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
            assert!(!SCRIPT.contains(forbidden), "app.js uses {forbidden}");
        }
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        assert!(!INDEX.contains("<style"));
        assert!(!INDEX.contains("style="));
        assert!(!INDEX.contains(" on"));
        // The only script is the external module.
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(INDEX.contains(r#"<script type="module" src="/ui/assets/app.js"></script>"#));
    }
}
