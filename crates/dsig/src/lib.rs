//! XMLDSig enveloped signatures on e-documents: exclusive C14N (libxml2's), SHA-256 digests,
//! RSA, ECDSA P-256 and Ed25519 signatures, the signer's X.509 certificate in `KeyInfo`.
//!
//! Signing and verification go through one interface keyed by the algorithm's URI
//! (`Signer`, `SignatureVerifier`), so a national algorithm (GOST R 34.10-2012, say) plugs in
//! as one more verifier. Verification names the specific reason of every failure.
//!
//! Only the profile e-documents use is accepted: one `ds:Signature`, a child of the root, one
//! `ds:Reference` with `URI=""`, the enveloped-signature and exclusive C14N transforms. Anything
//! else is refused by name rather than half-understood. libxml2 state stays on the calling
//! thread (see `edoc`).

#[cfg(feature = "gost")]
pub mod gost;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libxml::parser::{Parser, ParserOptions};
use libxml::tree::c14n::{CanonicalizationMode, CanonicalizationOptions};
use libxml::tree::{Document, Node};
use sha2::{Digest, Sha256};

pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ED25519: &str = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    #[error("not a readable XML document: {0}")]
    Malformed(String),
    #[error("the document carries no ds:Signature under its root")]
    NoSignature,
    #[error("the document carries {0} signatures under its root; one is expected")]
    SeveralSignatures(usize),
    #[error("unsupported signature profile: {0}")]
    Profile(String),
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("digest mismatch: the document was changed after signing")]
    DigestMismatch,
    #[error("signature value does not verify with the certificate's key")]
    BadSignature,
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("key: {0}")]
    Key(String),
}

/// Makes signature values for one algorithm with one key and certificate.
pub trait Signer {
    /// The SignatureMethod URI.
    fn algorithm(&self) -> &str;
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DsigError>;
    /// The signer's certificate (DER), put into KeyInfo.
    fn certificate(&self) -> &[u8];
}

/// Checks signature values of one algorithm.
pub trait SignatureVerifier: Send + Sync {
    /// `spki` is the certificate's SubjectPublicKeyInfo (DER).
    fn verify(&self, spki: &[u8], data: &[u8], signature: &[u8]) -> Result<(), DsigError>;
}

/// The verifiers by SignatureMethod URI; `standard()` has RSA, ECDSA P-256 and Ed25519.
pub struct Verifiers(HashMap<String, Box<dyn SignatureVerifier>>);

impl Verifiers {
    pub fn empty() -> Verifiers {
        Verifiers(HashMap::new())
    }

    pub fn standard() -> Verifiers {
        let mut v = Verifiers::empty();
        v.add(
            RSA_SHA256,
            Box::new(Ring(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)),
        );
        v.add(
            ECDSA_SHA256,
            Box::new(Ring(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED)),
        );
        v.add(ED25519, Box::new(Ring(&aws_lc_rs::signature::ED25519)));
        v
    }

    /// [`Verifiers::standard`] and the national algorithms compiled in: GOST R 34.10-2012 with
    /// the `gost` feature, when OpenSSL's gost engine loads (otherwise a warning on stderr and
    /// the standard set, so GOST signatures are refused by name).
    pub fn national() -> Verifiers {
        #[allow(unused_mut)]
        let mut v = Verifiers::standard();
        #[cfg(feature = "gost")]
        if let Err(e) = gost::add_verifiers(&mut v) {
            eprintln!("GOST signatures cannot be checked: {e}");
        }
        v
    }

    pub fn add(&mut self, uri: &str, v: Box<dyn SignatureVerifier>) {
        self.0.insert(uri.to_owned(), v);
    }

    /// The verifier of one SignatureMethod URI.
    pub fn get(&self, uri: &str) -> Option<&dyn SignatureVerifier> {
        self.0.get(uri).map(|b| b.as_ref())
    }

    pub fn algorithms(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.0.keys().map(String::as_str).collect();
        v.sort();
        v
    }
}

