//! Evidence containers: everything that proves what a node received and when, in one ZIP file
//! in the spirit of ASiC-E (`mimetype` first and stored, a manifest under `META-INF/`), and
//! the offline check of such a file.
//!
//! The container holds the envelope exactly as stored, the hop signature that travelled with it
//! (and its certificate), the e-document with its XMLDSig signature, the trusted third party's
//! receipt with its RFC 3161 time stamp, and the message log from the message's record to a
//! signed checkpoint. The log key that signed the checkpoint is itself signed by the exporting
//! node's federation signing key, so every check ends at the federation root (or, for the
//! receipt, at the CA the verifier names).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use envelope::{Body, Origin, ParseOptions, Segment};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use transport::hop::{HopSignature, HopVerifier};

use crate::legal::{RECEIPT, TIMESTAMP, TIMESTAMP_PROOF};
use crate::{Node, NodeError};

pub const MIMETYPE: &str = "application/vnd.etsi.asic-e+zip";
/// What the exporting node signs to vouch for its log key.
const LOG_KEY_STATEMENT: &[u8] = b"ortaq-log-key\0";

/// Files a container may hold, and the most bytes each may have.
const FILES: &[(&str, usize)] = &[
    ("mimetype", 64),
    ("META-INF/manifest.xml", 64 * 1024),
    ("envelope.xml", 32 * 1024 * 1024),
    ("document.xml", 32 * 1024 * 1024),
    ("hop-signature.txt", 64 * 1024),
    ("hop-certificate.der", 64 * 1024),
    ("ttp-receipt.xml", 1024 * 1024),
    ("ttp-timestamp.tst", 64 * 1024),
    ("ttp-timestamp-proof.txt", 64 * 1024),
    ("log-proof.json", 64 * 1024 * 1024),
];

#[derive(Debug, Serialize, Deserialize)]
struct LogProofFile {
    segment: String,
    message_id: String,
    /// The node's log key (Ed25519, hex) ...
    log_key: String,
    /// ... signed by the node's federation signing key (hop header format, and certificate).
    log_key_signature: String,
    log_key_certificate: String,
    records: Vec<RecordFile>,
    checkpoint: CheckpointFile,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    seq: i64,
    at: i64,
    message_id: String,
    event: String,
    envelope_sha256: String,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    seq: i64,
    hash: String,
    key_id: String,
    signature: String,
    /// An RFC 3161 token (base64) over the root of the batch the checkpoint was stamped in,
    /// and the checkpoint's path to it; absent when the node runs no time-stamp authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_proof: Option<String>,
}

