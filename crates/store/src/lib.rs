//! The durable store of a node: messages (raw bytes kept exactly), their state history,
//! conversations, the outbox (with leases) and inbox (with cursors and acknowledgements), API
//! tokens, and the hash-chained message log. SQLite (embedded default) and PostgreSQL
//! (production) sit behind the one [`Store`] type and pass the same conformance suite.
//!
//! Writes go through the one writer thread of its database (`db`, group commit); reads use a
//! small pool of connections on blocking threads. Every write answers only after its
//! transaction committed, which is the promise the node makes to information systems and peers.
//!
//! The store is sealed: its public API is typed queries; no connection, raw read or
//! transaction leaves this crate, and no other crate writes to its tables.

pub mod console;
pub mod log;
pub mod transactions;

use std::sync::Arc;

pub use db::{ColumnInfo, DbError as StoreError, Engine, WriterStats, system_micros};
use db::{Conn, Db, DbConfig, Dialect, Row, Value};
use sha2::{Digest, Sha256};

pub use log::{Break, CheckpointSigner, VerifyReport};

/// The node's migrations, SQLite and PostgreSQL side by side.
static MIGRATIONS: db::Migrations = db::Migrations {
    table: "schema_migrations",
    list: &[
        db::Migration {
            version: 1,
            name: "init",
            sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
            postgres: include_str!("../migrations/postgres/0001_init.sql"),
        },
        db::Migration {
            version: 2,
            name: "federation",
            sqlite: include_str!("../migrations/sqlite/0002_federation.sql"),
            postgres: include_str!("../migrations/postgres/0002_federation.sql"),
        },
        db::Migration {
            version: 3,
            name: "nsi",
            sqlite: include_str!("../migrations/sqlite/0003_nsi.sql"),
            postgres: include_str!("../migrations/postgres/0003_nsi.sql"),
        },
        db::Migration {
            version: 4,
            name: "evidence",
            sqlite: include_str!("../migrations/sqlite/0004_evidence.sql"),
            postgres: include_str!("../migrations/postgres/0004_evidence.sql"),
        },
        db::Migration {
            version: 5,
            name: "checkpoint_stamps",
            sqlite: include_str!("../migrations/sqlite/0005_checkpoint_stamps.sql"),
            postgres: include_str!("../migrations/postgres/0005_checkpoint_stamps.sql"),
        },
        db::Migration {
            version: 6,
            name: "token_expiry",
            sqlite: include_str!("../migrations/sqlite/0006_token_expiry.sql"),
            postgres: include_str!("../migrations/postgres/0006_token_expiry.sql"),
        },
        db::Migration {
            version: 7,
            name: "relates_to",
            sqlite: include_str!("../migrations/sqlite/0007_relates_to.sql"),
            postgres: include_str!("../migrations/postgres/0007_relates_to.sql"),
        },
        db::Migration {
            version: 8,
            name: "journal",
            sqlite: include_str!("../migrations/sqlite/0008_journal.sql"),
            postgres: include_str!("../migrations/postgres/0008_journal.sql"),
        },
        db::Migration {
            version: 9,
            name: "transactions",
            sqlite: include_str!("../migrations/sqlite/0009_transactions.sql"),
            postgres: include_str!("../migrations/postgres/0009_transactions.sql"),
        },
        db::Migration {
            version: 10,
            name: "console",
            sqlite: include_str!("../migrations/sqlite/0010_console.sql"),
            postgres: include_str!("../migrations/postgres/0010_console.sql"),
        },
    ],
};

/// What the store keeps per write batch: the message-log head, read once and written once.
#[derive(Default)]
pub(crate) struct LogBatch {
    pub(crate) head: Option<log::LogHead>,
    pub(crate) dirty: bool,
}

pub(crate) type Tx<'a> = db::Tx<'a, LogBatch>;

/// Whose outbox queue an entry is in: the local delivery worker's, or one peer's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A participant of this node.
    Local,
    /// The next node on the route, by segment code.
    Peer(String),
}

