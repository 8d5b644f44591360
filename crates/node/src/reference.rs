//! Reference data held by a node: import (check everything, show the diff, publish all or
//! nothing as the next immutable version) and the index of the latest versions, rebuilt from
//! the store at start and after each import. A stored version whose bytes no longer match its
//! hash is refused, never served.

use nsi::format::{self, Format};
use nsi::model::{Content, Problem};
use store::{NsiVersion, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Problem>),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Corrupt(String),
}

/// What an import found and did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub code: String,
    pub kind: &'static str,
    pub sha256: String,
    pub diff: nsi::diff::Diff,
    /// The version published (and whether it is new), or None for a dry run.
    pub version: Option<(i64, bool)>,
    pub entries: usize,
}

/// Parses and checks a stored version.
pub fn decode(v: &NsiVersion) -> Result<Content, ReferenceError> {
    let sha = Content::sha256_of(&v.content);
    if sha != v.sha256 {
        return Err(ReferenceError::Corrupt(format!(
            "{} version {}: content hash {sha} does not match the recorded {}",
            v.code, v.version, v.sha256
        )));
    }
    serde_json::from_slice(&v.content)
        .map_err(|e| ReferenceError::Corrupt(format!("{} version {}: {e}", v.code, v.version)))
}

/// The index of the latest version of everything in the store.
pub async fn load(store: &Store) -> Result<nsi::Index, ReferenceError> {
    let mut idx = nsi::Index::default();
    // Resources first, so crosswalks can be checked against them by whoever asks.
    let mut all = store.nsi_latest().await?;
    all.sort_by_key(|v| v.kind != "resource");
    for v in all {
        let c = decode(&v)?;
        idx.insert(c, v.version, v.sha256);
    }
    Ok(idx)
}

/// Imports `bytes`. CSV names the resource or crosswalk it belongs to with `code`; JSON and
/// XML carry their header. Every problem is reported at once; nothing is stored unless all
/// is well and `dry_run` is false.
pub async fn import(
    store: &Store,
    index: &nsi::Index,
    bytes: &[u8],
    format: Format,
    code: Option<&str>,
    dry_run: bool,
    now: i64,
) -> Result<Imported, ReferenceError> {
    let base = match (format, code) {
        (Format::Csv, Some(c)) => match store.nsi_version(c, None).await? {
            Some(v) => Some(decode(&v)?),
            None => {
                return Err(ReferenceError::Problems(vec![Problem {
                    at: "file".into(),
                    message: format!(
                        "no resource or crosswalk {c} is published here; import its JSON or XML first"
                    ),
                }]));
            }
        },
        _ => None,
    };
    let read = format::read(bytes, format, base.as_ref()).map_err(ReferenceError::Problems)?;
    let mut problems = read.check();
    if let Content::Crosswalk(c) = &read.content {
        problems.extend(index.check_crosswalk(c));
    }
    if let Some(c) = code
        && c != read.content.code()
    {
        problems.push(Problem {
            at: "header".into(),
            message: format!("the file is {}, not {c}", read.content.code()),
        });
    }
    if !problems.is_empty() {
        return Err(ReferenceError::Problems(problems));
    }
    let content = read.content;
    let code = content.code().to_owned();
    let current = match store.nsi_version(&code, None).await? {
        Some(v) => Some(decode(&v)?),
        None => None,
    };
    let diff = nsi::diff::diff(current.as_ref(), &content);
    let (kind, entries) = match &content {
        Content::Resource(r) => ("resource", r.items.len()),
        Content::Crosswalk(c) => ("crosswalk", c.mappings.len()),
    };
    let canonical = content.canonical();
    let sha256 = Content::sha256_of(&canonical);
    let version = if dry_run {
        None
    } else {
        Some(
            store
                .nsi_publish(&code, kind, &sha256, canonical, now)
                .await?,
        )
    };
    Ok(Imported {
        code,
        kind,
        sha256,
        diff,
        version,
        entries,
    })
}

// ---------------------------------------------------------------- distribution

/// How the reference data of a subscribing node stands against its publisher.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// The publisher this node fetches from (none on the publishing node).
    pub publisher: Option<String>,
    /// When the publisher last answered, RFC 3339.
    pub last_success: Option<String>,
    /// Seconds since then: how old this node's copy may be.
    pub age_seconds: Option<i64>,
    pub last_error: Option<String>,
    /// Versions received and stored since the node started.
    pub received: u64,
    /// Versions refused (hash mismatch, wrong sender, unreadable), newest last.
    pub refused: Vec<String>,
    #[serde(skip)]
    last_success_us: Option<i64>,
}

