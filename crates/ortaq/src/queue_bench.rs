//! `ortaq bench queue`: the queue adapter beside the HTTP adapter, in the same run. One node
//! process each (KZ, SQLite), the same 2 KB submissions from an IS to another IS of the node:
//! over HTTP (concurrent `POST /v1/messages`, then the recipient reads its inbox and
//! acknowledges each message), and through RabbitMQ (requests published with pipelined
//! confirms, answers read from the replies queue, the recipient consuming its inbox queue with
//! acks). Prints submissions answered per second and messages in the recipient's hands per
//! second for each way.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use adapter::Adapter as _;
use adapter::http::HttpAdapter;
use anyhow::Context as _;
use host::process::{NodeProcess, RECIPIENT, SENDER};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Unconfirmed publishes at a time, as RabbitMQ's PerfTest publishes.
const WINDOW: usize = 256;

/// A P.TS.01 registration of about `size` bytes for the node's RECIPIENT, with its own
/// MessageID (the queue adapter takes no submission without one).
fn submission(size: usize, i: usize) -> adapter::Submission {
    let head =
        format!("<tr:Doc xmlns:tr=\"urn:EEC:R:TR:TS:01:Doc:v1.0.1\"><tr:Id>{i}</tr:Id><tr:Text>");
    let tail = "</tr:Text></tr:Doc>";
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut s = conformity::sample::registration(
        RECIPIENT,
        format!("{head}{}{tail}", "Ә".repeat(fill / 2)),
    );
    s.message_id = Some(format!("urn:uuid:{}", uuid::Uuid::new_v4()));
    s
}

/// What one way did: submissions answered and messages delivered, per second.
struct Figures {
    answered: Duration,
    delivered: Duration,
    /// CPU seconds of the node process and of the broker (every `beam.smp` on the machine).
    node_cpu: f64,
    broker_cpu: f64,
}

/// CPU seconds so far of every RabbitMQ (Erlang `beam.smp`) process on this machine.
fn broker_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "beam.smp")
        })
        .map(|e| host::process::cpu_seconds_of(&e.file_name().to_string_lossy()))
        .sum()
}

pub async fn run(messages: usize, concurrency: usize, size: usize) -> anyhow::Result<ExitCode> {
    let root = tempfile::Builder::new().prefix("ortaq-queue-").tempdir()?;
    let http = over_http(root.path(), messages, concurrency, size).await?;
    let bodies: Vec<Vec<u8>> = (0..messages)
        .map(|i| serde_json::to_vec(&submission(size, i)))
        .collect::<Result<_, _>>()?;
    let queue = over_queue(root.path(), &bodies).await?;
    let raw = broker_alone(&bodies).await?;
    let rate = |d: Duration| messages as f64 / d.as_secs_f64();
    println!(
        "ortaq bench queue: {messages} submissions of {size} B from one IS to another on one node (SQLite, synchronous=FULL)"
    );
    println!(
        "  HTTP   ({concurrency} concurrent POSTs)        : {:>6.0} answered/s, {:>6.0} in the recipient's hands/s (inbox read + ack)",
        rate(http.answered),
        rate(http.delivered)
    );
    println!(
        "  AMQP   (RabbitMQ, window of {WINDOW})     : {:>6.0} answered/s, {:>6.0} in the recipient's hands/s (consumer acks)",
        rate(queue.answered),
        rate(queue.delivered)
    );
    println!(
        "  queue / HTTP                        : {:.2} answered, {:.2} delivered",
        rate(queue.answered) / rate(http.answered),
        rate(queue.delivered) / rate(http.delivered)
    );
    let us = |cpu: f64| cpu / messages as f64 * 1e6;
    println!(
        "  CPU per submission                  : HTTP node {:.0} us; queue node {:.0} us + broker {:.0} us",
        us(http.node_cpu),
        us(queue.node_cpu),
        us(queue.broker_cpu)
    );
    println!(
        "  RabbitMQ alone (same bodies, window of {WINDOW}, consumer acks): {:>6.0} messages/s; each submission through the queue adapter is four persistent broker messages (request, answer, inbox, journal)",
        rate(raw)
    );
    println!("  (node, broker and clients share this machine's cores)");
    Ok(ExitCode::SUCCESS)
}

