//! The node's time-stamp authority (`[tsa]`): RFC 3161 answers for outside clients, and a
//! batching stamper for the node's own records (TTP receipts, legally significant messages),
//! where callers that arrive together share one token over a hash tree of their digests.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::Clock;
use crate::config::TsaSection;

/// The largest batch one token covers; a burst beyond it gets several tokens.
const MAX_BATCH: usize = 4096;

type Job = (
    [u8; 32],
    oneshot::Sender<Result<tsa::batch::BatchStamp, StampError>>,
);

/// Why a time stamp could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// `[tsa]` names files that cannot be read, or a key or certificate that cannot be used.
    #[error("[tsa]: {0}")]
    Setup(String),
    /// The batcher thread is gone (the node is stopping).
    #[error("the time-stamp authority stopped")]
    Stopped,
    /// Signing the token failed.
    #[error("time stamping failed: {0}")]
    Failed(String),
}

/// A time-stamp authority and the batching queue in front of it.
pub struct Stamping {
    authority: Arc<tsa::Authority>,
    /// The roots a relying party needs: the federation root that issued the TSA certificate.
    trusted: Vec<Vec<u8>>,
    jobs: mpsc::Sender<Job>,
    clock: Clock,
}

impl Stamping {
    /// Reads the key and certificate and starts the batching task (on the current runtime,
    /// or lazily on the first stamp when there is none yet).
    pub fn load(
        cfg: &TsaSection,
        federation_root: Option<&std::path::Path>,
        clock: Clock,
    ) -> Result<Stamping, StampError> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| StampError::Setup(format!("{}: {e}", p.display())))
        };
        let authority = tsa::Authority::from_pem(
            &read(&cfg.key)?,
            &read(&cfg.cert)?,
            cfg.policy.as_deref().unwrap_or(tsa::DEFAULT_POLICY),
        )
        .map_err(|e| StampError::Setup(e.to_string()))?;
        let trusted = match federation_root {
            Some(p) => vec![
                trust::pki::pem_to_der(&read(p)?)
                    .map_err(|e| StampError::Setup(format!("{}: {e}", p.display())))?,
            ],
            None => Vec::new(),
        };
        let authority = Arc::new(authority);
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let batch_wait = std::time::Duration::from_millis(cfg.batch_ms);
        let (a, c) = (authority.clone(), clock.clone());
        // The batcher runs on a thread of its own: signing is CPU work, and stamping must not
        // depend on which runtime (if any) built the node.
        std::thread::Builder::new()
            .name("tsa-batcher".into())
            .spawn(move || batcher(rx, a, c, batch_wait))
            .map_err(|e| StampError::Setup(e.to_string()))?;
        Ok(Stamping {
            authority,
            trusted,
            jobs: tx,
            clock,
        })
    }

    /// Answers a DER `TimeStampReq` (RFC 3161 over HTTP) with a DER `TimeStampResp`.
    pub fn respond(&self, request: &[u8]) -> Vec<u8> {
        self.authority.respond(request, (self.clock)())
    }

    /// A batched stamp of `digest`.
    pub async fn stamp(&self, digest: [u8; 32]) -> Result<tsa::batch::BatchStamp, StampError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((digest, tx))
            .await
            .map_err(|_| StampError::Stopped)?;
        rx.await.map_err(|_| StampError::Stopped)?
    }

    pub fn certificate(&self) -> &[u8] {
        self.authority.certificate()
    }

    /// The roots this node's tokens verify against.
    pub fn trusted(&self) -> &[Vec<u8>] {
        &self.trusted
    }
}

/// Takes what is waiting (after a short wait for more), stamps it as one batch, answers all.
fn batcher(
    mut rx: mpsc::Receiver<Job>,
    authority: Arc<tsa::Authority>,
    clock: Clock,
    wait: std::time::Duration,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let digests: Vec<[u8; 32]> = jobs.iter().map(|(d, _)| *d).collect();
        match tsa::batch::stamp_batch(&authority, &digests, clock()) {
            Ok(stamps) => {
                for ((_, reply), s) in jobs.into_iter().zip(stamps) {
                    let _ = reply.send(Ok(s));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "time stamping failed");
                for (_, reply) in jobs {
                    let _ = reply.send(Err(StampError::Failed(e.to_string())));
                }
            }
        }
    }
}
