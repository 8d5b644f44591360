//! The message log: append-only, each record hash-chained to the one before (SHA-256), with
//! checkpoints of the chain head signed by the node key.
//!
//! A record's hash covers its sequence number, time, MessageID, event, the SHA-256 of the
//! envelope bytes and the previous hash, so editing any of those, deleting a record, or editing
//! the stored envelope bytes breaks the chain at that record. Truncating the tail is caught up
//! to the last signed checkpoint; the node checkpoints often and at shutdown to keep that window
//! small.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use db::{Conn, Value};

use crate::{StoreError, Tx};

pub const GENESIS: [u8; 32] = [0; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// Signs checkpoints with the node key.
pub trait CheckpointSigner: Send + Sync {
    /// Identifies the key (for example the hex SHA-256 of the public key).
    fn key_id(&self) -> String;
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

pub fn record_hash(
    seq: i64,
    at: i64,
    message_id: &str,
    event: &str,
    envelope_sha256: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ortaq-log-record\0");
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for s in [message_id, event, envelope_sha256] {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.update(prev);
    h.finalize().into()
}

/// The hex SHA-256 of envelope bytes, as log records name them.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn checkpoint_message(seq: i64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"ortaq-log-checkpoint\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

fn parse_hash(s: &str) -> Result<[u8; 32], StoreError> {
    let v = hex::decode(s).map_err(|_| StoreError::Corrupt(format!("{s:?} is not hex")))?;
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{s:?} is not a SHA-256")))
}

pub(crate) fn load_head(conn: &mut dyn Conn) -> Result<LogHead, StoreError> {
    let sql = format!(
        "SELECT seq, hash FROM log_head WHERE id = 1{}",
        conn.dialect().for_update()
    );
    let row = conn
        .query_one(&sql, &[])?
        .ok_or_else(|| StoreError::Corrupt("log_head row is missing".into()))?;
    Ok(LogHead {
        seq: row.i64(0)?,
        hash: parse_hash(&row.text(1)?)?,
    })
}

pub(crate) fn store_head(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    if let Some(h) = &tx.state.head {
        tx.conn.execute(
            "UPDATE log_head SET seq = $1, hash = $2 WHERE id = 1",
            &[Value::I64(h.seq), hex::encode(h.hash).into()],
        )?;
    }
    Ok(())
}

/// Appends one record; the head is read once per batch and written at its end.
pub(crate) fn append(
    tx: &mut Tx<'_>,
    message_id: &str,
    event: &str,
    envelope_sha256: &str,
    at: i64,
) -> Result<i64, StoreError> {
    let head = match tx.state.head.take() {
        Some(h) => h,
        None => load_head(tx.conn)?,
    };
    let seq = head.seq + 1;
    let hash = record_hash(seq, at, message_id, event, envelope_sha256, &head.hash);
    tx.conn.execute(
        "INSERT INTO message_log (seq, at, message_id, event, envelope_sha256, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Value::I64(seq),
            Value::I64(at),
            message_id.into(),
            event.into(),
            envelope_sha256.into(),
            hex::encode(head.hash).into(),
            hex::encode(hash).into(),
        ],
    )?;
    tx.state.head = Some(LogHead { seq, hash });
    tx.state.dirty = true;
    Ok(seq)
}

/// Checks a [`crate::LogProof`] offline: it starts at a record of `message_id` for the
/// envelope whose SHA-256 (hex) is `envelope_sha256`, every record's hash is recomputed from its
/// fields and links to the one before, and the last one is the checkpoint `key` signed.
pub fn verify_proof(
    proof: &crate::LogProof,
    message_id: &str,
    envelope_sha256: &str,
    key: &VerifyingKey,
) -> Result<(), String> {
    let first = proof.records.first().ok_or("the proof has no records")?;
    if first.message_id != message_id || first.envelope_sha256 != envelope_sha256 {
        return Err(format!(
            "the first record (seq {}) is not this message's envelope",
            first.seq
        ));
    }
    let mut prev: Option<&crate::LogRecord> = None;
    for r in &proof.records {
        let bad = |why: &str| format!("record {}: {why}", r.seq);
        let prev_hash = parse_hash(&r.prev_hash).map_err(|_| bad("previous hash is not a hash"))?;
        if let Some(p) = prev
            && (r.seq != p.seq + 1 || r.prev_hash != p.hash)
        {
            return Err(bad("does not follow the record before it"));
        }
        let h = record_hash(
            r.seq,
            r.at,
            &r.message_id,
            &r.event,
            &r.envelope_sha256,
            &prev_hash,
        );
        if hex::encode(h) != r.hash {
            return Err(bad("its hash does not match its contents"));
        }
        prev = Some(r);
    }
    let last = prev.ok_or("the proof has no records")?;
    let cp = &proof.checkpoint;
    if last.seq != cp.seq || last.hash != cp.hash {
        return Err(format!(
            "the records end at {} but the checkpoint is at {}",
            last.seq, cp.seq
        ));
    }
    let hash = parse_hash(&cp.hash).map_err(|e| e.to_string())?;
    let sig =
        Signature::from_slice(&cp.signature).map_err(|_| "checkpoint signature is malformed")?;
    key.verify(&checkpoint_message(cp.seq, &hash), &sig)
        .map_err(|_| "the checkpoint is not signed by this node key".to_owned())
}

/// Writes a signed checkpoint of `head` unless one exists at that sequence number.
pub(crate) fn checkpoint(
    conn: &mut dyn Conn,
    head: &LogHead,
    signer: &dyn CheckpointSigner,
    at: i64,
) -> Result<bool, StoreError> {
    if head.seq == 0 {
        return Ok(false);
    }
    let sig = signer.sign(&checkpoint_message(head.seq, &head.hash));
    let n = conn.execute(
        "INSERT INTO log_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
        &[
            Value::I64(head.seq),
            hex::encode(head.hash).into(),
            Value::I64(at),
            signer.key_id().into(),
            hex::encode(sig).into(),
        ],
    )?;
    Ok(n == 1)
}

pub(crate) fn last_checkpoint_seq(conn: &mut dyn Conn) -> Result<i64, StoreError> {
    Ok(conn
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM log_checkpoints", &[])?
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// The first place the log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Sequence number of the first broken record (or checkpoint).
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: i64,
    pub checkpoints: i64,
    pub last_checkpoint: i64,
    pub first_break: Option<Break>,
}

/// Walks the chain from the first record, then the checkpoints, then cross-checks stored
/// envelopes against the log. Reads in pages, so memory stays flat on a large log.
pub(crate) fn verify(conn: &mut dyn Conn, key: &VerifyingKey) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        records: 0,
        checkpoints: 0,
        last_checkpoint: 0,
        first_break: None,
    };
    let brk = |seq: i64, reason: String| Some(Break { seq, reason });
    let mut prev = GENESIS;
    let mut expect_seq = 1i64;
    let mut hashes_at_checkpoints = Vec::new();
    let checkpoints = conn.query(
        "SELECT seq, hash, key_id, signature FROM log_checkpoints ORDER BY seq",
        &[],
    )?;
    let cp_seqs: Vec<i64> = checkpoints
        .iter()
        .map(|r| r.i64(0))
        .collect::<Result<_, _>>()?;
    'walk: loop {
        let page = conn.query(
            "SELECT l.seq, l.at, l.message_id, l.event, l.envelope_sha256, l.prev_hash, l.hash, m.envelope \
             FROM message_log l LEFT JOIN messages m ON m.message_id = l.message_id \
             WHERE l.seq >= $1 ORDER BY l.seq LIMIT 1000",
            &[Value::I64(expect_seq)],
        )?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let seq = r.i64(0)?;
            if seq != expect_seq {
                report.first_break = brk(
                    expect_seq,
                    format!("record {expect_seq} is missing (next present is {seq})"),
                );
                break 'walk;
            }
            let (at, mid, event, env_sha) = (r.i64(1)?, r.text(2)?, r.text(3)?, r.text(4)?);
            if parse_hash(&r.text(5)?)? != prev {
                report.first_break =
                    brk(seq, "prev_hash does not match the previous record".into());
                break 'walk;
            }
            let h = record_hash(seq, at, &mid, &event, &env_sha, &prev);
            if parse_hash(&r.text(6)?)? != h {
                report.first_break = brk(
                    seq,
                    format!(
                        "record {seq} (message {mid}) was altered: its hash does not match its content"
                    ),
                );
                break 'walk;
            }
            if event == "accepted" {
                match r.opt_blob(7)? {
                    None => {
                        report.first_break = brk(
                            seq,
                            format!("message {mid} logged at {seq} is missing from the store"),
                        );
                        break 'walk;
                    }
                    Some(env) if hex::encode(Sha256::digest(&env)) != env_sha => {
                        report.first_break = brk(
                            seq,
                            format!(
                                "the stored envelope of message {mid} differs from the bytes logged at {seq}"
                            ),
                        );
                        break 'walk;
                    }
                    Some(_) => {}
                }
            }
            if cp_seqs.binary_search(&seq).is_ok() {
                hashes_at_checkpoints.push((seq, h));
            }
            prev = h;
            expect_seq += 1;
            report.records += 1;
        }
    }
    for cp in &checkpoints {
        let (seq, hash, sig) = (cp.i64(0)?, parse_hash(&cp.text(1)?)?, cp.text(3)?);
        report.checkpoints += 1;
        let sig_ok = hex::decode(&sig)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|s| key.verify(&checkpoint_message(seq, &hash), &s).is_ok());
        let mut at = seq;
        let reason = if !sig_ok {
            Some(format!(
                "checkpoint at {seq} is not signed by this node's key"
            ))
        } else if seq > report.records && report.first_break.is_none() {
            at = report.records + 1;
            Some(format!(
                "the log ends at record {} but a signed checkpoint covers record {seq}: records were removed",
                report.records
            ))
        } else {
            match hashes_at_checkpoints.iter().find(|(s, _)| *s == seq) {
                Some((_, h)) if *h != hash => {
                    Some(format!("checkpoint at {seq} does not match the chain"))
                }
                _ => None,
            }
        };
        if let Some(reason) = reason {
            let earlier = report.first_break.as_ref().is_some_and(|b| b.seq <= at);
            if !earlier {
                report.first_break = brk(at, reason);
            }
        } else if sig_ok {
            report.last_checkpoint = seq;
        }
    }
    if report.first_break.is_none() {
        // A message whose acceptance was never logged was slipped in behind the log's back.
        let orphan = conn.query_one(
            "SELECT m.message_id FROM messages m LEFT JOIN message_log l ON l.message_id = m.message_id AND l.event = 'accepted' WHERE l.seq IS NULL LIMIT 1",
            &[],
        )?;
        if let Some(r) = orphan {
            report.first_break = brk(
                report.records + 1,
                format!(
                    "message {} is stored but its acceptance is not in the log",
                    r.text(0)?
                ),
            );
        }
    }
    Ok(report)
}
