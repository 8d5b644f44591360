//! The queue adapter: an IS talks to its node through AMQP 0-9-1 (RabbitMQ) instead of HTTP.
//!
//! Per participant the broker holds four queues under one base name
//! (`<prefix>.<address without EAEU://, '/' as '.'>`, see [`Names`]):
//!
//! - `<base>.requests`: the IS publishes here what it would `POST` (a SOAP envelope,
//!   `application/soap+xml`, or a JSON submission, `application/json`). A publisher confirm
//!   from the broker means the request is durably queued; the node takes it, and only after
//!   its answer is durably in `<base>.replies` does it acknowledge the request to the broker.
//!   A node killed in between gets it again and answers it again from the repeat path: the
//!   same answer, byte for byte, and nothing changes twice.
//! - `<base>.replies`: the node's answer to each request (the RCV or the Fault, the receipt
//!   or the problem), with `correlation_id` set to the request's `message_id` (or its
//!   `correlation_id`) and the HTTP-equivalent status in the `status` header.
//! - `<base>.inbox`: the node delivers the participant's inbox here, one AMQP message per
//!   Decision No. 5 envelope, `message_id` its MessageID. The IS's consumer ack is its
//!   acknowledgement: it needs no HTTP call.
//! - `<base>.inbox.journal`: the node's own record of what reached the inbox queue (below).
//!
//! RabbitMQ tells a publisher nothing of consumer acks, so the node hands a message over when
//! the broker has it durably: it publishes through a fanout exchange (`<base>.inbox`) bound to
//! the inbox queue and the journal queue, and it acknowledges the message in its own inbox
//! when it reads the journal entry of a confirmed publish, never before. A running broker
//! routes one publish to both queues or to neither, so after a crash of the node the journal
//! says exactly which messages the IS's queue already has; they are acknowledged, not sent
//! again, and the rest is sent. After a crash of the broker the publishes that were
//! unconfirmed are sent again, marked [`POSSIBLE_REPEAT`] (the broker makes a publish atomic
//! only within one queue). From the hand-over on, the broker keeps the message until the IS's
//! consumer acks it.
//!
//! Who published a request is RabbitMQ's `user_id` property, which the broker checks against
//! the publishing connection's user: a request whose `user_id` is not the participant's
//! configured user is answered with 403 and changes nothing.

mod inbox;
mod requests;

pub use inbox::POSSIBLE_REPEAT;

use std::time::Duration;

use adapter::Adapter;
use lapin::options::{
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::watch;

/// The broker and how the node uses it (a node's `[queue]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `amqp://user:password@host:port/vhost` (or `amqps://`, checked against the system's
    /// roots).
    pub url: String,
    /// First part of every queue and exchange name.
    pub prefix: String,
    /// Requests taken at once per participant (the AMQP prefetch).
    pub prefetch: u16,
}

/// A participant of the node that talks to it through the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueParticipant {
    /// Its logical address, one of the node's participants.
    pub address: String,
    /// The broker user its IS publishes as; requests must carry it as `user_id`.
    pub user: String,
}

/// The broker's names for one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub requests: String,
    pub replies: String,
    /// The inbox queue, and the fanout exchange the node publishes it through.
    pub inbox: String,
    pub journal: String,
}

impl Names {
    /// `prefix.KZ.CA.conformity-body.requests` for `EAEU://KZ/CA/conformity-body`.
    pub fn of(prefix: &str, address: &str) -> Names {
        let path = address.strip_prefix("EAEU://").unwrap_or(address);
        let base = format!("{prefix}.{}", path.replace('/', "."));
        Names {
            requests: format!("{base}.requests"),
            replies: format!("{base}.replies"),
            inbox: format!("{base}.inbox"),
            journal: format!("{base}.inbox.journal"),
        }
    }
}

/// Why a session with the broker ended; the adapter connects again.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused a publish to {0}")]
    Refused(String),
    #[error("the node: {0}")]
    Node(String),
}

