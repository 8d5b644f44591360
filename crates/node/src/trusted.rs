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
    list: std::sync::RwLock<Result<Arc<ttp::TrustList>, String>>,
    /// Where the list is kept, and the certificate it must be signed with.
    path: std::path::PathBuf,
    pinned: Vec<u8>,
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
        let pinned = pem_file(&cfg.trust_list_signer)?;
        let list = (|| {
            let xml = std::fs::read_to_string(&cfg.trust_list)
                .map_err(|e| format!("{}: {e}", cfg.trust_list.display()))?;
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
                    .map_err(|e| format!("TTP key: {e}"))?,
            )),
            (None, None) => None,
            _ => return Err("[ttp] needs both key and cert, or neither".into()),
        };
        Ok(Trust {
            list: std::sync::RwLock::new(list.map(Arc::new)),
            path: cfg.trust_list.clone(),
            pinned,
            signer,
        })
    }

    /// The list in use, or why there is none.
    pub fn current(&self) -> Result<Arc<ttp::TrustList>, String> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a signed list received from the publisher: it must verify against the pinned
    /// signer, not be expired, and be newer than the one in use. It is written to disk first
    /// (a new file renamed over the old), so a crash leaves the old list or the new one.
    /// Answers the version now in use.
    pub fn install(&self, xml: &str, now: OffsetDateTime) -> Result<u64, String> {
        let list = ttp::TrustList::verify(xml, &dsig::Verifiers::national(), &self.pinned, now)
            .map_err(|e| e.to_string())?;
        if let Ok(cur) = self.current()
            && cur.version >= list.version
        {
            return Ok(cur.version);
        }
        let tmp = self.path.with_extension("xml.new");
        std::fs::write(&tmp, xml).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let version = list.version;
        *self.list.write().unwrap_or_else(|p| p.into_inner()) = Ok(Arc::new(list));
        tracing::info!(version, "trust list installed");
        Ok(version)
    }

    /// The signed list as kept on disk, when it verifies (what a publisher sends).
    fn signed_xml(&self, now: OffsetDateTime) -> Option<(u64, String)> {
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
    ) -> Result<String, String> {
        let list = self.current().map_err(|e| format!("trust list: {e}"))?;
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
        let receipt = ttp::check(document, moment, now, &list, &dsig::Verifiers::national());
        receipt.sign(signer.as_ref()).map_err(|e| e.to_string())
    }
}

// The trust list travels in P.CC.10 beside reference data (processes/P.CC.10).
use crate::reference::submission;
const TRN_REQUEST: &str = "P.CC.10.TRN.004";
const MSG_REQUEST: &str = "P.CC.10.MSG.009";
const MSG_LIST: &str = "P.CC.10.MSG.008";
const TRN_NOTICE: &str = "P.CC.10.TRN.005";
const MSG_NOTICE: &str = "P.CC.10.MSG.010";

