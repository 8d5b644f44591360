//! `ortaq demo`: a node for the Commission and for each member state, each with its own store,
//! key and port, and a P.TS.01 exchange in every one of them that a newcomer can follow:
//! a conformity body's IS submits a certificate to the registry IS of its segment, the registry
//! takes it from its inbox, acknowledges it and answers with a PRS signal through the SOAP
//! passthrough; a retry is recognised as a duplicate; a message breaking a Decision No. 5 rule
//! is refused; finally every node's message log is verified.
//!
//! Exchanges between nodes (over mutual TLS, through the EEC node) come with the federation
//! work; until then each node's exchange stays inside its segment.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use envelope::{Origin, ParseOptions, Signal, SignalKind};
use node::Node;
use node::client::{AdapterClient, ClientError, Outgoing};
use node::config::{LimitsSection, NodeConfig, ParticipantConfig, StoreSection};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Exit after the exchange, with status 0 only if every message was delivered exactly once.
    #[arg(long)]
    once: bool,
    /// Port of the first node; the others take the next five.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Folder for the nodes' stores and keys (a temporary folder if absent).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const SEGMENTS: [&str; 6] = ["EEC", "AM", "BY", "KZ", "KG", "RU"];

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

fn certificate(seg: &str, n: u32) -> String {
    format!(
        r#"<tr:ConformityDocDetails xmlns:tr="urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1" xmlns:csdo="urn:EEC:M:SimpleDataObjects:v0.4.12">
  <csdo:EDocCode>R.TR.TS.01.001</csdo:EDocCode>
  <tr:DocId>ЕАЭС {seg}-{n:04}/2026</tr:DocId>
  <csdo:UnifiedCountryCode codeListId="P.CLS.019">{country}</csdo:UnifiedCountryCode>
  <tr:ProductName>Электродвигатели асинхронные</tr:ProductName>
  <tr:StartDate>2026-11-23</tr:StartDate>
</tr:ConformityDocDetails>"#,
        country = if seg == "EEC" { "KZ" } else { seg }
    )
}

