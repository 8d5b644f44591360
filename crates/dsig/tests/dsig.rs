//! Enveloped XMLDSig on a P.TS.01 document: signed and verified here with RSA, ECDSA P-256 and
//! Ed25519; every tampering refused with its own reason; and xmlsec1 (libxmlsec1, written by
//! nobody here) verifies what we sign and signs what we verify.

use std::path::{Path, PathBuf};
use std::process::Command;

use dsig::{DsigError, KeySigner, Verifiers, sign_enveloped, verify_enveloped};

fn sample() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/P.TS.01/samples/MSG.001.xml");
    std::fs::read_to_string(p).unwrap()
}

/// A test key and self-signed certificate: `(pkcs8 der, cert der, key pem path, cert pem path)`.
struct TestKey {
    pkcs8: Vec<u8>,
    cert: Vec<u8>,
    key_pem: PathBuf,
    cert_pem: PathBuf,
}

fn rcgen_key(dir: &Path, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestKey {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params = rcgen::CertificateParams::new(vec![format!("{name}.test")]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key_pem = dir.join(format!("{name}-test-key.pem"));
    let cert_pem = dir.join(format!("{name}-test-cert.pem"));
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    TestKey {
        pkcs8: key.serialize_der(),
        cert: cert.der().to_vec(),
        key_pem,
        cert_pem,
    }
}

/// RSA keys come from the openssl command line (rcgen does not generate RSA here).
fn rsa_key(dir: &Path) -> Option<TestKey> {
    let key_pem = dir.join("rsa-test-key.pem");
    let cert_pem = dir.join("rsa-test-cert.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=rsa.test",
        ])
        .arg("-keyout")
        .arg(&key_pem)
        .arg("-out")
        .arg(&cert_pem)
        .output()
        .ok()?
        .status
        .success();
    assert!(ok, "openssl req failed");
    let der = |args: &[&str], input: &Path| {
        let o = Command::new("openssl")
            .args(args)
            .arg("-in")
            .arg(input)
            .arg("-outform")
            .arg("DER")
            .output()
            .unwrap();
        assert!(o.status.success());
        o.stdout
    };
    Some(TestKey {
        pkcs8: der(&["pkcs8", "-topk8", "-nocrypt"], &key_pem),
        cert: der(&["x509"], &cert_pem),
        key_pem,
        cert_pem,
    })
}

fn keys(dir: &Path) -> Vec<(&'static str, TestKey)> {
    let mut v = vec![
        (
            "ecdsa",
            rcgen_key(dir, "ecdsa", &rcgen::PKCS_ECDSA_P256_SHA256),
        ),
        ("ed25519", rcgen_key(dir, "ed25519", &rcgen::PKCS_ED25519)),
    ];
    if let Some(k) = rsa_key(dir) {
        v.push(("rsa", k));
    }
    v
}

#[test]
fn signed_documents_verify_with_each_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let verifiers = Verifiers::standard();
    for (name, k) in keys(dir.path()) {
        let signer = KeySigner::from_pkcs8(&k.pkcs8, &k.cert).unwrap();
        let signed = sign_enveloped(&sample(), &signer).unwrap();
        // The document's own bytes are untouched; only the signature was added.
        assert!(
            signed.starts_with(&sample()[..sample().find("  <trcdo:DocStatusDetails>").unwrap()]),
            "{name}"
        );
        let v = verify_enveloped(&signed, &verifiers).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.certificate, k.cert, "{name}");
        let expected = match name {
            "ecdsa" => dsig::ECDSA_SHA256,
            "ed25519" => dsig::ED25519,
            _ => dsig::RSA_SHA256,
        };
        assert_eq!(v.algorithm, expected);
    }
}

/// `edit` applied to a signed document; verification must fail with `expect`.
fn check(signed: &str, edit: impl Fn(&str) -> String, expect: DsigError) {
    assert_eq!(
        verify_enveloped(&edit(signed), &Verifiers::standard()),
        Err(expect)
    );
}

