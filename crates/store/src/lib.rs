//! The durable store of a node: messages (raw bytes kept exactly), their state history,
//! conversations, the outbox (with leases) and inbox (with cursors and acknowledgements), API
//! tokens, and the hash-chained message log. SQLite (embedded default) and PostgreSQL
//! (production) sit behind the one [`Store`] type and pass the same conformance suite.
//!
//! Writes go through one writer thread with group commit ([`writer`]); reads use a small pool
//! of connections on blocking threads. Every write answers only after its transaction
//! committed, which is the promise the node makes to information systems and peers.

pub mod conn;
pub mod log;
mod migrate;
mod pool;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use conn::{Conn, Dialect, PgConn, Row, SqliteConn, Value};
pub use log::{Break, CheckpointSigner, VerifyReport};
use pool::Pool;
pub use writer::{Tx, WriterStats};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Engine(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration refused: {0}")]
    Migration(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the store is closed")]
    Closed,
}

/// Which engine holds the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file (created if missing), in WAL mode.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`host=… user=… dbname=…` or a URL).
    Postgres(String),
}

/// Microseconds since the Unix epoch, from the system clock.
pub fn system_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub struct StoreConfig {
    pub engine: Engine,
    /// Sign a checkpoint after this many new log records (and whenever asked).
    pub checkpoint_every: i64,
    pub signer: Option<Arc<dyn CheckpointSigner>>,
    /// Time source for checkpoints; tests inject their own.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Read connections to keep.
    pub readers: usize,
}

impl StoreConfig {
    pub fn new(engine: Engine) -> Self {
        StoreConfig {
            engine,
            checkpoint_every: 1000,
            signer: None,
            clock: Arc::new(system_micros),
            readers: 4,
        }
    }
}

/// Where an accepted message goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through the outbox to `destination`: `"local"` for a participant of this node, or a peer.
    Outbox { destination: String },
    /// Nowhere yet (stored only).
    None,
}

/// A message the node has accepted and must keep.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub track_id: String,
    pub accept_time: i64,
    /// `out`: submitted by an IS of this node; `in`: received from a peer node.
    pub direction: String,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    /// `application`, `signal` or `fault`.
    pub kind: String,
    pub conversation_id: Option<String>,
    pub procedure_id: Option<String>,
    pub relates_to: Option<String>,
    /// For a conversation record: process and transaction codes.
    pub process: Option<String>,
    pub transaction: Option<String>,
    /// The envelope exactly as the node will forward it.
    pub envelope: Vec<u8>,
    /// The bytes as received, when the node changed them (it adds `int:Integration`).
    pub received: Option<Vec<u8>>,
    pub route: Route,
    /// The detached signature of the node that first accepted the message, over `envelope`.
    pub signature: Option<NodeSignature>,
    /// When an outbox entry for this message gives up (microseconds); never if None.
    pub expires_at: Option<i64>,
    /// Evidence stored with the message (kind, bytes): a TTP receipt and its time stamp.
    pub evidence: Vec<(String, Vec<u8>)>,
}

/// The part of the message log that ties one message to a signed checkpoint: its records from
/// the message's first one up to the checkpoint, and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogProof {
    pub records: Vec<LogRecord>,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: i64,
    pub at: i64,
    pub message_id: String,
    pub event: String,
    pub envelope_sha256: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub key_id: String,
    /// Ed25519 over `log::checkpoint_message(seq, hash)`.
    pub signature: Vec<u8>,
    /// An RFC 3161 token over the batch root and the checkpoint's path to it, once stamped.
    pub stamp: Option<(Vec<u8>, String)>,
}

/// A node's detached signature as stored with a message: the header value naming algorithm
/// and signature, and the signer's certificate (kept once per certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSignature {
    pub header: String,
    pub certificate: Vec<u8>,
}

/// What a remote delivery needs: the exact bytes and the signature that travels with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub item_id: i64,
    pub message_id: String,
    pub sender: String,
    pub recipient: String,
    pub envelope: Vec<u8>,
    pub signature: Option<NodeSignature>,
    /// Evidence that travels with the message (see [`NewMessage::evidence`]).
    pub evidence: Vec<(String, Vec<u8>)>,
}

/// A finished remote delivery: sent at `sent_at`, receipt confirmed by the peer at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDone {
    pub item_id: i64,
    pub sent_at: i64,
    /// What the peer answered (its segment and the RCV's MessageID), for the history.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now.
    New,
    /// The same sender already delivered this MessageID: here is what it was told then.
    Duplicate { track_id: String, accept_time: i64 },
}

