//! The trusted third party service of a node (`[ttp]`): the trust list it verified at start
//! (pinned signer, not expired), and receipts: `POST /v1/ttp/receipts` checks a signed
//! e-document as of a moment and answers with a receipt this node signs. The trust-list
//! distribution service reaches the list only through [`adapter::TrustListHoldings`].

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::TtpSection;

/// Why the trust service cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A file of `[ttp]` could not be read or written.
    #[error("{0}")]
    File(String),
    /// There is no list to use: none verified, it expired, or it is not newer.
    #[error("{0}")]
    List(String),
    /// No receipt can be signed: no key here, or the key is unusable.
    #[error("{0}")]
    Key(String),
}

/// What the node holds for its trust space.
pub struct Trust {
    /// The verified list, or why there is none (never used silently when bad).
    list: std::sync::RwLock<Result<Arc<ttp::TrustList>, TrustError>>,
    /// Where the list is kept, and the certificate it must be signed with.
    path: std::path::PathBuf,
    pinned: Vec<u8>,
    signer: Option<Arc<dsig::KeySigner>>,
    /// The federation certificates the list in use revokes, shared with the node's TLS and
    /// hop verifiers.
    revoked: Arc<transport::Revoked>,
}

/// The DER contents of the first PEM block of a file.
fn pem_file(path: &Path) -> Result<Vec<u8>, TrustError> {
    let text =
        std::fs::read(path).map_err(|e| TrustError::File(format!("{}: {e}", path.display())))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| TrustError::File(format!("{}: not PEM: {e}", path.display())))?;
    Ok(pem.contents)
}

impl Trust {
    /// Reads and verifies the trust list, and the receipt key when one is configured. A bad
    /// list leaves the service refusing with the reason; a bad key stops the node.
    pub fn load(
        cfg: &TtpSection,
        now: OffsetDateTime,
        revoked: Arc<transport::Revoked>,
    ) -> Result<Trust, TrustError> {
        let pinned = pem_file(&cfg.trust_list_signer)?;
        let list = (|| {
            let xml = std::fs::read_to_string(&cfg.trust_list)
                .map_err(|e| TrustError::List(format!("{}: {e}", cfg.trust_list.display())))?;
            ttp::TrustList::verify(&xml, &dsig::Verifiers::national(), &pinned, now)
                .map_err(|e| TrustError::List(e.to_string()))
        })();
        match &list {
            Ok(l) if l.expires_within(now, 14) => tracing::warn!(
                version = l.version,
                next_update = %l.next_update,
                "the trust list expires within 14 days; publish a new one"
            ),
            Ok(l) => tracing::info!(
                version = l.version,
                states = l.states.len(),
                "trust list verified"
            ),
            Err(e) if cfg.publisher.is_some() => {
                tracing::info!(reason = %e, "no valid trust list here yet; asking the publisher")
            }
            Err(e) => {
                tracing::error!(error = %e, "trust list refused; no signature checks until a valid one is installed")
            }
        }
        let signer = match (&cfg.key, &cfg.cert) {
            (Some(k), Some(c)) => Some(Arc::new(
                dsig::KeySigner::from_pkcs8(&pem_file(k)?, &pem_file(c)?)
                    .map_err(|e| TrustError::Key(format!("TTP key: {e}")))?,
            )),
            (None, None) => None,
            _ => {
                return Err(TrustError::Key(
                    "[ttp] needs both key and cert, or neither".into(),
                ));
            }
        };
        if let Ok(l) = &list {
            revoked.replace(l.revoked_nodes.iter().copied());
        }
        Ok(Trust {
            list: std::sync::RwLock::new(list.map(Arc::new)),
            path: cfg.trust_list.clone(),
            pinned,
            signer,
            revoked,
        })
    }

    /// The list in use, or why there is none.
    pub fn current(&self) -> Result<Arc<ttp::TrustList>, TrustError> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a signed list received from the publisher: it must verify against the pinned
    /// signer, not be expired, and be newer than the one in use. It is written to disk first
    /// (a new file renamed over the old), so a crash leaves the old list or the new one.
    /// Answers the version now in use.
    pub fn install(&self, xml: &str, now: OffsetDateTime) -> Result<u64, TrustError> {
        let list = ttp::TrustList::verify(xml, &dsig::Verifiers::national(), &self.pinned, now)
            .map_err(|e| TrustError::List(e.to_string()))?;
        if let Ok(cur) = self.current()
            && cur.version >= list.version
        {
            return Ok(cur.version);
        }
        replace_durably(&self.path, xml.as_bytes())
            .map_err(|e| TrustError::File(format!("{}: {e}", self.path.display())))?;
        let version = list.version;
        self.revoked.replace(list.revoked_nodes.iter().copied());
        tracing::info!(
            version,
            revoked_node_certificates = list.revoked_nodes.len(),
            "trust list installed"
        );
        *self.list.write().unwrap_or_else(|p| p.into_inner()) = Ok(Arc::new(list));
        Ok(version)
    }

    /// The signed list as kept on disk, when it verifies (what a publisher sends).
    pub fn signed_xml(&self, now: OffsetDateTime) -> Option<(u64, String)> {
        let xml = std::fs::read_to_string(&self.path).ok()?;
        let l =
            ttp::TrustList::verify(&xml, &dsig::Verifiers::national(), &self.pinned, now).ok()?;
        Some((l.version, xml))
    }

    /// Whether this node signs receipts (it has the `[ttp]` key).
    pub fn issues_receipts(&self) -> bool {
        self.signer.is_some()
    }

    /// Checks `document` as of `moment` and returns the signed receipt.
    pub fn receipt(
        &self,
        document: &str,
        moment: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<String, TrustError> {
        let list = self
            .current()
            .map_err(|e| TrustError::List(format!("trust list: {e}")))?;
        if list.next_update <= now {
            return Err(TrustError::List(format!(
                "the trust list (version {}) expired at {}",
                list.version, list.next_update
            )));
        }
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| TrustError::Key("this node issues no receipts (no [ttp] key)".into()))?;
        let receipt = ttp::check(document, moment, now, &list, &dsig::Verifiers::national());
        receipt
            .sign(signer.as_ref())
            .map_err(|e| TrustError::Key(e.to_string()))
    }
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves either the old file or the
/// new one, complete: a temporary file beside it, written and synced, renamed over it, and the
/// folder synced so the rename itself is on disk.
fn replace_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = path.with_extension(format!("new-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(&dir)?.sync_all()
}

/// The node's trust list as the distribution service sees it.
pub struct TrustList {
    pub(crate) trust: Arc<Trust>,
    pub(crate) clock: crate::Clock,
}

impl adapter::TrustListHoldings for TrustList {
    fn signed(&self) -> Option<(u64, String)> {
        self.trust.signed_xml((self.clock)())
    }

    fn current(&self) -> Result<(u64, OffsetDateTime), adapter::HoldingsError> {
        self.trust
            .current()
            .map(|l| (l.version, l.next_update))
            .map_err(|e| adapter::HoldingsError::Refused(e.to_string()))
    }

    fn install(&self, xml: &str) -> Result<u64, adapter::HoldingsError> {
        self.trust
            .install(xml, (self.clock)())
            .map_err(|e| match e {
                TrustError::File(m) => adapter::HoldingsError::Unavailable(m),
                e => adapter::HoldingsError::Refused(e.to_string()),
            })
    }
}
