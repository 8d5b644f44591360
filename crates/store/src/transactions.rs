//! The initiator's side of the transactions a node's ISs start, as the gateway keeps them
//! (`node::conversations`): one row per transaction, keyed by the MessageID of its request,
//! and a row per MessageID the request went out with, so that whatever relates to a retry
//! finds the transaction too.

use db::Value;

use crate::{Store, StoreError, Tx};

/// One kept transaction. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptTransaction {
    pub request_id: String,
    pub participant: String,
    pub conversation_id: Option<String>,
    pub process: String,
    pub version: String,
    pub transaction: String,
    /// The engine's snapshot (`process::engine::Snapshot`).
    pub state: String,
    pub attempts: i64,
    pub outcome: String,
    pub why: Option<String>,
    pub deadline: Option<i64>,
    pub updated_at: i64,
}

const COLUMNS: &str = "t.request_id, t.participant, t.conversation_id, t.process, t.version, \
     t.transaction_code, t.state, t.attempts, t.outcome, t.why, t.deadline, t.updated_at";

/// Records that message `message_id` carries the request of transaction `request_id`.
fn map_message(tx: &mut Tx<'_>, message_id: &str, request_id: &str) -> Result<(), StoreError> {
    tx.conn.execute(
        "INSERT INTO transaction_messages (message_id, request_id) VALUES ($1, $2) \
         ON CONFLICT (message_id) DO NOTHING",
        &[message_id.into(), request_id.into()],
    )?;
    Ok(())
}

fn row(r: &db::Row) -> Result<KeptTransaction, db::DbError> {
    Ok(KeptTransaction {
        request_id: r.text(0)?,
        participant: r.text(1)?,
        conversation_id: r.opt_text(2)?,
        process: r.text(3)?,
        version: r.text(4)?,
        transaction: r.text(5)?,
        state: r.text(6)?,
        attempts: r.i64(7)?,
        outcome: r.text(8)?,
        why: r.opt_text(9)?,
        deadline: r.opt_i64(10)?,
        updated_at: r.i64(11)?,
    })
}

impl Store {
    /// Starts keeping a transaction; its request is its first message. False when it is kept
    /// already (a repeated request changes nothing).
    pub async fn txn_start(&self, t: KeptTransaction) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let n = tx.conn.execute(
                "INSERT INTO transactions (request_id, participant, conversation_id, process, version, \
                 transaction_code, state, attempts, outcome, why, deadline, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (request_id) DO NOTHING",
                &[
                    (&t.request_id).into(),
                    (&t.participant).into(),
                    t.conversation_id.clone().into(),
                    (&t.process).into(),
                    (&t.version).into(),
                    (&t.transaction).into(),
                    (&t.state).into(),
                    Value::I64(t.attempts),
                    (&t.outcome).into(),
                    t.why.clone().into(),
                    t.deadline.into(),
                    Value::I64(t.updated_at),
                ],
            )?;
            if n == 1 {
                map_message(tx, &t.request_id, &t.request_id)?;
            }
            Ok(n == 1)
        })
        .await
    }

    /// The transaction that message `message_id` (its request or a retry) belongs to.
    pub async fn txn_of(&self, message_id: &str) -> Result<Option<KeptTransaction>, StoreError> {
        let id = message_id.to_owned();
        self.read(move |c| {
            c.query_one(
                &format!(
                    "SELECT {COLUMNS} FROM transaction_messages m JOIN transactions t \
                     ON t.request_id = m.request_id WHERE m.message_id = $1"
                ),
                &[id.into()],
            )?
            .map(|r| row(&r))
            .transpose()
        })
        .await
    }

    /// Records the engine's new snapshot of a transaction and, for a retry, the MessageID it
    /// went out with: in one write, so a retry is never sent unrecorded.
    pub async fn txn_update(
        &self,
        t: &KeptTransaction,
        retry_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let t = t.clone();
        let retry = retry_id.map(str::to_owned);
        self.write(move |tx| {
            tx.conn.execute(
                "UPDATE transactions SET state = $2, attempts = $3, outcome = $4, why = $5, \
                 deadline = $6, updated_at = $7 WHERE request_id = $1",
                &[
                    (&t.request_id).into(),
                    (&t.state).into(),
                    Value::I64(t.attempts),
                    (&t.outcome).into(),
                    t.why.clone().into(),
                    t.deadline.into(),
                    Value::I64(t.updated_at),
                ],
            )?;
            if let Some(id) = &retry {
                map_message(tx, id, &t.request_id)?;
            }
            Ok(())
        })
        .await
    }

    /// The pending transaction `transaction` that `participant` started in conversation
    /// `conversation_id`, if any: a request in it again (a retry with a new MessageID, by the
    /// IS or by the node) belongs to it rather than starting another.
    pub async fn txn_pending_in(
        &self,
        participant: &str,
        conversation_id: &str,
        transaction: &str,
    ) -> Result<Option<KeptTransaction>, StoreError> {
        let (p, c, t) = (
            participant.to_owned(),
            conversation_id.to_owned(),
            transaction.to_owned(),
        );
        self.read(move |conn| {
            conn.query_one(
                &format!(
                    "SELECT {COLUMNS} FROM transactions t WHERE t.participant = $1 \
                     AND t.conversation_id = $2 AND t.transaction_code = $3 AND t.outcome = 'pending'"
                ),
                &[p.into(), c.into(), t.into()],
            )?
            .map(|r| row(&r))
            .transpose()
        })
        .await
    }

    /// Records that message `message_id` is the request of transaction `request_id` again.
    pub async fn txn_add_message(
        &self,
        request_id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let (r, m) = (request_id.to_owned(), message_id.to_owned());
        self.write(move |tx| map_message(tx, &m, &r)).await
    }

    /// Forgets transactions that ended before `before`, with their MessageIDs. Returns how
    /// many.
    pub async fn txn_prune(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            tx.conn.execute(
                "DELETE FROM transaction_messages WHERE request_id IN (SELECT request_id FROM \
                 transactions WHERE outcome <> 'pending' AND updated_at < $1)",
                &[Value::I64(before)],
            )?;
            tx.conn.execute(
                "DELETE FROM transactions WHERE outcome <> 'pending' AND updated_at < $1",
                &[Value::I64(before)],
            )
        })
        .await
    }

    /// Pending transactions whose deadline has come by `now`, earliest first, at most `limit`.
    pub async fn txn_due(&self, now: i64, limit: i64) -> Result<Vec<KeptTransaction>, StoreError> {
        self.read(move |c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM transactions t WHERE t.outcome = 'pending' \
                     AND t.deadline IS NOT NULL AND t.deadline <= $1 ORDER BY t.deadline LIMIT $2"
                ),
                &[Value::I64(now), Value::I64(limit)],
            )?
            .iter()
            .map(row)
            .collect()
        })
        .await
    }
}
