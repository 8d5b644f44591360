//! Prometheus metrics of a node: accepted, delivered, acknowledged and failed messages, queue
//! depth, submission and delivery latency. One recorder per process, labelled by node, so the
//! demo's several in-process nodes stay apart.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder, installed on first use.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let b = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?;
            match b.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

pub const ACCEPTED: &str = "ortaq_messages_accepted_total";
pub const DUPLICATES: &str = "ortaq_messages_duplicate_total";
pub const REJECTED: &str = "ortaq_messages_rejected_total";
pub const DELIVERED: &str = "ortaq_messages_delivered_total";
pub const ACKNOWLEDGED: &str = "ortaq_messages_acknowledged_total";
pub const FAILED: &str = "ortaq_messages_failed_total";
pub const OUTBOX_PENDING: &str = "ortaq_outbox_pending";
pub const INBOX_UNACKED: &str = "ortaq_inbox_unacknowledged";
pub const SUBMIT_SECONDS: &str = "ortaq_submit_seconds";
pub const DELIVERY_SECONDS: &str = "ortaq_delivery_seconds";
pub const STORE_BATCHES: &str = "ortaq_store_commit_batches_total";
pub const STORE_JOBS: &str = "ortaq_store_commit_jobs_total";
pub const SENT: &str = "ortaq_peer_sent_total";
pub const RETRIED: &str = "ortaq_peer_retries_total";
pub const EXPIRED: &str = "ortaq_messages_expired_total";
pub const RECEIVED: &str = "ortaq_peer_received_total";
pub const REFUSED: &str = "ortaq_peer_refused_total";

/// The handles of one node's metrics, made once: the macros would otherwise build and look up
/// the labelled key on every request.
pub struct NodeMetrics {
    pub accepted: metrics::Counter,
    pub duplicates: metrics::Counter,
    pub rejected: metrics::Counter,
    pub delivered: metrics::Counter,
    pub acknowledged: metrics::Counter,
    pub failed: metrics::Counter,
    pub submit_seconds: metrics::Histogram,
    pub delivery_seconds: metrics::Histogram,
    pub outbox_pending: metrics::Gauge,
    pub inbox_unacked: metrics::Gauge,
    pub store_batches: metrics::Counter,
    pub store_jobs: metrics::Counter,
    /// Envelopes a peer confirmed with RCV.
    pub sent: metrics::Counter,
    /// Attempts that will be repeated (peer unreachable, timeout, 5xx).
    pub retried: metrics::Counter,
    pub expired: metrics::Counter,
    /// Envelopes taken from peers, and refused from peers.
    pub received: metrics::Counter,
    pub refused: metrics::Counter,
}

impl NodeMetrics {
    /// Handles labelled `node=<label>`; installs the recorder first, since handles made before
    /// it exists record nothing.
    pub fn new(label: &str) -> NodeMetrics {
        handle();
        let l = || label.to_owned();
        NodeMetrics {
            accepted: metrics::counter!(ACCEPTED, "node" => l()),
            duplicates: metrics::counter!(DUPLICATES, "node" => l()),
            rejected: metrics::counter!(REJECTED, "node" => l()),
            delivered: metrics::counter!(DELIVERED, "node" => l()),
            acknowledged: metrics::counter!(ACKNOWLEDGED, "node" => l()),
            failed: metrics::counter!(FAILED, "node" => l()),
            submit_seconds: metrics::histogram!(SUBMIT_SECONDS, "node" => l()),
            delivery_seconds: metrics::histogram!(DELIVERY_SECONDS, "node" => l()),
            outbox_pending: metrics::gauge!(OUTBOX_PENDING, "node" => l()),
            inbox_unacked: metrics::gauge!(INBOX_UNACKED, "node" => l()),
            store_batches: metrics::counter!(STORE_BATCHES, "node" => l()),
            store_jobs: metrics::counter!(STORE_JOBS, "node" => l()),
            sent: metrics::counter!(SENT, "node" => l()),
            retried: metrics::counter!(RETRIED, "node" => l()),
            expired: metrics::counter!(EXPIRED, "node" => l()),
            received: metrics::counter!(RECEIVED, "node" => l()),
            refused: metrics::counter!(REFUSED, "node" => l()),
        }
    }
}
