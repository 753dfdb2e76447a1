//! kubectl without a cluster: standalone serves the API over HTTPS too (kubectl sends a bearer
//! token only over HTTPS) with a certificate from a CA it keeps under its data directory, and
//! writes a kubeconfig there with one user per token-file entry:
//! `kubectl --kubeconfig .curio/kubeconfig --user vera get models -n team-a`.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::json;

use crate::webhook::certs::{self, CertError, Issued};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("serializing the kubeconfig: {0}")]
    Yaml(String),
}

/// The files of the serving certificate under `DIR/pki`.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn in_dir(data_dir: &Path) -> Self {
        let dir = data_dir.join("pki");
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), KubeconfigError> {
    let fail = |source| KubeconfigError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    use std::io::Write as _;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(fail)
}

/// The CA's PEM: the stored certificate when it still serves `names`, else a fresh CA and
/// certificate written in its place.
pub fn ensure_certificate(pki: &Pki, names: &[String]) -> Result<String, KubeconfigError> {
    let now = chrono::Utc::now();
    if let (Ok(ca), Ok(cert), true) = (
        std::fs::read_to_string(&pki.ca),
        std::fs::read_to_string(&pki.cert),
        pki.key.exists(),
    ) && matches!(certs::renewal_reason(&cert, names, now), Ok(None))
    {
        return Ok(ca);
    }
    let Issued {
        ca_pem,
        cert_pem,
        key_pem,
    } = certs::issue_named(names, now, "curio-standalone")?;
    write(&pki.ca, &ca_pem, false)?;
    write(&pki.cert, &cert_pem, false)?;
    write(&pki.key, &key_pem, true)?;
    Ok(ca_pem)
}

/// A kubeconfig for `server`: one cluster, one user per (name, token) (the first token of a
/// name), and a context whose default user is the first.
pub fn render(
    server: &str,
    ca_pem: &str,
    users: &[(String, String)],
) -> Result<String, KubeconfigError> {
    let mut seen = std::collections::BTreeSet::new();
    let users: Vec<&(String, String)> = users
        .iter()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "curio-standalone",
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": users.iter().map(|(name, token)| json!({"name": name, "user": {"token": token}})).collect::<Vec<_>>(),
        "contexts": [{
            "name": "curio-standalone",
            "context": {
                "cluster": "curio-standalone",
                "user": users.first().map(|(name, _)| name.as_str()).unwrap_or_default(),
            },
        }],
        "current-context": "curio-standalone",
    });
    serde_saphyr::to_string(&config).map_err(|e| KubeconfigError::Yaml(e.to_string()))
}

/// Writes `render`'s kubeconfig to `path`, readable by its owner only (it holds tokens).
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    users: &[(String, String)],
) -> Result<(), KubeconfigError> {
    write(path, &render(server, ca_pem, users)?, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_per_name_and_the_first_is_the_default() {
        let users = vec![
            ("vera".to_owned(), "t1".to_owned()),
            ("bob".to_owned(), "t2".to_owned()),
            ("vera".to_owned(), "t3".to_owned()),
        ];
        let text = render("https://127.0.0.1:8443", "PEM", &users).unwrap();
        let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(config["users"].as_array().unwrap().len(), 2);
        assert_eq!(config["users"][0]["user"]["token"], "t1");
        assert_eq!(config["contexts"][0]["context"]["user"], "vera");
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:8443"
        );
    }
}
