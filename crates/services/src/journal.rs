//! The diagnostic journal (P.XO.01): every `every`, a national gateway's journal service sends
//! what happened to messages in the period since its last report (counts per direction and
//! state, the records of what failed or expired) to the collecting service of the EEC node,
//! which keeps each gateway's reports, and its own, for the portal's dashboards. A report that
//! could not be sent is sent again with the next period folded in, so no period is skipped.

use std::time::Duration;

use adapter::{Adapter, Clock, InboxMessage, JournalHoldings, JournalRecord, JournalReport};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

const PROCESS: &str = "P.XO.01";
const VERSION: &str = "1.0.0";
const PROCEDURE: &str = "P.XO.01.PRC.001";
const TRANSACTION: &str = "P.XO.01.TRN.001";
const MESSAGE: &str = "P.XO.01.MSG.001";
const NS: &str = "urn:ortaq:R:XO:JR:01:DiagnosticJournal:v1.0.0";

/// What the journal service of a node does.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// The service's own address (`EAEU://<SEG>/SR/journal`).
    pub me: String,
    /// Where a national gateway reports; None on the collecting node.
    pub collector: Option<String>,
    /// The length of a period.
    pub every: Duration,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn time_of(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as an R.XO.JR.01.001 document.
pub fn to_xml(r: &JournalReport) -> String {
    let mut s = format!(
        "<jr:DiagnosticJournal xmlns:jr=\"{NS}\" segment=\"{}\" from=\"{}\" to=\"{}\">",
        esc(&r.segment),
        time_of(r.from),
        time_of(r.to)
    );
    for (direction, state, n) in &r.counts {
        s.push_str(&format!(
            "<jr:Count direction=\"{}\" state=\"{}\" n=\"{n}\"/>",
            esc(direction),
            esc(state)
        ));
    }
    for x in &r.records {
        s.push_str(&format!(
            "<jr:Record messageId=\"{}\" direction=\"{}\" sender=\"{}\" recipient=\"{}\" action=\"{}\" state=\"{}\" at=\"{}\">{}</jr:Record>",
            esc(&x.message_id),
            esc(&x.direction),
            esc(&x.sender),
            esc(&x.recipient),
            esc(&x.action),
            esc(&x.state),
            time_of(x.at),
            esc(x.detail.as_deref().unwrap_or_default())
        ));
    }
    s.push_str("</jr:DiagnosticJournal>");
    s
}

/// Reads an R.XO.JR.01.001 document (the node validated it against its schema already).
pub fn from_xml(xml: &str) -> Result<JournalReport, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(NS) || root.tag_name().name() != "DiagnosticJournal" {
        return Err("not a DiagnosticJournal".into());
    }
    let attr = |n: &roxmltree::Node, a: &str| {
        n.attribute(a)
            .map(str::to_owned)
            .ok_or_else(|| format!("{} has no {a}", n.tag_name().name()))
    };
    let at = |n: &roxmltree::Node, a: &str| -> Result<i64, String> {
        OffsetDateTime::parse(&attr(n, a)?, &Rfc3339)
            .map(micros)
            .map_err(|e| format!("{a}: {e}"))
    };
    let mut counts = Vec::new();
    let mut records = Vec::new();
    for c in root.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "Count" => counts.push((
                attr(&c, "direction")?,
                attr(&c, "state")?,
                attr(&c, "n")?.parse().map_err(|e| format!("n: {e}"))?,
            )),
            "Record" => records.push(JournalRecord {
                message_id: attr(&c, "messageId")?,
                direction: attr(&c, "direction")?,
                sender: attr(&c, "sender")?,
                recipient: attr(&c, "recipient")?,
                action: attr(&c, "action")?,
                state: attr(&c, "state")?,
                at: at(&c, "at")?,
                detail: c.text().filter(|t| !t.is_empty()).map(str::to_owned),
            }),
            other => return Err(format!("unexpected element {other}")),
        }
    }
    Ok(JournalReport {
        segment: attr(&root, "segment")?,
        from: at(&root, "from")?,
        to: at(&root, "to")?,
        counts,
        records,
    })
}

