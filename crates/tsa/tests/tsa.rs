//! The time-stamp authority against OpenSSL's `ts` tool both ways (its requests answered by
//! us and our tokens verified by it; its tokens verified by us), batching, and every refusal
//! a relying party can meet.

use std::path::{Path, PathBuf};
use std::process::Command;

use envelope::Segment;
use time::OffsetDateTime;
use tsa::{Authority, TsaError, batch};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    authority: Authority,
    trusted: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let now = OffsetDateTime::now_utc();
    trust::pki::init(&pki, &[], now).unwrap();
    let (cert, key) = trust::pki::issue_tsa(&pki, Segment::Eec, now).unwrap();
    let authority = Authority::from_pem(
        &std::fs::read_to_string(&key).unwrap(),
        &std::fs::read_to_string(&cert).unwrap(),
        tsa::DEFAULT_POLICY,
    )
    .unwrap();
    let root = trust::pki::root_cert_path(&pki);
    let trusted = vec![trust::pki::pem_to_der(&std::fs::read_to_string(&root).unwrap()).unwrap()];
    Fixture {
        _dir: dir,
        root,
        cert,
        key,
        authority,
        trusted,
    }
}

fn openssl(args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI (Debian package openssl)");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `openssl ts -query` for `data` (SHA-256, certificate requested, with a nonce) into `query`.
fn query_file(data: &Path, query: &Path) {
    let (ok, out) = openssl(&[
        "ts",
        "-query",
        "-data",
        s(data),
        "-sha256",
        "-cert",
        "-out",
        s(query),
    ]);
    assert!(ok, "{out}");
}

#[test]
fn openssl_request_answered_by_us_verifies_with_openssl_ts() {
    let f = fixture();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("receipt.xml");
    std::fs::write(
        &data,
        b"<Receipt>a TTP receipt to be time-stamped</Receipt>",
    )
    .unwrap();
    let (query, reply) = (work.path().join("q.tsq"), work.path().join("r.tsr"));
    query_file(&data, &query);
    let now = OffsetDateTime::now_utc();
    let resp = f.authority.respond(&std::fs::read(&query).unwrap(), now);
    std::fs::write(&reply, &resp).unwrap();

    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-data",
        s(&data),
        "-in",
        s(&reply),
        "-CAfile",
        s(&f.root),
    ]);
    assert!(
        ok && out.contains("Verification: OK"),
        "openssl ts -verify: {out}"
    );
    // The request OpenSSL made carries a nonce; openssl checks it against the query too.
    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-queryfile",
        s(&query),
        "-in",
        s(&reply),
        "-CAfile",
        s(&f.root),
    ]);
    assert!(
        ok && out.contains("Verification: OK"),
        "with the query: {out}"
    );

    // Changed data: openssl refuses, and so do we.
    std::fs::write(&data, b"<Receipt>another receipt</Receipt>").unwrap();
    let (ok, _) = openssl(&[
        "ts",
        "-verify",
        "-data",
        s(&data),
        "-in",
        s(&reply),
        "-CAfile",
        s(&f.root),
    ]);
    assert!(!ok, "openssl accepted a token over other data");
    let token = tsa::token_from_response(&resp).unwrap();
    let other = tsa::sha256(b"<Receipt>another receipt</Receipt>");
    assert_eq!(
        tsa::verify(&token, &other, None, &f.trusted),
        Err(TsaError::ImprintMismatch)
    );
}

#[test]
fn our_own_request_and_verification_round_trip() {
    let f = fixture();
    let digest = tsa::sha256(b"checkpoint 42");
    let nonce = [0x01, 0x23, 0x45, 0x67, 0x89];
    let req = tsa::request(&digest, Some(&nonce)).unwrap();
    let at = OffsetDateTime::now_utc();
    let token = tsa::token_from_response(&f.authority.respond(&req, at)).unwrap();
    let v = tsa::verify(&token, &digest, Some(&nonce), &f.trusted).unwrap();
    assert_eq!(v.time.unix_timestamp(), at.unix_timestamp());
    assert_eq!(v.policy, tsa::DEFAULT_POLICY);
    assert!(
        v.authority.contains("time-stamp authority"),
        "{}",
        v.authority
    );
    assert_eq!(
        tsa::verify(&token, &digest, Some(&[9, 9]), &f.trusted),
        Err(TsaError::NonceMismatch)
    );
}

