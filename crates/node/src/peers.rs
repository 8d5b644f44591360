//! The federation at work: the mutual-TLS endpoint where peers hand over envelopes (their
//! checks in front of the node's one accept path, and the signed RCV after), and the delivery
//! loop that sends each peer's outbox.
//!
//! Between nodes an envelope travels as its exact bytes plus the detached signature of the
//! node that first accepted it (`transport::hop`). A relay (the EEC node) stores and forwards
//! both unchanged, so the destination checks the origin's signature itself: a relay cannot
//! alter what it relays. A receiving node checks, before storing anything, that the sender
//! address belongs to the TLS peer (or to a segment that peer relays for), that the signature
//! is the sender segment's node's and covers these bytes, and every header rule. It answers
//! with a signed RCV only after its commit; a repeated MessageID gets the original RCV.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use envelope::{
    Envelope, Fault, MessageKind, Origin, ParseOptions, Segment, SignalError, SignalKind, Subcode,
    UrnUuid,
};
use store::{
    Accepted, Destination, Direction, NewMessage, NodeSignature, Outbound, RemoteDone, Route,
    State as MessageState,
};
use tokio::sync::{Semaphore, watch};
use transport::PeerIdentity;
use transport::hop::{CERTIFICATE_HEADER, HopSignature, SIGNATURE_HEADER};

use crate::federation::{ENVELOPE_PATH, Federation, SOAP_CONTENT_TYPE, TSA_PATH};
use crate::gateway::Source;
use crate::{Node, NodeError, from_micros, micros};

// ---------------------------------------------------------------- receiving

/// A peer's envelope refused: HTTP status and the SOAP Fault that explains it.
pub struct Refusal {
    pub status: StatusCode,
    pub fault: Vec<u8>,
    pub reason: String,
}

impl Refusal {
    /// A refusal with the table-8 subcode `sub` (which also says Sender or Receiver).
    fn new(
        status: StatusCode,
        header: Option<&envelope::Header>,
        sub: Subcode,
        reason: String,
    ) -> Self {
        let fault = Envelope::fault(
            header,
            Fault {
                code: sub.code(),
                subcode: Some(sub),
                reason_ru: envelope::quote(format!("Конверт не принят: {reason}").as_bytes()),
                reasons: vec![(
                    "en".into(),
                    envelope::quote(format!("Envelope refused: {reason}").as_bytes()),
                )],
                problem_message: None,
            },
        );
        Refusal {
            status,
            fault: fault.to_xml().into_bytes(),
            reason,
        }
    }
}

/// Waits for the wake-up of one outbox queue (forever when the node has none for it).
async fn wake(node: &Node, dest: &Destination) {
    match node.wakes(dest) {
        Some(w) => w.notified().await,
        None => std::future::pending().await,
    }
}

/// The signed RCV a node answers with.
pub struct Receipt {
    pub rcv: Vec<u8>,
    pub signature: (String, String),
    pub duplicate: bool,
}

/// Takes an envelope a peer handed over: checks, stores, answers RCV after the commit.
pub async fn receive_from_peer(
    node: &Node,
    peer: Segment,
    bytes: &[u8],
    signature: Option<&str>,
    certificate: Option<&str>,
    evidence: Vec<(String, Vec<u8>)>,
) -> Result<Receipt, Refusal> {
    let r = receive_inner(node, peer, bytes, signature, certificate, evidence).await;
    match &r {
        Ok(_) => node.metrics.received.increment(1),
        Err(e) => {
            node.metrics.refused.increment(1);
            tracing::warn!(%peer, status = %e.status, reason = %e.reason, "envelope from peer refused");
        }
    }
    r
}

