//! One conformance suite, run against both engines: SQLite in a temporary folder and the real
//! PostgreSQL server of this machine (each test in its own schema). Set `ORTAQ_PG` to point
//! elsewhere; with `ORTAQ_REQUIRE_PG=1` (CI) an unreachable server fails the run instead of
//! skipping the PostgreSQL half.

use std::sync::Arc;

use db::{Conn, PgConn, SqliteConn, Value};
use ed25519_dalek::{Signer, SigningKey};
use store::{
    Accepted, AckOutcome, CheckpointSigner, Destination, Direction, Engine, Kind, NewMessage,
    NodeSignature, RemoteDone, Route, Store, StoreConfig, StoreError,
};

struct TestKey(SigningKey);

impl CheckpointSigner for TestKey {
    fn key_id(&self) -> String {
        "test-key".into()
    }
    fn sign(&self, m: &[u8]) -> Vec<u8> {
        self.0.sign(m).to_bytes().to_vec()
    }
}

/// A fresh, empty store of one engine, plus a way to reach its tables directly.
struct Fixture {
    engine: Engine,
    key: SigningKey,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn sqlite() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        Some(Fixture {
            engine: Engine::Sqlite(dir.path().join("node.db")),
            key: SigningKey::from_bytes(&[7; 32]),
            _dir: Some(dir),
        })
    }

    fn postgres() -> Option<Fixture> {
        Some(Fixture {
            engine: Engine::Postgres(testkit::postgres_schema()?),
            key: SigningKey::from_bytes(&[7; 32]),
            _dir: None,
        })
    }

    fn config(&self, checkpoint_every: i64) -> StoreConfig {
        let mut c = StoreConfig::new(self.engine.clone());
        c.checkpoint_every = checkpoint_every;
        c.signer = Some(Arc::new(TestKey(self.key.clone())));
        c
    }

    fn open(&self) -> Store {
        Store::open(self.config(1000)).unwrap()
    }

    /// Runs `sql` on a separate connection straight to the database, as an attacker or an
    /// operator with database access would, and commits it.
    fn tamper(&self, sql: &str, params: &[Value]) {
        tokio::task::block_in_place(|| {
            let mut raw: Box<dyn Conn> = match &self.engine {
                Engine::Sqlite(p) => Box::new(SqliteConn::open(p, false).unwrap()),
                Engine::Postgres(c) => Box::new(PgConn::open(c).unwrap()),
            };
            assert!(
                raw.execute(sql, params).unwrap() > 0,
                "{sql} changed nothing"
            );
        })
    }
}

fn msg(id: &str, sender: &str, route: Route) -> NewMessage {
    NewMessage {
        message_id: format!("urn:uuid:{id}"),
        track_id: format!("urn:uuid:track-{id}"),
        accept_time: 1_000_000,
        direction: Direction::Out,
        sender: sender.into(),
        recipient: "EAEU://EEC/CP/P.TS.01/P.ACT.001".into(),
        action: "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001".into(),
        kind: Kind::Application,
        conversation_id: Some("urn:uuid:conv".into()),
        procedure_id: None,
        relates_to: None,
        process: Some("P.TS.01".into()),
        transaction: Some("P.TS.01.TRN.001".into()),
        envelope: format!("<env id=\"{id}\">\u{0}binary-safe \u{1F600}</env>").into_bytes(),
        received: None,
        route,
        signature: None,
        expires_at: None,
        evidence: Vec::new(),
    }
}

const KZ: &str = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002";
const EEC: &str = "EAEU://EEC/CP/P.TS.01/P.ACT.001";

fn local() -> Route {
    Route::Outbox {
        destination: Destination::Local,
    }
}

