//! `ortaq conformance run|demo`: conformance testing of a participant of a common process.
//! `run` tests a participant behind any node, speaking through testers' adapter API tokens;
//! `demo` starts an EEC and a KZ node on this machine, puts the built-in registry keeper (or,
//! with `--broken`, a deliberately wrong IS) behind the EEC node and tests it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapter::http::HttpAdapter;
use adapter::{Adapter, Submission};
use anyhow::Context as _;
use conformance::{Protocol, Suite, Tester};
use envelope::{Body, Envelope, MessageKind, Origin, ParseOptions, Segment};
use node::config::{
    FederationSection, LimitsSection, NodeConfig, ParticipantConfig, ProcessesSection, StoreSection,
};

#[derive(clap::Args)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    command: ConformanceCommand,
}

#[derive(clap::Subcommand)]
enum ConformanceCommand {
    /// Tests the participant at TARGET in ROLE of PROCESS, through a node's adapter API.
    Run {
        #[arg(long)]
        process: String,
        /// The role under test, e.g. `P.ACT.001`.
        #[arg(long)]
        role: String,
        /// The tested participant's address, e.g. `EAEU://EEC/CP/P.TS.01/P.ACT.001`.
        #[arg(long)]
        target: String,
        /// Adapter API of the node the testers belong to, e.g. `http://127.0.0.1:7103`.
        #[arg(long)]
        node: String,
        /// A tester: `ADDRESS=TOKEN`, one per initiating role (repeat).
        #[arg(long = "tester", required = true)]
        testers: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Starts EEC and KZ nodes here and tests the built-in registry keeper of P.TS.01 (or a
    /// deliberately broken IS).
    Demo {
        /// Test a deliberately broken registry IS instead of the built-in one.
        #[arg(long)]
        broken: bool,
        /// Adapter API port of the EEC node; KZ takes the next, the federation the two after.
        #[arg(long, default_value_t = 7300)]
        base_port: u16,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The longest wait for any one answer, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Folder for `protocol.json` and `protocol.md` (default: print the Markdown only).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder of process packages.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConformanceCommand::Run {
            process,
            role,
            target,
            node,
            testers,
            common,
        } => {
            let package = load(&common, &process)?;
            let testers = testers
                .iter()
                .map(|t| {
                    let (a, tok) = t.split_once('=').context("a tester is ADDRESS=TOKEN")?;
                    Ok(Tester {
                        address: a.to_owned(),
                        client: HttpAdapter::new(&node, tok),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let nsi = crate::nsi::load_shipped(&crate::nsi::shipped_dir(None))?;
            let suite = Suite {
                package,
                role,
                target,
                testers,
                timeout: Duration::from_secs(common.timeout),
                nsi: Arc::new(nsi),
                clock: node::system_clock(),
            };
            report(&suite, &common).await
        }
        ConformanceCommand::Demo {
            broken,
            base_port,
            common,
        } => demo(broken, base_port, common).await,
    }
}

fn load(common: &Common, code: &str) -> anyhow::Result<process::Package> {
    let dir = crate::processes::packages_dir(common.dir.as_deref());
    process::package::load_all(&dir)?
        .into_iter()
        .find(|p| p.process.code == code)
        .with_context(|| format!("no package {code} in {}", dir.display()))
}

async fn report(suite: &Suite<HttpAdapter>, common: &Common) -> anyhow::Result<ExitCode> {
    let protocol: Protocol = conformance::run(suite).await?;
    let md = protocol.markdown();
    match &common.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join("protocol.json"),
                serde_json::to_vec_pretty(&protocol)?,
            )?;
            std::fs::write(dir.join("protocol.md"), &md)?;
            println!(
                "{} {} role {}: {} passed, {} failed, {} skipped; protocol in {}",
                protocol.process,
                protocol.version,
                protocol.role,
                protocol.passed,
                protocol.failed,
                protocol.skipped,
                dir.display()
            );
            for c in protocol.checks.iter().filter(|c| c.result == "fail") {
                println!(
                    "  FAIL {} {}: {} — {}",
                    c.transaction, c.path, c.name, c.detail
                );
            }
        }
        None => println!("{md}"),
    }
    Ok(if protocol.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

const KEEPER: &str = conformity::KEEPER;

async fn demo(broken: bool, base_port: u16, common: Common) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::Builder::new()
        .prefix("ortaq-conformance-")
        .tempdir()?;
    let dir = tmp.path();
    let package = load(&common, "P.TS.01")?;
    let packages = package
        .dir
        .parent()
        .context("package folder")?
        .canonicalize()?;
    let seg = |s: &str| Segment::parse(s).map_err(anyhow::Error::msg);
    let segs = [seg("EEC")?, seg("KZ")?];
    let pki = dir.join("pki");
    trust::pki::init(&pki, &segs, time::OffsetDateTime::now_utc())?;
    let addrs: BTreeMap<Segment, std::net::SocketAddr> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, ([127, 0, 0, 1], base_port + 2 + i as u16).into()))
        .collect();
    let submitter = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002";
    let querier = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.003";
    let mut nodes: Vec<host::Running> = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let participants: Vec<&str> = if i == 0 {
            vec![KEEPER]
        } else {
            vec![submitter, querier]
        };
        let cfg = NodeConfig {
            segment: seg.to_string(),
            listen: ([127, 0, 0, 1], base_port + i as u16).into(),
            data_dir: dir.join(seg.as_str()),
            store: StoreSection::default(),
            participants: participants
                .iter()
                .map(|a| ParticipantConfig {
                    address: a.to_string(),
                    name: String::new(),
                })
                .collect(),
            limits: LimitsSection::default(),
            checkpoint_every: 1000,
            federation: FederationSection::star(&pki, *seg, segs[0], &addrs),
            delivery: Default::default(),
            nsi: None,
            processes: Some(ProcessesSection {
                dir: packages.clone(),
                validators: 1,
            }),
            ttp: None,
            tsa: None,
            tls: None,
            signal_namespace: None,
            journal: None,
            queue: None,
            web: None,
        };
        std::fs::create_dir_all(&cfg.data_dir)?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| {
                format!(
                    "port {} is taken; choose another with --base-port",
                    cfg.listen.port()
                )
            })?;
        let node = node::Node::open(cfg, node::system_clock())?;
        // Both nodes hold the code lists the documents are checked against.
        crate::nsi::publish_shipped(node.store(), &["countries.json", "hs.json"]).await?;
        nodes.push(host::run(node, listener).await?);
    }
    let eec = nodes[0].node.clone();
    let stop_rx = nodes[0].stopping();
    let base = |i: usize| format!("http://127.0.0.1:{}", base_port + i as u16);
    let keeper_client = HttpAdapter::new(&base(0), &eec.issue_token(KEEPER, "keeper").await?);
    let keeper = if broken {
        println!(
            "testing a deliberately broken registry IS: no PRS, a wrong EDocRefId, silence for what it does not expect"
        );
        tokio::spawn(broken_keeper(keeper_client, stop_rx.clone()))
    } else {
        println!("testing the built-in registry keeper of P.TS.01");
        let registry = Arc::new(conformity::Registry::open(
            eec.config().store_engine().for_app("conformity"),
        )?);
        let e = eec.clone();
        let k = conformity::RegistryKeeper::new(
            keeper_client,
            package.clone(),
            registry,
            Arc::new(move || e.reference()),
            eec.clock(),
        )?;
        tokio::spawn(k.run(stop_rx.clone(), None))
    };
    let kz = nodes[1].node.clone();
    let testers = vec![
        Tester {
            address: submitter.into(),
            client: HttpAdapter::new(&base(1), &kz.issue_token(submitter, "tester").await?),
        },
        Tester {
            address: querier.into(),
            client: HttpAdapter::new(&base(1), &kz.issue_token(querier, "tester").await?),
        },
    ];
    let suite = Suite {
        package,
        role: "P.ACT.001".into(),
        target: KEEPER.into(),
        testers,
        timeout: Duration::from_secs(common.timeout),
        nsi: kz.reference(),
        clock: kz.clock(),
    };
    let code = report(&suite, &common).await;
    let mut nodes = nodes.into_iter();
    // The keeper stops with its node's services, before the node.
    if let Some(eec) = nodes.next() {
        eec.begin_stop();
        let _ = keeper.await;
        eec.stop().await?;
    }
    for n in nodes {
        n.stop().await?;
    }
    code
}