impl Destination {
    pub fn as_str(&self) -> &str {
        match self {
            Destination::Local => "local",
            Destination::Peer(s) => s,
        }
    }

    fn parse(s: &str) -> Destination {
        match s {
            "local" => Destination::Local,
            s => Destination::Peer(s.to_owned()),
        }
    }
}

/// Where an accepted message goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through the outbox to `destination`.
    Outbox { destination: Destination },
    /// Nowhere (stored only: a refused document kept as evidence).
    None,
}

/// Names that are stored as text, typed here.
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            pub fn parse(s: &str) -> Result<$name, StoreError> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

stored_enum! {
    /// How a message came to this node.
    Direction {
        /// Submitted by an IS of this node.
        Out = "out",
        /// Received from a peer for a participant of this node.
        In = "in",
        /// Received from a peer and forwarded to another (the EEC relay).
        Relay = "relay",
        /// Made by this node's gate to tell a sender what became of its message.
        Notice = "notice",
    }
}

stored_enum! {
    /// What an envelope carries.
    Kind {
        Application = "application",
        Signal = "signal",
        Fault = "fault",
    }
}

stored_enum! {
    /// The states of a message's history.
    State {
        Accepted = "accepted",
        Queued = "queued",
        InInbox = "in_inbox",
        Delivered = "delivered",
        Acknowledged = "acknowledged",
        /// Handed to the next node (the request went out).
        Sent = "sent",
        /// The next node answered RCV: it has committed the message.
        ReceivedByPeer = "received_by_peer",
        Failed = "failed",
        Expired = "expired",
    }
}

