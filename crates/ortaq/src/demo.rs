//! `ortaq demo`: the federation on one machine. A node for the Commission (EEC) and for each
//! member state (AM, BY, KZ, KG, RU), each with its own store, keys and ports, exchanging over
//! mutual TLS with signed envelopes, national nodes reaching each other through the EEC relay,
//! every node enforcing the shipped process packages.
//!
//! First the Commission's node publishes the shipped reference data (countries, currencies,
//! languages, the Harmonized System) and every national node fetches and verifies it. Then
//! P.TS.01 end to end with the built-in components: every state's submitter registers a
//! certificate with the Commission's registry keeper (PRS, then an R.006 processing result);
//! Belarus suspends its certificate and Armenia tries to change one that does not exist; Russia
//! queries Kazakhstan's; Kyrgyzstan's document with broken filling rules is refused by the EEC
//! node with an ERR listing every problem. Then a message breaking a Decision No. 5 rule is
//! refused at once; Kazakhstan's registry sends to Russia's through the EEC relay (a retry is
//! recognised as a duplicate, and Russia checks that Kazakhstan's signature survived the
//! relay); a message to a participant that does not exist comes back as an ERR signal; finally
//! every node's message log is verified.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter::http::HttpAdapter;
use adapter::{Adapter, AdapterError, Submission};
use anyhow::{Context as _, bail};
use conformity::sample::doc_id;
use envelope::{Origin, ParseOptions, Segment, Signal, SignalKind};
use node::Node;
use node::config::{
    FederationSection, LimitsSection, NodeConfig, NsiSection, ParticipantConfig, ProcessesSection,
    StoreSection, TsaSection,
};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Exit after the exchange, with status 0 only if every message was delivered exactly once.
    #[arg(long)]
    once: bool,
    /// Adapter API port of the first node; the others take the next five, the federation
    /// listeners the six after those, and the pages the six after those.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Folder for the nodes' stores, keys and the federation PKI (a temporary folder if absent).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const SEGMENTS: [&str; 6] = ["EEC", "AM", "BY", "KZ", "KG", "RU"];

fn querier(seg: &str) -> String {
    format!("EAEU://{seg}/CP/P.TS.01/P.TS.01.ACT.003")
}

fn participants(seg: &str) -> (String, String) {
    if seg == "EEC" {
        (
            "EAEU://EEC/CA/secretariat".into(),
            "EAEU://EEC/CP/P.TS.01/P.ACT.001".into(),
        )
    } else {
        (
            format!("EAEU://{seg}/CA/conformity-body"),
            format!("EAEU://{seg}/CP/P.TS.01/P.TS.01.ACT.002"),
        )
    }
}

/// A certificate issued in `seg`: the shipped P.TS.01 sample with that state's country code,
/// its own document number and a fresh EDocId.
fn certificate(seg: &str, n: u32) -> String {
    conformity::sample::certificate(&crate::processes::packages_dir(None), seg, n)
        .unwrap_or_default()
}

