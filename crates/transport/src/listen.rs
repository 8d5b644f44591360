//! What every listener of a node holds to: a cap on its connections (in all, and per source
//! address), a time within which each request's header must arrive (which also closes a
//! kept-alive connection left idle), and back-pressure instead of collapse: a connection over a
//! cap gets `503 Service Unavailable` with `Retry-After` and is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;

/// How much a listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once, in all.
    pub max_total: usize,
    /// Connections open at once from one source address.
    pub max_per_source: usize,
    /// A request's header must arrive within this; a kept-alive connection idle this long is
    /// closed.
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_total: 4096,
            max_per_source: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts open connections; a [`Permit`] is one of them until dropped.
pub(crate) struct Gate {
    limits: ConnLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

pub(crate) struct Permit {
    gate: Arc<Gate>,
    source: IpAddr,
}

impl Gate {
    pub(crate) fn new(limits: ConnLimits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A permit for one more connection from `source`, unless a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, source: IpAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from = open.1.get(&source).copied().unwrap_or(0);
        if open.0 >= self.limits.max_total || from >= self.limits.max_per_source {
            return None;
        }
        open.0 += 1;
        open.1.insert(source, from + 1);
        Some(Permit {
            gate: self.clone(),
            source,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.source);
            }
        }
    }
}

/// The answer to a connection over a cap, written before the request is read.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 47\r\nConnection: close\r\n\r\nthe node is at its connection limit; retry soon";

/// Turns a connection away with [`BUSY`], spending at most a second on it.
pub(crate) fn turn_away(mut tcp: tokio::net::TcpStream) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = tcp.write_all(BUSY).await;
            let _ = tcp.shutdown().await;
        })
        .await;
    });
}

/// The next connection. A failed accept (out of descriptors, say) waits a little rather than
/// spin, and the listener goes on.
pub(crate) async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => return c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// An HTTP/1.1 connection builder that holds to `limits`.
pub(crate) fn http1(limits: &ConnLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    b
}

/// Serves `app` over plain HTTP/1.1 on `listener` within `limits` until `shutdown` resolves,
/// then takes no new connection and lets the requests in flight finish (up to 30 s).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let gate = Gate::new(limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            c = accept(&listener) => c,
            _ = &mut shutdown => break,
        };
        let Some(permit) = gate.admit(addr.ip()) else {
            turn_away(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = http1(&limits).serve_connection(TokioIo::new(tcp), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

/// The certificate an adapter-API client showed (DER), when it showed one; its chain was
/// checked against the configured client CA in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Arc<Vec<u8>>);

/// [`serve_http`] over TLS (`config`), for the adapter API: the handshake is due within the
/// header timeout, and a client certificate, when shown, reaches handlers as a
/// [`ClientCertificate`] extension.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let gate = Gate::new(limits);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            c = accept(&listener) => c,
            _ = &mut shutdown => break,
        };
        let Some(permit) = gate.admit(addr.ip()) else {
            turn_away(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            let shown = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ClientCertificate(Arc::new(c.as_ref().to_vec())));
            let svc = tower::ServiceExt::map_request(
                app,
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    if let Some(c) = &shown {
                        req.extensions_mut().insert(c.clone());
                    }
                    req
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = http1(&limits).serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}
