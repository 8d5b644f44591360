//! A participant's inbox delivered to its queue: published through the inbox exchange (to the
//! IS's queue and the node's journal queue at once), acknowledged in the node's inbox only
//! from the journal, so a node killed at any point neither loses nor doubles a message.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use adapter::{Adapter, AdapterError, InboxMessage};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use tokio::sync::watch;

use crate::{Names, QueueError, next};

/// Messages published and not yet acknowledged in the node's inbox: not published again.
type InFlight = Arc<Mutex<HashSet<String>>>;

/// Messages published whose confirm had not come when the session with the broker ended. It
/// outlives the session: if the broker died, RabbitMQ may have stored such a message in one of
/// the two queues and not the other (it makes one publish atomic only within a queue), so the
/// journal is no evidence for them; they are published again, marked as possible repeats.
pub(crate) type Unconfirmed = Arc<Mutex<HashSet<String>>>;

/// The header that marks a message the IS's queue may already hold (`true`).
pub const POSSIBLE_REPEAT: &str = "ortaq-possible-repeat";

/// Messages read from the inbox at once.
const PAGE: i64 = 256;
/// Seconds the inbox read waits for a new message.
const WAIT_SECS: u64 = 10;

/// First settles what the journal holds from before (a crash, a lost connection), then
/// publishes the inbox and settles the journal as it fills, until `stop`.
pub(crate) async fn serve<A>(
    ch: Channel,
    jc: Channel,
    n: Names,
    a: A,
    unconfirmed: Unconfirmed,
    mut stop: watch::Receiver<bool>,
) -> Result<(), QueueError>
where
    A: Adapter + Clone + 'static,
{
    let inflight: InFlight = Arc::default();
    // What the broker took before this session is in the journal; acknowledging it first
    // is what keeps it from being published twice.
    let mut before = 0;
    while let Some(m) = jc
        .basic_get(n.journal.as_str().into(), BasicGetOptions::default())
        .await?
    {
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|i| i.to_string());
        if id.is_some_and(|id| lock(&unconfirmed).contains(&id)) {
            // Unconfirmed when the broker went away: published again below, not settled.
            m.delivery.acker.ack(BasicAckOptions::default()).await?;
        } else {
            settle(&a, &inflight, &m.delivery).await?;
            before += 1;
        }
    }
    if before > 0 {
        tracing::info!(queue = %n.inbox, messages = before, "queue adapter: messages the broker took before are acknowledged, not sent again");
    }
    let mut journal = tokio::spawn(settle_journal(
        jc,
        n.clone(),
        a.clone(),
        inflight.clone(),
        unconfirmed.clone(),
    ));
    // The journal task ends with this one, however this one ends (stop, failure, abort).
    let _guard = AbortOnDrop(journal.abort_handle());
    tokio::select! {
        r = publish_inbox(&ch, &n, &a, &inflight, &unconfirmed) => r,
        _ = stop.wait_for(|s| *s) => Ok(()),
        r = &mut journal => r.unwrap_or_else(|e| Err(QueueError::Node(format!("the journal task failed: {e}")))),
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn publish_inbox<A: Adapter>(
    ch: &Channel,
    n: &Names,
    a: &A,
    inflight: &InFlight,
    unconfirmed: &Unconfirmed,
) -> Result<(), QueueError> {
    let mut cursor = 0;
    loop {
        let page = a
            .inbox(cursor, PAGE, WAIT_SECS)
            .await
            .map_err(|e| QueueError::Node(format!("reading the inbox: {e}")))?;
        let mut confirms = Vec::with_capacity(page.messages.len());
        for m in &page.messages {
            if !lock(inflight).insert(m.message_id.clone()) {
                continue;
            }
            let repeat = !lock(unconfirmed).insert(m.message_id.clone());
            let c = ch
                .basic_publish(
                    n.inbox.as_str().into(),
                    "".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    m.envelope.as_bytes(),
                    properties(m, repeat),
                )
                .await?;
            confirms.push((m.message_id.clone(), c));
        }
        for (id, c) in confirms {
            let c = c.await?;
            if !c.is_ack() || c.take_message().is_some() {
                lock(inflight).remove(&id);
                return Err(QueueError::Refused(n.inbox.clone()));
            }
            lock(unconfirmed).remove(&id);
        }
        cursor = page.cursor;
    }
}

/// The AMQP properties of an inbox message: its MessageID and Action, and the inbox entry's
/// other fields as headers.
fn properties(m: &InboxMessage, possible_repeat: bool) -> BasicProperties {
    let mut h = FieldTable::default();
    if possible_repeat {
        h.insert(POSSIBLE_REPEAT.into(), AMQPValue::Boolean(true));
    }
    let text = |v: &str| AMQPValue::LongString(LongString::from(v.as_bytes()));
    h.insert("from".into(), text(&m.from));
    h.insert("track-id".into(), text(&m.track_id));
    h.insert("accept-time".into(), text(&m.accept_time));
    if let Some(c) = &m.conversation_id {
        h.insert("conversation-id".into(), text(c));
    }
    BasicProperties::default()
        .with_message_id(m.message_id.as_str().into())
        .with_type(m.action.as_str().into())
        .with_content_type("application/soap+xml".into())
        .with_delivery_mode(2)
        .with_headers(h)
}

async fn settle_journal<A>(
    jc: Channel,
    n: Names,
    a: A,
    inflight: InFlight,
    unconfirmed: Unconfirmed,
) -> Result<(), QueueError>
where
    A: Adapter + Clone + 'static,
{
    let tag = format!("ortaq-journal-{}", uuid::Uuid::new_v4());
    let mut consumer = jc
        .basic_consume(
            n.journal.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut work = tokio::task::JoinSet::new();
    loop {
        let d = tokio::select! {
            d = next(&mut consumer) => d,
            Some(done) = work.join_next(), if !work.is_empty() => {
                match done {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(QueueError::Node(format!("a journal task failed: {e}"))),
                }
            }
        };
        match d {
            None => {
                return Err(QueueError::Node(
                    "the broker cancelled the journal consumer".into(),
                ));
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(d)) => {
                let (a, inflight, unconfirmed) = (a.clone(), inflight.clone(), unconfirmed.clone());
                // One task per entry, so the node's writer commits many acknowledgements at once.
                work.spawn(async move {
                    // RabbitMQ hands a persistent message to consumers before it has stored it
                    // in every queue; only the publisher confirm says it has. Until then the
                    // entry is no evidence that the IS's queue will keep the message.
                    let id = d.properties.message_id().as_ref().map(|i| i.to_string());
                    while id
                        .as_ref()
                        .is_some_and(|id| lock(&unconfirmed).contains(id))
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                    settle(&a, &inflight, &d).await
                });
            }
        }
    }
}

/// The message of a journal entry is in the IS's queue: acknowledged in the node's inbox,
/// then the entry is dropped.
async fn settle<A: Adapter>(a: &A, inflight: &InFlight, d: &Delivery) -> Result<(), QueueError> {
    if let Some(id) = d.properties.message_id() {
        match a.ack(id.as_str()).await {
            Ok(_) => {}
            // Not (or no longer) in this inbox: nothing to acknowledge.
            Err(AdapterError::Api { status: 404, .. }) => {}
            Err(e) => return Err(QueueError::Node(format!("acknowledging {id}: {e}"))),
        }
        lock(inflight).remove(id.as_str());
    }
    d.acker.ack(BasicAckOptions::default()).await?;
    Ok(())
}

fn lock(s: &InFlight) -> std::sync::MutexGuard<'_, HashSet<String>> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
