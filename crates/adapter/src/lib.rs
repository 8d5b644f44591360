//! The one boundary between a node and the information systems (ISs) it serves.
//!
//! [`Adapter`] is what an IS can do with its node: submit a message or a whole envelope, read
//! its inbox with a cursor and a long poll, acknowledge, and ask a message's status. The node
//! implements it in-process (`node::LocalAdapter`, for the ISs it runs itself) and this crate
//! implements it over HTTP ([`http::HttpAdapter`], for ISs anywhere); both produce the same
//! wire types ([`wire`]) and the same errors, so an IS written against the trait runs either
//! way. Every built-in service and application of the project is an IS on this trait.
//!
//! Beside it sit three narrow ports for the services that look after what a node holds: the
//! trusted third party's receipts ([`Ttp`], in-process and over HTTP), and the node's reference
//! data and trust list ([`ReferenceHoldings`], [`TrustListHoldings`], in-process only: only the
//! node's own distribution services change them).

pub mod console;
pub mod http;
pub mod portal;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use wire::{
    AckBody, InboxMessage, InboxPage, Problem, ReceiptBody, StateChangeBody, StatusBody, Submission,
};

/// A time source; tests inject a fixed or stepping clock.
pub type Clock = Arc<dyn Fn() -> time::OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The node answered with an error: its HTTP status and body (an RFC 9457 problem document,
    /// or a SOAP Fault for the passthrough).
    #[error("{status}: {body}")]
    Api { status: u16, body: String },
    /// The node could not be reached, or the exchange broke off.
    #[error("HTTP: {0}")]
    Http(String),
    /// The answer was not what the API defines.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl AdapterError {
    /// The problem document of an API error, when the body is one.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            AdapterError::Api { body, .. } => serde_json::from_str(body).ok(),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            AdapterError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What an information system can do with its node, as one participant.
pub trait Adapter: Send + Sync {
    /// Sends a message; answers after the node's durable commit.
    fn send(
        &self,
        m: &Submission,
    ) -> impl Future<Output = Result<ReceiptBody, AdapterError>> + Send;

    /// Sends a complete Decision No. 5 envelope (SOAP 1.2); answers with the RCV signal
    /// envelope after the durable commit, or `Api` with the Fault.
    fn send_envelope(&self, xml: &str)
    -> impl Future<Output = Result<String, AdapterError>> + Send;

    /// Messages after `after` (a cursor), at most `limit`, waiting up to `wait_secs` for the
    /// first one. A message stays until acknowledged.
    fn inbox(
        &self,
        after: i64,
        limit: i64,
        wait_secs: u64,
    ) -> impl Future<Output = Result<InboxPage, AdapterError>> + Send;

    /// Takes a message out of the inbox for good; false when it had been acknowledged before.
    fn ack(&self, message_id: &str) -> impl Future<Output = Result<bool, AdapterError>> + Send;

    /// Status and history of a message this participant sent or received.
    fn status(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<StatusBody, AdapterError>> + Send;

    /// The envelope of a message this participant sent or received, as stored.
    fn envelope(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<String, AdapterError>> + Send;
}

/// Why a node's holdings (reference data, trust list) could not be read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldingsError {
    /// The node could not read or write them now (its store or a file); try again later.
    #[error("{0}")]
    Unavailable(String),
    /// What was offered is not taken: a bad hash, content, signature, or an older version.
    #[error("{0}")]
    Refused(String),
}

/// A time stamp over an answer: the RFC 3161 token (DER) and the answer's path to the root
/// the token covers (`tsa::batch::Proof` as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub token: Vec<u8>,
    pub proof: String,
}

/// The trusted third party of a node: a signed receipt for a signed e-document.
pub trait Ttp: Send + Sync {
    /// The receipt (XML) judging `document`'s signature as of `moment` (RFC 3339; now when
    /// absent), and its time stamp when the node runs a time-stamp authority.
    fn receipt(
        &self,
        document: &str,
        moment: Option<&str>,
    ) -> impl Future<Output = Result<(String, Option<Stamp>), AdapterError>> + Send;
}

/// One stored version of a reference-data resource or crosswalk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub code: String,
    pub version: i64,
    /// `resource` or `crosswalk`.
    pub kind: String,
    pub sha256: String,
    pub published_at: i64,
    /// Canonical JSON; its SHA-256 is `sha256`.
    pub content: Vec<u8>,
}