#[test]
fn every_tampering_has_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let k = rcgen_key(dir.path(), "ecdsa", &rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = KeySigner::from_pkcs8(&k.pkcs8, &k.cert).unwrap();
    let signed = sign_enveloped(&sample(), &signer).unwrap();
    check(
        &signed,
        |s| s.replacen(">KZ<", ">RU<", 1),
        DsigError::DigestMismatch,
    );
    check(
        &signed,
        |s| {
            let a = s.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
            let mut b = s.to_owned();
            let c = if &b[a..a + 1] == "A" { "B" } else { "A" };
            b.replace_range(a..a + 1, c);
            b
        },
        DsigError::BadSignature,
    );
    check(
        &signed,
        |s| {
            s.replace(
                dsig::ECDSA_SHA256,
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            )
        },
        DsigError::AlgorithmNotAllowed(
            "SignatureMethod http://www.w3.org/2000/09/xmldsig#rsa-sha1".into(),
        ),
    );
    check(
        &signed,
        |s| s.replace(dsig::SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"),
        DsigError::AlgorithmNotAllowed(
            "DigestMethod http://www.w3.org/2000/09/xmldsig#sha1".into(),
        ),
    );
    check(
        &signed,
        |s| s.replace("URI=\"\"", "URI=\"#other\""),
        DsigError::Profile("the Reference must cover the whole document (URI=\"\")".into()),
    );
    check(&signed, |_| sample(), DsigError::NoSignature);
    check(
        &signed,
        |s| {
            let a = s.find("<ds:Signature ").unwrap();
            let b = s.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
            let sig = s[a..b].to_owned();
            format!("{}{sig}{}", &s[..b], &s[b..])
        },
        DsigError::SeveralSignatures(2),
    );
    // Another key's certificate in KeyInfo: the value no longer verifies.
    let other = rcgen_key(dir.path(), "other", &rcgen::PKCS_ECDSA_P256_SHA256);
    check(
        &signed,
        |s| {
            use base64::Engine as _;
            let enc = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
            s.replace(&enc(&k.cert), &enc(&other.cert))
        },
        DsigError::BadSignature,
    );
    let with_dtd = format!(
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        &signed[signed.find("?>").unwrap() + 2..]
    );
    assert!(matches!(
        verify_enveloped(&with_dtd, &Verifiers::standard()),
        Err(DsigError::Malformed(_))
    ));
    // A verifier set without ECDSA refuses the algorithm by name.
    assert!(matches!(
        verify_enveloped(&signed, &Verifiers::empty()),
        Err(DsigError::AlgorithmNotAllowed(_))
    ));
}

/// xmlsec1 (Debian `xmlsec1`), or a skip (a failure under `ORTAQ_REQUIRE_XMLSEC1=1`).
fn xmlsec1() -> bool {
    testkit::need(testkit::Judge::Xmlsec1, testkit::program("xmlsec1", &[])).is_some()
}

fn xmlsec_verify(file: &Path, cert: &Path) -> (bool, String) {
    let o = Command::new("xmlsec1")
        .args(["--verify", "--enabled-key-data", "x509", "--trusted-pem"])
        .arg(cert)
        .arg(file)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn xmlsec1_verifies_ours_and_we_verify_xmlsec1s() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // xmlsec1 1.2.37 has no EdDSA; RSA and ECDSA P-256 are checked both ways.
    for (name, k) in keys(dir.path())
        .into_iter()
        .filter(|(n, _)| *n != "ed25519")
    {
        let signer = KeySigner::from_pkcs8(&k.pkcs8, &k.cert).unwrap();
        let signed = sign_enveloped(&sample(), &signer).unwrap();
        let f = dir.path().join(format!("{name}-signed.xml"));
        std::fs::write(&f, &signed).unwrap();
        let (ok, err) = xmlsec_verify(&f, &k.cert_pem);
        assert!(ok, "{name}: xmlsec1 refused our signature: {err}");
        let tampered = dir.path().join(format!("{name}-tampered.xml"));
        std::fs::write(&tampered, signed.replacen(">KZ<", ">RU<", 1)).unwrap();
        assert!(
            !xmlsec_verify(&tampered, &k.cert_pem).0,
            "{name}: xmlsec1 took a tampered document"
        );

        // The other way: xmlsec1 fills in a signature template; we verify it.
        let alg = signer_uri(name);
        let tmpl = sample().replacen(
            "</doc:ConformityDocsRegistryDetails>",
            &format!(
                "<ds:Signature xmlns:ds=\"{ds}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{c}\"/><ds:SignatureMethod Algorithm=\"{alg}\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{env}\"/><ds:Transform Algorithm=\"{c}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{sha}\"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></doc:ConformityDocsRegistryDetails>",
                ds = dsig::DS,
                c = dsig::EXC_C14N,
                env = dsig::ENVELOPED,
                sha = dsig::SHA256
            ),
            1,
        );
        let t = dir.path().join(format!("{name}-template.xml"));
        std::fs::write(&t, tmpl).unwrap();
        let out = dir.path().join(format!("{name}-by-xmlsec1.xml"));
        let o = Command::new("xmlsec1")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", k.key_pem.display(), k.cert_pem.display()))
            .arg("--output")
            .arg(&out)
            .arg(&t)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: xmlsec1 --sign: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let theirs = std::fs::read_to_string(&out).unwrap();
        let v = verify_enveloped(&theirs, &Verifiers::standard())
            .unwrap_or_else(|e| panic!("{name}: we refused xmlsec1's signature: {e}\n{theirs}"));
        assert_eq!(v.algorithm, alg);
        assert_eq!(
            verify_enveloped(&theirs.replacen(">KZ<", ">RU<", 1), &Verifiers::standard()),
            Err(DsigError::DigestMismatch)
        );
    }
}

fn signer_uri(name: &str) -> &'static str {
    match name {
        "ecdsa" => dsig::ECDSA_SHA256,
        _ => dsig::RSA_SHA256,
    }
}