/// The peer's own checks (its segment, the origin's signature over these bytes, the header
/// rules, the relay rules), then the node's one accept path, then the signed RCV.
async fn receive_inner(
    node: &Node,
    peer: Segment,
    bytes: &[u8],
    signature: Option<&str>,
    certificate: Option<&str>,
    evidence: Vec<(String, Vec<u8>)>,
) -> Result<Receipt, Refusal> {
    use Subcode::{InternalError as INTERNAL, InvalidAddressingHeader as INVALID};
    let forbidden = |h: Option<&envelope::Header>, reason: String| {
        Refusal::new(StatusCode::FORBIDDEN, h, INVALID, reason)
    };
    let Some(fed) = node.fed.as_ref() else {
        return Err(forbidden(
            None,
            "this node takes no envelopes from peers".into(),
        ));
    };
    let Some(link) = fed.peers.get(&peer) else {
        return Err(forbidden(
            None,
            format!("node {peer} is not a peer of node {}", node.segment),
        ));
    };
    let sig = HopSignature::from_headers(signature, certificate).map_err(|e| {
        Refusal::new(
            StatusCode::FORBIDDEN,
            None,
            Subcode::DataError,
            format!("node signature: {e}"),
        )
    })?;
    let opts = ParseOptions {
        origin: Origin::Platform,
        limits: node.limits(),
    };
    let env = envelope::parse_partial(bytes, &opts).map_err(|(e, h)| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            h.as_deref(),
            Subcode::for_error(&e),
            e.to_string(),
        )
    })?;
    let h = &env.header;
    if h.kind() == MessageKind::Fault {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Some(h),
            Subcode::ActionNotSupported,
            "a Fault answers its sender and is never forwarded between nodes".into(),
        ));
    }
    let Some(sender) = env.sender() else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Some(h),
            Subcode::MessageAddressingHeaderRequired,
            "wsa:ReplyTo is missing".into(),
        ));
    };
    let origin = sender.segment();
    if origin != peer && !link.relays_for.contains(&origin) {
        return Err(forbidden(
            Some(h),
            format!("sender {sender} is in segment {origin}, which node {peer} does not speak for"),
        ));
    }
    fed.verifier
        .verify(bytes, &sig, origin, node.now())
        .map_err(|e| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                Some(h),
                Subcode::DataError,
                format!("node signature: {e}"),
            )
        })?;
    let to = h.to.clone().ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            Some(h),
            Subcode::MessageAddressingHeaderRequired,
            "wsa:To is missing".into(),
        )
    })?;
    // Only a relay forwards; anyone else takes only what is addressed to its segment.
    let route = if to.segment() == node.segment || fed.relay {
        node.route(&to)
    } else {
        Err(NodeError::NoRoute(format!(
            "node {} does not relay to segment {}",
            node.segment,
            to.segment()
        )))
    }
    .map_err(|e| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(h),
            Subcode::DestinationUnreachable,
            e.to_string(),
        )
    })?;
    if matches!(&route, Route::Outbox { destination: Destination::Peer(p) } if p == peer.as_str()) {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(h),
            Subcode::DestinationUnreachable,
            format!("the route to {} leads back to {peer}", to.segment()),
        ));
    }
    let source = Source::Peer {
        bytes: bytes.to_vec(),
        direction: if to.segment() == node.segment {
            Direction::In
        } else {
            Direction::Relay
        },
        signature: NodeSignature {
            header: signature.unwrap_or_default().to_owned(),
            certificate: sig.certificate.clone(),
        },
        evidence,
    };
    let header = env.header.clone();
    let h = &header;
    let (outcome, _, accept_time) = node.accept(env, route, source).await.map_err(|e| match e {
        NodeError::Conflict(m) => Refusal::new(StatusCode::CONFLICT, Some(h), INVALID, m),
        NodeError::Unsigned(m) => Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(h),
            INTERNAL,
            format!("evidence: {m}"),
        ),
        // Forged or foreign evidence: sending it again changes nothing.
        NodeError::Evidence(m) => Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(h),
            Subcode::DataError,
            m,
        ),
        e => Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(h),
            INTERNAL,
            e.to_string(),
        ),
    })?;
    let (accept_time, duplicate) = match outcome {
        Accepted::New => (accept_time, false),
        Accepted::Duplicate { accept_time, .. } => (from_micros(accept_time), true),
    };
    let rcv = crate::record::rcv(&node.gate, node.segment.as_str(), h, accept_time, "rcv")
        .map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(h),
                INTERNAL,
                e.to_string(),
            )
        })?;
    let rcv = rcv.to_xml().into_bytes();
    let sig = fed.signer.sign(&rcv).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(h),
            INTERNAL,
            e.to_string(),
        )
    })?;
    Ok(Receipt {
        rcv,
        signature: sig.to_headers(),
        duplicate,
    })
}

