//! The node in cross-border sign-in: the keys of the federation (its signing key, the root and
//! the trust list's revocations) and the identity providers the trust list in use names, as
//! the pages reach them through [`adapter::Identity`].

use std::sync::Arc;

use adapter::{HoldingsError, NodeJws};
use envelope::Segment;
use transport::hop::{HopAlgorithm, HopSignature};

use crate::Node;

/// [`adapter::Identity`] of a node with a federation and a trust list.
pub struct Identity {
    node: Arc<Node>,
}

impl Node {
    /// The node's identity for cross-border sign-in; None without `[federation]` and `[ttp]`.
    pub fn identity(self: &Arc<Self>) -> Option<Identity> {
        (self.fed.is_some() && self.trust().is_some()).then(|| Identity { node: self.clone() })
    }
}

impl adapter::Identity for Identity {
    fn segment(&self) -> String {
        self.node.segment().as_str().to_owned()
    }

    fn sign(&self, bytes: &[u8]) -> Result<NodeJws, HoldingsError> {
        let fed = self.node.fed.as_ref().ok_or_else(no_federation)?;
        // JWS names EdDSA for Ed25519 (RFC 8037); ECDSA's JWS form (r||s) is not what the
        // node's signer writes (ASN.1), so a P-256 node key signs no ID tokens.
        if fed.signer.algorithm() != HopAlgorithm::Ed25519 {
            return Err(HoldingsError::Refused(
                "cross-border sign-in needs an Ed25519 node signing key".into(),
            ));
        }
        let sig = fed
            .signer
            .sign(bytes)
            .map_err(|e| HoldingsError::Unavailable(format!("signing: {e}")))?;
        Ok(NodeJws {
            alg: "EdDSA",
            signature: sig.value,
            certificate: sig.certificate,
        })
    }

    fn public_key(&self) -> Result<(Vec<u8>, Vec<u8>), HoldingsError> {
        let fed = self.node.fed.as_ref().ok_or_else(no_federation)?;
        if fed.signer.algorithm() != HopAlgorithm::Ed25519 {
            return Err(HoldingsError::Refused(
                "cross-border sign-in needs an Ed25519 node signing key".into(),
            ));
        }
        Ok((fed.signer.public_key(), fed.signer.certificate().to_vec()))
    }

    fn verify(
        &self,
        segment: &str,
        bytes: &[u8],
        signature: &[u8],
        certificate: &[u8],
    ) -> Result<(), HoldingsError> {
        let fed = self.node.fed.as_ref().ok_or_else(no_federation)?;
        let seg = Segment::parse(segment).map_err(HoldingsError::Refused)?;
        let sig = HopSignature {
            algorithm: HopAlgorithm::Ed25519,
            value: signature.to_vec(),
            certificate: certificate.to_vec(),
        };
        fed.verifier
            .verify(bytes, &sig, seg, self.node.now())
            .map_err(|e| HoldingsError::Refused(e.to_string()))
    }

    fn providers(&self) -> Result<Vec<(String, String)>, HoldingsError> {
        let trust = self.node.trust().ok_or_else(no_federation)?;
        let list = trust
            .current()
            .map_err(|e| HoldingsError::Unavailable(e.to_string()))?;
        Ok(list
            .providers
            .iter()
            .map(|p| (p.segment.clone(), p.issuer.clone()))
            .collect())
    }
}

fn no_federation() -> HoldingsError {
    HoldingsError::Unavailable("the node has no federation or trust list".into())
}
