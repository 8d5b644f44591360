//! A node: the integration gateway of one segment (EEC or a member state) and the adapter API
//! its authorities' information systems talk to.
//!
//! The node turns what an IS submits into a Decision No. 5 envelope, stamps `int:Integration`,
//! stores it durably, and routes it; a message between two participants of the same node takes
//! the same durable path (outbox → delivery worker → recipient's inbox) as any other. Nothing is
//! answered before the store has committed it. ISs reach it through the one adapter boundary
//! (`adapter::Adapter`): over HTTP (`api`), or in-process ([`LocalAdapter`]) for the services
//! and applications that run beside it.

pub mod api;
pub mod config;
pub mod console;
mod conversations;
mod delivery;
pub mod evidence;
pub mod federation;
mod gateway;
pub mod heavy;
pub mod identity;
pub mod journal;
pub mod keys;
pub mod legal;
mod local;
pub mod metrics;
pub mod peers;
mod readcache;
mod record;
pub mod reference;
mod screen;
pub mod stamping;
pub mod trusted;

use std::sync::Arc;

use envelope::{EnvelopeError, UrnUuid};
use store::StoreError;
use time::OffsetDateTime;
use tokio::sync::watch;

pub use adapter::{Clock, Submission, system_clock};
pub use config::NodeConfig;
pub use delivery::stamp_checkpoints;
pub use gateway::{Node, TOKEN_RECHECK, token_hash};
pub use local::LocalAdapter;

pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnknownRecipient(String),
    #[error("{0}")]
    NoRoute(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Store(StoreError),
    /// The node could not start: configuration, keys, files.
    #[error("{0}")]
    Startup(String),
    /// Something inside the node failed while it was running (signing, a worker, a file it
    /// keeps); the request was not carried out.
    #[error("internal error: {0}")]
    Internal(String),
    /// A legally significant message without a valid document signature.
    #[error("{0}")]
    Unsigned(String),
    /// Evidence a peer sent with a message does not hold (a receipt no trusted third party
    /// signed, about another document, or a time stamp that does not cover it).
    #[error("{0}")]
    Evidence(String),
    /// The node has as much heavy work running and waiting as it allows; retry later.
    #[error("{0}")]
    Busy(#[from] heavy::HeavyError),
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => NodeError::Conflict(m),
            e => NodeError::Store(e),
        }
    }
}

/// What the node tells the IS once a message is durably accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: UrnUuid,
    pub track_id: String,
    pub accept_time: OffsetDateTime,
    pub conversation_id: Option<UrnUuid>,
    /// True when this MessageID had been accepted before: the original receipt is repeated.
    pub duplicate: bool,
}

/// Serves the adapter API on `listener` until `shutdown` resolves, then stops taking
/// requests, lets in-flight ones finish, stops the workers and closes the store (which
/// drains every queued write and signs a final checkpoint).
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    metrics::handle();
    let (stop_tx, stop_rx) = watch::channel(false);
    node.reload_reference()
        .await
        .map_err(|e| NodeError::Startup(format!("reference data: {e}")))?;
    let mut workers = vec![
        tokio::spawn(delivery::run_delivery(node.clone(), stop_rx.clone())),
        tokio::spawn(delivery::run_checkpoints(node.clone(), stop_rx.clone())),
        tokio::spawn(delivery::run_transactions(node.clone(), stop_rx.clone())),
    ];
    if let Some(f) = &node.fed {
        let peer_listener = tokio::net::TcpListener::bind(f.listen)
            .await
            .map_err(|e| NodeError::Startup(format!("federation listener {}: {e}", f.listen)))?;
        workers.push(tokio::spawn(peers::serve_peers(
            node.clone(),
            peer_listener,
            stop_rx.clone(),
        )));
        for peer in f.peer_segments() {
            workers.push(tokio::spawn(peers::run_peer(
                node.clone(),
                peer,
                stop_rx.clone(),
            )));
        }
    }
    let app = api::router(node.clone());
    let limits = node.cfg.limits.connections();
    let result = match node.api_tls.clone() {
        None => transport::serve_http(listener, app, limits, shutdown).await,
        Some(tls) => transport::serve_https(listener, tls, app, limits, shutdown).await,
    }
    .map_err(|e| NodeError::Internal(format!("server: {e}")));
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    node.store.close().await?;
    tracing::info!(segment = %node.segment, "node stopped; store closed");
    result
}
