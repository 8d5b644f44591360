//! The queue adapter with an outside client: an IS written with Python's pika talks to a node
//! (the real binary) through RabbitMQ. Killed with SIGKILL while requests and inbox messages
//! flow, the node loses no request the broker confirmed, answers each, and hands each message
//! to the recipient's queue exactly once; repeats get the original answer byte for byte, and
//! requests that are not the participant's, or not a form the node reads, are answered with
//! why.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use adapter::Adapter;
use adapter::http::HttpAdapter;
use host::process::{NodeProcess, RECIPIENT, SENDER};
use rand::Rng;

/// The machine's RabbitMQ.
const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ortaq"))
}

fn client() -> String {
    format!(
        "{}/../../scripts/interop/amqp_client.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A KZ node with SENDER and RECIPIENT on the queue adapter, under queue names of its own.
fn node_on_the_queue(dir: &Path) -> (NodeProcess, String) {
    let prefix = format!(
        "ortaq-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut cfg = host::process::config("KZ", SENDER).unwrap();
    cfg.participants.push(node::config::ParticipantConfig {
        address: RECIPIENT.into(),
        name: String::new(),
    });
    let on_queue = |address: &str| node::config::QueueParticipantSection {
        address: address.into(),
        user: "guest".into(),
    };
    cfg.queue = Some(node::config::QueueSection {
        url: BROKER.into(),
        prefix: prefix.clone(),
        prefetch: 64,
        participants: vec![on_queue(SENDER), on_queue(RECIPIENT)],
    });
    (NodeProcess::with_config(exe(), dir, &cfg).unwrap(), prefix)
}

/// One request for pika to publish.
fn request(queue: &str, content_type: &str, message_id: &str, body: &str) -> serde_json::Value {
    serde_json::json!({
        "queue": queue, "content_type": content_type, "message_id": message_id,
        "user_id": "guest", "body": body,
    })
}

fn submission(id: &str) -> String {
    let mut s = conformity::sample::registration(
        RECIPIENT,
        format!("<tr:Doc xmlns:tr=\"urn:EEC:R:TR:TS:01:Doc:v1.0.1\"><tr:Id>{id}</tr:Id></tr:Doc>"),
    );
    s.message_id = Some(id.to_owned());
    serde_json::to_string(&s).unwrap()
}

/// Requests in a burst: TOTAL JSON submissions, each with its own MessageID.
const TOTAL: usize = 1500;

/// The MessageIDs of TOTAL submissions for `queue`, and the file pika publishes them from.
fn submissions(dir: &Path, queue: &str) -> (Vec<String>, std::path::PathBuf) {
    let ids: Vec<String> = (0..TOTAL)
        .map(|_| format!("urn:uuid:{}", uuid::Uuid::new_v4()))
        .collect();
    let requests: Vec<_> = ids
        .iter()
        .map(|id| request(queue, "application/json", id, &submission(id)))
        .collect();
    (ids, write_requests(dir, &requests))
}

fn write_requests(dir: &Path, requests: &[serde_json::Value]) -> std::path::PathBuf {
    let path = dir.join(format!("requests-{}.jsonl", uuid::Uuid::new_v4()));
    let mut f = std::fs::File::create(&path).unwrap();
    for r in requests {
        writeln!(f, "{r}").unwrap();
    }
    path
}

/// What pika consumed from a queue: one entry per AMQP message, in order.
#[derive(Debug, serde::Deserialize)]
struct Got {
    id: Option<String>,
    status: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    content_type: Option<String>,
    sha256: String,
    #[serde(default)]
    possible_repeat: bool,
}

fn collect(python: &str, queue: &str, want: usize, secs: u64) -> Vec<Got> {
    collect_from(BROKER, python, queue, want, secs)
}

/// What pika consumed from `queue` on the broker at `url`.
fn collect_from(url: &str, python: &str, queue: &str, want: usize, secs: u64) -> Vec<Got> {
    let out = std::process::Command::new(python)
        .env("AMQP_URL", url)
        .args([
            &client(),
            "collect",
            queue,
            &want.to_string(),
            &secs.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pika collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Handed over is acknowledged (a moment after the broker's confirm): the node's own inbox for
/// the recipient empties.
async fn inbox_empties(recipient: &HttpAdapter) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = recipient.inbox(0, 10, 0).await.unwrap().messages.len();
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} left in the node's inbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes a test's queues and exchange from the broker when the test ends, passed or not.
struct Cleanup {
    python: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut names = Vec::new();
        for who in [SENDER, RECIPIENT] {
            let n = queue::Names::of(&self.prefix, who);
            names.extend([n.requests, n.replies, n.inbox, n.journal]);
        }
        let _ = std::process::Command::new(&self.python)
            .arg(client())
            .arg("delete")
            .args(&names)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_node_loses_no_confirmed_request_and_doubles_no_message() {
    let Some(python) = testkit::rabbitmq_and_pika() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut node, prefix) = node_on_the_queue(dir.path());
    let _cleanup = Cleanup {
        python: python.clone(),
        prefix: prefix.clone(),
    };
    let (ts, tr) = (node.token(SENDER).unwrap(), node.token(RECIPIENT).unwrap());
    node.start().await.unwrap();
    let sender = queue::Names::of(&prefix, SENDER);
    let recipient = queue::Names::of(&prefix, RECIPIENT);

    let (ids, file) = submissions(dir.path(), &sender.requests);
    let publisher = std::process::Command::new(&python)
        .arg(client())
        .arg("publish")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Killed once the node has accepted something: requests and inbox deliveries in flight.
    let http = HttpAdapter::new(&node.base, &ts);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.status(&ids[0]).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the node took no request from the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(50..400))).await;
    node.kill9().unwrap();
    let published = publisher.wait_with_output().unwrap();
    assert!(published.status.success(), "pika publish failed");
    assert_eq!(
        String::from_utf8_lossy(&published.stdout).trim(),
        format!("confirmed={TOTAL}")
    );
    node.start().await.unwrap();

    // Every confirmed request is answered 200, and a repeated answer is the same bytes.
    let replies = collect(&python, &sender.replies, TOTAL, 120);
    let mut answer: HashMap<String, String> = HashMap::new();
    let mut repeated = 0;
    for r in &replies {
        let id = r.id.clone().expect("a reply names its request");
        assert_eq!(
            r.status,
            Some(200),
            "request {id} was answered {:?}",
            r.status
        );
        if let Some(first) = answer.insert(id.clone(), r.sha256.clone()) {
            assert_eq!(first, r.sha256, "the repeated answer to {id} differs");
            repeated += 1;
        }
    }
    let want: HashSet<&String> = ids.iter().collect();
    let answered: HashSet<&String> = answer.keys().collect();
    assert_eq!(answered, want, "every confirmed request is answered");

    // Every message reaches the recipient's queue exactly once.
    let delivered = collect(&python, &recipient.inbox, TOTAL, 120);
    let mut seen = HashSet::new();
    for m in &delivered {
        let id =
            m.id.clone()
                .expect("an inbox message carries its MessageID");
        assert!(
            m.kind
                .as_deref()
                .is_some_and(|a| a.ends_with("/P.TS.01.MSG.001")),
            "the AMQP type is the Action: {:?}",
            m.kind
        );
        assert!(
            seen.insert(id.clone()) && !m.possible_repeat,
            "{id} reached the recipient's queue twice, or marked as a possible repeat"
        );
    }
    let delivered_ids: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        delivered_ids, want,
        "every message reaches the recipient's queue"
    );
    inbox_empties(&HttpAdapter::new(&node.base, &tr)).await;
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    let settled: usize = log
        .lines()
        .filter(|l| l.contains("messages the broker took before"))
        .count();
    eprintln!(
        "{TOTAL} requests through pika; {repeated} answered again after the kill (same bytes); inbox queues settled from the journal at restart: {settled}"
    );
    assert!(node.terminate().unwrap().success());
}

/// A Decision No. 5 envelope from SENDER to RECIPIENT, as an IS would post it to `/v1/soap`.
fn envelope() -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:int="urn:EEC:Interaction:v1.0"><soap:Header><wsa:To>{RECIPIENT}</wsa:To><wsa:ReplyTo><wsa:Address>{SENDER}</wsa:Address></wsa:ReplyTo><wsa:Action>int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID><int:ConversationID>urn:uuid:{}</int:ConversationID></soap:Header><soap:Body><d:Doc xmlns:d="urn:EEC:R:Test:v1.0.0">1</d:Doc></soap:Body></soap:Envelope>"#,
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_get_the_same_bytes_and_what_is_not_the_participants_is_answered_with_why() {
    let Some(python) = testkit::rabbitmq_and_pika() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut node, prefix) = node_on_the_queue(dir.path());
    let _cleanup = Cleanup {
        python: python.clone(),
        prefix: prefix.clone(),
    };
    node.start().await.unwrap();
    let sender = queue::Names::of(&prefix, SENDER);
    let recipient = queue::Names::of(&prefix, RECIPIENT);
    let q = sender.requests.as_str();
    let soap = envelope();
    let json = submission(&format!("urn:uuid:{}", uuid::Uuid::new_v4()));
    let mut anonymous = request(q, "application/json", "no-user", &json);
    anonymous["user_id"] = serde_json::Value::Null;
    let mut without_id: serde_json::Value = serde_json::from_str(&json).unwrap();
    without_id.as_object_mut().unwrap().remove("message_id");
    let requests = [
        request(q, "application/soap+xml; charset=utf-8", "soap-1", &soap),
        request(q, "application/soap+xml", "soap-2", &soap),
        anonymous,
        request(q, "text/plain", "plain", "hello"),
        request(q, "application/json", "no-id", &without_id.to_string()),
        request(q, "application/json", "not-json", "{"),
    ];
    let file = write_requests(dir.path(), &requests);
    let out = std::process::Command::new(&python)
        .arg(client())
        .arg("publish")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let replies: HashMap<String, Got> = collect(&python, &sender.replies, requests.len(), 60)
        .into_iter()
        .map(|g| (g.id.clone().unwrap_or_default(), g))
        .collect();
    let check = |id: &str, expect: (i64, &str)| {
        let g = replies
            .get(id)
            .unwrap_or_else(|| panic!("no reply to {id}"));
        assert_eq!(
            (
                g.status.unwrap_or(0),
                g.content_type.as_deref().unwrap_or("")
            ),
            expect,
            "the reply to {id}"
        );
    };
    check("soap-1", (200, "application/soap+xml"));
    check("soap-2", (200, "application/soap+xml"));
    check("no-user", (403, "application/problem+json"));
    check("plain", (415, "application/problem+json"));
    check("no-id", (400, "application/problem+json"));
    check("not-json", (400, "application/problem+json"));
    assert_eq!(
        replies["soap-1"].sha256, replies["soap-2"].sha256,
        "the repeated envelope gets the same RCV, byte for byte"
    );
    // The envelope reaches the recipient once; nothing else does.
    let delivered = collect(&python, &recipient.inbox, 2, 5);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(node.terminate().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_broker_took_before_a_crash_is_not_sent_again() {
    let Some(python) = testkit::rabbitmq_and_pika() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (queued, prefix) = node_on_the_queue(dir.path());
    let _cleanup = Cleanup {
        python: python.clone(),
        prefix: prefix.clone(),
    };
    let recipient = queue::Names::of(&prefix, RECIPIENT);
    // First the node runs without the queue adapter: two messages wait in the inbox.
    let mut cfg: node::NodeConfig =
        toml::from_str(&std::fs::read_to_string(&queued.config).unwrap()).unwrap();
    let on_queue = cfg.queue.take();
    let mut plain = NodeProcess::with_config(exe(), dir.path(), &cfg).unwrap();
    let ts = plain.token(SENDER).unwrap();
    plain.start().await.unwrap();
    let http = HttpAdapter::new(&plain.base, &ts);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let s: adapter::Submission = serde_json::from_str(&submission(&id)).unwrap();
        http.send(&s).await.unwrap();
        ids.push(id);
    }
    assert!(plain.terminate().unwrap().success());
    // The state a node killed between the broker's confirm and its own acknowledgement leaves:
    // the first message is in the recipient's queue and in the journal, not acknowledged.
    let out = std::process::Command::new(&python)
        .arg(client())
        .args(["handed", &recipient.inbox, &recipient.journal, &ids[0]])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    cfg.queue = on_queue;
    let mut node = NodeProcess::with_config(exe(), dir.path(), &cfg).unwrap();
    node.start().await.unwrap();
    let delivered = collect(&python, &recipient.inbox, 3, 5);
    let got: Vec<&str> = delivered.iter().filter_map(|g| g.id.as_deref()).collect();
    assert_eq!(got.len(), 2, "each message once: {got:?}");
    assert!(got.contains(&ids[0].as_str()) && got.contains(&ids[1].as_str()));
    assert!(node.terminate().unwrap().success());
}

/// A RabbitMQ node of this test's own (its own port, name and folders), so that it can be
/// killed without touching the machine's broker.
struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    name: String,
    /// The `rabbitmq-server` script of the running server, waited for once it is killed.
    script: std::sync::Mutex<Option<std::process::Child>>,
}

impl Broker {
    fn new() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = host::process::free_port().unwrap();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("plugins"), "[].\n").unwrap();
        // The server drops to the rabbitmq user; its folders must be writable for it.
        let _ = std::process::Command::new("chmod")
            .args(["-R", "777"])
            .arg(dir.path())
            .status();
        let name = format!(
            "ortaqtest{}@localhost",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Broker {
            dir,
            port,
            name,
            script: std::sync::Mutex::new(None),
        }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the server and waits until it takes connections.
    fn start(&self) {
        let d = self.dir.path();
        let dist = host::process::free_port().unwrap();
        let script = std::process::Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", d.join("feature_flags"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("plugins"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        *self.script.lock().unwrap() = Some(script);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test's RabbitMQ did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL to the Erlang VM: the broker dies at whatever it was doing.
    fn kill9(&self) {
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the test's RabbitMQ outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(mut script) = self.script.lock().unwrap().take() {
            let _ = script.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_broker_loses_no_confirmed_request_and_doubles_no_message() {
    let Some(python) = testkit::rabbitmq_and_pika() else {
        return;
    };
    let broker = Broker::new();
    broker.start();
    let dir = tempfile::tempdir().unwrap();
    let (node, prefix) = node_on_the_queue(dir.path());
    let mut cfg: node::NodeConfig =
        toml::from_str(&std::fs::read_to_string(&node.config).unwrap()).unwrap();
    if let Some(q) = cfg.queue.as_mut() {
        q.url = broker.url();
    }
    let mut node = NodeProcess::with_config(exe(), dir.path(), &cfg).unwrap();
    let (ts, tr) = (node.token(SENDER).unwrap(), node.token(RECIPIENT).unwrap());
    node.start().await.unwrap();
    let sender = queue::Names::of(&prefix, SENDER);
    let recipient = queue::Names::of(&prefix, RECIPIENT);

    let (ids, file) = submissions(dir.path(), &sender.requests);
    let publisher = std::process::Command::new(&python)
        .env("AMQP_URL", broker.url())
        .arg(client())
        .arg("publish")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let http = HttpAdapter::new(&node.base, &ts);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.status(&ids[0]).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the node took no request from the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(50..400))).await;
    broker.kill9();
    broker.start();
    let published = publisher.wait_with_output().unwrap();
    assert!(
        published.status.success(),
        "pika publish: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&published.stdout).trim(),
        format!("confirmed={TOTAL}")
    );

    let collect_here =
        |queue: &str, want: usize| collect_from(&broker.url(), &python, queue, want, 120);
    let want: HashSet<&String> = ids.iter().collect();
    let replies = collect_here(&sender.replies, TOTAL);
    assert!(
        replies.iter().all(|r| r.status == Some(200)),
        "every answer is 200"
    );
    let answered: HashSet<&String> = replies.iter().filter_map(|r| r.id.as_ref()).collect();
    assert_eq!(answered, want, "every confirmed request is answered");
    let delivered = collect_here(&recipient.inbox, TOTAL);
    // A message the broker died while storing may come twice, and then the second copy says
    // so; every other message comes once.
    let mut seen = HashSet::new();
    let mut marked = 0;
    for m in &delivered {
        let id = m.id.clone().unwrap();
        if !seen.insert(id.clone()) {
            assert!(
                m.possible_repeat,
                "{id} reached the recipient's queue twice, unmarked"
            );
            marked += 1;
        }
    }
    // A possible repeat that was not one: the first copy died with the broker.
    let flagged = delivered.iter().filter(|m| m.possible_repeat).count();
    let missing: Vec<&&String> = want.iter().filter(|id| !seen.contains(**id)).collect();
    if !missing.is_empty() {
        let left = HttpAdapter::new(&node.base, &tr)
            .inbox(0, 5000, 0)
            .await
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
        panic!(
            "{} of {TOTAL} never reached the recipient's queue; {} still in the node's inbox; the node's log:\n{}",
            missing.len(),
            left.messages.len(),
            log.lines()
                .filter(|l| l.contains("queue"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    inbox_empties(&HttpAdapter::new(&node.base, &tr)).await;
    eprintln!(
        "{TOTAL} requests; broker killed and restarted; {} answers ({} again); inbox messages sent again as possible repeats: {flagged}, of which the IS's queue had kept the first copy: {marked}",
        replies.len(),
        replies.len() - TOTAL
    );
    assert!(node.terminate().unwrap().success());
}