/// The state names of a message's history.
pub mod state {
    pub const ACCEPTED: &str = "accepted";
    pub const QUEUED: &str = "queued";
    pub const IN_INBOX: &str = "in_inbox";
    pub const DELIVERED: &str = "delivered";
    pub const ACKNOWLEDGED: &str = "acknowledged";
    /// Handed to the next node (the request went out).
    pub const SENT: &str = "sent";
    /// The next node answered RCV: it has committed the message.
    pub const RECEIVED_BY_PEER: &str = "received_by_peer";
    pub const FAILED: &str = "failed";
    pub const EXPIRED: &str = "expired";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub message_id: String,
    pub track_id: String,
    pub accept_time: i64,
    pub direction: String,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    pub kind: String,
    pub conversation_id: Option<String>,
    pub procedure_id: Option<String>,
    pub relates_to: Option<String>,
    pub state: String,
    pub envelope_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub state: String,
    pub at: i64,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub seq: i64,
    pub message_id: String,
    pub sender: String,
    pub action: String,
    pub conversation_id: Option<String>,
    pub track_id: String,
    pub accept_time: i64,
    pub envelope: Vec<u8>,
    pub first_delivery: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged,
    AlreadyAcknowledged,
    NotInInbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// Row id of the message in the store.
    pub msg: i64,
    pub destination: String,
    pub attempts: i64,
    /// When the message entered the outbox (its accept time).
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// One column of the schema, normalised across engines for the parity test.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    /// `int`, `text` or `bytes`.
    pub kind: String,
    pub not_null: bool,
}

