//! The node as its operator console reads and runs it ([`adapter::console::Console`]):
//! messages, queues per peer, activity, tokens, the message log, the trust list.

use std::sync::Arc;

use adapter::HoldingsError;
use adapter::console::{
    Activity, Answer, LogCheck, MessageDetail, MessageQuery, MessageRow, PeerQueue, Token,
};

use crate::{Node, NodeError, micros};

/// [`adapter::console::Console`] of a node.
pub struct Console {
    node: Arc<Node>,
}

impl Node {
    /// The node for its operator console.
    pub fn console(self: &Arc<Self>) -> Console {
        Console { node: self.clone() }
    }
}

fn unavailable(e: impl std::fmt::Display) -> HoldingsError {
    HoldingsError::Unavailable(e.to_string())
}

fn row(f: &store::MessageRecord, row: i64) -> MessageRow {
    MessageRow {
        row,
        message_id: f.message_id.clone(),
        accept_time: f.accept_time,
        direction: f.direction.as_str().to_owned(),
        sender: f.sender.clone(),
        recipient: f.recipient.clone(),
        action: f.action.clone(),
        conversation_id: f.conversation_id.clone(),
        state: f.state.as_str().to_owned(),
    }
}

impl adapter::console::Console for Console {
    fn messages(&self, q: MessageQuery) -> Answer<'_, Vec<MessageRow>> {
        Box::pin(async move {
            let found = self
                .node
                .store()
                .search_messages(store::console::MessageQuery {
                    message_id: q.message_id,
                    conversation_id: q.conversation_id,
                    participant: q.participant,
                    state: q.state,
                    from: q.from,
                    to: q.to,
                    before: q.before,
                    limit: q.limit,
                })
                .await
                .map_err(unavailable)?;
            Ok(found.iter().map(|f| row(&f.record, f.row)).collect())
        })
    }

    fn message<'a>(&'a self, message_id: &'a str) -> Answer<'a, Option<MessageDetail>> {
        Box::pin(async move {
            let st = self.node.store();
            let found = st
                .search_messages(store::console::MessageQuery {
                    message_id: Some(message_id.to_owned()),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?;
            let Some(f) = found.into_iter().next() else {
                return Ok(None);
            };
            let history = st
                .history(message_id)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|h| (h.state.as_str().to_owned(), h.at, h.detail))
                .collect();
            let envelope = st
                .envelope(message_id)
                .await
                .map_err(unavailable)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let r = &f.record;
            Ok(Some(MessageDetail {
                row: row(r, f.row),
                track_id: r.track_id.clone(),
                kind: r.kind.as_str().to_owned(),
                procedure_id: r.procedure_id.clone(),
                relates_to: r.relates_to.clone(),
                envelope_sha256: r.envelope_sha256.clone(),
                history,
                envelope,
            }))
        })
    }

    fn evidence<'a>(&'a self, message_id: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            match crate::evidence::export(&self.node, message_id).await {
                Ok(zip) => Ok(Some(zip)),
                Err(NodeError::NotFound) => Ok(None),
                Err(NodeError::Forbidden(m)) => Err(HoldingsError::Refused(m)),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn queues(&self) -> Answer<'_, Vec<PeerQueue>> {
        Box::pin(async move {
            let now = micros(self.node.now());
            Ok(self
                .node
                .store()
                .peer_queues(now)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|q| PeerQueue {
                    destination: q.destination,
                    pending: q.pending,
                    in_flight: q.in_flight,
                    retrying: q.retrying,
                    oldest_at: q.oldest_at,
                })
                .collect())
        })
    }

    fn activity(&self, from: i64, to: i64, step: i64) -> Answer<'_, Vec<Activity>> {
        Box::pin(async move {
            Ok(self
                .node
                .store()
                .activity(from, to, step)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|a| Activity {
                    start: a.start,
                    accepted: a.accepted,
                    failed: a.failed,
                    delays: a.delays,
                })
                .collect())
        })
    }

    fn participants(&self) -> Vec<String> {
        self.node
            .config()
            .participants
            .iter()
            .map(|p| p.address.clone())
            .collect()
    }

    fn tokens(&self) -> Answer<'_, Vec<Token>> {
        Box::pin(async move {
            Ok(self
                .node
                .tokens()
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|t| Token {
                    id: t.id,
                    participant: t.participant,
                    label: t.label,
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                    revoked_at: t.revoked_at,
                })
                .collect())
        })
    }

    fn issue_token<'a>(
        &'a self,
        participant: &'a str,
        label: &'a str,
        days: Option<u32>,
    ) -> Answer<'a, String> {
        Box::pin(async move {
            let until = days.map(|d| self.node.now() + time::Duration::days(i64::from(d)));
            self.node
                .issue_token_until(participant, label, until)
                .await
                .map_err(|e| match e {
                    NodeError::UnknownRecipient(m) => HoldingsError::Refused(m),
                    e => unavailable(e),
                })
        })
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> Answer<'a, u64> {
        Box::pin(async move {
            if id.len() != store::TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(HoldingsError::Refused(format!("{id:?} is not a token id")));
            }
            self.node
                .revoke_tokens(store::TokenSelector::Id(id.to_owned()))
                .await
                .map_err(unavailable)
        })
    }

    fn verify_log(&self) -> Answer<'_, LogCheck> {
        Box::pin(async move {
            let r = self
                .node
                .store()
                .verify_log(self.node.verifying_key())
                .await
                .map_err(unavailable)?;
            Ok(LogCheck {
                records: r.records,
                checkpoints: r.checkpoints,
                last_checkpoint: r.last_checkpoint,
                first_break: r.first_break.map(|b| (b.seq, b.reason)),
            })
        })
    }

    fn trust_list(&self) -> Result<(u64, time::OffsetDateTime), HoldingsError> {
        let t = self
            .node
            .trust()
            .ok_or_else(|| HoldingsError::Unavailable("the node keeps no trust list".into()))?;
        t.current()
            .map(|l| (l.version, l.next_update))
            .map_err(|e| HoldingsError::Refused(e.to_string()))
    }

    fn versions<'a>(&'a self, code: &'a str) -> Answer<'a, Vec<(i64, String, i64)>> {
        Box::pin(async move {
            self.node
                .store()
                .nsi_versions(code)
                .await
                .map_err(unavailable)
        })
    }

    fn now(&self) -> time::OffsetDateTime {
        self.node.now()
    }
}

