//! Hop signatures: made here and checked by OpenSSL, made here and checked here, and every way
//! a forged or misrouted envelope must be refused.

use std::path::Path;
use std::process::Command;

use envelope::Segment;
use time::{Duration, OffsetDateTime};
use transport::hop::{HopAlgorithm, HopError, HopSignature, HopSigner, HopVerifier};
use trust::pki::{self, NodeFiles, SigningKeyKind};

fn seg(s: &str) -> Segment {
    Segment::parse(s).unwrap()
}

const ENVELOPE: &[u8] = b"<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\">\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82</soap:Envelope>";

/// KZ with an Ed25519 signing key, RU with ECDSA P-256, both under one root.
fn federation() -> (tempfile::TempDir, NodeFiles, NodeFiles) {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    pki::init(dir.path(), &[seg("EEC")], now).unwrap();
    let kz = pki::issue(dir.path(), seg("KZ"), now).unwrap();
    let ru = pki::issue_with(dir.path(), seg("RU"), now, SigningKeyKind::EcdsaP256).unwrap();
    (dir, kz, ru)
}

fn signer(f: &NodeFiles) -> HopSigner {
    HopSigner::from_files(&f.signing_key, &f.signing_cert).unwrap()
}

/// Verifies with OpenSSL the signature `sig` over ENVELOPE made with the key in `cert`.
fn openssl_verifies(dir: &Path, cert: &Path, sig: &HopSignature) -> bool {
    let (data, sigf, pubf) = (
        dir.join("data.bin"),
        dir.join("sig.bin"),
        dir.join("pub.pem"),
    );
    std::fs::write(&data, ENVELOPE).unwrap();
    std::fs::write(&sigf, &sig.value).unwrap();
    let pubkey = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    std::fs::write(&pubf, pubkey.stdout).unwrap();
    let mut cmd = Command::new("openssl");
    match sig.algorithm {
        HopAlgorithm::Ed25519 => cmd
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&pubf)
            .arg("-in")
            .arg(&data)
            .arg("-sigfile")
            .arg(&sigf),
        HopAlgorithm::EcdsaP256Sha256 => cmd
            .args(["dgst", "-sha256", "-verify"])
            .arg(&pubf)
            .arg("-signature")
            .arg(&sigf)
            .arg(&data),
    };
    let out = cmd.output().unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verif")
}

#[test]
fn signatures_verify_here_and_with_openssl_for_both_algorithms() {
    let (dir, kz, ru) = federation();
    let v = HopVerifier::from_root_file(&pki::root_cert_path(dir.path())).unwrap();
    let now = OffsetDateTime::now_utc();
    for (f, alg) in [
        (&kz, HopAlgorithm::Ed25519),
        (&ru, HopAlgorithm::EcdsaP256Sha256),
    ] {
        let sig = signer(f).sign(ENVELOPE).unwrap();
        assert_eq!(sig.algorithm, alg);
        // Through the headers, as on the wire.
        let (h_sig, h_cert) = sig.to_headers();
        assert!(h_sig.starts_with(&format!("alg={}; sig=", alg.name())));
        let back = HopSignature::from_headers(Some(&h_sig), Some(&h_cert)).unwrap();
        assert_eq!(back, sig);
        v.verify(ENVELOPE, &back, f.segment, now).unwrap();
        assert!(
            openssl_verifies(dir.path(), &f.signing_cert, &sig),
            "OpenSSL refused the {} signature",
            alg.name()
        );
    }
}