struct Ring(&'static dyn aws_lc_rs::signature::VerificationAlgorithm);

impl SignatureVerifier for Ring {
    fn verify(&self, spki: &[u8], data: &[u8], signature: &[u8]) -> Result<(), DsigError> {
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
            .map_err(|e| DsigError::Certificate(format!("public key: {e}")))?;
        aws_lc_rs::signature::UnparsedPublicKey::new(self.0, &info.subject_public_key.data)
            .verify(data, signature)
            .map_err(|_| DsigError::BadSignature)
    }
}

use x509_parser::prelude::FromDer as _;

enum KeyKind {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
}

/// A signer over a PKCS#8 key (RSA, ECDSA P-256 or Ed25519, told apart by the key itself).
pub struct KeySigner {
    key: KeyKind,
    certificate: Vec<u8>,
}

impl KeySigner {
    pub fn from_pkcs8(pkcs8: &[u8], certificate_der: &[u8]) -> Result<KeySigner, DsigError> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        let key = if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8) {
            KeyKind::Ecdsa(k)
        } else if let Ok(k) = Ed25519KeyPair::from_pkcs8(pkcs8) {
            KeyKind::Ed25519(k)
        } else if let Ok(k) = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8) {
            KeyKind::Rsa(k)
        } else {
            return Err(DsigError::Key(
                "not a PKCS#8 RSA, ECDSA P-256 or Ed25519 key".into(),
            ));
        };
        Ok(KeySigner {
            key,
            certificate: certificate_der.to_vec(),
        })
    }
}

impl Signer for KeySigner {
    fn algorithm(&self) -> &str {
        match self.key {
            KeyKind::Rsa(_) => RSA_SHA256,
            KeyKind::Ecdsa(_) => ECDSA_SHA256,
            KeyKind::Ed25519(_) => ED25519,
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.key {
            KeyKind::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    data,
                    &mut sig,
                )
                .map_err(|_| DsigError::Key("RSA signing failed".into()))?;
                Ok(sig)
            }
            KeyKind::Ecdsa(k) => Ok(k
                .sign(&rng, data)
                .map_err(|_| DsigError::Key("ECDSA signing failed".into()))?
                .as_ref()
                .to_vec()),
            KeyKind::Ed25519(k) => Ok(k.sign(data).as_ref().to_vec()),
        }
    }

    fn certificate(&self) -> &[u8] {
        &self.certificate
    }
}

/// Parses outside bytes: roxmltree first (no DTD, bounded), then libxml2 for C14N.
fn parse(xml: &str) -> Result<Document, DsigError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| DsigError::Malformed(e.to_string()))?;
    let popts = ParserOptions {
        no_net: true,
        no_error: true,
        no_warning: true,
        ..ParserOptions::default()
    };
    Parser::default()
        .parse_string_with_options(xml, popts)
        .map_err(|e| DsigError::Malformed(format!("{e:?}")))
}

fn exc_c14n() -> CanonicalizationOptions {
    CanonicalizationOptions {
        mode: CanonicalizationMode::ExclusiveCanonical1_0,
        with_comments: false,
        inclusive_ns_prefixes: Vec::new(),
    }
}

fn c14n_doc(doc: &Document) -> Result<String, DsigError> {
    doc.canonicalize(exc_c14n(), None)
        .map_err(|_| DsigError::Malformed("canonicalization failed".into()))
}

fn is_ds(n: &Node, name: &str) -> bool {
    n.get_name() == name && n.get_namespace().is_some_and(|ns| ns.get_href() == DS)
}

fn ds_children(n: &Node, name: &str) -> Vec<Node> {
    n.get_child_elements()
        .into_iter()
        .filter(|c| is_ds(c, name))
        .collect()
}

fn one(n: &Node, name: &str) -> Result<Node, DsigError> {
    let mut v = ds_children(n, name);
    match v.len() {
        1 => Ok(v.remove(0)),
        0 => Err(DsigError::Profile(format!("ds:{name} is missing"))),
        k => Err(DsigError::Profile(format!("{k} ds:{name} elements"))),
    }
}

fn algorithm_of(n: &Node) -> String {
    n.get_attribute("Algorithm").unwrap_or_default()
}

/// Signs `xml` with an enveloped signature, appended as the root's last child. The document's
/// own bytes are otherwise kept as they were.
pub fn sign_enveloped(xml: &str, signer: &dyn Signer) -> Result<String, DsigError> {
    let doc = parse(xml)?;
    let digest = B64.encode(Sha256::digest(c14n_doc(&doc)?.as_bytes()));
    let signed_info = format!(
        "<ds:SignedInfo xmlns:ds=\"{DS}\"><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/><ds:SignatureMethod Algorithm=\"{}\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
        signer.algorithm()
    );
    // Exclusive C14N does not depend on the context the element sits in, so the standalone
    // SignedInfo canonicalizes to what a verifier computes inside the document.
    let si_doc = parse(&signed_info)?;
    let value = B64.encode(signer.sign(c14n_doc(&si_doc)?.as_bytes())?);
    let signature = format!(
        "<ds:Signature xmlns:ds=\"{DS}\">{}<ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
        signed_info.replacen(&format!(" xmlns:ds=\"{DS}\""), "", 1),
        B64.encode(signer.certificate())
    );
    let ro = roxmltree::Document::parse(xml).map_err(|e| DsigError::Malformed(e.to_string()))?;
    let root = ro.root_element();
    let range = root.range();
    let text = &xml[range.clone()];
    if text.ends_with("/>") {
        let name = &text[1..text
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(1)];
        Ok(format!(
            "{}>{signature}</{name}>{}",
            &xml[..range.end - 2],
            &xml[range.end..]
        ))
    } else {
        let close = range.start
            + text
                .rfind("</")
                .ok_or_else(|| DsigError::Malformed("root element has no end tag".into()))?;
        Ok(format!("{}{signature}{}", &xml[..close], &xml[close..]))
    }
}

