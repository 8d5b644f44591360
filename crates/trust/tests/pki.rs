//! The federation PKI, checked by an implementation nobody here wrote: OpenSSL verifies every
//! issued certificate against the federation root and refuses one from another root; the
//! segment is read back from the certificate; keys are private; nothing is ever overwritten.

use std::path::Path;
use std::process::Command;

use envelope::Segment;
use time::OffsetDateTime;
use trust::pki::{self, NodeFiles, PkiError};

fn segments() -> Vec<Segment> {
    ["EEC", "AM", "BY", "KZ", "KG", "RU"]
        .iter()
        .map(|s| Segment::parse(s).unwrap())
        .collect()
}

/// `openssl verify -CAfile <root> <cert>`: (success, output).
fn openssl_verify(root: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(root)
        .arg(cert)
        .output()
        .expect("openssl is on the machine image");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_node_certificate_verifies_with_openssl_and_names_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &segments(), OffsetDateTime::now_utc()).unwrap();
    assert_eq!(files.len(), 6);
    let root = pki::root_cert_path(dir.path());
    for f in &files {
        for cert in [&f.tls_cert, &f.signing_cert] {
            let (ok, out) = openssl_verify(&root, cert);
            assert!(ok, "{}: {out}", cert.display());
            let der = pki::pem_to_der(&std::fs::read_to_string(cert).unwrap()).unwrap();
            assert_eq!(pki::segment_of(&der).unwrap(), f.segment);
        }
        for key in [&f.tls_key, &f.signing_key] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        assert_eq!(mode(f.tls_key.parent().unwrap()), 0o700);
    }
    assert_eq!(mode(&dir.path().join("federation-root.key")), 0o600);

    // The TLS certificate is for both ends of mutual TLS; the signing key is Ed25519.
    let kz = NodeFiles::in_dir(dir.path(), Segment::parse("KZ").unwrap());
    let text = |p: &Path| {
        String::from_utf8(
            Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(p)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let tls = text(&kz.tls_cert);
    assert!(
        tls.contains("TLS Web Server Authentication")
            && tls.contains("TLS Web Client Authentication"),
        "{tls}"
    );
    assert!(tls.contains("URI:urn:eaeu:segment:KZ"), "{tls}");
    assert!(text(&kz.signing_cert).contains("ED25519"));
}

#[test]
fn a_certificate_from_another_root_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let kz = vec![Segment::parse("KZ").unwrap()];
    pki::init(a.path(), &kz, OffsetDateTime::now_utc()).unwrap();
    let foreign = pki::init(b.path(), &kz, OffsetDateTime::now_utc()).unwrap();
    let (ok, out) = openssl_verify(&pki::root_cert_path(a.path()), &foreign[0].tls_cert);
    assert!(!ok, "a foreign certificate verified: {out}");
}

#[test]
fn nothing_is_ever_overwritten_and_nodes_join_later() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    pki::init(dir.path(), &segments()[..1], now).unwrap();
    let root_before = std::fs::read(dir.path().join("federation-root.key")).unwrap();
    assert!(matches!(
        pki::init(dir.path(), &segments(), now),
        Err(PkiError::Exists(_))
    ));
    assert!(matches!(
        pki::issue(dir.path(), Segment::Eec, now),
        Err(PkiError::Exists(_))
    ));
    assert_eq!(
        std::fs::read(dir.path().join("federation-root.key")).unwrap(),
        root_before
    );
    // A member state joining later gets its files from the same root.
    let am = pki::issue(dir.path(), Segment::parse("AM").unwrap(), now).unwrap();
    assert!(openssl_verify(&pki::root_cert_path(dir.path()), &am.tls_cert).0);
}

#[test]
fn a_certificate_without_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path(), &[], OffsetDateTime::now_utc()).unwrap();
    let root = pki::pem_to_der(&std::fs::read_to_string(pki::root_cert_path(dir.path())).unwrap())
        .unwrap();
    let e = pki::segment_of(&root).unwrap_err().to_string();
    assert!(e.contains("segment"), "{e}");
    assert!(pki::segment_of(b"not a certificate").is_err());
}
