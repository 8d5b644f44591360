//! Legally significant messages (a process package marks them): the sending node accepts one
//! only with a valid document signature; a node that runs the trusted third party and a
//! time-stamp authority (the EEC node) obtains the TTP's receipt and a time stamp over it when
//! the message passes through, stores them with the message and forwards them with it, so the
//! recipient holds document, signature and receipt together.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use envelope::{Body, Envelope};
use process::Package;

use crate::NodeError;
use crate::heavy::Heavy;
use crate::stamping::Stamping;
use crate::trusted::Trust;

/// What the node judges legally significant messages with: its packages, its trust list and
/// time-stamp authority when it runs them, the federation root, and its heavy-work pool.
pub(crate) struct Judge<'a> {
    pub(crate) packages: &'a [Package],
    pub(crate) trust: Option<std::sync::Arc<Trust>>,
    pub(crate) stamping: Option<std::sync::Arc<Stamping>>,
    pub(crate) federation_root: Option<&'a [u8]>,
    pub(crate) heavy: &'a Heavy,
    pub(crate) now: time::OffsetDateTime,
}

/// The evidence kinds that travel between nodes, and the header each travels in (base64).
pub const EVIDENCE_HEADERS: &[(&str, &str)] = &[
    (RECEIPT, "x-ortaq-evidence-ttp-receipt"),
    (TIMESTAMP, "x-ortaq-evidence-ttp-timestamp"),
    (TIMESTAMP_PROOF, "x-ortaq-evidence-ttp-timestamp-proof"),
];
/// The TTP's signed receipt (XML).
pub const RECEIPT: &str = "ttp-receipt";
/// An RFC 3161 token (DER) over the root of the batch the receipt was stamped in.
pub const TIMESTAMP: &str = "ttp-timestamp";
/// The receipt's path to that root (`tsa::batch::Proof::to_text`).
pub const TIMESTAMP_PROOF: &str = "ttp-timestamp-proof";

/// The most evidence bytes of one kind a peer may send.
pub const MAX_EVIDENCE: usize = 256 * 1024;

/// Whether the message is legally significant: its package marks it so (in the loaded
/// edition), or marks it so when signed and its document carries an XMLDSig signature.
pub(crate) fn legally_significant(packages: &[Package], env: &Envelope) -> bool {
    let Some(cp) = env.header.cp_action() else {
        return false;
    };
    let Some(code) = cp.message_code() else {
        return false;
    };
    let signed = || matches!(&env.body, Body::Document(d) if d.contains(dsig::DS));
    packages
        .iter()
        .filter(|p| p.process.code == cp.process.as_str() && p.process.version == cp.version)
        .filter_map(|p| p.message(code))
        .any(|m| m.legally_significant || (m.legally_significant_when_signed && signed()))
}

/// The sending node's duty: a legally significant document carries a signature that verifies
/// (profile, digest, signature value with the certificate's key). The check is CPU work in
/// proportion to the document: it runs in the node's heavy pool.
pub(crate) async fn require_signature(judge: &Judge<'_>, env: &Envelope) -> Result<(), NodeError> {
    if !legally_significant(judge.packages, env) {
        return Ok(());
    }
    let Body::Document(doc) = &env.body else {
        return Err(NodeError::Unsigned(
            "a legally significant message carries a signed e-document".into(),
        ));
    };
    let doc = doc.clone();
    judge
        .heavy
        .run(move || {
            dsig::verify_enveloped(&doc, &dsig::Verifiers::national())
                .map(|_| ())
                .map_err(|e| {
                    NodeError::Unsigned(format!(
                        "a legally significant message needs a valid document signature: {e}"
                    ))
                })
        })
        .await?
}