fn message(to: &str, body: String) -> Submission {
    Submission {
        message_id: Some(format!("urn:uuid:{}", uuid::Uuid::new_v4())),
        ..conformity::sample::registration(to, body)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One running node and its two ISs' clients.
struct Member {
    seg: &'static str,
    node: Arc<Node>,
    body: String,
    registry: String,
    ib: HttpAdapter,
    ir: HttpAdapter,
    /// The querying authority (P.TS.01.ACT.003); none at the EEC node.
    iq: Option<HttpAdapter>,
}

/// Every message the demo sent, and how often its recipient saw it.
#[derive(Default)]
struct Tally {
    sent: BTreeMap<String, String>,
    seen: HashMap<String, usize>,
    problems: Vec<String>,
}

impl Tally {
    fn sent(&mut self, id: &str, what: String) {
        self.sent.insert(id.to_owned(), what);
    }

    fn delivered_once(&self) -> usize {
        self.sent
            .keys()
            .filter(|id| self.seen.get(*id) == Some(&1))
            .count()
    }
}

/// Takes one message from `who`'s inbox (long poll), checks it, acknowledges it.
async fn receive(
    c: &HttpAdapter,
    who: &str,
    tally: &mut Tally,
) -> anyhow::Result<adapter::InboxMessage> {
    let page = c.inbox(0, 10, 20).await?;
    let [m] = page.messages.as_slice() else {
        bail!(
            "{who}'s inbox holds {} messages, expected 1",
            page.messages.len()
        );
    };
    envelope::parse(m.envelope.as_bytes(), &ParseOptions::new(Origin::Platform))
        .with_context(|| format!("the envelope delivered to {who} does not parse"))?;
    c.ack(&m.message_id).await?;
    *tally.seen.entry(m.message_id.clone()).or_default() += 1;
    Ok(m.clone())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let tmp;
    let kept = args.dir.is_some();
    let dir = match args.dir {
        Some(d) => d,
        None => {
            tmp = tempfile::Builder::new().prefix("ortaq-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    println!("ortaq demo: the EAEU integrated information system on one machine");
    println!("data folder: {}\n", dir.display());

    let segs: Vec<Segment> = SEGMENTS
        .iter()
        .map(|s| Segment::parse(s))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let pki = dir.join("pki");
    if !trust::pki::root_cert_path(&pki).exists() {
        let now = time::OffsetDateTime::now_utc();
        trust::pki::init(&pki, &segs, now)?;
        trust::pki::issue_tsa(&pki, segs[0], now)?;
        println!(
            "federation PKI created in {}: a root, and per node a TLS and a signing certificate",
            pki.display()
        );
    }
    // Test keys made for this run, in a folder of their own (keys are never overwritten).
    let run_id = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let fed_port = |i: usize| args.base_port + 6 + i as u16;
    let web_port = |i: usize| args.base_port + 12 + i as u16;
    // Every node's pages are an identity provider of cross-border sign-in the list names.
    let providers = SEGMENTS
        .iter()
        .enumerate()
        .map(|(i, s)| ttp::IdentityProvider {
            segment: s.to_string(),
            issuer: format!("http://127.0.0.1:{}", web_port(i)),
        })
        .collect();
    let trust_space = host::trustspace::build_with(
        &dir.join("trust").join(run_id.to_string()),
        &SEGMENTS[1..],
        providers,
        time::OffsetDateTime::now_utc(),
    )?;
    // One password for this run's demo accounts, new each run, printed with them.
    let demo_password = {
        use base64::Engine as _;
        let mut b = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let addrs: BTreeMap<Segment, std::net::SocketAddr> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, ([127, 0, 0, 1], fed_port(i)).into()))
        .collect();
    let hub = segs[0];

    let packages = crate::processes::packages_dir(None)
        .canonicalize()
        .context("the process packages (processes/) are missing")?;
    let http = reqwest::Client::new();
    let mut members = Vec::new();
    let mut running = Vec::new();
    let mut tokens_file = String::new();
    for (i, seg) in SEGMENTS.iter().enumerate() {
        let port = args.base_port + i as u16;
        let (body, registry) = participants(seg);
        let cfg = NodeConfig {
            segment: seg.to_string(),
            listen: ([127, 0, 0, 1], port).into(),
            data_dir: dir.join(seg),
            store: StoreSection::default(),
            participants: vec![
                ParticipantConfig {
                    address: body.clone(),
                    name: "conformity body IS".into(),
                },
                ParticipantConfig {
                    address: registry.clone(),
                    name: if *seg == "EEC" {
                        "registry keeper (built-in)".into()
                    } else {
                        "national submitter (built-in)".into()
                    },
                },
            ]
            .into_iter()
            .chain((*seg != "EEC").then(|| ParticipantConfig {
                address: querier(seg),
                name: "querying authority".into(),
            }))
            .collect(),
            limits: LimitsSection::default(),
            checkpoint_every: 1000,
            // National nodes have the EEC's time-stamp authority stamp their log checkpoints.
            federation: FederationSection::star(&pki, segs[i], hub, &addrs).map(|f| {
                FederationSection {
                    timestamps_from: (i != 0).then(|| "EEC".into()),
                    ..f
                }
            }),
            delivery: Default::default(),
            nsi: Some(if *seg == "EEC" {
                NsiSection {
                    subscribers: SEGMENTS[1..]
                        .iter()
                        .map(|s| format!("EAEU://{s}/SR/nsi"))
                        .collect(),
                    ..Default::default()
                }
            } else {
                NsiSection {
                    publisher: Some("EAEU://EEC/SR/nsi".into()),
                    refresh_secs: 1,
                    ..Default::default()
                }
            }),
            processes: Some(ProcessesSection {
                dir: packages.clone(),
                validators: 1,
            }),
            // The EEC node publishes the trust list; every national node fetches it through
            // the gateway and keeps the last one that verified.
            ttp: Some(if *seg == "EEC" {
                node::config::TtpSection {
                    subscribers: SEGMENTS[1..]
                        .iter()
                        .map(|s| format!("EAEU://{s}/SR/trust"))
                        .collect(),
                    ..trust_space.ttp.clone()
                }
            } else {
                node::config::TtpSection {
                    trust_list: dir.join(seg).join("trust-list.xml"),
                    trust_list_signer: trust_space.ttp.trust_list_signer.clone(),
                    key: None,
                    cert: None,
                    subscribers: Vec::new(),
                    publisher: Some("EAEU://EEC/SR/trust".into()),
                    refresh_secs: 60,
                }
            }),
            tsa: (*seg == "EEC").then(|| {
                let (cert, key) = trust::pki::tsa_files(&pki, hub);
                TsaSection {
                    key,
                    cert,
                    policy: None,
                    batch_ms: 2,
                }
            }),
            tls: None,
            signal_namespace: None,
            // Every gateway reports its diagnostic journal each second; the EEC node keeps them.
            journal: Some(node::config::JournalSection {
                collector: (*seg != "EEC").then(|| "EAEU://EEC/SR/journal".to_owned()),
                report_secs: 1,
            }),
            queue: None,
            web: Some(node::config::WebSection {
                listen: ([127, 0, 0, 1], web_port(i)).into(),
                secure_cookies: true,
                public_url: None,
                portal: *seg == "EEC",
            }),
        };
        std::fs::create_dir_all(&cfg.data_dir)?;
        write_config(&cfg, &cfg.data_dir.join("node.toml"))?;
        demo_accounts(&cfg, seg, &demo_password).await?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("port {port} is taken; choose another with --base-port"))?;
        if std::net::TcpListener::bind(addrs[&segs[i]]).is_err() {
            bail!(
                "port {} is taken; choose another with --base-port",
                fed_port(i)
            );
        }
        let node = Node::open(cfg, node::system_clock())?;
        if *seg == "EEC" {
            publish_reference_data(&node).await?;
        }
        let served = host::run(node.clone(), listener).await?;
        let t_body = node.issue_token(&body, "demo").await?;
        let t_reg = node.issue_token(&registry, "demo").await?;
        let _ = writeln!(
            tokens_file,
            "{seg}\t{body}\t{t_body}\n{seg}\t{registry}\t{t_reg}"
        );
        let t_q = if *seg == "EEC" {
            None
        } else {
            let t = node.issue_token(&querier(seg), "demo").await?;
            let _ = writeln!(tokens_file, "{seg}\t{}\t{t}", querier(seg));
            Some(t)
        };
        running.push(served);
        let role = if *seg == "EEC" {
            "integration segment, relay"
        } else {
            "national segment"
        };
        println!(
            "  node {seg:<3} adapter API http://127.0.0.1:{port}  federation https://{}:{}  pages http://127.0.0.1:{}/ ({role})",
            transport::node_host(segs[i]),
            fed_port(i),
            web_port(i)
        );
        let base = format!("http://127.0.0.1:{port}");
        members.push(Member {
            seg,
            node,
            ib: HttpAdapter::with_http(http.clone(), &base, &t_body),
            ir: HttpAdapter::with_http(http.clone(), &base, &t_reg),
            iq: t_q.map(|t| HttpAdapter::with_http(http.clone(), &base, &t)),
            body,
            registry,
        });
    }
    let tokens_path = dir.join("tokens.txt");
    if tokens_path.exists() {
        // A re-run with --dir issues new tokens; the old list is stale.
        std::fs::remove_file(&tokens_path)?;
    }
    trust::files::write_private(&tokens_path, tokens_file.as_bytes())?;
    println!(
        "  people sign in to the pages as operator (every node), analyst (EEC), officer and business (each state), password {demo_password}"
    );
    // The trust list, through the gateway to every national node.
    let t = Instant::now();
    let deadline = t + Duration::from_secs(30);
    loop {
        let versions: Vec<Option<u64>> = members
            .iter()
            .map(|m| {
                m.node
                    .trust()
                    .and_then(|t| t.current().ok())
                    .map(|l| l.version)
            })
            .collect();
        if versions.iter().all(|v| *v == Some(1)) {
            println!(
                "  trust list version 1 (signed by the Commission's trust-list key) held by all {} nodes after {}",
                versions.len(),
                ms(t.elapsed())
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("the trust list did not reach every node: {versions:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!();

    let mut tally = Tally::default();
    let started = Instant::now();
    if let Err(e) = reference_data(&members, &http, args.base_port).await {
        tally.problems.push(format!("reference data: {e:#}"));
    }
    let (eec, _) = members.split_first().context("no nodes")?;
    // The Commission's registry keeper: a built-in IS on the EEC node's adapter API.
    let package = process::Package::load(&packages.join("P.TS.01"))?;
    // The EEC node serves the portal, which opened the registry; the keeper writes that one.
    let registry_db = running[0]
        .registry()
        .context("the EEC node serves no portal")?;
    let eec_node = eec.node.clone();
    let keeper = conformity::RegistryKeeper::new(
        eec.ir.clone(),
        package.clone(),
        registry_db.clone(),
        Arc::new(move || eec_node.reference()),
        eec.node.clock(),
    )?;
    let (handled_tx, mut handled_rx) = tokio::sync::mpsc::unbounded_channel();
    let keeper_task = tokio::spawn(keeper.run(running[0].stopping(), Some(handled_tx)));
    if let Err(e) = p_ts_01(
        &members,
        &package,
        &registry_db,
        &mut handled_rx,
        &mut tally,
    )
    .await
    {
        tally.problems.push(format!("P.TS.01: {e:#}"));
    }
    if let Err(e) = signed_documents(
        &members,
        &package,
        &trust_space,
        (&dir, kept),
        &mut handled_rx,
        &mut tally,
    )
    .await
    {
        tally.problems.push(format!("signed documents: {e:#}"));
    }
    if let Some(eec) = members.first()
        && let Err(e) = decision5_refusal(&members[3], eec).await
    {
        tally.problems.push(format!("KZ: {e:#}"));
    }
    let by_seg = |s: &str| members.iter().find(|m| m.seg == s);
    if let (Some(kz), Some(ru)) = (by_seg("KZ"), by_seg("RU"))
        && let Err(e) = across_the_relay(kz, ru, &pki, &mut tally).await
    {
        tally.problems.push(format!("KZ -> RU: {e:#}"));
    }
    if let Some(by) = by_seg("BY")
        && let Err(e) = undeliverable(by, &mut tally).await
    {
        tally.problems.push(format!("BY: {e:#}"));
    }
    if let Err(e) = journals(&members).await {
        tally.problems.push(format!("diagnostic journals: {e:#}"));
    }
    if let Err(e) = portal(web_port(0), web_port(3), &demo_password).await {
        tally.problems.push(format!("portal: {e:#}"));
    }
    let elapsed = started.elapsed();

    println!("\nmessage logs:");
    for m in &members {
        m.node.store().checkpoint().await?;
        let r = m.node.store().verify_log(m.node.verifying_key()).await?;
        match r.first_break {
            None => println!(
                "  {:<3} intact: {} records, {} signed checkpoints",
                m.seg, r.records, r.checkpoints
            ),
            Some(b) => {
                println!("  {:<3} BROKEN at record {}: {}", m.seg, b.seq, b.reason);
                tally.problems.push(format!("{}: log broken", m.seg));
            }
        }
    }
    for m in &members {
        for c in [&m.ib, &m.ir] {
            let left = c.inbox(0, 10, 0).await?.messages;
            if !left.is_empty() {
                let what: Vec<String> = left
                    .iter()
                    .map(|i| format!("{} from {}", i.action, i.from))
                    .collect();
                tally.problems.push(format!(
                    "{}: {} messages never taken: {}",
                    m.seg,
                    left.len(),
                    what.join("; ")
                ));
            }
        }
    }

    let once = tally.delivered_once();
    let ok = tally.problems.is_empty() && once == tally.sent.len();
    println!(
        "\nsummary: {} nodes, {} messages sent, {} delivered exactly once, {} problems, {}",
        members.len(),
        tally.sent.len(),
        once,
        tally.problems.len(),
        ms(elapsed)
    );
    for (id, what) in &tally.sent {
        let n = tally.seen.get(id).copied().unwrap_or(0);
        if n != 1 {
            println!("  delivered {n} times: {what} ({id})");
        }
    }
    for p in &tally.problems {
        println!("  problem: {p}");
    }

    if !args.once {
        println!(
            "\nThe nodes keep serving. API tokens: {}. OpenAPI: http://127.0.0.1:{}/openapi.json. Pages (ru, kk, en): the portal at http://127.0.0.1:{}/ (the EEC node), the national nodes' on the next five ports; each node's console at /ru/console for its operator; people of a state sign in to the portal through their own node. Stop with Ctrl-C.",
            dir.join("tokens.txt").display(),
            args.base_port,
            web_port(0)
        );
        crate::shutdown_signal().await;
    }
    // The keeper stops with the EEC node's services, before any node.
    for r in &running {
        r.begin_stop();
    }
    let _ = keeper_task.await;
    registry_db.close().await?;
    for r in running {
        r.stop().await?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The diagnostic journals the EEC node collected (P.XO.01): once every gateway has reported a
/// period that ends after the scenarios, what each saw, added up over its reports.
async fn journals(members: &[Member]) -> anyhow::Result<()> {
    let eec = &members.first().context("no EEC node")?.node;
    let after = store::system_micros();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reports = loop {
        let reports = node::journal::reports(eec.store(), 10_000).await?;
        let all = members
            .iter()
            .all(|m| reports.iter().any(|r| r.segment == m.seg && r.to >= after));
        if all {
            break reports;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every gateway reported within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("\ndiagnostic journals kept by the EEC node (P.XO.01, each gateway every second):");
    for m in members {
        let total = |dir: &str, state: &str| -> i64 {
            reports
                .iter()
                .filter(|r| r.segment == m.seg)
                .flat_map(|r| &r.counts)
                .filter(|(d, s, _)| d == dir && s == state)
                .map(|(_, _, n)| n)
                .sum()
        };
        let failed: usize = reports
            .iter()
            .filter(|r| r.segment == m.seg)
            .map(|r| r.records.len())
            .sum();
        println!(
            "  {:<3} sent {:>3}, received {:>3}, relayed {:>3}, failed or expired {}",
            m.seg,
            total("out", "accepted"),
            total("in", "accepted"),
            total("relay", "accepted"),
            failed
        );
    }
    Ok(())
}

/// The node's configuration as a file an operator could start it from (`ortaq node serve`).
fn write_config(cfg: &NodeConfig, path: &Path) -> anyhow::Result<()> {
    let mut cfg = cfg.clone();
    cfg.data_dir = ".".into();
    std::fs::write(path, toml::to_string(&cfg)?)?;
    Ok(())
}

/// Takes what the registry keeper reports having handled next.
async fn next_handled(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<conformity::Handled>,
    tally: &mut Tally,
) -> anyhow::Result<conformity::Handled> {
    let h = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .context("the registry keeper handled nothing")?
        .context("the registry keeper stopped")?;
    *tally.seen.entry(h.message_id.clone()).or_default() += 1;
    Ok(h)
}

/// Counts the request (when it should reach the keeper) and every answer the submitter took.
fn record(tally: &mut Tally, r: &conformity::Submitted, what: &str, reaches_keeper: bool) {
    if reaches_keeper {
        tally.sent(&r.message_id, what.to_owned());
    }
    for id in &r.received {
        tally.sent(id, format!("answer to {what}"));
        *tally.seen.entry(id.clone()).or_default() += 1;
    }
}

/// P.TS.01 end to end with the built-in components: every member state's submitter registers
/// a certificate with the Commission's registry keeper; Belarus suspends its own and Armenia
/// tries to change one that does not exist; Russia's querying authority asks for Kazakhstan's;
/// Kyrgyzstan sends a document that breaks filling rules, which the EEC node refuses with ERR.
async fn p_ts_01(
    members: &[Member],
    package: &process::Package,
    db: &conformity::Registry,
    handled: &mut tokio::sync::mpsc::UnboundedReceiver<conformity::Handled>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    use conformity::{Submitter, read_processing_result};
    let clock = node::system_clock();
    let wait = Duration::from_secs(30);
    let by_seg = |s: &str| members.iter().find(|m| m.seg == s).context("no such node");
    println!(
        "[P.TS.01] the unified registry of conformity documents: the built-in registry keeper at EEC, a built-in submitter in every state"
    );
    for m in &members[1..] {
        let sub = Submitter::new(m.ir.clone(), package.clone(), &m.registry, clock.clone());
        let t = Instant::now();
        let r = sub
            .submit("P.TS.01.MSG.001", certificate(m.seg, 1), wait)
            .await?;
        record(tally, &r, &format!("{} certificate", m.seg), true);
        let h = next_handled(handled, tally).await?;
        let (code, _) = r
            .response
            .as_deref()
            .and_then(read_processing_result)
            .with_context(|| format!("{}: no processing result: {:?}", m.seg, r.outcome))?;
        if r.outcome != process::Outcome::Completed || code != conformity::RESULT_ADDED {
            bail!("{}: {:?}, result {code}", m.seg, r.outcome);
        }
        println!(
            "  {:<2} -> EEC  MSG.001 certificate {} (R.TR.TS.01.001, the Commission's schema): validated at EEC (XSD, header, rules, code lists), keeper: {}; PRS and R.006 code {code} «Сведения добавлены» back in {}",
            m.seg,
            doc_id(m.seg, 1),
            h.summary,
            ms(t.elapsed())
        );
    }

    // Status changes: on the registry's own data, answered with R.006 either way.
    for (seg, doc, expect) in [
        ("BY", doc_id("BY", 1), conformity::RESULT_ADDED),
        ("AM", doc_id("AM", 99), conformity::RESULT_RECEIVED),
    ] {
        let m = by_seg(seg)?;
        let body =
            conformity::sample::status_change(seg, &doc, "02", time::OffsetDateTime::now_utc());
        let sub = Submitter::new(m.ir.clone(), package.clone(), &m.registry, clock.clone());
        let t = Instant::now();
        let r = sub.submit("P.TS.01.MSG.002", body, wait).await?;
        record(tally, &r, &format!("{seg} status change"), true);
        let h = next_handled(handled, tally).await?;
        let (code, diags) = r
            .response
            .as_deref()
            .and_then(read_processing_result)
            .context("no processing result")?;
        if code != expect {
            bail!("{seg} status change: R.006 {code}, expected {expect}");
        }
        println!(
            "  {seg} -> EEC  MSG.002 suspend {doc} (status 02): keeper: {}; R.006 code {code} in {}",
            h.summary,
            ms(t.elapsed())
        );
        for (rule, text) in diags {
            println!("      [{rule}] {text}");
        }
    }

    // A question from Russia about a certificate issued in Kazakhstan.
    let ru = by_seg("RU")?;
    let q = Submitter::new(
        ru.iq.clone().context("RU has no querying authority")?,
        package.clone(),
        &querier("RU"),
        clock.clone(),
    );
    let body = conformity::sample::query("KZ", &doc_id("KZ", 1), time::OffsetDateTime::now_utc());
    let t = Instant::now();
    let r = q.submit("P.TS.01.MSG.003", body, wait).await?;
    record(tally, &r, "RU query", true);
    next_handled(handled, tally).await?;
    let answer = r.response.clone().unwrap_or_default();
    let Some(conformity::QueryAnswer {
        found: true,
        status,
        applicant,
    }) = conformity::read_query_result(&answer)
    else {
        bail!("RU's query found nothing: {answer}");
    };
    let applicant = applicant.unwrap_or_else(|| "?".into());
    let status = status.unwrap_or_else(|| "?".into());
    println!(
        "  RU -> EEC  MSG.003 query for {}: found, status {status}, applicant {applicant}; answer MSG.005 in {}",
        doc_id("KZ", 1),
        ms(t.elapsed())
    );

    // A document breaking filling rules: refused by the EEC node before the keeper sees it.
    let kg = by_seg("KG")?;
    let broken = certificate("KG", 2)
        .replacen(">8501520001<", ">1234560001<", 1)
        .replacen(
            "<csdo:DocValidityDate>2031-11-22",
            "<csdo:DocValidityDate>2020-01-01",
            1,
        );
    let sub = Submitter::new(kg.ir.clone(), package.clone(), &kg.registry, clock.clone());
    let t = Instant::now();
    let r = sub.submit("P.TS.01.MSG.001", broken, wait).await?;
    record(tally, &r, "KG broken certificate", false);
    if !matches!(r.outcome, process::Outcome::Failed(_)) || r.errors.is_empty() {
        bail!("KG's broken document was not refused: {:?}", r.outcome);
    }
    println!(
        "  KG -> EEC  MSG.001 with broken filling rules: the EEC node answered ERR in {}, the keeper never saw it:",
        ms(t.elapsed())
    );
    for e in &r.errors {
        println!(
            "      {}: {}",
            e.code.as_str(),
            e.details.as_deref().unwrap_or(&e.description)
        );
    }
    println!("  the registry holds {} documents\n", db.len().await?);
    Ok(())
}

/// Legally significant documents: a signed P.TS.01.MSG.001. One changed after signing is
/// refused by the sending node itself; Kazakhstan's authority signs one (XMLDSig, ECDSA
/// P-256), the EEC node's trusted third party judges the signature, time-stamps its receipt and
/// keeps both with the message, and the keeper registers the document; its evidence container
/// verifies offline to the federation root. A Belarusian document signed with a revoked
/// certificate is rejected.
async fn signed_documents(
    members: &[Member],
    package: &process::Package,
    trust: &host::trustspace::TrustSpace,
    (dir, kept): (&Path, bool),
    handled: &mut tokio::sync::mpsc::UnboundedReceiver<conformity::Handled>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    use conformity::{Submitter, read_processing_result};
    let clock = node::system_clock();
    println!(
        "[trust] legally significant documents (a signed P.TS.01.MSG.001): judged by the EEC node's trusted third party, time-stamped"
    );
    let eec = &members[0];
    let kz = members.iter().find(|m| m.seg == "KZ").context("node")?;
    let sub = Submitter::new(kz.ir.clone(), package.clone(), &kz.registry, clock.clone());
    let forged = dsig::sign_enveloped(&certificate("KZ", 3), &trust.signers["KZ"])?.replacen(
        "KZ.01.АА.0003/2026",
        "KZ.01.АА.0004/2026",
        1,
    );
    match sub
        .submit("P.TS.01.MSG.001", forged, Duration::from_secs(30))
        .await
    {
        Err(conformity::ConformityError::Api(e))
            if e.problem()
                .is_some_and(|p| p.kind_name() == "signature-required") =>
        {
            let detail = e.problem().map(|p| p.detail).unwrap_or_default();
            println!(
                "  KZ: a signed MSG.001 changed after signing was refused by its own node: 422 {detail}"
            )
        }
        other => bail!("a document changed after signing was not refused: {other:?}"),
    }
    let anchors = node::evidence::Anchors {
        federation_root: trust::pki::pem_to_der(&std::fs::read_to_string(
            trust::pki::root_cert_path(&dir.join("pki")),
        )?)?,
        ttp_ca: Some(trust::pki::pem_to_der(&std::fs::read_to_string(
            &trust.ttp_ca,
        )?)?),
    };
    for (seg, signer, expect) in [
        ("KZ", &trust.signers["KZ"], conformity::RESULT_ADDED),
        ("BY", &trust.revoked, conformity::RESULT_RECEIVED),
    ] {
        let m = members.iter().find(|m| m.seg == seg).context("node")?;
        let doc = dsig::sign_enveloped(&certificate(seg, 3), signer)?;
        let sub = Submitter::new(m.ir.clone(), package.clone(), &m.registry, clock.clone());
        let t = Instant::now();
        let r = sub
            .submit("P.TS.01.MSG.001", doc, Duration::from_secs(30))
            .await?;
        record(tally, &r, &format!("{seg} signed certificate"), true);
        let h = next_handled(handled, tally).await?;
        let (code, diags) = r
            .response
            .as_deref()
            .and_then(read_processing_result)
            .context("no processing result")?;
        if code != expect {
            bail!("{seg}'s signed document: R.006 {code}, expected {expect}: {diags:?}");
        }
        println!(
            "  {seg} -> EEC  MSG.001 signed: keeper: {}; R.006 code {code} in {}",
            h.summary,
            ms(t.elapsed())
        );
        // What the keeper holds: the evidence container of the message, checked offline.
        let container = eec.ir.evidence(&r.message_id).await?;
        let file = dir.join(format!("evidence-{seg}.asice"));
        std::fs::write(&file, &container)?;
        let checks = node::evidence::verify(&container, &anchors);
        for c in checks.iter().skip(1) {
            match &c.outcome {
                Ok(what) => println!("      ok    {:<19} {what}", c.name),
                Err(why) => println!("      FAIL  {:<19} {why}", c.name),
            }
        }
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.outcome.is_err())
            .map(|c| c.name)
            .collect();
        // The revoked signer's evidence must fail exactly at the receipt's verdict.
        let expected_failures: &[&str] = if expect == conformity::RESULT_ADDED {
            &[]
        } else {
            &["TTP receipt"]
        };
        if failed != expected_failures {
            bail!("{seg}'s evidence: failed checks {failed:?}, expected {expected_failures:?}");
        }
        println!("      {} bytes in {}", container.len(), file.display());
    }
    if kept {
        println!(
            "  check one yourself: ortaq evidence verify {} --root {} --ttp-ca {}\n",
            dir.join("evidence-KZ.asice").display(),
            trust::pki::root_cert_path(&dir.join("pki")).display(),
            trust.ttp_ca.display()
        );
    } else {
        println!(
            "  (run with --dir to keep the containers and check them with `ortaq evidence verify`)\n"
        );
    }
    Ok(())
}

/// A message breaking a Decision No. 5 rule is refused at once, before anything is stored.
async fn decision5_refusal(m: &Member, eec: &Member) -> anyhow::Result<()> {
    let mut bad = message(&eec.registry, certificate(m.seg, 2));
    bad.transaction = "P.MM.01.TRN.001".into();
    match m.ib.send(&bad).await {
        Err(AdapterError::Api { status: 400, body }) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            println!(
                "[{} -> EEC] a message naming a transaction of another process was refused at once: 400 [{}] {}\n",
                m.seg,
                v["rule"].as_str().unwrap_or("?"),
                v["detail"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        other => bail!("a message breaking the Action rule was not refused: {other:?}"),
    }
}

/// Kazakhstan's registry sends to Russia's; the EEC node relays; Russia checks the signature.
async fn across_the_relay(
    kz: &Member,
    ru: &Member,
    pki: &Path,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    println!(
        "[KZ -> EEC -> RU] a certificate issued in Kazakhstan, sent to Russia's conformity body through the EEC relay"
    );
    let t = Instant::now();
    // To the conformity body: an address without a role of P.TS.01, whose transactions run
    // between the authorities and the Commission (RU's node would refuse a registration
    // addressed to another authority's role).
    let out = message(&ru.body, certificate("KZ", 7));
    let receipt = kz.ir.send(&out).await?;
    tally.sent(
        &receipt.message_id,
        "KZ registry to RU conformity body".into(),
    );
    let again = kz.ir.send(&out).await?;
    if !again.duplicate || again.track_id != receipt.track_id {
        bail!("a retry with the same MessageID was not recognised");
    }
    println!("  a retry with the same MessageID got the original receipt; nothing is sent twice");
    let got = receive(&ru.ib, &ru.body, tally).await?;
    let sig = ru
        .node
        .store()
        .signature(&got.message_id)
        .await?
        .context("RU kept no signature")?;
    use base64::Engine as _;
    let hop = transport::hop::HopSignature::from_headers(
        Some(&sig.header),
        Some(&base64::engine::general_purpose::STANDARD.encode(&sig.certificate)),
    )?;
    let verifier = transport::hop::HopVerifier::from_root_file(&trust::pki::root_cert_path(pki))?;
    let kz_seg = Segment::parse("KZ").map_err(anyhow::Error::msg)?;
    verifier.verify(
        got.envelope.as_bytes(),
        &hop,
        kz_seg,
        time::OffsetDateTime::now_utc(),
    )?;
    println!(
        "  RU's conformity body received it {} after submission; the envelope still carries node KZ's {} signature, which verifies at RU: the relay could not alter it",
        ms(t.elapsed()),
        hop.algorithm.name()
    );
    // RU's IS has taken it: RU's node confirms receipt for it (the transaction's RCV, not
    // the nodes' acceptance, which KZ's IS had at once).
    let rcv = receive(&kz.ir, &kz.registry, tally).await?;
    tally.sent(&rcv.message_id, "RU's RCV to KZ registry".into());
    if !rcv.action.ends_with("/P.MSG.RCV") || rcv.from != ru.body {
        bail!(
            "KZ expected the RCV of RU's conformity body, got {} from {}",
            rcv.action,
            rcv.from
        );
    }
    println!(
        "  when RU's IS took it, RU's node sent the transaction's RCV from {}; KZ's IS has it",
        rcv.from
    );
    let env = envelope::parse(
        got.envelope.as_bytes(),
        &ParseOptions::new(Origin::Platform),
    )?;
    let prs = envelope::Envelope::signal_for(
        &env.header,
        envelope::Address::parse(&ru.body)?,
        Signal::new(SignalKind::Prs, time::OffsetDateTime::now_utc()),
    )?;
    let t = Instant::now();
    ru.ib.send_envelope(&prs.to_xml()).await?;
    tally.sent(
        &prs.header.message_id.to_string(),
        "RU PRS to KZ registry".into(),
    );
    receive(&kz.ir, &kz.registry, tally).await?;
    println!(
        "  RU answered PRS; it came back to KZ through the relay in {}\n",
        ms(t.elapsed())
    );
    Ok(())
}

/// A message to a participant that does not exist: the destination refuses it, and the sender
/// hears about it as an ERR signal instead of silence.
async fn undeliverable(by: &Member, tally: &mut Tally) -> anyhow::Result<()> {
    println!("[BY -> EEC -> AM] a message to a participant Armenia's node does not host");
    let t = Instant::now();
    let receipt = by
        .ib
        .send(&message(
            "EAEU://AM/CA/no-such-authority",
            certificate("BY", 9),
        ))
        .await?;
    let back = receive(&by.ib, &by.body, tally).await?;
    tally.sent(&back.message_id, "ERR notice to BY".into());
    let env = envelope::parse(
        back.envelope.as_bytes(),
        &ParseOptions::new(Origin::Platform),
    )?;
    let reason = match &env.body {
        envelope::Body::Signal(s) if s.kind == SignalKind::Err => s
            .errors
            .first()
            .map(|e| format!("{}: {}", e.code.as_str(), e.description))
            .unwrap_or_default(),
        _ => bail!("BY received {} instead of an ERR", back.action),
    };
    if env.header.relates_to.map(|r| r.id.to_string()) != Some(receipt.message_id.clone()) {
        bail!("the ERR does not answer {}", receipt.message_id);
    }
    println!(
        "  AM refused it; the EEC relay gave up and BY's IS got an ERR in {}:\n    {reason}\n",
        ms(t.elapsed())
    );
    Ok(())
}

/// The shipped resources the Commission's node publishes at start (a re-run with `--dir`
/// finds them identical and publishes nothing new).
const PUBLISHED: [&str; 4] = [
    "countries.json",
    "currencies.json",
    "languages.json",
    "hs.json",
];

async fn publish_reference_data(eec: &Node) -> anyhow::Result<()> {
    crate::nsi::publish_shipped(eec.store(), &PUBLISHED).await
}

/// Waits until every national node holds the Commission's reference data, then asks two of
/// them questions over their REST API.
async fn reference_data(
    members: &[Member],
    http: &reqwest::Client,
    base_port: u16,
) -> anyhow::Result<()> {
    println!(
        "[EEC -> all] reference data (notices by P.XO.03, fetching by P.CC.10): the Commission's node publishes, national nodes fetch and verify"
    );
    let t = Instant::now();
    let eec = members.first().context("no EEC node")?.node.reference();
    let wanted: Vec<(String, i64, String)> = eec
        .resources()
        .map(|r| (r.header.code.clone(), r.version, r.sha256.clone()))
        .collect();
    for m in &members[1..] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let idx = m.node.reference();
            let done = wanted.iter().all(|(c, v, sha)| {
                idx.resource(c)
                    .is_some_and(|r| r.version == *v && &r.sha256 == sha)
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not receive the reference data: {:?}",
                    m.seg,
                    m.node.sync_status()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let list: Vec<String> = wanted.iter().map(|(c, v, _)| format!("{c} v{v}")).collect();
    println!(
        "  {} reached AM, BY, KZ, KG and RU in {}, every version's SHA-256 checked on arrival",
        list.join(", "),
        ms(t.elapsed())
    );
    let get = |port: u16, path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        async move {
            anyhow::Ok(
                http.get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<serde_json::Value>()
                    .await?,
            )
        }
    };
    let kz = base_port + 3;
    let by = get(kz, "/v1/nsi/P.CLS.019/items/BY").await?;
    println!(
        "  KZ node, GET /v1/nsi/P.CLS.019/items/BY: kk «{}», ru «{}», alpha3 {}",
        by["names"]["kk"].as_str().unwrap_or("?"),
        by["names"]["ru"].as_str().unwrap_or("?"),
        by["attributes"]["alpha3"].as_str().unwrap_or("?")
    );
    let ru = base_port + 5;
    let hs = get(ru, "/v1/nsi/WCO.HS.2022/items/847130").await?;
    let path: Vec<&str> = hs["path"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    println!(
        "  RU node, HS 847130 (portable computers): path {}",
        path.join(" -> ")
    );
    let found = get(
        ru,
        "/v1/nsi/P.CLS.019/search?q=%D2%9A%D0%B0%D0%B7%D0%B0%D2%9B%D1%81%D1%82%D0%B0%D0%BD&limit=1",
    )
    .await?;
    println!(
        "  RU node, search «Қазақстан» in P.CLS.019: {} ({})\n",
        found[0]["code"].as_str().unwrap_or("-"),
        found[0]["names"]["ru"].as_str().unwrap_or("-")
    );
    anyhow::ensure!(
        path.get(2) == Some(&"84") && found[0]["code"] == "KZ",
        "unexpected answers"
    );
    Ok(())
}

/// The demo's people at the node of `seg`: its operator; the Commission's analyst at the EEC
/// node, an authority's officer and a business user at each state's. A re-run in the same
/// folder gives them this run's password.
async fn demo_accounts(cfg: &NodeConfig, seg: &str, password: &str) -> anyhow::Result<()> {
    use people::Role;
    let p = people::People::open(
        cfg.store_engine().for_app("people"),
        node::system_clock(),
        people::Policy::default(),
    )?;
    let mut who = vec![("operator", format!("Оператор узла {seg}"), Role::Operator)];
    if seg == "EEC" {
        who.push(("analyst", "Аналитик Комиссии".into(), Role::Analyst));
    } else {
        who.push((
            "officer",
            format!("Сотрудник органа ({seg})"),
            Role::Officer,
        ));
        who.push((
            "business",
            format!("Предприниматель ({seg})"),
            Role::Business,
        ));
    }
    let result = async {
        for (login, name, role) in &who {
            match p.add(login, name, &[*role], password).await {
                Err(people::PeopleError::Exists(_)) => p.set_password(login, password).await?,
                r => r?,
            }
        }
        anyhow::Ok(())
    }
    .await;
    p.close().await?;
    result
}

/// A browser's cookies for one site (host and port), kept by hand: the pages' cookies are
/// `Secure`, which an HTTP client's jar would not send over loopback HTTP, as browsers do.
#[derive(Default)]
struct Jar(std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>);

impl Jar {
    fn site(url: &str) -> String {
        url.split('/').take(3).collect::<Vec<_>>().join("/")
    }

    /// Sends `req` to `url` with this site's cookies, keeps what it sets, and answers the
    /// status, the Location made absolute, and the body.
    async fn send(
        &mut self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, String, String)> {
        let site = Self::site(url);
        let cookies: Vec<String> = self
            .0
            .get(&site)
            .map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        let r = req
            .header("cookie", cookies.join("; "))
            .header("origin", &site)
            .send()
            .await?;
        let jar = self.0.entry(site.clone()).or_default();
        for c in r.headers().get_all("set-cookie") {
            if let Some((k, v)) = c
                .to_str()?
                .split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
            {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = match r
            .headers()
            .get("location")
            .map(|l| l.to_str())
            .transpose()?
        {
            Some(l) if l.starts_with('/') => format!("{site}{l}"),
            Some(l) => l.to_owned(),
            None => String::new(),
        };
        Ok((status, location, r.text().await?))
    }
}

/// The EEC node's public portal: the registry the keeper filled and the open data around it,
/// the exchange statistics, and a person of Kazakhstan signing in to it through the KZ node
/// (OpenID Connect, keys from the trust space).
async fn portal(eec_port: u16, kz_port: u16, password: &str) -> anyhow::Result<()> {
    let eec = format!("http://127.0.0.1:{eec_port}");
    let kz = format!("http://127.0.0.1:{kz_port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    println!("\n[portal] the EEC node's public pages: {eec}/ru/registry");
    let docs: Vec<serde_json::Value> = http
        .get(format!("{eec}/open-data/conformity-registry.json"))
        .send()
        .await?
        .json()
        .await?;
    let datasets: serde_json::Value = http
        .get(format!("{eec}/api/3/action/package_list"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "  the unified registry holds {} documents; open data offers {} datasets in CSV, JSON and XML (CKAN API, DCAT-AP at {eec}/open-data/catalog.jsonld)",
        docs.len(),
        datasets["result"].as_array().map_or(0, Vec::len)
    );
    let pairs = http
        .get(format!("{eec}/open-data/showcases/messages-per-pair.csv"))
        .send()
        .await?
        .text()
        .await?;
    let busiest: Vec<String> = pairs
        .lines()
        .skip(1)
        .take(3)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!(
                "{}→{} {}",
                f.first().unwrap_or(&""),
                f.get(1).unwrap_or(&""),
                f.get(2).unwrap_or(&"")
            )
        })
        .collect();
    println!(
        "  statistics ({eec}/ru/showcases): busiest pairs of states {}",
        busiest.join(", ")
    );

    // KZ's officer at the EEC portal, through the KZ node.
    let t = Instant::now();
    let mut jar = Jar::default();
    let (_, to, _) = jar
        .send(&eec, http.get(format!("{eec}/ru/signin/via/KZ")))
        .await?;
    anyhow::ensure!(
        to.starts_with(&kz),
        "the EEC portal did not send the person to KZ: {to:?}"
    );
    let (_, form_url, _) = jar.send(&to, http.get(&to)).await?;
    let (_, _, html) = jar.send(&form_url, http.get(&form_url)).await?;
    let field = |name: &str| {
        html.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    };
    let (form, next) = (field("form"), field("next"));
    let action = format!("{kz}/ru/signin");
    let (status, to, _) = jar
        .send(
            &action,
            http.post(&action).form(&[
                ("form", form.as_str()),
                ("next", next.as_str()),
                ("login", "officer"),
                ("password", password),
            ]),
        )
        .await?;
    anyhow::ensure!(
        status == 303,
        "the KZ node refused the officer's password: {status}"
    );
    let (_, callback, _) = jar.send(&to, http.get(&to)).await?;
    let (status, account, _) = jar.send(&callback, http.get(&callback)).await?;
    anyhow::ensure!(
        status == 303,
        "the EEC portal refused the KZ node's answer: {status}"
    );
    let (_, _, page) = jar.send(&account, http.get(&account)).await?;
    anyhow::ensure!(
        page.contains("kz:officer"),
        "the EEC portal does not know the officer"
    );
    println!(
        "  KZ's officer signed in to it through the KZ node in {} (OpenID Connect; the ID token signed by node KZ's key, checked against the trust list): account kz:officer",
        ms(t.elapsed())
    );
    Ok(())
}
