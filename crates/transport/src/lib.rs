//! Node-to-node transport: HTTPS with mutual TLS under the federation PKI.
//!
//! A node's server demands a client certificate issued by the federation root and reads the
//! peer's segment from it (`urn:eaeu:segment:<SEG>`, see `trust::pki`). Handlers receive that
//! as a typed [`PeerIdentity`] in the request extensions, so the check "the sender address's
//! segment is the TLS peer's" can be made where the envelope is read. A connection whose
//! certificate names no segment is closed before any request is read.
//!
//! The crypto provider (aws-lc-rs) is passed to every builder explicitly: no process-wide
//! default is installed or needed.

pub mod client;
pub mod hop;
mod listen;
pub mod roles;

pub use listen::{ClientCertificate, ConnLimits, serve_http, serve_https};
pub use roles::Revoked;

/// How long a node's federation listener keeps an idle connection from a peer. Peers are
/// authenticated before any request is read and reuse their connections across pauses, so
/// this is longer than the adapter API's; the client side stops reusing a connection well
/// before it.
pub const PEER_IDLE: Duration = Duration::from_secs(90);

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use envelope::Segment;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The files a node uses for mutual TLS; configuration names them, never embeds them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The federation root certificate (the only trust anchor).
    pub ca: PathBuf,
    /// This node's TLS certificate.
    pub cert: PathBuf,
    /// This node's TLS private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `trust::pki::init` wrote for `segment` under `dir`.
    pub fn from_pki_dir(dir: &Path, segment: Segment) -> TlsFiles {
        let f = trust::pki::NodeFiles::in_dir(dir, segment);
        TlsFiles {
            ca: trust::pki::root_cert_path(dir),
            cert: f.tls_cert,
            key: f.tls_key,
        }
    }
}

/// Who is on the other end of a mutual-TLS connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub segment: Segment,
    /// The peer's leaf certificate (DER), kept as evidence.
    pub certificate: Arc<Vec<u8>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TransportError {
    TransportError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn key_file(path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e))
}

fn roots(path: &Path) -> Result<Arc<RootCertStore>, TransportError> {
    let mut store = RootCertStore::empty();
    for c in certs(path)? {
        store.add(c).map_err(|e| file_err(path, e))?;
    }
    Ok(Arc::new(store))
}

/// Server side: TLS 1.2/1.3, a client certificate from the federation root is mandatory.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TransportError> {
    server_config_revoking(files, Arc::default())
}

/// [`server_config`], refusing client certificates made for another role and those in
/// `revoked` (read at each handshake, so a newer trust list takes effect at once).
pub fn server_config_revoking(
    files: &TlsFiles,
    revoked: Arc<Revoked>,
) -> Result<Arc<ServerConfig>, TransportError> {
    let p = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(roots(&files.ca)?, p.clone())
        .build()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let verifier = Arc::new(roles::PeerClientVerifier { inner, revoked });
    let cfg = ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key_file(&files.key)?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// Client side: trusts only the federation root and presents this node's certificate.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TransportError> {
    client_config_revoking(files, Arc::default())
}

/// [`client_config`], refusing server certificates made for another role and those in
/// `revoked`.
pub fn client_config_revoking(
    files: &TlsFiles,
    revoked: Arc<Revoked>,
) -> Result<Arc<ClientConfig>, TransportError> {
    let p = provider();
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(&files.ca)?, p.clone())
            .build()
            .map_err(|e| TransportError::Tls(e.to_string()))?;
    let verifier = Arc::new(roles::PeerServerVerifier { inner, revoked });
    let cfg = ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certs(&files.cert)?, key_file(&files.key)?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// The adapter API's TLS: this node's certificate and key for the API's host name, and, when
/// `client_ca` is given, client certificates from that CA accepted (not demanded: an IS may
/// still send a bearer token instead). A client certificate must be made for TLS clients.
pub fn api_server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TransportError> {
    let p = provider();
    let builder = ServerConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let inner = WebPkiClientVerifier::builder_with_provider(roots(ca)?, p)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TransportError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(Arc::new(roles::PeerClientVerifier {
                inner,
                revoked: Arc::default(),
            }))
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(certs(cert)?, key_file(key)?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// The host name a node's TLS certificate carries (`kz.node.ortaq`), for SNI and checking.
pub fn node_host(segment: Segment) -> String {
    format!("{}.node.ortaq", segment.as_str().to_ascii_lowercase())
}

/// Serves `app` over mutual TLS until `shutdown` resolves. Each request carries the peer's
/// [`PeerIdentity`] as an extension. A handshake gets 10 seconds, on a task of its own, so a
/// slow or silent client never holds up the accept loop.
pub async fn serve_mtls(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), TransportError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let gate = listen::Gate::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            c = listen::accept(&listener) => c,
            _ = &mut shutdown => return Ok(()),
        };
        let Some(permit) = gate.admit(addr.ip()) else {
            listen::turn_away(tcp);
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::warn!(%addr, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            let Some(leaf) = leaf else {
                tracing::warn!(%addr, "peer sent no certificate");
                return;
            };
            let peer = match trust::pki::segment_of(&leaf) {
                Ok(segment) => PeerIdentity {
                    segment,
                    certificate: Arc::new(leaf),
                },
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "peer certificate names no segment");
                    return;
                }
            };
            let svc = tower::ServiceExt::map_request(
                app,
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    req
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            if let Err(e) = listen::http1(&limits)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
        });
    }
}