/// Runs the service until `stop`.
pub async fn run<A: Adapter, H: JournalHoldings>(
    adapter: A,
    journal: H,
    cfg: JournalConfig,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    // Periods start when the service does: a restart reports from then on.
    let mut from = micros(clock());
    let mut next = tokio::time::Instant::now() + cfg.every;
    while !*stop.borrow() {
        if tokio::time::Instant::now() >= next {
            next = tokio::time::Instant::now() + cfg.every;
            let to = micros(clock());
            if report(&adapter, &journal, &cfg, from, to).await {
                from = to;
            }
        }
        let Some(items) = crate::next_items(&adapter, &cfg.me, &mut stop).await else {
            break;
        };
        for it in items {
            handle(&journal, &cfg, &it).await;
            crate::ack(&adapter, &cfg.me, &it).await;
        }
    }
}

/// Sends (or, on the collecting node, keeps) this node's journal for `(from, to]`; true when
/// it is done, false to try again with the next period folded in.
async fn report<A: Adapter, H: JournalHoldings>(
    adapter: &A,
    journal: &H,
    cfg: &JournalConfig,
    from: i64,
    to: i64,
) -> bool {
    let r = match journal.journal(from, to).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the diagnostic journal could not be read");
            return false;
        }
    };
    match &cfg.collector {
        None => match journal.keep(r).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "this node's journal was not kept");
                false
            }
        },
        Some(collector) => {
            let s = adapter::Submission {
                to: collector.clone(),
                process: PROCESS.into(),
                version: VERSION.into(),
                procedure: PROCEDURE.into(),
                transaction: TRANSACTION.into(),
                message: MESSAGE.into(),
                body: to_xml(&r),
                ..Default::default()
            };
            match adapter.send(&s).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(collector = %collector, error = %e, "the diagnostic journal was not sent");
                    false
                }
            }
        }
    }
}

/// On the collecting node: keeps a gateway's report. A report whose segment is not its
/// sender's is refused: a gateway speaks for itself only.
async fn handle<H: JournalHoldings>(journal: &H, cfg: &JournalConfig, it: &InboxMessage) {
    let Ok(env) = crate::parse(it) else {
        return;
    };
    let envelope::Body::Document(doc) = &env.body else {
        return; // signals about our own messages
    };
    if cfg.collector.is_some() {
        tracing::warn!(from = %it.from, "a journal report reached a node that does not collect them");
        return;
    }
    let r = match from_xml(doc) {
        Ok(r) => r,
        Err(e) => return tracing::warn!(from = %it.from, error = %e, "unreadable journal report"),
    };
    let sender_segment = it.from.split('/').nth(2).unwrap_or_default();
    if r.segment != sender_segment {
        return tracing::warn!(from = %it.from, segment = %r.segment, "a journal report for another segment");
    }
    if let Err(e) = journal.keep(r).await {
        tracing::warn!(from = %it.from, error = %e, "a journal report was not kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report read back from its document is the same report.
    #[test]
    fn a_report_survives_its_document() {
        let r = JournalReport {
            segment: "KZ".into(),
            from: 1_764_580_000_123_456,
            to: 1_764_580_300_000_001,
            counts: vec![
                ("out".into(), "accepted".into(), 12),
                ("out".into(), "expired".into(), 1),
            ],
            records: vec![JournalRecord {
                message_id: "urn:uuid:0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c".into(),
                direction: "out".into(),
                sender: "EAEU://KZ/CA/conformity-body".into(),
                recipient: "EAEU://RU/CA/x".into(),
                action: "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001"
                    .into(),
                state: "expired".into(),
                at: 1_764_580_200_000_000,
                detail: Some("no answer from RU <after 24 h> & gave up".into()),
            }],
        };
        assert_eq!(from_xml(&to_xml(&r)).unwrap(), r);
    }
}