/// The common process the distribution is modeled on: P.CC.10 «получение сведений,
/// содержащихся в классификаторе». Codes of procedure, transactions and messages are ours.
const PROCESS: &str = "P.CC.10";
const PROCESS_VERSION: &str = "1.0.0";
const PROCEDURE: &str = "P.CC.10.PRC.001";
const TRN_REQUEST: &str = "P.CC.10.TRN.002";
const MSG_REQUEST: &str = "P.CC.10.MSG.003";
const MSG_RESPONSE: &str = "P.CC.10.MSG.004";
/// The catalogue and "not found" answers of the same transaction, each its own structure.
const MSG_CATALOGUE: &str = "P.CC.10.MSG.006";
const MSG_NOT_FOUND: &str = "P.CC.10.MSG.007";
const TRN_NOTICE: &str = "P.CC.10.TRN.003";
const MSG_NOTICE: &str = "P.CC.10.MSG.005";
const NS: &str = nsi::format::XML_NS;

impl crate::Node {
    /// The latest verified reference data this node holds.
    pub fn reference(&self) -> std::sync::Arc<nsi::Index> {
        self.reference
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Rebuilds the index from the store (after a publication or a received version).
    pub async fn reload_reference(&self) -> Result<(), ReferenceError> {
        let idx = std::sync::Arc::new(load(&self.store).await?);
        *self.reference.write().unwrap_or_else(|p| p.into_inner()) = idx;
        Ok(())
    }

    pub fn sync_status(&self) -> SyncStatus {
        let mut s = self.sync.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.publisher = self.cfg.nsi.as_ref().and_then(|n| n.publisher.clone());
        if let Some(t) = s.last_success_us {
            s.age_seconds = Some(((crate::micros(self.now()) - t) / 1_000_000).max(0));
        }
        s
    }

    fn note(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.sync.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// A P.CC.10 message from a node's built-in service (reference data, trust list).
pub(crate) fn submission(
    to: &str,
    transaction: &str,
    message: &str,
    body: String,
    answers: Option<&store::InboxItem>,
) -> crate::Submission {
    crate::Submission {
        to: to.into(),
        process: PROCESS.into(),
        version: PROCESS_VERSION.into(),
        procedure: PROCEDURE.into(),
        transaction: transaction.into(),
        message: message.into(),
        body,
        relates_to: answers.map(|a| a.message_id.clone()),
        conversation_id: answers.and_then(|a| a.conversation_id.clone()),
        ..Default::default()
    }
}

fn attr(s: &str) -> String {
    envelope::escape::attr(s).into_owned()
}

fn request(code: &str, version: Option<i64>) -> String {
    let v = version
        .map(|v| format!(" version=\"{v}\""))
        .unwrap_or_default();
    format!(
        "<nsi:ClassifierRequest xmlns:nsi=\"{NS}\" code=\"{}\"{v}/>",
        attr(code)
    )
}

fn entry_attrs(v: &NsiVersion) -> String {
    format!(
        "code=\"{}\" kind=\"{}\" version=\"{}\" sha256=\"{}\" publishedAt=\"{}\"",
        attr(&v.code),
        attr(&v.kind),
        v.version,
        attr(&v.sha256),
        v.published_at
    )
}

/// The reference-data service of a node, a built-in IS on the adapter path like any other:
/// on the publishing node it answers requests and tells subscribers of new versions; on a
/// subscribing node it asks for the catalogue (at start, every `refresh_secs`, and when told)
/// and fetches, verifies and stores what is newer.
pub async fn run_service(
    node: std::sync::Arc<crate::Node>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (Some(me), Some(cfg)) = (node.cfg.nsi_service(), node.cfg.nsi.clone()) else {
        return;
    };
    let refresh = std::time::Duration::from_secs(cfg.refresh_secs.max(1));
    let mut next_refresh = tokio::time::Instant::now();
    let mut next_poll = tokio::time::Instant::now();
    let mut known: std::collections::HashMap<String, i64> = match node.store.nsi_latest().await {
        Ok(v) => v.into_iter().map(|v| (v.code, v.version)).collect(),
        Err(_) => Default::default(),
    };
    let mut expected: std::collections::HashMap<(String, i64), String> = Default::default();
    while !*stop.borrow() {
        let now = tokio::time::Instant::now();
        if let Some(p) = &cfg.publisher
            && now >= next_refresh
        {
            next_refresh = now + refresh;
            let s = submission(p, TRN_REQUEST, MSG_REQUEST, request("*", None), None);
            if let Err(e) = node.submit(&me, s).await {
                node.note(|st| st.last_error = Some(format!("asking {p} for its catalogue: {e}")));
            }
        }
        if !cfg.subscribers.is_empty() && now >= next_poll {
            next_poll = now + std::time::Duration::from_secs(2);
            publish_news(&node, &me, &cfg.subscribers, &mut known).await;
        }
        let items = tokio::select! {
            r = node.inbox(&me, 0, 20, std::time::Duration::from_secs(1)) => r,
            _ = stop.changed() => break,
        };
        let items = match items {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "reference service inbox");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut stored = false;
        for it in items {
            stored |= handle(&node, &me, cfg.publisher.as_deref(), &it, &mut expected).await;
            if let Err(e) = node.ack(&me, &it.message_id).await {
                tracing::error!(error = %e, "reference service ack");
            }
        }
        // One rebuild of the index for everything a batch brought.
        if stored && let Err(e) = node.reload_reference().await {
            tracing::error!(error = %e, "reference data reload");
        }
    }
}

/// On the publisher: tells every subscriber of versions published since the last look (an
/// import by `ortaq nsi import` goes straight to the store).
async fn publish_news(
    node: &crate::Node,
    me: &str,
    subscribers: &[String],
    known: &mut std::collections::HashMap<String, i64>,
) {
    let Ok(latest) = node.store.nsi_latest().await else {
        return;
    };
    let news: Vec<&NsiVersion> = latest
        .iter()
        .filter(|v| known.get(&v.code).is_none_or(|k| *k < v.version))
        .collect();
    if news.is_empty() {
        return;
    }
    if let Err(e) = node.reload_reference().await {
        tracing::error!(error = %e, "reference data reload");
        return;
    }
    for v in news {
        let body = format!(
            "<nsi:VersionPublished xmlns:nsi=\"{NS}\" {}/>",
            entry_attrs(v)
        );
        for s in subscribers {
            if let Err(e) = node
                .submit(
                    me,
                    submission(s, TRN_NOTICE, MSG_NOTICE, body.clone(), None),
                )
                .await
            {
                tracing::warn!(subscriber = %s, error = %e, "version notice not sent");
            }
        }
        known.insert(v.code.clone(), v.version);
    }
}

async fn handle(
    node: &crate::Node,
    me: &str,
    publisher: Option<&str>,
    it: &store::InboxItem,
    expected: &mut std::collections::HashMap<(String, i64), String>,
) -> bool {
    // Notes the refusal; `false`: nothing was stored.
    let refuse = |why: String| -> bool {
        tracing::warn!(reason = %why, "reference data refused");
        node.note(|s| {
            s.refused.push(why.clone());
            s.last_error = Some(why);
        });
        false
    };
    let env = match envelope::parse(
        &it.envelope,
        &envelope::ParseOptions::new(envelope::Origin::Any),
    ) {
        Ok(e) => e,
        Err(e) => return refuse(format!("message {}: {e}", it.message_id)),
    };
    let envelope::Body::Document(doc) = &env.body else {
        // Signals (an ERR about our request, say) only get noted.
        if let envelope::Body::Signal(s) = &env.body
            && let Some(e) = s.errors.first()
        {
            node.note(|st| st.last_error = Some(format!("{}: {}", e.code.as_str(), e.description)));
        }
        return false;
    };
    let root = match envelope::xml::read_text(doc, envelope::Limits::default()) {
        Ok(r) if r.ns.as_deref() == Some(NS) => r,
        Ok(r) => {
            return refuse(format!(
                "message {}: unexpected document {}",
                it.message_id,
                r.qname()
            ));
        }
        Err(e) => return refuse(format!("message {}: {e}", it.message_id)),
    };
    let a = |n: &str| root.attr(None, n).unwrap_or_default().to_owned();
    let from_publisher = publisher == Some(it.sender.as_str());
    let now = crate::micros(node.now());
    match root.local.as_str() {
        "ClassifierRequest" => {
            let (code, version) = (a("code"), a("version").parse::<i64>().ok());
            let mut answer = MSG_RESPONSE;
            let body = if code == "*" {
                answer = MSG_CATALOGUE;
                match node.store.nsi_latest().await {
                    Ok(all) => {
                        let entries: String = all
                            .iter()
                            .map(|v| format!("<nsi:Entry {}/>", entry_attrs(v)))
                            .collect();
                        format!("<nsi:Catalogue xmlns:nsi=\"{NS}\">{entries}</nsi:Catalogue>")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "catalogue");
                        return false;
                    }
                }
            } else {
                match node.store.nsi_version(&code, version).await {
                    Ok(Some(v)) => {
                        use base64::Engine as _;
                        format!(
                            "<nsi:ClassifierVersion xmlns:nsi=\"{NS}\" {}>{}</nsi:ClassifierVersion>",
                            entry_attrs(&v),
                            base64::engine::general_purpose::STANDARD.encode(&v.content)
                        )
                    }
                    Ok(None) => {
                        answer = MSG_NOT_FOUND;
                        format!(
                            "<nsi:NotFound xmlns:nsi=\"{NS}\" code=\"{}\"/>",
                            attr(&code)
                        )
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "classifier version");
                        return false;
                    }
                }
            };
            if let Err(e) = node
                .submit(
                    me,
                    submission(&it.sender, TRN_REQUEST, answer, body, Some(it)),
                )
                .await
            {
                tracing::warn!(to = %it.sender, error = %e, "reference data answer not sent");
            }
        }
        "Catalogue" | "VersionPublished" | "ClassifierVersion" | "NotFound" if !from_publisher => {
            refuse(format!(
                "{} from {}, which is not this node's publisher",
                root.local, it.sender
            ));
        }
        "Catalogue" | "VersionPublished" => {
            node.note(|s| {
                s.last_success_us = Some(now);
                s.last_success = Some(crate::from_micros(now).to_string());
            });
            let entries: Vec<&envelope::xml::Element> = if root.local == "Catalogue" {
                root.children.iter().filter(|c| c.is(NS, "Entry")).collect()
            } else {
                vec![&root]
            };
            for e in entries {
                let code = e.attr(None, "code").unwrap_or_default();
                let Ok(version) = e.attr(None, "version").unwrap_or_default().parse::<i64>() else {
                    continue;
                };
                let have = match node.store.nsi_version(code, None).await {
                    Ok(v) => v.map_or(0, |v| v.version),
                    Err(_) => 0,
                };
                if have >= version {
                    continue;
                }
                expected.insert(
                    (code.to_owned(), version),
                    e.attr(None, "sha256").unwrap_or_default().to_owned(),
                );
                let s = submission(
                    &it.sender,
                    TRN_REQUEST,
                    MSG_REQUEST,
                    request(code, Some(version)),
                    None,
                );
                if let Err(e) = node.submit(me, s).await {
                    node.note(|st| {
                        st.last_error = Some(format!("requesting {code} v{version}: {e}"))
                    });
                }
            }
        }
        "ClassifierVersion" => {
            use base64::Engine as _;
            let (code, version, sha) = (
                a("code"),
                a("version").parse::<i64>().unwrap_or(0),
                a("sha256"),
            );
            let content = match base64::engine::general_purpose::STANDARD.decode(root.text.trim()) {
                Ok(c) => c,
                Err(e) => return refuse(format!("{code} v{version}: content is not base64: {e}")),
            };
            let actual = Content::sha256_of(&content);
            if actual != sha {
                return refuse(format!(
                    "{code} v{version}: content hash {actual} does not match the announced {sha}"
                ));
            }
            if let Some(want) = expected.get(&(code.clone(), version))
                && !want.is_empty()
                && *want != sha
            {
                return refuse(format!(
                    "{code} v{version}: hash {sha} is not the catalogue's {want}"
                ));
            }
            let v = NsiVersion {
                code: code.clone(),
                version,
                kind: a("kind"),
                sha256: sha,
                published_at: a("publishedAt").parse().unwrap_or(now),
                content,
            };
            match decode(&v) {
                Ok(c) if c.code() == code => {}
                Ok(c) => return refuse(format!("{code} v{version}: the content is {}", c.code())),
                Err(e) => return refuse(e.to_string()),
            }
            match node.store.nsi_put(v).await {
                Ok(_) => {
                    expected.remove(&(code.clone(), version));
                    node.note(|s| {
                        s.received += 1;
                        s.last_success_us = Some(now);
                        s.last_success = Some(crate::from_micros(now).to_string());
                    });
                    tracing::info!(%code, version, "reference data version received");
                    return true;
                }
                Err(e) => {
                    refuse(format!("{code} v{version}: {e}"));
                }
            }
        }
        "NotFound" => {
            node.note(|s| s.last_error = Some(format!("the publisher has no {}", a("code"))))
        }
        other => tracing::debug!(element = other, "reference service ignored a document"),
    }
    false
}
