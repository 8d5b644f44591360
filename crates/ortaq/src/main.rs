//! The `ortaq` command: run a node, issue API tokens, verify a node's message log, run the
//! demo federation, and benchmark.

mod abuse;
mod accounts;
mod bench;
mod conformance;
mod demo;
mod measure;
mod nsi;
mod processes;
mod queue_bench;
mod sync_bench;
mod web_bench;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use node::{Node, NodeConfig};

#[derive(Parser)]
#[command(
    name = "ortaq",
    version,
    about = "EAEU integrated information system: nodes, adapters and services"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run or administer a node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Work with a node's message log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// The federation PKI of the nodes: root, TLS and signing certificates.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Evidence of a message: export one container from a node's store, verify one offline.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Reference data: look up, search, translate, import, version and export.
    Nsi(nsi::NsiArgs),
    /// Common-process packages: list, show, check.
    Process(processes::ProcessArgs),
    /// Conformance testing of a participant: every transaction of its role, normal and error
    /// paths, with a protocol in JSON and Markdown.
    Conformance(conformance::ConformanceArgs),
    /// Start nodes for EEC, AM, BY, KZ, KG and RU on this machine and run an exchange.
    Demo(demo::DemoArgs),
    /// Measure throughput and latency.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Serve the adapter API until SIGINT or SIGTERM, then shut down without losing anything.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// API tokens of the node's participants: issue, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Accounts of the people who sign in to the node's pages: add, password, list.
    People {
        #[command(subcommand)]
        command: accounts::PeopleCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a participant hosted by the node (printed once, stored hashed).
    Issue {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        participant: String,
        #[arg(long, default_value = "")]
        label: String,
        /// The token stops working after this many days (never, without it).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Every token issued, newest first: its id, participant, label, dates.
    List {
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke one token (by the id `list` shows) or every token of a participant. A running
    /// node refuses them within a second.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        #[arg(
            long,
            conflicts_with = "participant",
            required_unless_present = "participant"
        )]
        id: Option<String>,
        #[arg(long)]
        participant: Option<String>,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a federation root in DIR and issue the certificates of every segment listed.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Comma-separated segments.
        #[arg(long, value_delimiter = ',', default_value = "EEC,AM,BY,KZ,KG,RU")]
        segments: Vec<String>,
    },
    /// Issue the certificates of one more segment under the root in DIR; with --tsa, the
    /// time-stamping certificate of that segment's node instead.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        segment: String,
        #[arg(long)]
        tsa: bool,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write the evidence container (ZIP, ASiC-E style) of one message held by the node.
    Export {
        #[arg(long, default_value = "node.toml")]
        config: PathBuf,
        /// The MessageID (urn:uuid:…).
        message_id: String,
        /// Where to write it; `<message>.asice` in the current folder by default.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a container offline: hop signature, document signature, TTP receipt, time stamp
    /// and message log, each to its trust anchor. Exit code 0 only when every check passes.
    Verify {
        file: PathBuf,
        /// The federation root certificate (PEM).
        #[arg(long)]
        root: PathBuf,
        /// The CA certificate (PEM) that issues the trusted third party's receipt key.
        #[arg(long)]
        ttp_ca: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Walk the hash chain and the signed checkpoints; report the first broken link.
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Nsi(args) => nsi::run(args).await,
        Command::Process(args) => processes::run(args),
        Command::Node {
            command: NodeCommand::Serve { config },
        } => {
            let cfg = NodeConfig::load(&config)?;
            let listen = cfg.listen;
            node::heavy::return_large_buffers();
            let running = host::start(cfg, node::system_clock()).await?;
            tracing::info!(segment = %running.node.segment(), %listen, "node serving");
            running.serve_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Node {
            command: NodeCommand::Token { command },
        } => token(command).await,
        Command::Node {
            command: NodeCommand::People { command },
        } => accounts::run(command).await,
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    config,
                    message_id,
                    out,
                },
        } => {
            let cfg = NodeConfig::load(&config)?;
            let node = Node::open(cfg, node::system_clock())?;
            let zip = node::evidence::export(&node, &message_id).await;
            node.store().close().await?;
            let zip = zip.with_context(|| format!("evidence of {message_id}"))?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}.asice",
                    message_id.trim_start_matches("urn:uuid:")
                ))
            });
            std::fs::write(&out, &zip).with_context(|| format!("{}", out.display()))?;
            println!("{} ({} bytes)", out.display(), zip.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Evidence {
            command: EvidenceCommand::Verify { file, root, ttp_ca },
        } => {
            let pem = |p: &PathBuf| -> anyhow::Result<Vec<u8>> {
                Ok(trust::pki::pem_to_der(
                    &std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
                )?)
            };
            let anchors = node::evidence::Anchors {
                federation_root: pem(&root)?,
                ttp_ca: ttp_ca.as_ref().map(pem).transpose()?,
            };
            let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            let checks = node::evidence::verify(&bytes, &anchors);
            let mut ok = true;
            for c in &checks {
                match &c.outcome {
                    Ok(what) => println!("ok    {:<20} {what}", c.name),
                    Err(why) => {
                        ok = false;
                        println!("FAIL  {:<20} {why}", c.name)
                    }
                }
            }
            println!(
                "{}",
                if ok {
                    "evidence verified"
                } else {
                    "evidence NOT verified"
                }
            );
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Log {
            command: LogCommand::Verify { config },
        } => {
            let cfg = NodeConfig::load(&config)?;
            let key = node::keys::load(&cfg.key_path())?;
            let mut sc = store::StoreConfig::new(cfg.store_engine());
            sc.readers = 1;
            let st = store::Store::open(sc)?;
            let r = st.verify_log(key.verifying_key()).await?;
            st.close().await?;
            Ok(report_verify(&r))
        }
        Command::Pki { command } => {
            let now = time::OffsetDateTime::now_utc();
            let parse = |s: &str| envelope::Segment::parse(s.trim()).map_err(anyhow::Error::msg);
            let issued = match command {
                PkiCommand::Init { dir, segments } => {
                    let segs = segments
                        .iter()
                        .map(|s| parse(s))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let files = trust::pki::init(&dir, &segs, now)?;
                    println!(
                        "federation root: {}",
                        trust::pki::root_cert_path(&dir).display()
                    );
                    files
                }
                PkiCommand::Issue { dir, segment, tsa } if tsa => {
                    let (cert, key) = trust::pki::issue_tsa(&dir, parse(&segment)?, now)?;
                    println!(
                        "time-stamp authority {} (key {})",
                        cert.display(),
                        key.display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                PkiCommand::Issue { dir, segment, .. } => {
                    vec![trust::pki::issue(&dir, parse(&segment)?, now)?]
                }
            };
            for f in issued {
                println!(
                    "{:<3} TLS {} (key {}), signing {} (key {})",
                    f.segment.as_str(),
                    f.tls_cert.display(),
                    f.tls_key.display(),
                    f.signing_cert.display(),
                    f.signing_key.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => demo::run(args).await,
        Command::Conformance(args) => conformance::run(args).await,
        Command::Bench { command } => bench::run(command).await,
    }
}

async fn token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let config = match &cmd {
        TokenCommand::Issue { config, .. }
        | TokenCommand::List { config }
        | TokenCommand::Revoke { config, .. } => config.clone(),
    };
    let node = Node::open(NodeConfig::load(&config)?, node::system_clock())?;
    let result = async {
        match cmd {
            TokenCommand::Issue {
                participant,
                label,
                days,
                ..
            } => {
                let until = days.map(|d| {
                    time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d))
                });
                let token = node.issue_token_until(&participant, &label, until).await?;
                println!("{token}");
            }
            TokenCommand::List { .. } => {
                let at = |us: i64| {
                    node::from_micros(us)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                };
                for t in node.tokens().await? {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(r), _) => format!("revoked {}", at(r)),
                        (None, Some(e)) => format!("expires {}", at(e)),
                        (None, None) => "valid".to_owned(),
                    };
                    println!(
                        "{}  {}  {:<24}  issued {}  {state}",
                        t.id,
                        t.participant,
                        format!("{:?}", t.label),
                        at(t.created_at)
                    );
                }
            }
            TokenCommand::Revoke {
                id, participant, ..
            } => {
                let which = match (id, participant) {
                    (Some(id), _) => {
                        anyhow::ensure!(
                            id.len() == store::TOKEN_ID_LEN
                                && id.bytes().all(|b| b.is_ascii_hexdigit()),
                            "{id:?} is not a token id: `ortaq node token list` shows the {} hex digits",
                            store::TOKEN_ID_LEN
                        );
                        store::TokenSelector::Id(id)
                    }
                    (None, Some(p)) => store::TokenSelector::Participant(p),
                    (None, None) => anyhow::bail!("give --id or --participant"),
                };
                let n = node.revoke_tokens(which).await?;
                println!("{n} token(s) revoked");
            }
        }
        anyhow::Ok(())
    }
    .await;
    node.store().close().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}

fn report_verify(r: &store::VerifyReport) -> ExitCode {
    match &r.first_break {
        None => {
            println!(
                "message log intact: {} records, {} signed checkpoints, last checkpoint at record {}",
                r.records, r.checkpoints, r.last_checkpoint
            );
            ExitCode::SUCCESS
        }
        Some(b) => {
            println!(
                "message log BROKEN at record {}: {} ({} records verified before it)",
                b.seq, b.reason, r.records
            );
            ExitCode::from(2)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