/// Serves `participants` (each with its adapter) through the broker until `stop` turns true,
/// connecting again after any failure of the broker or the connection (1 s, doubling to 30 s).
/// A request larger than `max_bytes` is answered 413.
pub async fn run<A>(
    cfg: Config,
    max_bytes: usize,
    participants: Vec<(QueueParticipant, A)>,
    stop: watch::Receiver<bool>,
) where
    A: Adapter + Clone + 'static,
{
    let unconfirmed: Vec<inbox::Unconfirmed> =
        participants.iter().map(|_| Default::default()).collect();
    let mut pause = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        let started = std::time::Instant::now();
        match session(&cfg, max_bytes, &participants, &unconfirmed, stop.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, broker = %redacted(&cfg.url), "queue adapter: the session with the broker ended; connecting again")
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_secs(1);
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// The broker URL without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// One connection: every participant's requests and inbox, until the first failure or `stop`.
async fn session<A>(
    cfg: &Config,
    max_bytes: usize,
    participants: &[(QueueParticipant, A)],
    unconfirmed: &[inbox::Unconfirmed],
    stop: watch::Receiver<bool>,
) -> Result<(), QueueError>
where
    A: Adapter + Clone + 'static,
{
    let conn = Connection::connect(
        &cfg.url,
        ConnectionProperties::default().with_connection_name("ortaq node".into()),
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for ((p, a), unconfirmed) in participants.iter().zip(unconfirmed) {
        let names = Names::of(&cfg.prefix, &p.address);
        let ch = declare(&conn, &names, cfg.prefetch).await?;
        tasks.spawn(requests::serve(
            ch,
            names.clone(),
            p.clone(),
            a.clone(),
            max_bytes,
            stop.clone(),
        ));
        let ch = declare(&conn, &names, cfg.prefetch).await?;
        let jc = declare(&conn, &names, cfg.prefetch).await?;
        tasks.spawn(inbox::serve(
            ch,
            jc,
            names,
            a.clone(),
            unconfirmed.clone(),
            stop.clone(),
        ));
    }
    tracing::info!(broker = %redacted(&cfg.url), participants = participants.len(), "queue adapter connected");
    let mut outcome = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                outcome = Err(e);
                break;
            }
            Err(e) => {
                outcome = Err(QueueError::Node(format!("a queue task failed: {e}")));
                break;
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = conn.close(200, "ortaq node stopping".into()).await;
    outcome
}

/// A channel with publisher confirms and the prefetch, after declaring the participant's
/// queues (durable) and the inbox exchange with its two bindings.
async fn declare(conn: &Connection, n: &Names, prefetch: u16) -> Result<Channel, QueueError> {
    let ch = conn.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for q in [&n.requests, &n.replies, &n.inbox, &n.journal] {
        ch.queue_declare(q.as_str().into(), durable, FieldTable::default())
            .await?;
    }
    ch.exchange_declare(
        n.inbox.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    for q in [&n.inbox, &n.journal] {
        ch.queue_bind(
            q.as_str().into(),
            n.inbox.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    Ok(ch)
}

/// The next delivery of a consumer; `None` when it was cancelled.
async fn next(c: &mut lapin::Consumer) -> Option<lapin::Result<lapin::message::Delivery>> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *c), cx))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_address() {
        let n = Names::of("ortaq", "EAEU://KZ/CA/conformity-body");
        assert_eq!(n.requests, "ortaq.KZ.CA.conformity-body.requests");
        assert_eq!(n.replies, "ortaq.KZ.CA.conformity-body.replies");
        assert_eq!(n.inbox, "ortaq.KZ.CA.conformity-body.inbox");
        assert_eq!(n.journal, "ortaq.KZ.CA.conformity-body.inbox.journal");
    }

    #[test]
    fn the_password_stays_out_of_logs() {
        assert_eq!(
            redacted("amqp://is:s3cret@broker:5672/%2f"),
            "amqp://***@broker:5672/%2f"
        );
        assert_eq!(redacted("amqp://broker"), "amqp://broker");
    }
}
