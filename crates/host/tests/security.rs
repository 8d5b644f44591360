//! A node under abuse, over real sockets: connections are bounded (in all and per source),
//! a connection over a cap is answered 503 with `Retry-After` at once, a half-open connection
//! is closed when its header does not come, and a legitimate client is answered all the while.
//! (Forged evidence, revoked tokens, bounded refusals: `federation.rs` and `api.rs`.)

use std::time::{Duration, Instant};

use node::config::{LimitsSection, NodeConfig, ParticipantConfig, StoreSection};
use tokio::io::AsyncReadExt as _;

fn config(dir: &std::path::Path, port: u16) -> NodeConfig {
    NodeConfig {
        segment: "KZ".into(),
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: dir.to_owned(),
        store: StoreSection::default(),
        participants: vec![ParticipantConfig {
            address: "EAEU://KZ/CA/conformity-body".into(),
            name: String::new(),
        }],
        limits: LimitsSection {
            max_connections: 2048,
            max_connections_per_source: 256,
            header_timeout_secs: 3,
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

/// 10,000 connections that never send a header, from another source address (127.0.0.2),
/// while a client at 127.0.0.1 asks `/health`: it is answered within a second every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_do_not_take_the_node_down() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let running = host::start_on(
        config(dir.path(), addr.port()),
        node::system_clock(),
        listener,
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = format!("http://{addr}/health");
    let connect = |n: usize| async move {
        let mut made = Vec::with_capacity(n);
        for _ in 0..n {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(c) = s.connect(addr).await {
                made.push(c);
            }
        }
        made
    };
    // One source takes its 256 connections; the next 50 from it are over the cap and get 503
    // with Retry-After, before anything is read from them.
    let mut held = connect(256).await;
    let mut over = connect(50).await;
    let mut buf = vec![0u8; 512];
    let mut busy = 0;
    for c in over.iter_mut() {
        let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("Retry-After: 1"), "{text}");
            busy += 1;
        }
    }
    assert_eq!(
        busy, 50,
        "connections over the per-source cap were not turned away"
    );
    // The ones it took are closed when their header does not come (3 s here).
    let closed = tokio::time::timeout(Duration::from_secs(10), held[0].read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a half-open connection was kept: {closed:?}"
    );
    drop((held, over));
    let flood = tokio::spawn(async move {
        let mut held = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(c) = s.connect(addr).await {
                held.push(c);
            }
        }
        held
    });
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    while !flood.is_finished() || asked < 5 {
        let t = Instant::now();
        let r = http.get(&health).send().await.expect("/health answered");
        assert_eq!(r.status(), 200);
        slowest = slowest.max(t.elapsed());
        asked += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = flood.await.unwrap();
    assert!(
        held.len() >= 9_000,
        "only {} connections were made",
        held.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "/health took {slowest:?} under 10,000 half-open connections"
    );
    eprintln!(
        "/health: {asked} answers, the slowest in {:.1} ms, during {} half-open connections",
        slowest.as_secs_f64() * 1e3,
        held.len()
    );
    drop(held);
    running.stop().await.unwrap();
}

