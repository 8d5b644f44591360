//! Reference-data distribution (P.CC.10, notices by P.XO.03): the Commission's node tells its subscribers of every
//! new version and answers their requests; a national node fetches what is newer, checks each
//! version's SHA-256 against the announcement, and has its node serve it. Only its configured
//! publisher is listened to.

use std::collections::HashMap;
use std::time::Duration;

use adapter::{Adapter, InboxMessage, ReferenceHoldings, StoredVersion, SyncNote};
use nsi::model::Content;
use tokio::sync::watch;

use crate::{Config, Trn, submission};

const TRN_REQUEST: Trn = Trn {
    process: "P.CC.10",
    procedure: "P.CC.10.PRC.001",
    code: "P.CC.10.TRN.002",
};
const MSG_REQUEST: &str = "P.CC.10.MSG.003";
const MSG_RESPONSE: &str = "P.CC.10.MSG.004";
/// The catalogue and "not found" answers of the same transaction, each its own structure.
const MSG_CATALOGUE: &str = "P.CC.10.MSG.006";
const MSG_NOT_FOUND: &str = "P.CC.10.MSG.007";
const TRN_NOTICE: Trn = Trn {
    process: "P.XO.03",
    procedure: "P.XO.03.PRC.001",
    code: "P.XO.03.TRN.001",
};
const MSG_NOTICE: &str = "P.XO.03.MSG.001";
const NS: &str = nsi::format::XML_NS;

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

fn entry_attrs(v: &StoredVersion) -> String {
    format!(
        "code=\"{}\" kind=\"{}\" version=\"{}\" sha256=\"{}\" publishedAt=\"{}\"",
        attr(&v.code),
        attr(&v.kind),
        v.version,
        attr(&v.sha256),
        v.published_at
    )
}

/// The reference-data service of a node, a built-in IS on the adapter boundary like any other:
/// on the publishing node it answers requests and tells subscribers of new versions; on a
/// subscribing node it asks for the catalogue (at start, every `refresh`, and when told) and
/// fetches, verifies and stores what is newer.
pub async fn run<A: Adapter, H: ReferenceHoldings>(
    adapter: A,
    holdings: H,
    cfg: Config,
    mut stop: watch::Receiver<bool>,
) {
    let me = cfg.me.clone();
    let mut next_refresh = tokio::time::Instant::now();
    let mut next_poll = tokio::time::Instant::now();
    let mut known: HashMap<String, i64> = match holdings.latest().await {
        Ok(v) => v.into_iter().map(|v| (v.code, v.version)).collect(),
        Err(_) => Default::default(),
    };
    let mut expected: HashMap<(String, i64), String> = Default::default();
    while !*stop.borrow() {
        let now = tokio::time::Instant::now();
        if let Some(p) = &cfg.publisher
            && now >= next_refresh
        {
            next_refresh = now + cfg.refresh;
            let s = submission(p, &TRN_REQUEST, MSG_REQUEST, request("*", None), None);
            if let Err(e) = adapter.send(&s).await {
                holdings.note(SyncNote::Error(format!(
                    "asking {p} for its catalogue: {e}"
                )));
            }
        }
        if !cfg.subscribers.is_empty() && now >= next_poll {
            next_poll = now + Duration::from_secs(2);
            publish_news(&adapter, &holdings, &cfg.subscribers, &mut known).await;
        }
        let Some(items) = crate::next_items(&adapter, &me, &mut stop).await else {
            break;
        };
        let mut stored = false;
        for it in items {
            stored |= handle(
                &adapter,
                &holdings,
                cfg.publisher.as_deref(),
                &it,
                &mut expected,
            )
            .await;
            crate::ack(&adapter, &me, &it).await;
        }
        // One rebuild of the index for everything a batch brought.
        if stored && let Err(e) = holdings.refresh().await {
            tracing::error!(error = %e, "reference data reload");
        }
    }
}

