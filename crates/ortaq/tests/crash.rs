//! Crash safety and log integrity with the real binary: a node killed with SIGKILL in the middle
//! of a burst of 10,000 submissions has kept every message it acknowledged, delivers each one
//! exactly once after restarting, and its message log still verifies; an edit made straight in
//! the database is reported by `ortaq log verify`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapter::http::HttpAdapter;
use adapter::{Adapter, Submission};
use host::process::{NodeProcess, RECIPIENT, SENDER};
use rand::Rng;
use tokio::sync::Mutex;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ortaq"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::configure(exe(), dir.path()).unwrap();
    let (ts, tr) = (node.token(SENDER).unwrap(), node.token(RECIPIENT).unwrap());
    node.start().await.unwrap();
    let sender = HttpAdapter::new(&node.base, &ts);

    const TOTAL: usize = 10_000;
    let kill_after = rand::thread_rng().gen_range(1_000..6_000);
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (c, acked, next, dead) = (sender.clone(), acked.clone(), next.clone(), dead.clone());
        workers.push(tokio::spawn(async move {
            while !dead.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= TOTAL {
                    break;
                }
                let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
                // Only an answered submission counts: that is what the IS was promised.
                if let Ok(r) = c.send(&message(&id)).await {
                    assert_eq!(r.message_id, id);
                    acked.lock().await.push((id, r.track_id));
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().await.len() < kill_after {
        assert!(Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    node.kill9().unwrap();
    dead.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= kill_after && acked.len() < TOTAL,
        "killed during the burst: {} acknowledged",
        acked.len()
    );

    node.start().await.unwrap();
    for (id, track) in &acked {
        let st = sender
            .status(id)
            .await
            .unwrap_or_else(|e| panic!("{id} acknowledged, then lost: {e}"));
        assert_eq!(&st.track_id, track, "{id} came back with another TrackID");
    }
    // Every acknowledged message reaches the recipient's inbox exactly once.
    let recipient = HttpAdapter::new(&node.base, &tr);
    let want: HashSet<&String> = acked.iter().map(|(id, _)| id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (mut cursor, mut seen, mut dupes) = (0, HashSet::new(), 0);
        loop {
            let page = recipient.inbox(cursor, 1000, 0).await.unwrap();
            if page.messages.is_empty() {
                break;
            }
            cursor = page.cursor;
            for m in page.messages {
                if !seen.insert(m.message_id) {
                    dupes += 1;
                }
            }
        }
        assert_eq!(dupes, 0, "a message was put in the inbox twice");
        let missing = want.iter().filter(|id| !seen.contains(**id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged messages never reached the inbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        node.terminate().unwrap().success(),
        "graceful stop after recovery"
    );
    let v = node.cli(&["log", "verify"]).unwrap();
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "log verify after a crash: {out}");
    assert!(out.contains("message log intact"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_verify_reports_an_edit_made_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::configure(exe(), dir.path()).unwrap();
    let ts = node.token(SENDER).unwrap();
    node.start().await.unwrap();
    let c = HttpAdapter::new(&node.base, &ts);
    for _ in 0..20 {
        c.send(&message(&format!("urn:uuid:{}", uuid::Uuid::new_v4())))
            .await
            .unwrap();
    }
    assert!(node.terminate().unwrap().success());
    let ok = node.cli(&["log", "verify"]).unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 20 records"));

    // An operator with database access moves a record's time by one microsecond.
    {
        use db::{Conn, SqliteConn, Value};
        let mut db = SqliteConn::open(&dir.path().join("data/node.db"), false).unwrap();
        db.execute(
            "UPDATE message_log SET at = at + 1 WHERE seq = $1",
            &[Value::I64(7)],
        )
        .unwrap();
    }
    let bad = node.cli(&["log", "verify"]).unwrap();
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(2), "{out}");
    assert!(out.contains("BROKEN at record 7"), "{out}");
}
