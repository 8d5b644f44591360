//! Mutual TLS between nodes, over real sockets: a peer with a federation certificate is served
//! and its segment reaches the handler; a certificate from another root, or none at all, never
//! gets a request through; a client refuses a server outside the federation.

use std::sync::Arc;

use axum::Extension;
use axum::routing::get;
use envelope::Segment;
use rustls_pki_types::ServerName;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::{PeerIdentity, TlsFiles, client_config, node_host, serve_mtls, server_config};

fn seg(s: &str) -> Segment {
    Segment::parse(s).unwrap()
}

struct Federation {
    dir: tempfile::TempDir,
}

impl Federation {
    fn new(segments: &[&str]) -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let segs: Vec<Segment> = segments.iter().map(|s| seg(s)).collect();
        trust::pki::init(dir.path(), &segs, OffsetDateTime::now_utc()).unwrap();
        Federation { dir }
    }
    fn files(&self, s: &str) -> TlsFiles {
        TlsFiles::from_pki_dir(self.dir.path(), seg(s))
    }
}

/// Starts the EEC node's mTLS server answering `/whoami` with the peer's segment.
async fn eec_server(f: &Federation) -> (u16, tokio::sync::oneshot::Sender<()>) {
    eec_server_revoking(f, Arc::default()).await
}

/// [`eec_server`], refusing the certificates `revoked` holds at each handshake.
async fn eec_server_revoking(
    f: &Federation,
    revoked: Arc<transport::Revoked>,
) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/whoami",
        get(|Extension(p): Extension<PeerIdentity>| async move { format!("peer={}", p.segment) }),
    );
    let cfg = transport::server_config_revoking(&f.files("EEC"), revoked).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_mtls(
        listener,
        cfg,
        app,
        Default::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (port, tx)
}

/// Connects with `client` to the EEC node and asks `/whoami`: Ok(response) or the error text.
async fn whoami(port: u16, client: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(node_host(Segment::Eec)).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: eec.node.ortaq\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[tokio::test]
async fn a_federation_peer_is_served_and_its_segment_reaches_the_handler() {
    let f = Federation::new(&["EEC", "KZ", "RU"]);
    let (port, _stop) = eec_server(&f).await;
    for s in ["KZ", "RU"] {
        let r = whoami(port, client_config(&f.files(s)).unwrap())
            .await
            .unwrap();
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with(&format!("peer={s}")),
            "{r}"
        );
    }
}

#[tokio::test]
async fn a_certificate_from_outside_the_federation_gets_no_request_through() {
    let f = Federation::new(&["EEC", "KZ"]);
    let outsider = Federation::new(&["KZ"]);
    let (port, _stop) = eec_server(&f).await;
    // The outsider trusts the real root (so it accepts the server) but its own certificate
    // comes from another root.
    let mut files = outsider.files("KZ");
    files.ca = f.files("KZ").ca;
    let r = whoami(port, client_config(&files).unwrap()).await;
    assert!(
        r.as_ref().map_or(true, |s| !s.contains("200")),
        "served: {r:?}"
    );

    // No client certificate at all.
    let roots = {
        let mut store = rustls::RootCertStore::empty();
        use rustls_pki_types::pem::PemObject;
        for c in rustls_pki_types::CertificateDer::pem_file_iter(&f.files("KZ").ca).unwrap() {
            store.add(c.unwrap()).unwrap();
        }
        store
    };
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let r = whoami(port, Arc::new(anonymous)).await;
    assert!(
        r.as_ref().map_or(true, |s| !s.contains("200")),
        "served without a certificate: {r:?}"
    );

    // The server still serves members afterwards.
    assert!(
        whoami(port, client_config(&f.files("KZ")).unwrap())
            .await
            .unwrap()
            .ends_with("peer=KZ")
    );
}

#[tokio::test]
async fn a_client_refuses_a_server_outside_the_federation() {
    let f = Federation::new(&["EEC", "KZ"]);
    let other = Federation::new(&["EEC"]);
    let (port, _stop) = eec_server(&other).await;
    let r = whoami(port, client_config(&f.files("KZ")).unwrap()).await;
    let e = r.expect_err("connected to a server from another root");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn configuration_errors_name_the_file() {
    let f = Federation::new(&["KZ"]);
    let mut files = f.files("KZ");
    files.key = f.dir.path().join("missing.key");
    let e = server_config(&files).unwrap_err().to_string();
    assert!(e.contains("missing.key"), "{e}");
}

/// Key roles and revocation at the handshake: a node's signing certificate and key shown as a
/// TLS client certificate are refused; a TLS certificate put in the revoked set is refused at
/// the next handshake by the running server, others still served; a client whose set revokes
/// the server's certificate does not connect.
#[tokio::test]
async fn a_signing_certificate_or_a_revoked_one_does_not_get_past_the_handshake() {
    let f = Federation::new(&["EEC", "KZ", "RU"]);
    let revoked = Arc::new(transport::Revoked::default());
    let (port, _stop) = eec_server_revoking(&f, revoked.clone()).await;
    let kz = f.files("KZ");
    let served = whoami(port, client_config(&kz).unwrap()).await.unwrap();
    assert!(served.contains("peer=KZ"), "{served}");

    let node = trust::pki::NodeFiles::in_dir(f.dir.path(), seg("KZ"));
    let as_tls = TlsFiles {
        cert: node.signing_cert.clone(),
        key: node.signing_key.clone(),
        ..kz.clone()
    };
    let r = whoami(port, client_config(&as_tls).unwrap()).await;
    assert!(r.is_err(), "a signing certificate was taken for TLS: {r:?}");
    // Refused for its role, not for its key: the checks themselves.
    let sig_der =
        trust::pki::pem_to_der(&std::fs::read_to_string(&node.signing_cert).unwrap()).unwrap();
    let tls_der = trust::pki::pem_to_der(&std::fs::read_to_string(&kz.cert).unwrap()).unwrap();
    use transport::roles::{TlsSide, check_signing_role, check_tls_role};
    assert!(check_tls_role(&sig_der, TlsSide::Client).is_err());
    assert!(check_tls_role(&tls_der, TlsSide::Client).is_ok());
    assert!(check_tls_role(&tls_der, TlsSide::Server).is_ok());
    assert!(check_signing_role(&tls_der).is_err() && check_signing_role(&sig_der).is_ok());

    let der =
        |p: &std::path::Path| trust::pki::pem_to_der(&std::fs::read_to_string(p).unwrap()).unwrap();
    revoked.replace([transport::Revoked::digest(&der(&kz.cert))]);
    let r = whoami(port, client_config(&kz).unwrap()).await;
    assert!(r.is_err(), "a revoked certificate was served: {r:?}");
    let ru = whoami(port, client_config(&f.files("RU")).unwrap())
        .await
        .unwrap();
    assert!(ru.contains("peer=RU"), "{ru}");

    let theirs = Arc::new(transport::Revoked::default());
    theirs.replace([transport::Revoked::digest(&der(&f.files("EEC").cert))]);
    let e = whoami(
        port,
        transport::client_config_revoking(&f.files("RU"), theirs).unwrap(),
    )
    .await
    .expect_err("connected to a revoked server");
    assert!(e.to_lowercase().contains("revoked"), "{e}");
}