/// Reference data behind `[nsi] public_reads = false`: no token, 401; with one, an export and a
/// diff carry an ETag and a second ask naming it gets 304 with no body. A body larger than the
/// node's budget of bodies in flight is turned away with 503 and `Retry-After` from its
/// `Content-Length` alone, before a byte of it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_reads_are_conditional_and_bodies_are_admitted_within_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = config(dir.path(), addr.port());
    cfg.nsi = Some(node::config::NsiSection {
        public_reads: false,
        ..Default::default()
    });
    cfg.limits.max_body_bytes_in_flight = 64 * 1024;
    cfg.limits.body_timeout_secs = 2;
    let running = host::start_on(cfg, node::system_clock(), listener)
        .await
        .unwrap();
    let node = running.node.clone();
    let countries = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nsi/countries.json"),
    )
    .unwrap();
    node::reference::import(
        node.store(),
        &node.reference(),
        &countries,
        nsi::format::Format::Json,
        None,
        false,
        1,
    )
    .await
    .unwrap();
    node.reload_reference().await.unwrap();
    let token = node
        .issue_token("EAEU://KZ/CA/conformity-body", "t")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>, etag: Option<&str>| {
        let mut r = http.get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        async move {
            let r = r.send().await.unwrap();
            let etag = r
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), etag, r.bytes().await.unwrap().len())
        }
    };
    for path in [
        "/v1/nsi",
        "/v1/nsi/P.CLS.019/versions/1?format=csv",
        "/v1/nsi/P.CLS.019/diff?from=1&to=1",
    ] {
        assert_eq!(get(path, None, None).await.0, 401, "{path} without a token");
    }
    for path in [
        "/v1/nsi/P.CLS.019/versions/1?format=csv",
        "/v1/nsi/P.CLS.019/diff?from=1&to=1",
    ] {
        let (status, etag, len) = get(path, Some(&token), None).await;
        let etag = etag.unwrap_or_else(|| panic!("{path} has no ETag"));
        assert!(status == 200 && len > 0, "{path}: {status}, {len} bytes");
        // Again, from the node's cache, byte for byte as long.
        assert_eq!(
            get(path, Some(&token), None).await,
            (200, Some(etag.clone()), len)
        );
        assert_eq!(
            get(path, Some(&token), Some(&etag)).await,
            (304, Some(etag.clone()), 0),
            "{path} with If-None-Match"
        );
    }
    // The CSV and JSON exports of one version are different answers.
    let (_, csv, _) = get(
        "/v1/nsi/P.CLS.019/versions/1?format=csv",
        Some(&token),
        None,
    )
    .await;
    let (_, json, _) = get("/v1/nsi/P.CLS.019/versions/1", Some(&token), None).await;
    assert_ne!(csv, json);

    // A SOAP request stating 60 KiB whose body never comes holds 60 KiB of the 64 KiB
    // budget; the next stating 10 KiB is refused on its header alone.
    let head = |kib: usize| {
        format!(
            "POST /v1/soap HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n",
            kib * 1024
        )
    };
    let send = |text: String| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut c, text.as_bytes())
            .await
            .unwrap();
        c
    };
    let mut holding = send(head(60)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = send(head(10)).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("answered before the body was sent")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(
        text.starts_with("http/1.1 503") && text.contains("retry-after: 1"),
        "{text}"
    );
    // The trickling one is answered 408 when its 2 s are up, and its share comes back.
    let n = tokio::time::timeout(Duration::from_secs(10), holding.read(&mut buf))
        .await
        .expect("the held request was ended")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    drop(holding);
    let mut c = send(head(10) + "x").await;
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "admitted again: {text}");
    running.stop().await.unwrap();
}

