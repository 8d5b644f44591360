//! `ortaq bench web`: the portal and the console under people's load. One node process (KZ,
//! SQLite) serving its pages with a registry of generated conformity documents (100,000 by
//! default; made here by a deterministic generator and labelled as generated, never real);
//! signed-in sessions reading pages and searching the registry at once, each pausing between
//! pages as a person reading does (`--think-ms 0`: none, the node saturated); then the whole registry
//! downloaded as CSV while the node's peak memory is watched. The baseline in the same run is
//! the same searches straight on the registry's store, without HTTP or pages.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use host::process::{NodeProcess, SENDER};
use rand::{Rng as _, SeedableRng as _};

use crate::measure::percentile;

const STATES: [&str; 5] = ["AM", "BY", "KZ", "KG", "RU"];
/// Generic product words the generator combines (no real product, maker or certificate).
const PRODUCTS: [&str; 16] = [
    "электродвигатели",
    "насосы",
    "кабели",
    "трансформаторы",
    "светильники",
    "выключатели",
    "счётчики",
    "вентиляторы",
    "обогреватели",
    "аккумуляторы",
    "инструмент",
    "игрушки",
    "обувь",
    "мебель",
    "упаковка",
    "краски",
];
const KINDS: [&str; 2] = ["сертификат соответствия", "декларация о соответствии"];
const STATUSES: [&str; 4] = ["01", "01", "02", "03"];
const LOGIN: &str = "bench";
const PASSWORD: &str = "bench password for the web benchmark";

/// Document `n` of the generated registry: the same for the same `n`, on every run.
fn generated(n: usize) -> (conformity::RegistryRecord, String) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let country = STATES[n % STATES.len()];
    let doc_id = format!("ГЕН {country}.{:07}/2026", n);
    let kind = KINDS[rng.gen_range(0..KINDS.len())].to_owned();
    let applicant = format!("Сгенерированный заявитель № {}", rng.gen_range(1..5000));
    let products: Vec<String> = (0..rng.gen_range(1..4))
        .map(|_| {
            format!(
                "{} модель {}",
                PRODUCTS[rng.gen_range(0..PRODUCTS.len())],
                rng.gen_range(1..1000)
            )
        })
        .collect();
    let code = format!("85{:08}", rng.gen_range(0..100_000_000));
    let search_text =
        format!("{doc_id} {kind} {applicant} {} {code}", products.join(" ")).to_lowercase();
    let record = conformity::RegistryRecord {
        doc_id: doc_id.clone(),
        country: country.into(),
        kind,
        status: STATUSES[rng.gen_range(0..STATUSES.len())].into(),
        submitted_by: format!("EAEU://{country}/CP/P.TS.01/P.TS.01.ACT.002"),
        updated_at: format!("2026-{:02}-{:02}T10:00:00Z", 1 + n % 11, 1 + n % 28),
        applicant,
        products: products.join("; "),
        start_date: format!("2026-{:02}-{:02}", 1 + n % 11, 1 + n % 28),
        valid_until: format!("2031-{:02}-{:02}", 1 + n % 11, 1 + n % 28),
        search_text,
    };
    let xml = format!("<generated xmlns=\"urn:ortaq:bench:generated\" doc=\"{n}\"/>");
    (record, xml)
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The pages' kinds of request, each timed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Home,
    Registry,
    Document,
    Console,
    Search,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Home => "home page",
            Kind::Registry => "registry page",
            Kind::Document => "document page",
            Kind::Console => "console overview",
            Kind::Search => "registry search",
        }
    }
}

/// Signs in over HTTP as a browser does: the form, its token, the password; the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let r = http.get(format!("{base}/ru/signin")).send().await?;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ortaq_kz_form="))
        .and_then(|c| c.split(';').next())
        .context("no form cookie")?
        .to_owned();
    let token = cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let r = http
        .post(format!("{base}/ru/signin"))
        .header("cookie", &cookie)
        .header("origin", base)
        .form(&[
            ("form", token.as_str()),
            ("login", LOGIN),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        r.status().as_u16() == 303,
        "sign-in answered {}",
        r.status()
    );
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ortaq_kz_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .context("no session cookie")
}

