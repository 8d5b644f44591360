//! The trusted third party of a node over its adapter API: a receipt for a signed document,
//! judged as of the moment asked; a clear refusal when the node has no trust service, when the
//! moment is not a time, and when its trust list was expired or signed by someone else at
//! start (never used silently).

use std::path::Path;
use std::sync::Arc;

use adapter::http::HttpAdapter;
use adapter::{Adapter, AdapterError, Submission, Ttp};
use node::Node;
use node::config::{NodeConfig, ParticipantConfig, TsaSection, TtpSection};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use ttp::read_receipt;

const IS: &str = "EAEU://EEC/CP/P.TS.01/P.ACT.001";

struct Pki {
    signer: dsig::KeySigner,
    list: ttp::TrustList,
    tl_signer: dsig::KeySigner,
    tl_pem: String,
    ttp_key_pem: String,
    ttp_cert_pem: String,
}

fn cn(s: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, s);
    d
}

fn pki(now: OffsetDateTime) -> Pki {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = cn("KZ test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
    let issue = |name: &str, from: OffsetDateTime| {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = cn(name);
        p.not_before = from;
        p.not_after = from + Duration::days(365);
        let cert = p
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        (key, cert)
    };
    let (k, c) = issue("KZ test signer", now - Duration::days(1));
    let (tk, tc) = issue("test trust-list signer", now - Duration::days(1));
    let (sk, sc) = issue("test TTP", now - Duration::days(1));
    Pki {
        signer: dsig::KeySigner::from_pkcs8(&k.serialize_der(), c.der()).unwrap(),
        list: ttp::TrustList {
            version: 3,
            issued: now,
            next_update: now + Duration::days(30),
            ttps: Vec::new(),
            revoked_nodes: Vec::new(),
            providers: Vec::new(),
            states: vec![ttp::StateEntry {
                segment: "KZ".into(),
                cas: vec![ca_der],
                algorithms: vec![dsig::ECDSA_SHA256.into()],
                crls: vec![],
            }],
        },
        tl_signer: dsig::KeySigner::from_pkcs8(&tk.serialize_der(), tc.der()).unwrap(),
        tl_pem: tc.pem(),
        ttp_key_pem: sk.serialize_pem(),
        ttp_cert_pem: sc.pem(),
    }
}

async fn start(dir: &Path, ttp: Option<TtpSection>) -> (Arc<Node>, HttpAdapter, Stop) {
    start_with(dir, ttp, None).await
}

async fn start_with(
    dir: &Path,
    ttp: Option<TtpSection>,
    tsa: Option<TsaSection>,
) -> (Arc<Node>, HttpAdapter, Stop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = NodeConfig {
        segment: "EEC".into(),
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: dir.to_owned(),
        store: Default::default(),
        participants: vec![ParticipantConfig {
            address: IS.into(),
            name: String::new(),
        }],
        limits: Default::default(),
        checkpoint_every: 1000,
        federation: None,
        delivery: Default::default(),
        nsi: None,
        processes: None,
        ttp,
        tsa,
        tls: None,
        signal_namespace: None,
        journal: None,
        queue: None,
        web: None,
    };
    let running = host::start_on(cfg, node::system_clock(), listener)
        .await
        .unwrap();
    let node = running.node.clone();
    let client = HttpAdapter::new(
        &format!("http://127.0.0.1:{port}"),
        &node.issue_token(IS, "t").await.unwrap(),
    );
    (node, client, Stop(running))
}

/// Stops the node (its services, then the server and the store).
struct Stop(host::Running);

impl Stop {
    async fn send(self, _: ()) -> Result<(), node::NodeError> {
        self.0.stop().await
    }
}

fn files(dir: &Path, p: &Pki, list_xml: &str) -> TtpSection {
    let w = |n: &str, b: &str| {
        let f = dir.join(n);
        std::fs::write(&f, b).unwrap();
        f
    };
    TtpSection {
        trust_list: w("trust-list.xml", list_xml),
        trust_list_signer: w("tl-signer-test-cert.pem", &p.tl_pem),
        key: Some(w("ttp-test-key.pem", &p.ttp_key_pem)),
        cert: Some(w("ttp-test-cert.pem", &p.ttp_cert_pem)),
        subscribers: Vec::new(),
        publisher: None,
        refresh_secs: 3600,
    }
}

fn sample() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/P.TS.01/samples/MSG.001.xml"),
    )
    .unwrap()
}

