//! The wire types of the adapter API: what an information system sends its node and what the
//! node answers, as JSON. The node's HTTP handlers, its in-process adapter and the HTTP client
//! all use these, so the three can never disagree.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An application message to send. The sender is the participant of the token; this is the
/// JSON body of `POST /v1/messages` and what the Rust client sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Recipient's logical address, e.g. `EAEU://EEC/CP/P.TS.01/P.ACT.001`.
    pub to: String,
    /// Common process, e.g. `P.TS.01`.
    pub process: String,
    /// Process version, e.g. `1.0.1`.
    pub version: String,
    /// Procedure code, e.g. `P.TS.01.PRC.001`.
    pub procedure: String,
    /// Transaction code, e.g. `P.TS.01.TRN.001`.
    pub transaction: String,
    /// Message code, e.g. `P.TS.01.MSG.001`.
    pub message: String,
    /// The e-document: one XML element (an XML declaration may precede it).
    pub body: String,
    /// Your own MessageID (`urn:uuid:…`), to make retries safe: resending it returns the
    /// original receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The transaction instance to continue (`urn:uuid:…`); a new one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The procedure instance (`urn:uuid:…`); a new one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_id: Option<String>,
    /// The MessageID this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relates_to: Option<String>,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The Decision No. 5 rule broken, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Problem {
    /// The last segment of the problem type (`unknown-recipient`, `signature-required`, ...).
    pub fn kind_name(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }
}

/// Proof that the node durably accepted the message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptBody {
    pub message_id: String,
    /// `int:TrackID`, written by the platform.
    pub track_id: String,
    /// `int:AcceptTime`, UTC.
    pub accept_time: String,
    pub conversation_id: Option<String>,
    /// True when this MessageID was accepted before; the original receipt is repeated.
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StateChangeBody {
    /// accepted, queued, in_inbox, delivered, acknowledged, failed, expired.
    pub state: String,
    pub at: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    pub message_id: String,
    pub track_id: String,
    pub accept_time: String,
    pub from: String,
    pub to: String,
    pub action: String,
    pub conversation_id: Option<String>,
    pub relates_to: Option<String>,
    pub state: String,
    /// SHA-256 of the stored envelope, as logged in the message log.
    pub envelope_sha256: String,
    pub history: Vec<StateChangeBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxMessage {
    /// Position in your inbox; pass the last one as `after`.
    pub seq: i64,
    pub message_id: String,
    pub from: String,
    pub action: String,
    pub conversation_id: Option<String>,
    pub track_id: String,
    pub accept_time: String,
    /// The full Decision No. 5 envelope.
    pub envelope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    pub messages: Vec<InboxMessage>,
    /// Pass as `after` for the next page.
    pub cursor: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AckBody {
    pub message_id: String,
    /// False when it had been acknowledged before (nothing changed).
    pub acknowledged_now: bool,
}

/// The RFC 3161 token (base64 DER) over the SHA-256 of the response body, stamped in a batch.
pub const TIMESTAMP_HEADER: &str = "ortaq-timestamp";
/// The body's path to the root the token covers (`tsa::batch::Proof::to_text`).
pub const TIMESTAMP_PROOF_HEADER: &str = "ortaq-timestamp-proof";

/// The platform's TrackID of a message accepted over the SOAP passthrough.
pub const TRACK_ID_HEADER: &str = "x-ortaq-track-id";