pub async fn run(
    documents: usize,
    sessions: usize,
    seconds: u64,
    think_ms: u64,
) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let mut cfg = host::process::config("KZ", SENDER)?;
    let web_port = host::process::free_port()?;
    cfg.web = Some(node::config::WebSection {
        listen: ([127, 0, 0, 1], web_port).into(),
        secure_cookies: true,
        public_url: None,
        portal: true,
    });
    let mut absolute = cfg.clone();
    absolute.data_dir = dir.path().join("data");
    std::fs::create_dir_all(&absolute.data_dir)?;

    // The registry and the account, before the node serves.
    let t = Instant::now();
    let registry = Arc::new(conformity::Registry::open(
        absolute.store_engine().for_app("conformity"),
    )?);
    let mut batch = Vec::with_capacity(2000);
    for n in 0..documents {
        batch.push(generated(n));
        if batch.len() == 2000 || n + 1 == documents {
            registry.put(&batch, None).await?;
            batch.clear();
        }
    }
    let fill = t.elapsed();
    let people = people::People::open(
        absolute.store_engine().for_app("people"),
        node::system_clock(),
        people::Policy::default(),
    )?;
    people
        .add(
            LOGIN,
            "Оператор нагрузочного теста",
            &[people::Role::Operator],
            PASSWORD,
        )
        .await?;
    people.close().await?;

    let mut node = NodeProcess::with_config(&std::env::current_exe()?, dir.path(), &cfg)?;
    node.start().await?;
    let base = format!("http://127.0.0.1:{web_port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(sessions)
        .build()?;
    let mut cookies = Vec::new();
    for _ in 0..sessions {
        cookies.push(sign_in(&http, &base).await?);
    }

    // The load: every session asks for pages in turn, with no pause, for `seconds`.
    let words: Vec<String> = PRODUCTS.iter().map(|p| p.to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, cookie) in cookies.into_iter().enumerate() {
        let (http, base, words) = (http.clone(), base.clone(), words.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
            let mut seen: Vec<(Kind, Duration, u16)> = Vec::new();
            let kinds = [
                Kind::Home,
                Kind::Registry,
                Kind::Document,
                Kind::Console,
                Kind::Search,
            ];
            let mut k = i;
            // People arrive spread over the first think time, not at one instant.
            if think_ms > 0 {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..think_ms))).await;
            }
            while Instant::now() < deadline {
                let kind = kinds[k % kinds.len()];
                k += 1;
                let path = match kind {
                    Kind::Home => "/ru/".to_owned(),
                    Kind::Registry => format!("/ru/registry?page={}", rng.gen_range(1..200)),
                    Kind::Document => format!(
                        "/ru/registry/document?id={}",
                        encode(&generated(rng.gen_range(0..documents)).0.doc_id)
                    ),
                    Kind::Console => "/ru/console".to_owned(),
                    Kind::Search => format!(
                        "/ru/registry?q={}&country={}",
                        encode(&format!(
                            "{} {}",
                            words[rng.gen_range(0..words.len())],
                            rng.gen_range(1..1000)
                        )),
                        STATES[rng.gen_range(0..STATES.len())]
                    ),
                };
                let t = Instant::now();
                let status = match http
                    .get(format!("{base}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                seen.push((kind, t.elapsed(), status));
                // A person reads a page before the next: half to one and a half times the
                // think time (none at all measures the node saturated).
                if think_ms > 0 {
                    let ms = rng.gen_range(think_ms / 2..=think_ms * 3 / 2);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
            seen
        }));
    }
    let mut by_kind: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    let mut bad = 0usize;
    let mut total = 0usize;
    for t in tasks {
        for (kind, d, status) in t.await? {
            total += 1;
            if status != 200 {
                bad += 1;
            }
            by_kind.entry(kind).or_default().push(d);
        }
    }
    let load_peak = node.memory_kib("VmHWM:");

    // The baseline: the same kind of search straight on the store, one at a time.
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut direct = Vec::new();
    for _ in 0..300 {
        let q = adapter::portal::RegistryQuery {
            text: Some(format!(
                "{} {}",
                words[rng.gen_range(0..words.len())],
                rng.gen_range(1..1000)
            )),
            country: Some(STATES[rng.gen_range(0..STATES.len())].into()),
            status: None,
            offset: 0,
            limit: 50,
        };
        let t = Instant::now();
        registry.search(q).await?;
        direct.push(t.elapsed());
    }
    direct.sort();
    registry.close().await?;

    // The whole registry as CSV, streamed: the node's peak memory during the download.
    let rss_before = node.memory_kib("VmRSS:");
    node.reset_peak_memory();
    let t = Instant::now();
    let mut r = http
        .get(format!("{base}/open-data/conformity-registry.csv"))
        .send()
        .await?;
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let download = t.elapsed();
    let csv_peak = node.memory_kib("VmHWM:");
    let status = node.terminate()?;

    println!(
        "ortaq bench web: one node (KZ, SQLite) serving its pages; a registry of {documents} generated conformity documents (filled in {:.1} s); {sessions} signed-in sessions for {seconds} s, each thinking {think_ms} ms (±50%) between pages",
        fill.as_secs_f64()
    );
    println!(
        "  {total} pages ({:.0}/s), {bad} not 200",
        total as f64 / seconds as f64
    );
    println!(
        "  {:<18} {:>8} {:>9} {:>9} {:>9}",
        "page", "count", "p50 ms", "p99 ms", "max ms"
    );
    let mut pages_p99 = 0f64;
    for (kind, mut v) in by_kind.clone() {
        v.sort();
        let p99 = percentile(&v, 0.99);
        if kind != Kind::Search {
            pages_p99 = pages_p99.max(p99);
        }
        println!(
            "  {:<18} {:>8} {:>9.1} {:>9.1} {:>9.1}",
            kind.name(),
            v.len(),
            percentile(&v, 0.5),
            p99,
            percentile(&v, 1.0)
        );
    }
    let search_p99 = by_kind
        .get(&Kind::Search)
        .map(|v| {
            let mut v = v.clone();
            v.sort();
            percentile(&v, 0.99)
        })
        .unwrap_or(0.0);
    println!(
        "  baseline, the same searches straight on the store: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&direct, 0.5),
        percentile(&direct, 0.99)
    );
    println!(
        "  targets: page p99 under 100 ms: {} ({pages_p99:.1} ms); search p99 under 50 ms: {} ({search_p99:.1} ms)",
        if pages_p99 < 100.0 { "met" } else { "NOT met" },
        if search_p99 < 50.0 { "met" } else { "NOT met" },
    );
    println!(
        "  CSV of the whole registry: {lines} lines, {:.1} MB in {:.2} s ({:.0} MB/s), streamed; node RSS {:.1} MiB before, peak {:.1} MiB during (peak under load {:.1} MiB)",
        bytes as f64 / 1e6,
        download.as_secs_f64(),
        bytes as f64 / 1e6 / download.as_secs_f64().max(1e-9),
        rss_before as f64 / 1024.0,
        csv_peak as f64 / 1024.0,
        load_peak as f64 / 1024.0
    );
    anyhow::ensure!(status.success(), "the node did not stop cleanly: {status}");
    Ok(ExitCode::SUCCESS)
}