async fn accept_keeps_bytes_and_deduplicates(f: Fixture) {
    let s = f.open();
    let m = msg("a1", KZ, Route::None);
    assert_eq!(s.accept(m.clone()).await.unwrap(), Accepted::New);
    assert_eq!(
        s.envelope(&m.message_id).await.unwrap().unwrap(),
        m.envelope
    );
    let rec = s.message(&m.message_id).await.unwrap().unwrap();
    assert_eq!((rec.sender.as_str(), rec.state.as_str()), (KZ, "accepted"));

    let mut again = m.clone();
    again.track_id = "urn:uuid:other-track".into();
    again.accept_time = 2_000_000;
    assert_eq!(
        s.accept(again).await.unwrap(),
        Accepted::Duplicate {
            track_id: m.track_id.clone(),
            accept_time: 1_000_000,
            conversation_id: m.conversation_id.clone(),
        }
    );
    let mut thief = m.clone();
    thief.sender = "EAEU://RU/CP/P.TS.01/P.TS.01.ACT.002".into();
    thief.track_id = "urn:uuid:t3".into();
    assert!(matches!(
        s.accept(thief).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.history(&m.message_id).await.unwrap().len(), 1);
    s.close().await.unwrap();
}

async fn a_refused_document_is_kept_undelivered_and_its_notice_queued(f: Fixture) {
    let s = f.open();
    let mut refused = msg("r1", KZ, Route::None);
    refused.recipient = EEC.into();
    let mut notice = msg("r1-err", "EAEU://EEC/SR/gate", local());
    notice.recipient = KZ.into();
    let detail = "document refused: 2 problems".to_owned();
    assert_eq!(
        s.accept_refused(refused.clone(), detail.clone(), Some(notice.clone()))
            .await
            .unwrap(),
        Accepted::New
    );
    let states: Vec<(String, Option<String>)> = s
        .history(&refused.message_id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.state.to_string(), c.detail))
        .collect();
    assert_eq!(
        states,
        [
            ("accepted".into(), None),
            ("failed".into(), Some(detail.clone()))
        ]
    );
    // Nothing queued for the refused message; the notice waits for local delivery.
    let items = s
        .claim_outbox("w", &Destination::Local, 10, 1_000_000, 2_000_000, false)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        s.message(&notice.message_id).await.unwrap().unwrap().state,
        "queued"
    );
    // The same message again: the first refusal stands, nothing new is written.
    let mut again = refused.clone();
    again.track_id = "urn:uuid:other".into();
    assert!(matches!(
        s.accept_refused(again, detail, Some(notice)).await.unwrap(),
        Accepted::Duplicate { .. }
    ));
    assert_eq!(s.history(&refused.message_id).await.unwrap().len(), 2);
    s.close().await.unwrap();
}

async fn local_delivery_goes_through_outbox_and_inbox(f: Fixture) {
    let s = f.open();
    let m = msg("b1", KZ, local());
    s.accept(m.clone()).await.unwrap();
    let claimed = s
        .claim_outbox("w1", &Destination::Local, 10, 30_000_000, 2_000_000, true)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        s.deliver_local(claimed[0].id, "w1", 2_000_001)
            .await
            .unwrap()
            .as_deref(),
        Some(EEC)
    );
    assert!(
        s.claim_outbox("w1", &Destination::Local, 10, 30_000_000, 99_000_000, true)
            .await
            .unwrap()
            .is_empty()
    );

    let inbox = s.inbox(EEC, 0, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].envelope, m.envelope);
    assert!(inbox[0].first_delivery);
    s.mark_delivered(vec![(inbox[0].seq, m.message_id.clone())], 3)
        .await
        .unwrap();
    assert!(!s.inbox(EEC, 0, 10).await.unwrap()[0].first_delivery);
    // Somebody else cannot acknowledge it for the recipient.
    assert_eq!(
        s.ack(KZ, &m.message_id, 4).await.unwrap(),
        AckOutcome::NotInInbox
    );
    assert_eq!(
        s.ack(EEC, &m.message_id, 4).await.unwrap(),
        AckOutcome::Acknowledged
    );
    assert_eq!(
        s.ack(EEC, &m.message_id, 5).await.unwrap(),
        AckOutcome::AlreadyAcknowledged
    );
    assert!(s.inbox(EEC, 0, 10).await.unwrap().is_empty());
    let states: Vec<String> = s
        .history(&m.message_id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.state.to_string())
        .collect();
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
    s.close().await.unwrap();
}

