//! The trusted third party as a member state's authority meets it: a document signed under
//! Kazakhstan's CA is valid as of a moment, and each way it can fail gets its own reason
//! (unknown CA, not yet valid, expired, revoked as of that moment, changed document, algorithm
//! the state does not use). The trust list is refused when tampered, signed by someone else
//! or expired. The TTP's receipt is signed, and xmlsec1 verifies it.

use std::path::Path;

use dsig::{KeySigner, Verifiers};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use ttp::{Reason, StateEntry, TrustList, TrustListError};

fn sample() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/P.TS.01/samples/MSG.001.xml");
    std::fs::read_to_string(p).unwrap()
}

const T0: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

/// A state's test CA: its key, its parameters (for issuing) and its certificate.
struct Ca {
    key: KeyPair,
    params: CertificateParams,
    der: Vec<u8>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{name} test CA"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = T0 - Duration::days(365);
    p.not_after = T0 + Duration::days(3650);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Ca {
        key,
        params: p,
        der,
    }
}

/// A signer whose certificate `ca` issued, valid from `from` for `days`, with `serial`.
fn signer(
    ca: &Ca,
    alg: &'static rcgen::SignatureAlgorithm,
    from: OffsetDateTime,
    days: i64,
    serial: u64,
) -> (KeySigner, Vec<u8>) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("signer {serial}"));
    p.distinguished_name = dn;
    p.not_before = from;
    p.not_after = from + Duration::days(days);
    p.serial_number = Some(SerialNumber::from(serial));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = p.signed_by(&key, &issuer).unwrap().der().to_vec();
    (
        KeySigner::from_pkcs8(&key.serialize_der(), &cert).unwrap(),
        cert,
    )
}

fn crl(ca: &Ca, revoked: &[(u64, OffsetDateTime)]) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: T0,
        next_update: T0 + Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(s, at)| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: *at,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    params.signed_by(&issuer).unwrap().der().to_vec()
}

struct World {
    kz: Ca,
    list: TrustList,
}

fn world() -> World {
    let kz = ca("KZ");
    let ru = ca("RU");
    let list = TrustList {
        version: 7,
        issued: T0,
        next_update: T0 + Duration::days(90),
        ttps: Vec::new(),
        revoked_nodes: Vec::new(),
        providers: vec![ttp::IdentityProvider {
            segment: "KZ".into(),
            issuer: "https://portal.example.kz".into(),
        }],
        states: vec![
            StateEntry {
                segment: "KZ".into(),
                cas: vec![kz.der.clone()],
                algorithms: vec![dsig::ECDSA_SHA256.into(), dsig::ED25519.into()],
                crls: vec![crl(&kz, &[(66, T0 + Duration::days(10))])],
            },
            StateEntry {
                segment: "RU".into(),
                cas: vec![ru.der.clone()],
                algorithms: vec![dsig::RSA_SHA256.into()],
                crls: vec![],
            },
        ],
    };
    World { kz, list }
}

/// Signs the sample with `s` and checks it as of `moment`: the reasons' codes.
fn check(w: &World, doc: &str, moment: OffsetDateTime, expect: &[&str]) -> ttp::Receipt {
    let r = ttp::check(
        doc,
        moment,
        moment + Duration::seconds(1),
        &w.list,
        &Verifiers::standard(),
    );
    let codes: Vec<&str> = r.signatures[0].reasons.iter().map(Reason::code).collect();
    assert_eq!(codes, expect, "{:?}", r.signatures[0]);
    assert_eq!(r.valid(), expect.is_empty());
    r
}

fn signed(s: &KeySigner) -> String {
    dsig::sign_enveloped(&sample(), s).unwrap()
}

#[test]
fn a_signature_is_judged_as_of_the_moment_with_a_reason_for_each_failure() {
    let w = world();
    let moment = T0 + Duration::days(5);
    let (good, _) = signer(&w.kz, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 10);
    let r = check(&w, &signed(&good), moment, &[]);
    let s = &r.signatures[0];
    assert_eq!(
        (s.state.as_deref(), s.algorithm.as_deref()),
        (Some("KZ"), Some(dsig::ECDSA_SHA256))
    );
    assert_eq!(s.signer.as_deref(), Some("CN=signer 10"));
    assert_eq!(r.trust_list_version, 7);

    check(
        &w,
        &signed(&good).replacen(">KZ<", ">RU<", 1),
        moment,
        &["digest-mismatch"],
    );
    check(&w, &sample(), moment, &["no-signature"]);
    // Before its validity and after it.
    check(
        &w,
        &signed(&good),
        T0 - Duration::days(1),
        &["not-yet-valid"],
    );
    check(&w, &signed(&good), T0 + Duration::days(400), &["expired"]);
    // Serial 66 was revoked on day 10: valid on day 5, revoked on day 11.
    let (revoked, _) = signer(&w.kz, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 66);
    check(&w, &signed(&revoked), T0 + Duration::days(5), &[]);
    let r = check(&w, &signed(&revoked), T0 + Duration::days(11), &["revoked"]);
    assert!(
        r.signatures[0].reasons[0].text().contains("2026-11-11"),
        "{}",
        r.signatures[0].reasons[0].text()
    );
    // A CA nobody put in the trust list.
    let stranger = ca("XX");
    let (s, _) = signer(&stranger, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 11);
    check(&w, &signed(&s), moment, &["unknown-ca"]);
    // A self-made certificate with the KZ CA's name: the CA's signature on it does not verify.
    let impostor = Ca {
        key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        params: w.kz.params.clone(),
        der: vec![],
    };
    let (s, _) = signer(&impostor, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 12);
    check(&w, &signed(&s), moment, &["unknown-ca"]);
}

