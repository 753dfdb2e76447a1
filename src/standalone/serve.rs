//! What standalone mode serves besides the API: the folder's `files/` (content for URL
//! sources), and the start-up banner.

use std::path::{Component, Path, PathBuf};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::access::{
    authn::StaticTokens,
    authz::{Attributes, StaticRbac},
};

/// `GET /files/{path}`: a file under `root`, never outside it, with an ETag over its content,
/// so a URL source's refresh of an unchanged file is a `304` (as from any web server).
pub fn files_router(root: PathBuf) -> Router {
    Router::new()
        .route("/files/{*path}", get(file))
        .with_state(root)
}

/// `relative` under `root`, if it names no parent, root or prefix component.
fn confined(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(relative))
}

async fn file(
    State(root): State<PathBuf>,
    UrlPath(path): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let Some(full) = confined(&root, &path) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    match tokio::fs::read(&full).await {
        Ok(bytes) => crate::api::validated_bytes(&request, bytes, content_type(&full)),
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// The media type a catalog file is served as, from its extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/yaml",
        _ => "application/octet-stream",
    }
}

/// The first user who may list models (in `group`) in one of `namespaces` and not in
/// another, with the two namespaces: the banner's example of both answers.
fn user_allowed_and_denied<'a>(
    tokens: &StaticTokens,
    rbac: &StaticRbac,
    group: &'static str,
    namespaces: &'a [String],
) -> Option<(crate::access::identity::UserInfo, &'a String, &'a String)> {
    let may_list = |user: &crate::access::identity::UserInfo, namespace: &str| {
        rbac.decide(&Attributes {
            user: user.clone(),
            group,
            verb: "list",
            resource: "models".into(),
            namespace: namespace.into(),
            name: None,
        })
        .allowed()
    };
    tokens.users().into_iter().find_map(|user| {
        let allowed = namespaces.iter().find(|ns| may_list(&user, ns))?;
        let denied = namespaces.iter().find(|ns| !may_list(&user, ns))?;
        Some((user, allowed, denied))
    })
}

/// Three curl commands that show a list, a get and a 403, chosen from the tokens and RBAC.
pub fn try_commands(
    base: &str,
    token_file: &Path,
    tokens: &StaticTokens,
    rbac: &StaticRbac,
    namespaces: &[String],
    model_in: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let Some((user, allowed, denied)) =
        user_allowed_and_denied(tokens, rbac, crate::access::authz::API_GROUP, namespaces)
    else {
        return Vec::new();
    };
    let auth = format!(
        "-H \"Authorization: Bearer $(awk -F, '$2==\"{}\"{{print $1}}' {})\"",
        user.username,
        token_file.display()
    );
    let mut commands = vec![format!(
        "curl -s {auth} {base}/api/v1/namespaces/{allowed}/models    # {} lists {allowed}'s models",
        user.username
    )];
    if let Some(model) = model_in(allowed) {
        commands.push(format!(
            "curl -s {auth} {base}/api/v1/namespaces/{allowed}/models/{model}"
        ));
    }
    commands.push(format!(
        "curl -s {auth} {base}/api/v1/namespaces/{denied}/models    # 403: {} may not read {denied}",
        user.username
    ));
    commands
}

/// kubectl commands for the banner: a user who may list models in one namespace and not in
/// another, reading both through the HTTPS listener with the written kubeconfig.
pub fn kubectl_commands(
    kubeconfig: &Path,
    tokens: &StaticTokens,
    rbac: &StaticRbac,
    namespaces: &[String],
) -> Vec<String> {
    let Some((user, allowed, denied)) = user_allowed_and_denied(
        tokens,
        rbac,
        crate::access::authz::CATALOG_API_GROUP,
        namespaces,
    ) else {
        return Vec::new();
    };
    let kubectl = format!(
        "kubectl --kubeconfig {} --user {}",
        kubeconfig.display(),
        user.username
    );
    vec![
        format!("{kubectl} get models -n {allowed}"),
        format!("{kubectl} get catalog -n {allowed} -o wide"),
        format!(
            "{kubectl} get models -n {denied}    # Forbidden: {} may not read {denied}",
            user.username
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_stay_under_the_root() {
        let root = Path::new("/srv/files");
        assert_eq!(
            confined(root, "team-a/agents.yaml"),
            Some(PathBuf::from("/srv/files/team-a/agents.yaml"))
        );
        for bad in ["../secret.yaml", "team-a/../../x", "/etc/passwd", "./x"] {
            assert_eq!(confined(root, bad), None, "{bad}");
        }
    }

    async fn get(router: &Router, path: &str, if_none_match: Option<&str>) -> Response {
        use tower::ServiceExt;
        let mut request = axum::http::Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(axum::http::header::IF_NONE_MATCH, tag);
        }
        router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn etag(response: &Response) -> String {
        response.headers()[axum::http::header::ETAG]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A URL source's refresh of an unchanged file gets a 304; a changed file a new tag,
    /// even when it keeps its size and is rewritten within the same clock tick.
    #[tokio::test]
    async fn files_carry_an_etag_over_their_content() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("team-a")).unwrap();
        let file = root.path().join("team-a/catalog.json");
        std::fs::write(&file, br#"{"models": [1]}"#).unwrap();
        let router = files_router(root.path().to_owned());

        let first = get(&router, "/files/team-a/catalog.json", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
        let tag = etag(&first);
        let again = get(&router, "/files/team-a/catalog.json", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let body = axum::body::to_bytes(again.into_body(), 1024).await.unwrap();
        assert!(body.is_empty());

        std::fs::write(&file, br#"{"models": [2]}"#).unwrap();
        let changed = get(&router, "/files/team-a/catalog.json", Some(&tag)).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(etag(&changed), tag);
        let body = axum::body::to_bytes(changed.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"models": [2]}"#);

        let missing = get(&router, "/files/team-a/nope.json", Some(&tag)).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
