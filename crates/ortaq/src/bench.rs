//! Benchmarks with real node processes.
//!
//! `ortaq bench submit`: one node on the embedded store, many concurrent ISs submitting 2 KB
//! e-documents over HTTP; prints accepted messages/s, latency percentiles, how many
//! submissions shared each commit, and the node's memory idle and under load.
//!
//! `ortaq bench exchange`: two nodes on loopback; an IS at KZ submits 2 KB e-documents for an
//! IS at RU; each envelope is signed by KZ, sent over mutual TLS, verified and durably
//! committed by RU, whose signed RCV KZ verifies and records. Prints envelopes/s at full load,
//! latency at a fixed 1,000 envelopes/s, and, with `--rabbitmq`, RabbitMQ with persistent
//! messages and publisher confirms on the same payloads side by side.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapter::Submission;
use anyhow::Context as _;
use host::process::{NodeProcess, RECIPIENT, SENDER, cpu_seconds_of};

use crate::measure::percentile;
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;

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
    /// Reference data: validity lookups per second on one core, and import time of HS.
    Nsi {
        /// Lookups to time.
        #[arg(long, default_value_t = 20_000_000)]
        lookups: usize,
    },
    /// E-document validation on one core: a 5 KB P.TS.01 document through XSD, EDocHeader,
    /// filling rules and code lists.
    Validate {
        /// Documents to validate in each run.
        #[arg(long, default_value_t = 20_000)]
        docs: usize,
    },
    /// XMLDSig on a 5 KB P.TS.01 document: signatures and verifications per second on one
    /// core, per algorithm.
    Dsig {
        #[arg(long, default_value_t = 5_000)]
        docs: usize,
    },
    /// RFC 3161 time stamps on one core: tokens/s one record per token, records/s with
    /// batching (one token over a hash tree), verifications/s.
    Tsa {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
    /// One node under the security review's attacks (SOAP amplification, huge TTP documents,
    /// a reference-data flood): what the attackers got, `/health` latency, peak memory.
    Abuse {
        /// Attacking clients at once for the SOAP and TTP attacks.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Requests each of them sends.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds of the reference-data flood.
        #[arg(long, default_value_t = 10)]
        flood_secs: u64,
    },
    /// The synchronous adapter across KZ, the EEC relay and RU: request/answer round trips at a
    /// fixed rate, p50/p99, beside the asynchronous way (submit, then long-poll the inbox).
    Sync {
        #[arg(long, default_value_t = 100)]
        rate: usize,
        #[arg(long, default_value_t = 10)]
        seconds: usize,
    },
    /// The queue adapter (AMQP 0-9-1 through RabbitMQ on 127.0.0.1:5672) beside the HTTP
    /// adapter: submissions answered/s and messages in the recipient's hands/s, each way.
    Queue {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Concurrent submitting clients on the HTTP side.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        #[arg(long, default_value_t = 2048)]
        size: usize,
    },
    /// The pages under people's load: signed-in sessions reading the portal and the console
    /// and searching a registry of generated documents, page and search p99, and the node's
    /// peak memory while the whole registry downloads as CSV.
    Web {
        #[arg(long, default_value_t = 100_000)]
        documents: usize,
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Each session's pause between pages (a person reading), ±50%; 0 saturates the node.
        #[arg(long, default_value_t = 1000)]
        think_ms: u64,
    },
    /// Envelopes/s and latency between two nodes over mutual TLS, against RabbitMQ.
    Exchange {
        /// Envelopes for the full-load run (after a warm-up of 1,000).
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Concurrent submitting clients in the full-load run.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// Size of each e-document in bytes.
        #[arg(long, default_value_t = 2048)]
        size: usize,
        /// Rate of the latency run, envelopes/s, held for `--seconds`.
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        #[arg(long, default_value_t = 10)]
        seconds: usize,
        /// A Python with `pika` to run the RabbitMQ baseline (`scripts/bench-exchange.sh` makes
        /// one); the broker is `amqp://guest:guest@127.0.0.1:5672`.
        #[arg(long)]
        rabbitmq: Option<std::path::PathBuf>,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Submit {
            messages,
            concurrency,
            size,
        } => submit(messages, concurrency, size).await,
        BenchCommand::Nsi { lookups } => nsi_bench(lookups).await,
        BenchCommand::Sync { rate, seconds } => crate::sync_bench::run(rate, seconds).await,
        BenchCommand::Queue {
            messages,
            concurrency,
            size,
        } => crate::queue_bench::run(messages, concurrency, size).await,
        BenchCommand::Web {
            documents,
            sessions,
            seconds,
            think_ms,
        } => crate::web_bench::run(documents, sessions, seconds, think_ms).await,
        BenchCommand::Abuse {
            parallel,
            rounds,
            flood_secs,
        } => crate::abuse::run(parallel, rounds, flood_secs).await,
        BenchCommand::Validate { docs } => validate_bench(docs),
        BenchCommand::Dsig { docs } => dsig_bench(docs),
        BenchCommand::Tsa { records } => tsa_bench(records).await,
        BenchCommand::Exchange {
            messages,
            concurrency,
            size,
            rate,
            seconds,
            rabbitmq,
        } => exchange(messages, concurrency, size, rate, seconds, rabbitmq).await,
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

fn outgoing_to(to: &str, size: usize, i: usize) -> Submission {
    conformity::sample::registration(to, document(size, i))
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
    bodies_to(RECIPIENT, range, size)
}

fn bodies_to(
    to: &str,
    range: std::ops::Range<usize>,
    size: usize,
) -> anyhow::Result<Vec<bytes::Bytes>> {
    Ok(range
        .map(|i| serde_json::to_vec(&outgoing_to(to, size, i)).map(bytes::Bytes::from))
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

const REMOTE: &str = "EAEU://RU/CP/P.TS.01/P.TS.01.ACT.002";

/// Two node processes, KZ and RU, peers of each other over mutual TLS.
fn exchange_pair(root: &std::path::Path) -> anyhow::Result<(NodeProcess, NodeProcess)> {
    use envelope::Segment;
    use node::config::{FederationSection, NodeConfig};
    let seg = |s: &str| Segment::parse(s).map_err(anyhow::Error::msg);
    let (kz, ru) = (seg("KZ")?, seg("RU")?);
    let pki = root.join("pki");
    trust::pki::init(&pki, &[kz, ru], time::OffsetDateTime::now_utc())?;
    let addrs = [kz, ru]
        .into_iter()
        .map(|s| Ok((s, ([127, 0, 0, 1], host::process::free_port()?).into())))
        .collect::<anyhow::Result<std::collections::BTreeMap<_, std::net::SocketAddr>>>()?;
    let make = |me: Segment, participant: &str| -> anyhow::Result<NodeProcess> {
        let cfg = NodeConfig {
            // Two nodes, each the other's only peer: a direct link.
            federation: FederationSection::star(&pki, me, ru, &addrs),
            ..host::process::config(me.as_str(), participant)?
        };
        NodeProcess::with_config(&std::env::current_exe()?, &root.join(me.as_str()), &cfg)
    };
    Ok((make(kz, SENDER)?, make(ru, REMOTE)?))
}

async fn counter(base: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    Ok(metric(&text, name))
}

/// Waits until the sender's node has recorded `n` RCVs from its peer in total.
async fn until_confirmed(base: &str, n: f64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while counter(base, "ortaq_peer_sent_total").await? < n {
        anyhow::ensure!(Instant::now() < deadline, "the exchange stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Sorted (RCV recorded − accepted) per message, from the sender's store, in the window
/// of accept times [from, to).
async fn exchange_latencies(
    dir: &std::path::Path,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<Duration>> {
    let store = store::Store::open(store::StoreConfig::new(store::Engine::Sqlite(
        dir.join("data").join("node.db"),
    )))?;
    let lat = store.confirmation_delays(from, to).await?;
    store.close().await?;
    Ok(lat
        .into_iter()
        .map(|us| Duration::from_micros(us as u64))
        .collect())
}

/// Sends `bodies` at a fixed rate (open loop: a slow answer does not slow the schedule).
async fn paced(load: &Load, bodies: Vec<bytes::Bytes>, rate: usize) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for b in bodies {
        tick.tick().await;
        let load = load.clone();
        tasks.spawn(async move { load.send(b).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

fn now_micros() -> i64 {
    store::system_micros()
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    paced_p50: f64,
    paced_p99: f64,
}

async fn exchange(
    messages: usize,
    concurrency: usize,
    size: usize,
    rate: usize,
    seconds: usize,
    rabbitmq: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("ortaq-bench-x-")
        .tempdir()?;
    let (mut kz, mut ru) = exchange_pair(dir.path())?;
    let ts = kz.token(SENDER)?;
    ru.start().await?;
    kz.start().await?;
    let load = Load::new(&kz.base, &ts)?;
    burst(&load, bodies_to(REMOTE, 0..1000, size)?, concurrency)
        .await
        .context("warm-up")?;
    until_confirmed(&kz.base, 1000.0).await?;

    // Full load: as fast as the two nodes go.
    let full = bodies_to(REMOTE, 1000..1000 + messages, size)?;
    let (kz_cpu0, ru_cpu0, me0) = (kz.cpu_seconds(), ru.cpu_seconds(), cpu_seconds_of("self"));
    let from = now_micros();
    let t = Instant::now();
    burst(&load, full, concurrency).await?;
    let submitted = t.elapsed();
    until_confirmed(&kz.base, (1000 + messages) as f64).await?;
    let elapsed = t.elapsed();
    let to = now_micros();
    let (kz_cpu, ru_cpu, me) = (
        kz.cpu_seconds() - kz_cpu0,
        ru.cpu_seconds() - ru_cpu0,
        cpu_seconds_of("self") - me0,
    );

    // Fixed rate, for latency.
    let n_paced = rate * seconds;
    let paced_bodies = bodies_to(REMOTE, 2_000_000..2_000_000 + n_paced, size)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p_from = now_micros();
    paced(&load, paced_bodies, rate).await?;
    until_confirmed(&kz.base, (1000 + messages + n_paced) as f64).await?;
    let p_to = now_micros();
    let peak = (kz.memory_kib("VmHWM:"), ru.memory_kib("VmHWM:"));
    let received = counter(&ru.base, "ortaq_peer_received_total").await?;
    let (a, b) = (kz.terminate()?, ru.terminate()?);
    let full_lat = exchange_latencies(&kz.dir, from, to).await?;
    let paced_lat = exchange_latencies(&kz.dir, p_from, p_to).await?;
    let ours = Figures {
        rate: messages as f64 / elapsed.as_secs_f64(),
        p50: percentile(&full_lat, 0.5),
        p99: percentile(&full_lat, 0.99),
        paced_p50: percentile(&paced_lat, 0.5),
        paced_p99: percentile(&paced_lat, 0.99),
    };

    println!(
        "ortaq bench exchange: node KZ -> node RU over mutual TLS on loopback, {size} B e-documents, SQLite (WAL, synchronous=FULL) on both"
    );
    println!(
        "  each envelope: accepted and committed at KZ, signed (Ed25519), sent, signature and header rules checked at RU, committed at RU, signed RCV returned, verified and recorded at KZ"
    );
    println!(
        "  full load ({messages} envelopes, {concurrency} clients): {:.0} envelopes/s end to end ({:.2} s; submissions took {:.2} s)",
        ours.rate,
        elapsed.as_secs_f64(),
        submitted.as_secs_f64()
    );
    println!(
        "    accept -> RCV recorded at KZ: p50 {:.1} ms, p99 {:.1} ms ({} envelopes)",
        ours.p50,
        ours.p99,
        full_lat.len()
    );
    println!(
        "  fixed rate {rate}/s for {seconds} s: accept -> RCV recorded: p50 {:.1} ms, p99 {:.1} ms ({} envelopes)",
        ours.paced_p50,
        ours.paced_p99,
        paced_lat.len()
    );
    let per = |cpu: f64| cpu / messages as f64 * 1e6;
    println!(
        "  CPU per envelope (full load): KZ {:.0} us, RU {:.0} us, load generator {:.0} us; peak memory KZ {:.1} MiB, RU {:.1} MiB",
        per(kz_cpu),
        per(ru_cpu),
        per(me),
        peak.0 as f64 / 1024.0,
        peak.1 as f64 / 1024.0
    );
    println!("  RU took {received:.0} envelopes from KZ in all (warm-up included)");
    let ok = a.success() && b.success();

    if let Some(python) = rabbitmq {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/rabbitmq_baseline.py");
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args([
                "--messages",
                &messages.to_string(),
                "--concurrency",
                &concurrency.min(64).to_string(),
                "--size",
                &size.to_string(),
                "--rate",
                &rate.to_string(),
                "--seconds",
                &seconds.to_string(),
            ])
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            anyhow::bail!("the RabbitMQ baseline failed");
        }
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(k))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        };
        if let Some(r) = field("rate=") {
            println!(
                "  ratio at full load: ortaq {:.0}/s vs RabbitMQ {:.0}/s = {:.2}x (ortaq does two durable commits, two signatures and TLS per envelope; RabbitMQ one broker fsync)",
                ours.rate,
                r,
                ours.rate / r
            );
        }
        if let Some(p) = field("paced_p99_ms=") {
            println!(
                "  p99 at {rate}/s: ortaq {:.1} ms vs RabbitMQ {p:.1} ms",
                ours.paced_p99
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Lookups of the validation hook and imports of the largest shipped resources.
/// XMLDSig enveloped signing and verification of the shipped 5 KB sample, on this thread.
fn dsig_bench(docs: usize) -> anyhow::Result<ExitCode> {
    let dir = crate::processes::packages_dir(None);
    let sample = std::fs::read_to_string(dir.join("P.TS.01/samples/MSG.001.xml"))?;
    println!(
        "ortaq bench dsig: {} B P.TS.01 document, enveloped, exclusive C14N, SHA-256",
        sample.len()
    );
    let verifiers = dsig::Verifiers::standard();
    for (name, alg) in [
        ("ECDSA P-256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("Ed25519", &rcgen::PKCS_ED25519),
    ] {
        let key = rcgen::KeyPair::generate_for(alg)?;
        let cert = rcgen::CertificateParams::new(vec!["bench.test".into()])?.self_signed(&key)?;
        let signer = dsig::KeySigner::from_pkcs8(&key.serialize_der(), cert.der())?;
        let signed = dsig::sign_enveloped(&sample, &signer)?;
        let t = Instant::now();
        for _ in 0..docs {
            std::hint::black_box(dsig::sign_enveloped(&sample, &signer)?);
        }
        let s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..docs {
            std::hint::black_box(dsig::verify_enveloped(&signed, &verifiers)?);
        }
        let v = t.elapsed().as_secs_f64();
        println!(
            "  {name}: {:.0} signatures/s ({:.0} µs), {:.0} verifications/s ({:.0} µs) on one core",
            docs as f64 / s,
            s * 1e6 / docs as f64,
            docs as f64 / v,
            v * 1e6 / docs as f64
        );
    }
    // The TTP check: signature, chain to a CA of the trust list, validity and revocation.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_der = ca.self_signed(&ca_key)?.der().to_vec();
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert =
        rcgen::CertificateParams::new(vec!["signer.test".into()])?.signed_by(&key, &issuer)?;
    let signer = dsig::KeySigner::from_pkcs8(&key.serialize_der(), cert.der())?;
    let signed = dsig::sign_enveloped(&sample, &signer)?;
    let now = time::OffsetDateTime::now_utc();
    let list = ttp::TrustList {
        version: 1,
        issued: now,
        next_update: now + time::Duration::days(30),
        ttps: Vec::new(),
        revoked_nodes: Vec::new(),
        providers: Vec::new(),
        states: vec![ttp::StateEntry {
            segment: "KZ".into(),
            cas: vec![ca_der],
            algorithms: vec![dsig::ECDSA_SHA256.into()],
            crls: Vec::new(),
        }],
    };
    anyhow::ensure!(ttp::check(&signed, now, now, &list, &verifiers).valid());
    let t = Instant::now();
    for _ in 0..docs {
        std::hint::black_box(ttp::check(&signed, now, now, &list, &verifiers));
    }
    let c = t.elapsed().as_secs_f64();
    println!(
        "  TTP check, ECDSA P-256 (signature, chain to the trust list's CA, validity, revocation): {:.0} checks/s ({:.0} µs) on one core",
        docs as f64 / c,
        c * 1e6 / docs as f64
    );
    Ok(ExitCode::SUCCESS)
}

async fn tsa_bench(records: usize) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let pki = dir.path().join("pki");
    let now = time::OffsetDateTime::now_utc();
    trust::pki::init(&pki, &[], now)?;
    let (cert, key) = trust::pki::issue_tsa(&pki, envelope::Segment::Eec, now)?;
    let authority = tsa::Authority::from_pem(
        &std::fs::read_to_string(key)?,
        &std::fs::read_to_string(cert)?,
        tsa::DEFAULT_POLICY,
    )?;
    let trusted = vec![trust::pki::pem_to_der(&std::fs::read_to_string(
        trust::pki::root_cert_path(&pki),
    )?)?];
    let digests: Vec<[u8; 32]> = (0..records)
        .map(|i| tsa::sha256(&i.to_le_bytes()))
        .collect();
    println!("ortaq bench tsa: RFC 3161 tokens, ECDSA P-256, {records} records, one core");
    let single = records.min(20_000);
    let t = Instant::now();
    for d in &digests[..single] {
        std::hint::black_box(authority.stamp(d, None, now)?);
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "  one token per record: {:.0} records/s ({:.0} µs each)",
        single as f64 / e,
        e * 1e6 / single as f64
    );
    for batch in [16usize, 256, 4096] {
        let t = Instant::now();
        let mut last = Vec::new();
        for chunk in digests.chunks(batch) {
            last = tsa::batch::stamp_batch(&authority, chunk, now)?;
        }
        let e = t.elapsed().as_secs_f64();
        let st = last.last().context("no records")?;
        let d = &digests[(records - 1) / batch * batch + st.proof.index];
        tsa::batch::verify_batched(&st.token, d, &st.proof, &trusted)?;
        println!(
            "  batches of {batch:>4}: {:.0} records/s ({} tokens; the last record's path has {} steps)",
            records as f64 / e,
            records.div_ceil(batch),
            st.proof.path.len()
        );
    }
    // The node's batcher: callers arriving together share a token (batch_ms = 2).
    let cfg = node::config::TsaSection {
        key: trust::pki::tsa_files(&pki, envelope::Segment::Eec).1,
        cert: trust::pki::tsa_files(&pki, envelope::Segment::Eec).0,
        policy: None,
        batch_ms: 2,
    };
    let stamping = std::sync::Arc::new(
        node::stamping::Stamping::load(&cfg, None, node::system_clock())
            .map_err(anyhow::Error::msg)?,
    );
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for d in digests.iter().take(records.min(50_000)) {
        let (st, d) = (stamping.clone(), *d);
        set.spawn(async move { st.stamp(d).await });
    }
    let (mut n, mut tokens) = (0usize, std::collections::HashSet::new());
    while let Some(r) = set.join_next().await {
        let s = r?.map_err(anyhow::Error::msg)?;
        tokens.insert(s.token.as_ptr() as usize);
        n += 1;
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "  node batcher, {n} concurrent callers: {:.0} records/s ({} tokens)",
        n as f64 / e,
        tokens.len()
    );
    let token = authority.stamp(&digests[0], None, now)?;
    let n = single.min(5_000);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(tsa::verify(&token, &digests[0], None, &trusted)?);
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "  token verification (signature, ESS certificate, chain, key usage): {:.0}/s ({:.0} µs)",
        n as f64 / e,
        e * 1e6 / n as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// Validated documents per second on this thread (one core): the shipped sample of
/// P.TS.01.MSG.001 in the Commission's R.TR.TS.01.001 (the official XSDs, 4 products, 34
/// filling rules, 11 code-list lookups), valid and broken.
fn validate_bench(docs: usize) -> anyhow::Result<ExitCode> {
    let dir = crate::processes::packages_dir(None);
    let packages = process::package::load_all(&dir)?;
    let t = Instant::now();
    let v = edoc::Validator::new(&packages, edoc::Limits::default())
        .map_err(|p| anyhow::anyhow!("{}", p.0.join("; ")))?;
    let compiled = t.elapsed();
    let t = Instant::now();
    let idx = crate::nsi::load_shipped(&crate::nsi::shipped_dir(None))?;
    let loaded = t.elapsed();
    let sample = std::fs::read(dir.join("P.TS.01/samples/MSG.001.xml"))?;
    let broken = String::from_utf8(sample.clone())?
        .replacen(
            "<trsdo:ConformityDocKindCode>01<",
            "<trsdo:ConformityDocKindCode>certificate<",
            1,
        )
        .replacen(">850153<", ">123456<", 1)
        .replacen(
            "<csdo:DocValidityDate>2031-11-22",
            "<csdo:DocValidityDate>2020-01-01",
            1,
        )
        .into_bytes();
    println!(
        "ortaq bench validate: {} packages, schemas and rules compiled in {:.0} ms, reference data loaded in {:.0} ms",
        packages.len(),
        compiled.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    let ctx = edoc::Context {
        process: "P.TS.01",
        version: "1.0.1",
        message: "P.TS.01.MSG.001",
        ref_id: None,
        nsi: &idx,
        common: None,
        now: time::OffsetDateTime::now_utc(),
    };
    for (name, doc, expect) in [("valid", &sample, 0), ("broken (3 problems)", &broken, 3)] {
        let n = v.validate(doc, &ctx).diagnostics.len();
        anyhow::ensure!(n == expect, "{name}: {n} diagnostics, expected {expect}");
        for _ in 0..docs / 10 {
            std::hint::black_box(v.validate(doc, &ctx));
        }
        let t = Instant::now();
        for _ in 0..docs {
            std::hint::black_box(v.validate(doc, &ctx));
        }
        let e = t.elapsed().as_secs_f64();
        println!(
            "  {name}: {} B, {:.0} documents/s on one core ({:.1} µs each)",
            doc.len(),
            docs as f64 / e,
            e * 1e6 / docs as f64
        );
    }
    // Where the time goes: the schema alone, on the same document.
    let schema = edoc::xsd::Schema::compile(
        &dir.join("P.TS.01/xsd/official/EEC_R_TR_TS_01_ConformityDocsRegistryDetails_v1.0.1.xsd"),
    )
    .map_err(anyhow::Error::msg)?;
    let text = std::str::from_utf8(&sample)?;
    let t = Instant::now();
    for _ in 0..docs {
        std::hint::black_box(schema.validate(text));
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "  of which libxml2 parse + XSD: {:.1} µs per document",
        e * 1e6 / docs as f64
    );
    Ok(ExitCode::SUCCESS)
}

async fn nsi_bench(lookups: usize) -> anyhow::Result<ExitCode> {
    use nsi::format::{self, Format};
    let dir = crate::nsi::shipped_dir(None);
    let hs_bytes = std::fs::read(dir.join("hs.json"))?;
    let cn_bytes = std::fs::read(dir.join("cn.json"))?;
    println!("ortaq bench nsi: shipped data in {}", dir.display());

    // Import: parse, check everything, canonical form and hash; then publish into a store.
    for (name, bytes) in [("WCO.HS.2022", &hs_bytes), ("EU.CN.2023", &cn_bytes)] {
        let t = Instant::now();
        let read =
            format::read(bytes, Format::Json, None).map_err(|p| anyhow::anyhow!("{}", p[0]))?;
        anyhow::ensure!(read.check().is_empty(), "{name} has problems");
        let canonical = read.content.canonical();
        let sha = nsi::Content::sha256_of(&canonical);
        let checked = t.elapsed();
        let tmp = tempfile::tempdir()?;
        let store = store::Store::open(store::StoreConfig::new(store::Engine::Sqlite(
            tmp.path().join("node.db"),
        )))?;
        let t2 = Instant::now();
        store
            .nsi_publish(name, "resource", &sha, canonical, 0)
            .await?;
        let published = t2.elapsed();
        let t3 = Instant::now();
        let idx = node::reference::load(&store).await?;
        let loaded = t3.elapsed();
        store.close().await?;
        let n = idx.resource(name).map_or(0, |r| r.items().len());
        println!(
            "  import {name} ({n} items, {:.1} MB JSON): read and checked {:.0} ms, published {:.0} ms, loaded and indexed {:.0} ms",
            bytes.len() as f64 / 1e6,
            checked.as_secs_f64() * 1e3,
            published.as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3
        );
    }

    // The validation hook: is this code valid in this resource on this day? Half the codes
    // exist, half do not, in a fixed shuffled order.
    let idx = crate::nsi::load_shipped(&dir)?;
    let cn = idx
        .resource("EU.CN.2023")
        .context("EU.CN.2023 not shipped")?;
    let mut codes: Vec<String> = cn.items().iter().map(|i| i.code.clone()).collect();
    codes.extend(cn.items().iter().map(|i| format!("{}9", &i.code[..7])));
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    codes.shuffle(&mut rng);
    let day = time::OffsetDateTime::now_utc().date().to_julian_day();
    let t = Instant::now();
    let mut valid = 0usize;
    for i in 0..lookups {
        let code = &codes[i % codes.len()];
        if idx.is_valid("EU.CN.2023", code, day) == Some(true) {
            valid += 1;
        }
    }
    let el = t.elapsed();
    println!(
        "  is_valid(resource, code, day): {:.1} M lookups/s on one core ({lookups} lookups, {valid} valid, {:.0} ns each, no allocation)",
        lookups as f64 / el.as_secs_f64() / 1e6,
        el.as_nanos() as f64 / lookups as f64
    );
    let t = Instant::now();
    let n_search = 2000;
    for i in 0..n_search {
        let q = [
            "Қазақстан",
            "казахстан",
            "horses",
            "portable computer",
            "Belarus",
        ][i % 5];
        let r = if i % 5 < 2 || i % 5 == 4 {
            "P.CLS.019"
        } else {
            "WCO.HS.2022"
        };
        std::hint::black_box(idx.resource(r).map(|x| x.search(q, None, 10)));
    }
    println!(
        "  search (countries and HS, five queries in turn): {:.0} searches/s",
        n_search as f64 / t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
