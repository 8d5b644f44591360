//! Batching: one time-stamp token over the root of a hash tree of many records, and for each
//! record the path that leads from it to that root (as X-Road stamps its message log).
//!
//! Leaves and inner nodes are hashed with distinct prefixes (0x00 and 0x01, as in RFC 6962),
//! so no inner node can be passed off as a record. A level with an odd number of nodes
//! carries its last node up unchanged.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Authority, TsaError, Verified};

/// One step of a path: the sibling's hash and on which side it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub sibling_on_left: bool,
    pub hash: [u8; 32],
}

/// The path from one record to the root of its batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proof {
    pub index: usize,
    pub count: usize,
    pub path: Vec<Step>,
}

/// A record's share of a batch: the batch's token and the record's path to the stamped root.
#[derive(Debug, Clone)]
pub struct BatchStamp {
    pub token: Arc<Vec<u8>>,
    pub proof: Proof,
}

fn leaf(d: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(d);
    h.finalize().into()
}

fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// The root over `digests` and every record's path to it. Empty input has no tree.
pub fn tree(digests: &[[u8; 32]]) -> Option<([u8; 32], Vec<Proof>)> {
    if digests.is_empty() {
        return None;
    }
    let count = digests.len();
    let mut proofs: Vec<Proof> = (0..count)
        .map(|index| Proof {
            index,
            count,
            path: Vec::new(),
        })
        .collect();
    // position of each record's ancestor in the current level
    let mut pos: Vec<usize> = (0..count).collect();
    let mut level: Vec<[u8; 32]> = digests.iter().map(leaf).collect();
    while level.len() > 1 {
        for (rec, p) in pos.iter_mut().enumerate() {
            let sibling = *p ^ 1;
            if sibling < level.len() {
                proofs[rec].path.push(Step {
                    sibling_on_left: sibling < *p,
                    hash: level[sibling],
                });
            }
            *p /= 2;
        }
        level = level
            .chunks(2)
            .map(|c| match c {
                [l, r] => node(l, r),
                [only] => *only,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    Some((level[0], proofs))
}

/// The root that `digest` and `proof` lead to.
pub fn root_from(digest: &[u8; 32], proof: &Proof) -> [u8; 32] {
    proof.path.iter().fold(leaf(digest), |acc, s| {
        if s.sibling_on_left {
            node(&s.hash, &acc)
        } else {
            node(&acc, &s.hash)
        }
    })
}

/// Stamps all of `digests` with one token.
pub fn stamp_batch(
    authority: &Authority,
    digests: &[[u8; 32]],
    at: OffsetDateTime,
) -> Result<Vec<BatchStamp>, TsaError> {
    let Some((root, proofs)) = tree(digests) else {
        return Ok(Vec::new());
    };
    let token = Arc::new(authority.stamp(&root, None, at)?);
    Ok(proofs
        .into_iter()
        .map(|proof| BatchStamp {
            token: token.clone(),
            proof,
        })
        .collect())
}

/// Checks a batched stamp of `digest`: the path leads to the root the token covers.
pub fn verify_batched(
    token: &[u8],
    digest: &[u8; 32],
    proof: &Proof,
    trusted: &[Vec<u8>],
) -> Result<Verified, TsaError> {
    crate::verify(token, &root_from(digest, proof), None, trusted)
}

impl Proof {
    /// A line of text: `index/count` then one `L<hex>` or `R<hex>` per step.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}/{}", self.index, self.count);
        for st in &self.path {
            s.push(' ');
            s.push(if st.sibling_on_left { 'L' } else { 'R' });
            for b in st.hash {
                s.push_str(&format!("{b:02x}"));
            }
        }
        s
    }

    pub fn from_text(text: &str) -> Result<Proof, TsaError> {
        let bad = |why: &str| TsaError::Malformed(format!("batch proof: {why}"));
        let mut parts = text.split_ascii_whitespace();
        let (i, n) = parts
            .next()
            .and_then(|h| h.split_once('/'))
            .ok_or_else(|| bad("no index/count"))?;
        let index: usize = i.parse().map_err(|_| bad("index"))?;
        let count: usize = n.parse().map_err(|_| bad("count"))?;
        if index >= count {
            return Err(bad("index beyond count"));
        }
        let mut path = Vec::new();
        for p in parts {
            if path.len() >= 64 {
                return Err(bad("path too long"));
            }
            let (side, h) = p.split_at_checked(1).ok_or_else(|| bad("empty step"))?;
            let sibling_on_left = match side {
                "L" => true,
                "R" => false,
                _ => return Err(bad("a step starts with L or R")),
            };
            if h.len() != 64 || !h.is_ascii() {
                return Err(bad("a step's hash is 64 hex digits"));
            }
            let mut hash = [0u8; 32];
            for (k, b) in hash.iter_mut().enumerate() {
                *b = u8::from_str_radix(&h[2 * k..2 * k + 2], 16).map_err(|_| bad("hex"))?;
            }
            path.push(Step {
                sibling_on_left,
                hash,
            });
        }
        Ok(Proof { index, count, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_leads_to_the_root_and_no_other_record_does() {
        for n in [1usize, 2, 3, 5, 8, 13, 100] {
            let digests: Vec<[u8; 32]> = (0..n).map(|i| crate::sha256(&i.to_be_bytes())).collect();
            let (root, proofs) = tree(&digests).unwrap();
            for (d, p) in digests.iter().zip(&proofs) {
                assert_eq!(root_from(d, p), root, "n={n} index={}", p.index);
                assert_eq!(Proof::from_text(&p.to_text()).unwrap(), *p);
                let other = crate::sha256(b"not a record");
                assert_ne!(root_from(&other, p), root);
            }
        }
        assert!(tree(&[]).is_none());
    }
}