async fn remote_delivery_keeps_signature_retries_and_fails_with_notice(f: Fixture) {
    let s = f.open();
    let to_ru = || Route::Outbox {
        destination: Destination::Peer("RU".into()),
    };
    let sig = NodeSignature {
        header: "alg=ed25519; sig=AAAA".into(),
        certificate: vec![0x30, 0x82, 1, 2, 3],
    };
    let mut a = msg("r1", KZ, to_ru());
    a.signature = Some(sig.clone());
    a.expires_at = Some(50_000_000);
    s.accept(a.clone()).await.unwrap();
    let mut b = msg("r2", KZ, to_ru());
    b.signature = Some(sig.clone());
    s.accept(b.clone()).await.unwrap();

    // Claims are per destination: the local worker never sees a peer's entries.
    assert!(
        s.claim_outbox("w", &Destination::Local, 10, 1_000_000, 2_000_000, true)
            .await
            .unwrap()
            .is_empty()
    );
    let got = s
        .claim_outbox(
            "w",
            &Destination::Peer("RU".into()),
            10,
            1_000_000,
            2_000_000,
            true,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].expires_at, Some(50_000_000));
    let out = s
        .outbound(got.iter().map(|i| i.id).collect())
        .await
        .unwrap();
    assert_eq!(out[0].envelope, a.envelope);
    assert_eq!(
        out[0].signature.as_ref(),
        Some(&sig),
        "signature and certificate kept"
    );

    // A failed attempt goes back with a later time and is not due before it.
    assert!(
        s.retry_later(got[0].id, "w", 9_000_000, "connection refused")
            .await
            .unwrap()
    );
    assert!(
        !s.retry_later(got[0].id, "other", 9_000_000, "x")
            .await
            .unwrap(),
        "not its lease"
    );
    assert!(
        s.complete_remote(
            vec![RemoteDone {
                item_id: got[1].id,
                sent_at: 2_000_100,
                detail: "RU rcv".into()
            }],
            "w",
            2_000_200
        )
        .await
        .unwrap()[0]
    );
    assert!(
        s.claim_outbox(
            "w2",
            &Destination::Peer("RU".into()),
            10,
            1_000_000,
            8_999_999,
            true
        )
        .await
        .unwrap()
        .is_empty()
    );
    let again = s
        .claim_outbox(
            "w2",
            &Destination::Peer("RU".into()),
            10,
            1_000_000,
            9_000_000,
            true,
        )
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));

    // Giving up: final state and the sender's notice commit together.
    let mut notice = msg("r1-notice", "EAEU://KZ/SR/gate", local());
    notice.recipient = KZ.into();
    assert!(
        s.fail_outbox(
            again[0].id,
            "w2",
            store::State::Expired,
            "expired",
            Some(notice.clone()),
            60_000_000
        )
        .await
        .unwrap()
    );
    assert!(
        s.claim_outbox(
            "w2",
            &Destination::Peer("RU".into()),
            10,
            1_000_000,
            99_000_000,
            true
        )
        .await
        .unwrap()
        .is_empty()
    );
    let states = |id: String| {
        let s = s.clone();
        async move {
            s.history(&id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.state.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        states(a.message_id.clone()).await,
        ["accepted", "queued", "expired"]
    );
    assert_eq!(
        states(b.message_id.clone()).await,
        ["accepted", "queued", "sent", "received_by_peer"]
    );
    assert_eq!(
        states(notice.message_id.clone()).await,
        ["accepted", "queued"]
    );
    s.close().await.unwrap();
}

async fn nsi_versions_are_numbered_immutable_and_deduplicated(f: Fixture) {
    let s = f.open();
    assert_eq!(
        s.nsi_publish("P.CLS.019", "resource", "aa", b"{1}".to_vec(), 10)
            .await
            .unwrap(),
        (1, true)
    );
    assert_eq!(
        s.nsi_publish("P.CLS.019", "resource", "aa", b"{1}".to_vec(), 11)
            .await
            .unwrap(),
        (1, false),
        "same content, same version"
    );
    assert_eq!(
        s.nsi_publish("P.CLS.019", "resource", "bb", b"{2}".to_vec(), 12)
            .await
            .unwrap(),
        (2, true)
    );
    assert_eq!(
        s.nsi_publish("X.1", "crosswalk", "cc", b"{x}".to_vec(), 13)
            .await
            .unwrap(),
        (1, true)
    );
    let latest = s.nsi_latest().await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|v| (v.code.as_str(), v.version))
            .collect::<Vec<_>>(),
        [("P.CLS.019", 2), ("X.1", 1)]
    );
    assert_eq!(
        s.nsi_version("P.CLS.019", Some(1))
            .await
            .unwrap()
            .unwrap()
            .content,
        b"{1}"
    );
    assert_eq!(s.nsi_versions("P.CLS.019").await.unwrap().len(), 2);
    // A version received from the publisher keeps its number; a different hash under it is refused.
    let mut v = s.nsi_version("X.1", None).await.unwrap().unwrap();
    v.version = 7;
    assert!(s.nsi_put(v.clone()).await.unwrap());
    assert!(!s.nsi_put(v.clone()).await.unwrap());
    v.sha256 = "dd".into();
    assert!(matches!(s.nsi_put(v).await, Err(StoreError::Conflict(_))));
    s.close().await.unwrap();
}