/// On the publisher: tells every subscriber of versions published since the last look (an
/// import by `ortaq nsi import` goes straight to the store).
async fn publish_news<A: Adapter, H: ReferenceHoldings>(
    adapter: &A,
    holdings: &H,
    subscribers: &[String],
    known: &mut HashMap<String, i64>,
) {
    let Ok(latest) = holdings.latest().await else {
        return;
    };
    let news: Vec<&StoredVersion> = latest
        .iter()
        .filter(|v| known.get(&v.code).is_none_or(|k| *k < v.version))
        .collect();
    if news.is_empty() {
        return;
    }
    if let Err(e) = holdings.refresh().await {
        tracing::error!(error = %e, "reference data reload");
        return;
    }
    for v in news {
        let body = format!(
            "<nsi:VersionPublished xmlns:nsi=\"{NS}\" {}/>",
            entry_attrs(v)
        );
        for s in subscribers {
            if let Err(e) = adapter
                .send(&submission(s, &TRN_NOTICE, MSG_NOTICE, body.clone(), None))
                .await
            {
                tracing::warn!(subscriber = %s, error = %e, "version notice not sent");
            }
        }
        known.insert(v.code.clone(), v.version);
    }
}

async fn handle<A: Adapter, H: ReferenceHoldings>(
    adapter: &A,
    holdings: &H,
    publisher: Option<&str>,
    it: &InboxMessage,
    expected: &mut HashMap<(String, i64), String>,
) -> bool {
    // Notes the refusal; `false`: nothing was stored.
    let refuse = |why: String| -> bool {
        tracing::warn!(reason = %why, "reference data refused");
        holdings.note(SyncNote::Refused(why));
        false
    };
    let env = match crate::parse(it) {
        Ok(e) => e,
        Err(e) => return refuse(format!("message {}: {e}", it.message_id)),
    };
    let envelope::Body::Document(doc) = &env.body else {
        // Signals (an ERR about our request, say) only get noted.
        if let envelope::Body::Signal(s) = &env.body
            && let Some(e) = s.errors.first()
        {
            holdings.note(SyncNote::Error(format!(
                "{}: {}",
                e.code.as_str(),
                e.description
            )));
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
    let from_publisher = publisher == Some(it.from.as_str());
    match root.local.as_str() {
        "ClassifierRequest" => {
            let (code, version) = (a("code"), a("version").parse::<i64>().ok());
            let mut answer = MSG_RESPONSE;
            let body = if code == "*" {
                answer = MSG_CATALOGUE;
                match holdings.latest().await {
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
                match holdings.version(&code, version).await {
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
            if let Err(e) = adapter
                .send(&submission(&it.from, &TRN_REQUEST, answer, body, Some(it)))
                .await
            {
                tracing::warn!(to = %it.from, error = %e, "reference data answer not sent");
            }
        }
        "Catalogue" | "VersionPublished" | "ClassifierVersion" | "NotFound" if !from_publisher => {
            refuse(format!(
                "{} from {}, which is not this node's publisher",
                root.local, it.from
            ));
        }
        "Catalogue" | "VersionPublished" => {
            holdings.note(SyncNote::Answered);
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
                let have = match holdings.version(code, None).await {
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
                    &it.from,
                    &TRN_REQUEST,
                    MSG_REQUEST,
                    request(code, Some(version)),
                    None,
                );
                if let Err(e) = adapter.send(&s).await {
                    holdings.note(SyncNote::Error(format!(
                        "requesting {code} v{version}: {e}"
                    )));
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
            let v = StoredVersion {
                code: code.clone(),
                version,
                kind: a("kind"),
                sha256: sha,
                published_at: a("publishedAt").parse().unwrap_or_default(),
                content,
            };
            match holdings.install(v).await {
                Ok(_) => {
                    expected.remove(&(code.clone(), version));
                    holdings.note(SyncNote::Received);
                    tracing::debug!(%code, version, "reference data version received");
                    return true;
                }
                Err(e) => {
                    refuse(e.to_string());
                }
            }
        }
        "NotFound" => holdings.note(SyncNote::Error(format!(
            "the publisher has no {}",
            a("code")
        ))),
        other => tracing::debug!(element = other, "reference service ignored a document"),
    }
    false
}
