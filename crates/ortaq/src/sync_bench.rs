//! `ortaq bench sync`: the synchronous adapter's round trip across the federation. Three node
//! processes (KZ, the EEC relay, RU) over mutual TLS; an IS at KZ asks `POST /v1/exchange` at a
//! fixed rate, an IS at RU answers every request from its inbox (long poll), and the answer
//! comes back to KZ: KZ IS → KZ → EEC → RU → RU IS → RU → EEC → KZ → KZ IS. Beside it, in the
//! same run, the same round trip the asynchronous way (submit, then long-poll one's own inbox
//! for the answer), which is what an IS without the synchronous adapter does.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter::Adapter as _;
use adapter::http::HttpAdapter;
use envelope::Segment;
use host::process::NodeProcess;

use crate::measure::percentile;
use node::config::{FederationSection, NodeConfig};

const ASKER: &str = "EAEU://KZ/CP/P.ZZ.01/P.ZZ.01.ACT.001";
const ANSWERER: &str = "EAEU://RU/CP/P.ZZ.01/P.ZZ.01.ACT.002";

/// A P.ZZ.01 question (TRN.002, question-response) or its answer.
fn message(to: &str, code: &str, relates_to: Option<String>, i: usize) -> adapter::Submission {
    adapter::Submission {
        to: to.into(),
        process: "P.ZZ.01".into(),
        version: "1.0.0".into(),
        procedure: "P.ZZ.01.PRC.001".into(),
        transaction: "P.ZZ.01.TRN.002".into(),
        message: code.into(),
        relates_to,
        body: format!(
            "<z:TestDoc xmlns:z=\"urn:ortaq:R:ZZ:ZZ:01:TestDoc:v1.0.0\" xmlns:csdo=\"urn:EEC:M:SimpleDataObjects:v0.4.12\"><csdo:EDocCode>R.ZZ.ZZ.01.001</csdo:EDocCode><csdo:EDocId>{}</csdo:EDocId><csdo:EDocDateTime>2026-11-23T10:00:00+03:00</csdo:EDocDateTime><z:Text>{i}</z:Text></z:TestDoc>",
            uuid::Uuid::new_v4()
        ),
        ..Default::default()
    }
}

pub async fn run(rate: usize, seconds: usize) -> anyhow::Result<ExitCode> {
    let root = tempfile::Builder::new().prefix("ortaq-sync-").tempdir()?;
    let segs: Vec<Segment> = ["EEC", "KZ", "RU"]
        .iter()
        .map(|s| Segment::parse(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    let pki = root.path().join("pki");
    trust::pki::init(&pki, &segs, time::OffsetDateTime::now_utc())?;
    let addrs = segs
        .iter()
        .map(|s| Ok((*s, ([127, 0, 0, 1], host::process::free_port()?).into())))
        .collect::<anyhow::Result<std::collections::BTreeMap<_, std::net::SocketAddr>>>()?;
    let mut nodes = Vec::new();
    for (seg, participant) in segs.iter().zip(["EAEU://EEC/CA/none", ASKER, ANSWERER]) {
        let cfg = NodeConfig {
            federation: FederationSection::star(&pki, *seg, segs[0], &addrs),
            ..host::process::config(seg.as_str(), participant)?
        };
        let dir = root.path().join(seg.as_str());
        nodes.push((
            participant,
            NodeProcess::with_config(&std::env::current_exe()?, &dir, &cfg)?,
        ));
    }
    let mut tokens = Vec::new();
    for (participant, n) in &nodes {
        tokens.push(n.token(participant)?);
    }
    for (_, n) in nodes.iter_mut() {
        n.start().await?;
    }
    let (kz, ru) = (&nodes[1].1, &nodes[2].1);
    let asker = HttpAdapter::new(&kz.base, &tokens[1]);
    let answerer = HttpAdapter::new(&ru.base, &tokens[2]);
    println!(
        "ortaq bench sync: KZ IS -> KZ -> EEC -> RU -> RU IS and back, three node processes over mutual TLS, {rate} requests/s for {seconds} s each way"
    );

    // RU's IS answers every question it finds, as long as the run lasts.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let responder = {
        let (answerer, stop) = (answerer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut after = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(page) = answerer.inbox(after, 100, 1).await else {
                    continue;
                };
                after = page.cursor;
                for q in page.messages {
                    let reply = message(ASKER, "P.ZZ.01.MSG.004", Some(q.message_id.clone()), 0);
                    let _ = answerer.send(&reply).await;
                    let _ = answerer.ack(&q.message_id).await;
                }
            }
        })
    };

    // Warm-up: connections and caches on every hop.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    let exchange = |i: usize| {
        let r = client
            .post(format!("{}/v1/exchange?wait=30", kz.base))
            .bearer_auth(&tokens[1])
            .json(&message(ANSWERER, "P.ZZ.01.MSG.003", None, i))
            .send();
        async move {
            let t = Instant::now();
            let ok = match r.await {
                Ok(r) => r.status().as_u16() == 200,
                Err(_) => false,
            };
            (ok, t.elapsed())
        }
    };
    for i in 0..20 {
        exchange(i).await;
    }

    let paced = |n: usize| async move {
        let mut tasks = Vec::with_capacity(n);
        let start = tokio::time::Instant::now();
        for i in 0..n {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64)).await;
            tasks.push(tokio::spawn(exchange(i)));
        }
        let mut lat = Vec::new();
        let mut failed = 0;
        for t in tasks {
            match t.await {
                Ok((true, d)) => lat.push(d),
                _ => failed += 1,
            }
        }
        lat.sort();
        (lat, failed)
    };
    let n = rate * seconds;
    let (sync_lat, sync_failed) = paced(n).await;

    // The asynchronous way: submit, then long-poll one's own inbox until the answer is there.
    let mut async_lat = Vec::new();
    let mut after = asker.inbox(0, 1000, 0).await?.cursor;
    let t_all = Instant::now();
    for i in 0..(n / 10).max(10) {
        let t = Instant::now();
        let sent = asker
            .send(&message(ANSWERER, "P.ZZ.01.MSG.003", None, i))
            .await?;
        'wait: loop {
            let page = asker.inbox(after, 100, 30).await?;
            after = page.cursor;
            for m in &page.messages {
                if m.envelope.contains(&sent.message_id) {
                    break 'wait;
                }
            }
        }
        async_lat.push(t.elapsed());
    }
    let async_secs = t_all.elapsed().as_secs_f64();
    async_lat.sort();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = responder.await;

    println!(
        "  POST /v1/exchange at {rate}/s : {} answered, {sync_failed} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sync_lat.len(),
        percentile(&sync_lat, 0.5),
        percentile(&sync_lat, 0.99),
        percentile(&sync_lat, 1.0)
    );
    println!(
        "  submit + inbox long poll (one at a time, {} round trips in {async_secs:.1} s): p50 {:.1} ms, p99 {:.1} ms",
        async_lat.len(),
        percentile(&async_lat, 0.5),
        percentile(&async_lat, 0.99)
    );
    println!("  (all three nodes and both ISs share this machine's cores)");
    let mut clean = true;
    for (_, n) in nodes.iter_mut() {
        clean &= n.terminate()?.success();
    }
    Ok(if clean && sync_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
