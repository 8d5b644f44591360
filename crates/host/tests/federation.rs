//! Nodes exchanging over real mutual TLS on loopback: KZ and RU reach each other through the
//! EEC relay. What a user would notice: a message arrives once, with the sender node's
//! signature still verifying at the destination; a repeated hand-over gets the original RCV;
//! anything unsigned, tampered, from the wrong segment or from outside the federation is
//! refused with nothing stored; a peer that is down gets the message once it is back; and a
//! message that cannot be delivered comes back to its sender as an ERR signal.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use adapter::Submission;
use adapter::http::HttpAdapter;
use axum::body::Bytes;
use envelope::{
    Address, ApplicationMessage, CpAction, Envelope, MessageKind, Origin, ParseOptions, Segment,
    SignalKind, UrnUuid,
};
use node::config::{FederationSection, LimitsSection, NodeConfig, ParticipantConfig, StoreSection};
use node::{Clock, Node};
use transport::hop::{CERTIFICATE_HEADER, HopSignature, HopSigner, HopVerifier, SIGNATURE_HEADER};

const SEGS: [&str; 3] = ["EEC", "KZ", "RU"];

fn seg(s: &str) -> Segment {
    Segment::parse(s).unwrap()
}

fn sender(s: &str) -> String {
    format!("EAEU://{s}/CA/conformity-body")
}

fn registry(s: &str) -> String {
    if s == "EEC" {
        "EAEU://EEC/CP/P.TS.01/P.ACT.001".into()
    } else {
        format!("EAEU://{s}/CP/P.TS.01/P.TS.01.ACT.002")
    }
}

fn querier(s: &str) -> String {
    format!("EAEU://{s}/CP/P.TS.01/P.TS.01.ACT.003")
}

use testkit::{free_addr, movable_clock};

struct Federation {
    dir: tempfile::TempDir,
    pki: PathBuf,
    addrs: BTreeMap<Segment, SocketAddr>,
    running: HashMap<&'static str, host::Running>,
    expire_after_secs: u64,
    /// Reference data distribution: EEC publishes to the national nodes.
    nsi: bool,
    /// Nodes enforcing the shipped process packages.
    enforcing: Vec<&'static str>,
    /// The EEC node's trusted third party (`[ttp]`) and time-stamp authority (`[tsa]`).
    ttp: Option<node::config::TtpSection>,
    /// The other nodes subscribe to the EEC node's trust list.
    trust_subscribers: bool,
    /// Diagnostic journals: every node reports each second, the EEC node collects.
    journal: bool,
}

impl Federation {
    fn new() -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let segs: Vec<Segment> = SEGS.iter().map(|s| seg(s)).collect();
        trust::pki::init(&pki, &segs, time::OffsetDateTime::now_utc()).unwrap();
        Federation {
            addrs: segs.iter().map(|s| (*s, free_addr())).collect(),
            dir,
            pki,
            running: HashMap::new(),
            expire_after_secs: 3600,
            nsi: false,
            enforcing: Vec::new(),
            ttp: None,
            trust_subscribers: false,
            journal: false,
        }
    }

    /// A federation whose EEC node runs the trusted third party and the time-stamp authority
    /// of a trust space of test keys (KZ, BY, RU), and that trust space.
    fn with_trust_space() -> (Federation, host::trustspace::TrustSpace) {
        let mut fed = Federation::new();
        // The list names identity providers too, so its distribution carries every element
        // the schema (P.XO.03's trust-list.xsd) allows.
        let providers = ["EEC", "KZ"]
            .iter()
            .map(|s| ttp::IdentityProvider {
                segment: s.to_string(),
                issuer: format!("https://{}.portal.example", s.to_lowercase()),
            })
            .collect();
        let space = host::trustspace::build_with(
            &fed.dir.path().join("trust"),
            &["KZ", "BY", "RU"],
            providers,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        fed.ttp = Some(space.ttp.clone());
        (fed, space)
    }

    fn config(&self, s: &'static str) -> NodeConfig {
        let mut cfg = NodeConfig {
            segment: s.into(),
            listen: free_addr(),
            data_dir: self.dir.path().join(s),
            store: StoreSection::default(),
            participants: [sender(s), registry(s), querier(s)]
                .into_iter()
                .map(|address| ParticipantConfig {
                    address,
                    name: String::new(),
                })
                .collect(),
            limits: LimitsSection::default(),
            checkpoint_every: 1000,
            federation: FederationSection::star(&self.pki, seg(s), seg("EEC"), &self.addrs),
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
        };
        cfg.delivery.retry_min_ms = 20;
        cfg.delivery.retry_max_ms = 200;
        cfg.delivery.request_timeout_secs = 5;
        cfg.delivery.expire_after_secs = self.expire_after_secs;
        if self.enforcing.contains(&s) {
            cfg.processes = Some(node::config::ProcessesSection {
                dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes"),
                validators: 1,
            });
        }
        // With the EEC's time-stamp authority up, the others have it stamp their checkpoints.
        if s != "EEC"
            && self.ttp.is_some()
            && let Some(f) = cfg.federation.as_mut()
        {
            f.timestamps_from = Some("EEC".into());
        }
        if s != "EEC"
            && self.trust_subscribers
            && let Some(t) = &self.ttp
        {
            cfg.ttp = Some(node::config::TtpSection {
                trust_list: self.dir.path().join(s).join("trust-list.xml"),
                trust_list_signer: t.trust_list_signer.clone(),
                key: None,
                cert: None,
                subscribers: Vec::new(),
                publisher: Some("EAEU://EEC/SR/trust".into()),
                refresh_secs: 1,
            });
        }
        if s == "EEC"
            && let Some(t) = &self.ttp
        {
            let mut t = t.clone();
            if self.trust_subscribers {
                t.subscribers = vec!["EAEU://KZ/SR/trust".into(), "EAEU://RU/SR/trust".into()];
            }
            cfg.ttp = Some(t);
            let (cert, key) = trust::pki::tsa_files(&self.pki, seg("EEC"));
            if !cert.exists() {
                trust::pki::issue_tsa(&self.pki, seg("EEC"), time::OffsetDateTime::now_utc())
                    .unwrap();
            }
            cfg.tsa = Some(node::config::TsaSection {
                key,
                cert,
                policy: None,
                batch_ms: 1,
            });
        }
        if self.journal {
            cfg.journal = Some(node::config::JournalSection {
                collector: (s != "EEC").then(|| "EAEU://EEC/SR/journal".to_owned()),
                report_secs: 1,
            });
        }
        if self.nsi {
            cfg.nsi = Some(if s == "EEC" {
                node::config::NsiSection {
                    subscribers: vec!["EAEU://KZ/SR/nsi".into(), "EAEU://RU/SR/nsi".into()],
                    ..Default::default()
                }
            } else {
                node::config::NsiSection {
                    publisher: Some("EAEU://EEC/SR/nsi".into()),
                    refresh_secs: 1,
                    ..Default::default()
                }
            });
        }
        cfg
    }

    async fn start_with(&mut self, s: &'static str, clock: Clock) -> Arc<Node> {
        let cfg = self.config(s);
        std::fs::create_dir_all(&cfg.data_dir).unwrap();
        // The federation listener is up when this returns.
        let r = host::start(cfg, clock).await.unwrap();
        let node = r.node.clone();
        self.running.insert(s, r);
        node
    }

    async fn start(&mut self, s: &'static str) -> Arc<Node> {
        self.start_with(s, node::system_clock()).await
    }

    async fn start_all(&mut self) {
        for s in SEGS {
            self.start(s).await;
        }
    }

    fn node(&self, s: &str) -> Arc<Node> {
        self.running[s].node.clone()
    }

    async fn stop(&mut self, s: &str) {
        let r = self.running.remove(s).unwrap();
        r.stop().await.unwrap();
    }

    async fn stop_all(&mut self) {
        for s in SEGS {
            if self.running.contains_key(s) {
                self.stop(s).await;
            }
        }
    }
}

fn certificate_doc(n: &str) -> String {
    format!(
        "<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:DocId>ЕАЭС {n}</tr:DocId></tr:ConformityDocDetails>"
    )
}

fn submission(to: &str, n: &str) -> Submission {
    conformity::sample::registration(to, certificate_doc(n))
}

/// Waits until `participant`'s inbox at `node` holds `n` messages, then returns them.
async fn inbox(node: &Node, participant: &str, n: usize) -> Vec<store::InboxItem> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = node
            .inbox(participant, 0, 1000, Duration::from_millis(200))
            .await
            .unwrap();
        if items.len() >= n {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{participant} has {} of {n} messages",
            items.len()
        );
    }
}

async fn states(node: &Node, participant: &str, id: &str) -> Vec<String> {
    let (_, hist) = node.status(participant, id).await.unwrap();
    hist.into_iter().map(|c| c.state.to_string()).collect()
}