/// What a receiver must say to each forgery.
#[test]
fn forged_misrouted_or_stale_envelopes_are_refused() {
    let (dir, kz, ru) = federation();
    let v = HopVerifier::from_root_file(&pki::root_cert_path(dir.path())).unwrap();
    let now = OffsetDateTime::now_utc();
    let good = signer(&kz).sign(ENVELOPE).unwrap();

    let mut tampered = ENVELOPE.to_vec();
    tampered[40] ^= 1;
    assert_eq!(
        v.verify(&tampered, &good, seg("KZ"), now),
        Err(HopError::BadSignature)
    );
    assert_eq!(
        v.verify(ENVELOPE, &good, seg("RU"), now),
        Err(HopError::WrongSegment {
            certificate: seg("KZ"),
            peer: seg("RU")
        })
    );
    assert_eq!(
        v.verify(ENVELOPE, &good, seg("KZ"), now + Duration::days(800)),
        Err(HopError::Expired)
    );

    // The algorithm named must be the certificate's: an ECDSA label on an Ed25519 key is refused.
    let relabelled = HopSignature {
        algorithm: HopAlgorithm::EcdsaP256Sha256,
        ..good.clone()
    };
    assert!(matches!(
        v.verify(ENVELOPE, &relabelled, seg("KZ"), now),
        Err(HopError::AlgorithmMismatch { .. })
    ));

    // RU's certificate with KZ's signature: the key does not match.
    let swapped = HopSignature {
        certificate: signer(&ru).sign(b"x").unwrap().certificate,
        algorithm: HopAlgorithm::EcdsaP256Sha256,
        ..good.clone()
    };
    assert_eq!(
        v.verify(ENVELOPE, &swapped, seg("RU"), now),
        Err(HopError::BadSignature)
    );

    // A node of another federation signing as KZ.
    let other = tempfile::tempdir().unwrap();
    let foreign = pki::init(other.path(), &[seg("KZ")], now).unwrap();
    let forged = signer(&foreign[0]).sign(ENVELOPE).unwrap();
    assert_eq!(
        v.verify(ENVELOPE, &forged, seg("KZ"), now),
        Err(HopError::UnknownIssuer)
    );

    // Headers: missing, unknown algorithm, garbage.
    assert_eq!(
        HopSignature::from_headers(None, Some("AA==")),
        Err(HopError::Missing)
    );
    assert!(matches!(
        HopSignature::from_headers(Some("alg=rsa-md5; sig=AA=="), Some("AA==")),
        Err(HopError::AlgorithmNotAllowed(_))
    ));
    assert!(matches!(
        HopSignature::from_headers(Some("alg=ed25519; sig=@@@"), Some("AA==")),
        Err(HopError::Malformed(_))
    ));
    let garbage = HopSignature {
        certificate: b"not a certificate".to_vec(),
        ..good
    };
    assert!(matches!(
        v.verify(ENVELOPE, &garbage, seg("KZ"), now),
        Err(HopError::BadCertificate(_))
    ));
}

proptest::proptest! {
    /// Headers and certificates are outside bytes: any of them gets an answer, never a panic,
    /// and a signature parsed from what we wrote reads back the same.
    #[test]
    fn any_header_or_certificate_gets_an_answer(sig in ".{0,200}", cert in ".{0,200}", der in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = HopSignature::from_headers(Some(&sig), Some(&cert));
        let dir = shared_pki();
        let v = HopVerifier::from_root_file(&pki::root_cert_path(dir)).unwrap();
        let s = HopSignature { algorithm: HopAlgorithm::Ed25519, value: der.clone(), certificate: der };
        proptest::prop_assert!(v.verify(b"x", &s, seg("KZ"), OffsetDateTime::now_utc()).is_err());
        let (h, c) = s.to_headers();
        proptest::prop_assert_eq!(HopSignature::from_headers(Some(&h), Some(&c)), Ok(s));
    }
}

/// One federation root for the property test (made once: key generation is not what it tests).
fn shared_pki() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        pki::init(d.path(), &[seg("KZ")], OffsetDateTime::now_utc()).unwrap();
        d
    })
    .path()
}

/// Key roles and revocation: a hop signature made with a node's TLS key (its TLS certificate
/// attached) is refused as the wrong role; a signing certificate the trust list revokes is
/// refused from the moment the set holds it, by the same verifier.
#[test]
fn a_tls_key_cannot_sign_hops_and_a_revoked_signer_is_refused() {
    let (dir, kz, ru) = federation();
    let revoked = std::sync::Arc::new(transport::Revoked::default());
    let v = HopVerifier::from_root_file(&pki::root_cert_path(dir.path()))
        .unwrap()
        .revoking(revoked.clone());
    let now = OffsetDateTime::now_utc();
    let with_tls_key = HopSigner::from_files(&ru.tls_key, &ru.tls_cert)
        .unwrap()
        .sign(ENVELOPE)
        .unwrap();
    assert!(
        matches!(
            v.verify(ENVELOPE, &with_tls_key, seg("RU"), now),
            Err(HopError::WrongRole(_))
        ),
        "a TLS certificate signed a hop"
    );
    let good = signer(&kz).sign(ENVELOPE).unwrap();
    v.verify(ENVELOPE, &good, seg("KZ"), now).unwrap();
    revoked.replace([transport::Revoked::digest(&good.certificate)]);
    assert_eq!(
        v.verify(ENVELOPE, &good, seg("KZ"), now),
        Err(HopError::Revoked)
    );
    // RU's signer is untouched.
    v.verify(
        ENVELOPE,
        &signer(&ru).sign(ENVELOPE).unwrap(),
        seg("RU"),
        now,
    )
    .unwrap();
}
