//! What a node's operator console reads: messages found by their identifiers, participant,
//! state and time; the queue towards each peer; and the node's activity over time.

use db::Value;

use crate::{MessageRecord, Store, StoreError, message_record};

/// What to look for; every field given must match. Times are microseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The sender or the recipient.
    pub participant: Option<String>,
    /// The message's current state (`State::as_str`).
    pub state: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only messages accepted before this row id (the page after one that ended there).
    pub before: Option<i64>,
    pub limit: i64,
}

/// A message found, with its row id (to page on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub row: i64,
    pub record: MessageRecord,
}

/// The queue towards one next hop: entries waiting, those being sent now, those that failed
/// at least once, and when the oldest was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerQueue {
    pub destination: String,
    pub pending: i64,
    pub in_flight: i64,
    pub retrying: i64,
    pub oldest_at: Option<i64>,
}

/// The node's activity in one period: messages accepted, messages that failed or expired, and
/// each confirmation delay (accepted to received by the next node) of a message accepted then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub start: i64,
    pub accepted: i64,
    pub failed: i64,
    pub delays: Vec<i64>,
}

const MESSAGE_COLUMNS: &str = "m.message_id, m.track_id, m.accept_time, m.direction, m.sender, m.recipient, m.action, m.kind, m.conversation_id, m.procedure_id, m.relates_to, \
     (SELECT s.state FROM message_states s WHERE s.msg = m.id ORDER BY s.id DESC LIMIT 1), m.envelope_sha256, m.id";

