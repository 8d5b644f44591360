//! The adapter boundary in-process: [`LocalAdapter`] is one participant's handle on its node,
//! for the services and applications that run beside it. It answers exactly what the HTTP API
//! answers (the same wire types, the same problem documents and Faults), because the HTTP
//! handlers are built on the same conversions below.

use std::sync::Arc;
use std::time::Duration;

use adapter::{
    AdapterError, InboxMessage, InboxPage, Problem, ReceiptBody, Stamp, StateChangeBody,
    StatusBody, Submission,
};
use base64::Engine as _;
use time::format_description::well_known::Rfc3339;

use crate::{Node, NodeError, Receipt, from_micros};

/// One participant of a node, talking to it in-process.
#[derive(Clone)]
pub struct LocalAdapter {
    node: Arc<Node>,
    participant: String,
}

impl LocalAdapter {
    /// The handle of `participant`, which the node must host.
    pub fn new(node: Arc<Node>, participant: &str) -> Result<LocalAdapter, NodeError> {
        if !node.hosts(participant) {
            return Err(NodeError::UnknownRecipient(format!(
                "{participant} is not a participant of node {}",
                node.segment()
            )));
        }
        Ok(LocalAdapter {
            node,
            participant: participant.to_owned(),
        })
    }

    pub fn participant(&self) -> &str {
        &self.participant
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn receipt_body(r: Receipt) -> ReceiptBody {
    ReceiptBody {
        message_id: r.message_id.to_string(),
        track_id: r.track_id,
        accept_time: rfc3339(r.accept_time),
        conversation_id: r.conversation_id.map(|c| c.to_string()),
        duplicate: r.duplicate,
    }
}

pub(crate) fn status_body(m: store::MessageRecord, h: Vec<store::StateChange>) -> StatusBody {
    StatusBody {
        message_id: m.message_id,
        track_id: m.track_id,
        accept_time: rfc3339(from_micros(m.accept_time)),
        from: m.sender,
        to: m.recipient,
        action: m.action,
        conversation_id: m.conversation_id,
        relates_to: m.relates_to,
        state: m.state.to_string(),
        envelope_sha256: m.envelope_sha256,
        history: h
            .into_iter()
            .map(|c| StateChangeBody {
                state: c.state.to_string(),
                at: rfc3339(from_micros(c.at)),
                detail: c.detail,
            })
            .collect(),
    }
}

pub(crate) fn inbox_page(items: Vec<store::InboxItem>, after: i64) -> InboxPage {
    let cursor = items.last().map_or(after, |i| i.seq);
    InboxPage {
        cursor,
        messages: items
            .into_iter()
            .map(|i| InboxMessage {
                seq: i.seq,
                message_id: i.message_id,
                from: i.sender,
                action: i.action,
                conversation_id: i.conversation_id,
                track_id: i.track_id,
                accept_time: rfc3339(from_micros(i.accept_time)),
                envelope: String::from_utf8_lossy(&i.envelope).into_owned(),
            })
            .collect(),
    }
}

/// A problem document: its status, type, detail and the broken rule.
pub(crate) fn problem(status: u16, kind: &str, detail: String, rule: Option<String>) -> Problem {
    Problem {
        kind: format!("https://ortaq.dev/problems/{kind}"),
        title: axum::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned(),
        status,
        detail,
        rule,
    }
}

/// What the API answers for a node error.
pub(crate) fn problem_of(e: NodeError) -> Problem {
    let d = e.to_string();
    match e {
        NodeError::Envelope(env) => problem(
            400,
            "invalid-message",
            env.detail.clone(),
            Some(env.rule.id().to_owned()),
        ),
        NodeError::Forbidden(_) => problem(403, "forbidden", d, None),
        NodeError::UnknownRecipient(_) => problem(422, "unknown-recipient", d, None),
        NodeError::NoRoute(_) => problem(422, "no-route", d, None),
        NodeError::Conflict(_) => problem(409, "conflict", d, None),
        NodeError::Unsigned(_) => problem(422, "signature-required", d, None),
        NodeError::Evidence(_) => problem(422, "evidence-refused", d, None),
        NodeError::NotFound => problem(404, "not-found", d, None),
        NodeError::Busy(_) => problem(503, "busy", d, None),
        NodeError::Internal(_) => {
            tracing::error!(error = %d, "request failed inside the node");
            problem(
                500,
                "internal-error",
                format!("the node failed to carry out the request: {d}"),
                None,
            )
        }
        NodeError::Store(_) | NodeError::Startup(_) => {
            tracing::error!(error = %d, "request failed in the store");
            problem(
                503,
                "unavailable",
                "the node could not store the request; nothing was accepted, retry later".into(),
                None,
            )
        }
    }
}

fn api_error(p: Problem) -> AdapterError {
    AdapterError::Api {
        status: p.status,
        body: serde_json::to_string(&p).unwrap_or_default(),
    }
}

/// The HTTP status of a SOAP Fault for a node error.
pub(crate) fn fault_status(err: &NodeError) -> u16 {
    match err {
        NodeError::Forbidden(_) => 403,
        NodeError::Conflict(_) => 409,
        NodeError::Store(_) | NodeError::Internal(_) => 500,
        NodeError::Busy(_) => 503,
        _ => 400,
    }
}

/// A trusted third party receipt for `document` as of `moment` (RFC 3339; now when absent),
/// and its batched time stamp when the node runs a time-stamp authority.
pub(crate) async fn ttp_receipt(
    node: &Node,
    document: String,
    moment: Option<&str>,
) -> Result<(String, Option<Stamp>), Problem> {
    let unavailable = |d: String| problem(503, "ttp-unavailable", d, None);
    let trust = node
        .trust()
        .ok_or_else(|| unavailable("this node has no trust service ([ttp])".into()))?;
    let now = node.now();
    let moment = match moment {
        Some(m) => time::OffsetDateTime::parse(m, &Rfc3339).map_err(|e| {
            problem(
                400,
                "invalid-request",
                format!("moment {m:?} is not RFC 3339: {e}"),
                None,
            )
        })?,
        None => now,
    };
    let receipt = node
        .heavy()
        .run(move || trust.receipt(&document, moment, now))
        .await
        .map_err(|e| problem_of(e.into()))?
        .map_err(|e| unavailable(e.to_string()))?;
    let stamp = match node.stamping() {
        Some(st) => {
            let s = st
                .stamp(tsa::sha256(receipt.as_bytes()))
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            Some(Stamp {
                token: s.token.to_vec(),
                proof: s.proof.to_text(),
            })
        }
        None => None,
    };
    Ok((receipt, stamp))
}

impl adapter::Adapter for LocalAdapter {
    async fn send(&self, m: &Submission) -> Result<ReceiptBody, AdapterError> {
        self.node
            .submit(&self.participant, m.clone())
            .await
            .map(receipt_body)
            .map_err(|e| api_error(problem_of(e)))
    }

    async fn send_envelope(&self, xml: &str) -> Result<String, AdapterError> {
        match self
            .node
            .submit_envelope(&self.participant, xml.as_bytes())
            .await
        {
            Ok((_, rcv)) => Ok(rcv.to_xml()),
            Err((fault, err)) => Err(AdapterError::Api {
                status: fault_status(&err),
                body: fault.to_xml(),
            }),
        }
    }

    async fn inbox(
        &self,
        after: i64,
        limit: i64,
        wait_secs: u64,
    ) -> Result<InboxPage, AdapterError> {
        let wait = Duration::from_secs(wait_secs).min(adapter::MAX_WAIT);
        self.node
            .inbox(&self.participant, after, limit, wait)
            .await
            .map(|items| inbox_page(items, after))
            .map_err(|e| api_error(problem_of(e)))
    }

    async fn ack(&self, message_id: &str) -> Result<bool, AdapterError> {
        use store::AckOutcome::*;
        match self.node.ack(&self.participant, message_id).await {
            Ok(Acknowledged) => Ok(true),
            Ok(AlreadyAcknowledged) => Ok(false),
            Ok(NotInInbox) => Err(api_error(problem_of(NodeError::NotFound))),
            Err(e) => Err(api_error(problem_of(e))),
        }
    }

    async fn status(&self, message_id: &str) -> Result<StatusBody, AdapterError> {
        self.node
            .status(&self.participant, message_id)
            .await
            .map(|(m, h)| status_body(m, h))
            .map_err(|e| api_error(problem_of(e)))
    }

    async fn envelope(&self, message_id: &str) -> Result<String, AdapterError> {
        self.node
            .envelope_of(&self.participant, message_id)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| api_error(problem_of(e)))
    }
}

impl adapter::Ttp for LocalAdapter {
    async fn receipt(
        &self,
        document: &str,
        moment: Option<&str>,
    ) -> Result<(String, Option<Stamp>), AdapterError> {
        ttp_receipt(&self.node, document.to_owned(), moment)
            .await
            .map_err(api_error)
    }
}

/// The base64 form of a time-stamp token in the `ortaq-timestamp` header.
pub(crate) fn stamp_header(s: &Stamp) -> String {
    base64::engine::general_purpose::STANDARD.encode(&s.token)
}
