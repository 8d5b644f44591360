//! The keys of cross-border sign-in: compact JWS signed as this node and checked against the
//! trust space (through `adapter::Identity`), the providers the trust list names, and the
//! state the provider and the relying party keep for a minute or ten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64U};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Lang;

/// A JWS longer than this is not read.
pub(crate) const MAX_JWS: usize = 16 * 1024;

pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) account: people::Account,
    pub(crate) nonce: Option<String>,
    pub(crate) challenge: String,
    pub(crate) expires: i64,
}

pub(crate) struct Pending {
    pub(crate) segment: String,
    pub(crate) issuer: String,
    pub(crate) nonce: String,
    pub(crate) verifier: String,
    pub(crate) lang: Lang,
    pub(crate) next: Option<String>,
    pub(crate) expires: i64,
}

/// The node's part in cross-border sign-in.
pub(crate) struct Oidc {
    /// This node's issuer URL (its pages' public address), also its client id.
    pub(crate) issuer: String,
    pub(crate) identity: Arc<dyn adapter::Identity>,
    pub(crate) codes: Mutex<HashMap<String, Grant>>,
    pub(crate) pending: Mutex<HashMap<String, Pending>>,
    pub(crate) assertions: Mutex<HashMap<String, i64>>,
    pub(crate) http: reqwest::Client,
}

impl Oidc {
    pub(crate) fn new(issuer: String, identity: Arc<dyn adapter::Identity>) -> Oidc {
        Oidc {
            issuer: issuer.trim_end_matches('/').to_owned(),
            identity,
            codes: Default::default(),
            pending: Default::default(),
            assertions: Default::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The other nodes people may come from: (segment, issuer), from the trust list in use.
    pub(crate) fn providers(&self) -> Vec<(String, String)> {
        let me = self.identity.segment();
        match self.identity.providers() {
            Ok(p) => p.into_iter().filter(|(s, _)| *s != me).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "web: no identity providers (trust list)");
                Vec::new()
            }
        }
    }

    /// The origins of the other nodes the trust list names, where a sign-in here may be sent
    /// back to.
    pub(crate) fn relying_origins(&self) -> Vec<String> {
        self.providers()
            .into_iter()
            .map(|(_, issuer)| issuer.split('/').take(3).collect::<Vec<_>>().join("/"))
            .collect()
    }

    /// The segment of a node the trust list names by this issuer URL (itself included).
    pub(crate) fn segment_of(&self, issuer: &str) -> Option<String> {
        let issuer = issuer.trim_end_matches('/');
        self.identity
            .providers()
            .ok()?
            .into_iter()
            .find(|(_, i)| i == issuer)
            .map(|(s, _)| s)
    }

    /// A compact JWS (RFC 7515) of `claims`, signed as this node, with its certificate in
    /// `x5c` when asked.
    pub(crate) fn sign(&self, claims: &Value, with_certificate: bool) -> Result<String, String> {
        let (_, cert) = self.identity.public_key().map_err(|e| e.to_string())?;
        // ID tokens name their key by `kid` only (clients such as joserfc refuse headers over
        // 512 bytes, which a certificate exceeds); assertions carry the certificate, so the
        // provider needs no key registry of its clients.
        let header = if with_certificate {
            json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid(&cert), "x5c": [B64.encode(&cert)] })
        } else {
            json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid(&cert) })
        };
        let input = format!(
            "{}.{}",
            B64U.encode(header.to_string()),
            B64U.encode(claims.to_string())
        );
        let s = self
            .identity
            .sign(input.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(format!("{input}.{}", B64U.encode(s.signature)))
    }

    /// The claims of a JWS signed by the node of `segment`, after checking its signature and
    /// certificate (its `x5c`, else `known` by its `kid`) against the trust space.
    pub(crate) fn verify(
        &self,
        segment: &str,
        jws: &str,
        known: &HashMap<String, Vec<u8>>,
    ) -> Result<Value, String> {
        if jws.len() > MAX_JWS {
            return Err("the token is too long".into());
        }
        let mut parts = jws.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS".into());
        };
        let header: Value = B64U
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("the JWS header is not base64url JSON")?;
        // RFC 9864 renames EdDSA-with-Ed25519 to "Ed25519"; both mean the same here.
        if header["alg"] != "EdDSA" && header["alg"] != "Ed25519" {
            return Err(format!("alg {} is not EdDSA or Ed25519", header["alg"]));
        }
        let cert = header["x5c"][0]
            .as_str()
            .and_then(|c| B64.decode(c).ok())
            .or_else(|| header["kid"].as_str().and_then(|k| known.get(k).cloned()))
            .ok_or("the JWS names no certificate (x5c) or key known by its kid")?;
        let sig = B64U
            .decode(s)
            .map_err(|_| "the signature is not base64url")?;
        self.identity
            .verify(segment, format!("{h}.{p}").as_bytes(), &sig, &cert)
            .map_err(|e| e.to_string())?;
        B64U.decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| "the JWS payload is not base64url JSON".into())
    }
}

pub(crate) fn kid(cert: &[u8]) -> String {
    hex_prefix(&Sha256::digest(cert))
}

fn hex_prefix(d: &[u8]) -> String {
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