/// The adapter API over TLS, asked by curl (a client nobody here wrote): a client certificate
/// from the configured CA naming a participant stands in for a token; one naming nobody here,
/// one made for signing rather than for a TLS client, or none and no token, get nothing; a
/// token still works; a server certificate the client does not trust stops curl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_api_over_tls_takes_a_client_certificate_for_a_token() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "KZ information systems CA (test)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf = |name: &str, sans: Vec<SanType>, eku: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.subject_alt_names = sans;
        p.extended_key_usages = eku;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &issuer).unwrap();
        (
            write(&format!("{name}.crt"), cert.pem()),
            write(&format!("{name}.key"), key.serialize_pem()),
        )
    };
    let uri = |u: &str| SanType::URI(u.try_into().unwrap());
    let server = leaf(
        "server",
        vec![SanType::DnsName("localhost".try_into().unwrap())],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    );
    let is = leaf(
        "is",
        vec![uri("EAEU://KZ/CA/conformity-body")],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let stranger = leaf(
        "stranger",
        vec![uri("EAEU://KZ/CA/somebody-else")],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let signing = leaf("signing", vec![uri("EAEU://KZ/CA/conformity-body")], vec![]);
    let ca_file = write("ca.crt", ca_cert.pem());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = config(&dir.path().join("node"), port);
    cfg.tls = Some(node::config::ApiTlsSection {
        cert: server.0.clone(),
        key: server.1.clone(),
        client_ca: Some(ca_file.clone()),
    });
    let running = host::start_on(cfg, node::system_clock(), listener)
        .await
        .unwrap();
    let token = running
        .node
        .issue_token("EAEU://KZ/CA/conformity-body", "t")
        .await
        .unwrap();
    let url = format!("https://localhost:{port}/v1/inbox?wait=0");
    let curl = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = std::process::Command::new("curl")
                    .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                    .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                    .args(&args)
                    .arg(&url)
                    .output()
                    .expect("curl runs");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .await
            .unwrap()
        }
    };
    let path = |p: &std::path::PathBuf| p.display().to_string();
    let trusting = |mut extra: Vec<String>| {
        let mut a = vec!["--cacert".to_owned(), path(&ca_file)];
        a.append(&mut extra);
        a
    };
    let with = |c: &(std::path::PathBuf, std::path::PathBuf)| {
        trusting(vec![
            "--cert".into(),
            path(&c.0),
            "--key".into(),
            path(&c.1),
        ])
    };
    let cases = [
        ("client certificate of a participant", with(&is), "200"),
        ("client certificate of nobody here", with(&stranger), "401"),
        ("no certificate, no token", trusting(vec![]), "401"),
        (
            "a token, no certificate",
            trusting(vec!["-H".into(), format!("Authorization: Bearer {token}")]),
            "200",
        ),
        // Refused in the handshake: no HTTP status at all.
        ("a signing certificate as TLS client", with(&signing), "000"),
        ("a server the client does not trust", vec![], "000"),
    ];
    for (what, args, expect) in cases {
        assert_eq!(curl(args).await, expect, "{what}");
    }
    running.stop().await.unwrap();
}

/// Large documents to the trusted third party from sixteen clients at once, with one heavy
/// worker and one waiting place: each is either judged (200, a signed receipt saying the
/// document is unsigned) or turned away at once with 503 and `Retry-After`; none waits
/// without bound or fails otherwise, and the node answers `/health` throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_requests_beyond_the_pool_are_turned_away_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let space = host::trustspace::build(
        &dir.path().join("trust"),
        &["KZ", "BY"],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = config(&dir.path().join("node"), addr.port());
    cfg.ttp = Some(space.ttp.clone());
    cfg.limits.heavy_workers = 1;
    cfg.limits.heavy_queue = 1;
    let running = host::start_on(cfg, node::system_clock(), listener)
        .await
        .unwrap();
    let token = running
        .node
        .issue_token("EAEU://KZ/CA/conformity-body", "t")
        .await
        .unwrap();
    let doc = format!("<a xmlns=\"urn:x\">{}</a>", "<b/>".repeat(500_000));
    let http = reqwest::Client::new();
    let mut asks = Vec::new();
    for _ in 0..16 {
        let r = http
            .post(format!("http://{addr}/v1/ttp/receipts"))
            .bearer_auth(&token)
            .body(doc.clone())
            .send();
        asks.push(tokio::spawn(async move {
            let r = r.await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            (status, retry, body)
        }));
    }
    let health = http
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (mut judged, mut busy) = (0, 0);
    for a in asks {
        match a.await.unwrap() {
            (200, _, body) => {
                assert!(body.contains("Receipt"), "{body}");
                judged += 1;
            }
            (503, true, body) => {
                assert!(body.contains("busy"), "{body}");
                busy += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(judged >= 1 && busy >= 1, "{judged} judged, {busy} busy");
    running.stop().await.unwrap();
}
