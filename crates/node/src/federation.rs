//! What a node needs to exchange with other nodes, loaded once at start: its peers and their
//! clients, the routes to other segments, the keys it signs with and the root it verifies
//! against, and the peer whose time-stamp authority it uses. The receiving endpoint and the
//! sending loops that use it are in `peers`.
//!
//! Between nodes an envelope travels as its exact bytes plus the detached signature of the
//! node that first accepted it (`transport::hop`). A relay (the EEC node) stores and forwards
//! both unchanged, so the destination checks the origin's signature itself: a relay cannot
//! alter what it relays. A receiving node checks, before storing anything, that the sender
//! address belongs to the TLS peer (or to a segment that peer relays for), that the signature
//! is the sender segment's node's and covers these bytes, and every header rule. It answers
//! with a signed RCV only after its commit; a repeated MessageID gets the original RCV.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use envelope::Segment;
use rand::Rng;
use store::NodeSignature;
use transport::client::PeerClient;
use transport::hop::{HopSigner, HopVerifier};

use crate::NodeError;
use crate::config::{DeliverySection, FederationSection};

/// Where peers post envelopes.
pub const ENVELOPE_PATH: &str = "/v1/federation/envelope";
/// RFC 3161 for the other nodes, on the mutual-TLS listener.
pub const TSA_PATH: &str = "/v1/federation/tsa";
pub(crate) const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

pub(crate) struct Peer {
    pub(crate) client: PeerClient,
    pub(crate) relays_for: HashSet<Segment>,
}

/// What a node needs to exchange with other nodes, loaded once at start.
pub struct Federation {
    pub listen: SocketAddr,
    pub(crate) relay: bool,
    pub(crate) signer: HopSigner,
    pub(crate) verifier: HopVerifier,
    pub(crate) server_tls: Arc<rustls::ServerConfig>,
    pub(crate) peers: HashMap<Segment, Peer>,
    pub(crate) routes: BTreeMap<String, Segment>,
    pub(crate) delivery: DeliverySection,
    /// The federation root (DER), the anchor of every token a peer's TSA gives us.
    pub(crate) root: Vec<u8>,
    timestamps_from: Option<Segment>,
}

fn startup(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Startup(format!("{what}: {e}"))
}

impl Federation {
    /// Opens the federation's keys and peers; TLS and hop signatures refuse what `revoked`
    /// holds at the moment of each check.
    pub fn open(
        f: &FederationSection,
        d: &DeliverySection,
        revoked: Arc<transport::Revoked>,
    ) -> Result<Federation, NodeError> {
        let files = transport::TlsFiles {
            ca: f.root.clone(),
            cert: f.tls_cert.clone(),
            key: f.tls_key.clone(),
        };
        let client_tls = transport::client_config_revoking(&files, revoked.clone())
            .map_err(|e| startup("TLS client", e))?;
        let timeout = Duration::from_secs(d.request_timeout_secs.max(1));
        let mut peers = HashMap::new();
        for p in &f.peers {
            let seg = Segment::parse(&p.segment).map_err(|e| startup("peer", e))?;
            let relays_for = p
                .relays_for
                .iter()
                .map(|s| Segment::parse(s))
                .collect::<Result<_, _>>()
                .map_err(|e| startup("relays_for", e))?;
            let client = PeerClient::new(client_tls.clone(), seg, &p.address, timeout)
                .map_err(|e| startup("peer", e))?;
            peers.insert(seg, Peer { client, relays_for });
        }
        let routes = f
            .routes
            .iter()
            .map(|(k, v)| Ok((k.clone(), Segment::parse(v)?)))
            .collect::<Result<_, String>>()
            .map_err(|e| startup("routes", e))?;
        let root = std::fs::read_to_string(&f.root)
            .map_err(|e| startup("federation root", e))
            .and_then(|p| trust::pki::pem_to_der(&p).map_err(|e| startup("federation root", e)))?;
        let timestamps_from = f
            .timestamps_from
            .as_deref()
            .map(Segment::parse)
            .transpose()
            .map_err(|e| startup("timestamps_from", e))?;
        if let Some(t) = timestamps_from
            && !peers.contains_key(&t)
        {
            return Err(startup("timestamps_from", format!("{t} is not a peer")));
        }
        Ok(Federation {
            root,
            timestamps_from,
            listen: f.listen,
            relay: f.relay,
            signer: HopSigner::from_files(&f.signing_key, &f.signing_cert)
                .map_err(|e| startup("signing key", e))?,
            verifier: HopVerifier::from_root_file(&f.root)
                .map_err(|e| startup("federation root", e))?
                .revoking(revoked.clone()),
            server_tls: transport::server_config_revoking(&files, revoked)
                .map_err(|e| startup("TLS server", e))?,
            peers,
            routes,
            delivery: d.clone(),
        })
    }

    pub fn peer_segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.peers.keys().copied()
    }

    /// The peer to hand a message for segment `dest` to: an explicit route, else the peer
    /// itself when it is one, else the default route (`*`).
    pub fn next_hop(&self, dest: Segment) -> Option<Segment> {
        let via = self
            .routes
            .get(dest.as_str())
            .copied()
            .or_else(|| self.peers.contains_key(&dest).then_some(dest))
            .or_else(|| self.routes.get("*").copied())?;
        self.peers.contains_key(&via).then_some(via)
    }

    /// Signs envelope bytes as this node; the result is stored and travels with them.
    pub fn sign(&self, bytes: &[u8]) -> Result<NodeSignature, NodeError> {
        let sig = self
            .signer
            .sign(bytes)
            .map_err(|e| NodeError::Internal(format!("signing: {e}")))?;
        Ok(NodeSignature {
            header: sig.to_headers().0,
            certificate: sig.certificate,
        })
    }

    pub(crate) fn backoff(&self, attempts: i64) -> Duration {
        let d = &self.delivery;
        let exp = attempts.clamp(1, 30) as u32 - 1;
        let ms = d
            .retry_min_ms
            .saturating_mul(1u64 << exp.min(20))
            .min(d.retry_max_ms);
        // Full jitter over the upper half: peers coming back are not hit by every node at once.
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }
}

impl Federation {
    /// One token from the configured peer's authority over `digest`, checked against the
    /// federation root and a fresh nonce; None when no peer is configured for that.
    pub(crate) async fn remote_stamp(&self, digest: &[u8; 32]) -> Option<Result<Vec<u8>, String>> {
        let peer = self.timestamps_from?;
        let link = self.peers.get(&peer)?;
        Some(
            async {
                let mut nonce = [0u8; 8];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
                nonce[0] |= 0x01;
                nonce[0] &= 0x7f;
                let req = tsa::request(digest, Some(&nonce)).map_err(|e| e.to_string())?;
                let resp = link
                    .client
                    .post(
                        TSA_PATH,
                        "application/timestamp-query",
                        &[],
                        Bytes::from(req),
                    )
                    .await
                    .map_err(|e| format!("{peer}: {e}"))?;
                if resp.status != 200 {
                    return Err(format!("{peer} answered HTTP {}", resp.status));
                }
                let token = tsa::token_from_response(&resp.body).map_err(|e| e.to_string())?;
                tsa::verify(
                    &token,
                    digest,
                    Some(&nonce),
                    std::slice::from_ref(&self.root),
                )
                .map_err(|e| format!("{peer}'s token: {e}"))?;
                Ok(token)
            }
            .await,
        )
    }
}
