//! `ortaq bench submit`: a real node process on the embedded store, many concurrent ISs
//! submitting 2 KB e-documents over HTTP; prints accepted messages/s, latency percentiles, how
//! many submissions shared each commit, and the node's memory idle and under load.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use node::client::Outgoing;
use ortaq::process::{NodeProcess, RECIPIENT, SENDER, cpu_seconds_of};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Durable submissions per second on one node (SQLite, group commit).
    Submit {
        /// Messages to submit (after a warm-up of 1,000).
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Concurrent submitting clients.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// Size of each e-document in bytes.
        #[arg(long, default_value_t = 2048)]
        size: usize,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Submit {
            messages,
            concurrency,
            size,
        } => submit(messages, concurrency, size).await,
    }
}

fn document(size: usize, i: usize) -> String {
    let head = format!(
        "<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:DocId>KZ-{i}</tr:DocId><tr:Text>"
    );
    let tail = "</tr:Text></tr:ConformityDocDetails>";
    let fill = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "Ә".repeat(fill / 2))
}

fn outgoing(size: usize, i: usize) -> Outgoing {
    Outgoing {
        to: RECIPIENT.into(),
        process: "P.TS.01".into(),
        version: "1.0.1".into(),
        procedure: "P.TS.01.PRC.001".into(),
        transaction: "P.TS.01.TRN.001".into(),
        message: "P.TS.01.MSG.001".into(),
        body: document(size, i),
        ..Default::default()
    }
}

/// The load generator: a bare HTTP/1.1 client sending bodies serialised before the clock starts,
/// so that as little as possible of the two cores goes to generating load rather than serving it.
#[derive(Clone)]
struct Load {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    uri: hyper::Uri,
    auth: hyper::header::HeaderValue,
}

impl Load {
    fn new(base: &str, token: &str) -> anyhow::Result<Load> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(1024)
                .build_http();
        Ok(Load {
            client,
            uri: format!("{base}/v1/messages").parse()?,
            auth: format!("Bearer {token}").parse()?,
        })
    }

    async fn send(&self, body: bytes::Bytes) -> anyhow::Result<()> {
        use http_body_util::BodyExt as _;
        let req = hyper::Request::post(self.uri.clone())
            .header(hyper::header::AUTHORIZATION, self.auth.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(body))?;
        let resp = self.client.request(req).await?;
        let status = resp.status();
        let text = resp.into_body().collect().await?.to_bytes();
        if status != hyper::StatusCode::CREATED {
            anyhow::bail!("{status}: {}", String::from_utf8_lossy(&text));
        }
        Ok(())
    }
}

/// Request bodies for messages `range`, serialised ahead of time.
fn bodies(range: std::ops::Range<usize>, size: usize) -> anyhow::Result<Vec<bytes::Bytes>> {
    Ok(range
        .map(|i| serde_json::to_vec(&outgoing(size, i)).map(bytes::Bytes::from))
        .collect::<Result<_, _>>()?)
}

async fn burst(
    load: &Load,
    bodies: Vec<bytes::Bytes>,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let n = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (load, next, bodies) = (load.clone(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(lat);
                };
                let t = Instant::now();
                load.send(body.clone()).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

async fn submit(messages: usize, concurrency: usize, size: usize) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new().prefix("ortaq-bench-").tempdir()?;
    let mut node = NodeProcess::configure(&std::env::current_exe()?, dir.path())?;
    let ts = node.token(SENDER)?;
    node.start().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = node.memory_kib("VmRSS:");
    let load = Load::new(&node.base, &ts)?;
    burst(&load, bodies(0..1000, size)?, concurrency)
        .await
        .context("warm-up")?;
    let bodies = bodies(1000..1000 + messages, size)?;
    let before = reqwest::get(format!("{}/metrics", node.base))
        .await?
        .text()
        .await?;

    let (node_cpu0, client_cpu0) = (node.cpu_seconds(), cpu_seconds_of("self"));
    let t = Instant::now();
    let mut lat = burst(&load, bodies, concurrency).await?;
    let elapsed = t.elapsed();
    // Deliveries may trail the last answer by a moment; count the node's CPU once they are done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node_cpu = node.cpu_seconds() - node_cpu0;
    let client_cpu = cpu_seconds_of("self") - client_cpu0;
    let after = reqwest::get(format!("{}/metrics", node.base))
        .await?
        .text()
        .await?;
    let peak = node.memory_kib("VmHWM:");
    lat.sort();
    let jobs = metric(&after, "ortaq_store_commit_jobs_total")
        - metric(&before, "ortaq_store_commit_jobs_total");
    let batches = metric(&after, "ortaq_store_commit_batches_total")
        - metric(&before, "ortaq_store_commit_batches_total");
    let status = node.terminate()?;

    println!(
        "ortaq bench submit: {messages} messages of {size} B, {concurrency} concurrent clients, one node (SQLite, WAL, synchronous=FULL)"
    );
    println!(
        "  accepted (durably committed) : {:.0} messages/s over {:.2} s",
        messages as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  latency                      : p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    println!(
        "  group commit                 : {:.1} store jobs per commit ({jobs:.0} jobs, {batches:.0} commits, incl. local delivery)",
        if batches > 0.0 { jobs / batches } else { 0.0 }
    );
    println!(
        "  node memory                  : idle {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let per = |cpu: f64| cpu / messages as f64 * 1e6;
    println!(
        "  CPU per message              : node {:.0} us (accept, store, log, local delivery), load generator {:.0} us",
        per(node_cpu),
        per(client_cpu)
    );
    println!(
        "  cores busy                   : {:.2} of 2 (node {:.2}, load generator {:.2}); the rest is waiting on commits",
        (node_cpu + client_cpu) / elapsed.as_secs_f64(),
        node_cpu / elapsed.as_secs_f64(),
        client_cpu / elapsed.as_secs_f64()
    );
    println!(
        "  graceful stop (SIGTERM)      : {}",
        if status.success() {
            "clean exit"
        } else {
            "FAILED"
        }
    );
    println!("  (clients and node share this machine's cores)");
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