async fn inbox_never_hands_out_acknowledged(f: Fixture) {
    let s = f.open();
    for i in 0..30 {
        s.accept(msg(&format!("c{i}"), KZ, local())).await.unwrap();
    }
    for it in s
        .claim_outbox("w", &Destination::Local, 100, 1_000_000, 2_000_000, true)
        .await
        .unwrap()
    {
        assert!(
            s.deliver_local(it.id, "w", 2_000_001)
                .await
                .unwrap()
                .is_some()
        );
    }
    for i in (0..30).step_by(3) {
        s.ack(EEC, &format!("urn:uuid:c{i}"), 3).await.unwrap();
    }
    // Page through with the cursor: every unacknowledged message once, no acknowledged one.
    let (mut cursor, mut seen) = (0, Vec::new());
    loop {
        let page = s.inbox(EEC, cursor, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        seen.extend(page.into_iter().map(|i| i.message_id));
    }
    let expect: Vec<String> = (0..30)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("urn:uuid:c{i}"))
        .collect();
    assert_eq!(seen, expect);
    s.close().await.unwrap();
}

async fn leases_fence_out_a_slow_worker(f: Fixture) {
    let s = f.open();
    s.accept(msg("d1", KZ, local())).await.unwrap();
    let a = s
        .claim_outbox("A", &Destination::Local, 10, 1_000, 2_000_000, true)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        s.claim_outbox("B", &Destination::Local, 10, 1_000, 2_000_500, true)
            .await
            .unwrap()
            .is_empty(),
        "lease still held"
    );
    let b = s
        .claim_outbox("B", &Destination::Local, 10, 1_000, 2_001_001, true)
        .await
        .unwrap();
    assert_eq!((b.len(), b[0].attempts), (1, 2));
    assert!(
        s.deliver_local(a[0].id, "A", 2_001_002)
            .await
            .unwrap()
            .is_none(),
        "A lost its lease"
    );
    assert!(
        s.deliver_local(b[0].id, "B", 2_001_003)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.inbox(EEC, 0, 10).await.unwrap().len(), 1);
    s.close().await.unwrap();
}

async fn concurrent_writes_share_commits(f: Fixture) {
    let s = f.open();
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.accept(msg(&format!("e{i}"), KZ, local())).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Accepted::New);
    }
    let st = s.writer_stats();
    let (batches, jobs) = (
        st.batches.load(std::sync::atomic::Ordering::Relaxed),
        st.jobs.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(
        jobs >= 2000 && batches < jobs / 4,
        "group commit: {jobs} jobs in {batches} batches"
    );
    assert_eq!(s.queue_depth().await.unwrap(), (2000, 0));
    let report = s.verify_log(f.key.verifying_key()).await.unwrap();
    assert_eq!((report.records, report.first_break), (2000, None));
    s.close().await.unwrap();
}

async fn close_loses_nothing_that_was_answered(f: Fixture) {
    let s = f.open();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.accept(msg(&format!("g{i}"), KZ, Route::None))
                .await
                .map(|_| i)
        }));
    }
    tokio::task::yield_now().await;
    s.close().await.unwrap();
    let mut ok = Vec::new();
    for t in tasks {
        if let Ok(i) = t.await.unwrap() {
            ok.push(i);
        }
    }
    let s = f.open();
    for i in ok {
        assert!(
            s.message(&format!("urn:uuid:g{i}"))
                .await
                .unwrap()
                .is_some(),
            "g{i} was answered but lost"
        );
    }
    s.close().await.unwrap();
}