async fn over_http(
    root: &std::path::Path,
    messages: usize,
    concurrency: usize,
    size: usize,
) -> anyhow::Result<Figures> {
    std::fs::create_dir_all(root.join("http"))?;
    let mut node = NodeProcess::configure(&std::env::current_exe()?, &root.join("http"))?;
    let (ts, tr) = (node.token(SENDER)?, node.token(RECIPIENT)?);
    node.start().await?;
    let sender = HttpAdapter::new(&node.base, &ts);
    let recipient = HttpAdapter::new(&node.base, &tr);
    let subs: Vec<_> = (0..messages).map(|i| submission(size, i)).collect();
    let (cpu0, broker0) = (node.cpu_seconds(), broker_cpu());
    let t = Instant::now();
    let reader = tokio::spawn(async move {
        let (mut cursor, mut got) = (0, 0);
        while got < messages {
            let page = recipient.inbox(cursor, 256, 5).await?;
            cursor = page.cursor;
            // 32 acknowledgements at a time: the senders hold most of the node's connections.
            for chunk in page.messages.chunks(32) {
                let acks: Vec<_> = chunk
                    .iter()
                    .map(|m| {
                        let (r, id) = (recipient.clone(), m.message_id.clone());
                        tokio::spawn(async move { r.ack(&id).await })
                    })
                    .collect();
                for a in acks {
                    a.await??;
                    got += 1;
                }
            }
        }
        anyhow::Ok(t.elapsed())
    });
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let subs = std::sync::Arc::new(subs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (s, next, subs) = (sender.clone(), next.clone(), subs.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(m) = subs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                s.send(m).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let answered = t.elapsed();
    let delivered = reader.await??;
    let (node_cpu, broker_cpu) = (node.cpu_seconds() - cpu0, broker_cpu() - broker0);
    node.terminate()?;
    Ok(Figures {
        answered,
        delivered,
        node_cpu,
        broker_cpu,
    })
}

async fn consumer(conn: &Connection, queue: &str) -> anyhow::Result<lapin::Consumer> {
    let ch = conn.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(queue.into(), durable, FieldTable::default())
        .await?;
    ch.basic_qos(1000, Default::default()).await?;
    Ok(ch
        .basic_consume(
            queue.into(),
            format!("bench-{}", uuid::Uuid::new_v4()).as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}

/// Consumes `n` messages with acks; the time from `t` to the last.
async fn count(mut c: lapin::Consumer, n: usize, t: Instant) -> anyhow::Result<Duration> {
    for _ in 0..n {
        let d = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut c), cx)
        })
        .await
        .context("the consumer was cancelled")??;
        d.acker.ack(BasicAckOptions::default()).await?;
    }
    Ok(t.elapsed())
}

/// Publishes `bodies` to `queue`, persistent, with at most WINDOW unconfirmed at a time.
async fn publish(conn: &Connection, queue: &str, bodies: &[Vec<u8>]) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut pending: std::collections::VecDeque<lapin::PublisherConfirm> =
        std::collections::VecDeque::new();
    for b in bodies {
        if pending.len() >= WINDOW {
            let c = pending.pop_front().context("window")?;
            anyhow::ensure!(c.await?.is_ack(), "the broker refused a message");
        }
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_user_id("guest".into())
            .with_message_id(format!("bench-{}", uuid::Uuid::new_v4()).as_str().into())
            .with_delivery_mode(2);
        pending.push_back(
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b,
                props,
            )
            .await?,
        );
    }
    for c in pending {
        anyhow::ensure!(c.await?.is_ack(), "the broker refused a message");
    }
    Ok(())
}

/// The broker alone: the same bodies published to a queue and consumed with acks.
async fn broker_alone(bodies: &[Vec<u8>]) -> anyhow::Result<Duration> {
    let conn = Connection::connect(BROKER, ConnectionProperties::default())
        .await
        .context("RabbitMQ on 127.0.0.1:5672 (guest)")?;
    let q = format!("ortaq-bench-raw-{}", uuid::Uuid::new_v4());
    let c = consumer(&conn, &q).await?;
    let t = Instant::now();
    let got = tokio::spawn(count(c, bodies.len(), t));
    publish(&conn, &q, bodies).await?;
    let took = got.await??;
    let ch = conn.create_channel().await?;
    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    let _ = conn.close(200, "done".into()).await;
    Ok(took)
}

async fn over_queue(root: &std::path::Path, bodies: &[Vec<u8>]) -> anyhow::Result<Figures> {
    let prefix = format!(
        "ortaq-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut cfg = host::process::config("KZ", SENDER)?;
    cfg.participants.push(node::config::ParticipantConfig {
        address: RECIPIENT.into(),
        name: String::new(),
    });
    let on_queue = |address: &str| node::config::QueueParticipantSection {
        address: address.into(),
        user: "guest".into(),
    };
    cfg.queue = Some(node::config::QueueSection {
        url: BROKER.into(),
        prefix: prefix.clone(),
        prefetch: 64,
        participants: vec![on_queue(SENDER), on_queue(RECIPIENT)],
    });
    let mut node = NodeProcess::with_config(&std::env::current_exe()?, &root.join("queue"), &cfg)?;
    node.start().await?;
    let sender = queue::Names::of(&prefix, SENDER);
    let recipient = queue::Names::of(&prefix, RECIPIENT);
    let conn = Connection::connect(BROKER, ConnectionProperties::default())
        .await
        .context("RabbitMQ on 127.0.0.1:5672 (guest)")?;
    let replies = consumer(&conn, &sender.replies).await?;
    let inbox = consumer(&conn, &recipient.inbox).await?;
    let (cpu0, broker0) = (node.cpu_seconds(), broker_cpu());
    let t = Instant::now();
    let answered = tokio::spawn(count(replies, bodies.len(), t));
    let delivered = tokio::spawn(count(inbox, bodies.len(), t));
    publish(&conn, &sender.requests, bodies).await?;
    let answered = answered.await??;
    let delivered = delivered.await??;
    let (node_cpu, broker_cpu) = (node.cpu_seconds() - cpu0, broker_cpu() - broker0);
    node.terminate()?;
    let ch = conn.create_channel().await?;
    for q in [&sender, &recipient]
        .iter()
        .flat_map(|n| [&n.requests, &n.replies, &n.inbox, &n.journal])
    {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    for e in [&sender.inbox, &recipient.inbox] {
        let _ = ch
            .exchange_delete(e.as_str().into(), Default::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(Figures {
        answered,
        delivered,
        node_cpu,
        broker_cpu,
    })
}
