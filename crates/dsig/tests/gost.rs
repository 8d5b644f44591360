//! GOST R 34.10-2012 (256 and 512 bit, Streebog) through OpenSSL's gost engine, checked against
//! the `openssl` command with the same engine both ways, and inside XMLDSig. Runs with
//! `--features gost`; without the engine it skips, unless `ORTAQ_REQUIRE_GOST=1` (CI).
#![cfg(feature = "gost")]

use std::path::Path;
use std::process::Command;

use dsig::gost::{GOST2012_256, GOST2012_512, GostSigner};
use dsig::{DsigError, Signer, Verifiers, sign_enveloped, verify_enveloped};

fn engine() -> bool {
    testkit::need(testkit::Judge::Gost, dsig::gost::load_engine()).is_some()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl").args(args).output().unwrap();
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

/// A key and a self-signed certificate made by the openssl command (test keys, per run).
struct Key {
    key: std::path::PathBuf,
    cert_pem: std::path::PathBuf,
    public: std::path::PathBuf,
    cert_der: Vec<u8>,
    md: &'static str,
    uri: &'static str,
}

fn key(dir: &Path, bits: u32) -> Key {
    let (alg, param, md, uri) = match bits {
        256 => ("gost2012_256", "paramset:A", "-md_gost12_256", GOST2012_256),
        _ => ("gost2012_512", "paramset:A", "-md_gost12_512", GOST2012_512),
    };
    let k = dir.join(format!("gost{bits}-test-key.pem"));
    let c = dir.join(format!("gost{bits}-test-cert.pem"));
    let p = dir.join(format!("gost{bits}-test-pub.pem"));
    let (ok, out) = openssl(&[
        "genpkey",
        "-engine",
        "gost",
        "-algorithm",
        alg,
        "-pkeyopt",
        param,
        "-out",
        s(&k),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-engine",
        "gost",
        "-key",
        s(&k),
        md,
        "-subj",
        &format!("/CN=GOST {bits} test signer"),
        "-days",
        "30",
        "-out",
        s(&c),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&[
        "pkey",
        "-engine",
        "gost",
        "-in",
        s(&k),
        "-pubout",
        "-out",
        s(&p),
    ]);
    assert!(ok, "{out}");
    let der = dir.join(format!("gost{bits}.der"));
    let (ok, out) = openssl(&["x509", "-in", s(&c), "-outform", "DER", "-out", s(&der)]);
    assert!(ok, "{out}");
    Key {
        key: k,
        cert_pem: c,
        public: p,
        cert_der: std::fs::read(der).unwrap(),
        md,
        uri,
    }
}

#[test]
fn openssl_verifies_our_gost_signatures_and_we_verify_its() {
    if !engine() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        &data,
        "Сведения о документе, подписанные по ГОСТ Р 34.10-2012",
    )
    .unwrap();
    let mut verifiers = Verifiers::empty();
    dsig::gost::add_verifiers(&mut verifiers).unwrap();
    for bits in [256, 512] {
        let k = key(dir.path(), bits);
        let signer = GostSigner::from_pem(&std::fs::read(&k.key).unwrap(), &k.cert_der).unwrap();
        assert_eq!(signer.algorithm(), k.uri);

        // Ours, verified by `openssl dgst -engine gost`; a changed byte refused by it.
        let sig = signer.sign(&std::fs::read(&data).unwrap()).unwrap();
        let sig_file = dir.path().join(format!("ours-{bits}.sig"));
        std::fs::write(&sig_file, &sig).unwrap();
        let verify = |file: &Path| {
            openssl(&[
                "dgst",
                "-engine",
                "gost",
                k.md,
                "-verify",
                s(&k.public),
                "-signature",
                s(&sig_file),
                s(file),
            ])
        };
        let (ok, out) = verify(&data);
        assert!(ok && out.contains("Verified OK"), "{bits}: {out}");
        let other = dir.path().join("other");
        std::fs::write(&other, "другие сведения").unwrap();
        assert!(
            !verify(&other).0,
            "{bits}: openssl accepted a signature over other data"
        );

        // openssl's, verified by us; over other bytes refused.
        let theirs = dir.path().join(format!("theirs-{bits}.sig"));
        let (ok, out) = openssl(&[
            "dgst",
            "-engine",
            "gost",
            k.md,
            "-sign",
            s(&k.key),
            "-out",
            s(&theirs),
            s(&data),
        ]);
        assert!(ok, "{out}");
        let their_sig = std::fs::read(&theirs).unwrap();
        let spki = spki_of(&k.cert_der);
        let v = verifier(&verifiers, k.uri);
        v.verify(&spki, &std::fs::read(&data).unwrap(), &their_sig)
            .unwrap_or_else(|e| panic!("{bits}: we refused openssl's GOST signature: {e}"));
        assert_eq!(
            v.verify(&spki, b"other", &their_sig),
            Err(DsigError::BadSignature)
        );
        let _ = &k.cert_pem;
    }
}

#[test]
fn gost_in_xmldsig_round_trips_and_tampering_fails() {
    if !engine() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut verifiers = Verifiers::standard();
    dsig::gost::add_verifiers(&mut verifiers).unwrap();
    let doc = "<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:DocId>ЕАЭС RU С-RU.АБ12.В.00001</tr:DocId><tr:Country>RU</tr:Country></tr:ConformityDocDetails>";
    for bits in [256, 512] {
        let k = key(dir.path(), bits);
        let signer = GostSigner::from_pem(&std::fs::read(&k.key).unwrap(), &k.cert_der).unwrap();
        let signed = sign_enveloped(doc, &signer).unwrap();
        let v = verify_enveloped(&signed, &verifiers).unwrap();
        assert_eq!(v.algorithm, k.uri);
        assert_eq!(v.certificate, k.cert_der);
        assert_eq!(
            verify_enveloped(&signed.replacen(">RU<", ">KZ<", 1), &verifiers),
            Err(DsigError::DigestMismatch)
        );
        // A verifier set without GOST names the algorithm it does not allow.
        assert!(matches!(
            verify_enveloped(&signed, &Verifiers::standard()),
            Err(DsigError::AlgorithmNotAllowed(_))
        ));
    }
}

fn spki_of(cert: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer as _;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(cert).unwrap();
    c.public_key().raw.to_vec()
}

fn verifier<'a>(v: &'a Verifiers, uri: &str) -> &'a dyn dsig::SignatureVerifier {
    v.get(uri).expect("a GOST verifier")
}