async fn wait_for_state(node: &Node, participant: &str, id: &str, state: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = states(node, participant, id).await;
        if s.iter().any(|x| x == state) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {state}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_relay_once_with_the_senders_signature_intact() {
    let mut fed = Federation::new();
    fed.start_all().await;
    let (kz, eec, ru) = (fed.node("KZ"), fed.node("EEC"), fed.node("RU"));

    let r = kz
        .submit(&sender("KZ"), submission(&registry("RU"), "KZ-1"))
        .await
        .unwrap();
    let id = r.message_id.to_string();
    let got = inbox(&ru, &registry("RU"), 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].sender, sender("KZ"));

    // The bytes at RU are the bytes KZ signed; the relay changed nothing.
    let at_kz = kz.store().envelope(&id).await.unwrap().unwrap();
    assert_eq!(got[0].envelope, at_kz);
    let out = ru.store().signature(&id).await.unwrap().unwrap();
    let sig = HopSignature::from_headers(Some(&out.header), Some(&base64_encode(&out.certificate)))
        .unwrap();
    let verifier = HopVerifier::from_root_file(&trust::pki::root_cert_path(&fed.pki)).unwrap();
    verifier
        .verify(
            &got[0].envelope,
            &sig,
            seg("KZ"),
            time::OffsetDateTime::now_utc(),
        )
        .expect("KZ's signature verifies at RU");
    assert!(
        verifier
            .verify(
                &got[0].envelope,
                &sig,
                seg("EEC"),
                time::OffsetDateTime::now_utc()
            )
            .is_err(),
        "and it is KZ's, not the relay's"
    );

    assert_eq!(
        wait_for_state(&kz, &sender("KZ"), &id, "received_by_peer").await,
        ["accepted", "queued", "sent", "received_by_peer"]
    );
    let relayed = eec.store().message(&id).await.unwrap().unwrap();
    assert_eq!(relayed.direction, "relay");
    let at_ru = ru.store().message(&id).await.unwrap().unwrap();
    assert_eq!(at_ru.direction, "in");

    // The answer travels back the same way: a PRS signal from RU's registry to KZ's IS.
    let original = envelope::parse(&got[0].envelope, &ParseOptions::new(Origin::Any)).unwrap();
    let prs = Envelope::signal_for(
        &original.header,
        Address::parse(&registry("RU")).unwrap(),
        envelope::Signal::new(SignalKind::Prs, time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    ru.submit_envelope(&registry("RU"), prs.to_xml().as_bytes())
        .await
        .map_err(|(_, e)| e)
        .unwrap();
    ru.ack(&registry("RU"), &id).await.unwrap();
    let back = inbox(&kz, &sender("KZ"), 1).await;
    let signal = envelope::parse(&back[0].envelope, &ParseOptions::new(Origin::Platform)).unwrap();
    assert_eq!(signal.header.kind(), MessageKind::Signal(SignalKind::Prs));
    assert_eq!(signal.header.relates_to.unwrap().id.to_string(), id);

    // Nothing was delivered twice anywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ru.inbox(&registry("RU"), 0, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(inbox(&kz, &sender("KZ"), 1).await.len(), 1);
    fed.stop_all().await;
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// KZ's credentials, to talk to the EEC node by hand.
struct HandClient {
    client: transport::client::PeerClient,
    signer: HopSigner,
}

impl HandClient {
    fn new(pki: &Path, me: &str, to: &str, addr: SocketAddr) -> HandClient {
        let tls =
            transport::client_config(&transport::TlsFiles::from_pki_dir(pki, seg(me))).unwrap();
        let f = trust::pki::NodeFiles::in_dir(pki, seg(me));
        HandClient {
            client: transport::client::PeerClient::new(
                tls,
                seg(to),
                &addr.to_string(),
                Duration::from_secs(5),
            )
            .unwrap(),
            signer: HopSigner::from_files(&f.signing_key, &f.signing_cert).unwrap(),
        }
    }

    async fn post(
        &self,
        body: &[u8],
        headers: Vec<(&'static str, String)>,
    ) -> transport::client::PeerResponse {
        self.client
            .post(
                node::federation::ENVELOPE_PATH,
                "application/soap+xml",
                &headers,
                Bytes::copy_from_slice(body),
            )
            .await
            .unwrap()
    }

    fn signed(&self, body: &[u8]) -> Vec<(&'static str, String)> {
        let (s, c) = self.signer.sign(body).unwrap().to_headers();
        vec![(SIGNATURE_HEADER, s), (CERTIFICATE_HEADER, c)]
    }
}

/// A platform envelope from `from` to `to`, stamped as a node would.
fn platform_envelope(from: &str, to: &str, stamped: bool) -> (UrnUuid, Vec<u8>) {
    let id = UrnUuid::new_v4();
    let mut env = Envelope::application(
        ApplicationMessage {
            to: Address::parse(to).unwrap(),
            reply_to: Address::parse(from).unwrap(),
            action: CpAction::new(
                "P.TS.01",
                "1.0.1",
                "P.TS.01.PRC.001",
                "P.TS.01.TRN.001",
                "P.TS.01.MSG.001",
            )
            .unwrap(),
            message_id: id,
            relates_to: None,
            conversation_id: UrnUuid::new_v4(),
            procedure_id: None,
            document: certificate_doc("hand"),
        },
        Default::default(),
    )
    .unwrap();
    if stamped {
        env.stamp(UrnUuid::new_v4(), time::OffsetDateTime::now_utc());
    }
    (id, env.to_xml().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_hand_over_gets_the_original_rcv_and_one_delivery() {
    let mut fed = Federation::new();
    fed.start("EEC").await;
    let eec = fed.node("EEC");
    let kz = HandClient::new(&fed.pki, "KZ", "EEC", fed.addrs[&seg("EEC")]);
    let (id, body) = platform_envelope(&sender("KZ"), &registry("EEC"), true);
    let first = kz.post(&body, kz.signed(&body)).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let again = kz.post(&body, kz.signed(&body)).await;
    assert_eq!(again.status, 200);
    assert_eq!(first.body, again.body, "the same RCV, byte for byte");
    let rcv = envelope::parse(&first.body, &ParseOptions::new(Origin::Any)).unwrap();
    assert_eq!(rcv.header.kind(), MessageKind::Signal(SignalKind::Rcv));
    assert_eq!(rcv.header.relates_to.unwrap().id, id);
    let got = inbox(&eec, &registry("EEC"), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        eec.inbox(&registry("EEC"), 0, 10, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        1
    );
    fed.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_unsigned_tampered_or_from_the_wrong_segment_is_refused_and_not_stored() {
    let mut fed = Federation::new();
    fed.start("EEC").await;
    let eec = fed.node("EEC");
    let kz = HandClient::new(&fed.pki, "KZ", "EEC", fed.addrs[&seg("EEC")]);
    let ru_signer = {
        let f = trust::pki::NodeFiles::in_dir(&fed.pki, seg("RU"));
        HopSigner::from_files(&f.signing_key, &f.signing_cert).unwrap()
    };

    // Each case: what KZ's connection sends, and the status EEC must answer.
    async fn check(
        (eec, kz): (&Node, &HandClient),
        what: &str,
        id: UrnUuid,
        body: &[u8],
        headers: Vec<(&'static str, String)>,
        status: u16,
        says: &str,
    ) {
        let r = kz.post(body, headers).await;
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, status, "{what}: {text}");
        assert!(
            text.contains(says),
            "{what}: the Fault should say {says:?}: {text}"
        );
        let fault = envelope::parse(&r.body, &ParseOptions::new(Origin::Any)).unwrap();
        assert_eq!(fault.header.kind(), MessageKind::Fault, "{what}");
        assert!(
            eec.store()
                .message(&id.to_string())
                .await
                .unwrap()
                .is_none(),
            "{what}: nothing may be stored"
        );
    }

    let (id, body) = platform_envelope(&sender("KZ"), &registry("EEC"), true);
    check(
        (&eec, &kz),
        "unsigned",
        id,
        &body,
        vec![],
        403,
        "hop signature missing",
    )
    .await;

    let mut tampered = body.clone();
    let at = tampered
        .windows(4)
        .position(|w| w == "hand".as_bytes())
        .unwrap();
    tampered[at] = b'H';
    check(
        (&eec, &kz),
        "tampered body",
        id,
        &tampered,
        kz.signed(&body),
        403,
        "does not match",
    )
    .await;

    let (id2, other) = platform_envelope(&sender("KZ"), &registry("EEC"), true);
    check(
        (&eec, &kz),
        "signature of another envelope",
        id2,
        &other,
        kz.signed(&body),
        403,
        "does not match",
    )
    .await;

    let (id3, as_ru) = platform_envelope(&sender("RU"), &registry("EEC"), true);
    check(
        (&eec, &kz),
        "sender from another segment",
        id3,
        &as_ru,
        kz.signed(&as_ru),
        403,
        "does not speak for",
    )
    .await;
    let (s, c) = ru_signer.sign(&as_ru).unwrap().to_headers();
    check(
        (&eec, &kz),
        "RU's own signature, carried by KZ",
        id3,
        &as_ru,
        vec![(SIGNATURE_HEADER, s), (CERTIFICATE_HEADER, c)],
        403,
        "does not speak for",
    )
    .await;

    let (id4, unstamped) = platform_envelope(&sender("KZ"), &registry("EEC"), false);
    check(
        (&eec, &kz),
        "header rule: no int:Integration",
        id4,
        &unstamped,
        kz.signed(&unstamped),
        400,
        "Integration",
    )
    .await;

    let (id5, nobody) = platform_envelope(&sender("KZ"), "EAEU://EEC/CA/nobody", true);
    check(
        (&eec, &kz),
        "unknown recipient",
        id5,
        &nobody,
        kz.signed(&nobody),
        422,
        "not a participant",
    )
    .await;

    let doctype = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>";
    let r = kz.post(doctype, kz.signed(doctype)).await;
    assert_eq!(r.status, 400, "DTD: {}", String::from_utf8_lossy(&r.body));

    // A node from another federation does not get past the handshake.
    let outsider = tempfile::tempdir().unwrap();
    trust::pki::init(
        outsider.path(),
        &[seg("KZ")],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let tls = transport::client_config(&transport::TlsFiles {
        ca: trust::pki::root_cert_path(&fed.pki),
        ..transport::TlsFiles::from_pki_dir(outsider.path(), seg("KZ"))
    })
    .unwrap();
    let stranger = transport::client::PeerClient::new(
        tls,
        seg("EEC"),
        &fed.addrs[&seg("EEC")].to_string(),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = stranger
        .post(
            node::federation::ENVELOPE_PATH,
            "application/soap+xml",
            &[],
            Bytes::from(body.clone()),
        )
        .await
        .expect_err("a certificate from outside the federation is refused");
    assert!(err.to_string().contains("EEC"), "{err}");
    assert!(
        eec.store()
            .message(&id.to_string())
            .await
            .unwrap()
            .is_none()
    );
    fed.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_was_down_gets_its_messages_when_it_returns() {
    let mut fed = Federation::new();
    fed.start("KZ").await;
    fed.start("RU").await;
    let (kz, ru) = (fed.node("KZ"), fed.node("RU"));
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = kz
            .submit(
                &sender("KZ"),
                submission(&registry("RU"), &format!("down-{i}")),
            )
            .await
            .unwrap();
        ids.push(r.message_id.to_string());
    }
    // The EEC relay is down: attempts fail and are retried, nothing is lost.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        states(&kz, &sender("KZ"), &ids[0]).await,
        ["accepted", "queued"]
    );
    fed.start("EEC").await;
    let got = inbox(&ru, &registry("RU"), 20).await;
    let mut seen: Vec<String> = got.into_iter().map(|i| i.message_id).collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    fed.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_message_comes_back_to_its_sender_as_err() {
    let mut fed = Federation::new();
    fed.start_all().await;
    let (kz, eec) = (fed.node("KZ"), fed.node("EEC"));

    // RU has no such participant: RU refuses, the relay gives up and tells KZ's IS.
    let r = kz
        .submit(&sender("KZ"), submission("EAEU://RU/CA/nobody", "lost"))
        .await
        .unwrap();
    let id = r.message_id.to_string();
    let back = inbox(&kz, &sender("KZ"), 1).await;
    let err = envelope::parse(&back[0].envelope, &ParseOptions::new(Origin::Platform)).unwrap();
    assert_eq!(err.header.kind(), MessageKind::Signal(SignalKind::Err));
    assert_eq!(err.header.relates_to.as_ref().unwrap().id.to_string(), id);
    let text = String::from_utf8_lossy(&back[0].envelope);
    assert!(
        text.contains("Common:FatalError")
            && text.contains("not a participant")
            && text.contains("wsa:DestinationUnreachable"),
        "{text}"
    );
    let relay_hist = eec.store().history(&id).await.unwrap();
    assert_eq!(relay_hist.last().unwrap().state, "failed");
    fed.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_outlives_its_expiry_is_expired_and_its_sender_told() {
    let mut fed = Federation::new();
    fed.expire_after_secs = 600;
    let (clock, offset) = movable_clock();
    let kz = fed.start_with("KZ", clock).await;
    // No EEC node at all: every attempt fails.
    let r = kz
        .submit(&sender("KZ"), submission(&registry("RU"), "late"))
        .await
        .unwrap();
    let id = r.message_id.to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        states(&kz, &sender("KZ"), &id).await,
        ["accepted", "queued"]
    );
    offset.store(601, Ordering::Relaxed);
    let hist = wait_for_state(&kz, &sender("KZ"), &id, "expired").await;
    assert_eq!(hist, ["accepted", "queued", "expired"]);
    let back = inbox(&kz, &sender("KZ"), 1).await;
    let text = String::from_utf8_lossy(&back[0].envelope);
    assert!(
        text.contains("expired") && text.contains("wsa:EndpointUnavailable"),
        "{text}"
    );
    fed.stop_all().await;
}

async fn publish(
    node: &Node,
    bytes: &[u8],
    format: nsi::format::Format,
    code: Option<&str>,
) -> (i64, bool) {
    let idx = node.reference();
    node::reference::import(node.store(), &idx, bytes, format, code, false, 1)
        .await
        .unwrap()
        .version
        .unwrap()
}

async fn wait_for_version(node: &Node, code: &str, version: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.reference().resource(code).map(|r| r.version) != Some(version) {
        assert!(
            Instant::now() < deadline,
            "{code} v{version} never arrived: {:?}",
            node.sync_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_reaches_national_nodes_verified_and_survives_the_publisher_going_away() {
    let mut fed = Federation::new();
    fed.nsi = true;
    let eec = fed.start("EEC").await;
    let countries =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nsi/countries.json"))
            .unwrap();
    assert_eq!(
        publish(&eec, &countries, nsi::format::Format::Json, None).await,
        (1, true)
    );
    let kz = fed.start("KZ").await;
    fed.start("RU").await;
    let ru = fed.node("RU");

    // At start each subscriber asks for the catalogue and fetches what it lacks.
    wait_for_version(&kz, "P.CLS.019", 1).await;
    wait_for_version(&ru, "P.CLS.019", 1).await;
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(
        kz.reference()
            .resource("P.CLS.019")
            .unwrap()
            .lookup("BY", today)
            .unwrap()
            .names["kk"],
        "Беларусь"
    );

    // A new version: the publisher tells its subscribers, they fetch it.
    let csv = nsi::format::write(
        &node::reference::decode(
            &eec.store()
                .nsi_version("P.CLS.019", None)
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap(),
        nsi::format::Format::Csv,
    );
    let edited = String::from_utf8(csv)
        .unwrap()
        .replacen("Belarus,", "Republic of Belarus,", 1);
    assert_eq!(
        publish(
            &eec,
            edited.as_bytes(),
            nsi::format::Format::Csv,
            Some("P.CLS.019")
        )
        .await,
        (2, true)
    );
    wait_for_version(&kz, "P.CLS.019", 2).await;
    assert_eq!(
        kz.reference()
            .resource("P.CLS.019")
            .unwrap()
            .lookup("BY", today)
            .unwrap()
            .names["en"],
        "Republic of Belarus"
    );

    // A version whose content does not match its hash is refused; KZ keeps version 2.
    let v2 = eec
        .store()
        .nsi_version("P.CLS.019", None)
        .await
        .unwrap()
        .unwrap();
    let tampered = String::from_utf8(v2.content.clone())
        .unwrap()
        .replace("Беларусь", "Белоруссия");
    let body = format!(
        "<nsi:ClassifierVersion xmlns:nsi=\"urn:ortaq:nsi:v1\" code=\"P.CLS.019\" kind=\"resource\" version=\"3\" sha256=\"{}\" publishedAt=\"1\">{}</nsi:ClassifierVersion>",
        v2.sha256,
        base64_encode(tampered.as_bytes())
    );
    eec.submit(
        "EAEU://EEC/SR/nsi",
        Submission {
            to: "EAEU://KZ/SR/nsi".into(),
            process: "P.CC.10".into(),
            version: "1.0.0".into(),
            procedure: "P.CC.10.PRC.001".into(),
            transaction: "P.CC.10.TRN.002".into(),
            message: "P.CC.10.MSG.004".into(),
            body,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while kz.sync_status().refused.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the tampered version was not refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        kz.sync_status().refused[0].contains("does not match"),
        "{:?}",
        kz.sync_status()
    );
    assert_eq!(kz.reference().resource("P.CLS.019").unwrap().version, 2);
    assert!(
        kz.store()
            .nsi_version("P.CLS.019", Some(3))
            .await
            .unwrap()
            .is_none()
    );

    // The publisher goes away: KZ keeps answering from its last verified copy and says how old.
    fed.stop("EEC").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let st = kz.sync_status();
    assert!(st.age_seconds.unwrap() >= 2, "{st:?}");
    assert_eq!(
        kz.reference()
            .resource("P.CLS.019")
            .unwrap()
            .lookup("KZ", today)
            .unwrap()
            .names["kk"],
        "Қазақстан"
    );
    fed.stop_all().await;
}

fn shipped(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_breaking_its_rules_comes_back_as_data_error_and_never_reaches_the_is() {
    let mut fed = Federation::new();
    fed.enforcing = vec!["EEC"];
    fed.start_all().await;
    let (kz, eec) = (fed.node("KZ"), fed.node("EEC"));
    with_shipped_codes(&eec).await;

    let sample = official_certificate("0001");
    let mut good = submission(&registry("EEC"), "valid");
    good.body = sample.clone();
    let good = kz.submit(&sender("KZ"), good).await.unwrap();
    let mut bad = submission(&registry("EEC"), "broken");
    bad.body = sample
        .replacen(
            ">KZ</csdo:UnifiedCountryCode>",
            ">XX</csdo:UnifiedCountryCode>",
            1,
        )
        .replacen(
            "<trsdo:ConformityDocKindCode>01<",
            "<trsdo:ConformityDocKindCode>certificate<",
            1,
        );
    let bad = kz.submit(&sender("KZ"), bad).await.unwrap();
    let bad_id = bad.message_id.to_string();

    // The sender's IS gets an ERR naming every problem, where it is, in both languages.
    let back = inbox(&kz, &sender("KZ"), 1).await;
    assert_eq!(
        back.len(),
        1,
        "{}",
        String::from_utf8_lossy(&back[1].envelope)
    );
    let err = envelope::parse(&back[0].envelope, &ParseOptions::new(Origin::Platform)).unwrap();
    assert_eq!(err.header.kind(), MessageKind::Signal(SignalKind::Err));
    assert_eq!(
        err.header.relates_to.as_ref().unwrap().id.to_string(),
        bad_id
    );
    let envelope::Body::Signal(sig) = &err.body else {
        panic!()
    };
    let got: Vec<(&str, String, Option<&str>)> = sig
        .errors
        .iter()
        .map(|e| {
            (
                e.code.as_str(),
                e.description
                    .split(']')
                    .next()
                    .unwrap()
                    .trim_start_matches('[')
                    .to_owned(),
                at(e),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "Common:DataError",
                "XSD".to_owned(),
                Some(
                    "/doc:ConformityDocsRegistryDetails/trcdo:ConformityDocDetails/trsdo:ConformityDocKindCode"
                )
            ),
            (
                "Common:DataError",
                "P.TS.01.MSG.001.R07".to_owned(),
                Some(
                    "/doc:ConformityDocsRegistryDetails/trcdo:ConformityDocDetails/csdo:UnifiedCountryCode"
                )
            ),
        ]
    );
    assert!(
        sig.errors[1]
            .description
            .contains("«XX» не действует в P.CLS.019"),
        "{:?}",
        sig.errors[1]
    );
    assert!(
        sig.errors[1]
            .details
            .as_deref()
            .unwrap()
            .contains("\"XX\" is not valid in P.CLS.019")
    );
    assert!(
        sig.errors[1]
            .details
            .as_deref()
            .unwrap()
            .contains("EDocId 5b0c1d0e-7e5a-4a3b-9f3e-1c2d3e4f5a6b")
    );

    // The registry IS sees only the valid document; the refused one is kept as evidence.
    let got = inbox(&eec, &registry("EEC"), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = eec
        .inbox(&registry("EEC"), 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        got_now.len(),
        1,
        "{:?}",
        got_now
            .iter()
            .map(|i| String::from_utf8_lossy(&i.envelope).into_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(got[0].message_id, good.message_id.to_string());
    let hist: Vec<String> = eec
        .store()
        .history(&bad_id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.state.to_string())
        .collect();
    assert_eq!(hist, ["accepted", "failed"]);

    // A valid document from a role that may not start the transaction (a querying authority
    // submitting a certificate), and a message that is not part of the transaction: ERR
    // Common:UnexpectedMessage from the receiving node, nothing delivered.
    let mut wrong_role = submission(&registry("EEC"), "wrong role");
    wrong_role.body = sample.clone();
    kz.submit(&querier("KZ"), wrong_role).await.unwrap();
    let mut wrong_msg = submission(&registry("EEC"), "wrong message");
    wrong_msg.body = sample.clone();
    wrong_msg.message = "P.TS.01.MSG.003".into();
    kz.submit(&registry("KZ"), wrong_msg).await.unwrap();
    for (who, rule) in [(querier("KZ"), "TRN.003"), (registry("KZ"), "TRN.002")] {
        let back = inbox(&kz, &who, 1).await;
        let err = envelope::parse(&back[0].envelope, &ParseOptions::new(Origin::Platform)).unwrap();
        let envelope::Body::Signal(sig) = &err.body else {
            panic!()
        };
        assert_eq!(sig.errors[0].code.as_str(), "Common:UnexpectedMessage");
        assert!(
            sig.errors[0].description.starts_with(&format!("[{rule}]")),
            "{:?}",
            sig.errors[0]
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        eec.inbox(&registry("EEC"), 0, 100, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        1
    );
    fed.stop_all().await;
}

async fn client(node: &Node, participant: &str) -> HttpAdapter {
    let token = node.issue_token(participant, "test").await.unwrap();
    HttpAdapter::new(&format!("http://{}", node.config().listen), &token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_ts_01_end_to_end_with_the_builtin_keeper_and_submitters() {
    use conformity::{Registry, RegistryKeeper, Submitter, read_processing_result};
    let mut fed = Federation::new();
    fed.enforcing = vec!["EEC", "KZ", "RU"];
    fed.start_all().await;
    let (kz, eec, ru) = (fed.node("KZ"), fed.node("EEC"), fed.node("RU"));
    for n in [&eec, &kz, &ru] {
        with_shipped_codes(n).await;
    }
    let pkg = process::Package::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/P.TS.01"),
    )
    .unwrap();
    let db = Arc::new(Registry::open(eec.config().store_engine().for_app("conformity")).unwrap());
    let e2 = eec.clone();
    // The keeper runs beside the EEC node, on the in-process adapter; the submitters are ISs
    // of their states over HTTP.
    let keeper = RegistryKeeper::new(
        fed.running["EEC"].adapter(&registry("EEC")).unwrap(),
        pkg.clone(),
        db.clone(),
        Arc::new(move || e2.reference()),
        eec.clock(),
    )
    .unwrap();
    let keeper = tokio::spawn(keeper.run(fed.running["EEC"].stopping(), None));
    let kz_sub = Submitter::new(
        client(&kz, &registry("KZ")).await,
        pkg.clone(),
        &registry("KZ"),
        node::system_clock(),
    );
    let wait = Duration::from_secs(20);

    // The shipped sample, in the Commission's R.TR.TS.01.001 (checked against the official
    // XSD, unchanged), with a second record: PRS, then an R.006 code 3 «Сведения добавлены»
    // that answers its EDocId; both records are now in the registry.
    let sample = official_certificate("0001");
    let (open, rest) = sample.split_once("<trcdo:ConformityDocDetails>").unwrap();
    let record = format!(
        "<trcdo:ConformityDocDetails>{}",
        rest.rsplit_once("</doc:").unwrap().0
    );
    let two = format!(
        "{open}{record}{}</doc:ConformityDocsRegistryDetails>",
        record.replace("KZ.01.АА.0001/2026", "KZ.01.АА.0002/2026")
    );
    let r = kz_sub
        .submit("P.TS.01.MSG.001", two.clone(), wait)
        .await
        .unwrap();
    assert_eq!(r.outcome, process::Outcome::Completed, "{r:?}");
    assert!(r.processing);
    let (code, diags) = read_processing_result(r.response.as_deref().unwrap()).unwrap();
    assert_eq!((code.as_str(), diags.len()), (conformity::RESULT_ADDED, 0));
    assert!(
        r.response
            .unwrap()
            .contains("<csdo:EDocRefId>5b0c1d0e-7e5a-4a3b-9f3e-1c2d3e4f5a6b<")
    );
    for n in ["0001", "0002"] {
        let (rec, xml) = db
            .get(&format!("ЕАЭС KZ.01.АА.{n}/2026"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((rec.country.as_str(), rec.status.as_str()), ("KZ", "01"));
        assert_eq!(rec.kind, "Сертификат соответствия");
        // Each record is kept as a message of its own: the header and that record only.
        assert_eq!(xml.matches("<trcdo:ConformityDocDetails>").count(), 1);
        assert!(xml.contains(&format!("KZ.01.АА.{n}/2026")));
    }

    // A status change for a document nobody registered: the keeper answers R.006 code 2
    // (received, not added; the process says so for this transaction) naming the rule.
    let now = time::OffsetDateTime::now_utc();
    let r = kz_sub
        .submit(
            "P.TS.01.MSG.002",
            conformity::sample::status_change("KZ", "ЕАЭС KZ-9999/2026", "02", now),
            wait,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, process::Outcome::Completed, "{r:?}");
    let (code, diags) = read_processing_result(r.response.as_deref().unwrap()).unwrap();
    assert_eq!(code, conformity::RESULT_RECEIVED);
    assert_eq!(diags[0].0, "P.TS.01.MSG.002.R01");
    assert!(diags[0].1.contains("not in the registry"), "{diags:?}");
    let r = kz_sub
        .submit(
            "P.TS.01.MSG.002",
            conformity::sample::status_change("KZ", "ЕАЭС KZ.01.АА.0001/2026", "02", now),
            wait,
        )
        .await
        .unwrap();
    let (code, _) = read_processing_result(r.response.as_deref().unwrap()).unwrap();
    assert_eq!(code, conformity::RESULT_ADDED);
    assert_eq!(
        db.get("ЕАЭС KZ.01.АА.0001/2026")
            .await
            .unwrap()
            .unwrap()
            .0
            .status,
        "02"
    );

    // Russia's querying authority asks for Kazakhstan's certificate.
    let ru_q = Submitter::new(
        client(&ru, &querier("RU")).await,
        pkg.clone(),
        &querier("RU"),
        node::system_clock(),
    );
    let query = conformity::sample::query("KZ", "ЕАЭС KZ.01.АА.0001/2026", now);
    let r = ru_q.submit("P.TS.01.MSG.003", query, wait).await.unwrap();
    assert_eq!(r.outcome, process::Outcome::Completed, "{r:?}");
    let answer = r.response.unwrap();
    assert_eq!(
        conformity::read_query_result(&answer),
        Some(conformity::QueryAnswer {
            found: true,
            status: Some("02".into()),
            applicant: Some("ТОО «Пример Электро» (вымышленное)".into()),
        }),
        "{answer}"
    );
    // A querying authority may not submit documents: its own submitter says so before sending.
    assert!(
        ru_q.submit("P.TS.01.MSG.001", sample.clone(), wait)
            .await
            .is_err()
    );

    // A document valid against the official XSD that breaks filling rules in both records:
    // the EEC node refuses it with ERR naming every problem; nothing is registered.
    let broken = two
        .replacen(">8501520001<", ">1234560001<", 1)
        .replace("<trsdo:DocStatusCode>01<", "<trsdo:DocStatusCode>07<")
        .replacen("ЕАЭС KZ.01.АА.0002/2026", "ЕАЭС KZ.01.АА.0001/2026", 1);
    let r = kz_sub
        .submit("P.TS.01.MSG.001", broken, wait)
        .await
        .unwrap();
    assert!(matches!(r.outcome, process::Outcome::Failed(_)), "{r:?}");
    let found: Vec<(String, Option<&str>)> = r
        .errors
        .iter()
        .map(|e| (e.code.as_str().to_owned(), at(e)))
        .collect();
    let d = "/doc:ConformityDocsRegistryDetails/trcdo:ConformityDocDetails";
    for want in [
        format!(
            "{d}[1]/trcdo:TechnicalRegulationObjectDetails/trcdo:ProductDetails[1]/csdo:CommodityCode"
        ),
        format!("{d}[1]/trcdo:DocStatusDetails/trsdo:DocStatusCode"),
        format!("{d}[2]/trcdo:DocStatusDetails/trsdo:DocStatusCode"),
        format!("{d}[2]/csdo:DocId"),
    ] {
        assert!(
            found
                .iter()
                .any(|(c, a)| c == "Common:DataError" && *a == Some(want.as_str())),
            "{want} not reported: {found:?}"
        );
    }
    assert_eq!(db.len().await.unwrap(), 2);

    fed.running["EEC"].begin_stop();
    keeper.await.unwrap();
    fed.stop_all().await;
}

/// A legally significant document (a signed P.TS.01.MSG.001) from KZ to RU's conformity body
/// (an address without a process role, so the transaction's roles do not apply) through the
/// EEC relay: KZ's node refuses it when its signature does not hold; signed, it passes; the EEC
/// node's trusted third party receipt and time stamp travel with it; RU's evidence container
/// checks out offline, and any change to it is caught by the check it breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legally_significant_documents_carry_a_stamped_receipt_to_the_recipient() {
    let (mut fed, space) = Federation::with_trust_space();
    // The recipient checks the evidence that travels with the message against its trust list.
    fed.trust_subscribers = true;
    fed.enforcing = vec!["EEC", "KZ", "RU"];
    fed.start_all().await;
    let (kz, ru) = (fed.node("KZ"), fed.node("RU"));
    wait_for_trust_list(&ru, 1).await;
    wait_for_trust_list(&kz, 1).await;
    with_shipped_codes(&ru).await;
    // KZ's own trust-list requests are handed over before the refusals below are counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    while kz.store().queue_depth().await.unwrap().0 != 0 {
        assert!(Instant::now() < deadline, "KZ's outbox never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let doc = official_certificate("0201");
    let legal = |body: String| Submission {
        body,
        ..submission(&sender("RU"), "x")
    };
    // Signed but changed afterwards: refused by the sending node, nothing stored. (Unsigned,
    // the same message is an ordinary document.)
    let signed = dsig::sign_enveloped(&doc, &space.signers["KZ"]).unwrap();
    for (body, why) in [(
        signed.replacen("KZ.01.АА.0201/2026", "KZ.01.АА.0299/2026", 1),
        "digest mismatch",
    )] {
        match kz.submit(&registry("KZ"), legal(body)).await {
            Err(node::NodeError::Unsigned(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected a refusal ({why}), got {other:?}"),
        }
    }
    assert_eq!(kz.store().queue_depth().await.unwrap().0, 0);

    let sent = kz.submit(&registry("KZ"), legal(signed)).await.unwrap();
    let id = sent.message_id.to_string();
    let got = inbox(&ru, &sender("RU"), 1).await;
    assert_eq!(got[0].message_id, id);
    let kinds: Vec<String> = ru
        .store()
        .evidence(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        kinds,
        ["ttp-receipt", "ttp-timestamp", "ttp-timestamp-proof"]
    );

    let anchors = node::evidence::Anchors {
        federation_root: trust::pki::pem_to_der(
            &std::fs::read_to_string(trust::pki::root_cert_path(&fed.pki)).unwrap(),
        )
        .unwrap(),
        ttp_ca: Some(
            trust::pki::pem_to_der(&std::fs::read_to_string(&space.ttp_ca).unwrap()).unwrap(),
        ),
    };
    let zip = client(&ru, &sender("RU"))
        .await
        .evidence(&id)
        .await
        .unwrap();
    // RU runs no authority: the EEC's stamped its log checkpoint, over mutual TLS.
    let log = node::evidence::verify(&zip, &anchors)
        .into_iter()
        .find(|c| c.name == "message log")
        .unwrap();
    assert!(
        log.outcome
            .as_ref()
            .is_ok_and(|m| m.contains("time-stamped")),
        "{log:?}"
    );
    let failed = |zip: &[u8]| -> Vec<&'static str> {
        node::evidence::verify(zip, &anchors)
            .into_iter()
            .filter(|c| c.outcome.is_err())
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        failed(&zip),
        Vec::<&str>::new(),
        "{:?}",
        node::evidence::verify(&zip, &anchors)
    );
    // Someone else may not have it.
    assert!(
        client(&ru, &querier("RU"))
            .await
            .evidence(&id)
            .await
            .is_err()
    );

    // Change one file of the container: the check that covers it fails, and only that one.
    let rewrite = |name: &str, f: &dyn Fn(Vec<u8>) -> Vec<u8>| rewrite_zip(&zip, name, f);
    let flip = |from: &'static str, to: &'static str| {
        move |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap()
                .replacen(from, to, 1)
                .into_bytes()
        }
    };
    for (file, change, expect) in [
        (
            "ttp-receipt.xml",
            flip("valid", "VALID"),
            vec!["TTP receipt", "time stamp"],
        ),
        ("ttp-timestamp-proof.txt", flip("0/1", "0/2"), vec![]),
        (
            "log-proof.json",
            flip("\"event\": \"accepted\"", "\"event\": \"delivered\""),
            vec!["message log"],
        ),
        (
            "hop-signature.txt",
            flip("sig=", "sig=AAAA"),
            vec!["hop signature"],
        ),
    ] {
        let changed = rewrite(file, &change);
        assert_eq!(failed(&changed), expect, "{file}");
    }
    // The count in a proof is informative; a wrong sibling is not.
    let changed = rewrite("ttp-timestamp-proof.txt", &|_| {
        b"0/2 L0000000000000000000000000000000000000000000000000000000000000000".to_vec()
    });
    assert_eq!(failed(&changed), vec!["time stamp"]);
    // Not a container at all: one clear failure, no panic.
    assert_eq!(failed(b"PK\x03\x04 not really"), vec!["container"]);

    // The EEC node relayed it and runs the time-stamp authority: its container's log
    // checkpoint is time-stamped too, and a wrong path for that stamp breaks the log check.
    let eec = fed.node("EEC");
    let at_eec = node::evidence::export(&eec, &id).await.unwrap();
    let checks = node::evidence::verify(&at_eec, &anchors);
    let log = checks.iter().find(|c| c.name == "message log").unwrap();
    assert!(
        log.outcome
            .as_ref()
            .is_ok_and(|m| m.contains("time-stamped")),
        "{checks:?}"
    );
    let zip = at_eec;
    let rewrite = |name: &str, f: &dyn Fn(Vec<u8>) -> Vec<u8>| rewrite_zip(&zip, name, f);
    let wrong_path = rewrite("log-proof.json", &|b| {
        let mut v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["checkpoint"]["timestamp_proof"] =
            "0/2 R1111111111111111111111111111111111111111111111111111111111111111".into();
        serde_json::to_vec(&v).unwrap()
    });
    assert_eq!(failed(&wrong_path), vec!["message log"]);
    fed.stop_all().await;
}

/// The trust list through the gateway: subscribers without a list ask the EEC node and get
/// version 1; a version 2 published at the EEC reaches them by itself; a list signed by
/// anyone else, or an older one, never replaces what they hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trust_list_is_distributed_and_only_a_newer_verified_one_is_taken() {
    let (mut fed, space) = Federation::with_trust_space();
    fed.trust_subscribers = true;
    fed.enforcing = vec!["EEC", "KZ", "RU"];
    assert!(
        !fed.dir.path().join("KZ/trust-list.xml").exists(),
        "KZ starts without a list"
    );
    fed.start_all().await;
    let (kz, ru, eec) = (fed.node("KZ"), fed.node("RU"), fed.node("EEC"));
    let version_at = |n: &Arc<Node>| n.trust().unwrap().current().map(|l| l.version).ok();
    let until = |n: Arc<Node>, v: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while version_at(&n) != Some(v) {
            assert!(
                Instant::now() < deadline,
                "{} never got version {v}",
                n.segment()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until(kz.clone(), 1).await;
    until(ru.clone(), 1).await;
    // Kept on disk: the file a restart reads is the verified list.
    assert!(
        std::fs::read_to_string(fed.dir.path().join("KZ/trust-list.xml"))
            .unwrap()
            .contains("version=\"1\"")
    );

    // Version 2 written at the EEC travels by itself.
    let mut v2 = space.list.clone();
    v2.version = 2;
    std::fs::write(&space.ttp.trust_list, v2.sign(&space.list_signer).unwrap()).unwrap();
    until(kz.clone(), 2).await;
    until(ru.clone(), 2).await;

    // Forged (another signer) and stale (version 1) lists sent from the EEC's trust service:
    // delivered, refused, and version 2 stays.
    let other = host::trustspace::build(
        &fed.dir.path().join("other"),
        &["BY"],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let mut forged = space.list.clone();
    forged.version = 9;
    let forged = forged.sign(&other.list_signer).unwrap();
    let stale = space.list.sign(&space.list_signer).unwrap();
    for body in [forged, stale] {
        let s = Submission {
            to: "EAEU://KZ/SR/trust".into(),
            process: "P.XO.03".into(),
            version: "1.0.0".into(),
            procedure: "P.XO.03.PRC.001".into(),
            transaction: "P.XO.03.TRN.003".into(),
            message: "P.XO.03.MSG.004".into(),
            body,
            ..Default::default()
        };
        let sent = eec.submit("EAEU://EEC/SR/trust", s).await.unwrap();
        // Handled by KZ's trust service: it acknowledges after looking at the list.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = kz
                .store()
                .history(&sent.message_id.to_string())
                .await
                .unwrap();
            if st.iter().any(|c| c.state == store::State::Acknowledged) {
                break;
            }
            assert!(Instant::now() < deadline, "not handled at KZ: {st:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(version_at(&kz), Some(2));
    }

    // Version 3 revokes RU's TLS and signing certificates. The EEC node takes it into use
    // and refuses RU at the handshake from then on, with no restart; KZ is still served.
    let ru_files = trust::pki::NodeFiles::in_dir(&fed.pki, seg("RU"));
    let digest = |p: &Path| {
        transport::Revoked::digest(
            &trust::pki::pem_to_der(&std::fs::read_to_string(p).unwrap()).unwrap(),
        )
    };
    let knock = |s: &str| {
        let tls =
            transport::client_config(&transport::TlsFiles::from_pki_dir(&fed.pki, seg(s))).unwrap();
        let client = transport::client::PeerClient::new(
            tls,
            seg("EEC"),
            &fed.addrs[&seg("EEC")].to_string(),
            Duration::from_secs(5),
        )
        .unwrap();
        async move {
            client
                .post("/no-such-path", "text/plain", &[], Bytes::from_static(b"x"))
                .await
                .map(|r| r.status)
                .map_err(|e| e.to_string())
        }
    };
    assert!(
        knock("RU").await.is_ok(),
        "RU is refused before any revocation"
    );
    let mut v3 = space.list.clone();
    v3.version = 3;
    v3.revoked_nodes = vec![digest(&ru_files.tls_cert), digest(&ru_files.signing_cert)];
    std::fs::write(&space.ttp.trust_list, v3.sign(&space.list_signer).unwrap()).unwrap();
    until(eec.clone(), 3).await;
    until(kz.clone(), 3).await;
    assert!(knock("KZ").await.is_ok(), "KZ is no longer served");
    let refused = knock("RU").await;
    assert!(refused.is_err(), "a revoked node was served: {refused:?}");
    fed.stop_all().await;
}

/// `zip` with the file `name` passed through `f`, everything else as it was.
/// Where an ERR entry says the problem is: the `(at <xpath>` its details end with.
fn at(e: &envelope::SignalError) -> Option<&str> {
    let d = e.details.as_deref()?;
    d[d.rfind("(at ")? + 4..].split([',', ')']).next()
}

/// Waits until `node` holds version `v` of the trust list.
async fn wait_for_trust_list(node: &Node, v: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node
        .trust()
        .and_then(|t| t.current().ok())
        .map(|l| l.version)
        != Some(v)
    {
        assert!(
            Instant::now() < deadline,
            "no trust list version {v} arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rewrite_zip(zip: &[u8], name: &str, f: &dyn Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..src.len() {
        let mut e = src.by_index(i).unwrap();
        let n = e.name().unwrap().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.start_file(&n, stored).unwrap();
        out.write_all(&if n == name { f(b) } else { b }).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A P.TS.01.MSG.001 envelope from `from` to `to` carrying `document` (legally significant
/// when the document is signed), stamped as a node would.
fn legal_envelope(from: &str, to: &str, document: String) -> (UrnUuid, Vec<u8>) {
    let id = UrnUuid::new_v4();
    let mut env = Envelope::application(
        ApplicationMessage {
            to: Address::parse(to).unwrap(),
            reply_to: Address::parse(from).unwrap(),
            action: CpAction::new(
                "P.TS.01",
                "1.0.1",
                "P.TS.01.PRC.001",
                "P.TS.01.TRN.001",
                "P.TS.01.MSG.001",
            )
            .unwrap(),
            message_id: id,
            relates_to: None,
            conversation_id: UrnUuid::new_v4(),
            procedure_id: None,
            document,
        },
        Default::default(),
    )
    .unwrap();
    env.stamp(UrnUuid::new_v4(), time::OffsetDateTime::now_utc());
    (id, env.to_xml().into_bytes())
}

/// The shipped official R.TR.TS.01.001 sample, registering document number `n` (four digits).
fn official_certificate(n: &str) -> String {
    let sample = String::from_utf8(shipped("processes/P.TS.01/samples/MSG.001.xml")).unwrap();
    sample
        .split_once("?>")
        .unwrap()
        .1
        .trim()
        .replace("KZ.01.АА.0001/2026", &format!("KZ.01.АА.{n}/2026"))
}

/// The shipped countries and HS codes, published and loaded on `node` (the P.TS.01 rules need
/// them).
async fn with_shipped_codes(node: &Node) {
    for f in ["data/nsi/countries.json", "data/nsi/hs.json"] {
        publish(node, &shipped(f), nsi::format::Format::Json, None).await;
    }
    node.reload_reference().await.unwrap();
}

/// HTTP headers as the hand client sends them.
type Headers = Vec<(&'static str, String)>;

/// The evidence headers a peer would send.
fn evidence_headers(receipt: &[u8], token: &[u8], proof: &[u8]) -> Headers {
    node::legal::evidence_headers(&[
        (node::legal::RECEIPT.into(), receipt.to_vec()),
        (node::legal::TIMESTAMP.into(), token.to_vec()),
        (node::legal::TIMESTAMP_PROOF.into(), proof.to_vec()),
    ])
}

/// A peer cannot make evidence up. The EEC node, which runs the trusted third party, judges
/// every legally significant document itself and ignores a receipt that came with it (one
/// saying «valid» for a broken signature, with garbage for a time stamp); any other node takes
/// carried evidence only when a trusted third party of its trust list signed the receipt, about
/// this very document, and the time stamp covers it; otherwise it refuses the message and
/// stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_judged_by_the_trusted_third_party_and_never_taken_from_a_peer() {
    let (mut fed, space) = Federation::with_trust_space();
    fed.trust_subscribers = true;
    fed.enforcing = vec!["EEC", "KZ", "RU"];
    fed.start_all().await;
    let (eec, ru) = (fed.node("EEC"), fed.node("RU"));
    wait_for_trust_list(&ru, 1).await;
    for n in [&eec, &ru] {
        with_shipped_codes(n).await;
    }
    let doc = official_certificate;
    // Signed, then changed: the signature no longer holds.
    let broken = dsig::sign_enveloped(&doc("0101"), &space.signers["KZ"])
        .unwrap()
        .replacen("KZ.01.АА.0101/2026", "KZ.01.АА.0199/2026", 1);
    let forged_receipt = format!(
        "<rc:TtpReceipt xmlns:rc=\"{}\"><rc:Verdict>valid</rc:Verdict></rc:TtpReceipt>",
        ttp::RECEIPT_NS
    );
    let forged = evidence_headers(forged_receipt.as_bytes(), b"garbage", b"garbage");

    // KZ (a peer, misbehaving) hands the EEC node a broken document with a forged receipt.
    let kz = HandClient::new(&fed.pki, "KZ", "EEC", fed.addrs[&seg("EEC")]);
    let (id, body) = legal_envelope(&sender("KZ"), &sender("RU"), broken);
    let mut headers = kz.signed(&body);
    headers.extend(forged.clone());
    let r = kz.post(&body, headers).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let kept = |ev: Vec<(String, Vec<u8>)>| {
        ev.into_iter()
            .find(|(k, _)| k == node::legal::RECEIPT)
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .expect("a receipt")
    };
    let at_eec = kept(eec.store().evidence(&id.to_string()).await.unwrap());
    assert_ne!(at_eec, forged_receipt, "the forged receipt was kept");
    let (verdict, reasons) = ttp::read_receipt(&at_eec);
    assert_eq!(verdict, "invalid");
    assert!(reasons[0].starts_with("digest-mismatch"), "{reasons:?}");
    // RU gets the EEC's own receipt, checks it, and keeps it.
    inbox(&ru, &sender("RU"), 1).await;
    let at_ru = kept(ru.store().evidence(&id.to_string()).await.unwrap());
    assert_eq!(at_ru, at_eec);
    let honest = ru.store().evidence(&id.to_string()).await.unwrap();
    let part = |k: &str| {
        honest
            .iter()
            .find(|(kind, _)| kind == k)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    let (token, proof) = (
        part(node::legal::TIMESTAMP),
        part(node::legal::TIMESTAMP_PROOF),
    );

    // Straight to RU over the EEC's own link (EEC relays for KZ; KZ's signature on the bytes):
    // each kind of bad evidence is refused with 422, and nothing is stored.
    let eec_link = HandClient::new(&fed.pki, "EEC", "RU", fed.addrs[&seg("RU")]);
    let other_doc = dsig::sign_enveloped(&doc("0102"), &space.signers["KZ"]).unwrap();
    let cases: [(&str, Headers, &str); 2] = [
        (
            "a receipt no trusted third party signed",
            forged,
            "signature",
        ),
        (
            "a genuine receipt about another document",
            evidence_headers(at_eec.as_bytes(), &token, &proof),
            "another document",
        ),
    ];
    for (what, evidence, says) in cases {
        let (id, body) = legal_envelope(&sender("KZ"), &sender("RU"), other_doc.clone());
        let mut headers = kz.signed(&body);
        headers.extend(evidence);
        let r = eec_link.post(&body, headers).await;
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 422, "{what}: {text}");
        assert!(
            text.contains(says),
            "{what}: the Fault should say {says:?}: {text}"
        );
        assert!(
            ru.store().message(&id.to_string()).await.unwrap().is_none(),
            "{what}: nothing may be stored"
        );
    }
    // The genuine receipt of the first document with a garbage time stamp: the stamp is checked.
    let (id, body) = legal_envelope(&sender("KZ"), &sender("RU"), {
        // The very document the receipt is about.
        let env = envelope::parse(
            &ru.store().envelope(&id.to_string()).await.unwrap().unwrap(),
            &ParseOptions::new(Origin::Any),
        )
        .unwrap();
        match env.body {
            envelope::Body::Document(d) => d,
            _ => unreachable!("a document"),
        }
    });
    let mut headers = kz.signed(&body);
    headers.extend(evidence_headers(at_eec.as_bytes(), b"garbage", &proof));
    let r = eec_link.post(&body, headers).await;
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 422, "{text}");
    assert!(text.contains("time stamp"), "{text}");
    assert!(ru.store().message(&id.to_string()).await.unwrap().is_none());
    fed.stop_all().await;
}

/// The recipient's node keeps the conversation: a request to a role that does not answer it, a
/// transaction named under another procedure, and a response that answers nothing of this
/// conversation are each refused with ERR `Common:UnexpectedMessage` naming the broken rule,
/// and none of them reaches the recipient IS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_break_the_conversation_come_back_as_unexpected() {
    let mut fed = Federation::new();
    fed.enforcing = vec!["EEC", "KZ"];
    fed.start_all().await;
    let (kz, eec) = (fed.node("KZ"), fed.node("EEC"));
    let rules = |items: &[store::InboxItem]| {
        let mut r: Vec<String> = items
            .iter()
            .map(|i| {
                let e = envelope::parse(&i.envelope, &ParseOptions::new(Origin::Platform)).unwrap();
                assert_eq!(e.header.kind(), MessageKind::Signal(SignalKind::Err));
                let envelope::Body::Signal(s) = e.body else {
                    panic!("not a signal")
                };
                assert_eq!(s.errors[0].code.as_str(), "Common:UnexpectedMessage");
                s.errors[0].description[1..8].to_owned()
            })
            .collect();
        r.sort();
        r
    };
    // To the querier role, which does not answer registrations; under procedure PRC.002.
    kz.submit(&sender("KZ"), submission(&querier("EEC"), "to-querier"))
        .await
        .unwrap();
    let mut other = submission(&registry("EEC"), "other-procedure");
    other.procedure = "P.TS.01.PRC.002".into();
    kz.submit(&sender("KZ"), other).await.unwrap();
    assert_eq!(
        rules(&inbox(&kz, &sender("KZ"), 2).await),
        ["TRN.004", "TRN.005"]
    );
    // Answers from the registry that answer nothing: no RelatesTo, and one naming a stranger.
    for relates_to in [None, Some(UrnUuid::new_v4().to_string())] {
        let mut answer = submission(&registry("KZ"), "answer");
        answer.message = "P.TS.01.MSG.004".into();
        answer.relates_to = relates_to;
        eec.submit(&registry("EEC"), answer).await.unwrap();
    }
    assert_eq!(
        rules(&inbox(&eec, &registry("EEC"), 2).await),
        ["TRN.006", "TRN.006"]
    );
    for (node, who) in [
        (&eec, querier("EEC")),
        (&eec, registry("EEC")),
        (&kz, registry("KZ")),
    ] {
        let got = node.inbox(&who, 0, 10, Duration::ZERO).await.unwrap();
        assert!(
            got.iter().all(|i| i.action.ends_with("/P.MSG.ERR")),
            "{who} received a refused message"
        );
    }
    fed.stop_all().await;
}

/// The diagnostic journal: each gateway reports what happened to messages every second to the
/// EEC node, which keeps every gateway's reports and its own; the relay's report lists the
/// message it could not deliver, with the reason. A report for another segment is not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_reports_its_journal_and_the_eec_node_keeps_them() {
    let mut fed = Federation::new();
    fed.journal = true;
    fed.enforcing = vec!["EEC"];
    fed.start_all().await;
    let (kz, eec) = (fed.node("KZ"), fed.node("EEC"));
    for i in 0..2 {
        kz.submit(
            &sender("KZ"),
            submission(&registry("RU"), &format!("j-{i}")),
        )
        .await
        .unwrap();
    }
    let lost = kz
        .submit(&sender("KZ"), submission("EAEU://RU/CA/nobody", "lost"))
        .await
        .unwrap()
        .message_id
        .to_string();
    inbox(&fed.node("RU"), &registry("RU"), 2).await;
    // A report KZ's journal service makes up for RU: delivered, and not kept.
    let forged = adapter::JournalReport {
        segment: "RU".into(),
        from: 1,
        to: 2,
        counts: vec![("in".into(), "accepted".into(), 999)],
        records: Vec::new(),
    };
    kz.submit(
        "EAEU://KZ/SR/journal",
        Submission {
            to: "EAEU://EEC/SR/journal".into(),
            process: "P.XO.01".into(),
            version: "1.0.0".into(),
            procedure: "P.XO.01.PRC.001".into(),
            transaction: "P.XO.01.TRN.001".into(),
            message: "P.XO.01.MSG.001".into(),
            body: services::journal::to_xml(&forged),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // Totals per segment over every report the EEC node keeps, until they add up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let total = |reports: &[adapter::JournalReport], seg: &str, dir: &str, state: &str| -> i64 {
        reports
            .iter()
            .filter(|r| r.segment == seg)
            .flat_map(|r| &r.counts)
            .filter(|(d, s, _)| d == dir && s == state)
            .map(|(_, _, n)| n)
            .sum()
    };
    let reports = loop {
        let reports = node::journal::reports(eec.store(), 1000).await.unwrap();
        let done = total(&reports, "KZ", "out", "accepted") >= 3
            && total(&reports, "RU", "in", "acknowledged")
                + total(&reports, "RU", "in", "delivered")
                >= 2
            && reports
                .iter()
                .any(|r| r.segment == "EEC" && r.records.iter().any(|x| x.message_id == lost));
        if done {
            break reports;
        }
        assert!(
            Instant::now() < deadline,
            "the journals never added up: {reports:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed = reports
        .iter()
        .filter(|r| r.segment == "EEC")
        .flat_map(|r| &r.records)
        .find(|x| x.message_id == lost)
        .unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.direction.as_str()),
        ("failed", "relay")
    );
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("not a participant"),
        "{failed:?}"
    );
    assert!(
        !reports.iter().any(|r| r.segment == "RU" && r.from == 1),
        "a report for another segment was kept"
    );
    fed.stop_all().await;
}

/// The transaction's RCV says the recipient's IS has the message; the node accepting it is
/// not that. KZ's authority registers a certificate with the Commission (P.TS.01.TRN.001 has a
/// receipt time): nothing comes back while the keeper has not taken it; when it does, one
/// DeliveryReceipt from the keeper's address, relating to the message, reaches KZ's IS, and
/// taking the message again sends no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transactions_rcv_comes_when_the_recipients_is_takes_the_message() {
    let mut fed = Federation::new();
    fed.enforcing = vec!["EEC", "KZ"];
    fed.start_all().await;
    let (kz, eec) = (fed.node("KZ"), fed.node("EEC"));
    for n in [&eec, &kz] {
        with_shipped_codes(n).await;
    }
    let body = official_certificate("0001");
    let sent = kz
        .submit(
            &registry("KZ"),
            conformity::sample::registration(&registry("EEC"), body),
        )
        .await
        .unwrap();
    let id = sent.message_id.to_string();
    // Accepted by KZ's node and delivered to EEC's inbox: still no transaction RCV.
    let mut delivered = false;
    for _ in 0..100 {
        if let Ok((rec, _)) = eec.status(&registry("EEC"), &id).await
            && rec.state == store::State::InInbox
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the certificate reached EEC's inbox");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = kz
        .inbox(&registry("KZ"), 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert!(before.is_empty(), "no RCV before the keeper took it");

    // The keeper takes it: one RCV comes back.
    assert_eq!(inbox(&eec, &registry("EEC"), 1).await.len(), 1);
    let back = inbox(&kz, &registry("KZ"), 1).await;
    let rcv = envelope::parse(&back[0].envelope, &ParseOptions::new(Origin::Platform)).unwrap();
    assert_eq!(rcv.header.kind(), MessageKind::Signal(SignalKind::Rcv));
    assert_eq!(rcv.header.relates_to.as_ref().unwrap().id.to_string(), id);
    assert_eq!(
        rcv.header.reply_to.as_ref().map(|a| a.as_str().to_owned()),
        Some(registry("EEC"))
    );
    assert!(rcv.header.action.to_string().ends_with("/P.MSG.RCV"));
    assert_eq!(rcv.header.conversation_id, sent.conversation_id);

    // Taken again (not acknowledged yet): no second RCV.
    eec.inbox(&registry("EEC"), 0, 100, Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = kz
        .inbox(&registry("KZ"), 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    fed.stop_all().await;
}

/// The gateway keeps the initiator's side of a transaction: KZ's authority registers a
/// certificate (P.TS.01.TRN.001: RCV within 60 s, PRS within 300 s, 3 retries) and nobody at
/// the Commission takes it. When the receipt time passes on KZ's clock, KZ's node sends the
/// request again with a new MessageID and the same ConversationID; the RCV for the retry moves
/// the transaction on; when the retries are spent, KZ's IS gets an ERR saying the transaction
/// failed, and no further retry goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_retries_a_request_and_tells_its_is_when_the_transaction_fails() {
    let mut fed = Federation::new();
    fed.enforcing = vec!["EEC", "KZ"];
    fed.expire_after_secs = 100_000;
    let (clock, offset) = movable_clock();
    let kz = fed.start_with("KZ", clock).await;
    let eec = fed.start("EEC").await;
    for n in [&eec, &kz] {
        with_shipped_codes(n).await;
    }
    let body = official_certificate("0001");
    let sent = kz
        .submit(
            &registry("KZ"),
            conformity::sample::registration(&registry("EEC"), body),
        )
        .await
        .unwrap();
    let id = sent.message_id.to_string();
    let kept = kz.store().txn_of(&id).await.unwrap().unwrap();
    assert_eq!(
        (kept.state.as_str(), kept.outcome.as_str(), kept.attempts),
        ("await-rcv", "pending", 0)
    );

    // Nothing within the receipt time: the request again, new MessageID, same conversation.
    offset.store(61, Ordering::Relaxed);
    let mut attempts = 0;
    for _ in 0..100 {
        attempts = kz.store().txn_of(&id).await.unwrap().unwrap().attempts;
        if attempts == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(attempts, 1, "the request went out again");
    let got = inbox(&eec, &registry("EEC"), 2).await;
    let ids: Vec<&str> = got.iter().map(|i| i.message_id.as_str()).collect();
    assert!(ids.contains(&id.as_str()));
    let retry = got.iter().find(|i| i.message_id != id).unwrap();
    assert_eq!(
        retry.conversation_id,
        sent.conversation_id.map(|c| c.to_string())
    );
    // EEC's IS has taken both: their RCVs reach KZ and move the transaction on to the PRS.
    let mut state = String::new();
    for _ in 0..100 {
        let k = kz.store().txn_of(&retry.message_id).await.unwrap().unwrap();
        state = k.state.clone();
        if state == "await-prs" {
            assert_eq!(k.attempts, 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "await-prs");

    // No PRS, ever: retries until they are spent, then an ERR to KZ's IS from KZ's gate.
    let mut failed = None;
    for step in 1..=12 {
        offset.store(61 + step * 301, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let k = kz.store().txn_of(&id).await.unwrap().unwrap();
        if k.outcome == "failed" {
            failed = Some(k);
            break;
        }
    }
    let k = failed.expect("the transaction failed");
    assert_eq!(k.attempts, 3);
    assert!(
        k.why
            .as_deref()
            .unwrap()
            .contains("in time after 4 attempts"),
        "{k:?}"
    );
    let items = kz
        .inbox(&registry("KZ"), 0, 100, Duration::from_secs(5))
        .await
        .unwrap();
    let err = items
        .iter()
        .map(|i| envelope::parse(&i.envelope, &ParseOptions::new(Origin::Platform)).unwrap())
        .find(|e| e.header.kind() == MessageKind::Signal(SignalKind::Err))
        .expect("an ERR for the failed transaction");
    assert_eq!(err.header.relates_to.as_ref().unwrap().id.to_string(), id);
    let envelope::Body::Signal(sig) = &err.body else {
        panic!()
    };
    assert!(
        sig.errors[0].description.contains("P.TS.01.TRN.001")
            && sig.errors[0].description.contains("не завершена"),
        "{:?}",
        sig.errors
    );
    // Four requests in all reached the Commission; none after the failure.
    let before = eec
        .inbox(&registry("EEC"), 0, 100, Duration::ZERO)
        .await
        .unwrap()
        .len();
    assert_eq!(before, 4);
    offset.store(100_000, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = eec
        .inbox(&registry("EEC"), 0, 100, Duration::ZERO)
        .await
        .unwrap()
        .len();
    assert_eq!(after, 4);

    // The Commission answers after all: KZ's node refuses the late response (TRN.007), the
    // keeper hears so with an ERR, and KZ's IS, already told, never sees it.
    let late = Submission {
        relates_to: Some(id.clone()),
        conversation_id: sent.conversation_id.map(|c| c.to_string()),
        message: "P.TS.01.MSG.004".into(),
        ..conformity::sample::registration(
            &registry("KZ"),
            conformity::processing_result(
                Some("5b0c1d0e-7e5a-4a3b-9f3e-1c2d3e4f5a6b"),
                &[],
                time::OffsetDateTime::now_utc(),
                "Сведения добавлены",
            ),
        )
    };
    let answered = eec.submit(&registry("EEC"), late).await.unwrap();
    let back = inbox(&eec, &registry("EEC"), 5).await;
    let refusal = back
        .iter()
        .map(|i| envelope::parse(&i.envelope, &ParseOptions::new(Origin::Platform)).unwrap())
        .find(|e| {
            e.header.relates_to.as_ref().map(|r| r.id) == Some(answered.message_id)
                && e.header.kind() == MessageKind::Signal(SignalKind::Err)
        })
        .expect("ERR for the late response");
    let envelope::Body::Signal(sig) = &refusal.body else {
        panic!()
    };
    assert_eq!(sig.errors[0].code.as_str(), "Common:UnexpectedMessage");
    assert!(
        sig.errors[0].description.contains("TRN.007"),
        "{:?}",
        sig.errors
    );
    let kz_items = kz
        .inbox(&registry("KZ"), 0, 100, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        kz_items
            .iter()
            .all(|i| i.message_id != answered.message_id.to_string())
    );
    fed.stop_all().await;
}

/// A request its node could not deliver before it expired ends the transaction the node keeps
/// for it: the ERR that tells the IS is the transaction's end too, so no retry follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_ends_its_kept_transaction() {
    let mut fed = Federation::new();
    fed.enforcing = vec!["KZ"];
    fed.expire_after_secs = 30;
    let (clock, offset) = movable_clock();
    let kz = fed.start_with("KZ", clock).await;
    // No EEC node at all: every attempt fails, and the message expires before the receipt time
    // (60 s) would have the request sent again.
    let sent = kz
        .submit(
            &registry("KZ"),
            conformity::sample::registration(&registry("EEC"), official_certificate("0301")),
        )
        .await
        .unwrap();
    let id = sent.message_id.to_string();
    offset.store(31, Ordering::Relaxed);
    wait_for_state(&kz, &registry("KZ"), &id, "expired").await;
    let mut kept = None;
    for _ in 0..100 {
        let k = kz.store().txn_of(&id).await.unwrap().unwrap();
        if k.outcome != "pending" {
            kept = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let k = kept.expect("the transaction ended");
    assert_eq!(
        (k.outcome.as_str(), k.why.as_deref(), k.attempts),
        ("failed", Some("the responder answered ERR"), 0)
    );
    fed.stop_all().await;
}