/// A peer node's RFC 3161 request (its log checkpoints): answered by this node's authority.
async fn peer_tsa(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    match node.stamping() {
        Some(st) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/timestamp-reply")],
            st.respond(&body),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs no time-stamp authority",
        )
            .into_response(),
    }
}

async fn peer_envelope(
    State(node): State<Arc<Node>>,
    Extension(peer): Extension<PeerIdentity>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let evidence = match crate::legal::evidence_from_headers(&headers) {
        Ok(e) => e,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    match receive_from_peer(
        &node,
        peer.segment,
        &body,
        h(SIGNATURE_HEADER),
        h(CERTIFICATE_HEADER),
        evidence,
    )
    .await
    {
        Ok(r) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, SOAP_CONTENT_TYPE.to_owned()),
                (
                    header::HeaderName::from_static(SIGNATURE_HEADER),
                    r.signature.0,
                ),
                (
                    header::HeaderName::from_static(CERTIFICATE_HEADER),
                    r.signature.1,
                ),
            ],
            r.rcv,
        )
            .into_response(),
        Err(r) => (
            r.status,
            [(header::CONTENT_TYPE, SOAP_CONTENT_TYPE)],
            r.fault,
        )
            .into_response(),
    }
}

/// Serves the peer endpoint over mutual TLS until `stop` turns true.
pub async fn serve_peers(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let Some(fed) = node.fed.as_ref() else { return };
    let tls = fed.server_tls.clone();
    let limit = node.config().limits.max_envelope_bytes + 64 * 1024;
    let app = axum::Router::new()
        .route(ENVELOPE_PATH, axum::routing::post(peer_envelope))
        .route(TSA_PATH, axum::routing::post(peer_tsa))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node.clone());
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let limits = transport::ConnLimits {
        header_timeout: transport::PEER_IDLE,
        ..node.config().limits.connections()
    };
    if let Err(e) = transport::serve_mtls(listener, tls, app, limits, shutdown).await {
        tracing::error!(error = %e, "federation listener failed");
    }
}

// ---------------------------------------------------------------- sending

/// How one attempt ended.
enum Attempt {
    Confirmed(RemoteDone),
    /// Worth another try later (peer down, timeout, overloaded, answer not verifiable);
    /// `link_down` when the peer could not be reached at all.
    Retry {
        why: String,
        link_down: bool,
    },
    /// The peer refused the envelope for good.
    Refused(String),
}

/// Sends `peer`'s outbox entries until `stop` turns true: claims as many as there are free
/// request slots (the per-peer back-pressure), sends each, and records the outcome. While
/// the peer is unreachable the loop pauses, so a dead peer costs no work and holds up no other.
pub async fn run_peer(node: Arc<Node>, peer: Segment, mut stop: watch::Receiver<bool>) {
    let Some(fed) = node.fed.as_ref() else { return };
    let slots = Arc::new(Semaphore::new(fed.delivery.max_in_flight));
    let lease = (fed.delivery.request_timeout_secs.max(1) as i64 * 2 + 30) * 1_000_000;
    let dest = Destination::Peer(peer.as_str().to_owned());
    let owner = format!("{}>{peer}", node.worker_id);
    let mut resume = true;
    let pause = Arc::new(std::sync::Mutex::new(None::<tokio::time::Instant>));
    while !*stop.borrow() {
        let until = *pause.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until.filter(|u| *u > tokio::time::Instant::now()) {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // Wait for at least one free slot, then take as many as are free.
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => continue,
        };
        let free = slots.available_permits() + 1;
        let now = micros(node.now());
        let items = match node
            .store
            .claim_outbox(&owner, &dest, free.min(512) as i64, lease, now, resume)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, %peer, "outbox claim failed");
                Vec::new()
            }
        };
        resume = false;
        if items.is_empty() {
            drop(first);
            tokio::select! {
                _ = wake(&node, &dest) => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let outbound = match node
            .store
            .outbound(items.iter().map(|i| i.id).collect())
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, %peer, "outbox read failed; retried after the lease");
                continue;
            }
        };
        let mut first = Some(first);
        for (item, ob) in items.into_iter().zip(outbound) {
            let permit = match first.take() {
                Some(p) => p,
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (node, owner, pause) = (node.clone(), owner.clone(), pause.clone());
            tokio::spawn(async move {
                send_one(&node, peer, item, ob, &owner, &pause).await;
                drop(permit);
            });
        }
    }
    // Let requests in flight finish (each is bounded by the request timeout).
    let _ = slots.acquire_many(fed.delivery.max_in_flight as u32).await;
}