fn problem(e: AdapterError) -> (u16, String) {
    match e {
        AdapterError::Api { status, body } => (status, body),
        e => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_for_signed_documents_as_of_a_moment() {
    let now = OffsetDateTime::now_utc();
    let p = pki(now);
    let dir = tempfile::tempdir().unwrap();
    let ttp = files(dir.path(), &p, &p.list.sign(&p.tl_signer).unwrap());
    let (_node, c, stop) = start(dir.path(), Some(ttp)).await;
    let doc = dsig::sign_enveloped(&sample(), &p.signer).unwrap();

    let receipt = c.receipt(&doc, None).await.unwrap().0;
    assert_eq!(read_receipt(&receipt), ("valid".to_owned(), vec![]));
    assert!(receipt.contains("<rc:TrustListVersion>3</rc:TrustListVersion>"));
    // The receipt is signed by the node's TTP key.
    let v = dsig::verify_enveloped(&receipt, &dsig::Verifiers::standard()).unwrap();
    let (_, ttp_pem) = x509_parser::pem::parse_x509_pem(p.ttp_cert_pem.as_bytes()).unwrap();
    assert_eq!(v.certificate, ttp_pem.contents);

    // A week ago the signer's certificate did not exist yet; a tampered document fails.
    let week_ago = (now - Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (verdict, reasons) = read_receipt(&c.receipt(&doc, Some(&week_ago)).await.unwrap().0);
    assert_eq!(verdict, "invalid");
    assert!(reasons[0].starts_with("not-yet-valid:"), "{reasons:?}");
    let (_, reasons) = read_receipt(
        &c.receipt(&doc.replacen(">KZ<", ">RU<", 1), None)
            .await
            .unwrap()
            .0,
    );
    assert!(reasons[0].starts_with("digest-mismatch:"), "{reasons:?}");
    let (status, body) = problem(c.receipt(&doc, Some("yesterday")).await.unwrap_err());
    assert_eq!(status, 400, "{body}");
    let _ = stop.send(()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_trust_list_is_never_used_silently() {
    let now = OffsetDateTime::now_utc();
    let p = pki(now);
    let doc = dsig::sign_enveloped(&sample(), &p.signer).unwrap();
    // No trust service at all.
    let dir = tempfile::tempdir().unwrap();
    let (_n, c, stop) = start(dir.path(), None).await;
    let (status, body) = problem(c.receipt(&doc, None).await.unwrap_err());
    assert_eq!(status, 503, "{body}");
    let _ = stop.send(()).await;
    // An expired list, and one signed by a key other than the pinned one.
    let mut old = p.list.clone();
    old.next_update = now - Duration::hours(1);
    let other = pki(now);
    for (xml, why) in [
        (old.sign(&p.tl_signer).unwrap(), "expired"),
        (
            p.list.sign(&other.tl_signer).unwrap(),
            "signed by a certificate other than",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ttp = files(dir.path(), &p, &xml);
        let (_n, c, stop) = start(dir.path(), Some(ttp)).await;
        let (status, body) = problem(c.receipt(&doc, None).await.unwrap_err());
        assert_eq!(status, 503);
        assert!(body.contains(why), "{body}");
        let _ = stop.send(()).await;
    }
}

/// A node's time-stamp authority: OpenSSL's request over HTTP gets a token `openssl ts -verify`
/// accepts; receipts come stamped (batched), and the stamp verifies against the federation root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_stamps_over_http_and_on_receipts() {
    use std::process::Command;
    let now = OffsetDateTime::now_utc();
    let p = pki(now);
    let dir = tempfile::tempdir().unwrap();
    let fed = dir.path().join("pki");
    trust::pki::init(&fed, &[], now).unwrap();
    let (cert, key) = trust::pki::issue_tsa(&fed, envelope::Segment::Eec, now).unwrap();
    let root = trust::pki::root_cert_path(&fed);
    let trusted = vec![trust::pki::pem_to_der(&std::fs::read_to_string(&root).unwrap()).unwrap()];
    let ttp = files(dir.path(), &p, &p.list.sign(&p.tl_signer).unwrap());
    let tsa_cfg = TsaSection {
        key,
        cert,
        policy: None,
        batch_ms: 2,
    };
    let (_node, c, stop) = start_with(dir.path(), Some(ttp), Some(tsa_cfg)).await;

    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"any bytes a participant wants stamped").unwrap();
    let (q, r) = (dir.path().join("q.tsq"), dir.path().join("r.tsr"));
    let ssl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    };
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let (ok, out) = ssl(&[
        "ts",
        "-query",
        "-data",
        &path(&data),
        "-sha256",
        "-cert",
        "-out",
        &path(&q),
    ]);
    assert!(ok, "{out}");
    let reply = c.time_stamp(&std::fs::read(&q).unwrap()).await.unwrap();
    std::fs::write(&r, &reply).unwrap();
    let (ok, out) = ssl(&[
        "ts",
        "-verify",
        "-queryfile",
        &path(&q),
        "-in",
        &path(&r),
        "-CAfile",
        &path(&root),
    ]);
    assert!(
        ok && out.contains("Verification: OK"),
        "openssl ts -verify: {out}"
    );
    // Garbage gets a rejection inside a well-formed response, not an HTTP error.
    let refused = tsa::token_from_response(&c.time_stamp(b"not DER").await.unwrap());
    assert!(
        matches!(refused, Err(tsa::TsaError::Refused { .. })),
        "{refused:?}"
    );

    // Receipts asked for together share a token; each verifies with its own path.
    let doc = dsig::sign_enveloped(&sample(), &p.signer).unwrap();
    let asks: Vec<_> = (0..8)
        .map(|_| {
            let (c, doc) = (c.clone(), doc.clone());
            tokio::spawn(async move { c.receipt(&doc, None).await })
        })
        .collect();
    let mut answers = Vec::new();
    for a in asks {
        answers.push(a.await.unwrap());
    }
    for a in &answers {
        let (xml, stamp) = a.as_ref().unwrap();
        let stamp = stamp.as_ref().expect("a stamped receipt");
        let token = &stamp.token;
        let proof = &tsa::batch::Proof::from_text(&stamp.proof).unwrap();
        let v = tsa::batch::verify_batched(token, &tsa::sha256(xml.as_bytes()), proof, &trusted)
            .unwrap();
        assert!((v.time - now).whole_seconds().abs() < 60);
        // Any change to the receipt breaks its stamp.
        let changed = xml.replacen("valid", "VALID", 1);
        assert!(
            tsa::batch::verify_batched(token, &tsa::sha256(changed.as_bytes()), proof, &trusted)
                .is_err()
        );
    }
    let _ = stop.send(()).await;
}

/// The trusted third party as a participant (P.XO.02): a request message with a signed
/// document is answered by a signed receipt message; an unreadable request by ERR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttp_answers_receipt_requests_by_message() {
    use base64::Engine as _;
    let now = OffsetDateTime::now_utc();
    let p = pki(now);
    let dir = tempfile::tempdir().unwrap();
    let ttp = files(dir.path(), &p, &p.list.sign(&p.tl_signer).unwrap());
    let (_node, c, stop) = start(dir.path(), Some(ttp)).await;
    let doc = dsig::sign_enveloped(&sample(), &p.signer).unwrap();
    let ask = |body: String| Submission {
        to: "EAEU://EEC/SR/ttp".into(),
        process: "P.XO.02".into(),
        version: "1.0.0".into(),
        procedure: "P.XO.02.PRC.001".into(),
        transaction: "P.XO.02.TRN.001".into(),
        message: "P.XO.02.MSG.001".into(),
        body,
        ..Default::default()
    };
    let good = c
        .send(&ask(format!(
            "<ttp:ReceiptRequest xmlns:ttp=\"urn:ortaq:ttp-request:v1\"><ttp:Document>{}</ttp:Document></ttp:ReceiptRequest>",
            base64::engine::general_purpose::STANDARD.encode(&doc)
        )))
        .await
        .unwrap();
    let bad = c
        .send(&ask(
            "<ttp:ReceiptRequest xmlns:ttp=\"urn:ortaq:ttp-request:v1\"><ttp:Document>not base64!</ttp:Document></ttp:ReceiptRequest>".into(),
        ))
        .await
        .unwrap();
    // Both answers arrive in the IS's inbox, each relating to its request.
    let mut answers = std::collections::HashMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while answers.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "answers: {:?}",
            answers.keys()
        );
        let page = c.inbox(0, 100, 1).await.unwrap();
        for m in page.messages {
            let env = envelope::parse(
                m.envelope.as_bytes(),
                &envelope::ParseOptions::new(envelope::Origin::Any),
            )
            .unwrap();
            if let Some(r) = &env.header.relates_to {
                answers.insert(r.id.to_string(), env);
            }
        }
    }
    let receipt = match &answers[&good.message_id].body {
        envelope::Body::Document(d) => d.clone(),
        other => panic!("expected the receipt, got {other:?}"),
    };
    assert!(
        answers[&good.message_id]
            .header
            .action
            .to_string()
            .ends_with("P.XO.02.MSG.002")
    );
    assert_eq!(read_receipt(&receipt), ("valid".to_owned(), vec![]));
    dsig::verify_enveloped(&receipt, &dsig::Verifiers::standard()).unwrap();
    match &answers[&bad.message_id].body {
        envelope::Body::Signal(s) => {
            assert!(s.errors[0].description.contains("base64"), "{:?}", s.errors)
        }
        other => panic!("expected ERR, got {other:?}"),
    }
    let _ = stop.send(()).await;
}
