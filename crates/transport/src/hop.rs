//! Hop signatures: every envelope a node sends carries the sending node's detached signature
//! over its exact bytes, with the algorithm named (never assumed) and the signing certificate
//! beside it. The receiver checks, before storing anything, that the certificate was issued by
//! the federation root, is valid now, names the same segment as the TLS peer, is of the named
//! algorithm, and that the signature covers these very bytes.
//!
//! Ed25519 is the default (as in eDelivery AS4 2.0); ECDSA P-256 with SHA-256 is supported.
//! On the wire: `x-ortaq-hop-signature: alg=<name>; sig=<base64>` and
//! `x-ortaq-hop-certificate: <base64 DER>`.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use envelope::Segment;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};

pub const SIGNATURE_HEADER: &str = "x-ortaq-hop-signature";
pub const CERTIFICATE_HEADER: &str = "x-ortaq-hop-certificate";

/// A signature algorithm, always named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopAlgorithm {
    Ed25519,
    EcdsaP256Sha256,
}

impl HopAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HopAlgorithm::Ed25519 => "ed25519",
            HopAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "ed25519" => Some(HopAlgorithm::Ed25519),
            "ecdsa-p256-sha256" => Some(HopAlgorithm::EcdsaP256Sha256),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopError {
    #[error("hop signature missing")]
    Missing,
    #[error("hop signature header malformed: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("signing certificate unreadable: {0}")]
    BadCertificate(String),
    #[error("signing certificate was not issued by the federation root")]
    UnknownIssuer,
    #[error("signing certificate is not valid at this time")]
    Expired,
    #[error("signing certificate names segment {certificate}, but the signer must be {peer}")]
    WrongSegment { certificate: Segment, peer: Segment },
    #[error("the signature says {named}, the certificate holds another kind of key")]
    AlgorithmMismatch { named: &'static str },
    #[error("signature does not match the bytes received")]
    BadSignature,
    #[error("signing key {0}")]
    Key(String),
    #[error("the certificate is not a signing certificate: {0}")]
    WrongRole(String),
    #[error("the signing certificate is revoked by the trust list")]
    Revoked,
}

enum SigningKey {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
}

/// A node's signing key and certificate.
pub struct HopSigner {
    key: SigningKey,
    certificate: Vec<u8>,
    rng: SystemRandom,
}

/// A detached signature as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSignature {
    pub algorithm: HopAlgorithm,
    pub value: Vec<u8>,
    /// The signer's certificate (DER).
    pub certificate: Vec<u8>,
}

impl HopSigner {
    /// Loads a PKCS#8 key (Ed25519 or ECDSA P-256) and its certificate from PEM files.
    pub fn from_files(key: &Path, certificate: &Path) -> Result<HopSigner, HopError> {
        let der = match PrivateKeyDer::from_pem_file(key)
            .map_err(|e| HopError::Key(format!("{}: {e}", key.display())))?
        {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            _ => {
                return Err(HopError::Key(format!(
                    "{}: not a PKCS#8 key",
                    key.display()
                )));
            }
        };
        let key = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Ok(k) => SigningKey::Ed25519(k),
            Err(_) => SigningKey::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                    .map_err(|e| HopError::Key(format!("neither Ed25519 nor P-256: {e}")))?,
            ),
        };
        let pem = std::fs::read_to_string(certificate)
            .map_err(|e| HopError::BadCertificate(format!("{}: {e}", certificate.display())))?;
        let certificate =
            trust::pki::pem_to_der(&pem).map_err(|e| HopError::BadCertificate(e.to_string()))?;
        Ok(HopSigner {
            key,
            certificate,
            rng: SystemRandom::new(),
        })
    }

    pub fn algorithm(&self) -> HopAlgorithm {
        match self.key {
            SigningKey::Ed25519(_) => HopAlgorithm::Ed25519,
            SigningKey::EcdsaP256(_) => HopAlgorithm::EcdsaP256Sha256,
        }
    }

    /// Signs `bytes` exactly as they will be sent.
    pub fn sign(&self, bytes: &[u8]) -> Result<HopSignature, HopError> {
        let value = match &self.key {
            SigningKey::Ed25519(k) => k.sign(bytes).as_ref().to_vec(),
            SigningKey::EcdsaP256(k) => k
                .sign(&self.rng, bytes)
                .map_err(|_| HopError::Key("ECDSA signing failed".into()))?
                .as_ref()
                .to_vec(),
        };
        Ok(HopSignature {
            algorithm: self.algorithm(),
            value,
            certificate: self.certificate.clone(),
        })
    }

    /// The signing certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The public key, for tests and diagnostics.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            SigningKey::Ed25519(k) => k.public_key().as_ref().to_vec(),
            SigningKey::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

impl HopSignature {
    /// The two header values: (signature, certificate).
    pub fn to_headers(&self) -> (String, String) {
        (
            format!(
                "alg={}; sig={}",
                self.algorithm.name(),
                B64.encode(&self.value)
            ),
            B64.encode(&self.certificate),
        )
    }