/// Python's signxml (lxml + cryptography), named by `ORTAQ_SIGNXML_PYTHON`: a Python that can
/// `import signxml` (`.ci/run` makes one). `ORTAQ_REQUIRE_SIGNXML=1` turns a skip into a failure.
fn signxml_python() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("ORTAQ_SIGNXML_PYTHON")
        .map(std::path::PathBuf::from)
        .filter(|p| {
            Command::new(p)
                .args(["-c", "import signxml"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or("ORTAQ_SIGNXML_PYTHON names no Python with signxml");
    testkit::need(testkit::Judge::Signxml, found)
}

#[test]
fn signxml_verifies_ours_and_we_verify_signxmls() {
    let Some(python) = signxml_python() else {
        return;
    };
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop/signxml_tool.py");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = Command::new(&python)
            .arg(&tool)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, k) in keys(dir.path())
        .into_iter()
        .filter(|(n, _)| *n != "ed25519")
    {
        // Ours, checked by signxml; a tampered copy refused by it.
        let signer = KeySigner::from_pkcs8(&k.pkcs8, &k.cert).unwrap();
        let signed = sign_enveloped(&sample(), &signer).unwrap();
        let ours = dir.path().join(format!("{name}-ours.xml"));
        std::fs::write(&ours, &signed).unwrap();
        let (ok, err) = run(&["verify".as_ref(), k.cert_pem.as_os_str(), ours.as_os_str()]);
        assert!(ok, "{name}: signxml refused our signature: {err}");
        let tampered = dir.path().join(format!("{name}-ours-tampered.xml"));
        std::fs::write(&tampered, signed.replacen(">KZ<", ">RU<", 1)).unwrap();
        let (ok, _) = run(&[
            "verify".as_ref(),
            k.cert_pem.as_os_str(),
            tampered.as_os_str(),
        ]);
        assert!(!ok, "{name}: signxml took a tampered document");

        // signxml's, checked by us; a tampered copy refused with the digest reason.
        let src = dir.path().join(format!("{name}-unsigned.xml"));
        std::fs::write(&src, sample()).unwrap();
        let theirs = dir.path().join(format!("{name}-by-signxml.xml"));
        let alg = if name == "ecdsa" {
            "ecdsa-sha256"
        } else {
            "rsa-sha256"
        };
        let (ok, err) = run(&[
            "sign".as_ref(),
            alg.as_ref(),
            k.key_pem.as_os_str(),
            k.cert_pem.as_os_str(),
            src.as_os_str(),
            theirs.as_os_str(),
        ]);
        assert!(ok, "{name}: signxml could not sign: {err}");
        let theirs = std::fs::read_to_string(&theirs).unwrap();
        let v = verify_enveloped(&theirs, &Verifiers::standard())
            .unwrap_or_else(|e| panic!("{name}: we refused signxml's signature: {e}\n{theirs}"));
        assert_eq!(v.algorithm, signer_uri(name));
        assert_eq!(v.certificate, k.cert);
        assert_eq!(
            verify_enveloped(&theirs.replacen(">KZ<", ">RU<", 1), &Verifiers::standard()),
            Err(DsigError::DigestMismatch)
        );
    }
}
