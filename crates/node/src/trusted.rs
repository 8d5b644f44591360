//! The trusted third party service of a node (`[ttp]`): the trust list it verified at start
//! (pinned signer, not expired), and receipts: `POST /v1/ttp/receipts` checks a signed
//! e-document as of a moment and answers with a receipt this node signs.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::TtpSection;

/// What the node holds for its trust space.
pub struct Trust {
    /// The verified list, or why there is none (never used silently when bad).
    pub list: Result<Arc<ttp::TrustList>, String>,
    signer: Option<Arc<dsig::KeySigner>>,
}

/// The DER contents of the first PEM block of a file.
fn pem_file(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
    Ok(pem.contents)
}

impl Trust {
    /// Reads and verifies the trust list, and the receipt key when one is configured. A bad
    /// list leaves the service refusing with the reason; a bad key stops the node.
    pub fn load(cfg: &TtpSection, now: OffsetDateTime) -> Result<Trust, String> {
        let list = (|| {
            let xml = std::fs::read_to_string(&cfg.trust_list)
                .map_err(|e| format!("{}: {e}", cfg.trust_list.display()))?;
            let pinned = pem_file(&cfg.trust_list_signer)?;
            ttp::TrustList::verify(&xml, &dsig::Verifiers::national(), &pinned, now)
                .map_err(|e| e.to_string())
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
            Err(e) => {
                tracing::error!(error = %e, "trust list refused; no signature checks until a valid one is installed")
            }
        }
        let signer = match (&cfg.key, &cfg.cert) {
            (Some(k), Some(c)) => Some(Arc::new(
                dsig::KeySigner::from_pkcs8(&pem_file(k)?, &pem_file(c)?)
                    .map_err(|e| format!("TTP key: {e}"))?,
            )),
            (None, None) => None,
            _ => return Err("[ttp] needs both key and cert, or neither".into()),
        };
        Ok(Trust {
            list: list.map(Arc::new),
            signer,
        })
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
    ) -> Result<String, String> {
        let list = self.list.as_ref().map_err(|e| format!("trust list: {e}"))?;
        if list.next_update <= now {
            return Err(format!(
                "the trust list (version {}) expired at {}",
                list.version, list.next_update
            ));
        }
        let signer = self
            .signer
            .as_ref()
            .ok_or("this node issues no receipts (no [ttp] key)")?;
        let receipt = ttp::check(document, moment, now, list, &dsig::Verifiers::national());
        receipt.sign(signer.as_ref()).map_err(|e| e.to_string())
    }
}
