//! A trust space made on the spot, for the demo and the tests: per member state a
//! document-signing CA and an authority's signer (test keys made at each run, never shipped),
//! one Belarusian signer revoked by a CRL, the trust list signed by the Commission's trust-list
//! key, and the EEC trusted third party's receipt key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A trust space for demonstrations and tests: per member state a document-signing CA and an authority's signer
/// (test keys made here at each run, never shipped), Belarus's second signer revoked, the trust
/// list signed by the Commission's trust-list key, and the EEC node's TTP receipt key.
pub struct TrustSpace {
    pub signers: HashMap<String, dsig::KeySigner>,
    /// Belarus's revoked signer.
    pub revoked: dsig::KeySigner,
    /// The trust list, its pinned signer, and the TTP's receipt key.
    pub ttp: node::config::TtpSection,
    /// The CA (PEM file) that issued the TTP's receipt certificate.
    pub ttp_ca: PathBuf,
    /// The list as signed into `ttp.trust_list`, and the Commission's trust-list key, for
    /// publishing later versions.
    pub list: ttp::TrustList,
    pub list_signer: dsig::KeySigner,
}

/// Builds the trust space of `segments` (alpha-2; "BY", which must be among them, also gets a
/// revoked signer) in `dir`, which must not hold one already, valid from `now`.
pub fn build(
    dir: &Path,
    segments: &[&str],
    now: time::OffsetDateTime,
) -> anyhow::Result<TrustSpace> {
    build_with(dir, segments, Vec::new(), now)
}

/// [`build`], with the identity providers of cross-border sign-in the list names.
pub fn build_with(
    dir: &Path,
    segments: &[&str],
    providers: Vec<ttp::IdentityProvider>,
    now: time::OffsetDateTime,
) -> anyhow::Result<TrustSpace> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
        DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
        SerialNumber,
    };
    let dn = |cn: String| {
        let mut d = DistinguishedName::new();
        d.push(DnType::CommonName, cn);
        d
    };
    let ca = |cn: String| -> anyhow::Result<(KeyPair, CertificateParams, rcgen::Certificate)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = dn(cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(3650);
        let cert = p.self_signed(&key)?;
        Ok((key, p, cert))
    };
    let leaf = |ca_key: &KeyPair,
                ca_p: &CertificateParams,
                cn: String,
                serial: u64|
     -> anyhow::Result<(KeyPair, rcgen::Certificate)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = dn(cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(365);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &Issuer::from_params(ca_p, ca_key))?;
        Ok((key, cert))
    };
    let mut signers = HashMap::new();
    let mut states = Vec::new();
    let mut revoked = None;
    for seg in segments {
        let (ca_key, ca_p, ca_der) = ca(format!("{seg} document-signing CA (ortaq demo)"))?;
        let (k, c) = leaf(&ca_key, &ca_p, format!("{seg} conformity authority"), 10)?;
        signers.insert(
            seg.to_string(),
            dsig::KeySigner::from_pkcs8(&k.serialize_der(), c.der())?,
        );
        let mut crls = Vec::new();
        if *seg == "BY" {
            let (k, c) = leaf(&ca_key, &ca_p, format!("{seg} former official"), 66)?;
            revoked = Some(dsig::KeySigner::from_pkcs8(&k.serialize_der(), c.der())?);
            let crl = CertificateRevocationListParams {
                this_update: now - time::Duration::hours(1),
                next_update: now + time::Duration::days(7),
                crl_number: SerialNumber::from(1u64),
                issuing_distribution_point: None,
                revoked_certs: vec![RevokedCertParams {
                    serial_number: SerialNumber::from(66u64),
                    revocation_time: now - time::Duration::hours(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                }],
                key_identifier_method: KeyIdMethod::Sha256,
            };
            crls.push(
                crl.signed_by(&Issuer::from_params(&ca_p, &ca_key))?
                    .der()
                    .to_vec(),
            );
        }
        states.push(ttp::StateEntry {
            segment: seg.to_string(),
            cas: vec![ca_der.der().to_vec()],
            algorithms: vec![dsig::ECDSA_SHA256.into(), dsig::ED25519.into()],
            crls,
        });
    }
    let (eec_key, eec_p, eec_cert) = ca("EEC trust services CA (ortaq demo)".into())?;
    let (tl_key, tl_cert) = leaf(&eec_key, &eec_p, "EEC trust-list signer".into(), 1)?;
    let (ttp_key, ttp_cert) = leaf(&eec_key, &eec_p, "EEC trusted third party".into(), 2)?;
    let list = ttp::TrustList {
        version: 1,
        issued: now,
        next_update: now + time::Duration::days(30),
        states,
        // The EEC's trusted third party: the one whose receipts other nodes accept.
        ttps: vec![ttp_cert.der().to_vec()],
        revoked_nodes: Vec::new(),
        providers,
    };
    let tl_signer = dsig::KeySigner::from_pkcs8(&tl_key.serialize_der(), tl_cert.der())?;
    std::fs::create_dir_all(dir)?;
    // Keys and certificates are never overwritten: a trust space is made once, in a folder
    // of its own, and a file already there is an error.
    let write = |name: &str, bytes: &[u8], private: bool| -> anyhow::Result<PathBuf> {
        let p = dir.join(name);
        if private {
            trust::files::write_private(&p, bytes)?;
        } else {
            trust::files::write_public(&p, bytes)?;
        }
        Ok(p)
    };
    let ttp = node::config::TtpSection {
        trust_list: write("trust-list.xml", list.sign(&tl_signer)?.as_bytes(), false)?,
        trust_list_signer: write(
            "trust-list-signer-demo-cert.pem",
            tl_cert.pem().as_bytes(),
            false,
        )?,
        key: Some(write(
            "ttp-demo-key.pem",
            ttp_key.serialize_pem().as_bytes(),
            true,
        )?),
        cert: Some(write(
            "ttp-demo-cert.pem",
            ttp_cert.pem().as_bytes(),
            false,
        )?),
        subscribers: Vec::new(),
        publisher: None,
        refresh_secs: 3600,
    };
    let ttp_ca = write("ttp-ca-demo-cert.pem", eec_cert.pem().as_bytes(), false)?;
    Ok(TrustSpace {
        list,
        list_signer: tl_signer,
        ttp_ca,
        signers,
        revoked: revoked.context("no revoked signer")?,
        ttp,
    })
}