/// A registry IS that gets P.TS.01 wrong on purpose, to show what the protocol of a failing
/// participant looks like: it never sends PRS, answers every request with an R.006 whose
/// EDocRefId points at no document, and ignores messages it does not expect.
async fn broken_keeper(client: HttpAdapter, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        let page = tokio::select! {
            p = client.inbox(0, 50, 1) => p,
            _ = stop.changed() => return,
        };
        let Ok(page) = page else { continue };
        for m in page.messages {
            let _ = client.ack(&m.message_id).await;
            let Ok(env) =
                envelope::parse(m.envelope.as_bytes(), &ParseOptions::new(Origin::Platform))
            else {
                continue;
            };
            if env.header.kind() != MessageKind::Application
                || !matches!(env.body, Body::Document(_))
            {
                continue;
            }
            let Some(cp) = env.header.cp_action() else {
                continue;
            };
            if cp.message_code() != Some(cp_initiating(cp.transaction.as_str())) {
                continue; // silence instead of ERR Common:UnexpectedMessage
            }
            let _ = answer_wrongly(&client, &env).await;
        }
    }
}

fn cp_initiating(trn: &str) -> &'static str {
    match trn {
        "P.TS.01.TRN.001" => "P.TS.01.MSG.001",
        "P.TS.01.TRN.002" => "P.TS.01.MSG.002",
        _ => "P.TS.01.MSG.003",
    }
}

async fn answer_wrongly(client: &HttpAdapter, env: &Envelope) -> anyhow::Result<()> {
    let cp = env.header.cp_action().context("no action")?;
    let wrong_ref = "00000000-0000-4000-8000-000000000000";
    let body = conformity::processing_result(
        Some(wrong_ref),
        &[],
        time::OffsetDateTime::now_utc(),
        "Сведения добавлены",
    );
    let out = Submission {
        to: env.sender().context("no sender")?.to_string(),
        process: cp.process.to_string(),
        version: cp.version.clone(),
        procedure: cp.procedure.clone(),
        transaction: cp.transaction.clone(),
        message: "P.TS.01.MSG.004".into(),
        body,
        conversation_id: env.header.conversation_id.map(|c| c.to_string()),
        relates_to: Some(env.header.message_id.to_string()),
        ..Default::default()
    };
    client.send(&out).await?;
    Ok(())
}