/// The trust-list service of a node, a built-in IS on the adapter path: the publisher sends
/// each new list to its subscribers and answers requests; a subscriber asks when it holds no
/// valid list or its list runs out within 14 days, and installs what verifies.
pub async fn run_service(
    node: std::sync::Arc<crate::Node>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (Some(me), Some(cfg), Some(trust)) = (
        node.config().trust_service(),
        node.config().ttp.clone(),
        node.trust(),
    ) else {
        return;
    };
    let refresh = std::time::Duration::from_secs(cfg.refresh_secs.max(1));
    let mut next_ask = tokio::time::Instant::now();
    let mut sent: Option<u64> = None;
    let mut warned_day = None;
    while !*stop.borrow() {
        let now = node.now();
        if !cfg.subscribers.is_empty()
            && let Some((version, xml)) = trust.signed_xml(now)
            && sent != Some(version)
        {
            let mut all = true;
            for s in &cfg.subscribers {
                let sub = submission(s, TRN_NOTICE, MSG_NOTICE, xml.clone(), None);
                if let Err(e) = node.submit(&me, sub).await {
                    tracing::warn!(subscriber = %s, error = %e, "trust list not sent");
                    all = false;
                }
            }
            if all {
                sent = Some(version);
            }
        }
        let current = trust.current();
        if let Some(p) = &cfg.publisher
            && tokio::time::Instant::now() >= next_ask
        {
            next_ask = tokio::time::Instant::now() + refresh;
            let have = current.as_ref().ok().filter(|l| !l.expires_within(now, 14));
            if have.is_none() {
                let body = format!("<tl:TrustListRequest xmlns:tl=\"{}\"/>", ttp::TL_NS);
                if let Err(e) = node
                    .submit(&me, submission(p, TRN_REQUEST, MSG_REQUEST, body, None))
                    .await
                {
                    tracing::warn!(publisher = %p, error = %e, "trust list not requested");
                }
            }
        }
        // Well before it runs out, once a day, the operator hears of it.
        if let Ok(l) = &current
            && l.expires_within(now, 14)
            && warned_day != Some(now.date())
        {
            warned_day = Some(now.date());
            tracing::warn!(version = l.version, next_update = %l.next_update, "the trust list expires within 14 days");
        }
        let Some(items) = next_items(&node, &me, &mut stop).await else {
            break;
        };
        for it in items {
            handle(&node, &trust, &me, &cfg, &it).await;
            ack(&node, &me, &it).await;
        }
    }
}

async fn handle(
    node: &crate::Node,
    trust: &Trust,
    me: &str,
    cfg: &TtpSection,
    it: &store::InboxItem,
) {
    let Ok(env) = envelope::parse(
        &it.envelope,
        &envelope::ParseOptions::new(envelope::Origin::Any),
    ) else {
        return;
    };
    let envelope::Body::Document(doc) = &env.body else {
        return; // signals about our own messages
    };
    let code = env
        .header
        .cp_action()
        .and_then(|a| a.message_code().map(str::to_owned));
    let now = node.now();
    match code.as_deref() {
        Some(MSG_REQUEST) if !cfg.subscribers.is_empty() => {
            let Some((_, xml)) = trust.signed_xml(now) else {
                tracing::warn!(from = %it.sender, "asked for the trust list, but none here verifies");
                return;
            };
            let answer = submission(&it.sender, TRN_REQUEST, MSG_LIST, xml, Some(it));
            if let Err(e) = node.submit(me, answer).await {
                tracing::warn!(to = %it.sender, error = %e, "trust list not sent");
            }
        }
        Some(MSG_LIST | MSG_NOTICE) if cfg.publisher.as_deref() == Some(it.sender.as_str()) => {
            match trust.install(doc, now) {
                Ok(v) => tracing::debug!(version = v, "trust list received"),
                Err(e) => {
                    tracing::warn!(error = %e, "a trust list from the publisher was refused; the last valid one stays")
                }
            }
        }
        _ => tracing::warn!(from = %it.sender, "unexpected message to the trust service"),
    }
}

/// The largest signed document a receipt request may carry (decoded).
const MAX_REQUEST_DOCUMENT: usize = 8 * 1024 * 1024;
const TTP_NS: &str = "urn:ortaq:ttp-request:v1";

/// The trusted third party as a participant of the node (`EAEU://<SEG>/SR/ttp`, P.TT.01): a
/// request carrying a signed e-document is answered with the signed receipt (P.TT.01.MSG.002);
/// a request it cannot read, or one it cannot judge (no valid trust list), with ERR.
pub async fn run_receipts(
    node: std::sync::Arc<crate::Node>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (Some(me), Some(trust)) = (node.config().ttp_participant(), node.trust()) else {
        return;
    };
    while !*stop.borrow() {
        let Some(items) = next_items(&node, &me, &mut stop).await else {
            break;
        };
        for it in items {
            answer_request(&node, &trust, &me, &it).await;
            ack(&node, &me, &it).await;
        }
    }
}