/// What a verified signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub algorithm: String,
    /// The signer's certificate (DER) from KeyInfo.
    pub certificate: Vec<u8>,
    /// SHA-256 of the canonical document without its signature.
    pub digest: Vec<u8>,
}

/// Verifies the enveloped signature of `xml` with one of `verifiers`. Trust in the
/// certificate (its chain to a trusted CA, validity, revocation) is the caller's next step.
pub fn verify_enveloped(xml: &str, verifiers: &Verifiers) -> Result<Verified, DsigError> {
    let doc = parse(xml)?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| DsigError::Malformed("no root element".into()))?;
    let mut sigs = ds_children(&root, "Signature");
    let mut sig = match sigs.len() {
        0 => return Err(DsigError::NoSignature),
        1 => sigs.remove(0),
        k => return Err(DsigError::SeveralSignatures(k)),
    };
    let mut si = one(&sig, "SignedInfo")?;
    let c14n = algorithm_of(&one(&si, "CanonicalizationMethod")?);
    if c14n != EXC_C14N {
        return Err(DsigError::AlgorithmNotAllowed(format!(
            "CanonicalizationMethod {c14n}"
        )));
    }
    let method = algorithm_of(&one(&si, "SignatureMethod")?);
    let verifier = verifiers
        .0
        .get(&method)
        .ok_or_else(|| DsigError::AlgorithmNotAllowed(format!("SignatureMethod {method}")))?;
    let reference = one(&si, "Reference")?;
    if reference.get_attribute("URI").as_deref() != Some("") {
        return Err(DsigError::Profile(
            "the Reference must cover the whole document (URI=\"\")".into(),
        ));
    }
    let transforms: Vec<String> = ds_children(&one(&reference, "Transforms")?, "Transform")
        .iter()
        .map(algorithm_of)
        .collect();
    if transforms.first().map(String::as_str) != Some(ENVELOPED)
        || transforms.iter().skip(1).any(|t| t != EXC_C14N)
    {
        return Err(DsigError::AlgorithmNotAllowed(format!(
            "Transforms {transforms:?} (enveloped-signature then exclusive C14N expected)"
        )));
    }
    let dm = algorithm_of(&one(&reference, "DigestMethod")?);
    if dm != SHA256 {
        return Err(DsigError::AlgorithmNotAllowed(format!("DigestMethod {dm}")));
    }
    let expected = decode(&one(&reference, "DigestValue")?.get_content())?;
    let value = decode(&one(&sig, "SignatureValue")?.get_content())?;
    let cert_b64 = one(&one(&one(&sig, "KeyInfo")?, "X509Data")?, "X509Certificate")?.get_content();
    let certificate = decode(&cert_b64)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&certificate)
        .map_err(|e| DsigError::Certificate(e.to_string()))?;
    let spki = cert.tbs_certificate.subject_pki.raw.to_vec();

    let signed = si
        .canonicalize(exc_c14n())
        .map_err(|_| DsigError::Malformed("canonicalization of SignedInfo failed".into()))?;
    // The enveloped transform: the document as it was before the signature was added. The
    // detached subtree is ours to free (the fuzz target found the leak otherwise).
    sig.unlink();
    sig.set_rust_owned();
    let digest = Sha256::digest(c14n_doc(&doc)?.as_bytes()).to_vec();
    if digest != expected {
        return Err(DsigError::DigestMismatch);
    }
    verifier.verify(&spki, signed.as_bytes(), &value)?;
    Ok(Verified {
        algorithm: method,
        certificate,
        digest,
    })
}

fn decode(s: &str) -> Result<Vec<u8>, DsigError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(clean)
        .map_err(|e| DsigError::Malformed(format!("base64: {e}")))
}
