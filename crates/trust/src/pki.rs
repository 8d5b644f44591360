//! The federation PKI of the nodes.
//!
//! `init` creates a federation root (ECDSA P-256, CA) and, for every segment, two certificates
//! signed by it: a TLS certificate (ECDSA P-256, server and client authentication) for the
//! mutual TLS between nodes, and a signing certificate (Ed25519) for the hop signatures a node
//! puts on every envelope it sends. Both carry the segment as the URI
//! `urn:eaeu:segment:<EEC|alpha-2>` in subjectAltName; that, not a name field, is what a peer
//! reads to learn which segment it talks to ([`segment_of`]).
//!
//! Layout of the folder (keys mode 0600, folders 0700; nothing is ever overwritten):
//! `federation-root.crt`, `federation-root.key`, and per segment `<SEG>/tls.crt`,
//! `<SEG>/tls.key`, `<SEG>/signing.crt`, `<SEG>/signing.key`. A node's configuration names
//! these files; it never embeds a key.

use std::path::{Path, PathBuf};

use envelope::Segment;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::files::{create_private_dir, write_private, write_public};

/// The subjectAltName URI prefix that names a node's segment.
pub const SEGMENT_URI_PREFIX: &str = "urn:eaeu:segment:";

const ROOT_CERT: &str = "federation-root.crt";
const ROOT_KEY: &str = "federation-root.key";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; the PKI never overwrites a key or certificate")]
    Exists(PathBuf),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate refused: {0}")]
    Certificate(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    pub segment: Segment,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub signing_cert: PathBuf,
    pub signing_key: PathBuf,
}

impl NodeFiles {
    pub fn in_dir(dir: &Path, segment: Segment) -> NodeFiles {
        let d = dir.join(segment.as_str());
        NodeFiles {
            segment,
            tls_cert: d.join("tls.crt"),
            tls_key: d.join("tls.key"),
            signing_cert: d.join("signing.crt"),
            signing_key: d.join("signing.key"),
        }
    }
}

pub fn root_cert_path(dir: &Path) -> PathBuf {
    dir.join(ROOT_CERT)
}

/// Creates the federation root in `dir` and issues the files of every segment in `segments`.
pub fn init(
    dir: &Path,
    segments: &[Segment],
    now: OffsetDateTime,
) -> Result<Vec<NodeFiles>, PkiError> {
    let (cert_path, key_path) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    create_private_dir(dir).map_err(io(dir))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name("EAEU IIS federation root (ortaq)");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
    write_public(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
    segments.iter().map(|s| issue(dir, *s, now)).collect()
}

/// The key type of a node's signing certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningKeyKind {
    #[default]
    Ed25519,
    EcdsaP256,
}

/// Issues the TLS and signing certificates of `segment` under the root in `dir` (Ed25519
/// signing key).
pub fn issue(dir: &Path, segment: Segment, now: OffsetDateTime) -> Result<NodeFiles, PkiError> {
    issue_with(dir, segment, now, SigningKeyKind::Ed25519)
}

