//! What the node stores for an envelope (the store record, built once for every path: IS
//! submissions, peer hand-overs, the gate's own notices), and the ERR notices the gate sends a
//! sender about its message, and the RCV that answers a message.

use envelope::{
    Address, Envelope, EnvelopeError, Header, MessageKind, Signal, SignalError, SignalKind, UrnUuid,
};
use store::{Destination, Direction, Kind, NewMessage, Route};
use time::OffsetDateTime;

use crate::micros;

/// A UUID derived from the parts, so a repeated answer carries the same identifiers.
pub(crate) fn derived_id(parts: &[&str]) -> UrnUuid {
    UrnUuid::derived(parts)
}

/// The RCV from `gate` that answers `header`, the same bytes every time it is asked for: its
/// SignalId and MessageID derive from the message, this node's `segment` and `tag` (which
/// answer it is), its time is the message's acceptance.
pub(crate) fn rcv(
    gate: &Address,
    segment: &str,
    header: &Header,
    accept_time: OffsetDateTime,
    tag: &str,
) -> Result<Envelope, EnvelopeError> {
    let id = header.message_id.to_string();
    let mut signal = Signal::new(SignalKind::Rcv, accept_time);
    signal.signal_id = derived_id(&[&format!("{tag}-signal"), segment, &id]);
    let mut rcv = Envelope::signal_for(header, gate.clone(), signal)?;
    rcv.header.message_id = derived_id(&[tag, segment, &id]);
    Ok(rcv)
}

/// The store record of an envelope, as it will be forwarded (`bytes`). A message for another
/// node expires `expire_after_secs` after its acceptance.
pub(crate) fn record(
    env: &Envelope,
    bytes: Vec<u8>,
    track_id: String,
    accept_time: OffsetDateTime,
    route: Route,
    direction: Direction,
    expire_after_secs: u64,
) -> NewMessage {
    let h = &env.header;
    let kind = match h.kind() {
        MessageKind::Application => Kind::Application,
        MessageKind::Signal(_) => Kind::Signal,
        MessageKind::Fault => Kind::Fault,
    };
    let expires_at = match &route {
        Route::Outbox {
            destination: Destination::Peer(_),
        } => {
            let secs = expire_after_secs.min(i64::MAX as u64 / 2_000_000);
            Some(micros(accept_time) + secs as i64 * 1_000_000)
        }
        _ => None,
    };
    let cp = h.cp_action();
    NewMessage {
        message_id: h.message_id.to_string(),
        track_id,
        accept_time: micros(accept_time),
        direction,
        sender: h
            .reply_to
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        recipient: h.to.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        action: h.action.to_string(),
        kind,
        conversation_id: h.conversation_id.map(|c| c.to_string()),
        procedure_id: h.procedure_id.map(|c| c.to_string()),
        relates_to: h.relates_to.as_ref().map(|r| r.id.to_string()),
        process: cp.map(|a| a.process.to_string()),
        transaction: cp.map(|a| a.transaction.clone()),
        envelope: bytes,
        received: None,
        expires_at,
        evidence: Vec::new(),
        signature: None,
        route,
    }
}

/// An ERR signal from the node's gate to the sender of `original`, with identifiers derived
/// from `why` (a word naming the kind of notice) and the original MessageID, so a repeat is the
/// same notice. None when the original has no sender, or is itself a notice or a Fault: a
/// notice about a notice would bounce forever between two gates.
pub(crate) fn err_notice(
    gate: &Address,
    segment: &str,
    original: &Envelope,
    why: &str,
    errors: Vec<SignalError>,
    now: OffsetDateTime,
) -> Option<Envelope> {
    let sender = original.sender()?;
    if sender.as_str().contains("/SR/gate") || original.header.kind() == MessageKind::Fault {
        return None;
    }
    let id = original.header.message_id.to_string();
    let mut sig = Signal::err(now, errors);
    sig.signal_id = derived_id(&[&format!("{why}-signal"), segment, &id]);
    let mut env = Envelope::signal_for(&original.header, gate.clone(), sig).ok()?;
    env.header.message_id = derived_id(&[why, segment, &id]);
    env.stamp(UrnUuid::new_v4(), now);
    Some(env)
}