async fn log_tampering_is_detected(f: Fixture) {
    let fill = |f: &Fixture| {
        let f_cfg = f.config(5);
        async move {
            let s = Store::open(f_cfg).unwrap();
            for i in 0..12 {
                s.accept(msg(&format!("h{i}"), KZ, Route::None))
                    .await
                    .unwrap();
            }
            s.checkpoint().await.unwrap();
            s
        }
    };
    let key = f.key.verifying_key();
    let s = fill(&f).await;
    let ok = s.verify_log(key).await.unwrap();
    assert_eq!(
        (ok.records, ok.last_checkpoint, ok.first_break.clone()),
        (12, 12, None)
    );
    assert!(ok.checkpoints >= 2);
    // A checkpoint signed by another key is refused.
    let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(s.verify_log(other).await.unwrap().first_break.is_some());
    s.close().await.unwrap();

    // Each tampering, committed straight in the database of a fresh store, and the first
    // broken record it must yield.
    let cases: [(&str, Vec<Value>, i64); 5] = [
        (
            "UPDATE message_log SET event = 'rejected' WHERE seq = $1",
            vec![Value::I64(4)],
            4,
        ),
        (
            "UPDATE messages SET envelope = $1 WHERE message_id = 'urn:uuid:h6'",
            vec![Value::Blob(b"<forged/>".to_vec())],
            7,
        ),
        (
            "DELETE FROM message_log WHERE seq = $1",
            vec![Value::I64(9)],
            9,
        ),
        (
            "DELETE FROM message_log WHERE seq > $1",
            vec![Value::I64(10)],
            11,
        ),
        (
            "DELETE FROM messages WHERE message_id = 'urn:uuid:h2'",
            vec![],
            3,
        ),
    ];
    for (sql, params, expect) in cases {
        let f = if matches!(f.engine, Engine::Sqlite(_)) {
            tokio::task::block_in_place(Fixture::sqlite).unwrap()
        } else {
            tokio::task::block_in_place(Fixture::postgres).unwrap()
        };
        let s = fill(&f).await;
        f.tamper(sql, &params);
        let report = s.verify_log(key).await.unwrap();
        let brk = report
            .first_break
            .unwrap_or_else(|| panic!("{sql} went unnoticed"));
        assert_eq!(brk.seq, expect, "{sql}: {}", brk.reason);
        s.close().await.unwrap();
    }
    // A message slipped in behind the log's back is caught as well.
    let f2 = tokio::task::block_in_place(Fixture::sqlite).unwrap();
    let s = fill(&f2).await;
    f2.tamper(
        "INSERT INTO messages (message_id, track_id, accept_time, direction, sender, recipient, action, kind, envelope, envelope_sha256) VALUES ('urn:uuid:forged', 't', 1, 'out', 'x', 'y', 'a', 'application', X'00', 'h')",
        &[],
    );
    assert!(
        s.verify_log(key)
            .await
            .unwrap()
            .first_break
            .unwrap()
            .reason
            .contains("urn:uuid:forged")
    );
    s.close().await.unwrap();
}

async fn reopening_keeps_data_and_migrations_are_idempotent(f: Fixture) {
    let s = f.open();
    s.accept(msg("i1", KZ, Route::None)).await.unwrap();
    s.add_token("abc", KZ, "test", 1, None).await.unwrap();
    s.close().await.unwrap();
    let s = f.open();
    assert!(s.message("urn:uuid:i1").await.unwrap().is_some());
    assert_eq!(
        s.token_grant("abc").await.unwrap().map(|g| g.participant),
        Some(KZ.to_owned())
    );
    assert_eq!(s.token_grant("abd").await.unwrap(), None);
    s.close().await.unwrap();
}

