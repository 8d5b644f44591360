//! A participant's requests queue: each request is answered in the replies queue, and only
//! then acknowledged to the broker, so none is lost and a repeat is answered, not redone.

use std::time::Duration;

use adapter::{Adapter, AdapterError, Problem, Submission};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use tokio::sync::watch;

use crate::{Names, QueueError, QueueParticipant, next};

/// What the node answers a request, or that it cannot answer now (retry later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Reply {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// The node could not store it now (busy, store unavailable): the request goes back to the
    /// queue and nothing was accepted.
    Later(String),
}

const SOAP: &str = "application/soap+xml";
const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json";

/// Consumes the requests queue until `stop`; each delivery is answered on its own task, so as
/// many as the prefetch are in the node's accept path at once.
pub(crate) async fn serve<A>(
    ch: Channel,
    n: Names,
    p: QueueParticipant,
    a: A,
    max_bytes: usize,
    mut stop: watch::Receiver<bool>,
) -> Result<(), QueueError>
where
    A: Adapter + Clone + 'static,
{
    let tag = format!("ortaq-requests-{}", uuid::Uuid::new_v4());
    let mut consumer = ch
        .basic_consume(
            n.requests.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut work = tokio::task::JoinSet::new();
    let outcome = loop {
        let d = tokio::select! {
            d = next(&mut consumer) => d,
            _ = stop.wait_for(|s| *s) => break Ok(()),
            Some(done) = work.join_next(), if !work.is_empty() => {
                match done {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => break Err(e),
                    Err(e) => break Err(QueueError::Node(format!("a request task failed: {e}"))),
                }
            }
        };
        match d {
            None => {
                break Err(QueueError::Node(
                    "the broker cancelled the requests consumer".into(),
                ));
            }
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(d)) => {
                let (ch, replies, user, a) =
                    (ch.clone(), n.replies.clone(), p.user.clone(), a.clone());
                work.spawn(async move { handle(&ch, &replies, &user, &a, max_bytes, d).await });
            }
        }
    };
    // Requests in the node's hands finish; the rest go back to the queue with the channel.
    while let Some(done) = work.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "queue adapter: a request was left for redelivery");
        }
    }
    outcome
}

async fn handle<A: Adapter>(
    ch: &Channel,
    replies: &str,
    user: &str,
    a: &A,
    max_bytes: usize,
    d: Delivery,
) -> Result<(), QueueError> {
    let props = &d.properties;
    let answer = answer(
        a,
        user,
        props.user_id().as_ref().map(ShortString::as_str),
        props.content_type().as_ref().map(ShortString::as_str),
        &d.data,
        max_bytes,
        d.redelivered,
    )
    .await;
    match answer {
        Answer::Later(why) => {
            tracing::warn!(reason = %why, "queue adapter: a request goes back to the queue");
            tokio::time::sleep(Duration::from_secs(1)).await;
            d.acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await?;
        }
        Answer::Reply {
            status,
            content_type,
            body,
        } => {
            let mut headers = FieldTable::default();
            headers.insert("status".into(), AMQPValue::LongInt(i32::from(status)));
            let mut reply = BasicProperties::default()
                .with_content_type(content_type.into())
                .with_delivery_mode(2)
                .with_message_id(format!("urn:uuid:{}", uuid::Uuid::new_v4()).into())
                .with_headers(headers);
            if let Some(c) = props
                .message_id()
                .as_ref()
                .or(props.correlation_id().as_ref())
            {
                reply = reply.with_correlation_id(c.clone());
            }
            let confirm = ch
                .basic_publish(
                    "".into(),
                    replies.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    reply,
                )
                .await?
                .await?;
            if !confirm.is_ack() || confirm.take_message().is_some() {
                return Err(QueueError::Refused(replies.to_owned()));
            }
            // Only now is the request done with: a node killed before this line answers it
            // again after restarting, from the repeat path.
            d.acker.ack(BasicAckOptions::default()).await?;
        }
    }
    Ok(())
}

fn problem(status: u16, kind: &str, title: &str, detail: String) -> Answer {
    let p = Problem {
        kind: format!("https://ortaq.dev/problems/{kind}"),
        title: title.into(),
        status,
        detail,
        rule: None,
    };
    Answer::Reply {
        status,
        content_type: PROBLEM,
        body: serde_json::to_vec(&p).unwrap_or_default(),
    }
}

/// The media type without parameters, in lower case.
fn media_type(ct: Option<&str>) -> String {
    ct.unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The node's answer to one request: the identity first, then the size, then the form.
pub(crate) async fn answer<A: Adapter>(
    a: &A,
    user: &str,
    user_id: Option<&str>,
    content_type: Option<&str>,
    data: &[u8],
    max_bytes: usize,
    redelivered: bool,
) -> Answer {
    if user_id != Some(user) {
        return problem(
            403,
            "forbidden",
            "Forbidden",
            format!(
                "a request on this queue must carry the AMQP user_id {user:?} (the broker checks it against the connection); it carries {user_id:?}"
            ),
        );
    }
    if data.len() > max_bytes {
        return problem(
            413,
            "too-large",
            "Content Too Large",
            format!(
                "the request has {} bytes; the node takes at most {max_bytes}",
                data.len()
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return problem(
            400,
            "invalid-request",
            "Bad Request",
            "the request is not UTF-8 text".into(),
        );
    };
    let outcome = match media_type(content_type).as_str() {
        SOAP => match a.send_envelope(text).await {
            Ok(rcv) => Ok((SOAP, rcv.into_bytes())),
            Err(e) => Err((SOAP, e)),
        },
        JSON => {
            let s: Submission = match serde_json::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    return problem(
                        400,
                        "invalid-request",
                        "Bad Request",
                        format!("the submission is not the JSON the API defines: {e}"),
                    );
                }
            };
            if s.message_id.is_none() {
                // Without its own MessageID a redelivered request would be a second message.
                return problem(
                    400,
                    "invalid-request",
                    "Bad Request",
                    "a submission through the queue must carry its own message_id (urn:uuid:…), so that a redelivery is recognised as a repeat".into(),
                );
            }
            match a.send(&s).await {
                Ok(mut r) => {
                    // The broker hands a request again when the node stopped before
                    // acknowledging it: the IS sent it once, so it gets the original receipt,
                    // not one that calls its request a repeat.
                    if redelivered {
                        r.duplicate = false;
                    }
                    Ok((JSON, serde_json::to_vec(&r).unwrap_or_default()))
                }
                Err(e) => Err((PROBLEM, e)),
            }
        }
        other => {
            return problem(
                415,
                "unsupported-media-type",
                "Unsupported Media Type",
                format!(
                    "content_type {other:?}: send {SOAP} (a Decision No. 5 envelope) or {JSON} (a submission)"
                ),
            );
        }
    };
    match outcome {
        Ok((content_type, body)) => Answer::Reply {
            status: 200,
            content_type,
            body,
        },
        // Busy or unable to store: nothing was accepted, so the request waits in the queue.
        Err((_, AdapterError::Api { status: 503, body })) => Answer::Later(body),
        Err((content_type, AdapterError::Api { status, body })) => Answer::Reply {
            status,
            content_type,
            body: body.into_bytes(),
        },
        Err((_, e)) => Answer::Later(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(
            media_type(Some("Application/SOAP+XML; charset=utf-8")),
            SOAP
        );
        assert_eq!(media_type(None), "");
    }
}