struct Tally {
    sent: usize,
    delivered_once: usize,
    problems: Vec<String>,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let tmp;
    let dir = match args.dir {
        Some(d) => d,
        None => {
            tmp = tempfile::Builder::new().prefix("ortaq-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    println!("ortaq demo: one node per segment of the EAEU integrated information system");
    println!("data folder: {}\n", dir.display());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut nodes = Vec::new();
    let mut servers = Vec::new();
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
                    name: "registry IS".into(),
                },
            ],
            limits: LimitsSection::default(),
            checkpoint_every: 1000,
            federation: None,
            delivery: Default::default(),
        };
        std::fs::create_dir_all(&cfg.data_dir)?;
        std::fs::write(
            cfg.data_dir.join("node.toml"),
            format!(
                "segment = \"{seg}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \".\"\n\n[[participants]]\naddress = \"{body}\"\nname = \"conformity body IS\"\n\n[[participants]]\naddress = \"{registry}\"\nname = \"registry IS\"\n"
            ),
        )?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("port {port} is taken; choose another with --base-port"))?;
        let node = Node::open(cfg, node::system_clock())?;
        let t_body = node.issue_token(&body, "demo").await?;
        let t_reg = node.issue_token(&registry, "demo").await?;
        let _ = writeln!(
            tokens_file,
            "{seg}\t{body}\t{t_body}\n{seg}\t{registry}\t{t_reg}"
        );
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(node::serve(
            node.clone(),
            listener,
            async move {
                let _ = rx.changed().await;
            },
        )));
        println!("  node {seg:<3} http://127.0.0.1:{port}   hosts {body} and {registry}");
        nodes.push((seg.to_string(), port, node, body, registry, t_body, t_reg));
    }
    let tokens_path = dir.join("tokens.txt");
    if tokens_path.exists() {
        // A re-run with --dir issues new tokens; the old list is stale.
        std::fs::remove_file(&tokens_path)?;
    }
    trust::files::write_private(&tokens_path, tokens_file.as_bytes())?;
    println!();

    let http = reqwest::Client::new();
    let mut tally = Tally {
        sent: 0,
        delivered_once: 0,
        problems: Vec::new(),
    };
    let started = Instant::now();
    for (seg, port, _, body, registry, t_body, t_reg) in &nodes {
        let base = format!("http://127.0.0.1:{port}");
        let ib = AdapterClient::with_http(http.clone(), &base, t_body);
        let ir = AdapterClient::with_http(http.clone(), &base, t_reg);
        if let Err(e) = exchange(seg, body, registry, &ib, &ir, &mut tally).await {
            tally.problems.push(format!("{seg}: {e:#}"));
        }
    }
    let elapsed = started.elapsed();

    println!("\nmessage logs:");
    for (seg, _, node, ..) in &nodes {
        node.store().checkpoint().await?;
        let r = node.store().verify_log(node.verifying_key()).await?;
        match r.first_break {
            None => println!(
                "  {seg:<3} intact: {} records, {} signed checkpoints",
                r.records, r.checkpoints
            ),
            Some(b) => {
                println!("  {seg:<3} BROKEN at record {}: {}", b.seq, b.reason);
                tally.problems.push(format!("{seg}: log broken"));
            }
        }
    }

    let ok = tally.problems.is_empty() && tally.delivered_once == tally.sent;
    println!(
        "\nsummary: {} nodes, {} messages sent, {} delivered exactly once, {} problems, {}",
        nodes.len(),
        tally.sent,
        tally.delivered_once,
        tally.problems.len(),
        ms(elapsed)
    );
    for p in &tally.problems {
        println!("  problem: {p}");
    }

    if !args.once {
        println!(
            "\nThe nodes keep serving. API tokens: {}. OpenAPI: http://127.0.0.1:{}/openapi.json. Stop with Ctrl-C.",
            dir.join("tokens.txt").display(),
            args.base_port
        );
        crate::shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    for s in servers {
        s.await??;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn exchange(
    seg: &str,
    body: &str,
    registry: &str,
    ib: &AdapterClient,
    ir: &AdapterClient,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    println!("[{seg}] P.TS.01: conformity body -> registry");
    let mid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let out = Outgoing {
        to: registry.into(),
        process: "P.TS.01".into(),
        version: "1.0.1".into(),
        procedure: "P.TS.01.PRC.001".into(),
        transaction: "P.TS.01.TRN.001".into(),
        message: "P.TS.01.MSG.001".into(),
        body: certificate(seg, 1),
        message_id: Some(mid.clone()),
        ..Default::default()
    };
    let t = Instant::now();
    let receipt = ib.send(&out).await?;
    tally.sent += 1;
    println!(
        "  {body} sent P.TS.01.MSG.001 {}\n      accepted after durable commit in {}: TrackID {} AcceptTime {}",
        receipt.message_id,
        ms(t.elapsed()),
        receipt.track_id,
        receipt.accept_time
    );

    let t = Instant::now();
    let again = ib.send(&out).await?;
    if !again.duplicate || again.track_id != receipt.track_id {
        bail!("a retry with the same MessageID was not recognised");
    }
    println!(
        "  retry with the same MessageID answered with the original receipt ({}), stored once",
        ms(t.elapsed())
    );

    let mut bad = out.clone();
    bad.message_id = None;
    bad.transaction = "P.MM.01.TRN.001".into();
    match ib.send(&bad).await {
        Err(ClientError::Api { status: 400, body }) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            println!(
                "  a message with a transaction of another process refused: 400 [{}] {}",
                v["rule"].as_str().unwrap_or("?"),
                v["detail"].as_str().unwrap_or("?")
            );
        }
        other => bail!("a message breaking the Action rule was not refused: {other:?}"),
    }

    let t = Instant::now();
    let page = ir.inbox(0, 10, 10).await?;
    let [m] = page.messages.as_slice() else {
        bail!(
            "registry inbox holds {} messages, expected 1",
            page.messages.len()
        );
    };
    if m.message_id != receipt.message_id {
        bail!(
            "registry received {} instead of {}",
            m.message_id,
            receipt.message_id
        );
    }
    let env = envelope::parse(m.envelope.as_bytes(), &ParseOptions::new(Origin::Platform))
        .context("the delivered envelope does not parse")?;
    println!(
        "  {registry} took it from its inbox after {} (long poll), envelope valid, ConversationID {}",
        ms(t.elapsed()),
        m.conversation_id.as_deref().unwrap_or("-")
    );
    ir.ack(&m.message_id).await?;
    if !ir.inbox(0, 10, 0).await?.messages.is_empty() {
        bail!("an acknowledged message was handed out again");
    }
    tally.delivered_once += 1;
    println!("  registry acknowledged it; the inbox never hands it out again");

    let prs = envelope::Envelope::signal_for(
        &env.header,
        envelope::Address::parse(registry)?,
        Signal::new(SignalKind::Prs, time::OffsetDateTime::now_utc()),
    )?;
    let t = Instant::now();
    let rcv = ir.send_envelope(&prs.to_xml()).await?;
    tally.sent += 1;
    let rcv = envelope::parse(rcv.as_bytes(), &ParseOptions::new(Origin::Any))?;
    println!(
        "  registry sent signal PRS «Принято в обработку» through the SOAP passthrough; gateway answered {:?} in {}",
        rcv.header.kind(),
        ms(t.elapsed())
    );

    let page = ib.inbox(0, 10, 10).await?;
    let [s] = page.messages.as_slice() else {
        bail!(
            "body inbox holds {} messages, expected the PRS",
            page.messages.len()
        );
    };
    if !s.action.ends_with("/PRS") {
        bail!("body received {} instead of the PRS", s.action);
    }
    ib.ack(&s.message_id).await?;
    tally.delivered_once += 1;
    let st = ib.status(&receipt.message_id).await?;
    let path: Vec<&str> = st.history.iter().map(|h| h.state.as_str()).collect();
    println!(
        "  body received the PRS and acknowledged it; its message went {}\n",
        path.join(" -> ")
    );
    Ok(())
}