/// Evidence is stored with its message, travels with it to the outbox, and the message's log
/// records up to a signed checkpoint prove it offline; a changed record breaks the proof.
async fn evidence_and_log_proofs(f: Fixture) {
    let s = f.open();
    let mut a = msg(
        "e1",
        KZ,
        Route::Outbox {
            destination: Destination::Peer("RU".into()),
        },
    );
    a.evidence = vec![
        ("ttp-receipt".into(), b"<Receipt/>".to_vec()),
        ("ttp-timestamp".into(), vec![0x30, 0x03, 1, 2, 3]),
    ];
    s.accept(a.clone()).await.unwrap();
    s.accept(msg("e2", KZ, local())).await.unwrap();
    assert_eq!(s.evidence("urn:uuid:e1").await.unwrap(), a.evidence);
    assert!(s.evidence("urn:uuid:e2").await.unwrap().is_empty());
    let claimed = s
        .claim_outbox(
            "w",
            &Destination::Peer("RU".into()),
            10,
            1_000_000,
            2_000_000,
            true,
        )
        .await
        .unwrap();
    let out = s
        .outbound(claimed.iter().map(|c| c.id).collect())
        .await
        .unwrap();
    assert_eq!(out[0].evidence, a.evidence);

    // No checkpoint covers the message yet: no proof. After one, the proof verifies.
    assert_eq!(s.log_proof("urn:uuid:e1").await.unwrap(), None);
    assert!(s.checkpoint().await.unwrap());
    let proof = s.log_proof("urn:uuid:e1").await.unwrap().expect("a proof");
    let sha = store::log::hex_sha256(&a.envelope);
    let key = f.key.verifying_key();
    store::log::verify_proof(&proof, "urn:uuid:e1", &sha, &key).unwrap();
    assert!(proof.records.len() >= 2, "the records up to the checkpoint");
    assert!(store::log::verify_proof(&proof, "urn:uuid:e2", &sha, &key).is_err());
    let mut changed = proof.clone();
    changed.records[0].at += 1;
    assert!(
        store::log::verify_proof(&changed, "urn:uuid:e1", &sha, &key)
            .unwrap_err()
            .contains("does not match its contents")
    );
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert!(store::log::verify_proof(&proof, "urn:uuid:e1", &sha, &other).is_err());

    // A time stamp is added once to a checkpoint, and travels with its proof.
    assert_eq!(proof.checkpoint.stamp, None);
    let todo = s.unstamped_checkpoints(10).await.unwrap();
    assert_eq!(
        todo,
        vec![(proof.checkpoint.seq, proof.checkpoint.hash.clone())]
    );
    s.stamp_checkpoint(proof.checkpoint.seq, vec![0x30, 1, 2], "0/1".into())
        .await
        .unwrap();
    s.stamp_checkpoint(proof.checkpoint.seq, vec![9], "0/9".into())
        .await
        .unwrap();
    assert!(s.unstamped_checkpoints(10).await.unwrap().is_empty());
    let stamped = s.log_proof("urn:uuid:e1").await.unwrap().unwrap();
    assert_eq!(
        stamped.checkpoint.stamp,
        Some((vec![0x30, 1, 2], "0/1".to_owned()))
    );
    s.close().await.unwrap();
}

/// Tokens: listed by id (never by the token), revoked one by one or per participant, and an
/// expiry kept with each; a revoked token grants nothing.
async fn tokens_are_listed_revoked_and_expire(f: Fixture) {
    let s = f.open();
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    s.add_token(&a, KZ, "first", 1, None).await.unwrap();
    s.add_token(&b, KZ, "second", 2, Some(99)).await.unwrap();
    s.add_token(&c, EEC, "third", 3, None).await.unwrap();
    let list = s.tokens().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["c".repeat(16), "b".repeat(16), "a".repeat(16)]);
    assert_eq!(list[1].expires_at, Some(99));
    assert_eq!(
        s.token_grant(&b).await.unwrap(),
        Some(store::TokenGrant {
            participant: KZ.into(),
            expires_at: Some(99)
        })
    );
    let by_id = store::TokenSelector::Id("a".repeat(16));
    assert_eq!(s.revoke_tokens(by_id.clone(), 10).await.unwrap(), 1);
    assert_eq!(
        s.revoke_tokens(by_id, 11).await.unwrap(),
        0,
        "already revoked"
    );
    assert_eq!(s.token_grant(&a).await.unwrap(), None);
    assert!(s.token_grant(&b).await.unwrap().is_some());
    let kz = store::TokenSelector::Participant(KZ.into());
    assert_eq!(s.revoke_tokens(kz, 12).await.unwrap(), 1);
    assert_eq!(s.token_grant(&b).await.unwrap(), None);
    assert!(s.token_grant(&c).await.unwrap().is_some());
    let revoked: Vec<Option<i64>> = s
        .tokens()
        .await
        .unwrap()
        .iter()
        .map(|t| t.revoked_at)
        .collect();
    assert_eq!(revoked, [None, Some(12), Some(10)]);
    s.close().await.unwrap();
}

