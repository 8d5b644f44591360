//! The node's built-in services, each an information system on the one adapter boundary
//! (`adapter::Adapter`) like any other: the reference-data distribution and the trust-list
//! distribution (P.CC.10 and P.XO.03), and the trusted third party as a participant (P.XO.02). They read
//! nothing of a node's store or internals; what a node holds reaches them through the narrow
//! ports of the `adapter` crate.

pub mod journal;
pub mod reference;
pub mod trustlist;
pub mod ttp;

use std::time::Duration;

use adapter::{Adapter, InboxMessage, Submission};
use tokio::sync::watch;

/// A transaction a distribution runs: fetching reference data is modeled on P.CC.10 «получение
/// сведений, содержащихся в классификаторе» (TRN.002); the notices and the trust list are
/// ortaq's own P.XO.03.
struct Trn {
    process: &'static str,
    procedure: &'static str,
    code: &'static str,
}

/// Both processes are at version 1.0.0.
const PROCESS_VERSION: &str = "1.0.0";

/// What a distribution service does: publish (the EEC node) or subscribe (a national node).
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's own address (`EAEU://<SEG>/SR/nsi`, `EAEU://<SEG>/SR/trust`).
    pub me: String,
    /// On a subscribing node: the publisher's service.
    pub publisher: Option<String>,
    /// On the publishing node: the services it tells of everything new.
    pub subscribers: Vec<String>,
    /// How often a subscriber looks whether it needs something, besides notifications.
    pub refresh: Duration,
}

/// A message of transaction `trn` from a built-in service (reference data, trust list).
fn submission(
    to: &str,
    trn: &Trn,
    message: &str,
    body: String,
    answers: Option<&InboxMessage>,
) -> Submission {
    Submission {
        to: to.into(),
        process: trn.process.into(),
        version: PROCESS_VERSION.into(),
        procedure: trn.procedure.into(),
        transaction: trn.code.into(),
        message: message.into(),
        body,
        relates_to: answers.map(|a| a.message_id.clone()),
        conversation_id: answers.and_then(|a| a.conversation_id.clone()),
        ..Default::default()
    }
}

/// The next messages for a service (waiting up to a second); an empty batch after a pause when
/// the inbox could not be read; None once the service is told to stop.
async fn next_items<A: Adapter>(
    adapter: &A,
    me: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<InboxMessage>> {
    let page = tokio::select! {
        r = adapter.inbox(0, 20, 1) => r,
        _ = stop.changed() => return None,
    };
    match page {
        Ok(p) => Some(p.messages),
        Err(e) => {
            tracing::error!(participant = %me, error = %e, "inbox");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(Vec::new())
        }
    }
}

async fn ack<A: Adapter>(adapter: &A, me: &str, it: &InboxMessage) {
    if let Err(e) = adapter.ack(&it.message_id).await {
        tracing::error!(participant = %me, error = %e, "ack");
    }
}

/// The envelope of an inbox message, parsed.
fn parse(it: &InboxMessage) -> Result<envelope::Envelope, envelope::EnvelopeError> {
    envelope::parse(
        it.envelope.as_bytes(),
        &envelope::ParseOptions::new(envelope::Origin::Any),
    )
}