/// A message the node has accepted and must keep.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub track_id: String,
    pub accept_time: i64,
    pub direction: Direction,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    pub kind: Kind,
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
    Duplicate {
        track_id: String,
        accept_time: i64,
        conversation_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub message_id: String,
    pub track_id: String,
    pub accept_time: i64,
    pub direction: Direction,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    pub kind: Kind,
    pub conversation_id: Option<String>,
    pub procedure_id: Option<String>,
    pub relates_to: Option<String>,
    pub state: State,
    pub envelope_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub state: State,
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
    pub destination: Destination,
    pub attempts: i64,
    /// When the message entered the outbox (its accept time).
    pub created_at: i64,
    pub expires_at: Option<i64>,
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

/// The store; cheap to clone, shared by every task of a node.
#[derive(Clone)]
pub struct Store {
    db: Db<LogBatch>,
    signer: Option<Arc<dyn CheckpointSigner>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Store {
    /// Opens (creating and migrating if needed) the store. Blocking; safe to call from
    /// anywhere (see `db::Db::open`).
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        let signer = cfg.signer.clone();
        let every = cfg.checkpoint_every.max(1);
        let mut last_cp: Option<i64> = None;
        let clock = cfg.clock.clone();
        // Inside every batch's transaction: the log head is written once, and a checkpoint is
        // signed when enough records were appended since the last one.
        let before_commit = Box::new(move |tx: &mut Tx<'_>| -> Result<(), StoreError> {
            if tx.state.dirty {
                log::store_head(tx)?;
            }
            let (Some(signer), Some(h)) = (&signer, tx.state.head.clone()) else {
                return Ok(());
            };
            let last = match last_cp {
                Some(s) => s,
                None => log::last_checkpoint_seq(tx.conn)?,
            };
            if h.seq - last >= every {
                log::checkpoint(tx.conn, &h, signer.as_ref(), clock())?;
                last_cp = Some(h.seq);
            } else {
                last_cp = Some(last);
            }
            Ok(())
        });
        let db = Db::open(DbConfig {
            engine: cfg.engine,
            migrations: &MIGRATIONS,
            name: "store",
            readers: cfg.readers,
            before_commit,
        })?;
        Ok(Store {
            db,
            signer: cfg.signer,
            clock: cfg.clock,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    pub fn writer_stats(&self) -> &WriterStats {
        self.db.writer_stats()
    }

    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.db.write(f).await
    }

    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut dyn Conn) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.db.read(f).await
    }

    /// Stops taking writes, lets the writer finish every queued job, writes a final
    /// checkpoint and waits for the writer thread.
    pub async fn close(&self) -> Result<(), StoreError> {
        let _ = self.checkpoint().await;
        self.db.close().await
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
                    state: State::parse(&r.text(0)?)?,
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
    /// How many messages reached each (direction, state) in the period `(from, to]`
    /// (microseconds), for the diagnostic journal.
    pub async fn journal_counts(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT m.direction, s.state, COUNT(*) FROM message_states s JOIN messages m ON m.id = s.msg \
                 WHERE s.at > $1 AND s.at <= $2 GROUP BY m.direction, s.state ORDER BY m.direction, s.state",
                &[Value::I64(from), Value::I64(to)],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?)))
            .collect()
        })
        .await
    }

    /// The messages that failed or expired in `(from, to]`, oldest first, at most `limit`.
    pub async fn journal_failures(
        &self,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<JournalRow>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT m.message_id, m.direction, m.sender, m.recipient, m.action, s.state, s.at, s.detail \
                 FROM message_states s JOIN messages m ON m.id = s.msg \
                 WHERE s.at > $1 AND s.at <= $2 AND s.state IN ('failed', 'expired') ORDER BY s.id LIMIT $3",
                &[Value::I64(from), Value::I64(to), Value::I64(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(JournalRow {
                    message_id: r.text(0)?,
                    direction: r.text(1)?,
                    sender: r.text(2)?,
                    recipient: r.text(3)?,
                    action: r.text(4)?,
                    state: r.text(5)?,
                    at: r.i64(6)?,
                    detail: r.opt_text(7)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Keeps a gateway's report for a period (JSON of its counts and records); a report for the
    /// same gateway and period again changes nothing. True when it was new.
    pub async fn journal_keep(&self, report: KeptReport) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let n = tx.conn.execute(
                "INSERT INTO journal_reports (segment, period_from, period_to, received_at, counts, records) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (segment, period_from, period_to) DO NOTHING",
                &[
                    (&report.segment).into(),
                    Value::I64(report.period_from),
                    Value::I64(report.period_to),
                    Value::I64(report.received_at),
                    (&report.counts).into(),
                    (&report.records).into(),
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// The reports kept, newest first, at most `limit`.
    pub async fn journal_reports(&self, limit: i64) -> Result<Vec<KeptReport>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT segment, period_from, period_to, received_at, counts, records FROM journal_reports \
                 ORDER BY period_to DESC, segment LIMIT $1",
                &[Value::I64(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(KeptReport {
                    segment: r.text(0)?,
                    period_from: r.i64(1)?,
                    period_to: r.i64(2)?,
                    received_at: r.i64(3)?,
                    counts: r.text(4)?,
                    records: r.text(5)?,
                })
            })
            .collect()
        })
        .await
    }

    /// The first unacknowledged message in `participant`'s inbox that answers `relates_to`: an
    /// application message (the response), an ERR signal or a Fault (the end of the exchange);
    /// RCV and PRS only say the request is on its way.
    pub async fn inbox_answer(
        &self,
        participant: &str,
        relates_to: &str,
    ) -> Result<Option<InboxItem>, StoreError> {
        let (p, r) = (participant.to_owned(), relates_to.to_owned());
        self.read(move |c| {
            c.query(
                "SELECT i.seq, m.message_id, m.sender, m.action, m.conversation_id, m.track_id, m.accept_time, m.envelope, i.delivered_at \
                 FROM inbox i JOIN messages m ON m.id = i.msg \
                 WHERE i.participant = $1 AND i.acked_at IS NULL AND m.relates_to = $2 \
                 AND (m.kind <> 'signal' OR m.action LIKE '%/P.MSG.ERR') ORDER BY i.seq LIMIT 1",
                &[p.into(), r.into()],
            )?
            .iter()
            .map(inbox_item)
            .next()
            .transpose()
        })
        .await
    }

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
            .map(inbox_item)
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
                    set_state(tx, r.i64(0)?, State::Delivered, now, None)?;
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
                set_state(tx, msg, State::Acknowledged, now, None)?;
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
        destination: &Destination,
        limit: i64,
        lease: i64,
        now: i64,
        resume_own: bool,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let (owner, destination) = (owner.to_owned(), destination.as_str().to_owned());
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
                        destination: Destination::parse(&r.text(2)?),
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
                set_state(tx, msg, State::InInbox, now, Some(&recipient))?;
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
                set_state(tx, msg, State::Sent, d.sent_at, peer)?;
                set_state(tx, msg, State::ReceivedByPeer, now, Some(&d.detail))?;
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
        final_state: State,
        detail: &str,
        notice: Option<NewMessage>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (owner, detail) = (owner.to_owned(), detail.to_owned());
        self.write(move |tx| {
            let Some(msg) = finish_lease(tx, item_id, &owner, final_state.as_str(), Some(&detail))?
            else {
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
                set_state(tx, id, State::Failed, m.accept_time, Some(&detail))?;
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
        let Some(signer) = self.signer.clone() else {
            return Ok(false);
        };
        let at = (self.clock)();
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

    /// Stores a token by its SHA-256; `expires_at` (microseconds) ends it, None never.
    pub async fn add_token(
        &self,
        token_sha256: &str,
        participant: &str,
        label: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let (t, p, l) = (
            token_sha256.to_owned(),
            participant.to_owned(),
            label.to_owned(),
        );
        self.write(move |tx| {
            tx.conn.execute(
                "INSERT INTO api_tokens (token_sha256, participant, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[(&t).into(), (&p).into(), (&l).into(), Value::I64(now), expires_at.into()],
            )?;
            Ok(())
        })
        .await
    }

    /// What a token (given by its SHA-256) grants, unless it was revoked.
    pub async fn token_grant(&self, token_sha256: &str) -> Result<Option<TokenGrant>, StoreError> {
        let t = token_sha256.to_owned();
        self.read(move |c| {
            c.query_one(
                "SELECT participant, expires_at FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
                &[t.into()],
            )?
            .map(|r| {
                Ok(TokenGrant {
                    participant: r.text(0)?,
                    expires_at: r.opt_i64(1)?,
                })
            })
            .transpose()
        })
        .await
    }

    /// Every token ever issued, newest first (never the token itself: its id is the first 16
    /// hex digits of its SHA-256).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(|c| {
            c.query(
                "SELECT token_sha256, participant, label, created_at, expires_at, revoked_at FROM api_tokens ORDER BY created_at DESC, token_sha256",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.text(0)?.chars().take(TOKEN_ID_LEN).collect(),
                    participant: r.text(1)?,
                    label: r.text(2)?,
                    created_at: r.i64(3)?,
                    expires_at: r.opt_i64(4)?,
                    revoked_at: r.opt_i64(5)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Revokes the tokens `which` names that are not revoked yet; how many were.
    pub async fn revoke_tokens(&self, which: TokenSelector, now: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let (sql, arg) = match &which {
                // An id is the first TOKEN_ID_LEN (16) hex digits of the hash.
                TokenSelector::Id(id) => (
                    "UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND substr(token_sha256, 1, 16) = $2",
                    id.to_ascii_lowercase(),
                ),
                TokenSelector::Participant(p) => (
                    "UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND participant = $2",
                    p.clone(),
                ),
            };
            tx.conn.execute(sql, &[Value::I64(now), arg.into()])
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
        self.db.schema("").await
    }

    /// Microseconds from `accepted` to `received_by_peer` of each message accepted in
    /// [`from`, `to`), sorted: how long the next node took to confirm (for benchmarks).
    pub async fn confirmation_delays(&self, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
        let mut d = self
            .read(move |c| {
                c.query(
                    "SELECT a.at, r.at FROM message_states a JOIN message_states r ON r.msg = a.msg \
                     WHERE a.state = 'accepted' AND r.state = 'received_by_peer' AND a.at >= $1 AND a.at < $2",
                    &[Value::I64(from), Value::I64(to)],
                )?
                .iter()
                .map(|r| Ok((r.i64(1)? - r.i64(0)?).max(0)))
                .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        d.sort_unstable();
        Ok(d)
    }
}

/// How many hex digits of a token's SHA-256 name it in lists and revocations.
pub const TOKEN_ID_LEN: usize = 16;

/// What a token that is not revoked grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub participant: String,
    /// Microseconds; None: it does not expire.
    pub expires_at: Option<i64>,
}

/// One issued token, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub participant: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Which tokens to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// One token, by the id `tokens` shows.
    Id(String),
    /// Every token of a participant.
    Participant(String),
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

/// A message that failed or expired, as the diagnostic journal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub message_id: String,
    pub direction: String,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    pub state: String,
    pub at: i64,
    pub detail: Option<String>,
}

/// A gateway's journal for a period, as the collecting node keeps it (counts and records as
/// JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReport {
    pub segment: String,
    pub period_from: i64,
    pub period_to: i64,
    pub received_at: i64,
    pub counts: String,
    pub records: String,
}

/// An inbox row: seq, message_id, sender, action, conversation_id, track_id, accept_time,
/// envelope, delivered_at.
fn inbox_item(r: &Row) -> Result<InboxItem, StoreError> {
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

pub(crate) fn message_record(r: &Row) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        message_id: r.text(0)?,
        track_id: r.text(1)?,
        accept_time: r.i64(2)?,
        direction: Direction::parse(&r.text(3)?)?,
        sender: r.text(4)?,
        recipient: r.text(5)?,
        action: r.text(6)?,
        kind: Kind::parse(&r.text(7)?)?,
        conversation_id: r.opt_text(8)?,
        procedure_id: r.opt_text(9)?,
        relates_to: r.opt_text(10)?,
        state: State::parse(&r.text(11)?)?,
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
fn set_state(
    tx: &mut Tx<'_>,
    msg: i64,
    state: State,
    at: i64,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.conn.execute(
        "INSERT INTO message_states (msg, state, at, detail) VALUES ($1, $2, $3, $4)",
        &[
            Value::I64(msg),
            state.as_str().into(),
            Value::I64(at),
            detail.into(),
        ],
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
            m.direction.as_str().into(),
            (&m.sender).into(),
            (&m.recipient).into(),
            (&m.action).into(),
            m.kind.as_str().into(),
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
                "SELECT sender, track_id, accept_time, conversation_id FROM messages WHERE message_id = $1",
                &[(&m.message_id).into()],
            )?
            .ok_or_else(|| StoreError::Corrupt("duplicate message vanished".into()))?;
        if r.text(0)? != m.sender {
            // Says no more than it must: not whose it is, nor when or where it went.
            return Err(StoreError::Conflict(format!(
                "MessageID {} cannot be accepted from this sender; give the message a new one",
                m.message_id
            )));
        }
        return Ok(Accepted::Duplicate {
            track_id: r.text(1)?,
            accept_time: r.i64(2)?,
            conversation_id: r.opt_text(3)?,
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
                State::Accepted.as_str().into(),
                Value::I64(m.accept_time),
                State::Queued.as_str().into(),
                destination.as_str().into(),
            ],
        )?,
        Route::None => tx.conn.execute(
            "INSERT INTO message_states (msg, state, at, detail) VALUES ($1, $2, $3, NULL)",
            &[Value::I64(msg), State::Accepted.as_str().into(), Value::I64(m.accept_time)],
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
            &[Value::I64(msg), destination.as_str().into(), Value::I64(m.accept_time), m.expires_at.into()],
        )?;
    }
    Ok(Accepted::New)
}