/// The segment of an address (`EAEU://KZ/...` → `KZ`).
fn segment_of(address: &str) -> String {
    address.split('/').nth(2).unwrap_or("").to_owned()
}

/// The process of an Action (`int://CP/P.TS.01/...` → `P.TS.01`).
fn process_of(action: &str) -> String {
    action.split('/').nth(3).unwrap_or("").to_owned()
}

fn month_of(us: i64) -> String {
    let t = crate::from_micros(us);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// Messages read for one showcase at most: the statistics of a busier period are of its
/// latest messages.
const STATS_ROWS: i64 = 2_000_000;

impl adapter::portal::Statistics for Console {
    fn exchange(&self, months: u32) -> Answer<'_, adapter::portal::ExchangeStats> {
        Box::pin(async move {
            use std::collections::BTreeMap;
            let now = self.node.now();
            // The first day of the month `months - 1` months ago.
            let mut start = now.date().replace_day(1).unwrap_or(now.date());
            for _ in 1..months.clamp(1, 120) {
                start = start
                    .previous_day()
                    .and_then(|d| d.replace_day(1).ok())
                    .unwrap_or(start);
            }
            let from = micros(start.midnight().assume_utc());
            let to = micros(now) + 1;
            let st = self.node.store();
            let rows = st
                .exchanged(from, to, STATS_ROWS)
                .await
                .map_err(unavailable)?;
            let mut per_month: BTreeMap<String, i64> = BTreeMap::new();
            let mut m = start;
            loop {
                per_month.insert(month_of(micros(m.midnight().assume_utc())), 0);
                match m
                    .replace_day(28)
                    .ok()
                    .and_then(|d| d.checked_add(time::Duration::days(5)))
                    .and_then(|d| d.replace_day(1).ok())
                {
                    Some(next) if next <= now.date() => m = next,
                    _ => break,
                }
            }
            let mut per_process: BTreeMap<String, i64> = BTreeMap::new();
            let mut per_pair: BTreeMap<(String, String), i64> = BTreeMap::new();
            for r in &rows {
                *per_month.entry(month_of(r.accept_time)).or_default() += 1;
                *per_process.entry(process_of(&r.action)).or_default() += 1;
                *per_pair
                    .entry((segment_of(&r.sender), segment_of(&r.recipient)))
                    .or_default() += 1;
            }
            let mut delays: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (action, d) in st.processing_delays(from, to).await.map_err(unavailable)? {
                delays.entry(process_of(&action)).or_default().push(d);
            }
            let pct = |v: &[i64], p: f64| -> i64 {
                let i = ((v.len() as f64 - 1.0) * p).round() as usize;
                v.get(i.min(v.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0)
                    / 1000
            };
            let to_prs = delays
                .into_iter()
                .map(|(p, mut v)| {
                    v.sort_unstable();
                    (p, v.len() as i64, pct(&v, 0.5), pct(&v, 0.95))
                })
                .collect();
            let mut per_process: Vec<_> = per_process.into_iter().collect();
            per_process.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut per_pair: Vec<_> = per_pair.into_iter().map(|((a, b), n)| (a, b, n)).collect();
            per_pair.sort_by(|a, b| b.2.cmp(&a.2).then((&a.0, &a.1).cmp(&(&b.0, &b.1))));
            Ok(adapter::portal::ExchangeStats {
                per_month: per_month.into_iter().collect(),
                per_process,
                per_pair,
                to_prs,
                refusals: st.refusals(from, to).await.map_err(unavailable)?,
            })
        })
    }
}
