//! HTTPS and the authenticating proxy, over real TLS handshakes: identity headers count only
//! on connections whose client certificate the proxy CA signed for an allowed common name.

use std::{net::SocketAddr, path::Path, sync::Arc};

use crate::common::{api::*, postgres_store};
use curio::{
    api,
    server::{self, TlsSettings},
};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName},
};
use tokio_rustls::TlsConnector;

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate and its key, signed by `issuer`.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    common_name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
    String,
    String,
) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(sans).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    let der_key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (cert.der().clone(), der_key, cert.pem(), key.serialize_pem())
}

struct Pki {
    server_ca: CertifiedIssuer<'static, KeyPair>,
    proxy_ca: CertifiedIssuer<'static, KeyPair>,
    other_ca: CertifiedIssuer<'static, KeyPair>,
}

async fn serve(dir: &Path, pki: &Pki) -> SocketAddr {
    serve_with_trust(dir, pki).await.0
}

async fn serve_with_trust(
    dir: &Path,
    pki: &Pki,
) -> (SocketAddr, Arc<curio::access::proxy::ProxyTrust>) {
    let (_, _, cert_pem, key_pem) = leaf(
        &pki.server_ca,
        "curio-api",
        vec!["localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(dir.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), key_pem).unwrap();
    std::fs::write(dir.join("proxy-ca.crt"), pki.proxy_ca.pem()).unwrap();
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = TlsSettings {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        proxy_client_ca: Some(dir.join("proxy-ca.crt")),
        proxy_allowed_names: vec!["front-proxy".into()],
    };
    let router = api::router(static_state(store));
    let trust = server::proxy_trust(&settings).unwrap();
    let serving = trust.clone();
    tokio::spawn(async move {
        server::serve_https(listener, router, settings, serving, std::future::pending())
            .await
            .unwrap();
    });
    (addr, trust)
}

/// One GET over a fresh TLS connection; the status code, or the connection error.
async fn get(
    addr: SocketAddr,
    pki: &Pki,
    client_cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<u16, String> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.server_ca.der().clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header("host", "localhost");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn identity_headers_count_only_from_a_verified_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki {
        server_ca: ca("server-ca"),
        proxy_ca: ca("proxy-ca"),
        other_ca: ca("other-ca"),
    };
    let addr = serve(dir.path(), &pki).await;
    let as_bob = [
        ("X-Remote-User", "bob"),
        ("X-Remote-Group", "team-b-admins"),
    ];
    let path = "/api/v1/namespaces/team-b/models";
    let client = |issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str| {
        let (cert, key, _, _) = leaf(issuer, cn, vec![], ExtendedKeyUsagePurpose::ClientAuth);
        Some((cert, key))
    };

    assert_eq!(
        get(
            addr,
            &pki,
            client(&pki.proxy_ca, "front-proxy"),
            path,
            &as_bob
        )
        .await,
        Ok(200),
        "the verified proxy"
    );
    assert_eq!(
        get(addr, &pki, None, path, &as_bob).await,
        Ok(403),
        "no client certificate: headers ignored"
    );
    assert_eq!(
        get(
            addr,
            &pki,
            client(&pki.proxy_ca, "someone-else"),
            path,
            &as_bob
        )
        .await,
        Ok(403),
        "right CA, wrong name"
    );
    assert!(
        get(
            addr,
            &pki,
            client(&pki.other_ca, "front-proxy"),
            path,
            &as_bob
        )
        .await
        .is_err(),
        "a certificate from another CA fails the handshake"
    );
    // Ordinary clients still use bearer tokens over the same port.
    assert_eq!(
        get(
            addr,
            &pki,
            None,
            "/api/v1/namespaces/team-a/models",
            &[("Authorization", "Bearer vera-token")]
        )
        .await,
        Ok(200)
    );
    // A verified proxy without X-Remote-User falls back to the token (here: none, anonymous).
    assert_eq!(
        get(addr, &pki, client(&pki.proxy_ca, "front-proxy"), path, &[]).await,
        Ok(403)
    );
}

/// The cluster's `extension-apiserver-authentication` ConfigMap adds a proxy (its CA, any name
/// when its list is empty, its own header names) beside the flags' one, and a rotated CA
/// replaces the old one without a restart.
#[tokio::test]
async fn the_clusters_front_proxy_is_trusted_and_follows_rotation() {
    use curio::cluster::front_proxy;
    use k8s_openapi::api::core::v1::ConfigMap;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki {
        server_ca: ca("server-ca"),
        proxy_ca: ca("proxy-ca"),
        other_ca: ca("aggregator-ca"),
    };
    let (addr, trust) = serve_with_trust(dir.path(), &pki).await;
    let configmap = |ca_pem: String| ConfigMap {
        data: Some(
            [
                ("requestheader-client-ca-file".to_owned(), ca_pem),
                ("requestheader-allowed-names".to_owned(), "[]".to_owned()),
                (
                    "requestheader-username-headers".to_owned(),
                    "[\"X-Auth-User\"]".to_owned(),
                ),
                (
                    "requestheader-group-headers".to_owned(),
                    "[\"X-Auth-Group\"]".to_owned(),
                ),
                (
                    "requestheader-extra-headers-prefix".to_owned(),
                    "[\"X-Auth-Extra-\"]".to_owned(),
                ),
            ]
            .into(),
        ),
        ..Default::default()
    };
    front_proxy::apply(&trust, Some(&configmap(pki.other_ca.pem())));
    let aggregator = || {
        let (cert, key, _, _) = leaf(
            &pki.other_ca,
            "aggregator",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Some((cert, key))
    };
    let path = "/api/v1/namespaces/team-b/models";
    assert_eq!(
        get(addr, &pki, aggregator(), path, &[("X-Auth-User", "bob")]).await,
        Ok(200),
        "the cluster's proxy, any name, its header"
    );
    assert_eq!(
        get(addr, &pki, aggregator(), path, &[("X-Remote-User", "bob")]).await,
        Ok(403),
        "another source's header name is not this proxy's"
    );
    // The flags' proxy still works beside it.
    let (cert, key, _, _) = leaf(
        &pki.proxy_ca,
        "front-proxy",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    assert_eq!(
        get(
            addr,
            &pki,
            Some((cert, key)),
            path,
            &[("X-Remote-User", "bob")]
        )
        .await,
        Ok(200)
    );
    // Rotation: a new CA replaces the old; the old one's certificates fail the handshake.
    let rotated = ca("aggregator-ca-2");
    front_proxy::apply(&trust, Some(&configmap(rotated.pem())));
    assert!(
        get(addr, &pki, aggregator(), path, &[("X-Auth-User", "bob")])
            .await
            .is_err(),
        "the rotated-out CA is no longer trusted"
    );
    let (cert, key, _, _) = leaf(
        &rotated,
        "aggregator",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    assert_eq!(
        get(
            addr,
            &pki,
            Some((cert, key)),
            path,
            &[("X-Auth-User", "bob")]
        )
        .await,
        Ok(200)
    );
    // A malformed ConfigMap keeps what was trusted.
    front_proxy::apply(&trust, Some(&configmap("not a certificate".into())));
    let (cert, key, _, _) = leaf(
        &rotated,
        "aggregator",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    assert_eq!(
        get(
            addr,
            &pki,
            Some((cert, key)),
            path,
            &[("X-Auth-User", "bob")]
        )
        .await,
        Ok(200)
    );
}
