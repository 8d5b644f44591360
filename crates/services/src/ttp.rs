//! The trusted third party as a participant of its node (`EAEU://<SEG>/SR/ttp`, package
//! P.XO.02, ours): a `ttp:ReceiptRequest` carrying a signed e-document is answered with the
//! node TTP's signed receipt (P.XO.02.MSG.002); a request it cannot read, or one the TTP
//! cannot judge, with ERR `Common:DataError`. It asks the TTP through the adapter boundary
//! ([`adapter::Ttp`]) like any IS.

use adapter::{Adapter, Clock, InboxMessage, Submission, Ttp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

/// The largest signed document a receipt request may carry (decoded).
const MAX_REQUEST_DOCUMENT: usize = 8 * 1024 * 1024;
const TTP_NS: &str = "urn:ortaq:ttp-request:v1";

/// The trusted third party as a participant of the node (`EAEU://<SEG>/SR/ttp`, P.XO.02): a
/// request carrying a signed e-document is answered with the signed receipt (P.XO.02.MSG.002);
/// a request it cannot read, or one it cannot judge (no valid trust list), with ERR.
pub async fn run<A: Adapter + Ttp>(
    adapter: A,
    me: String,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let Some(items) = crate::next_items(&adapter, &me, &mut stop).await else {
            break;
        };
        for it in items {
            answer_request(&adapter, &me, &clock, &it).await;
            crate::ack(&adapter, &me, &it).await;
        }
    }
}

async fn answer_request<A: Adapter + Ttp>(adapter: &A, me: &str, clock: &Clock, it: &InboxMessage) {
    let Ok(env) = crate::parse(it) else {
        return;
    };
    let envelope::Body::Document(doc) = &env.body else {
        return; // signals about our own answers
    };
    let answer = match read_request(doc) {
        Ok((signed, moment)) => {
            let moment = moment.and_then(|m| m.format(&Rfc3339).ok());
            match adapter.receipt(&signed, moment.as_deref()).await {
                Ok((receipt, _)) => Ok(receipt),
                Err(e) => Err(e
                    .problem()
                    .map(|p| p.detail)
                    .unwrap_or_else(|| e.to_string())),
            }
        }
        Err(e) => Err(e),
    };
    let cp = env.header.cp_action();
    let sent = match answer {
        Ok(receipt) => {
            let s = Submission {
                to: it.from.clone(),
                process: "P.XO.02".into(),
                version: cp.map(|c| c.version.clone()).unwrap_or_default(),
                procedure: "P.XO.02.PRC.001".into(),
                transaction: "P.XO.02.TRN.001".into(),
                message: "P.XO.02.MSG.002".into(),
                body: receipt,
                relates_to: Some(it.message_id.clone()),
                conversation_id: it.conversation_id.clone(),
                ..Default::default()
            };
            adapter.send(&s).await.map(|_| ())
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
            };
            match envelope::Envelope::signal_for(
                &env.header,
                me_addr,
                envelope::Signal::err(clock(), vec![err]),
            ) {
                Ok(e) => adapter.send_envelope(&e.to_xml()).await.map(|_| ()),
                Err(e) => return tracing::error!(error = %e, "TTP participant ERR"),
            }
        }
    };
    if let Err(e) = sent {
        tracing::warn!(to = %it.from, error = %e, "TTP answer not sent");
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
