//! What standalone mode serves besides the API: the folder's `files/` (content for URL
//! sources), and the start-up banner.

use std::path::{Component, Path, PathBuf};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::access::{
    authn::StaticTokens,
    authz::{Attributes, StaticRbac},
};

/// `GET /files/{path}`: a file under `root`, never outside it.
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

async fn file(State(root): State<PathBuf>, UrlPath(path): UrlPath<String>) -> Response {
    let Some(full) = confined(&root, &path) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    match tokio::fs::read(&full).await {
        Ok(bytes) => bytes.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
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
}
