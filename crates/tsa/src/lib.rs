//! RFC 3161 time stamps: a time-stamp authority that answers `TimeStampReq`s with tokens
//! (CMS SignedData over a `TSTInfo`, signed with ECDSA P-256 and carrying an ESS
//! `SigningCertificateV2`, so `openssl ts -verify` accepts them), the checks a relying party
//! makes on a token, and batching: many records under one token through a hash tree
//! ([`batch`]), the way X-Road time-stamps its message log.
//!
//! Tokens are verified against a caller-given set of trusted roots: the signer certificate
//! must travel in the token, chain to one of them, be valid at the token's time and be
//! dedicated to time stamping (extended key usage `timeStamping`, critical, alone), as
//! RFC 3161 §2.3 asks. Every failure names its reason.

pub mod batch;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{GeneralizedTime, Int, OctetString, SetOfVec};
use der::oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-kp-timeStamping`, the only extended key usage a TSA certificate may carry.
pub const ID_KP_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// The policy our authority states in its tokens unless configured otherwise: an OID under
/// the private-use arc the project uses for its own identifiers, not an EEC-assigned one.
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.58406.1.1";

/// The largest token or response we read from outside.
pub const MAX_TOKEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaError {
    #[error("not a readable time-stamp structure: {0}")]
    Malformed(String),
    #[error("the time-stamp request is refused: {0}")]
    BadRequest(String),
    #[error("the authority refused the request (status {status}): {text}")]
    Refused { status: u8, text: String },
    #[error("the token covers another digest than the one checked")]
    ImprintMismatch,
    #[error("the token answers another nonce than the one sent")]
    NonceMismatch,
    #[error("the token's content does not match its signed message digest")]
    ContentDigestMismatch,
    #[error("the token does not name its signing certificate (ESS signingCertificateV2) correctly")]
    SigningCertificate,
    #[error("the token's signature does not verify with its certificate's key")]
    BadSignature,
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("the time-stamping certificate: {0}")]
    Certificate(String),
    #[error("the time-stamping certificate does not chain to a trusted root")]
    UntrustedAuthority,
    #[error("key: {0}")]
    Key(String),
}

fn malformed(e: impl std::fmt::Display) -> TsaError {
    TsaError::Malformed(e.to_string())
}

/// A time-stamp authority: an ECDSA P-256 key and its certificate (extended key usage
/// `timeStamping`, critical).
pub struct Authority {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    cert: x509_cert::Certificate,
    policy: ObjectIdentifier,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl Authority {
    /// `key_pem` is a PKCS#8 "PRIVATE KEY", `cert_pem` the certificate; the certificate is
    /// checked for the key usage a relying party will demand, so a misissued certificate is
    /// refused at start rather than in every relying party.
    pub fn from_pem(key_pem: &str, cert_pem: &str, policy: &str) -> Result<Authority, TsaError> {
        let key = pem_block(key_pem.as_bytes(), "PRIVATE KEY")?;
        let cert = pem_block(cert_pem.as_bytes(), "CERTIFICATE")?;
        Authority::from_der(&key, &cert, policy)
    }

    pub fn from_der(pkcs8: &[u8], cert_der: &[u8], policy: &str) -> Result<Authority, TsaError> {
        let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8,
        )
        .map_err(|e| TsaError::Key(format!("not an ECDSA P-256 PKCS#8 key: {e}")))?;
        let cert = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| TsaError::Certificate(format!("not an X.509 certificate: {e}")))?;
        check_tsa_usage(cert_der)?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        use aws_lc_rs::signature::KeyPair as _;
        if key.public_key().as_ref() != spki {
            return Err(TsaError::Key(
                "the key does not belong to the certificate".into(),
            ));
        }
        let policy = ObjectIdentifier::new(policy)
            .map_err(|e| TsaError::Key(format!("policy {policy:?} is not an OID: {e}")))?;
        Ok(Authority {
            key,
            cert_der: cert_der.to_vec(),
            cert,
            policy,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    pub fn certificate(&self) -> &[u8] {
        &self.cert_der
    }

    /// A token over a SHA-256 `digest` at `at` (whole seconds), answering `nonce` if given.
    pub fn stamp(
        &self,
        digest: &[u8; 32],
        nonce: Option<&[u8]>,
        at: OffsetDateTime,
    ) -> Result<Vec<u8>, TsaError> {
        // A random 127-bit serial: unique across processes without shared state.
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| TsaError::Key("no randomness".into()))?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        let gen_time = generalized(at)?;
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: MessageImprint {
                hash_algorithm: sha256_alg_any(),
                hashed_message: OctetString::new(digest.to_vec()).map_err(malformed)?,
            },
            serial_number: Int::new(&serial).map_err(malformed)?,
            gen_time,
            accuracy: None,
            ordering: false,
            nonce: nonce.map(Int::new).transpose().map_err(malformed)?,
            tsa: None,
            extensions: None,
        };
        let content = tst.to_der().map_err(malformed)?;
        let mut attrs = SetOfVec::new();
        attrs
            .insert(attribute(
                ID_CONTENT_TYPE,
                Any::encode_from(&ID_CT_TST_INFO)?,
            )?)
            .map_err(malformed)?;
        attrs
            .insert(attribute(ID_SIGNING_TIME, Any::encode_from(&gen_time)?)?)
            .map_err(malformed)?;
        let md = OctetString::new(Sha256::digest(&content).to_vec()).map_err(malformed)?;
        attrs
            .insert(attribute(ID_MESSAGE_DIGEST, Any::encode_from(&md)?)?)
            .map_err(malformed)?;
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                hash_algorithm: None,
                cert_hash: OctetString::new(Sha256::digest(&self.cert_der).to_vec())
                    .map_err(malformed)?,
                issuer_serial: None,
            }],
            policies: None,
        };
        attrs
            .insert(attribute(
                ID_SIGNING_CERTIFICATE_V2,
                Any::encode_from(&ess)?,
            )?)
            .map_err(malformed)?;
        let signed = attrs.to_der().map_err(malformed)?;
        let signature = self
            .key
            .sign(&self.rng, &signed)
            .map_err(|_| TsaError::Key("signing failed".into()))?;
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: self.cert.tbs_certificate.issuer.clone(),
                serial_number: self.cert.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256_alg(),
            signed_attrs: Some(attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            signature: OctetString::new(signature.as_ref().to_vec()).map_err(malformed)?,
            unsigned_attrs: None,
        };
        let mut digest_algorithms = SetOfVec::new();
        digest_algorithms.insert(sha256_alg()).map_err(malformed)?;
        let mut certs = SetOfVec::new();
        certs
            .insert(CertificateChoices::Certificate(self.cert.clone()))
            .map_err(malformed)?;
        let mut signers = SetOfVec::new();
        signers.insert(signer).map_err(malformed)?;
        let sd = SignedData {
            version: CmsVersion::V3,
            digest_algorithms,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::encode_from(
                    &OctetString::new(content).map_err(malformed)?,
                )?),
            },
            certificates: Some(CertificateSet(certs)),
            crls: None,
            signer_infos: SignerInfos(signers),
        };
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&sd)?,
        }
        .to_der()
        .map_err(malformed)
    }

    /// Answers a DER `TimeStampReq` with a DER `TimeStampResp`: granted with a token, or
    /// rejected with the reason (RFC 3161 §2.4.2 failure info) for a request we cannot honour.
    pub fn respond(&self, request: &[u8], at: OffsetDateTime) -> Vec<u8> {
        match self.answer(request, at) {
            Ok(token) => response(0, None, Some(&token)),
            Err((bit, text)) => response(2, Some((bit, &text)), None),
        }
    }

    fn answer(&self, request: &[u8], at: OffsetDateTime) -> Result<Vec<u8>, (u8, String)> {
        // failInfo bits: badAlg 0, badRequest 2, badDataFormat 5, unacceptedPolicy 15.
        if request.len() > MAX_TOKEN {
            return Err((2, "request too large".into()));
        }
        let req =
            TimeStampReq::from_der(request).map_err(|e| (5, format!("not a request: {e}")))?;
        if req.message_imprint.hash_algorithm.oid != ID_SHA256 {
            return Err((
                0,
                format!(
                    "hash algorithm {} not accepted; SHA-256 is",
                    req.message_imprint.hash_algorithm.oid
                ),
            ));
        }
        let digest: [u8; 32] = req
            .message_imprint
            .hashed_message
            .as_bytes()
            .try_into()
            .map_err(|_| (5, "a SHA-256 imprint is 32 bytes".to_owned()))?;
        if let Some(p) = req.req_policy
            && p != self.policy
        {
            return Err((15, format!("policy {p} not offered; {} is", self.policy)));
        }
        if req.extensions.is_some() {
            return Err((2, "request extensions are not supported".into()));
        }
        let nonce = req.nonce.as_ref().map(|n| n.as_bytes());
        self.stamp(&digest, nonce, at)
            .map_err(|e| (2, format!("cannot stamp: {e}")))
    }
}

/// The ESS attribute naming the signer's certificate by hash (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    /// DEFAULT sha256: absent in DER when it is SHA-256.
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, TsaError> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(malformed)?;
    Ok(Attribute { oid, values })
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: None,
    }
}

fn sha256_alg_any() -> x509_cert::spki::AlgorithmIdentifier<Any> {
    x509_cert::spki::AlgorithmIdentifier {
        oid: ID_SHA256,
        parameters: None,
    }
}

fn generalized(at: OffsetDateTime) -> Result<GeneralizedTime, TsaError> {
    let secs = u64::try_from(at.unix_timestamp())
        .map_err(|_| TsaError::Malformed("time before 1970".into()))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(malformed)
}

impl From<der::Error> for TsaError {
    fn from(e: der::Error) -> TsaError {
        malformed(e)
    }
}

/// A DER `TimeStampResp`. Built by hand because the status's free text and failure bits are
/// borrowed types in `x509-tsp`; the layout is RFC 3161 §2.4.2.
fn response(status: u8, failure: Option<(u8, &str)>, token: Option<&[u8]>) -> Vec<u8> {
    use der::asn1::{BitString, Utf8StringRef};
    let mut status_info = Vec::new();
    let mut put = |bytes: Vec<u8>| status_info.extend(bytes);
    put(Int::new(&[status])
        .and_then(|i| i.to_der())
        .unwrap_or_default());
    if let Some((bit, text)) = failure {
        let text = Utf8StringRef::new(text)
            .and_then(|t| SequenceOf1(t).to_der())
            .unwrap_or_default();
        put(text);
        let mut bits = [0u8; 4];
        bits[usize::from(bit / 8)] = 0x80 >> (bit % 8);
        let used = usize::from(bit / 8) + 1;
        let unused = 7 - (bit % 8);
        put(BitString::new(unused, &bits[..used])
            .and_then(|b| b.to_der())
            .unwrap_or_default());
    }
    let mut body = der_tlv(0x30, &status_info);
    if let Some(t) = token {
        body.extend_from_slice(t);
    }
    der_tlv(0x30, &body)
}

/// `SEQUENCE OF UTF8String` with one element (PKIFreeText).
struct SequenceOf1<'a>(Utf8StringRef<'a>);
use der::asn1::Utf8StringRef;
impl SequenceOf1<'_> {
    fn to_der(&self) -> der::Result<Vec<u8>> {
        Ok(der_tlv(0x30, &self.0.to_der()?))
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER `TimeStampReq` for a SHA-256 digest, asking for the certificate in the token.
pub fn request(digest: &[u8; 32], nonce: Option<&[u8]>) -> Result<Vec<u8>, TsaError> {
    TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: sha256_alg_any(),
            hashed_message: OctetString::new(digest.to_vec()).map_err(malformed)?,
        },
        req_policy: None,
        nonce: nonce.map(Int::new).transpose().map_err(malformed)?,
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .map_err(malformed)
}

/// The token out of a DER `TimeStampResp`, or the authority's refusal.
pub fn token_from_response(response: &[u8]) -> Result<Vec<u8>, TsaError> {
    if response.len() > MAX_TOKEN {
        return Err(TsaError::Malformed("response too large".into()));
    }
    let resp = TimeStampResp::from_der(response).map_err(malformed)?;
    let status = resp.status.status as u8;
    // granted (0) or grantedWithMods (1)
    if status > 1 {
        let text = resp
            .status
            .status_string
            .map(|s| {
                s.iter()
                    .map(|t| t.as_str().to_owned())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        return Err(TsaError::Refused { status, text });
    }
    resp.time_stamp_token
        .ok_or_else(|| TsaError::Malformed("granted without a token".into()))?
        .to_der()
        .map_err(malformed)
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub time: OffsetDateTime,
    /// Hex of the serial number.
    pub serial: String,
    pub policy: String,
    /// The time-stamping certificate (DER).
    pub certificate: Vec<u8>,
    /// The subject of the time-stamping certificate.
    pub authority: String,
}

/// Checks `token` (a DER `TimeStampToken`) over `digest` (SHA-256), and its signer against
/// the `trusted` root certificates (DER). `nonce`, when given, must be the token's.
pub fn verify(
    token: &[u8],
    digest: &[u8; 32],
    nonce: Option<&[u8]>,
    trusted: &[Vec<u8>],
) -> Result<Verified, TsaError> {
    if token.len() > MAX_TOKEN {
        return Err(TsaError::Malformed("token too large".into()));
    }
    let ci = ContentInfo::from_der(token).map_err(malformed)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(TsaError::Malformed("not CMS SignedData".into()));
    }
    let sd: SignedData = ci.content.decode_as().map_err(malformed)?;
    if sd.digest_algorithms.len() != 1 || sd.digest_algorithms.iter().any(|a| a.oid != ID_SHA256) {
        return Err(TsaError::AlgorithmNotAllowed(
            "the token's digest algorithms are not SHA-256 alone".into(),
        ));
    }
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(TsaError::Malformed(
            "the signed content is not a TSTInfo".into(),
        ));
    }
    let content: OctetString = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TsaError::Malformed("no TSTInfo in the token".into()))?
        .decode_as()
        .map_err(malformed)?;
    let tst = TstInfo::from_der(content.as_bytes()).map_err(malformed)?;
    if tst.message_imprint.hash_algorithm.oid != ID_SHA256 {
        return Err(TsaError::AlgorithmNotAllowed(format!(
            "imprint hash {}",
            tst.message_imprint.hash_algorithm.oid
        )));
    }
    if tst.message_imprint.hashed_message.as_bytes() != digest {
        return Err(TsaError::ImprintMismatch);
    }
    if let Some(n) = nonce
        && tst.nonce.as_ref().map(|t| t.as_bytes()) != Some(strip_zeros(n))
    {
        return Err(TsaError::NonceMismatch);
    }
    let [signer] = sd.signer_infos.0.as_slice() else {
        return Err(TsaError::Malformed(format!(
            "{} signers; one is expected",
            sd.signer_infos.0.len()
        )));
    };
    // RFC 5652: v1 for a signer named by issuer and serial; SignedData v3 for a TSTInfo.
    if signer.version != CmsVersion::V1 || sd.version != CmsVersion::V3 {
        return Err(TsaError::Malformed("unexpected CMS version".into()));
    }
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &signer.sid else {
        return Err(TsaError::SigningCertificate);
    };
    let cert = sd
        .certificates
        .as_ref()
        .and_then(|set| {
            set.0.iter().find_map(|c| match c {
                CertificateChoices::Certificate(c)
                    if c.tbs_certificate.issuer == ias.issuer
                        && c.tbs_certificate.serial_number == ias.serial_number =>
                {
                    Some(c)
                }
                _ => None,
            })
        })
        .ok_or_else(|| {
            TsaError::Certificate("the token does not carry its signer's certificate".into())
        })?;
    let cert_der = cert.to_der().map_err(malformed)?;
    if signer.digest_alg.oid != ID_SHA256 {
        return Err(TsaError::AlgorithmNotAllowed(format!(
            "digest {}",
            signer.digest_alg.oid
        )));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| TsaError::Malformed("no signed attributes".into()))?;
    let value = |oid: ObjectIdentifier| -> Result<&Any, TsaError> {
        let a = attrs
            .iter()
            .find(|a| a.oid == oid)
            .ok_or_else(|| TsaError::Malformed(format!("signed attribute {oid} missing")))?;
        match a.values.as_slice() {
            [v] => Ok(v),
            _ => Err(TsaError::Malformed(format!(
                "signed attribute {oid} has several values"
            ))),
        }
    };
    let ct: ObjectIdentifier = value(ID_CONTENT_TYPE)?.decode_as().map_err(malformed)?;
    if ct != ID_CT_TST_INFO {
        return Err(TsaError::Malformed(
            "content-type attribute is not TSTInfo".into(),
        ));
    }
    let md: OctetString = value(ID_MESSAGE_DIGEST)?.decode_as().map_err(malformed)?;
    if md.as_bytes() != Sha256::digest(content.as_bytes()).as_slice() {
        return Err(TsaError::ContentDigestMismatch);
    }
    let ess: SigningCertificateV2 = value(ID_SIGNING_CERTIFICATE_V2)
        .map_err(|_| TsaError::SigningCertificate)?
        .decode_as()
        .map_err(|_| TsaError::SigningCertificate)?;
    let first = ess.certs.first().ok_or(TsaError::SigningCertificate)?;
    if first
        .hash_algorithm
        .as_ref()
        .is_some_and(|a| a.oid != ID_SHA256)
        || first.cert_hash.as_bytes() != Sha256::digest(&cert_der).as_slice()
    {
        return Err(TsaError::SigningCertificate);
    }
    let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm =
        match signer.signature_algorithm.oid {
            o if o == ECDSA_WITH_SHA256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            o if o == SHA256_WITH_RSA => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            // OpenSSL names RSA by its key OID (rsaEncryption) in SignerInfo.
            o if o.to_string() == "1.2.840.113549.1.1.1" => {
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256
            }
            o if o == ID_ED25519 => &aws_lc_rs::signature::ED25519,
            o => return Err(TsaError::AlgorithmNotAllowed(format!("signature {o}"))),
        };
    let signed = attrs.to_der().map_err(malformed)?;
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, key)
        .verify(&signed, signer.signature.as_bytes())
        .map_err(|_| TsaError::BadSignature)?;
    let time =
        OffsetDateTime::from_unix_timestamp(tst.gen_time.to_unix_duration().as_secs() as i64)
            .map_err(malformed)?;
    check_tsa_usage(&cert_der)?;
    let authority = check_chain(&cert_der, time, trusted)?;
    Ok(Verified {
        time,
        serial: hex(tst.serial_number.as_bytes()),
        policy: tst.policy.to_string(),
        certificate: cert_der,
        authority,
    })
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    // DER INTEGER content has no redundant leading zero unless the next byte's top bit is set.
    let mut s = b;
    while s.len() > 1 && s[0] == 0 && s[1] & 0x80 == 0 {
        s = &s[1..];
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 3161 §2.3: extended key usage present, critical, and `timeStamping` only.
fn check_tsa_usage(cert_der: &[u8]) -> Result<(), TsaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TsaError::Certificate(format!("not an X.509 certificate: {e}")))?;
    let eku = cert
        .extended_key_usage()
        .map_err(|e| TsaError::Certificate(format!("bad extended key usage: {e}")))?
        .ok_or_else(|| TsaError::Certificate("no extended key usage timeStamping".into()))?;
    if !eku.critical {
        return Err(TsaError::Certificate(
            "extended key usage must be critical".into(),
        ));
    }
    let e = eku.value;
    if !e.time_stamping
        || e.any
        || e.server_auth
        || e.client_auth
        || e.code_signing
        || e.email_protection
        || e.ocsp_signing
        || !e.other.is_empty()
    {
        return Err(TsaError::Certificate(
            "extended key usage must be timeStamping alone".into(),
        ));
    }
    Ok(())
}

/// The TSA certificate issued by one of `trusted` (directly), both valid at `at`; the
/// certificate's subject.
fn check_chain(
    cert_der: &[u8],
    at: OffsetDateTime,
    trusted: &[Vec<u8>],
) -> Result<String, TsaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TsaError::Certificate(e.to_string()))?;
    let valid = |c: &x509_parser::certificate::X509Certificate| {
        let v = c.validity();
        at >= v.not_before.to_datetime() && at <= v.not_after.to_datetime()
    };
    if !valid(&cert) {
        return Err(TsaError::Certificate(format!(
            "not valid at {}",
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        )));
    }
    for root_der in trusted {
        let Ok((_, root)) = x509_parser::parse_x509_certificate(root_der) else {
            continue;
        };
        if root.subject() == cert.issuer() && cert.verify_signature(Some(root.public_key())).is_ok()
        {
            if !valid(&root) {
                return Err(TsaError::Certificate(
                    "the issuing root is not valid at the token's time".into(),
                ));
            }
            return Ok(cert.subject().to_string());
        }
        if root_der == cert_der {
            return Ok(cert.subject().to_string());
        }
    }
    Err(TsaError::UntrustedAuthority)
}

/// The first PEM block labelled `label`.
fn pem_block(pem: &[u8], label: &str) -> Result<Vec<u8>, TsaError> {
    for p in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| TsaError::Key(format!("not PEM: {e}")))?;
        if p.label == label {
            return Ok(p.contents);
        }
    }
    Err(TsaError::Key(format!("no {label} in the PEM text")))
}

/// The SHA-256 of `bytes`, as imprints want it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
