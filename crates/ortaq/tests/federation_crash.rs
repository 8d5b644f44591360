//! Guaranteed delivery across the federation with real node processes: 10,000 messages go
//! from an IS at the KZ node to an IS at the RU node through the EEC relay while the sending
//! node, the relay and the receiving node are each killed with SIGKILL at random moments and
//! restarted. Every message acknowledged to the sending IS reaches the recipient IS, the
//! recipient's node holds it once, and no message is handed out again after its
//! acknowledgement. Afterwards every node's message log verifies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapter::http::HttpAdapter;
use adapter::{Adapter, Submission};
use envelope::Segment;
use host::process::{NodeProcess, free_port};
use node::config::{FederationSection, NodeConfig, ParticipantConfig};
use rand::Rng;
use tokio::sync::Mutex;

const SENDER: &str = "EAEU://KZ/CA/conformity-body";
const RECIPIENT: &str = "EAEU://RU/CP/P.TS.01/P.TS.01.ACT.002";
const TOTAL: usize = 10_000;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ortaq"))
}

fn seg(s: &str) -> Segment {
    Segment::parse(s).unwrap()
}

fn message(id: &str) -> Submission {
    Submission {
        message_id: Some(id.to_owned()),
        ..conformity::sample::registration(
            RECIPIENT,
            format!(
                "<tr:Doc xmlns:tr=\"urn:EEC:R:TR:TS:01:Doc:v1.0.1\"><tr:Id>{id}</tr:Id><tr:Text>{}</tr:Text></tr:Doc>",
                "Ә".repeat(900)
            ),
        )
    }
}

/// Three node processes (KZ, EEC, RU) in a star, each killable and restartable.
fn configure(root: &Path) -> BTreeMap<&'static str, NodeProcess> {
    let pki = root.join("pki");
    let segs = [seg("EEC"), seg("KZ"), seg("RU")];
    trust::pki::init(&pki, &segs, time::OffsetDateTime::now_utc()).unwrap();
    let addrs: BTreeMap<Segment, std::net::SocketAddr> = segs
        .iter()
        .map(|s| (*s, ([127, 0, 0, 1], free_port().unwrap()).into()))
        .collect();
    let mut out = BTreeMap::new();
    for (name, participant) in [("EEC", None), ("KZ", Some(SENDER)), ("RU", Some(RECIPIENT))] {
        let mut cfg = NodeConfig {
            segment: name.into(),
            listen: ([127, 0, 0, 1], free_port().unwrap()).into(),
            data_dir: "data".into(),
            store: Default::default(),
            participants: participant
                .into_iter()
                .map(|a| ParticipantConfig {
                    address: a.into(),
                    name: String::new(),
                })
                .collect(),
            limits: Default::default(),
            checkpoint_every: 1000,
            federation: FederationSection::star(&pki, seg(name), seg("EEC"), &addrs),
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
        // Quick retries, so the test spends its time delivering rather than waiting.
        cfg.delivery.retry_min_ms = 50;
        cfg.delivery.retry_max_ms = 1_000;
        cfg.delivery.request_timeout_secs = 5;
        out.insert(
            name,
            NodeProcess::with_config(exe(), &root.join(name), &cfg).unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_sender_relay_and_receiver_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = configure(dir.path());
    let ts = nodes["KZ"].token(SENDER).unwrap();
    let tr = nodes["RU"].token(RECIPIENT).unwrap();
    for n in nodes.values_mut() {
        n.start().await.unwrap();
    }
    let sender = HttpAdapter::new(&nodes["KZ"].base, &ts);
    let receiver = HttpAdapter::new(&nodes["RU"].base, &tr);

    // The sending IS: each message is resubmitted with its own MessageID until the node
    // answers, as a careful IS does; only an answer counts as acknowledged.
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (c, acked, next) = (sender.clone(), acked.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= TOTAL {
                    break;
                }
                let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
                let m = message(&id);
                loop {
                    match c.send(&m).await {
                        Ok(r) => {
                            assert_eq!(r.message_id, id);
                            acked.lock().await.insert(id);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }

    // The receiving IS: reads its inbox, acknowledges, and notes anything handed out again
    // after its acknowledgement went through.
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let after_ack = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (c, seen, after_ack, done) = (
            receiver.clone(),
            seen.clone(),
            after_ack.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let mut confirmed = HashSet::<String>::new();
            while !done.load(Ordering::Relaxed) {
                let Ok(page) = c.inbox(0, 500, 1).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                for m in page.messages {
                    if confirmed.contains(&m.message_id) {
                        after_ack.lock().await.push(m.message_id.clone());
                    }
                    *seen.lock().await.entry(m.message_id.clone()).or_default() += 1;
                    if c.ack(&m.message_id).await.is_ok() {
                        confirmed.insert(m.message_id);
                    }
                }
            }
        })
    };

    // Chaos: every node is killed at least twice at random moments while the burst runs.
    let mut rng = rand::thread_rng();
    let mut victims: Vec<&str> = ["KZ", "EEC", "RU", "KZ", "EEC", "RU"].to_vec();
    victims.sort_by_key(|_| rng.gen_range(0..1000));
    let deadline = Instant::now() + Duration::from_secs(300);
    for v in victims {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..800))).await;
        let n = nodes.get_mut(v).unwrap();
        n.kill9().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..500))).await;
        n.start().await.unwrap();
        eprintln!(
            "killed and restarted {v}; {} acknowledged, {} arrived so far",
            acked.lock().await.len(),
            seen.lock().await.len()
        );
    }
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), TOTAL);

    // Everything acknowledged arrives, however long the retries took.
    loop {
        let missing = {
            let s = seen.lock().await;
            acked.iter().filter(|id| !s.contains_key(*id)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {TOTAL} acknowledged messages never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, Ordering::Relaxed);
    consumer.await.unwrap();
    let seen = seen.lock().await.clone();
    let unexpected: Vec<&String> = seen.keys().filter(|id| !acked.contains(*id)).collect();
    assert!(unexpected.is_empty(), "never sent: {unexpected:?}");
    assert!(
        after_ack.lock().await.is_empty(),
        "handed out again after acknowledgement: {:?}",
        after_ack.lock().await
    );
    let page = receiver.inbox(0, 10, 0).await.unwrap();
    assert!(
        page.messages.is_empty(),
        "left in the inbox: {}",
        page.messages.len()
    );

    for (name, n) in nodes.iter_mut() {
        n.terminate().unwrap();
        let out = n.cli(&["log", "verify"]).unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The recipient's node holds each message once (MessageID is unique there), so the
    // number of rows equals the number of distinct messages the IS saw.
    assert_eq!(seen.len(), TOTAL);
}