async fn send_one(
    node: &Node,
    peer: Segment,
    item: store::OutboxItem,
    ob: Outbound,
    owner: &str,
    pause: &std::sync::Mutex<Option<tokio::time::Instant>>,
) {
    let Some(fed) = node.fed.as_ref() else { return };
    let now = micros(node.now());
    if item.expires_at.is_some_and(|e| e <= now) {
        node.metrics.expired.increment(1);
        let why = format!(
            "not handed to node {peer} before it expired, after {} attempts",
            item.attempts - 1
        );
        give_up(node, item.id, owner, MessageState::Expired, &ob, &why).await;
        return;
    }
    let outcome = attempt(node, fed, peer, &ob).await;
    let result = match outcome {
        Attempt::Confirmed(done) => {
            let r = node
                .store
                .complete_remote(vec![done], owner, micros(node.now()))
                .await;
            if r.is_ok() {
                node.metrics.sent.increment(1);
            }
            r.map(|_| ())
        }
        Attempt::Retry { why, link_down } => {
            node.metrics.retried.increment(1);
            let wait = fed.backoff(item.attempts);
            // An unreachable peer pauses the whole link a little: the next claim would only
            // fail the same way. One failed request does not hold up the others.
            if link_down {
                *pause.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(tokio::time::Instant::now() + wait.min(Duration::from_secs(5)) / 2);
            }
            tracing::warn!(%peer, message = %ob.message_id, attempt = item.attempts, retry_in_ms = wait.as_millis() as u64, error = %why, "delivery attempt failed");
            let next = micros(node.now()) + wait.as_micros() as i64;
            node.store
                .retry_later(item.id, owner, next, &why)
                .await
                .map(|_| ())
        }
        Attempt::Refused(why) => {
            node.metrics.failed.increment(1);
            give_up(node, item.id, owner, MessageState::Failed, &ob, &why).await;
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, message = %ob.message_id, "recording a delivery outcome failed; retried after the lease");
    }
}

async fn attempt(node: &Node, fed: &Federation, peer: Segment, ob: &Outbound) -> Attempt {
    let Some(link) = fed.peers.get(&peer) else {
        return Attempt::Retry {
            why: format!("{peer} is no longer a peer"),
            link_down: true,
        };
    };
    let Some(sig) = &ob.signature else {
        return Attempt::Refused("the stored message carries no node signature".into());
    };
    use base64::Engine as _;
    let cert = base64::engine::general_purpose::STANDARD.encode(&sig.certificate);
    let sent_at = micros(node.now());
    let resp = match link
        .client
        .post(
            ENVELOPE_PATH,
            SOAP_CONTENT_TYPE,
            &[
                (SIGNATURE_HEADER, sig.header.clone()),
                (CERTIFICATE_HEADER, cert),
            ]
            .into_iter()
            .chain(crate::legal::evidence_headers(&ob.evidence))
            .collect::<Vec<_>>(),
            Bytes::from(ob.envelope.clone()),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry {
                link_down: e.peer_unreachable(),
                why: e.to_string(),
            };
        }
    };
    if resp.status != 200 {
        let reason = fault_reason(&resp.body).unwrap_or_else(|| format!("HTTP {}", resp.status));
        // 4xx: the peer looked at the envelope and said no; sending it again changes nothing.
        return if (400..500).contains(&resp.status) && resp.status != 408 && resp.status != 429 {
            Attempt::Refused(format!("node {peer} refused it: {reason}"))
        } else {
            Attempt::Retry {
                why: format!("node {peer} answered {}: {reason}", resp.status),
                link_down: false,
            }
        };
    }
    match check_rcv(node, fed, peer, ob, &resp) {
        Ok(rcv_id) => Attempt::Confirmed(RemoteDone {
            item_id: ob.item_id,
            sent_at,
            detail: format!("{peer} RCV {rcv_id}"),
        }),
        Err(why) => Attempt::Retry {
            why: format!("node {peer} answered an unverifiable RCV: {why}"),
            link_down: false,
        },
    }
}