/// [`issue`], choosing the signing key type.
pub fn issue_with(
    dir: &Path,
    segment: Segment,
    now: OffsetDateTime,
    signing: SigningKeyKind,
) -> Result<NodeFiles, PkiError> {
    let files = NodeFiles::in_dir(dir, segment);
    for p in [
        &files.tls_cert,
        &files.tls_key,
        &files.signing_cert,
        &files.signing_key,
    ] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let (cert_path, key_path) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
    let root_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
    let root_key = KeyPair::from_pem(&std::fs::read_to_string(&key_path).map_err(io(&key_path))?)?;
    let issuer = Issuer::from_ca_cert_pem(&root_pem, root_key)?;
    let node_dir = dir.join(segment.as_str());
    create_private_dir(&node_dir).map_err(io(&node_dir))?;

    let uri = SanType::URI(format!("{SEGMENT_URI_PREFIX}{segment}").try_into()?);
    let host = format!("{}.node.ortaq", segment.as_str().to_ascii_lowercase());
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(730);
    };

    let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut tls = CertificateParams::new(vec![host])?;
    tls.subject_alt_names.push(uri.clone());
    tls.distinguished_name = name(&format!("ortaq node {segment} (TLS)"));
    tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    tls.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    tls.use_authority_key_identifier_extension = true;
    validity(&mut tls);
    let tls_cert = tls.signed_by(&tls_key, &issuer)?;

    let sig_key = KeyPair::generate_for(match signing {
        SigningKeyKind::Ed25519 => &PKCS_ED25519,
        SigningKeyKind::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
    })?;
    let mut sig = CertificateParams::new(Vec::<String>::new())?;
    sig.subject_alt_names.push(uri);
    sig.distinguished_name = name(&format!("ortaq node {segment} (signing)"));
    sig.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    sig.use_authority_key_identifier_extension = true;
    validity(&mut sig);
    let sig_cert = sig.signed_by(&sig_key, &issuer)?;

    write_private(&files.tls_key, tls_key.serialize_pem().as_bytes())
        .map_err(io(&files.tls_key))?;
    write_public(&files.tls_cert, tls_cert.pem().as_bytes()).map_err(io(&files.tls_cert))?;
    write_private(&files.signing_key, sig_key.serialize_pem().as_bytes())
        .map_err(io(&files.signing_key))?;
    write_public(&files.signing_cert, sig_cert.pem().as_bytes())
        .map_err(io(&files.signing_cert))?;
    Ok(files)
}

/// The files of a time-stamp authority run by a node: `<SEG>/tsa.crt` and `<SEG>/tsa.key`.
pub fn tsa_files(dir: &Path, segment: Segment) -> (PathBuf, PathBuf) {
    let d = dir.join(segment.as_str());
    (d.join("tsa.crt"), d.join("tsa.key"))
}

/// Issues a time-stamping certificate (ECDSA P-256) for `segment`'s node under the root in
/// `dir`. RFC 3161 §2.3 wants its extended key usage critical and `timeStamping` alone;
/// rcgen writes that extension non-critical, so it goes in as a custom extension.
pub fn issue_tsa(
    dir: &Path,
    segment: Segment,
    now: OffsetDateTime,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let (cert_path, key_path) = tsa_files(dir, segment);
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let (root_cert, root_key) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
    let root_pem = std::fs::read_to_string(&root_cert).map_err(io(&root_cert))?;
    let root_key = KeyPair::from_pem(&std::fs::read_to_string(&root_key).map_err(io(&root_key))?)?;
    let issuer = Issuer::from_ca_cert_pem(&root_pem, root_key)?;
    let node_dir = dir.join(segment.as_str());
    create_private_dir(&node_dir).map_err(io(&node_dir))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = name(&format!("ortaq node {segment} (time-stamp authority)"));
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    // SEQUENCE { OID 1.3.6.1.5.5.7.3.8 (id-kp-timeStamping) }
    let mut eku = rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 37],
        vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
        ],
    );
    eku.set_criticality(true);
    p.custom_extensions.push(eku);
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(730);
    let cert = p.signed_by(&key, &issuer)?;
    write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
    write_public(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
    Ok((cert_path, key_path))
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "EAEU integrated information system",
    );
    dn.push(DnType::CommonName, common);
    dn
}

/// The segment a certificate (DER) names in its `urn:eaeu:segment:` subjectAltName URI.
/// Exactly one such URI is required.
pub fn segment_of(cert_der: &[u8]) -> Result<Segment, PkiError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::Certificate(format!("not an X.509 certificate: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::Certificate(format!("bad subjectAltName: {e}")))?
        .ok_or_else(|| PkiError::Certificate("no subjectAltName naming a segment".into()))?;
    let segments: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => u.strip_prefix(SEGMENT_URI_PREFIX),
            _ => None,
        })
        .collect();
    match segments.as_slice() {
        [s] => Segment::parse(s).map_err(PkiError::Certificate),
        [] => Err(PkiError::Certificate(format!(
            "no {SEGMENT_URI_PREFIX}<segment> URI in subjectAltName"
        ))),
        _ => Err(PkiError::Certificate(
            "more than one segment named in subjectAltName".into(),
        )),
    }
}

/// The DER of the first certificate in a PEM file.
pub fn pem_to_der(pem_text: &str) -> Result<Vec<u8>, PkiError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|e| PkiError::Certificate(format!("not a PEM certificate: {e}")))?;
    Ok(pem.contents)
}
