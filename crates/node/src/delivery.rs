//! The node's background work: the local delivery worker (outbox to inbox, exactly once), and
//! the checkpoint timer that signs the message log and has the checkpoints time-stamped.

use std::sync::Arc;
use std::time::Duration;

use store::Destination;
use tokio::sync::watch;

use crate::{Node, NodeError, micros};

async fn local_wake(node: &Node) {
    match node.wakes(&Destination::Local) {
        Some(w) => w.notified().await,
        None => std::future::pending().await,
    }
}

/// Moves `local` outbox entries into their recipients' inboxes until `stop` turns true.
pub async fn run_delivery(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let lease = Duration::from_secs(30).as_micros() as i64;
    // The first claim also takes back leases this worker held before a crash.
    let mut resume = true;
    while !*stop.borrow() {
        let now = micros(node.now());
        let items = match node
            .store
            .claim_outbox(
                &node.worker_id,
                &Destination::Local,
                512,
                lease,
                now,
                resume,
            )
            .await
        {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "outbox claim failed");
                Vec::new()
            }
        };
        resume = false;
        if items.is_empty() {
            tokio::select! {
                _ = local_wake(&node) => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        deliver_local(&node, items).await;
    }
}

/// Delivers claimed local outbox entries in one store job.
async fn deliver_local(node: &Node, local: Vec<store::OutboxItem>) {
    let now = micros(node.now());
    let ids = local.iter().map(|i| i.id).collect();
    match node
        .store
        .deliver_local_batch(ids, &node.worker_id, now)
        .await
    {
        Ok(done) => {
            for (it, recipient) in local.iter().zip(done) {
                let Some(recipient) = recipient else { continue };
                node.metrics.delivered.increment(1);
                node.metrics
                    .delivery_seconds
                    .record((now - it.created_at).max(0) as f64 / 1e6);
                node.notify_inbox(&recipient);
            }
        }
        Err(e) => {
            node.metrics.failed.increment(local.len() as u64);
            tracing::error!(error = %e, entries = local.len(), "local delivery failed; retried after the lease");
        }
    }
}

/// Signs a log checkpoint every few seconds when something was logged.
/// Ticks the transactions this node keeps for its ISs (`conversations`) once a second (their
/// time limits are in the node's clock, so a test that moves the clock sees them at once), and
/// once a minute forgets those that ended a week ago.
pub async fn run_transactions(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    if node.screen.packages.is_empty() {
        return;
    }
    for pass in 0u64.. {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = node.tick_transactions().await {
            tracing::error!(error = %e, "transaction timer failed");
        }
        // Ended transactions are forgotten once a minute, not on every pass.
        if pass % 60 == 0
            && let Err(e) = node.prune_transactions().await
        {
            tracing::error!(error = %e, "forgetting ended transactions failed");
        }
    }
}

pub async fn run_checkpoints(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = node.store.checkpoint().await {
            tracing::error!(error = %e, "log checkpoint failed");
        }
        if let Err(e) = stamp_checkpoints(&node).await {
            tracing::error!(error = %e, "log checkpoint time stamp failed");
        }
    }
}

/// Time-stamps the signed checkpoints that have no stamp yet, when this node runs a
/// time-stamp authority: the stamp proves the log up to that checkpoint existed by then.
pub async fn stamp_checkpoints(node: &Node) -> Result<usize, NodeError> {
    let Some(st) = node.stamping() else {
        return stamp_checkpoints_remotely(node).await;
    };
    let todo = node.store.unstamped_checkpoints(256).await?;
    let mut set = tokio::task::JoinSet::new();
    for (seq, hash) in todo {
        let Some(h) = hex::decode(&hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        let digest = tsa::sha256(&store::log::checkpoint_message(seq, &h));
        let st = st.clone();
        // Stamped together, they share the batcher's token.
        set.spawn(async move { (seq, st.stamp(digest).await) });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let (seq, stamp) =
            r.map_err(|e| NodeError::Internal(format!("time stamping stopped: {e}")))?;
        let stamp = stamp.map_err(|e| NodeError::Internal(e.to_string()))?;
        node.store
            .stamp_checkpoint(seq, stamp.token.to_vec(), stamp.proof.to_text())
            .await?;
        n += 1;
    }
    Ok(n)
}

/// Without an authority of its own, a node has its checkpoints stamped by a peer's
/// (`[federation] timestamps_from`): one request for a hash tree of all that wait.
async fn stamp_checkpoints_remotely(node: &Node) -> Result<usize, NodeError> {
    let Some(fed) = node.fed.as_ref() else {
        return Ok(0);
    };
    let todo = node.store.unstamped_checkpoints(4096).await?;
    let digests: Vec<(i64, [u8; 32])> = todo
        .iter()
        .filter_map(|(seq, hash)| {
            let h = <[u8; 32]>::try_from(hex::decode(hash).ok()?).ok()?;
            Some((*seq, tsa::sha256(&store::log::checkpoint_message(*seq, &h))))
        })
        .collect();
    let only: Vec<[u8; 32]> = digests.iter().map(|(_, d)| *d).collect();
    let Some((root, proofs)) = tsa::batch::tree(&only) else {
        return Ok(0);
    };
    let Some(token) = fed.remote_stamp(&root).await else {
        return Ok(0);
    };
    let token = token.map_err(NodeError::Internal)?;
    for ((seq, _), proof) in digests.iter().zip(proofs) {
        node.store
            .stamp_checkpoint(*seq, token.clone(), proof.to_text())
            .await?;
    }
    Ok(digests.len())
}