impl Store {
    /// Messages matching `q`, newest first, at most `q.limit` (1 to 500).
    pub async fn search_messages(&self, q: MessageQuery) -> Result<Vec<Found>, StoreError> {
        self.read(move |c| {
            let mut wheres = Vec::new();
            let mut params: Vec<Value> = Vec::new();
            let mut add = |clause: &str, v: Value| {
                params.push(v);
                wheres.push(clause.replace('?', &format!("${}", params.len())));
            };
            if let Some(v) = &q.message_id {
                add("m.message_id = ?", v.into());
            }
            if let Some(v) = &q.conversation_id {
                add("m.conversation_id = ?", v.into());
            }
            if let Some(v) = &q.participant {
                add("(m.sender = ? OR m.recipient = ?)", v.into());
            }
            if let Some(v) = &q.state {
                add(
                    "(SELECT s.state FROM message_states s WHERE s.msg = m.id ORDER BY s.id DESC LIMIT 1) = ?",
                    v.into(),
                );
            }
            if let Some(v) = q.from {
                add("m.accept_time >= ?", v.into());
            }
            if let Some(v) = q.to {
                add("m.accept_time < ?", v.into());
            }
            if let Some(v) = q.before {
                add("m.id < ?", v.into());
            }
            let filter = if wheres.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", wheres.join(" AND "))
            };
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m {filter} ORDER BY m.id DESC LIMIT {}",
                q.limit.clamp(1, 500)
            );
            c.query(&sql, &params)?
                .iter()
                .map(|r| {
                    Ok(Found {
                        row: r.i64(13)?,
                        record: message_record(r)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// The outbox per next hop, for entries still to be delivered; `now` decides which leases
    /// are live.
    pub async fn peer_queues(&self, now: i64) -> Result<Vec<PeerQueue>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT destination, COUNT(*), \
                 SUM(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), MIN(created_at) \
                 FROM outbox WHERE state = 'pending' GROUP BY destination ORDER BY destination",
                &[now.into()],
            )?
            .iter()
            .map(|r| {
                Ok(PeerQueue {
                    destination: r.text(0)?,
                    pending: r.i64(1)?,
                    in_flight: r.opt_i64(2)?.unwrap_or(0),
                    retrying: r.opt_i64(3)?.unwrap_or(0),
                    oldest_at: r.opt_i64(4)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Activity in [`from`, `to`) in periods of `step` microseconds, every period present (so
    /// a chart shows quiet hours as zero).
    pub async fn activity(
        &self,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Vec<Activity>, StoreError> {
        let step = step.max(1);
        let periods = ((to - from).max(0) / step).clamp(0, 10_000) as usize;
        let mut out: Vec<Activity> = (0..periods)
            .map(|i| Activity {
                start: from + i as i64 * step,
                ..Default::default()
            })
            .collect();
        let (accepted, failed, delays) = self
            .read(move |c| {
                let count = |c: &mut dyn db::Conn, sql: &str| -> Result<Vec<(i64, i64)>, StoreError> {
                    c.query(sql, &[from.into(), to.into(), step.into()])?
                        .iter()
                        .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
                        .collect()
                };
                let accepted = count(
                    c,
                    "SELECT (accept_time - $1) / $3, COUNT(*) FROM messages \
                     WHERE accept_time >= $1 AND accept_time < $2 GROUP BY 1",
                )?;
                let failed = count(
                    c,
                    "SELECT (at - $1) / $3, COUNT(*) FROM message_states \
                     WHERE state IN ('failed', 'expired') AND at >= $1 AND at < $2 GROUP BY 1",
                )?;
                let delays = c
                    .query(
                        "SELECT (a.at - $1) / $3, r.at - a.at FROM message_states a \
                         JOIN message_states r ON r.msg = a.msg \
                         WHERE a.state = 'accepted' AND r.state = 'received_by_peer' AND a.at >= $1 AND a.at < $2",
                        &[from.into(), to.into(), step.into()],
                    )?
                    .iter()
                    .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok((accepted, failed, delays))
            })
            .await?;
        let at = |i: i64| usize::try_from(i).ok().filter(|i| *i < periods);
        for (i, n) in accepted {
            if let Some(i) = at(i) {
                out[i].accepted = n;
            }
        }
        for (i, n) in failed {
            if let Some(i) = at(i) {
                out[i].failed = n;
            }
        }
        for (i, d) in delays {
            if let Some(i) = at(i) {
                out[i].delays.push(d);
            }
        }
        for a in &mut out {
            a.delays.sort_unstable();
        }
        Ok(out)
    }
}

/// One application message for exchange statistics: its Action, sender, recipient and when it
/// was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    pub action: String,
    pub sender: String,
    pub recipient: String,
    pub accept_time: i64,
}

impl Store {
    /// The application messages accepted in [`from`, `to`), oldest first, at most `limit`.
    pub async fn exchanged(
        &self,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<Exchanged>, StoreError> {
        self.read(move |c| {
            c.query(
                &format!(
                    "SELECT action, sender, recipient, accept_time FROM messages \
                     WHERE kind = 'application' AND accept_time >= $1 AND accept_time < $2 \
                     ORDER BY accept_time LIMIT {}",
                    limit.clamp(1, 5_000_000)
                ),
                &[from.into(), to.into()],
            )?
            .iter()
            .map(|r| {
                Ok(Exchanged {
                    action: r.text(0)?,
                    sender: r.text(1)?,
                    recipient: r.text(2)?,
                    accept_time: r.i64(3)?,
                })
            })
            .collect()
        })
        .await
    }

    /// For each processing receipt (an Action ending in `P.MSG.PRS`) accepted in [`from`,
    /// `to`): the Action of the message it answers and the microseconds between the two.
    pub async fn processing_delays(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(move |c| {
            c.query(
                "SELECT o.action, p.accept_time - o.accept_time FROM messages p \
                 JOIN messages o ON o.message_id = p.relates_to \
                 WHERE p.action LIKE '%P.MSG.PRS' AND p.accept_time >= $1 AND p.accept_time < $2",
                &[from.into(), to.into()],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.i64(1)?)))
            .collect()
        })
        .await
    }

    /// Why messages failed or expired in [`from`, `to`): each recorded reason and how often,
    /// most frequent first; error signals (`P.MSG.ERR`) counted as one cause of their own.
    pub async fn refusals(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(move |c| {
            let mut out: Vec<(String, i64)> = c
                .query(
                    "SELECT COALESCE(detail, state), COUNT(*) FROM message_states \
                     WHERE state IN ('failed', 'expired') AND at >= $1 AND at < $2 \
                     GROUP BY COALESCE(detail, state) ORDER BY COUNT(*) DESC LIMIT 50",
                    &[from.into(), to.into()],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.i64(1)?)))
                .collect::<Result<_, StoreError>>()?;
            let errs = c
                .query_one(
                    "SELECT COUNT(*) FROM messages WHERE action LIKE '%P.MSG.ERR' AND accept_time >= $1 AND accept_time < $2",
                    &[from.into(), to.into()],
                )?
                .map_or(Ok(0), |r| r.i64(0))?;
            if errs > 0 {
                out.push(("P.MSG.ERR".into(), errs));
                out.sort_by_key(|b| std::cmp::Reverse(b.1));
            }
            Ok(out)
        })
        .await
    }
}