/// The evidence to store with `env`, for a legally significant message (nothing for others).
///
/// A node that runs a trusted third party and a time-stamp authority (the EEC node) judges the
/// document itself and ignores whatever evidence arrived with it: what another node says is
/// never taken on trust. Any other node keeps carried evidence only after checking it: the
/// receipt is signed by a trusted third party of its trust list, about exactly this document,
/// and the time stamp covers the receipt and chains to the federation root. Anything else is
/// refused (`NodeError::Evidence`), and the message with it.
pub(crate) async fn evidence_for(
    judge: &Judge<'_>,
    env: &Envelope,
    carried: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>, NodeError> {
    let (trust, stamping, now) = (judge.trust.clone(), judge.stamping.clone(), judge.now);
    let federation_root = judge.federation_root;
    if !legally_significant(judge.packages, env) {
        return Ok(Vec::new());
    }
    let Body::Document(doc) = &env.body else {
        return Ok(Vec::new());
    };
    if let (Some(trust), Some(stamping)) = (&trust, stamping)
        && trust.issues_receipts()
    {
        let (doc, t) = (doc.clone(), trust.clone());
        let receipt = judge
            .heavy
            .run(move || t.receipt(&doc, now, now))
            .await?
            .map_err(|e| NodeError::Unsigned(format!("trusted third party: {e}")))?;
        let stamp = stamping
            .stamp(tsa::sha256(receipt.as_bytes()))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        return Ok(vec![
            (RECEIPT.into(), receipt.into_bytes()),
            (TIMESTAMP.into(), stamp.token.to_vec()),
            (TIMESTAMP_PROOF.into(), stamp.proof.to_text().into_bytes()),
        ]);
    }
    if carried.is_empty() {
        return Ok(carried);
    }
    let refuse = |why: String| NodeError::Evidence(format!("the evidence it carries: {why}"));
    let part = |kind: &str| {
        carried
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| refuse(format!("no {kind}")))
    };
    let receipt = std::str::from_utf8(part(RECEIPT)?)
        .map_err(|_| refuse("the receipt is not UTF-8".into()))?
        .to_owned();
    let list = trust
        .as_ref()
        .ok_or_else(|| refuse("this node holds no trust list to check it against".into()))?
        .current()
        .map_err(|e| refuse(format!("no trust list to check it against: {e}")))?;
    let root = federation_root.ok_or_else(|| refuse("this node has no federation root".into()))?;
    let (token, proof) = (part(TIMESTAMP)?.to_vec(), part(TIMESTAMP_PROOF)?.to_vec());
    let doc = doc.clone();
    let root = vec![root.to_vec()];
    // Signature checks are CPU work: in the heavy pool.
    judge
        .heavy
        .run(move || {
            ttp::verify_receipt(&receipt, &doc, &list, &dsig::Verifiers::national())
                .map_err(|e| refuse(e.to_string()))?;
            let proof = std::str::from_utf8(&proof)
                .ok()
                .and_then(|p| tsa::batch::Proof::from_text(p).ok())
                .ok_or_else(|| refuse("the time stamp's path is unreadable".into()))?;
            tsa::batch::verify_batched(&token, &tsa::sha256(receipt.as_bytes()), &proof, &root)
                .map_err(|e| refuse(format!("the time stamp: {e}")))?;
            Ok::<(), NodeError>(())
        })
        .await??;
    Ok(carried)
}

/// The evidence a peer sent in the request headers; unknown or oversized ones are refused.
pub fn evidence_from_headers(
    headers: &axum::http::HeaderMap,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for (kind, name) in EVIDENCE_HEADERS {
        let Some(v) = headers.get(*name) else {
            continue;
        };
        if v.len() > MAX_EVIDENCE * 4 / 3 + 4 {
            return Err(format!("evidence {kind} is too large"));
        }
        let bytes = B64
            .decode(v.as_bytes())
            .map_err(|e| format!("evidence {kind}: {e}"))?;
        out.push(((*kind).to_owned(), bytes));
    }
    Ok(out)
}

/// The headers that carry `evidence` to a peer.
pub fn evidence_headers(evidence: &[(String, Vec<u8>)]) -> Vec<(&'static str, String)> {
    EVIDENCE_HEADERS
        .iter()
        .filter_map(|(kind, name)| {
            evidence
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, b)| (*name, B64.encode(b)))
        })
        .collect()
}