struct Inner {
    checkpointer: std::sync::Mutex<Option<Checkpointer>>,
    writer_tx: RwLock<Option<mpsc::Sender<writer::Job>>>,
    writer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<WriterStats>,
    pool: Pool,
    dialect: Dialect,
    signer: Option<Arc<dyn CheckpointSigner>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// Copies the SQLite WAL into the database file in the background (PASSIVE: never blocks the
/// writer or readers), and truncates it when the store closes.
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: PathBuf) -> Result<Checkpointer, StoreError> {
        let mut conn = SqliteConn::open(&path, false)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if let Err(e) = conn.query("PRAGMA wal_checkpoint(PASSIVE)", &[]) {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
                let _ = conn.query("PRAGMA wal_checkpoint(TRUNCATE)", &[]);
            })
            .map_err(|e| StoreError::Engine(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The store; cheap to clone, shared by every task of a node.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn open_conn(engine: &Engine, read_only: bool) -> Result<Box<dyn Conn>, StoreError> {
    Ok(match engine {
        Engine::Sqlite(p) => Box::new(SqliteConn::open(p, read_only)?),
        Engine::Postgres(c) => Box::new(PgConn::open(c)?),
    })
}

impl Store {
    /// Opens (creating and migrating if needed) the store.
    ///
    /// Blocking. The PostgreSQL client runs its own small runtime, which may not be started
    /// from inside an async task, so the opening happens on a thread of its own and this is
    /// safe to call from anywhere.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        std::thread::scope(|s| {
            s.spawn(|| Store::open_here(cfg))
                .join()
                .map_err(|_| StoreError::Engine("store opening thread panicked".into()))?
        })
    }

    fn open_here(cfg: StoreConfig) -> Result<Store, StoreError> {
        if let Engine::Sqlite(p) = &cfg.engine
            && let Some(dir) = p.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Engine(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut wconn = open_conn(&cfg.engine, false)?;
        migrate::run(wconn.as_mut())?;
        let dialect = wconn.dialect();
        let max_batch = match dialect {
            Dialect::Sqlite => 1024,
            // Beyond 64 savepoints a PostgreSQL transaction overflows its subtransaction cache
            // and slows every concurrent snapshot; keep batches under it.
            Dialect::Postgres => 60,
        };
        let signer = cfg.signer.clone();
        let every = cfg.checkpoint_every.max(1);
        let mut last_cp: Option<i64> = None;
        let clock = cfg.clock.clone();
        let after_batch = Box::new(
            move |conn: &mut dyn Conn, head: &mut Option<log::LogHead>| -> Result<(), StoreError> {
                let (Some(signer), Some(h)) = (&signer, head.as_ref()) else {
                    return Ok(());
                };
                let last = match last_cp {
                    Some(s) => s,
                    None => log::last_checkpoint_seq(conn)?,
                };
                if h.seq - last >= every {
                    log::checkpoint(conn, h, signer.as_ref(), clock())?;
                    last_cp = Some(h.seq);
                } else {
                    last_cp = Some(last);
                }
                Ok(())
            },
        );
        let w = writer::spawn(wconn, max_batch, after_batch);
        let checkpointer = match &cfg.engine {
            Engine::Sqlite(p) => Some(Checkpointer::start(p.clone())?),
            Engine::Postgres(_) => None,
        };
        let engine = cfg.engine.clone();
        let pool = Pool::new(
            cfg.readers.max(1),
            Box::new(move || open_conn(&engine, true)),
        );
        Ok(Store {
            inner: Arc::new(Inner {
                checkpointer: std::sync::Mutex::new(checkpointer),
                writer_tx: RwLock::new(Some(w.tx)),
                writer_thread: std::sync::Mutex::new(w.thread),
                stats: w.stats,
                pool,
                dialect,
                signer: cfg.signer,
                clock: cfg.clock,
            }),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Runs `f` in the writer's next batch and returns after the commit.
    ///
    /// `f` may run more than once when its batch is retried; only the last run's writes are
    /// committed, so `f` must keep its effects inside the transaction.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let tx = self
            .inner
            .writer_tx
            .read()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        writer::write(&tx, f).await
    }

    /// Runs `f` on a read connection, on a blocking thread.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut dyn Conn) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.pool.with(f))
            .await
            .map_err(|e| StoreError::Engine(format!("read task failed: {e}")))?
    }

    /// Stops taking writes, lets the writer finish every queued job, writes a final
    /// checkpoint and waits for the writer thread.
    pub async fn close(&self) -> Result<(), StoreError> {
        let _ = self.checkpoint().await;
        let sender = self
            .inner
            .writer_tx
            .write()
            .map_err(|_| StoreError::Closed)?
            .take();
        drop(sender);
        let handle = self
            .inner
            .writer_thread
            .lock()
            .map_err(|_| StoreError::Closed)?
            .take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| StoreError::Engine(e.to_string()))?
                .map_err(|_| StoreError::Engine("writer thread panicked".into()))?;
        }
        let cp = self
            .inner
            .checkpointer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .take();
        if let Some(cp) = cp {
            tokio::task::spawn_blocking(move || cp.stop())
                .await
                .map_err(|e| StoreError::Engine(e.to_string()))?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ messages

    /// Stores an accepted message, its first state, its log record, its conversation and its
    /// route, in one transaction. A MessageID seen before from the same sender is a duplicate
    /// (nothing is written); from another sender it is a conflict.
    pub async fn accept(&self, m: NewMessage) -> Result<Accepted, StoreError> {
        self.write(move |tx| accept_op(tx, &m)).await
    }

    pub async fn message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            c.query_one(
                "SELECT m.message_id, m.track_id, m.accept_time, m.direction, m.sender, m.recipient, m.action, m.kind, m.conversation_id, m.procedure_id, m.relates_to, \
                 (SELECT s.state FROM message_states s WHERE s.msg = m.id ORDER BY s.id DESC LIMIT 1), m.envelope_sha256 \
                 FROM messages m WHERE m.message_id = $1",
                &[id.into()],
            )?
            .map(|r| message_record(&r))
            .transpose()
        })
        .await
    }

    /// The envelope bytes exactly as stored.
    pub async fn envelope(&self, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            c.query_one(
                "SELECT envelope FROM messages WHERE message_id = $1",
                &[id.into()],
            )?
            .map(|r| r.blob(0))
            .transpose()
        })
        .await
    }

    /// The node signature a message arrived or left with, and the signer's certificate.
    pub async fn signature(&self, message_id: &str) -> Result<Option<NodeSignature>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            let Some(r) = c.query_one(
                "SELECT m.signature, cert.der FROM messages m JOIN certificates cert ON cert.sha256 = m.signer_sha256 WHERE m.message_id = $1",
                &[id.into()],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(NodeSignature {
                header: r.text(0)?,
                certificate: r.blob(1)?,
            }))
        })
        .await
    }

    /// The evidence stored with a message (kind, bytes), by kind.
    pub async fn evidence(&self, message_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| evidence_of(c, &id)).await
    }

    /// Signed checkpoints that carry no time stamp yet (sequence number, hash in hex), oldest
    /// first.
    pub async fn unstamped_checkpoints(
        &self,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT seq, hash FROM log_checkpoints WHERE tst IS NULL ORDER BY seq LIMIT $1",
                &[Value::I64(limit)],
            )?
            .iter()
            .map(|r| Ok((r.i64(0)?, r.text(1)?)))
            .collect()
        })
        .await
    }

    /// Adds a time stamp to a checkpoint that has none (a second one is ignored).
    pub async fn stamp_checkpoint(
        &self,
        seq: i64,
        token: Vec<u8>,
        proof: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.conn.execute(
                "UPDATE log_checkpoints SET tst = $1, tst_proof = $2 WHERE seq = $3 AND tst IS NULL",
                &[Value::Blob(token.clone()), proof.clone().into(), Value::I64(seq)],
            )?;
            Ok(())
        })
        .await
    }

    /// The log records from `message_id`'s first record to the first signed checkpoint at or
    /// after it; None when no checkpoint covers it yet (see [`Store::checkpoint`]).
    pub async fn log_proof(&self, message_id: &str) -> Result<Option<LogProof>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            let Some(first) = c.query_one(
                "SELECT MIN(seq) FROM message_log WHERE message_id = $1",
                &[id.into()],
            )?
            .and_then(|r| r.i64(0).ok()) else {
                return Ok(None);
            };
            let Some(cp) = c.query_one(
                "SELECT seq, hash, key_id, signature, tst, tst_proof FROM log_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1",
                &[Value::I64(first)],
            )?
            else {
                return Ok(None);
            };
            let checkpoint = Checkpoint {
                seq: cp.i64(0)?,
                hash: cp.text(1)?,
                key_id: cp.text(2)?,
                signature: hex::decode(cp.text(3)?)
                    .map_err(|_| StoreError::Corrupt("checkpoint signature is not hex".into()))?,
                stamp: match (cp.opt_blob(4)?, cp.opt_text(5)?) {
                    (Some(t), Some(p)) => Some((t, p)),
                    _ => None,
                },
            };
            let rows = c.query(
                "SELECT seq, at, message_id, event, envelope_sha256, prev_hash, hash FROM message_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
                &[Value::I64(first), Value::I64(checkpoint.seq)],
            )?;
            let records = rows
                .iter()
                .map(|r| {
                    Ok(LogRecord {
                        seq: r.i64(0)?,
                        at: r.i64(1)?,
                        message_id: r.text(2)?,
                        event: r.text(3)?,
                        envelope_sha256: r.text(4)?,
                        prev_hash: r.text(5)?,
                        hash: r.text(6)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(LogProof {
                records,
                checkpoint,
            }))
        })
        .await
    }

    pub async fn history(&self, message_id: &str) -> Result<Vec<StateChange>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            c.query(
                "SELECT s.state, s.at, s.detail FROM message_states s JOIN messages m ON m.id = s.msg WHERE m.message_id = $1 ORDER BY s.id",
                &[id.into()],
            )?
            .iter()
            .map(|r| {
                Ok(StateChange {
                    state: r.text(0)?,
                    at: r.i64(1)?,
                    detail: r.opt_text(2)?,
                })
            })
            .collect()
        })
        .await
    }

    // ------------------------------------------------------------ inbox

    /// Unacknowledged messages of `participant` after cursor `after`, oldest first.
    pub async fn inbox(
        &self,
        participant: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let p = participant.to_owned();
        self.read(move |c| {
            c.query(
                "SELECT i.seq, m.message_id, m.sender, m.action, m.conversation_id, m.track_id, m.accept_time, m.envelope, i.delivered_at \
                 FROM inbox i JOIN messages m ON m.id = i.msg \
                 WHERE i.participant = $1 AND i.acked_at IS NULL AND i.seq > $2 ORDER BY i.seq LIMIT $3",
                &[p.into(), Value::I64(after), Value::I64(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(InboxItem {
                    seq: r.i64(0)?,
                    message_id: r.text(1)?,
                    sender: r.text(2)?,
                    action: r.text(3)?,
                    conversation_id: r.opt_text(4)?,
                    track_id: r.text(5)?,
                    accept_time: r.i64(6)?,
                    envelope: r.blob(7)?,
                    first_delivery: r.opt_i64(8)?.is_none(),
                })
            })
            .collect()
        })
        .await
    }

    /// Records that these inbox entries were handed to their IS (first time only).
    pub async fn mark_delivered(
        &self,
        seqs: Vec<(i64, String)>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            for (seq, _) in &seqs {
                let done = tx.conn.query_one(
                    "UPDATE inbox SET delivered_at = $1 WHERE seq = $2 AND delivered_at IS NULL RETURNING msg",
                    &[Value::I64(now), Value::I64(*seq)],
                )?;
                if let Some(r) = done {
                    set_state(tx, r.i64(0)?, state::DELIVERED, now, None)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Acknowledges one message for `participant`: it leaves the inbox for good.
    pub async fn ack(
        &self,
        participant: &str,
        message_id: &str,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        let (p, mid) = (participant.to_owned(), message_id.to_owned());
        self.write(move |tx| {
            let Some(msg) = tx
                .conn
                .query_one("SELECT id FROM messages WHERE message_id = $1", &[(&mid).into()])?
            else {
                return Ok(AckOutcome::NotInInbox);
            };
            let msg = msg.i64(0)?;
            let n = tx.conn.execute(
                "UPDATE inbox SET acked_at = $1 WHERE participant = $2 AND msg = $3 AND acked_at IS NULL",
                &[Value::I64(now), (&p).into(), Value::I64(msg)],
            )?;
            if n == 1 {
                set_state(tx, msg, state::ACKNOWLEDGED, now, None)?;
                return Ok(AckOutcome::Acknowledged);
            }
            let exists = tx.conn.query_one(
                "SELECT acked_at FROM inbox WHERE participant = $1 AND msg = $2",
                &[(&p).into(), Value::I64(msg)],
            )?;
            Ok(match exists {
                Some(_) => AckOutcome::AlreadyAcknowledged,
                None => AckOutcome::NotInInbox,
            })
        })
        .await
    }

    // ------------------------------------------------------------ outbox

    /// Leases up to `limit` due outbox entries for `destination` to `owner` until `now + lease`.
    ///
    /// With `resume_own`, entries already leased to `owner` are claimed again: a worker
    /// identity is stable across restarts, so a node that crashed resumes its own leases at
    /// once instead of waiting for them to expire (a worker asks for this on its first claim
    /// only; later its own leases are requests still in flight). Two live workers must never
    /// share an identity.
    pub async fn claim_outbox(
        &self,
        owner: &str,
        destination: &str,
        limit: i64,
        lease: i64,
        now: i64,
        resume_own: bool,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let (owner, destination) = (owner.to_owned(), destination.to_owned());
        self.write(move |tx| {
            let sql = format!(
                "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND destination = $5 AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3{}) ORDER BY next_attempt_at, id LIMIT $4{}) \
                 RETURNING id, msg, destination, attempts, created_at, expires_at",
                if resume_own { " OR lease_owner = $1" } else { "" },
                tx.dialect().skip_locked()
            );
            let mut items = tx
                .conn
                .query(
                    &sql,
                    &[
                        (&owner).into(),
                        Value::I64(now + lease),
                        Value::I64(now),
                        Value::I64(limit),
                        (&destination).into(),
                    ],
                )?
                .iter()
                .map(|r| {
                    Ok(OutboxItem {
                        id: r.i64(0)?,
                        msg: r.i64(1)?,
                        destination: r.text(2)?,
                        attempts: r.i64(3)?,
                        created_at: r.i64(4)?,
                        expires_at: r.opt_i64(5)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            items.sort_by_key(|i| i.id);
            Ok(items)
        })
        .await
    }

    /// Completes a lease on a `local` outbox entry: the message enters its recipient's inbox
    /// exactly once. Returns the recipient, or None when the lease was lost (another worker
    /// owns it now).
    pub async fn deliver_local(
        &self,
        item_id: i64,
        owner: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .deliver_local_batch(vec![item_id], owner, now)
            .await?
            .pop()
            .flatten())
    }

    /// [`Store::deliver_local`] for many entries in one write job, answered in order.
    pub async fn deliver_local_batch(
        &self,
        item_ids: Vec<i64>,
        owner: &str,
        now: i64,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let owner = owner.to_owned();
        self.write(move |tx| {
            let sql = format!(
                "SELECT o.msg, m.recipient, o.lease_owner, o.state FROM outbox o JOIN messages m ON m.id = o.msg WHERE o.id = $1{}",
                tx.dialect().for_update()
            );
            let mut out = Vec::with_capacity(item_ids.len());
            for &item_id in &item_ids {
                let Some(r) = tx.conn.query_one(&sql, &[Value::I64(item_id)])? else {
                    out.push(None);
                    continue;
                };
                let (msg, recipient) = (r.i64(0)?, r.text(1)?);
                if r.opt_text(2)?.as_deref() != Some(owner.as_str()) || r.text(3)? != "pending" {
                    out.push(None);
                    continue;
                }
                tx.conn.execute(
                    "INSERT INTO inbox (participant, msg, queued_at) VALUES ($1, $2, $3) ON CONFLICT (participant, msg) DO NOTHING",
                    &[(&recipient).into(), Value::I64(msg), Value::I64(now)],
                )?;
                tx.conn.execute(
                    "UPDATE outbox SET state = 'done', lease_owner = NULL, lease_until = NULL WHERE id = $1",
                    &[Value::I64(item_id)],
                )?;
                set_state(tx, msg, state::IN_INBOX, now, Some(&recipient))?;
                out.push(Some(recipient));
            }
            Ok(out)
        })
        .await
    }

    /// The bytes and signatures of leased outbox entries, for sending to a peer.
    pub async fn outbound(&self, item_ids: Vec<i64>) -> Result<Vec<Outbound>, StoreError> {
        self.read(move |c| {
            let mut out = Vec::with_capacity(item_ids.len());
            for id in item_ids {
                let Some(r) = c.query_one(
                    "SELECT o.id, m.message_id, m.sender, m.recipient, m.envelope, m.signature, cert.der \
                     FROM outbox o JOIN messages m ON m.id = o.msg LEFT JOIN certificates cert ON cert.sha256 = m.signer_sha256 WHERE o.id = $1",
                    &[Value::I64(id)],
                )?
                else {
                    continue;
                };
                let signature = match (r.opt_text(5)?, r.opt_blob(6)?) {
                    (Some(header), Some(certificate)) => Some(NodeSignature {
                        header,
                        certificate,
                    }),
                    _ => None,
                };
                let message_id = r.text(1)?;
                out.push(Outbound {
                    item_id: r.i64(0)?,
                    evidence: evidence_of(c, &message_id)?,
                    message_id,
                    sender: r.text(2)?,
                    recipient: r.text(3)?,
                    envelope: r.blob(4)?,
                    signature,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Completes leased remote deliveries the peer confirmed (RCV): each message moves to
    /// `sent` and `received_by_peer`. Answers, in order, whether the lease was still ours.
    pub async fn complete_remote(
        &self,
        done: Vec<RemoteDone>,
        owner: &str,
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let owner = owner.to_owned();
        self.write(move |tx| {
            let mut out = Vec::with_capacity(done.len());
            for d in &done {
                let Some(msg) = finish_lease(tx, d.item_id, &owner, "done", None)? else {
                    out.push(false);
                    continue;
                };
                let peer = d.detail.split_whitespace().next();
                set_state(tx, msg, state::SENT, d.sent_at, peer)?;
                set_state(tx, msg, state::RECEIVED_BY_PEER, now, Some(&d.detail))?;
                out.push(true);
            }
            Ok(out)
        })
        .await
    }

    /// Gives a leased entry back for another attempt at `next_attempt_at`, noting the error.
    pub async fn retry_later(
        &self,
        item_id: i64,
        owner: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (owner, error) = (owner.to_owned(), error.to_owned());
        self.write(move |tx| {
            let n = tx.conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1, last_error = $2 \
                 WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
                &[Value::I64(next_attempt_at), (&error).into(), Value::I64(item_id), (&owner).into()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Ends a leased entry for good (`failed` or `expired`) and, in the same transaction,
    /// accepts the notification that tells the sending IS. False if the lease was lost.
    pub async fn fail_outbox(
        &self,
        item_id: i64,
        owner: &str,
        final_state: &'static str,
        detail: &str,
        notice: Option<NewMessage>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (owner, detail) = (owner.to_owned(), detail.to_owned());
        self.write(move |tx| {
            let Some(msg) = finish_lease(tx, item_id, &owner, final_state, Some(&detail))? else {
                return Ok(false);
            };
            set_state(tx, msg, final_state, now, Some(&detail))?;
            if let Some(n) = &notice {
                accept_op(tx, n)?;
            }
            Ok(true)
        })
        .await
    }

    /// Stores a message this node takes but will not deliver (its document failed
    /// validation): the message, its `failed` state with the reason, and the ERR notice to its
    /// sender, in one transaction. A duplicate writes nothing: the first refusal answered it.
    pub async fn accept_refused(
        &self,
        m: NewMessage,
        detail: String,
        notice: Option<NewMessage>,
    ) -> Result<Accepted, StoreError> {
        self.write(move |tx| {
            let out = accept_op(tx, &m)?;
            if out == Accepted::New {
                let id = tx
                    .conn
                    .query_one(
                        "SELECT id FROM messages WHERE message_id = $1",
                        &[(&m.message_id).into()],
                    )?
                    .ok_or_else(|| StoreError::Corrupt("accepted message vanished".into()))?
                    .i64(0)?;
                set_state(tx, id, state::FAILED, m.accept_time, Some(&detail))?;
                if let Some(n) = &notice {
                    accept_op(tx, n)?;
                }
            }
            Ok(out)
        })
        .await
    }

    // ------------------------------------------------------------ reference data

    /// Publishes `content` (canonical bytes) as the next version of `code`, unless the latest
    /// version already has this hash. Returns the version and whether it is new.
    pub async fn nsi_publish(
        &self,
        code: &str,
        kind: &str,
        sha256: &str,
        content: Vec<u8>,
        now: i64,
    ) -> Result<(i64, bool), StoreError> {
        let (code, kind, sha) = (code.to_owned(), kind.to_owned(), sha256.to_owned());
        self.write(move |tx| {
            let latest = tx.conn.query_one(
                "SELECT version, sha256 FROM nsi_versions WHERE code = $1 ORDER BY version DESC LIMIT 1",
                &[(&code).into()],
            )?;
            let next = match latest {
                Some(r) if r.text(1)? == sha => return Ok((r.i64(0)?, false)),
                Some(r) => r.i64(0)? + 1,
                None => 1,
            };
            tx.conn.execute(
                "INSERT INTO nsi_versions (code, version, kind, sha256, published_at, content) VALUES ($1, $2, $3, $4, $5, $6)",
                &[(&code).into(), Value::I64(next), (&kind).into(), (&sha).into(), Value::I64(now), Value::Blob(content.clone())],
            )?;
            Ok((next, true))
        })
        .await
    }

    /// Stores a version published elsewhere under its publisher's number. Idempotent; a
    /// different hash under a number already held is a conflict.
    pub async fn nsi_put(&self, v: NsiVersion) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let have = tx.conn.query_one(
                "SELECT sha256 FROM nsi_versions WHERE code = $1 AND version = $2",
                &[(&v.code).into(), Value::I64(v.version)],
            )?;
            match have {
                Some(r) if r.text(0)? == v.sha256 => Ok(false),
                Some(_) => Err(StoreError::Conflict(format!(
                    "{} version {} is already held with another hash",
                    v.code, v.version
                ))),
                None => {
                    tx.conn.execute(
                        "INSERT INTO nsi_versions (code, version, kind, sha256, published_at, content) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[(&v.code).into(), Value::I64(v.version), (&v.kind).into(), (&v.sha256).into(), Value::I64(v.published_at), Value::Blob(v.content.clone())],
                    )?;
                    Ok(true)
                }
            }
        })
        .await
    }

    /// The latest version of every resource and crosswalk.
    pub async fn nsi_latest(&self) -> Result<Vec<NsiVersion>, StoreError> {
        self.read(|c| {
            c.query(
                "SELECT v.code, v.version, v.kind, v.sha256, v.published_at, v.content FROM nsi_versions v \
                 WHERE v.version = (SELECT MAX(w.version) FROM nsi_versions w WHERE w.code = v.code) ORDER BY v.code",
                &[],
            )?
            .iter()
            .map(nsi_version)
            .collect()
        })
        .await
    }

    /// One version of `code` (the latest if `version` is None).
    pub async fn nsi_version(
        &self,
        code: &str,
        version: Option<i64>,
    ) -> Result<Option<NsiVersion>, StoreError> {
        let code = code.to_owned();
        self.read(move |c| {
            let r = match version {
                Some(v) => c.query_one(
                    "SELECT code, version, kind, sha256, published_at, content FROM nsi_versions WHERE code = $1 AND version = $2",
                    &[code.into(), Value::I64(v)],
                )?,
                None => c.query_one(
                    "SELECT code, version, kind, sha256, published_at, content FROM nsi_versions WHERE code = $1 ORDER BY version DESC LIMIT 1",
                    &[code.into()],
                )?,
            };
            r.as_ref().map(nsi_version).transpose()
        })
        .await
    }

    /// (version, sha256, published_at) of every version of `code`, oldest first.
    pub async fn nsi_versions(&self, code: &str) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let code = code.to_owned();
        self.read(move |c| {
            c.query(
                "SELECT version, sha256, published_at FROM nsi_versions WHERE code = $1 ORDER BY version",
                &[code.into()],
            )?
            .iter()
            .map(|r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?)))
            .collect()
        })
        .await
    }

    // ------------------------------------------------------------ log

    /// Signs a checkpoint of the log head now (if anything was logged since the last one).
    pub async fn checkpoint(&self) -> Result<bool, StoreError> {
        let Some(signer) = self.inner.signer.clone() else {
            return Ok(false);
        };
        let at = (self.inner.clock)();
        self.write(move |tx| {
            let head = log::load_head(tx.conn)?;
            if head.seq <= log::last_checkpoint_seq(tx.conn)? {
                return Ok(false);
            }
            log::checkpoint(tx.conn, &head, signer.as_ref(), at)
        })
        .await
    }

    pub async fn verify_log(
        &self,
        key: ed25519_dalek::VerifyingKey,
    ) -> Result<VerifyReport, StoreError> {
        self.read(move |c| log::verify(c, &key)).await
    }

    // ------------------------------------------------------------ tokens, metrics, schema

    pub async fn add_token(
        &self,
        token_sha256: &str,
        participant: &str,
        label: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (t, p, l) = (
            token_sha256.to_owned(),
            participant.to_owned(),
            label.to_owned(),
        );
        self.write(move |tx| {
            tx.conn.execute(
                "INSERT INTO api_tokens (token_sha256, participant, label, created_at) VALUES ($1, $2, $3, $4)",
                &[(&t).into(), (&p).into(), (&l).into(), Value::I64(now)],
            )?;
            Ok(())
        })
        .await
    }

    /// The participant a token (given by its SHA-256) belongs to, unless revoked.
    pub async fn token_participant(
        &self,
        token_sha256: &str,
    ) -> Result<Option<String>, StoreError> {
        let t = token_sha256.to_owned();
        self.read(move |c| {
            c.query_one(
                "SELECT participant FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
                &[t.into()],
            )?
            .map(|r| r.text(0))
            .transpose()
        })
        .await
    }

    /// (outbox entries pending, inbox entries not acknowledged).
    pub async fn queue_depth(&self) -> Result<(i64, i64), StoreError> {
        self.read(|c| {
            let r = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending'), (SELECT COUNT(*) FROM inbox WHERE acked_at IS NULL)",
                    &[],
                )?
                .ok_or_else(|| StoreError::Corrupt("count returned no row".into()))?;
            Ok((r.i64(0)?, r.i64(1)?))
        })
        .await
    }

    /// Tables and columns, normalised, for the schema-parity test.
    pub async fn schema(&self) -> Result<Vec<ColumnInfo>, StoreError> {
        self.read(|c| {
            let sql = match c.dialect() {
                Dialect::Sqlite => "SELECT m.name, p.name, p.type, CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 1 ELSE 0 END FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                Dialect::Postgres => "SELECT table_name::text, column_name::text, data_type::text, CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END FROM information_schema.columns WHERE table_schema = current_schema()",
            };
            let mut cols = c
                .query(sql, &[])?
                .iter()
                .map(|r| {
                    let ty = r.text(2)?.to_ascii_lowercase();
                    let kind = if ty.contains("int") {
                        "int"
                    } else if ty.contains("blob") || ty.contains("bytea") {
                        "bytes"
                    } else {
                        "text"
                    };
                    Ok(ColumnInfo {
                        table: r.text(0)?,
                        column: r.text(1)?,
                        kind: kind.into(),
                        not_null: r.i64(3)? == 1,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            cols.sort();
            Ok(cols)
        })
        .await
    }
}

/// A stored version of a resource or crosswalk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsiVersion {
    pub code: String,
    pub version: i64,
    /// `resource` or `crosswalk`.
    pub kind: String,
    pub sha256: String,
    pub published_at: i64,
    /// Canonical JSON.
    pub content: Vec<u8>,
}

fn nsi_version(r: &Row) -> Result<NsiVersion, StoreError> {
    Ok(NsiVersion {
        code: r.text(0)?,
        version: r.i64(1)?,
        kind: r.text(2)?,
        sha256: r.text(3)?,
        published_at: r.i64(4)?,
        content: r.blob(5)?,
    })
}

fn message_record(r: &Row) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        message_id: r.text(0)?,
        track_id: r.text(1)?,
        accept_time: r.i64(2)?,
        direction: r.text(3)?,
        sender: r.text(4)?,
        recipient: r.text(5)?,
        action: r.text(6)?,
        kind: r.text(7)?,
        conversation_id: r.opt_text(8)?,
        procedure_id: r.opt_text(9)?,
        relates_to: r.opt_text(10)?,
        state: r.text(11)?,
        envelope_sha256: r.text(12)?,
    })
}

/// Ends the lease on an outbox entry we own (state `done`, `failed` or `expired`); the
/// message's row id, or None when the entry is no longer ours or no longer pending.
fn finish_lease(
    tx: &mut Tx<'_>,
    item_id: i64,
    owner: &str,
    outbox_state: &str,
    error: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let r = tx.conn.query_one(
        "UPDATE outbox SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = COALESCE($2, last_error) \
         WHERE id = $3 AND lease_owner = $4 AND state = 'pending' RETURNING msg",
        &[outbox_state.into(), error.into(), Value::I64(item_id), owner.into()],
    )?;
    r.map(|r| r.i64(0)).transpose()
}

/// Moves a message to `state`: appends to its history, whose last row is its current state.
pub fn set_state(
    tx: &mut Tx<'_>,
    msg: i64,
    state: &str,
    at: i64,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.conn.execute(
        "INSERT INTO message_states (msg, state, at, detail) VALUES ($1, $2, $3, $4)",
        &[Value::I64(msg), state.into(), Value::I64(at), detail.into()],
    )?;
    Ok(())
}

fn evidence_of(c: &mut dyn Conn, message_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    c.query(
        "SELECT e.kind, e.body FROM evidence e JOIN messages m ON m.id = e.msg WHERE m.message_id = $1 ORDER BY e.kind",
        &[message_id.into()],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.blob(1)?)))
    .collect()
}

fn accept_op(tx: &mut Tx<'_>, m: &NewMessage) -> Result<Accepted, StoreError> {
    let sha = hex::encode(Sha256::digest(&m.envelope));
    let signer = m
        .signature
        .as_ref()
        .map(|s| hex::encode(Sha256::digest(&s.certificate)));
    let inserted = tx.conn.query_one(
        "INSERT INTO messages (message_id, track_id, accept_time, direction, sender, recipient, action, kind, conversation_id, procedure_id, relates_to, envelope, received, envelope_sha256, signature, signer_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (message_id) DO NOTHING RETURNING id",
        &[
            (&m.message_id).into(),
            (&m.track_id).into(),
            Value::I64(m.accept_time),
            (&m.direction).into(),
            (&m.sender).into(),
            (&m.recipient).into(),
            (&m.action).into(),
            (&m.kind).into(),
            m.conversation_id.clone().into(),
            m.procedure_id.clone().into(),
            m.relates_to.clone().into(),
            Value::Blob(m.envelope.clone()),
            m.received.clone().into(),
            (&sha).into(),
            m.signature.as_ref().map(|s| s.header.clone()).into(),
            signer.clone().into(),
        ],
    )?;
    let Some(inserted) = inserted else {
        let r = tx
            .conn
            .query_one(
                "SELECT sender, track_id, accept_time FROM messages WHERE message_id = $1",
                &[(&m.message_id).into()],
            )?
            .ok_or_else(|| StoreError::Corrupt("duplicate message vanished".into()))?;
        if r.text(0)? != m.sender {
            return Err(StoreError::Conflict(format!(
                "MessageID {} was already used by another sender",
                m.message_id
            )));
        }
        return Ok(Accepted::Duplicate {
            track_id: r.text(1)?,
            accept_time: r.i64(2)?,
        });
    };
    let msg = inserted.i64(0)?;
    for (kind, body) in &m.evidence {
        tx.conn.execute(
            "INSERT INTO evidence (msg, kind, body) VALUES ($1, $2, $3)",
            &[Value::I64(msg), kind.into(), Value::Blob(body.clone())],
        )?;
    }
    if let (Some(sig), Some(sha)) = (&m.signature, &signer) {
        tx.conn.execute(
            "INSERT INTO certificates (sha256, der, first_seen) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            &[sha.into(), Value::Blob(sig.certificate.clone()), Value::I64(m.accept_time)],
        )?;
    }
    match &m.route {
        // Accepted and queued in one statement: one fewer trip through SQLite per message.
        Route::Outbox { destination } => tx.conn.execute(
            "INSERT INTO message_states (msg, state, at, detail) VALUES ($1, $2, $3, NULL), ($1, $4, $3, $5)",
            &[
                Value::I64(msg),
                state::ACCEPTED.into(),
                Value::I64(m.accept_time),
                state::QUEUED.into(),
                destination.into(),
            ],
        )?,
        Route::None => tx.conn.execute(
            "INSERT INTO message_states (msg, state, at, detail) VALUES ($1, $2, $3, NULL)",
            &[Value::I64(msg), state::ACCEPTED.into(), Value::I64(m.accept_time)],
        )?,
    };
    log::append(tx, &m.message_id, "accepted", &sha, m.accept_time)?;
    if let (Some(c), Some(p), Some(t)) = (&m.conversation_id, &m.process, &m.transaction) {
        tx.conn.execute(
            "INSERT INTO conversations (conversation_id, process, transaction_code, started_at, last_at, messages) VALUES ($1, $2, $3, $4, $4, 1) \
             ON CONFLICT (conversation_id) DO UPDATE SET last_at = excluded.last_at, messages = conversations.messages + 1",
            &[c.into(), p.into(), t.into(), Value::I64(m.accept_time)],
        )?;
    }
    if let Route::Outbox { destination } = &m.route {
        tx.conn.execute(
            "INSERT INTO outbox (msg, destination, state, attempts, next_attempt_at, created_at, expires_at) VALUES ($1, $2, 'pending', 0, $3, $3, $4)",
            &[Value::I64(msg), destination.into(), Value::I64(m.accept_time), m.expires_at.into()],
        )?;
    }
    Ok(Accepted::New)
}
