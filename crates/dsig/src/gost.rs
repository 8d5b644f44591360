//! GOST R 34.10-2012 signatures with GOST R 34.11-2012 (Streebog) hashes, 256 and 512 bit,
//! through OpenSSL 3 and the `gost` engine (Debian `libengine-gost-openssl`). Behind the cargo
//! feature `gost`: no Rust implementation of GOST R 34.10 fit for production exists, so the
//! national algorithm comes from the engine the Russian reference implementation ships as.
//!
//! The SignatureMethod URIs are those of the CryptoPro XMLDSig profile (RFC 9215 names the
//! same algorithms); the signature value is the engine's output unchanged, which `openssl
//! dgst -engine gost` verifies and produces. References stay on SHA-256 in this project's
//! profile: XMLDSig lets the digest and signature algorithms differ.

use std::ffi::{CString, c_char, c_int, c_uint};
use std::sync::OnceLock;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};

use crate::{DsigError, SignatureVerifier, Signer, Verifiers};

pub const GOST2012_256: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
pub const GOST2012_512: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512";

/// NIDs of OpenSSL's object table (obj_mac.h).
const NID_GOST3411_2012_256: c_int = 982;
const NID_GOST3411_2012_512: c_int = 983;
const NID_GOST3410_2012_256: c_int = 979;
const NID_GOST3410_2012_512: c_int = 980;

#[repr(C)]
struct Engine {
    _private: [u8; 0],
}

// The ENGINE API is deprecated in OpenSSL 3 but is how the gost engine plugs in; the `openssl`
// crates do not wrap it, so the four calls are declared here (libcrypto is linked by
// openssl-sys).
unsafe extern "C" {
    fn ENGINE_by_id(id: *const c_char) -> *mut Engine;
    fn ENGINE_init(e: *mut Engine) -> c_int;
    fn ENGINE_set_default(e: *mut Engine, flags: c_uint) -> c_int;
    fn ENGINE_free(e: *mut Engine) -> c_int;
}

const ENGINE_METHOD_ALL: c_uint = 0xFFFF;

/// Loads and registers the gost engine once per process; later calls return the first outcome.
pub fn load_engine() -> Result<(), DsigError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            openssl::init();
            let id = CString::new("gost").expect("no NUL");
            // SAFETY: plain C calls on a pointer checked for null; the engine stays registered
            // (ENGINE_init keeps a functional reference) after the structural one is freed.
            unsafe {
                let e = ENGINE_by_id(id.as_ptr());
                if e.is_null() {
                    return Err(
                        "the OpenSSL gost engine is not installed (Debian: libengine-gost-openssl)"
                            .into(),
                    );
                }
                let ok = ENGINE_init(e) == 1 && ENGINE_set_default(e, ENGINE_METHOD_ALL) == 1;
                ENGINE_free(e);
                if !ok {
                    return Err("the OpenSSL gost engine did not initialise".into());
                }
            }
            Ok(())
        })
        .clone()
        .map_err(DsigError::Key)
}

fn digest_for(uri: &str) -> Option<MessageDigest> {
    let nid = match uri {
        GOST2012_256 => NID_GOST3411_2012_256,
        GOST2012_512 => NID_GOST3411_2012_512,
        _ => return None,
    };
    MessageDigest::from_nid(Nid::from_raw(nid))
}

/// Adds the GOST verifiers to `v` (loading the engine).
pub fn add_verifiers(v: &mut Verifiers) -> Result<(), DsigError> {
    load_engine()?;
    v.add(GOST2012_256, Box::new(GostVerifier(GOST2012_256)));
    v.add(GOST2012_512, Box::new(GostVerifier(GOST2012_512)));
    Ok(())
}

struct GostVerifier(&'static str);

impl SignatureVerifier for GostVerifier {
    fn verify(&self, spki: &[u8], data: &[u8], signature: &[u8]) -> Result<(), DsigError> {
        let key = PKey::public_key_from_der(spki)
            .map_err(|e| DsigError::Certificate(format!("not a GOST public key: {e}")))?;
        let want = match self.0 {
            GOST2012_256 => NID_GOST3410_2012_256,
            _ => NID_GOST3410_2012_512,
        };
        if key.id().as_raw() != want {
            return Err(DsigError::AlgorithmNotAllowed(format!(
                "{} with a key of another kind",
                self.0
            )));
        }
        let md =
            digest_for(self.0).ok_or_else(|| DsigError::AlgorithmNotAllowed(self.0.to_owned()))?;
        let mut v =
            openssl::sign::Verifier::new(md, &key).map_err(|e| DsigError::Key(e.to_string()))?;
        v.update(data).map_err(|e| DsigError::Key(e.to_string()))?;
        match v.verify(signature) {
            Ok(true) => Ok(()),
            _ => Err(DsigError::BadSignature),
        }
    }
}

/// Whether the certificate `cert_der` carries a valid signature of `issuer_der`'s key, for
/// certificates signed with GOST (which x509-parser cannot check).
pub fn certificate_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    let check = || -> Option<bool> {
        load_engine().ok()?;
        let cert = openssl::x509::X509::from_der(cert_der).ok()?;
        let issuer = openssl::x509::X509::from_der(issuer_der).ok()?;
        let key = issuer.public_key().ok()?;
        cert.verify(&key).ok()
    };
    check().unwrap_or(false)
}

/// Whether the CRL `crl_der` carries a valid signature of `issuer_der`'s key (GOST CRLs).
pub fn crl_signed_by(crl_der: &[u8], issuer_der: &[u8]) -> bool {
    let check = || -> Option<bool> {
        load_engine().ok()?;
        let crl = openssl::x509::X509Crl::from_der(crl_der).ok()?;
        let issuer = openssl::x509::X509::from_der(issuer_der).ok()?;
        let key = issuer.public_key().ok()?;
        crl.verify(&key).ok()
    };
    check().unwrap_or(false)
}

/// A signer over a GOST R 34.10-2012 key (PEM, as `openssl genpkey -engine gost` writes it).
pub struct GostSigner {
    key: PKey<Private>,
    uri: &'static str,
    certificate: Vec<u8>,
}

impl GostSigner {
    pub fn from_pem(key_pem: &[u8], certificate_der: &[u8]) -> Result<GostSigner, DsigError> {
        load_engine()?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| DsigError::Key(format!("not a GOST private key: {e}")))?;
        let uri = match key.id().as_raw() {
            NID_GOST3410_2012_256 => GOST2012_256,
            NID_GOST3410_2012_512 => GOST2012_512,
            other => {
                return Err(DsigError::Key(format!(
                    "key type {other} is not GOST R 34.10-2012"
                )));
            }
        };
        Ok(GostSigner {
            key,
            uri,
            certificate: certificate_der.to_vec(),
        })
    }
}

impl Signer for GostSigner {
    fn algorithm(&self) -> &str {
        self.uri
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DsigError> {
        let md = digest_for(self.uri)
            .ok_or_else(|| DsigError::AlgorithmNotAllowed(self.uri.to_owned()))?;
        let mut s =
            openssl::sign::Signer::new(md, &self.key).map_err(|e| DsigError::Key(e.to_string()))?;
        s.update(data).map_err(|e| DsigError::Key(e.to_string()))?;
        s.sign_to_vec().map_err(|e| DsigError::Key(e.to_string()))
    }

    fn certificate(&self) -> &[u8] {
        &self.certificate
    }
}
