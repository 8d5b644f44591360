//! Trusted third party (trust groundwork): the federation's signed, versioned trust list (per
//! member state: its certification authorities, the signature algorithms it uses, its
//! revocation lists), and the TTP check: given a signed e-document and a moment, verify the
//! signature, the certificate's chain to a CA of the trust list, its validity and revocation at
//! that moment, and return a receipt the TTP signs. Every failure has its own reason.
//!
//! No clock reads: the caller passes the moment checked and the time of the check.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use dsig::{DsigError, Signer, Verifiers};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{ASN1Time, parse_x509_certificate, parse_x509_crl};

pub const TL_NS: &str = "urn:ortaq:trust-list:v1";
pub const RECEIPT_NS: &str = "urn:ortaq:ttp-receipt:v1";

/// What one member state contributes to the trust space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// Segment code, e.g. `KZ`.
    pub segment: String,
    /// Its certification authorities (DER).
    pub cas: Vec<Vec<u8>>,
    /// SignatureMethod URIs its signers may use.
    pub algorithms: Vec<String>,
    /// Its CAs' revocation lists (DER).
    pub crls: Vec<Vec<u8>>,
}

/// A node the federation trusts to say who its people are (OpenID Connect): its segment, whose
/// node signing certificate signs its ID tokens, and its issuer URL. A node is also a relying
/// party of the others under the same URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    pub segment: String,
    pub issuer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    pub version: u64,
    pub issued: OffsetDateTime,
    /// After this the list must not be used; a fresh one is due before.
    pub next_update: OffsetDateTime,
    pub states: Vec<StateEntry>,
    /// The receipt certificates (DER) of the federation's trusted third parties: a receipt
    /// counts only when one of these signed it.
    pub ttps: Vec<Vec<u8>>,
    /// SHA-256 digests of revoked federation certificates (a node's TLS or signing
    /// certificate): refused at the handshake and for hop signatures once this list is in use.
    pub revoked_nodes: Vec<[u8; 32]>,
    /// The identity providers of cross-border sign-in: a node trusts exactly these.
    pub providers: Vec<IdentityProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustListError {
    #[error("the trust list's signature: {0}")]
    Signature(DsigError),
    #[error(
        "the trust list is signed by a certificate other than the federation's trust-list signer"
    )]
    WrongSigner,
    #[error("the trust list expired at {0}; a newer one is needed")]
    Expired(String),
    #[error("the trust list is malformed: {0}")]
    Malformed(String),
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl TrustList {
    /// The unsigned XML form (our layout, `urn:ortaq:trust-list:v1`).
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<tl:TrustList xmlns:tl=\"{TL_NS}\" version=\"{}\" issued=\"{}\" nextUpdate=\"{}\">",
            self.version,
            ts(self.issued),
            ts(self.next_update)
        );
        for st in &self.states {
            s.push_str(&format!("<tl:State segment=\"{}\">", esc(&st.segment)));
            for a in &st.algorithms {
                s.push_str(&format!("<tl:Algorithm>{}</tl:Algorithm>", esc(a)));
            }
            for c in &st.cas {
                s.push_str(&format!("<tl:CA>{}</tl:CA>", B64.encode(c)));
            }
            for c in &st.crls {
                s.push_str(&format!("<tl:CRL>{}</tl:CRL>", B64.encode(c)));
            }
            s.push_str("</tl:State>");
        }
        for c in &self.ttps {
            s.push_str(&format!(
                "<tl:TrustedThirdParty>{}</tl:TrustedThirdParty>",
                B64.encode(c)
            ));
        }
        for d in &self.revoked_nodes {
            s.push_str(&format!(
                "<tl:RevokedNodeCertificate>{}</tl:RevokedNodeCertificate>",
                hex::encode(d)
            ));
        }
        for p in &self.providers {
            s.push_str(&format!(
                "<tl:IdentityProvider segment=\"{}\" issuer=\"{}\"/>",
                esc(&p.segment),
                esc(&p.issuer)
            ));
        }
        s.push_str("</tl:TrustList>");
        s
    }

    /// The list signed by the federation's trust-list signer (the EEC).
    pub fn sign(&self, signer: &dyn Signer) -> Result<String, DsigError> {
        dsig::sign_enveloped(&self.to_xml(), signer)
    }

    /// Reads a signed list: the signature must verify and be made with `signer_cert` (pinned
    /// by configuration), and the list must not have expired at `now`.
    pub fn verify(
        xml: &str,
        verifiers: &Verifiers,
        signer_cert: &[u8],
        now: OffsetDateTime,
    ) -> Result<TrustList, TrustListError> {
        let v = dsig::verify_enveloped(xml, verifiers).map_err(TrustListError::Signature)?;
        if v.certificate != signer_cert {
            return Err(TrustListError::WrongSigner);
        }
        let list = TrustList::parse(xml)?;
        if list.next_update <= now {
            return Err(TrustListError::Expired(ts(list.next_update)));
        }
        Ok(list)
    }

    fn parse(xml: &str) -> Result<TrustList, TrustListError> {
        let bad = |m: String| TrustListError::Malformed(m);
        let doc = roxmltree::Document::parse(xml).map_err(|e| bad(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().namespace() != Some(TL_NS) || root.tag_name().name() != "TrustList" {
            return Err(bad("the root is not tl:TrustList".into()));
        }
        let time = |n: &str| {
            OffsetDateTime::parse(root.attribute(n).unwrap_or_default(), &Rfc3339)
                .map_err(|e| bad(format!("{n}: {e}")))
        };
        let b64 = |s: &str| {
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            B64.decode(clean).map_err(|e| bad(format!("base64: {e}")))
        };
        let mut states = Vec::new();
        let ttps = root
            .children()
            .filter(|n| {
                n.tag_name().namespace() == Some(TL_NS)
                    && n.tag_name().name() == "TrustedThirdParty"
            })
            .map(|n| b64(n.text().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        let revoked_nodes = root
            .children()
            .filter(|n| {
                n.tag_name().namespace() == Some(TL_NS)
                    && n.tag_name().name() == "RevokedNodeCertificate"
            })
            .map(|n| {
                hex::decode(n.text().unwrap_or_default().trim())
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or_else(|| bad("RevokedNodeCertificate is not a SHA-256 in hex".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let providers = root
            .children()
            .filter(|n| {
                n.tag_name().namespace() == Some(TL_NS) && n.tag_name().name() == "IdentityProvider"
            })
            .map(|n| match (n.attribute("segment"), n.attribute("issuer")) {
                (Some(s), Some(i)) if !s.is_empty() && i.starts_with("http") => {
                    Ok(IdentityProvider {
                        segment: s.to_owned(),
                        issuer: i.trim_end_matches('/').to_owned(),
                    })
                }
                _ => Err(bad(
                    "IdentityProvider needs a segment and an http(s) issuer".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for st in root
            .children()
            .filter(|n| n.tag_name().namespace() == Some(TL_NS) && n.tag_name().name() == "State")
        {
            let mut e = StateEntry {
                segment: st.attribute("segment").unwrap_or_default().to_owned(),
                cas: Vec::new(),
                algorithms: Vec::new(),
                crls: Vec::new(),
            };
            for c in st.children().filter(|n| n.is_element()) {
                let text = c.text().unwrap_or_default();
                match c.tag_name().name() {
                    "Algorithm" => e.algorithms.push(text.trim().to_owned()),
                    "CA" => e.cas.push(b64(text)?),
                    "CRL" => e.crls.push(b64(text)?),
                    other => return Err(bad(format!("unknown element {other}"))),
                }
            }
            states.push(e);
        }
        Ok(TrustList {
            version: root
                .attribute("version")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("version".into()))?,
            issued: time("issued")?,
            next_update: time("nextUpdate")?,
            states,
            ttps,
            revoked_nodes,
            providers,
        })
    }

    /// True when the list runs out within `days` of `now`: time to warn the operator.
    pub fn expires_within(&self, now: OffsetDateTime, days: i64) -> bool {
        self.next_update - now <= ::time::Duration::days(days)
    }
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoSignature,
    Malformed(String),
    DigestMismatch,
    BadSignature,
    AlgorithmNotAllowed(String),
    /// No CA of the trust list issued the signer's certificate.
    UnknownCa,
    NotYetValid(String),
    Expired(String),
    /// The issuing CA itself was not valid at the moment.
    CaNotValid(String),
    Revoked(String),
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NoSignature => "no-signature",
            Reason::Malformed(_) => "malformed",
            Reason::DigestMismatch => "digest-mismatch",
            Reason::BadSignature => "bad-signature",
            Reason::AlgorithmNotAllowed(_) => "algorithm-not-allowed",
            Reason::UnknownCa => "unknown-ca",
            Reason::NotYetValid(_) => "not-yet-valid",
            Reason::Expired(_) => "expired",
            Reason::CaNotValid(_) => "ca-not-valid",
            Reason::Revoked(_) => "revoked",
        }
    }

    pub fn text(&self) -> String {
        match self {
            Reason::NoSignature => "the document carries no signature".into(),
            Reason::Malformed(m) => format!("not a readable signed document: {m}"),
            Reason::DigestMismatch => "the document was changed after signing".into(),
            Reason::BadSignature => {
                "the signature value does not verify with the signer's key".into()
            }
            Reason::AlgorithmNotAllowed(a) => format!("algorithm not allowed: {a}"),
            Reason::UnknownCa => {
                "the signer's certificate was issued by no CA of the trust list".into()
            }
            Reason::NotYetValid(t) => {
                format!("the signer's certificate was not yet valid (from {t})")
            }
            Reason::Expired(t) => format!("the signer's certificate had expired ({t})"),
            Reason::CaNotValid(t) => format!("the issuing CA was not valid at that moment ({t})"),
            Reason::Revoked(t) => format!("the signer's certificate was revoked on {t}"),
        }
    }
}

fn from_dsig(e: DsigError) -> Reason {
    match e {
        DsigError::NoSignature => Reason::NoSignature,
        DsigError::DigestMismatch => Reason::DigestMismatch,
        DsigError::BadSignature => Reason::BadSignature,
        DsigError::AlgorithmNotAllowed(a) => Reason::AlgorithmNotAllowed(a),
        other => Reason::Malformed(other.to_string()),
    }
}

/// The verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureResult {
    pub valid: bool,
    pub reasons: Vec<Reason>,
    pub algorithm: Option<String>,
    pub signer: Option<String>,
    /// The member state whose CA issued the certificate.
    pub state: Option<String>,
    pub certificate: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub document_sha256: Vec<u8>,
    pub moment: OffsetDateTime,
    pub checked_at: OffsetDateTime,
    pub trust_list_version: u64,
    pub signatures: Vec<SignatureResult>,
}

impl Receipt {
    pub fn valid(&self) -> bool {
        !self.signatures.is_empty() && self.signatures.iter().all(|s| s.valid)
    }

    /// The receipt as XML (our layout, `urn:ortaq:ttp-receipt:v1`), unsigned.
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<rc:TtpReceipt xmlns:rc=\"{RECEIPT_NS}\"><rc:Verdict>{}</rc:Verdict><rc:DocumentDigest Algorithm=\"{}\">{}</rc:DocumentDigest><rc:Moment>{}</rc:Moment><rc:CheckedAt>{}</rc:CheckedAt><rc:TrustListVersion>{}</rc:TrustListVersion>",
            if self.valid() { "valid" } else { "invalid" },
            dsig::SHA256,
            B64.encode(&self.document_sha256),
            ts(self.moment),
            ts(self.checked_at),
            self.trust_list_version
        );
        for r in &self.signatures {
            s.push_str(&format!(
                "<rc:Signature valid=\"{}\" algorithm=\"{}\" state=\"{}\">",
                r.valid,
                esc(r.algorithm.as_deref().unwrap_or("")),
                esc(r.state.as_deref().unwrap_or(""))
            ));
            if let Some(n) = &r.signer {
                s.push_str(&format!("<rc:Signer>{}</rc:Signer>", esc(n)));
            }
            if let Some(c) = &r.certificate {
                s.push_str(&format!(
                    "<rc:Certificate>{}</rc:Certificate>",
                    B64.encode(c)
                ));
            }
            for reason in &r.reasons {
                s.push_str(&format!(
                    "<rc:Reason code=\"{}\">{}</rc:Reason>",
                    reason.code(),
                    esc(&reason.text())
                ));
            }
            s.push_str("</rc:Signature>");
        }
        s.push_str("</rc:TtpReceipt>");
        s
    }

    /// The receipt signed by the TTP.
    pub fn sign(&self, signer: &dyn Signer) -> Result<String, DsigError> {
        dsig::sign_enveloped(&self.to_xml(), signer)
    }
}

fn rfc(t: ASN1Time) -> String {
    ts(t.to_datetime())
}

fn asn1(t: OffsetDateTime) -> ASN1Time {
    ASN1Time::from_timestamp(t.unix_timestamp()).unwrap_or(ASN1Time::now())
}

/// Checks the signature of `document` as of `moment` against `list`.
pub fn check(
    document: &str,
    moment: OffsetDateTime,
    checked_at: OffsetDateTime,
    list: &TrustList,
    verifiers: &Verifiers,
) -> Receipt {
    let mut r = SignatureResult {
        valid: false,
        reasons: Vec::new(),
        algorithm: None,
        signer: None,
        state: None,
        certificate: None,
    };
    match dsig::verify_enveloped(document, verifiers) {
        Err(e) => r.reasons.push(from_dsig(e)),
        Ok(v) => {
            r.algorithm = Some(v.algorithm.clone());
            chain(&v.certificate, &v.algorithm, moment, list, &mut r);
            r.certificate = Some(v.certificate);
        }
    }
    r.valid = r.reasons.is_empty();
    Receipt {
        document_sha256: Sha256::digest(document.as_bytes()).to_vec(),
        moment,
        checked_at,
        trust_list_version: list.version,
        signatures: vec![r],
    }
}

fn chain(
    der: &[u8],
    algorithm: &str,
    moment: OffsetDateTime,
    list: &TrustList,
    r: &mut SignatureResult,
) {
    let Ok((_, cert)) = parse_x509_certificate(der) else {
        r.reasons.push(Reason::Malformed(
            "the signer's certificate does not parse".into(),
        ));
        return;
    };
    r.signer = Some(cert.subject().to_string());
    let at = asn1(moment);
    let issuer = list.states.iter().find_map(|st| {
        st.cas.iter().find_map(|ca_der| {
            let (_, ca) = parse_x509_certificate(ca_der).ok()?;
            (ca.subject().as_raw() == cert.issuer().as_raw()
                && (cert.verify_signature(Some(ca.public_key())).is_ok()
                    || gost_signed(der, ca_der, false)))
            .then_some((st, ca_der))
        })
    });
    let Some((st, ca_der)) = issuer else {
        r.reasons.push(Reason::UnknownCa);
        return;
    };
    r.state = Some(st.segment.clone());
    if !st.algorithms.iter().any(|a| a == algorithm) {
        r.reasons.push(Reason::AlgorithmNotAllowed(format!(
            "{algorithm} is not among the algorithms of {}",
            st.segment
        )));
    }
    let validity = cert.validity();
    if at < validity.not_before {
        r.reasons
            .push(Reason::NotYetValid(rfc(validity.not_before)));
    } else if at > validity.not_after {
        r.reasons.push(Reason::Expired(rfc(validity.not_after)));
    }
    let Ok((_, ca)) = parse_x509_certificate(ca_der) else {
        return;
    };
    if !ca.validity().is_valid_at(at) {
        r.reasons
            .push(Reason::CaNotValid(rfc(ca.validity().not_after)));
    }
    for crl_der in &st.crls {
        let Ok((_, crl)) = parse_x509_crl(crl_der) else {
            continue;
        };
        // Only a list the CA itself signed says anything about its certificates.
        if crl.issuer().as_raw() != ca.subject().as_raw()
            || (crl.verify_signature(ca.public_key()).is_err()
                && !gost_signed(crl_der, ca_der, true))
        {
            continue;
        }
        for rc in crl.iter_revoked_certificates() {
            if rc.raw_serial() == cert.raw_serial() && rc.revocation_date <= at {
                r.reasons.push(Reason::Revoked(rfc(rc.revocation_date)));
            }
        }
    }
}

/// A certificate or CRL signed with GOST R 34.10-2012, which x509-parser cannot check, checked
/// through OpenSSL's gost engine (feature `gost`); false without the feature.
#[allow(unused_variables)]
fn gost_signed(der: &[u8], ca_der: &[u8], crl: bool) -> bool {
    #[cfg(feature = "gost")]
    {
        if crl {
            dsig::gost::crl_signed_by(der, ca_der)
        } else {
            dsig::gost::certificate_signed_by(der, ca_der)
        }
    }
    #[cfg(not(feature = "gost"))]
    false
}

/// Why a receipt another node carried cannot be taken as evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt's signature: {0}")]
    Signature(DsigError),
    #[error("the receipt is not signed by a trusted third party of the trust list")]
    UnknownTtp,
    #[error("the receipt is about another document")]
    OtherDocument,
    #[error("the receipt is unreadable: {0}")]
    Malformed(String),
}

/// Checks a receipt that travelled with `document`: signed (enveloped XMLDSig) with the
/// certificate of one of `list`'s trusted third parties, about exactly this document (its
/// SHA-256). Answers the verdict it gives (`valid` or `invalid`); whether that verdict is what
/// the caller needs is the caller's.
pub fn verify_receipt(
    receipt: &str,
    document: &str,
    list: &TrustList,
    verifiers: &Verifiers,
) -> Result<String, ReceiptError> {
    let v = dsig::verify_enveloped(receipt, verifiers).map_err(ReceiptError::Signature)?;
    if !list.ttps.contains(&v.certificate) {
        return Err(ReceiptError::UnknownTtp);
    }
    let doc =
        roxmltree::Document::parse(receipt).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    let digest = doc
        .descendants()
        .find(|n| {
            n.tag_name().name() == "DocumentDigest" && n.tag_name().namespace() == Some(RECEIPT_NS)
        })
        .and_then(|n| n.text())
        .ok_or_else(|| ReceiptError::Malformed("no rc:DocumentDigest".into()))?;
    let digest = B64
        .decode(digest.trim())
        .map_err(|e| ReceiptError::Malformed(format!("rc:DocumentDigest: {e}")))?;
    if digest != Sha256::digest(document.as_bytes()).as_slice() {
        return Err(ReceiptError::OtherDocument);
    }
    Ok(read_receipt(receipt).0)
}

/// The verdict of a receipt (`valid`, `invalid`, or `unreadable` when it is not one) and its
/// reasons as `code: text`. It only reads: whether to trust the receipt's signer is the
/// caller's decision.
pub fn read_receipt(xml: &str) -> (String, Vec<String>) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return ("unreadable".into(), Vec::new());
    };
    let find = |name: &'static str| {
        doc.descendants().filter(move |n| {
            n.tag_name().name() == name && n.tag_name().namespace() == Some(RECEIPT_NS)
        })
    };
    let verdict = find("Verdict")
        .next()
        .and_then(|n| n.text())
        .unwrap_or("unreadable")
        .to_owned();
    let reasons = find("Reason")
        .map(|n| {
            format!(
                "{}: {}",
                n.attribute("code").unwrap_or(""),
                n.text().unwrap_or("")
            )
        })
        .collect();
    (verdict, reasons)
}