#[test]
fn the_states_algorithms_are_enforced() {
    let mut w = world();
    w.list.states[0].algorithms = vec![dsig::RSA_SHA256.into()];
    let (s, _) = signer(&w.kz, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 13);
    let r = check(
        &w,
        &signed(&s),
        T0 + Duration::days(5),
        &["algorithm-not-allowed"],
    );
    assert!(
        r.signatures[0].reasons[0]
            .text()
            .contains("not among the algorithms of KZ")
    );
}

#[test]
fn the_trust_list_is_used_only_when_signed_by_the_federation_and_current() {
    let w = world();
    let (eec, eec_cert) = signer(&ca("EEC"), &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 1);
    let xml = w.list.sign(&eec).unwrap();
    let v = Verifiers::standard();
    let now = T0 + Duration::days(1);
    assert_eq!(TrustList::verify(&xml, &v, &eec_cert, now).unwrap(), w.list);
    assert!(!w.list.expires_within(now, 30));
    assert!(w.list.expires_within(T0 + Duration::days(70), 30));
    assert_eq!(
        TrustList::verify(&xml, &v, &eec_cert, T0 + Duration::days(90)),
        Err(TrustListError::Expired("2027-01-30T00:00:00Z".into()))
    );
    assert_eq!(
        TrustList::verify(
            &xml.replacen("segment=\"RU\"", "segment=\"XX\"", 1),
            &v,
            &eec_cert,
            now
        ),
        Err(TrustListError::Signature(dsig::DsigError::DigestMismatch))
    );
    let (other, _) = signer(&ca("EEC"), &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 2);
    assert_eq!(
        TrustList::verify(&w.list.sign(&other).unwrap(), &v, &eec_cert, now),
        Err(TrustListError::WrongSigner)
    );
}

#[test]
fn the_receipt_is_signed_and_xmlsec1_verifies_it() {
    let w = world();
    let (good, _) = signer(&w.kz, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 10);
    let receipt = ttp::check(
        &signed(&good),
        T0 + Duration::days(5),
        T0 + Duration::days(5),
        &w.list,
        &Verifiers::standard(),
    );
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = CertificateParams::new(vec!["ttp.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let ttp_signer = KeySigner::from_pkcs8(&key.serialize_der(), cert.der()).unwrap();
    let xml = receipt.sign(&ttp_signer).unwrap();
    assert!(xml.contains("<rc:Verdict>valid</rc:Verdict>"));
    assert!(xml.contains("<rc:TrustListVersion>7</rc:TrustListVersion>"));
    dsig::verify_enveloped(&xml, &Verifiers::standard()).unwrap();
    if testkit::need(testkit::Judge::Xmlsec1, testkit::program("xmlsec1", &[])).is_none() {
        return;
    }
    let f = dir.path().join("receipt.xml");
    let pem = dir.path().join("ttp-test-cert.pem");
    std::fs::write(&f, &xml).unwrap();
    std::fs::write(&pem, cert.pem()).unwrap();
    let o = std::process::Command::new("xmlsec1")
        .args(["--verify", "--enabled-key-data", "x509", "--trusted-pem"])
        .arg(&pem)
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A receipt that travelled with a document counts only when a trusted third party of the
/// list signed it and it is about that very document; the list carries those parties through
/// its signing and reading.
#[test]
fn a_carried_receipt_counts_only_from_a_listed_ttp_about_that_document() {
    let mut w = world();
    let (good, _) = signer(&w.kz, &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 10);
    let doc = signed(&good);
    let at = T0 + Duration::days(5);
    let make_ttp = || {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = CertificateParams::new(vec!["ttp.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            KeySigner::from_pkcs8(&key.serialize_der(), cert.der()).unwrap(),
            cert.der().to_vec(),
        )
    };
    let (listed, listed_cert) = make_ttp();
    let (stranger, _) = make_ttp();
    w.list.ttps = vec![listed_cert];
    // The parties survive signing and reading the list.
    let (eec, eec_cert) = signer(&ca("EEC"), &rcgen::PKCS_ECDSA_P256_SHA256, T0, 365, 1);
    let read = TrustList::verify(
        &w.list.sign(&eec).unwrap(),
        &Verifiers::standard(),
        &eec_cert,
        at,
    )
    .unwrap();
    assert_eq!(read.ttps, w.list.ttps);
    let receipt = ttp::check(&doc, at, at, &w.list, &Verifiers::standard());
    let v = Verifiers::standard();
    let by_listed = receipt.sign(&listed).unwrap();
    assert_eq!(
        ttp::verify_receipt(&by_listed, &doc, &read, &v),
        Ok("valid".to_owned())
    );
    assert_eq!(
        ttp::verify_receipt(&receipt.sign(&stranger).unwrap(), &doc, &read, &v),
        Err(ttp::ReceiptError::UnknownTtp)
    );
    let other = doc.replacen("ЕАЭС", "ЕАЭС ", 1);
    assert_eq!(
        ttp::verify_receipt(&by_listed, &other, &read, &v),
        Err(ttp::ReceiptError::OtherDocument)
    );
    let tampered = by_listed.replacen(">valid<", ">VALID<", 1);
    assert!(matches!(
        ttp::verify_receipt(&tampered, &doc, &read, &v),
        Err(ttp::ReceiptError::Signature(_))
    ));
}