    pub fn from_headers(
        signature: Option<&str>,
        certificate: Option<&str>,
    ) -> Result<Self, HopError> {
        let (Some(sig), Some(cert)) = (signature, certificate) else {
            return Err(HopError::Missing);
        };
        let mut alg = None;
        let mut value = None;
        for part in sig.split(';') {
            match part.trim().split_once('=') {
                Some(("alg", v)) => alg = Some(v.trim()),
                Some(("sig", v)) => value = Some(v.trim()),
                _ => return Err(HopError::Malformed(format!("unexpected part {part:?}"))),
            }
        }
        let alg = alg.ok_or_else(|| HopError::Malformed("no alg=".into()))?;
        let algorithm = HopAlgorithm::from_name(alg)
            .ok_or_else(|| HopError::AlgorithmNotAllowed(alg.to_owned()))?;
        let b64 = |s: &str, what: &str| {
            B64.decode(s.trim())
                .map_err(|e| HopError::Malformed(format!("{what} is not base64: {e}")))
        };
        Ok(HopSignature {
            algorithm,
            value: b64(
                value.ok_or_else(|| HopError::Malformed("no sig=".into()))?,
                "sig",
            )?,
            certificate: b64(cert, "certificate")?,
        })
    }
}

/// Checks hop signatures against the federation root.
///
/// A certificate that passed the chain and role checks is remembered (by its exact DER), so
/// the per-message cost is one signature verification; validity and revocation are still
/// checked every time.
pub struct HopVerifier {
    root: Vec<u8>,
    known: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Arc<Checked>>>,
    revoked: Arc<crate::Revoked>,
}

/// What the chain check established about a signing certificate.
struct Checked {
    segment: Segment,
    not_before: i64,
    not_after: i64,
    ed25519: bool,
    public_key: Vec<u8>,
}

/// Signing certificates remembered at most; the federation has a handful of nodes.
const KNOWN_MAX: usize = 1024;

impl HopVerifier {
    /// A verifier trusting the federation root `root` (DER).
    pub fn from_root_der(root: Vec<u8>) -> HopVerifier {
        HopVerifier {
            root,
            known: Default::default(),
            revoked: Arc::default(),
        }
    }

    pub fn from_root_file(path: &Path) -> Result<HopVerifier, HopError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| HopError::BadCertificate(format!("{}: {e}", path.display())))?;
        Ok(HopVerifier {
            root: trust::pki::pem_to_der(&pem)
                .map_err(|e| HopError::BadCertificate(e.to_string()))?,
            known: Default::default(),
            revoked: Arc::default(),
        })
    }

    /// Refuses signatures made with a certificate in `revoked` (consulted on every check).
    pub fn revoking(mut self, revoked: Arc<crate::Revoked>) -> HopVerifier {
        self.revoked = revoked;
        self
    }

    fn check_chain(&self, der: &[u8]) -> Result<Arc<Checked>, HopError> {
        if let Some(c) = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(der)
        {
            return Ok(c.clone());
        }
        let (_, root) = x509_parser::parse_x509_certificate(&self.root)
            .map_err(|e| HopError::BadCertificate(format!("federation root: {e}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| HopError::BadCertificate(e.to_string()))?;
        if cert.issuer() != root.subject()
            || cert.verify_signature(Some(root.public_key())).is_err()
        {
            return Err(HopError::UnknownIssuer);
        }
        crate::roles::check_signing_role(der).map_err(HopError::WrongRole)?;
        let segment =
            trust::pki::segment_of(der).map_err(|e| HopError::BadCertificate(e.to_string()))?;
        let spki = cert.public_key();
        let key_alg = &spki.algorithm.algorithm;
        let ed25519 = if *key_alg == OID_SIG_ED25519 {
            true
        } else if *key_alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            false
        } else {
            return Err(HopError::BadCertificate(format!(
                "key algorithm {key_alg} is neither Ed25519 nor EC"
            )));
        };
        let v = cert.validity();
        let checked = Arc::new(Checked {
            segment,
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
            ed25519,
            public_key: spki.subject_public_key.data.to_vec(),
        });
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(der.to_vec(), checked.clone());
        Ok(checked)
    }

    /// Verifies `sig` over `bytes` at time `now`, where the signer must be the node of segment
    /// `signer` (the TLS peer for a direct hop; the sender's segment when a relay forwards it).
    pub fn verify(
        &self,
        bytes: &[u8],
        sig: &HopSignature,
        signer: Segment,
        now: OffsetDateTime,
    ) -> Result<(), HopError> {
        let c = self.check_chain(&sig.certificate)?;
        if self.revoked.contains(&sig.certificate) {
            return Err(HopError::Revoked);
        }
        let t = now.unix_timestamp();
        if t < c.not_before || t > c.not_after {
            return Err(HopError::Expired);
        }
        if c.segment != signer {
            return Err(HopError::WrongSegment {
                certificate: c.segment,
                peer: signer,
            });
        }
        let verifier: &dyn aws_lc_rs::signature::VerificationAlgorithm =
            match (sig.algorithm, c.ed25519) {
                (HopAlgorithm::Ed25519, true) => &ED25519,
                (HopAlgorithm::EcdsaP256Sha256, false) => &ECDSA_P256_SHA256_ASN1,
                (a, _) => {
                    return Err(HopError::AlgorithmMismatch { named: a.name() });
                }
            };
        UnparsedPublicKey::new(verifier, &c.public_key)
            .verify(bytes, &sig.value)
            .map_err(|_| HopError::BadSignature)
    }
}
