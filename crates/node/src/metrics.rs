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
