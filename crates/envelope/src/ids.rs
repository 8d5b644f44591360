//! `urn:uuid:` identifiers (MessageID, RelatesTo, ConversationID, ProcedureID, TrackID).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::{EnvelopeError, Rule};

/// A UUID written as a URI, `urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
///
/// Parsing accepts upper- or lower-case hex (RFC 4122 says input is case-insensitive) and
/// requires the hyphenated form; printing is always lower case, so two spellings of one
/// identifier compare equal, which is what duplicate detection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UrnUuid(Uuid);

impl UrnUuid {
    /// A fresh random (version 4) identifier.
    pub fn new_v4() -> Self {
        UrnUuid(Uuid::new_v4())
    }

    /// An identifier derived from `parts` (SHA-256 of them, NUL-separated), so that whoever
    /// makes the same answer twice (a node repeating an RCV, an IS repeating a response after a
    /// crash) gives it the same identifier, and a repeat is recognised as a duplicate.
    pub fn derived(parts: &[&str]) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        UrnUuid(uuid::Builder::from_random_bytes(b).into_uuid())
    }

    pub fn from_uuid(u: Uuid) -> Self {
        UrnUuid(u)
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }

    /// Parses `s`; on failure the error names `rule`, so callers report which header was wrong.
    pub fn parse_for(s: &str, rule: Rule) -> Result<Self, EnvelopeError> {
        let rest = s
            .strip_prefix("urn:uuid:")
            .ok_or_else(|| EnvelopeError::new(rule, format!("{s:?} is not a urn:uuid: URI")))?;
        if rest.len() != 36 {
            return Err(EnvelopeError::new(
                rule,
                format!("{s:?} is not a hyphenated UUID"),
            ));
        }
        Uuid::try_parse(rest)
            .map(UrnUuid)
            .map_err(|_| EnvelopeError::new(rule, format!("{s:?} is not a valid UUID")))
    }
}

impl fmt::Display for UrnUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "urn:uuid:{}", self.0.hyphenated())
    }
}

impl FromStr for UrnUuid {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UrnUuid::parse_for(s, Rule::MessageId)
    }
}
