//! `ortaq bench submit`: a real node process on the embedded store, many concurrent ISs
//! submitting 2 KB e-documents over HTTP; prints accepted messages/s, latency percentiles, how
//! many submissions shared each commit, and the node's memory idle and under load.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use node::client::{AdapterClient, Outgoing};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Durable submissions per second on one node (SQLite, group commit).
    Submit {
        /// Messages to submit (after a warm-up of 1,000).
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Concurrent submitting clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Size of each e-document in bytes.
        #[arg(long, default_value_t = 2048)]
        size: usize,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Submit { messages, concurrency, size } => submit(messages, concurrency, size).await,
    }
}

const SENDER: &str = "EAEU://KZ/CA/conformity-body";
const RECIPIENT: &str = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002";

/// A node started as a child process, stopped with SIGTERM when dropped.
pub struct NodeProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl NodeProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes a node config for segment KZ hosting SENDER and RECIPIENT, issues a token for each,
/// starts the node and waits until it answers `/health`.
pub async fn start_node(dir: &Path) -> anyhow::Result<(NodeProcess, String, String)> {
    let port = free_port()?;
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "segment = \"KZ\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\n[[participants]]\naddress = \"{SENDER}\"\n\n[[participants]]\naddress = \"{RECIPIENT}\"\n"
        ),
    )?;
    let exe = std::env::current_exe()?;
    let token = |p: &str| -> anyhow::Result<String> {
        let out = std::process::Command::new(&exe)
            .args(["node", "token", "--config"])
            .arg(&config)
            .args(["--participant", p])
            .output()?;
        if !out.status.success() {
            bail!("token: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let (ts, tr) = (token(SENDER)?, token(RECIPIENT)?);
    let log = std::fs::File::create(dir.join("node.log"))?;
    let child = std::process::Command::new(&exe)
        .args(["node", "serve", "--config"])
        .arg(&config)
        .stderr(log)
        .spawn()?;
    let p = NodeProcess { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if reqwest::get(format!("{}/health", p.base)).await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node did not come up; see {}", dir.join("node.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((p, ts, tr))
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn document(size: usize, i: usize) -> String {
    let head = format!("<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:DocId>KZ-{i}</tr:DocId><tr:Text>");
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

async fn burst(client: &AdapterClient, n: usize, concurrency: usize, size: usize) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let m = outgoing(size, i);
                let t = Instant::now();
                c.send(&m).await?;
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
    let (mut node, ts, _tr) = start_node(dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(node.pid(), "VmRSS:");
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let client = AdapterClient::with_http(http, &node.base, &ts);
    burst(&client, 1000, concurrency, size).await.context("warm-up")?;
    let before = reqwest::get(format!("{}/metrics", node.base)).await?.text().await?;

    let t = Instant::now();
    let mut lat = burst(&client, messages, concurrency, size).await?;
    let elapsed = t.elapsed();
    let after = reqwest::get(format!("{}/metrics", node.base)).await?.text().await?;
    let peak = rss_kib(node.pid(), "VmHWM:");
    lat.sort();
    let jobs = metric(&after, "ortaq_store_commit_jobs_total") - metric(&before, "ortaq_store_commit_jobs_total");
    let batches = metric(&after, "ortaq_store_commit_batches_total") - metric(&before, "ortaq_store_commit_batches_total");
    let status = node.terminate()?;

    println!("ortaq bench submit: {messages} messages of {size} B, {concurrency} concurrent clients, one node (SQLite, WAL, synchronous=FULL)");
    println!("  accepted (durably committed) : {:.0} messages/s over {:.2} s", messages as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());
    println!("  latency                      : p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 1.0));
    println!("  group commit                 : {:.1} store jobs per commit ({jobs:.0} jobs, {batches:.0} commits, incl. local delivery)", if batches > 0.0 { jobs / batches } else { 0.0 });
    println!("  node memory                  : idle {:.1} MiB, peak {:.1} MiB", idle as f64 / 1024.0, peak as f64 / 1024.0);
    println!("  graceful stop (SIGTERM)      : {}", if status.success() { "clean exit" } else { "FAILED" });
    println!("  (clients and node share this machine's cores)");
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
