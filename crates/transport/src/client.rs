//! The client side of a node-to-node link: HTTPS with mutual TLS to one peer, keeping idle
//! HTTP/1.1 connections for reuse.
//!
//! The peer is dialled at its configured address but authenticated by name: the TLS server
//! name is the peer's node host (`ru.node.ortaq`), which only a certificate issued by the
//! federation root for that segment carries, and the certificate's segment URI is checked
//! again after the handshake. So a wrong address or a stolen IP never reaches another node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use envelope::Segment;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::{TransportError, node_host};

/// How long a kept connection is reused: well under the idle time after which a node's
/// federation listener closes one (`crate::PEER_IDLE`).
const IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(45);

/// Idle connections kept per peer.
const IDLE_MAX: usize = 256;
/// Largest answer read from a peer (an RCV signal or a Fault quoting the problem message).
const RESPONSE_MAX: usize = 32 * 1024 * 1024;

/// What a peer answered.
#[derive(Debug)]
pub struct PeerResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Why a request to a peer did not get an answer. All of these are worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("TLS with {peer}: {message}")]
    Tls { peer: Segment, message: String },
    #[error("request to {peer} failed: {message}")]
    Request { peer: Segment, message: String },
    #[error("answer from {peer} broke off: {message}")]
    Response { peer: Segment, message: String },
    #[error("{peer} did not answer within {seconds} s")]
    Timeout { peer: Segment, seconds: u64 },
}

/// A link to one peer node.
pub struct PeerClient {
    peer: Segment,
    addr: String,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    /// Kept connections, and since when each has been idle.
    idle: Mutex<Vec<(std::time::Instant, SendRequest<Full<Bytes>>)>>,
    timeout: Duration,
}

impl PeerClient {
    /// A link to the node of `peer`, reached at `addr` (`host:port`).
    pub fn new(
        tls: Arc<ClientConfig>,
        peer: Segment,
        addr: &str,
        timeout: Duration,
    ) -> Result<PeerClient, TransportError> {
        let server_name = ServerName::try_from(node_host(peer))
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        Ok(PeerClient {
            peer,
            addr: addr.to_owned(),
            connector: tokio_rustls::TlsConnector::from(tls),
            server_name,
            idle: Mutex::new(Vec::new()),
            timeout,
        })
    }

    pub fn peer(&self) -> Segment {
        self.peer
    }

    async fn exchange(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        path: &str,
        content_type: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<PeerResponse, SendError> {
        let failed = |message: String| SendError::Request {
            peer: self.peer,
            message,
        };
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, node_host(self.peer))
            .header(hyper::header::CONTENT_TYPE, content_type);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, RESPONSE_MAX)
            .collect()
            .await
            .map_err(|e| SendError::Response {
                peer: self.peer,
                message: e.to_string(),
            })?
            .to_bytes();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push((std::time::Instant::now(), sender));
        }
        Ok(PeerResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| SendError::Connect {
                addr: self.addr.clone(),
                message: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let tls_err = |message: String| SendError::Tls {
            peer: self.peer,
            message,
        };
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| tls_err(e.to_string()))?;
        // The host name already proved the segment; the URI is the federation's own claim.
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| tls_err("no server certificate".into()))?;
        match trust::pki::segment_of(leaf.as_ref()) {
            Ok(s) if s == self.peer => {}
            Ok(s) => return Err(tls_err(format!("the server is node {s}"))),
            Err(e) => return Err(tls_err(e.to_string())),
        }
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| tls_err(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "peer connection closed");
            }
        });
        Ok(sender)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((since, s)) = idle.pop() {
            // A connection idle for long may be closing at the peer's end (its listener ends
            // idle connections, `PEER_IDLE`): a fresh one costs less than a failed attempt.
            if s.is_ready() && since.elapsed() < IDLE_REUSE {
                return Some(s);
            }
        }
        None
    }

    /// POSTs `body` to `path` with `headers` and reads the whole answer.
    ///
    /// A kept connection the peer closed meanwhile fails without the request having been
    /// processed; that case is retried once at once on a fresh connection. (Every request a
    /// node makes is safe to repeat: the receiver deduplicates by MessageID.)
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<PeerResponse, SendError> {
        let work = async {
            if let Some(sender) = self.take_idle() {
                match self
                    .exchange(sender, path, content_type, headers, body.clone())
                    .await
                {
                    Err(SendError::Request { message, .. }) => {
                        tracing::debug!(peer = %self.peer, error = %message, "kept connection failed; reconnecting");
                    }
                    other => return other,
                }
            }
            let sender = self.connect().await?;
            self.exchange(sender, path, content_type, headers, body)
                .await
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| SendError::Timeout {
                peer: self.peer,
                seconds: self.timeout.as_secs(),
            })?
    }
}

impl SendError {
    /// True when the peer cannot be reached at all (as opposed to one request failing).
    pub fn peer_unreachable(&self) -> bool {
        matches!(
            self,
            SendError::Connect { .. } | SendError::Tls { .. } | SendError::Timeout { .. }
        )
    }
}