/// The peer's RCV must be signed by the peer and answer this very message.
fn check_rcv(
    node: &Node,
    fed: &Federation,
    peer: Segment,
    ob: &Outbound,
    resp: &transport::client::PeerResponse,
) -> Result<UrnUuid, String> {
    let h = |n: &str| resp.headers.get(n).and_then(|v| v.to_str().ok());
    let sig = HopSignature::from_headers(h(SIGNATURE_HEADER), h(CERTIFICATE_HEADER))
        .map_err(|e| e.to_string())?;
    fed.verifier
        .verify(&resp.body, &sig, peer, node.now())
        .map_err(|e| e.to_string())?;
    let env =
        envelope::parse(&resp.body, &ParseOptions::new(Origin::Any)).map_err(|e| e.to_string())?;
    let answers = env.header.relates_to.as_ref().map(|r| r.id.to_string());
    if env.header.kind() != MessageKind::Signal(SignalKind::Rcv)
        || answers.as_deref() != Some(ob.message_id.as_str())
    {
        return Err(format!("not an RCV for {}", ob.message_id));
    }
    Ok(env.header.message_id)
}

/// Ends an entry for good and tells the sending IS with an ERR signal from this node's
/// gate, routed like any message (locally, or back through the federation).
///
/// An ERR, not a Fault: a Fault answers one hop's exchange and is never forwarded between
/// nodes, while the sending IS may be two hops away and was answered long ago. The ERR names
/// the table-8 condition in its details: `wsa:EndpointUnavailable` when the recipient could not
/// be reached before the message expired, `wsa:DestinationUnreachable` when the next node
/// refused it for good (no such participant, no route).
async fn give_up(
    node: &Node,
    item_id: i64,
    owner: &str,
    state: MessageState,
    ob: &Outbound,
    why: &str,
) {
    tracing::warn!(message = %ob.message_id, state = %state, reason = why, "delivery given up");
    let condition = if state == MessageState::Expired {
        Subcode::EndpointUnavailable
    } else {
        Subcode::DestinationUnreachable
    };
    let notice = failure_notice(node, ob, why, condition);
    let route = notice.as_ref().map(|m| m.route.clone());
    let told = notice
        .as_ref()
        .and_then(|m| envelope::parse(&m.envelope, &ParseOptions::new(Origin::Any)).ok());
    match node
        .store
        .fail_outbox(item_id, owner, state, why, notice, micros(node.now()))
        .await
    {
        Ok(true) => {
            if let Some(r) = route {
                node.wake(&r);
                // The ERR ends the transaction this node keeps for the request, when it keeps
                // one: the IS is told by this very notice.
                if let Some(env) = &told {
                    node.observe_transaction(env, false, &r).await;
                }
            }
        }
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "recording a failed delivery failed"),
    }
}

fn failure_notice(node: &Node, ob: &Outbound, why: &str, condition: Subcode) -> Option<NewMessage> {
    let original = envelope::parse(&ob.envelope, &ParseOptions::new(Origin::Any)).ok()?;
    let err = SignalError {
        code: envelope::ErrorCode::FatalError,
        description: format!(
            "Сообщение {} не доставлено получателю {}: {why}",
            ob.message_id, ob.recipient
        ),
        details: Some(format!(
            "{}: message {} was not delivered to {}: {why}",
            condition.qname(),
            ob.message_id,
            ob.recipient
        )),
    };
    let notice = crate::record::err_notice(
        &node.gate,
        node.segment.as_str(),
        &original,
        "notice",
        vec![err],
        node.now(),
    )?;
    node.notice_record(&notice)
}

/// The Russian reason of a SOAP Fault, for the history and the sender's notice.
fn fault_reason(body: &[u8]) -> Option<String> {
    let env = envelope::parse(body, &ParseOptions::new(Origin::Any)).ok()?;
    match env.body {
        envelope::Body::Fault(f) => Some(f.reason_ru),
        _ => None,
    }
}
