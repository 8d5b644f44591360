//! The adapter API as an IS sees it, over real HTTP: submission rules, the inbox contract,
//! participant isolation, the SOAP passthrough, metrics and graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter::http::HttpAdapter;
use adapter::{Adapter, AdapterError, Submission};
use node::Node;
use node::config::{LimitsSection, NodeConfig, ParticipantConfig, StoreSection};
use serde_json::Value;

const A: &str = "EAEU://KZ/CA/conformity-body";
const B: &str = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002";
const C: &str = "EAEU://KZ/CA/customs";

struct TestNode {
    base: String,
    a: HttpAdapter,
    b: HttpAdapter,
    c: HttpAdapter,
    running: host::Running,
    dir: tempfile::TempDir,
    node: Arc<Node>,
}

fn config(dir: &std::path::Path, port: u16) -> NodeConfig {
    NodeConfig {
        segment: "KZ".into(),
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: dir.to_owned(),
        store: StoreSection::default(),
        participants: [A, B, C]
            .iter()
            .map(|a| ParticipantConfig {
                address: a.to_string(),
                name: String::new(),
            })
            .collect(),
        limits: LimitsSection {
            max_envelope_bytes: 256 * 1024,
            ..Default::default()
        },
        checkpoint_every: 1000,
        federation: None,
        delivery: Default::default(),
        nsi: None,
        processes: None,
        ttp: None,
        tsa: None,
        tls: None,
        signal_namespace: None,
        journal: None,
        queue: None,
        web: None,
    }
}

async fn start_in(dir: tempfile::TempDir) -> TestNode {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let running = host::start_on(config(dir.path(), port), node::system_clock(), listener)
        .await
        .unwrap();
    let node = running.node.clone();
    let base = format!("http://127.0.0.1:{port}");
    let a = HttpAdapter::new(&base, &node.issue_token(A, "t").await.unwrap());
    let b = HttpAdapter::new(&base, &node.issue_token(B, "t").await.unwrap());
    let c = HttpAdapter::new(&base, &node.issue_token(C, "t").await.unwrap());
    TestNode {
        base,
        a,
        b,
        c,
        running,
        dir,
        node,
    }
}

async fn start() -> TestNode {
    start_in(tempfile::tempdir().unwrap()).await
}

impl TestNode {
    async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await.unwrap();
        self.dir
    }
}

fn msg(to: &str, body: &str) -> Submission {
    conformity::sample::registration(to, body.into())
}

const DOC: &str = "<d:Doc xmlns:d=\"urn:EEC:R:Test:v1.0.0\">1</d:Doc>";