/// What the reference-data service tells its node about the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncNote {
    /// The publisher answered.
    Answered,
    /// A version was received, verified and stored.
    Received,
    /// Something received was refused (hash mismatch, wrong sender, unreadable).
    Refused(String),
    /// The last thing that went wrong.
    Error(String),
}

/// The reference data a node holds, as its distribution service sees it.
pub trait ReferenceHoldings: Send + Sync {
    /// The latest version of everything held (content included).
    fn latest(&self) -> impl Future<Output = Result<Vec<StoredVersion>, HoldingsError>> + Send;
    /// One version of `code`, the latest when `version` is None.
    fn version(
        &self,
        code: &str,
        version: Option<i64>,
    ) -> impl Future<Output = Result<Option<StoredVersion>, HoldingsError>> + Send;
    /// Stores a version received from the publisher, after checking its hash and content;
    /// true when it was new. The node serves it from then on.
    fn install(&self, v: StoredVersion)
    -> impl Future<Output = Result<bool, HoldingsError>> + Send;
    /// Makes the node serve what its store holds now (after an import by another process).
    fn refresh(&self) -> impl Future<Output = Result<(), HoldingsError>> + Send;
    fn note(&self, note: SyncNote);
}

/// The trust list a node holds, as its distribution service sees it.
pub trait TrustListHoldings: Send + Sync {
    /// The signed list as kept, when it verifies: version and XML (what a publisher sends).
    fn signed(&self) -> Option<(u64, String)>;
    /// The version in use and when it must be replaced, or why there is none.
    fn current(&self) -> Result<(u64, time::OffsetDateTime), HoldingsError>;
    /// Takes a list received from the publisher: it must verify against the pinned signer, not
    /// be expired, and be newer. Answers the version now in use.
    fn install(&self, xml: &str) -> Result<u64, HoldingsError>;
}

/// A signature made with the node's signing key, for a JWS (RFC 7515).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJws {
    /// The JWS `alg`: `EdDSA` (Ed25519, RFC 8037).
    pub alg: &'static str,
    pub signature: Vec<u8>,
    /// The node's signing certificate (DER), for the JWS `x5c` header.
    pub certificate: Vec<u8>,
}

/// The node as an identity provider and relying party of cross-border sign-in (in-process
/// only): it signs with the node's signing key, checks other nodes' signatures against the
/// federation root and the trust list's revocations, and names the providers the trust list
/// in use names.
pub trait Identity: Send + Sync {
    /// This node's segment.
    fn segment(&self) -> String;
    /// Signs `bytes` (a JWS signing input) as this node.
    fn sign(&self, bytes: &[u8]) -> Result<NodeJws, HoldingsError>;
    /// The node's Ed25519 public key (32 bytes) and its certificate (DER), for the JWKS.
    fn public_key(&self) -> Result<(Vec<u8>, Vec<u8>), HoldingsError>;
    /// Checks that `signature` over `bytes` is by the node of `segment`, with `certificate`
    /// issued by the federation root, valid now and not revoked.
    fn verify(
        &self,
        segment: &str,
        bytes: &[u8],
        signature: &[u8],
        certificate: &[u8],
    ) -> Result<(), HoldingsError>;
    /// The identity providers of the trust list in use: (segment, issuer URL).
    fn providers(&self) -> Result<Vec<(String, String)>, HoldingsError>;
}

/// A message that failed or expired, as a gateway's diagnostic journal lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JournalRecord {
    pub message_id: String,
    /// `out` (sent by an IS of the node), `in`, `relay` or `notice`.
    pub direction: String,
    pub sender: String,
    pub recipient: String,
    pub action: String,
    /// `failed` or `expired`.
    pub state: String,
    /// Microseconds since the epoch (UTC).
    pub at: i64,
    pub detail: Option<String>,
}

/// A gateway's diagnostic journal for the period `(from, to]` (microseconds): how many
/// messages reached each state, by direction, and the records of those that failed or expired.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JournalReport {
    pub segment: String,
    pub from: i64,
    pub to: i64,
    /// `(direction, state, count)`.
    pub counts: Vec<(String, String, i64)>,
    pub records: Vec<JournalRecord>,
}

/// A node's diagnostic journal, as its journal service sees it.
pub trait JournalHoldings: Send + Sync {
    /// This node's journal for `(from, to]`.
    fn journal(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<JournalReport, HoldingsError>> + Send;
    /// Keeps a gateway's report (on the collecting node); true when it was new.
    fn keep(
        &self,
        report: JournalReport,
    ) -> impl Future<Output = Result<bool, HoldingsError>> + Send;
}

/// How long a long poll of the inbox may wait, at most.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