async fn answer_request(node: &crate::Node, trust: &Arc<Trust>, me: &str, it: &store::InboxItem) {
    let opts = envelope::ParseOptions::new(envelope::Origin::Any);
    let Ok(env) = envelope::parse(&it.envelope, &opts) else {
        return;
    };
    let envelope::Body::Document(doc) = &env.body else {
        return; // signals about our own answers
    };
    let now = node.now();
    let result = read_request(doc).map(|(signed, moment)| (signed, moment.unwrap_or(now), now));
    let answer = match result {
        Ok((signed, moment, now)) => {
            let trust = trust.clone();
            tokio::task::spawn_blocking(move || trust.receipt(&signed, moment, now))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
        Err(e) => Err(e),
    };
    let cp = env.header.cp_action();
    let sent = match answer {
        Ok(receipt) => {
            let s = crate::Submission {
                to: it.sender.clone(),
                process: "P.TT.01".into(),
                version: cp.map(|c| c.version.clone()).unwrap_or_default(),
                procedure: "P.TT.01.PRC.001".into(),
                transaction: "P.TT.01.TRN.001".into(),
                message: "P.TT.01.MSG.002".into(),
                body: receipt,
                relates_to: Some(it.message_id.clone()),
                conversation_id: it.conversation_id.clone(),
                ..Default::default()
            };
            node.submit(me, s).await.map(|_| ())
        }
        Err(why) => {
            let me_addr = match envelope::Address::parse(me) {
                Ok(a) => a,
                Err(e) => return tracing::error!(error = %e, "TTP participant address"),
            };
            let err = envelope::SignalError {
                code: envelope::ErrorCode::DataError,
                description: format!("Квитанция не выдана: {why}"),
                details: Some(format!("No receipt: {why}")),
                edoc_id: None,
                reference: None,
            };
            match envelope::Envelope::signal_for(
                &env.header,
                me_addr,
                envelope::Signal::err(node.now(), vec![err]),
            ) {
                Ok(e) => node
                    .submit_envelope(me, e.to_xml().as_bytes())
                    .await
                    .map(|_| ())
                    .map_err(|(_, e)| e),
                Err(e) => return tracing::error!(error = %e, "TTP participant ERR"),
            }
        }
    };
    if let Err(e) = sent {
        tracing::warn!(to = %it.sender, error = %e, "TTP answer not sent");
    }
}

/// The signed document and the moment out of a `ttp:ReceiptRequest`.
fn read_request(doc: &str) -> Result<(String, Option<OffsetDateTime>), String> {
    use base64::Engine as _;
    let x = roxmltree::Document::parse(doc).map_err(|e| format!("unreadable request: {e}"))?;
    let root = x.root_element();
    if root.tag_name().namespace() != Some(TTP_NS) || root.tag_name().name() != "ReceiptRequest" {
        return Err("not a ttp:ReceiptRequest".into());
    }
    let moment = root
        .attribute("moment")
        .map(|m| {
            OffsetDateTime::parse(m, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("moment {m:?}: {e}"))
        })
        .transpose()?;
    let b64: String = root
        .children()
        .find(|n| n.tag_name().name() == "Document")
        .and_then(|n| n.text())
        .ok_or("no ttp:Document")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if b64.len() > MAX_REQUEST_DOCUMENT / 3 * 4 + 4 {
        return Err("the document is too large".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("ttp:Document is not base64: {e}"))?;
    let signed = String::from_utf8(bytes).map_err(|_| "the document is not UTF-8".to_owned())?;
    Ok((signed, moment))
}

/// The next messages for a built-in participant (waiting up to a second); an empty batch after
/// a pause when the inbox could not be read; None once the node stops.
async fn next_items(
    node: &crate::Node,
    me: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Vec<store::InboxItem>> {
    let items = tokio::select! {
        r = node.inbox(me, 0, 20, std::time::Duration::from_secs(1)) => r,
        _ = stop.changed() => return None,
    };
    match items {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::error!(participant = %me, error = %e, "inbox");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Some(Vec::new())
        }
    }
}

async fn ack(node: &crate::Node, me: &str, it: &store::InboxItem) {
    if let Err(e) = node.ack(me, &it.message_id).await {
        tracing::error!(participant = %me, error = %e, "ack");
    }
}