/// The initiator's side of transactions (node::conversations): kept once per request, found
/// from any of its MessageIDs, moved on in place, and due when its deadline has come.
async fn transactions_are_kept_found_and_due(f: Fixture) {
    use store::transactions::KeptTransaction;
    let s = f.open();
    let k = KeptTransaction {
        request_id: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
        participant: KZ.into(),
        conversation_id: Some("urn:uuid:00000000-0000-4000-8000-0000000000c1".into()),
        process: "P.TS.01".into(),
        version: "1.0.1".into(),
        transaction: "P.TS.01.TRN.001".into(),
        state: "await-rcv".into(),
        attempts: 0,
        outcome: "pending".into(),
        why: None,
        deadline: Some(1_000),
        updated_at: 10,
    };
    assert!(s.txn_start(k.clone()).await.unwrap());
    assert!(!s.txn_start(k.clone()).await.unwrap(), "kept once");
    assert_eq!(s.txn_of(&k.request_id).await.unwrap(), Some(k.clone()));
    let c = k.conversation_id.as_deref().unwrap();
    assert_eq!(
        s.txn_pending_in(KZ, c, "P.TS.01.TRN.001").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(
        s.txn_pending_in(KZ, c, "P.TS.01.TRN.002").await.unwrap(),
        None
    );
    assert!(s.txn_due(999, 10).await.unwrap().is_empty());
    assert_eq!(
        s.txn_due(1_000, 10).await.unwrap(),
        std::slice::from_ref(&k)
    );
    // A retry went out: the state moves on and the retry's MessageID finds it too.
    let retry = "urn:uuid:00000000-0000-4000-8000-000000000002";
    let next = KeptTransaction {
        attempts: 1,
        deadline: Some(2_000),
        updated_at: 1_000,
        ..k.clone()
    };
    s.txn_update(&next, Some(retry)).await.unwrap();
    assert_eq!(s.txn_of(retry).await.unwrap(), Some(next.clone()));
    s.txn_add_message(
        &k.request_id,
        "urn:uuid:00000000-0000-4000-8000-000000000003",
    )
    .await
    .unwrap();
    assert_eq!(
        s.txn_of("urn:uuid:00000000-0000-4000-8000-000000000003")
            .await
            .unwrap()
            .map(|t| t.attempts),
        Some(1)
    );
    // Ended: no longer due, no longer pending in its conversation.
    let done = KeptTransaction {
        outcome: "failed".into(),
        why: Some("no RCV in time after 2 attempts".into()),
        deadline: None,
        ..next
    };
    s.txn_update(&done, None).await.unwrap();
    assert!(s.txn_due(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(
        s.txn_pending_in(KZ, c, "P.TS.01.TRN.001").await.unwrap(),
        None
    );
    assert_eq!(s.txn_of(&k.request_id).await.unwrap(), Some(done));
    // Ended long enough ago: forgotten, with every MessageID that found it.
    assert_eq!(
        s.txn_prune(1_000).await.unwrap(),
        0,
        "ended at 1 000, not before"
    );
    assert_eq!(s.txn_prune(1_001).await.unwrap(), 1);
    assert_eq!(s.txn_of(&k.request_id).await.unwrap(), None);
    assert_eq!(s.txn_of(retry).await.unwrap(), None);
    s.close().await.unwrap();
}

macro_rules! conformance {
    ($engine:ident) => {
        mod $engine {
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        if let Some(f) = tokio::task::block_in_place(Fixture::$engine) {
                            super::$name(f).await;
                        }
                    }
                };
            }
            case!(accept_keeps_bytes_and_deduplicates);
            case!(local_delivery_goes_through_outbox_and_inbox);
            case!(a_refused_document_is_kept_undelivered_and_its_notice_queued);
            case!(inbox_never_hands_out_acknowledged);
            case!(nsi_versions_are_numbered_immutable_and_deduplicated);
            case!(remote_delivery_keeps_signature_retries_and_fails_with_notice);
            case!(leases_fence_out_a_slow_worker);
            case!(concurrent_writes_share_commits);
            case!(close_loses_nothing_that_was_answered);
            case!(log_tampering_is_detected);
            case!(reopening_keeps_data_and_migrations_are_idempotent);
            case!(evidence_and_log_proofs);
            case!(tokens_are_listed_revoked_and_expire);
            case!(transactions_are_kept_found_and_due);
        }
    };
}

conformance!(sqlite);
conformance!(postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_of_both_engines_match() {
    let Some(pg) = tokio::task::block_in_place(Fixture::postgres) else {
        return;
    };
    let lite = Fixture::sqlite().unwrap();
    let (a, b) = (lite.open(), pg.open());
    let (sa, sb) = (a.schema().await.unwrap(), b.schema().await.unwrap());
    assert!(sa.len() > 40, "schema read back: {sa:?}");
    assert_eq!(sa, sb, "SQLite and PostgreSQL schemas differ");
    a.close().await.unwrap();
    b.close().await.unwrap();
}
