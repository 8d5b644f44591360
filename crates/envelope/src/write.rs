//! The envelope writer: deterministic header in the order of the real Kazakh template (To,
//! ReplyTo, Action, MessageID, RelatesTo, ConversationID, ProcedureID, Integration), the body
//! written verbatim.

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;

use crate::model::{Body, Envelope};
use crate::{INT_NS, SOAP_NS, WSA_NS};

impl Envelope {
    /// The envelope as UTF-8 XML.
    pub fn to_xml(&self) -> String {
        let h = &self.header;
        let mut out = String::with_capacity(1024 + body_len(&self.body));
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{SOAP_NS}\" xmlns:wsa=\"{WSA_NS}\" xmlns:int=\"{INT_NS}\">\n  <soap:Header>\n"
        );
        if let Some(to) = &h.to {
            let _ = writeln!(
                out,
                "    <wsa:To>{}</wsa:To>",
                crate::escape::text(to.as_str())
            );
        }
        if let Some(r) = &h.reply_to {
            let _ = writeln!(
                out,
                "    <wsa:ReplyTo><wsa:Address>{}</wsa:Address></wsa:ReplyTo>",
                crate::escape::text(r.as_str())
            );
        }
        let _ = writeln!(
            out,
            "    <wsa:Action>{}</wsa:Action>",
            crate::escape::text(&h.action.to_string())
        );
        let _ = writeln!(out, "    <wsa:MessageID>{}</wsa:MessageID>", h.message_id);
        if let Some(r) = &h.relates_to {
            match &r.relates_action {
                Some(a) => {
                    let _ = writeln!(
                        out,
                        "    <wsa:RelatesTo int:RelatesAction=\"{}\">{}</wsa:RelatesTo>",
                        crate::escape::attr(a.as_str()),
                        r.id
                    );
                }
                None => {
                    let _ = writeln!(out, "    <wsa:RelatesTo>{}</wsa:RelatesTo>", r.id);
                }
            }
        }
        if let Some(c) = &h.conversation_id {
            let _ = writeln!(out, "    <int:ConversationID>{c}</int:ConversationID>");
        }
        if let Some(p) = &h.procedure_id {
            let _ = writeln!(out, "    <int:ProcedureID>{p}</int:ProcedureID>");
        }
        if let Some(i) = &h.integration {
            let _ = writeln!(
                out,
                "    <int:Integration>\n      <int:TrackID>{}</int:TrackID>\n      <int:AcceptTime>{}</int:AcceptTime>\n    </int:Integration>",
                i.track_id,
                i.accept_time.format(&Rfc3339).unwrap_or_default()
            );
        }
        out.push_str("  </soap:Header>\n  <soap:Body>\n    ");
        match &self.body {
            Body::Document(d) => out.push_str(d),
            Body::Signal(s) => s.write(&mut out),
            Body::Fault(f) => f.write(&mut out),
        }
        out.push_str("\n  </soap:Body>\n</soap:Envelope>\n");
        out
    }
}

fn body_len(b: &Body) -> usize {
    match b {
        Body::Document(d) => d.len(),
        Body::Signal(_) => 512,
        Body::Fault(f) => 512 + f.problem_message.as_ref().map_or(0, String::len),
    }
}
