//! The node as its operator console reads and runs it (in-process only): messages, queues,
//! activity, tokens, the message log and the trust list. Object-safe (boxed futures), so the
//! pages hold it as `Arc<dyn Console>`.

use std::future::Future;
use std::pin::Pin;

use crate::HoldingsError;

/// A console call's answer.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, HoldingsError>> + Send + 'a>>;

/// What to look for; every field given must match. Times are microseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The sender or the recipient.
    pub participant: Option<String>,
    /// The current state (`accepted`, `delivered`, `failed`, ...).
    pub state: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The page after one that ended at this row.
    pub before: Option<i64>,
    pub limit: i64,
}

/// One message as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageRow {
    pub row: i64,
    pub message_id: String,
    pub accept_time: i64,
    /// `inbound`, `outbound` or `local`.
    pub direction: String,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    pub conversation_id: Option<String>,
    pub state: String,
}

/// One message whole: its row, header identifiers, history and envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageDetail {
    pub row: MessageRow,
    pub track_id: String,
    pub kind: String,
    pub procedure_id: Option<String>,
    pub relates_to: Option<String>,
    pub envelope_sha256: String,
    /// (state, at, detail), oldest first.
    pub history: Vec<(String, i64, Option<String>)>,
    pub envelope: String,
}

/// The queue towards one next hop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerQueue {
    pub destination: String,
    pub pending: i64,
    pub in_flight: i64,
    pub retrying: i64,
    pub oldest_at: Option<i64>,
}

/// The node's activity in one period; delays are microseconds, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub start: i64,
    pub accepted: i64,
    pub failed: i64,
    pub delays: Vec<i64>,
}

/// An API token of a participant (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    pub id: String,
    pub participant: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What a walk of the message log found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogCheck {
    pub records: i64,
    pub checkpoints: i64,
    pub last_checkpoint: i64,
    /// (sequence number, reason) of the first broken record.
    pub first_break: Option<(i64, String)>,
}

/// The node for its operator.
pub trait Console: Send + Sync {
    fn messages(&self, q: MessageQuery) -> Answer<'_, Vec<MessageRow>>;
    fn message<'a>(&'a self, message_id: &'a str) -> Answer<'a, Option<MessageDetail>>;
    /// The evidence container (ZIP) of a message, when the node has it.
    fn evidence<'a>(&'a self, message_id: &'a str) -> Answer<'a, Option<Vec<u8>>>;
    fn queues(&self) -> Answer<'_, Vec<PeerQueue>>;
    /// Activity in [`from`, `to`) in periods of `step` microseconds.
    fn activity(&self, from: i64, to: i64, step: i64) -> Answer<'_, Vec<Activity>>;
    /// The participants the node hosts.
    fn participants(&self) -> Vec<String>;
    fn tokens(&self) -> Answer<'_, Vec<Token>>;
    /// A new token, shown once; `days` until it stops working, or never.
    fn issue_token<'a>(
        &'a self,
        participant: &'a str,
        label: &'a str,
        days: Option<u32>,
    ) -> Answer<'a, String>;
    /// Revokes the token `id`; how many were revoked (0 or 1).
    fn revoke_token<'a>(&'a self, id: &'a str) -> Answer<'a, u64>;
    fn verify_log(&self) -> Answer<'_, LogCheck>;
    /// The trust list in use: version and when it must be replaced (RFC 3339), or why none.
    fn trust_list(&self) -> Result<(u64, time::OffsetDateTime), HoldingsError>;
    /// The versions of a reference resource: (version, SHA-256, published at).
    fn versions<'a>(&'a self, code: &'a str) -> Answer<'a, Vec<(i64, String, i64)>>;
    /// The node's clock.
    fn now(&self) -> time::OffsetDateTime;
}