/// Builds the container of one message held by `node`. A checkpoint is signed first when none
/// covers the message yet.
pub async fn export(node: &Node, message_id: &str) -> Result<Vec<u8>, NodeError> {
    let store = node.store();
    let envelope = store
        .envelope(message_id)
        .await?
        .ok_or(NodeError::NotFound)?;
    if store.log_proof(message_id).await?.is_none() {
        store.checkpoint().await?;
    }
    crate::stamp_checkpoints(node).await?;
    let proof = store
        .log_proof(message_id)
        .await?
        .ok_or_else(|| NodeError::Internal("no signed checkpoint covers the message".into()))?;
    let fed = node.fed.as_ref().ok_or_else(|| {
        NodeError::Forbidden("evidence needs the node's federation signing key".into())
    })?;
    let log_key = node.verifying_key().to_bytes();
    let mut statement = LOG_KEY_STATEMENT.to_vec();
    statement.extend_from_slice(&log_key);
    let vouch = fed
        .sign(&statement)
        .map_err(|e| NodeError::Internal(e.to_string()))?;
    let log = LogProofFile {
        segment: node.segment().as_str().to_owned(),
        message_id: message_id.to_owned(),
        log_key: hex::encode(log_key),
        log_key_signature: vouch.header.clone(),
        log_key_certificate: B64.encode(&vouch.certificate),
        records: proof
            .records
            .into_iter()
            .map(|r| RecordFile {
                seq: r.seq,
                at: r.at,
                message_id: r.message_id,
                event: r.event,
                envelope_sha256: r.envelope_sha256,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect(),
        checkpoint: CheckpointFile {
            seq: proof.checkpoint.seq,
            hash: proof.checkpoint.hash,
            key_id: proof.checkpoint.key_id,
            signature: hex::encode(proof.checkpoint.signature),
            timestamp: proof.checkpoint.stamp.as_ref().map(|(t, _)| B64.encode(t)),
            timestamp_proof: proof.checkpoint.stamp.map(|(_, p)| p),
        },
    };
    let mut files: Vec<(&str, Vec<u8>)> = vec![("envelope.xml", envelope.clone())];
    let opts = ParseOptions {
        origin: Origin::Any,
        limits: node.limits(),
    };
    if let Ok(env) = envelope::parse(&envelope, &opts)
        && let Body::Document(doc) = &env.body
    {
        files.push(("document.xml", doc.clone().into_bytes()));
    }
    if let Some(sig) = store.signature(message_id).await? {
        files.push(("hop-signature.txt", sig.header.into_bytes()));
        files.push(("hop-certificate.der", sig.certificate));
    }
    for (kind, body) in store.evidence(message_id).await? {
        let name = match kind.as_str() {
            RECEIPT => "ttp-receipt.xml",
            TIMESTAMP => "ttp-timestamp.tst",
            TIMESTAMP_PROOF => "ttp-timestamp-proof.txt",
            _ => continue,
        };
        files.push((name, body));
    }
    files.push((
        "log-proof.json",
        serde_json::to_vec_pretty(&log).map_err(|e| NodeError::Internal(e.to_string()))?,
    ));
    write_zip(&files).map_err(NodeError::Internal)
}

fn write_zip(files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, String> {
    use zip::write::SimpleFileOptions;
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let e = |e: zip::result::ZipError| e.to_string();
    z.start_file("mimetype", stored).map_err(e)?;
    z.write_all(MIMETYPE.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut manifest = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\">\n",
    );
    manifest.push_str(&format!(
        "  <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"{MIMETYPE}\"/>\n"
    ));
    for (name, body) in files {
        manifest.push_str(&format!(
            "  <manifest:file-entry manifest:full-path=\"{name}\" manifest:media-type=\"{}\"/><!-- sha256 {} -->\n",
            media_type(name),
            hex::encode(Sha256::digest(body))
        ));
    }
    manifest.push_str("</manifest:manifest>\n");
    z.start_file("META-INF/manifest.xml", stored).map_err(e)?;
    z.write_all(manifest.as_bytes())
        .map_err(|e| e.to_string())?;
    for (name, body) in files {
        z.start_file(*name, stored).map_err(e)?;
        z.write_all(body).map_err(|e| e.to_string())?;
    }
    Ok(z.finish().map_err(e)?.into_inner())
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("der") => "application/pkix-cert",
        Some("tst") => "application/timestamp-token",
        _ => "text/plain",
    }
}

/// One line of the verification report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// What was established, or why it failed.
    pub outcome: Result<String, String>,
}

/// The trust anchors of an offline check.
pub struct Anchors {
    /// The federation root (DER): hop signatures, the log key's voucher, time stamps.
    pub federation_root: Vec<u8>,
    /// The CA (DER) that must have issued the TTP's receipt certificate.
    pub ttp_ca: Option<Vec<u8>>,
}

/// Reads and checks a container; every check is reported, in order.
pub fn verify(container: &[u8], anchors: &Anchors) -> Vec<Check> {
    let mut out = Vec::new();
    let files = match read_zip(container) {
        Ok(f) => f,
        Err(e) => {
            out.push(Check {
                name: "container",
                outcome: Err(e),
            });
            return out;
        }
    };
    out.push(Check {
        name: "container",
        outcome: Ok(format!("{} files, mimetype {MIMETYPE}", files.len())),
    });
    let mut check = |name: &'static str, outcome: Result<String, String>| {
        out.push(Check { name, outcome });
    };
    let Some(envelope_bytes) = files.get("envelope.xml") else {
        check("envelope", Err("no envelope.xml".into()));
        return out;
    };
    let env = match envelope::parse(envelope_bytes, &ParseOptions::new(Origin::Any)) {
        Ok(e) => e,
        Err(e) => {
            check("envelope", Err(e.to_string()));
            return out;
        }
    };
    // Every check is as of the acceptance the node recorded; an envelope without it was never
    // stored by a node.
    let Some(accept_time) = env.header.integration.as_ref().map(|i| i.accept_time) else {
        check(
            "envelope",
            Err("no int:Integration: this envelope was not stored by a node".into()),
        );
        return out;
    };
    let sender = env.sender().map(|a| a.segment());
    check(
        "envelope",
        Ok(format!(
            "MessageID {}, from {}, accepted {}",
            env.header.message_id,
            env.sender().map(|a| a.to_string()).unwrap_or_default(),
            rfc3339(accept_time)
        )),
    );
    let root = HopVerifier::from_root_der(anchors.federation_root.clone());

    // The hop signature of the node that first accepted the message.
    check(
        "hop signature",
        (|| {
            let sig = HopSignature::from_headers(
                files
                    .get("hop-signature.txt")
                    .and_then(|b| std::str::from_utf8(b).ok()),
                files
                    .get("hop-certificate.der")
                    .map(|c| B64.encode(c))
                    .as_deref(),
            )
            .map_err(|e| e.to_string())?;
            let seg = sender.ok_or("the envelope names no sender")?;
            root.verify(envelope_bytes, &sig, seg, accept_time)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "node {seg} signed these exact bytes (certificate from the federation root)"
            ))
        })(),
    );

    // The e-document and its signature.
    let doc = match &env.body {
        Body::Document(d) => Some(d.as_str()),
        _ => None,
    };
    check(
        "document signature",
        (|| {
            let doc = doc.ok_or("the envelope carries no e-document")?;
            if files
                .get("document.xml")
                .is_some_and(|d| d != doc.as_bytes())
            {
                return Err("document.xml differs from the envelope's document".into());
            }
            let v = dsig::verify_enveloped(doc, &dsig::Verifiers::national())
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "valid, {} by {}",
                v.algorithm,
                subject(&v.certificate)
            ))
        })(),
    );

    // The trusted third party's receipt and its time stamp.
    let receipt = files.get("ttp-receipt.xml");
    if let Some(receipt) = receipt {
        check(
            "TTP receipt",
            (|| {
                let text = std::str::from_utf8(receipt).map_err(|_| "not UTF-8")?;
                let v = dsig::verify_enveloped(text, &dsig::Verifiers::national())
                    .map_err(|e| format!("receipt signature: {e}"))?;
                let ca = anchors
                    .ttp_ca
                    .as_ref()
                    .ok_or("the receipt's signer is not checked: name the TTP's CA")?;
                issued_by(&v.certificate, ca, accept_time)?;
                let digest = B64.encode(Sha256::digest(doc.unwrap_or_default().as_bytes()));
                if !text.contains(&format!(">{digest}</rc:DocumentDigest>")) {
                    return Err("the receipt is about another document".into());
                }
                let (verdict, reasons) = ttp::read_receipt(text);
                if verdict != "valid" {
                    return Err(format!("verdict «{verdict}»: {}", reasons.join("; ")));
                }
                Ok(format!("«valid», signed by {}", subject(&v.certificate)))
            })(),
        );
        check(
            "time stamp",
            (|| {
                let token = files
                    .get("ttp-timestamp.tst")
                    .ok_or("no ttp-timestamp.tst")?;
                let proof = files
                    .get("ttp-timestamp-proof.txt")
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or("no ttp-timestamp-proof.txt")?;
                let proof = tsa::batch::Proof::from_text(proof).map_err(|e| e.to_string())?;
                let v = tsa::batch::verify_batched(
                    token,
                    &tsa::sha256(receipt),
                    &proof,
                    std::slice::from_ref(&anchors.federation_root),
                )
                .map_err(|e| e.to_string())?;
                Ok(format!(
                    "receipt stamped at {} by {} (batch of {})",
                    rfc3339(v.time),
                    v.authority,
                    proof.count
                ))
            })(),
        );
    } else {
        check("TTP receipt", Err("none in the container".into()));
    }

    // The message log up to a signed checkpoint, and the node's voucher for its log key.
    check(
        "message log",
        (|| {
            let f: LogProofFile =
                serde_json::from_slice(files.get("log-proof.json").ok_or("no log-proof.json")?)
                    .map_err(|e| format!("log-proof.json: {e}"))?;
            let seg = Segment::parse(&f.segment).map_err(|e| format!("segment: {e}"))?;
            let key_bytes: [u8; 32] = hex::decode(&f.log_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("log key is not 32 bytes of hex")?;
            let mut statement = LOG_KEY_STATEMENT.to_vec();
            statement.extend_from_slice(&key_bytes);
            let vouch = HopSignature::from_headers(
                Some(&f.log_key_signature),
                Some(&f.log_key_certificate),
            )
            .map_err(|e| e.to_string())?;
            root.verify(&statement, &vouch, seg, accept_time)
                .map_err(|e| format!("the log key is not vouched for by node {seg}: {e}"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
                .map_err(|_| "log key is not an Ed25519 key")?;
            let proof = store::LogProof {
                records: f
                    .records
                    .into_iter()
                    .map(|r| store::LogRecord {
                        seq: r.seq,
                        at: r.at,
                        message_id: r.message_id,
                        event: r.event,
                        envelope_sha256: r.envelope_sha256,
                        prev_hash: r.prev_hash,
                        hash: r.hash,
                    })
                    .collect(),
                checkpoint: store::Checkpoint {
                    seq: f.checkpoint.seq,
                    hash: f.checkpoint.hash,
                    key_id: f.checkpoint.key_id,
                    signature: hex::decode(&f.checkpoint.signature)
                        .map_err(|_| "checkpoint signature is not hex")?,
                    stamp: None,
                },
            };
            let id = env.header.message_id.to_string();
            store::log::verify_proof(&proof, &id, &store::log::hex_sha256(envelope_bytes), &key)?;
            // The checkpoint's time stamp, when it has one: the log up to it existed by then.
            let stamped = match (&f.checkpoint.timestamp, &f.checkpoint.timestamp_proof) {
                (Some(t), Some(p)) => {
                    let token = B64
                        .decode(t)
                        .map_err(|e| format!("checkpoint time stamp: {e}"))?;
                    let path = tsa::batch::Proof::from_text(p).map_err(|e| e.to_string())?;
                    let hash: [u8; 32] = hex::decode(&proof.checkpoint.hash)
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or("checkpoint hash is not a hash")?;
                    let digest =
                        tsa::sha256(&store::log::checkpoint_message(proof.checkpoint.seq, &hash));
                    let v = tsa::batch::verify_batched(
                        &token,
                        &digest,
                        &path,
                        std::slice::from_ref(&anchors.federation_root),
                    )
                    .map_err(|e| format!("checkpoint time stamp: {e}"))?;
                    format!(", time-stamped {}", rfc3339(v.time))
                }
                (None, None) => String::new(),
                _ => return Err("checkpoint time stamp without its path".into()),
            };
            Ok(format!(
                "record {} of node {seg}'s log, chained to the checkpoint at {} it signed{stamped}",
                proof.records[0].seq, proof.checkpoint.seq
            ))
        })(),
    );
    out
}

fn read_zip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a ZIP container: {e}"))?;
    if z.len() > FILES.len() {
        return Err(format!(
            "{} files; a container has at most {}",
            z.len(),
            FILES.len()
        ));
    }
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| e.to_string())?;
        let name = f
            .name()
            .map_err(|e| format!("unreadable file name: {e}"))?
            .into_owned();
        let Some((_, max)) = FILES.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unexpected file {name:?} in the container"));
        };
        if i == 0 && name != "mimetype" {
            return Err("the first file must be mimetype".into());
        }
        if f.size() > *max as u64 {
            return Err(format!("{name} is larger than {max} bytes"));
        }
        let mut body = Vec::new();
        // The declared size can lie; never read more than the bound.
        (&mut f)
            .take(*max as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("{name}: {e}"))?;
        if body.len() > *max {
            return Err(format!("{name} is larger than {max} bytes"));
        }
        out.insert(name, body);
    }
    if out.get("mimetype").map(Vec::as_slice) != Some(MIMETYPE.as_bytes()) {
        return Err(format!("mimetype is not {MIMETYPE}"));
    }
    Ok(out)
}

fn subject(cert: &[u8]) -> String {
    x509_parser::parse_x509_certificate(cert)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "an unreadable certificate".into())
}

/// `cert` issued by `ca` and valid at `at`.
fn issued_by(cert: &[u8], ca: &[u8], at: OffsetDateTime) -> Result<(), String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).map_err(|e| e.to_string())?;
    let (_, a) = x509_parser::parse_x509_certificate(ca).map_err(|e| e.to_string())?;
    if c.issuer() != a.subject() || c.verify_signature(Some(a.public_key())).is_err() {
        return Err(format!(
            "the receipt's signer {} was not issued by the TTP CA {}",
            c.subject(),
            a.subject()
        ));
    }
    let v = c.validity();
    if at < v.not_before.to_datetime() || at > v.not_after.to_datetime() {
        return Err("the receipt's certificate was not valid when the message was accepted".into());
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