#[test]
fn openssl_as_authority_is_verified_by_us() {
    let f = fixture();
    let work = tempfile::tempdir().unwrap();
    let conf = work.path().join("tsa.cnf");
    let serial = work.path().join("serial");
    std::fs::write(&serial, "01\n").unwrap();
    std::fs::write(
        &conf,
        format!(
            "[tsa]\ndefault_tsa = t\n[t]\nserial = {}\nsigner_cert = {}\nsigner_key = {}\n\
             signer_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
             digests = sha256\ness_cert_id_alg = sha256\n",
            s(&serial),
            s(&f.cert),
            s(&f.key),
        ),
    )
    .unwrap();
    let data = work.path().join("d");
    std::fs::write(&data, b"a record").unwrap();
    let (query, reply) = (work.path().join("q.tsq"), work.path().join("r.tsr"));
    query_file(&data, &query);
    let (ok, out) = openssl(&[
        "ts",
        "-reply",
        "-config",
        s(&conf),
        "-queryfile",
        s(&query),
        "-out",
        s(&reply),
    ]);
    assert!(ok, "openssl ts -reply: {out}");
    let token = tsa::token_from_response(&std::fs::read(&reply).unwrap()).unwrap();
    let v = tsa::verify(&token, &tsa::sha256(b"a record"), None, &f.trusted).unwrap();
    assert_eq!(v.policy, "1.2.3.4.1");
}

#[test]
fn batched_records_each_verify_and_openssl_verifies_the_root() {
    let f = fixture();
    let digests: Vec<[u8; 32]> = (0..1000u32)
        .map(|i| tsa::sha256(format!("record {i}").as_bytes()))
        .collect();
    let stamps = batch::stamp_batch(&f.authority, &digests, OffsetDateTime::now_utc()).unwrap();
    assert_eq!(stamps.len(), 1000);
    for (d, st) in digests.iter().zip(&stamps) {
        batch::verify_batched(&st.token, d, &st.proof, &f.trusted).unwrap();
    }
    // A record that was not in the batch does not verify with someone else's path.
    let stranger = tsa::sha256(b"record 1000");
    assert_eq!(
        batch::verify_batched(&stamps[7].token, &stranger, &stamps[7].proof, &f.trusted),
        Err(TsaError::ImprintMismatch)
    );
    // The token itself is an ordinary RFC 3161 token over the root.
    let root = batch::root_from(&digests[0], &stamps[0].proof);
    let work = tempfile::tempdir().unwrap();
    let tok = work.path().join("t.tst");
    std::fs::write(&tok, stamps[0].token.as_slice()).unwrap();
    let root_hex: String = root.iter().map(|b| format!("{b:02x}")).collect();
    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-digest",
        &root_hex,
        "-token_in",
        "-in",
        s(&tok),
        "-CAfile",
        s(&f.root),
    ]);
    assert!(ok && out.contains("Verification: OK"), "{out}");
}

#[test]
fn refusals_name_their_reason() {
    let f = fixture();
    let digest = tsa::sha256(b"x");
    let at = OffsetDateTime::now_utc();
    let token = f.authority.stamp(&digest, None, at).unwrap();

    // Another federation's root.
    let other = fixture();
    assert_eq!(
        tsa::verify(&token, &digest, None, &other.trusted),
        Err(TsaError::UntrustedAuthority)
    );
    // A token from before the certificate's validity.
    let early = f
        .authority
        .stamp(&digest, None, at - time::Duration::days(2))
        .unwrap();
    assert!(
        matches!(tsa::verify(&early, &digest, None, &f.trusted), Err(TsaError::Certificate(m)) if m.contains("not valid at")),
    );
    // One flipped byte anywhere: refused, never accepted, never a panic.
    for i in 0..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x01;
        assert!(
            tsa::verify(&t, &digest, None, &f.trusted).is_err(),
            "byte {i} of {} changed and the token still verified: {}",
            token.len(),
            token[i.saturating_sub(8)..(i + 8).min(token.len())]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    // A certificate that is not dedicated to time stamping cannot run an authority.
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let files = trust::pki::init(&pki, &[Segment::Eec], at).unwrap();
    let no_eku = Authority::from_pem(
        &std::fs::read_to_string(&files[0].tls_key).unwrap(),
        &std::fs::read_to_string(&files[0].tls_cert).unwrap(),
        tsa::DEFAULT_POLICY,
    );
    assert!(
        matches!(no_eku, Err(TsaError::Certificate(ref m)) if m.contains("critical") || m.contains("timeStamping")),
        "{:?}",
        no_eku.err()
    );
    // Requests we do not honour get a rejection with the reason, not a token.
    let sha1_req = {
        let work = tempfile::tempdir().unwrap();
        let d = work.path().join("d");
        std::fs::write(&d, b"x").unwrap();
        let q = work.path().join("q");
        let (ok, out) = openssl(&["ts", "-query", "-data", s(&d), "-sha1", "-out", s(&q)]);
        assert!(ok, "{out}");
        std::fs::read(q).unwrap()
    };
    match tsa::token_from_response(&f.authority.respond(&sha1_req, at)) {
        Err(TsaError::Refused { status: 2, text }) => assert!(text.contains("SHA-256"), "{text}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(matches!(
        tsa::token_from_response(&f.authority.respond(b"\x30\x03garbage", at)),
        Err(TsaError::Refused { status: 2, .. })
    ));
}
