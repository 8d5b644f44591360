//! `ortaq bench abuse`: one node process under the attacks of the security review, each in
//! turn, while a legitimate client asks `/health` every 10 ms. For each attack it prints what
//! the attackers got, `/health` latency beside the idle node's, the node's peak memory during
//! the attack and its resident memory a few seconds after.
//!
//! The attacks: SOAP bodies of `]]>` just under the size limit (once answered with a Fault that
//! quoted them whole, five times their size); signed-document bodies of 900,000 empty elements
//! to the trusted third party (once 1.4 s and 200 MB each, on an unbounded pool); a flood of
//! reference-data exports and diffs of HS 2022 from 16 clients without a token.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use host::process::{NodeProcess, SENDER};

/// What one attack did to the node.
struct Outcome {
    answers: std::collections::BTreeMap<u16, usize>,
    health: Vec<Duration>,
    peak_mib: f64,
    after_mib: f64,
    seconds: f64,
}

pub async fn run(parallel: usize, rounds: usize, flood_secs: u64) -> anyhow::Result<ExitCode> {
    let root = tempfile::Builder::new().prefix("ortaq-abuse-").tempdir()?;
    let space = host::trustspace::build(
        &root.path().join("trust"),
        &["KZ", "BY"],
        time::OffsetDateTime::now_utc(),
    )?;
    let cfg = node::config::NodeConfig {
        nsi: Some(Default::default()),
        ttp: Some(space.ttp.clone()),
        ..host::process::config("EEC", &SENDER.replace("KZ", "EEC"))?
    };
    let dir = root.path().join("node");
    let mut node = NodeProcess::with_config(&std::env::current_exe()?, &dir, &cfg)?;
    publish_two_hs_versions(&node.config).await?;
    let token = node.token(&SENDER.replace("KZ", "EEC"))?;
    node.start().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()?;
    let base = node.base.clone();

    println!(
        "ortaq bench abuse: one node process ({} cores here), default [limits], a client asking /health every 10 ms",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let idle_rss = node.memory_kib("VmRSS:") as f64 / 1024.0;
    let idle = attack(&node, &http, &base, 0, 1, || None).await?;
    report("idle (no attack, 3 s)", &idle, idle_rss);

    // `]]>` cannot appear in character data: each one would have been split when quoted.
    let cdata = bytes::Bytes::from("]]>".repeat((16 * 1024 * 1024 - 64) / 3));
    let soap = format!("{base}/v1/soap");
    let o = attack(&node, &http, &base, parallel * rounds, parallel, || {
        Some(
            http.post(&soap)
                .bearer_auth(&token)
                .header("content-type", "application/soap+xml")
                .body(cdata.clone()),
        )
    })
    .await?;
    report(
        &format!(
            "{parallel} x {rounds} SOAP bodies of 16 MB of ']]>' (the Fault quotes at most 8 KiB)"
        ),
        &o,
        idle_rss,
    );

    let mut doc = String::with_capacity(3_700_000);
    doc.push_str("<a xmlns=\"urn:x\">");
    doc.push_str(&"<b/>".repeat(900_000));
    doc.push_str("</a>");
    let doc = bytes::Bytes::from(doc);
    let ttp = format!("{base}/v1/ttp/receipts");
    let o = attack(&node, &http, &base, parallel * rounds, parallel, || {
        Some(
            http.post(&ttp)
                .bearer_auth(&token)
                .header("content-type", "application/xml")
                .body(doc.clone()),
        )
    })
    .await?;
    report(
        &format!(
            "{parallel} x {rounds} documents of 900,000 elements (3.6 MB) to the trusted third party"
        ),
        &o,
        idle_rss,
    );

    // Cold: the first export and diff of HS, each decoded and written once.
    for path in [
        "/v1/nsi/WCO.HS.2022/diff?from=1&to=2",
        "/v1/nsi/WCO.HS.2022/versions/2?format=xml",
    ] {
        let t = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await?;
        let (status, len) = (r.status(), r.bytes().await?.len());
        println!(
            "  first {path}: {status}, {:.1} MB in {:.0} ms",
            len as f64 / 1e6,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let paths: Vec<String> = [
        "/v1/nsi/WCO.HS.2022/diff?from=1&to=2",
        "/v1/nsi/WCO.HS.2022/diff?from=2&to=1",
        "/v1/nsi/WCO.HS.2022/versions/1?format=json",
        "/v1/nsi/WCO.HS.2022/versions/2?format=csv",
        "/v1/nsi/WCO.HS.2022/versions/2?format=xml",
    ]
    .iter()
    .map(|p| format!("{base}{p}"))
    .collect();
    let next = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(flood_secs);
    let o = attack(&node, &http, &base, usize::MAX, 16, || {
        (Instant::now() < deadline).then(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            http.get(&paths[i % paths.len()])
        })
    })
    .await?;
    report(
        &format!(
            "16 clients for {flood_secs} s: HS 2022 diffs and exports, no token, no If-None-Match"
        ),
        &o,
        idle_rss,
    );
    let status = node.terminate()?;
    println!(
        "  graceful stop (SIGTERM)          : {}",
        if status.success() {
            "clean exit"
        } else {
            "FAILED"
        }
    );
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// HS 2022 as shipped (version 1) and with its last 50 codes gone and one renamed (version 2),
/// published into the node's store before it starts.
async fn publish_two_hs_versions(config: &std::path::Path) -> anyhow::Result<()> {
    let cfg = node::NodeConfig::load(config)?;
    let store = store::Store::open(store::StoreConfig::new(cfg.store_engine()))?;
    let shipped = std::fs::read(crate::nsi::shipped_dir(None).join("hs.json"))?;
    let mut v2: serde_json::Value = serde_json::from_slice(&shipped)?;
    let items = v2["items"].as_array_mut().context("hs.json has no items")?;
    items.truncate(items.len() - 50);
    items[100]["names"]["en"] = "Renamed for the benchmark".into();
    let v2 = serde_json::to_vec(&v2)?;
    for bytes in [&shipped, &v2] {
        let idx = node::reference::load(&store).await?;
        node::reference::import(
            &store,
            &idx,
            bytes,
            nsi::format::Format::Json,
            None,
            false,
            store::system_micros(),
        )
        .await?;
    }
    store.close().await?;
    Ok(())
}

/// Runs `total` requests made by `make` (until it gives None), `parallel` at once, while asking `/health` every 10 ms; then waits 3 s and reads the node's memory.
async fn attack(
    node: &NodeProcess,
    http: &reqwest::Client,
    base: &str,
    total: usize,
    parallel: usize,
    make: impl Fn() -> Option<reqwest::RequestBuilder> + Sync,
) -> anyhow::Result<Outcome> {
    node.reset_peak_memory();
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (done, http, url) = (done.clone(), http.clone(), format!("{base}/health"));
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                if http.get(&url).send().await.is_ok() {
                    lat.push(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lat
        })
    };
    let started = Instant::now();
    let answers = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let sent = AtomicUsize::new(0);
    if total == 0 {
        tokio::time::sleep(Duration::from_secs(3)).await;
    } else {
        let one = || async {
            while sent.fetch_add(1, Ordering::Relaxed) < total {
                let Some(req) = make() else { break };
                let status = match req.send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                *answers.lock().unwrap().entry(status).or_insert(0) += 1;
            }
        };
        futures_join_all((0..parallel).map(|_| one())).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_mib = node.memory_kib("VmHWM:") as f64 / 1024.0;
    done.store(true, Ordering::Relaxed);
    let mut health = prober.await?;
    health.sort();
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(Outcome {
        answers: answers.into_inner().unwrap(),
        health,
        peak_mib,
        after_mib: node.memory_kib("VmRSS:") as f64 / 1024.0,
        seconds,
    })
}

/// Polls every future to its end, on this task.
async fn futures_join_all<F: std::future::Future<Output = ()>>(fs: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = fs.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

fn report(what: &str, o: &Outcome, idle_rss: f64) {
    let ms = |p: f64| crate::measure::percentile(&o.health, p);
    println!("  {what}");
    if !o.answers.is_empty() {
        let answers: Vec<String> = o
            .answers
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("{n} x no answer")
                } else {
                    format!("{n} x {s}")
                }
            })
            .collect();
        println!(
            "    answers                        : {} in {:.1} s",
            answers.join(", "),
            o.seconds
        );
    }
    println!(
        "    /health (n={:<5})               : p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        o.health.len(),
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    println!(
        "    node memory                    : peak {:.0} MiB, {:.0} MiB 3 s after (idle {:.0} MiB)",
        o.peak_mib, o.after_mib, idle_rss
    );
}