/// Sends `m` as participant A and compares the outcome with `expect`: `"201"`, `"200"`, or
/// `"<status> <rule or problem type>"`.
async fn check(t: &TestNode, m: Submission, expect: &str) {
    let got = match t.a.send(&m).await {
        Ok(r) if r.duplicate => "200".to_owned(),
        Ok(_) => "201".to_owned(),
        Err(AdapterError::Api { status, body }) => {
            let v: Value = serde_json::from_str(&body).unwrap();
            let what = v["rule"].as_str().map(str::to_owned).unwrap_or_else(|| {
                v["type"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            });
            format!("{status} {what}")
        }
        Err(e) => panic!("{e}"),
    };
    let shown: String = format!("{m:?}").chars().take(300).collect();
    assert_eq!(got, expect, "for {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_checked_before_anything_is_stored() {
    let t = start().await;
    check(&t, msg(B, DOC), "201").await;
    check(&t, msg("EAEU://KZ/CA/nobody", DOC), "422 unknown-recipient").await;
    check(&t, msg("EAEU://RU/CA/customs", DOC), "422 no-route").await;
    check(&t, msg("mailto:x@example.org", DOC), "400 header.to").await;
    check(
        &t,
        Submission {
            transaction: "P.MM.01.TRN.001".into(),
            ..msg(B, DOC)
        },
        "400 header.action-consistency",
    )
    .await;
    check(
        &t,
        Submission {
            version: "1.0".into(),
            ..msg(B, DOC)
        },
        "400 header.action",
    )
    .await;
    check(
        &t,
        Submission {
            conversation_id: Some("42".into()),
            ..msg(B, DOC)
        },
        "400 header.conversation-id",
    )
    .await;
    check(
        &t,
        Submission {
            message_id: Some("not-a-uuid".into()),
            ..msg(B, DOC)
        },
        "400 header.message-id",
    )
    .await;
    check(
        &t,
        msg(
            B,
            "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>",
        ),
        "400 xml.dtd",
    )
    .await;
    check(&t, msg(B, "<a/><b/>"), "400 xml.malformed").await;
    check(&t, msg(B, "plain text"), "400 xml.malformed").await;
    check(
        &t,
        msg(B, &format!("<d>{}</d>", "x".repeat(300 * 1024))),
        "400 xml.too-large",
    )
    .await;
    check(
        &t,
        msg(
            B,
            "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"/>",
        ),
        "400 body.one-document",
    )
    .await;

    // Retrying with the caller's MessageID is safe; reusing someone else's is not.
    let mid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let first =
        t.a.send(&Submission {
            message_id: Some(mid.clone()),
            ..msg(B, DOC)
        })
        .await
        .unwrap();
    let again =
        t.a.send(&Submission {
            message_id: Some(mid.clone()),
            ..msg(B, DOC)
        })
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate);
    // The original receipt: its TrackID, AcceptTime and the conversation the first send
    // opened (neither send named one).
    assert_eq!(
        (first.track_id, first.accept_time, first.conversation_id),
        (again.track_id, again.accept_time, again.conversation_id)
    );
    let stolen =
        t.c.send(&Submission {
            message_id: Some(mid),
            ..msg(B, DOC)
        })
        .await;
    assert!(
        matches!(stolen, Err(AdapterError::Api { status: 409, .. })),
        "{stolen:?}"
    );

    // Only what was accepted is in the store: 1 + 2 first sends (the duplicate stored nothing).
    let (outbox, inbox) = t.node.store().queue_depth().await.unwrap();
    assert!(outbox + inbox == 2, "outbox {outbox} + inbox {inbox}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_checked() {
    let t = start().await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/inbox", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let forged = HttpAdapter::new(&t.base, "ortaq_forged");
    assert!(matches!(
        forged.inbox(0, 1, 0).await,
        Err(AdapterError::Api { status: 401, .. })
    ));
    // Tokens are stored hashed: the token text is nowhere in the database file.
    let token = t.node.issue_token(A, "x").await.unwrap();
    let dir = t.stop().await;
    let mut bytes = std::fs::read(dir.path().join("node.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("node.db-wal")) {
        bytes.extend(wal);
    }
    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_long_polls_and_never_repeats_an_acknowledged_message() {
    let t = start().await;
    let b = t.b.clone();
    let poll = tokio::spawn(async move {
        let s = Instant::now();
        (b.inbox(0, 10, 10).await.unwrap(), s.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = t.a.send(&msg(B, DOC)).await.unwrap();
    let (page, waited) = poll.await.unwrap();
    assert_eq!(page.messages.len(), 1, "long poll returned {page:?}");
    assert!(
        waited < Duration::from_secs(5),
        "woken by the delivery, not by the timeout"
    );
    assert_eq!(page.messages[0].message_id, r.message_id);
    assert_eq!(page.messages[0].from, A);

    // Until acknowledged it is handed out again (at-least-once towards the IS) ...
    assert_eq!(t.b.inbox(0, 10, 0).await.unwrap().messages.len(), 1);
    // ... the cursor moves past it ...
    assert!(
        t.b.inbox(page.cursor, 10, 0)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    // ... and after the acknowledgement never again.
    assert!(t.b.ack(&r.message_id).await.unwrap());
    assert!(!t.b.ack(&r.message_id).await.unwrap());
    assert!(t.b.inbox(0, 10, 0).await.unwrap().messages.is_empty());
    let st = t.a.status(&r.message_id).await.unwrap();
    let states: Vec<&str> = st.history.iter().map(|h| h.state.as_str()).collect();
    assert_eq!(
        states,
        [
            "accepted",
            "queued",
            "in_inbox",
            "delivered",
            "acknowledged"
        ]
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_sees_only_its_own_messages() {
    let t = start().await;
    let r = t.a.send(&msg(B, DOC)).await.unwrap();
    t.b.inbox(0, 10, 5).await.unwrap();
    assert!(t.b.status(&r.message_id).await.is_ok());
    assert!(matches!(
        t.c.status(&r.message_id).await,
        Err(AdapterError::Api { status: 404, .. })
    ));
    assert!(matches!(
        t.c.ack(&r.message_id).await,
        Err(AdapterError::Api { status: 404, .. })
    ));
    assert!(t.c.inbox(0, 10, 0).await.unwrap().messages.is_empty());
    // The sender cannot acknowledge on the recipient's behalf either.
    assert!(matches!(
        t.a.ack(&r.message_id).await,
        Err(AdapterError::Api { status: 404, .. })
    ));
    t.stop().await;
}

fn soap_from(reply_to: &str, extra_header: &str) -> (String, String) {
    let mid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let xml = format!(
        r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:int="urn:EEC:Interaction:v1.0"><soap:Header><wsa:To>{B}</wsa:To><wsa:ReplyTo><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo><wsa:Action>int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001</wsa:Action><wsa:MessageID>{mid}</wsa:MessageID><int:ConversationID>urn:uuid:{}</int:ConversationID>{extra_header}</soap:Header><soap:Body>{DOC}</soap:Body></soap:Envelope>"#,
        uuid::Uuid::new_v4()
    );
    (xml, mid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soap_passthrough_answers_rcv_or_a_fault() {
    use envelope::{Body, MessageKind, Origin, ParseOptions, SignalKind, parse};
    let t = start().await;
    let (xml, mid) = soap_from(A, "");
    let first = t.a.send_envelope(&xml).await.unwrap();
    let rcv = parse(first.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap();
    assert_eq!(rcv.header.kind(), MessageKind::Signal(SignalKind::Rcv));
    // A repeat of the same envelope gets the same RCV, byte for byte, and is not delivered
    // twice.
    assert_eq!(t.a.send_envelope(&xml).await.unwrap(), first);
    assert_eq!(rcv.header.relates_to.as_ref().unwrap().id.to_string(), mid);
    // The bytes as received are kept beside the stamped envelope that is forwarded.
    let page = t.b.inbox(0, 10, 5).await.unwrap();
    let stored = parse(
        page.messages[0].envelope.as_bytes(),
        &ParseOptions::new(Origin::Platform),
    )
    .unwrap();
    assert!(stored.header.integration.is_some());

    // (envelope, HTTP status, rule named in the Fault reason, table-8 subcode)
    let stamp = "<int:Integration><int:TrackID>urn:uuid:3e0b9d7f-84d8-4d41-a091-5c6e1f203142</int:TrackID><int:AcceptTime>2026-01-01T10:00:00Z</int:AcceptTime></int:Integration>";
    let (plain, _) = soap_from(A, "");
    let cases = [
        (
            soap_from(A, stamp).0,
            400,
            "header.integration-reserved",
            "wsa:InvalidAddressingHeader",
        ),
        (
            soap_from(C, "").0,
            403,
            "authenticated participant",
            "wsa:InvalidAddressingHeader",
        ),
        (
            "<soap:Envelope".to_owned(),
            400,
            "xml.malformed",
            "int:DataError",
        ),
        (
            plain.replace("2003/05/soap-envelope", "2003/05/soap-envelope-x"),
            400,
            "soap.version",
            "int:DataError",
        ),
        (
            plain.replace(&format!("<wsa:To>{B}</wsa:To>"), ""),
            400,
            "wsa:To is mandatory",
            "wsa:MessageAddressingHeaderRequired",
        ),
        (
            plain.replace(
                &format!("<wsa:To>{B}</wsa:To>"),
                "<wsa:To>EAEU://KZ/CA/nobody</wsa:To>",
            ),
            400,
            "nobody",
            "wsa:DestinationUnreachable",
        ),
        (
            {
                let c = plain.find("<int:ConversationID>").unwrap();
                let e =
                    plain.find("</int:ConversationID>").unwrap() + "</int:ConversationID>".len();
                format!("{}{}", &plain[..c], &plain[e..])
            },
            400,
            "int:ConversationID is mandatory",
            "int:InvalidHeader",
        ),
    ];
    let http = reqwest::Client::new();
    let token = t.node.issue_token(A, "raw").await.unwrap();
    for (xml, status, needle, subcode) in cases {
        let r = http
            .post(format!("{}/v1/soap", t.base))
            .bearer_auth(&token)
            .body(xml.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{xml}");
        let fault = parse(
            r.text().await.unwrap().as_bytes(),
            &ParseOptions::new(Origin::Any),
        )
        .unwrap();
        let Body::Fault(f) = fault.body else {
            panic!("not a Fault")
        };
        assert!(
            f.reason_ru.contains(needle),
            "{} lacks {needle}",
            f.reason_ru
        );
        assert_eq!(
            f.subcode.map(envelope::Subcode::qname).as_deref(),
            Some(subcode),
            "{needle}"
        );
        assert_eq!(
            f.reasons[0].0, "en",
            "an English text beside the Russian one"
        );
        assert_eq!(f.problem_message.as_deref(), Some(xml.as_str()));
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_openapi_are_served() {
    let t = start().await;
    for _ in 0..3 {
        t.a.send(&msg(B, DOC)).await.unwrap();
    }
    let _ = t.a.send(&msg("EAEU://KZ/CA/nobody", DOC)).await;
    t.b.inbox(0, 10, 5).await.unwrap();
    let m = reqwest::get(format!("{}/metrics", t.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "ortaq_messages_accepted_total",
        "ortaq_messages_rejected_total",
        "ortaq_submit_seconds_bucket",
        "ortaq_outbox_pending",
        "ortaq_inbox_unacknowledged",
        "ortaq_store_commit_batches_total",
    ] {
        assert!(m.contains(name), "metrics lack {name}:\n{m}");
    }
    let h: Value = reqwest::get(format!("{}/health", t.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (h["status"].as_str(), h["segment"].as_str()),
        (Some("ok"), Some("KZ"))
    );
    let served = reqwest::get(format!("{}/openapi.json", t.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, node::api::openapi_json());
    t.stop().await;
}

#[test]
fn committed_openapi_document_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let fresh = node::api::openapi_json() + "\n";
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p node --test api"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_loses_nothing_that_was_acknowledged() {
    let t = start().await;
    // The stop comes once the first acknowledgement is out and the rest are in flight, not
    // after a fixed pause: on a slow, busy runner 20 ms once passed before any answer.
    let answered = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for i in 0..400 {
        let (a, answered) = (t.a.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            if i > 200 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let r = a.send(&msg(B, DOC)).await;
            if r.is_ok() {
                answered.notify_one();
            }
            r
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), answered.notified())
        .await
        .expect("no submission acknowledged within a minute");
    let dir = t.stop().await;
    let mut accepted = Vec::new();
    for task in tasks {
        if let Ok(r) = task.await.unwrap() {
            accepted.push(r.message_id);
        }
    }
    assert!(!accepted.is_empty());
    let t = start_in(dir).await;
    for id in &accepted {
        assert!(
            t.node.store().message(id).await.unwrap().is_some(),
            "{id} was acknowledged but lost"
        );
    }
    let report = t
        .node
        .store()
        .verify_log(t.node.verifying_key())
        .await
        .unwrap();
    assert_eq!(report.first_break, None);
    t.stop().await;
}

/// The production engine: the same node, its store on the PostgreSQL server of this machine
/// (a schema of its own), through submit, long poll, acknowledgement and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_postgresql_keeps_the_same_promises() {
    let Some(postgres) = testkit::postgres_schema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = config(dir.path(), port);
    cfg.store = StoreSection {
        engine: Some("postgres".into()),
        postgres: Some(postgres),
    };
    let running = host::start_on(cfg.clone(), node::system_clock(), listener)
        .await
        .unwrap();
    let node = running.node.clone();
    let url = format!("http://127.0.0.1:{port}");
    let (ta, tb) = (
        node.issue_token(A, "t").await.unwrap(),
        node.issue_token(B, "t").await.unwrap(),
    );
    let (a, b) = (HttpAdapter::new(&url, &ta), HttpAdapter::new(&url, &tb));
    let r = a.send(&msg(B, DOC)).await.unwrap();
    assert!(
        a.send(&Submission {
            message_id: Some(r.message_id.clone()),
            ..msg(B, DOC)
        })
        .await
        .unwrap()
        .duplicate
    );
    let page = b.inbox(0, 10, 10).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert!(b.ack(&r.message_id).await.unwrap());
    running.stop().await.unwrap();

    let node = Node::open(cfg, node::system_clock()).unwrap();
    let report = node.store().verify_log(node.verifying_key()).await.unwrap();
    assert_eq!((report.records, report.first_break), (1, None));
    let (rec, _) = node.status(B, &r.message_id).await.unwrap();
    assert_eq!(rec.state, "acknowledged");
    node.store().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_is_served_as_of_a_date_and_searchable() {
    let t = start().await;
    let countries = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nsi/countries.json"),
    )
    .unwrap();
    let idx = t.node.reference();
    node::reference::import(
        t.node.store(),
        &idx,
        &countries,
        nsi::format::Format::Json,
        None,
        false,
        1,
    )
    .await
    .unwrap();
    t.node.reload_reference().await.unwrap();
    let get = |path: &str| {
        let url = format!("{}{path}", t.base);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, by) = get("/v1/nsi/P.CLS.019/items/BY?as_of=2026-11-23").await;
    assert_eq!(status, 200, "{by}");
    assert_eq!(by["names"]["kk"], "Беларусь");
    assert_eq!(by["attributes"]["alpha3"], "BLR");
    let (status, found) =
        get("/v1/nsi/P.CLS.019/search?q=%D2%9A%D0%B0%D0%B7%D0%B0%D2%9B%D1%81%D1%82%D0%B0%D0%BD")
            .await;
    assert_eq!(status, 200);
    assert_eq!(found[0]["code"], "KZ", "Қазақстан: {found}");
    let (status, p) = get("/v1/nsi/P.CLS.019/items/XX").await;
    assert_eq!(
        (status, p["type"].as_str()),
        (404, Some("https://ortaq.dev/problems/not-found"))
    );
    let (status, p) = get("/v1/nsi/P.CLS.019/items/BY?as_of=23.11.2026").await;
    assert_eq!(status, 400, "{p}");
    let (status, versions) = get("/v1/nsi/P.CLS.019/versions").await;
    assert_eq!((status, versions[0]["version"].as_i64()), (200, Some(1)));
    let (status, d) = get("/v1/nsi/P.CLS.019/diff?from=1&to=1").await;
    assert_eq!(
        (status, d["changed"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let csv = reqwest::get(format!("{}/v1/nsi/P.CLS.019/versions/1?format=csv", t.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("code,parent,valid_from,valid_to,act,") && csv.contains("BY,,,,,"),
        "{}",
        &csv[..200]
    );
    let (status, _) = get("/v1/nsi/P.CLS.019/versions/9").await;
    assert_eq!(status, 404);
    let (_, list) = get("/v1/nsi").await;
    assert_eq!(list["resources"][0]["code"], "P.CLS.019");
    assert_eq!(list["resources"][0]["version"], 1);
    t.stop().await;
}

/// What an adapter answered, as a user would tell answers apart: the outcome, or the status
/// with the problem's type, rule and detail (or the Fault's reason).
async fn outcome(a: &impl Adapter, m: &Submission) -> String {
    match a.send(m).await {
        Ok(r) if r.duplicate => "200 duplicate".to_owned(),
        Ok(_) => "201".to_owned(),
        Err(e) => described(e),
    }
}

fn described(e: AdapterError) -> String {
    match (&e, e.problem()) {
        (_, Some(p)) => format!("{} {} {:?} {}", p.status, p.kind_name(), p.rule, p.detail),
        (AdapterError::Api { status, body }, None) => {
            let f = envelope::parse(
                body.as_bytes(),
                &envelope::ParseOptions::new(envelope::Origin::Any),
            )
            .expect("a SOAP Fault");
            let envelope::Body::Fault(f) = f.body else {
                panic!("not a Fault: {body}")
            };
            format!("{status} fault {}", f.reason_ru)
        }
        _ => panic!("{e}"),
    }
}

/// The adapter in-process (for the services and applications beside a node) and over HTTP
/// (for ISs anywhere) answer alike: the same outcomes, the same problem documents, the same
/// Faults, the same inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_adapter_answers_as_the_http_api_does() {
    let t = start().await;
    let local = t.running.adapter(A).unwrap();
    let local_b = t.running.adapter(B).unwrap();
    let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let cases = [
        msg(B, DOC),
        msg("EAEU://KZ/CA/nobody", DOC),
        msg("EAEU://RU/CA/customs", DOC),
        msg("mailto:x@example.org", DOC),
        Submission {
            transaction: "P.MM.01.TRN.001".into(),
            ..msg(B, DOC)
        },
        Submission {
            conversation_id: Some("42".into()),
            ..msg(B, DOC)
        },
        msg(
            B,
            "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>",
        ),
        msg(B, &format!("<d>{}</d>", "x".repeat(300 * 1024))),
        // The same MessageID through both: the second answer repeats the first receipt.
        Submission {
            message_id: Some(id.clone()),
            ..msg(B, DOC)
        },
    ];
    for m in &cases {
        let over_http = outcome(&t.a, m).await;
        let in_process = outcome(&local, m).await;
        let expected = if m.message_id.as_deref() == Some(id.as_str()) {
            // Whichever came first stored it; the other is a duplicate.
            assert_eq!(
                (over_http.as_str(), in_process.as_str()),
                ("201", "200 duplicate")
            );
            continue;
        } else {
            over_http
        };
        assert_eq!(in_process, expected, "for {m:?}");
    }
    // Someone else's MessageID: the same conflict either way.
    let stolen = Submission {
        message_id: Some(id),
        ..msg(B, DOC)
    };
    let c_local = t.running.adapter(C).unwrap();
    assert_eq!(
        outcome(&c_local, &stolen).await,
        outcome(&t.c, &stolen).await
    );
    assert!(outcome(&t.c, &stolen).await.starts_with("409 conflict"));
    // The SOAP passthrough: an RCV either way, and the same Fault for a broken envelope.
    let (xml, _) = soap_from(A, "");
    assert!(local.send_envelope(&xml).await.unwrap().contains("RCV"));
    let (forged, _) = soap_from(C, "");
    let f_http = described(t.a.send_envelope(&forged).await.unwrap_err());
    let f_local = described(local.send_envelope(&forged).await.unwrap_err());
    assert_eq!(f_local, f_http);
    assert!(f_local.starts_with("403 fault"), "{f_local}");
    // The inbox, status and envelope of what B received (four messages, once the local
    // delivery worker has moved the last one), read both ways.
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.b.inbox(0, 100, 1).await.unwrap().messages.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "B's inbox never held four messages"
        );
    }
    let over_http = t.b.inbox(0, 100, 0).await.unwrap();
    let in_process = local_b.inbox(0, 100, 0).await.unwrap();
    assert_eq!(over_http.messages.len(), 4, "{over_http:?}");
    assert_eq!(
        serde_json::to_value(&in_process).unwrap(),
        serde_json::to_value(&over_http).unwrap()
    );
    let first = &over_http.messages[0].message_id;
    assert_eq!(
        serde_json::to_value(local_b.status(first).await.unwrap()).unwrap(),
        serde_json::to_value(t.b.status(first).await.unwrap()).unwrap()
    );
    assert_eq!(
        local_b.envelope(first).await.unwrap(),
        t.b.envelope(first).await.unwrap()
    );
    assert_eq!(
        described(c_local.status(first).await.unwrap_err()),
        described(t.c.status(first).await.unwrap_err()),
        "someone else's message is not found, in-process as over HTTP"
    );
    assert!(local_b.ack(first).await.unwrap());
    assert!(!t.b.ack(first).await.unwrap());
    t.stop().await;
}

/// A token stops working when it is revoked (within `TOKEN_RECHECK`, without a restart), when
/// it expires, and when its participant is no longer hosted by the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_die_when_revoked_expired_or_their_participant_leaves() {
    let t = start().await;
    let refused = |r: Result<adapter::InboxPage, AdapterError>| {
        matches!(r, Err(AdapterError::Api { status: 401, .. }))
    };
    assert!(t.a.inbox(0, 1, 0).await.is_ok());
    // Revoked by id, as `ortaq node token list` shows it: refused within the recheck time.
    let id = t
        .node
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.participant == A)
        .unwrap()
        .id;
    let revoked = Instant::now();
    assert_eq!(
        t.node
            .revoke_tokens(store::TokenSelector::Id(id))
            .await
            .unwrap(),
        1
    );
    while !refused(t.a.inbox(0, 1, 0).await) {
        assert!(
            revoked.elapsed() < node::TOKEN_RECHECK * 2,
            "a revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An expired token is refused; one that has not expired yet works.
    let now = time::OffsetDateTime::now_utc();
    let old = t
        .node
        .issue_token_until(B, "old", Some(now - time::Duration::seconds(1)))
        .await
        .unwrap();
    let fresh = t
        .node
        .issue_token_until(B, "fresh", Some(now + time::Duration::hours(1)))
        .await
        .unwrap();
    assert!(refused(
        HttpAdapter::new(&t.base, &old).inbox(0, 1, 0).await
    ));
    assert!(
        HttpAdapter::new(&t.base, &fresh)
            .inbox(0, 1, 0)
            .await
            .is_ok()
    );
    // C leaves the node's configuration: its token dies with it; B's lives on.
    let c_token = t.node.issue_token(C, "c").await.unwrap();
    let dir = t.stop().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = config(dir.path(), port);
    cfg.participants.retain(|p| p.address != C);
    let running = host::start_on(cfg, node::system_clock(), listener)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert!(refused(
        HttpAdapter::new(&base, &c_token).inbox(0, 1, 0).await
    ));
    assert!(HttpAdapter::new(&base, &fresh).inbox(0, 1, 0).await.is_ok());
    running.stop().await.unwrap();
}

/// What a refusal costs stays bounded: a Fault quotes at most `envelope::MAX_QUOTE` bytes of
/// the message it refuses (a body of `]]>`, each split in the quote, once came back several
/// times its size); each door takes no larger body than its work needs; and the `Bearer`
/// scheme is matched as RFC 7235 says, whatever its case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_bounded_and_the_bearer_scheme_is_case_insensitive() {
    let t = start().await;
    let token = t.node.issue_token(A, "raw").await.unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>, auth: String| {
        http.post(format!("{}{path}", t.base))
            .header("authorization", auth)
            .body(body)
            .send()
    };
    let body = "]]>".repeat(80_000).into_bytes(); // 240 KB, under the envelope limit
    let r = post("/v1/soap", body.clone(), format!("Bearer {token}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let fault = r.bytes().await.unwrap();
    // The worst case of the quote: every `]]>` written split, 15 bytes for 3.
    assert!(
        fault.len() < envelope::MAX_QUOTE * 6,
        "a {} byte Fault for a {} byte request",
        fault.len(),
        body.len()
    );
    let f = envelope::parse(&fault, &envelope::ParseOptions::new(envelope::Origin::Any)).unwrap();
    let envelope::Body::Fault(f) = f.body else {
        panic!("not a Fault")
    };
    assert!(
        f.problem_message
            .unwrap()
            .ends_with(&format!("({} bytes in all)", body.len()))
    );
    // Too large for its door: a time-stamp request of 64 KB, an envelope over the limit.
    let r = post("/v1/tsa", vec![0x30; 64 * 1024], format!("Bearer {token}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = post(
        "/v1/soap",
        vec![b'x'; 400 * 1024],
        format!("Bearer {token}"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    // The scheme in any case; another scheme is no token.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = http
            .get(format!("{}/v1/inbox", t.base))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = http
        .get(format!("{}/v1/inbox", t.base))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    t.stop().await;
}

/// What a node keeps is for its operator only: the data folder 0700; the store, its WAL and the
/// node key 0600.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_the_key_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let running = host::start_on(config(&dir, port), node::system_clock(), listener)
        .await
        .unwrap();
    let a = HttpAdapter::new(
        &format!("http://127.0.0.1:{port}"),
        &running.node.issue_token(A, "t").await.unwrap(),
    );
    a.send(&msg(B, DOC)).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in ["node.db", "node.db-wal", "node.key"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    running.stop().await.unwrap();
}

/// The synchronous adapter: A's request waits at `POST /v1/exchange` until B's IS answers it,
/// and gets the answer; a request nobody answers in time gets 504, and the late answer then
/// waits in A's inbox like any message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synchronous_exchange_answers_with_the_response_or_times_out_without_losing_it() {
    let t = start().await;
    let token = t.node.issue_token(A, "sync").await.unwrap();
    let http = reqwest::Client::new();
    let exchange = |wait: u64, m: Submission| {
        let r = http
            .post(format!("{}/v1/exchange?wait={wait}", t.base))
            .bearer_auth(&token)
            .json(&m)
            .send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // B's IS answers whatever comes, relating its answer to it.
    let answer_one = |b: HttpAdapter| async move {
        let page = b.inbox(0, 1, 20).await.unwrap();
        let q = &page.messages[0];
        let mut reply = msg(A, DOC);
        reply.relates_to = Some(q.message_id.clone());
        reply.conversation_id = q.conversation_id.clone();
        let sent = b.send(&reply).await.unwrap();
        b.ack(&q.message_id).await.unwrap();
        sent.message_id
    };
    let b = t.b.clone();
    let responder = tokio::spawn(answer_one(b));
    let (status, body) = exchange(20, msg(B, DOC)).await;
    assert_eq!(status, 200, "{body}");
    let reply_id = responder.await.unwrap();
    assert_eq!(
        body["answer"]["message_id"].as_str(),
        Some(reply_id.as_str())
    );
    assert_eq!(body["answer"]["from"].as_str(), Some(B));
    assert!(
        body["answer"]["envelope"]
            .as_str()
            .unwrap()
            .contains("RelatesTo")
    );

    // Nobody answers within a second: 504, and the request went all the same.
    let (status, body) = exchange(1, msg(B, DOC)).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        body["type"].as_str(),
        Some("https://ortaq.dev/problems/no-answer-yet")
    );
    let late = answer_one(t.b.clone()).await;
    // The first answer may still be in A's inbox, so a long poll returns at once: look again
    // until the late one has arrived too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut arrived = false;
    while !arrived && Instant::now() < deadline {
        let page = t.a.inbox(0, 10, 1).await.unwrap();
        arrived = page.messages.iter().any(|m| m.message_id == late);
        if !arrived {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(arrived, "the late answer is in A's inbox");
    t.stop().await;
}
