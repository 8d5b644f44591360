//! SOAP 1.2 Faults as technological error messages (Decision No. 5 table 8): `soap:Sender` or
//! `soap:Receiver` with an `int:` or `wsa:` subcode, a Russian reason text and optionally texts
//! in other languages, and the problem message quoted in `int:ProblemMessage`.

use std::fmt::Write as _;

use crate::error::{EnvelopeError, Rule, err};
use crate::xml::{Element, XML_NS};
use crate::{INT_NS, SOAP_NS, WSA_NS};

/// Who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The message was wrong (header or data); resending it unchanged will fail again.
    Sender,
    /// The receiver failed internally; the same message may succeed later.
    Receiver,
}

/// The Fault subcodes of Decision No. 5 table 8, each with the code the table gives it.
/// `wsa:DuplicateMessageID` and Subsubcodes are not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subcode {
    /// `int:InvalidHeader`: a header specific to the IIS (`int:`) is missing; the table keeps it
    /// for that alone.
    InvalidHeader,
    /// `int:DataError`: the message cannot be read or its content is wrong.
    DataError,
    /// `int:InternalError` (`soap:Receiver`): the receiver failed; the same message may
    /// succeed later.
    InternalError,
    /// `wsa:InvalidAddressingHeader`: a header is present but wrong.
    InvalidAddressingHeader,
    /// `wsa:MessageAddressingHeaderRequired`: a required WS-Addressing header is missing.
    MessageAddressingHeaderRequired,
    /// `wsa:DestinationUnreachable`: no route to the recipient in `wsa:To`.
    DestinationUnreachable,
    /// `wsa:ActionNotSupported`: the recipient does not take this Action.
    ActionNotSupported,
    /// `wsa:EndpointUnavailable` (`soap:Receiver`, without `RetryAfter`): the recipient could
    /// not be reached.
    EndpointUnavailable,
}

const SUBCODES: [Subcode; 8] = [
    Subcode::InvalidHeader,
    Subcode::DataError,
    Subcode::InternalError,
    Subcode::InvalidAddressingHeader,
    Subcode::MessageAddressingHeaderRequired,
    Subcode::DestinationUnreachable,
    Subcode::ActionNotSupported,
    Subcode::EndpointUnavailable,
];

impl Subcode {
    /// The subcode's namespace and local name.
    pub fn name(self) -> (&'static str, &'static str) {
        match self {
            Subcode::InvalidHeader => (INT_NS, "InvalidHeader"),
            Subcode::DataError => (INT_NS, "DataError"),
            Subcode::InternalError => (INT_NS, "InternalError"),
            Subcode::InvalidAddressingHeader => (WSA_NS, "InvalidAddressingHeader"),
            Subcode::MessageAddressingHeaderRequired => (WSA_NS, "MessageAddressingHeaderRequired"),
            Subcode::DestinationUnreachable => (WSA_NS, "DestinationUnreachable"),
            Subcode::ActionNotSupported => (WSA_NS, "ActionNotSupported"),
            Subcode::EndpointUnavailable => (WSA_NS, "EndpointUnavailable"),
        }
    }

    /// As written in a Fault: `int:DataError`, `wsa:EndpointUnavailable`.
    pub fn qname(self) -> String {
        let (ns, local) = self.name();
        let prefix = if ns == INT_NS { "int" } else { "wsa" };
        format!("{prefix}:{local}")
    }

    /// The code table 8 gives the subcode.
    pub fn code(self) -> FaultCode {
        match self {
            Subcode::InternalError | Subcode::EndpointUnavailable => FaultCode::Receiver,
            _ => FaultCode::Sender,
        }
    }

    pub fn from_name(ns: &str, local: &str) -> Option<Subcode> {
        SUBCODES.into_iter().find(|s| s.name() == (ns, local))
    }

    /// The subcode for an envelope refused by rule `e`: a missing addressing header, a missing
    /// IIS header, a wrong header, or the content.
    pub fn for_error(e: &EnvelopeError) -> Subcode {
        let iis_header = matches!(
            e.rule,
            Rule::ConversationId
                | Rule::ProcedureId
                | Rule::IntegrationMissing
                | Rule::IntegrationReserved
                | Rule::IntegrationValue
        );
        match (e.rule.is_header_rule(), e.missing, iis_header) {
            (true, true, true) => Subcode::InvalidHeader,
            (true, true, false) => Subcode::MessageAddressingHeaderRequired,
            (true, false, _) => Subcode::InvalidAddressingHeader,
            (false, _, _) => Subcode::DataError,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    pub subcode: Option<Subcode>,
    /// The reason text in Russian, which every Fault carries.
    pub reason_ru: String,
    /// Reason texts in other languages, `(xml:lang, text)` (item 75 allows several `soap:Text`
    /// with distinct languages).
    pub reasons: Vec<(String, String)>,
    /// The faulty message as text, when there is one to quote.
    pub problem_message: Option<String>,
}

/// The most bytes of a problem message a Fault quotes: enough to find the message, never so
/// much that a refusal costs more than the request (a large body of `]]>` would otherwise come
/// back several times its size).
pub const MAX_QUOTE: usize = 8 * 1024;

/// The part of a problem message a Fault quotes: all of it when it is short, else its first
/// [`MAX_QUOTE`] bytes (cut at a character) and how long it was.
pub fn quote(problem: &[u8]) -> String {
    if problem.len() <= MAX_QUOTE {
        return String::from_utf8_lossy(problem).into_owned();
    }
    let mut end = MAX_QUOTE;
    // A UTF-8 continuation byte is 10xxxxxx: step back to the start of a character.
    while end > 0 && problem[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    format!(
        "{}… ({} bytes in all)",
        String::from_utf8_lossy(&problem[..end]),
        problem.len()
    )
}

impl Fault {
    /// The Fault for an envelope the receiver refused, with the subcode table 8 gives its rule.
    pub fn for_error(e: &EnvelopeError, problem: Option<&[u8]>) -> Fault {
        let subcode = Subcode::for_error(e);
        Fault {
            code: subcode.code(),
            subcode: Some(subcode),
            reason_ru: quote(format!("Сообщение отклонено: {e}").as_bytes()),
            reasons: vec![(
                "en".into(),
                quote(format!("Message refused: {e}").as_bytes()),
            )],
            problem_message: problem.map(quote),
        }
    }

    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.reason_ru.trim().is_empty() {
            return err(Rule::Fault, "the Fault reason text is empty");
        }
        let mut langs = vec!["ru"];
        for (lang, text) in &self.reasons {
            let ok_lang = !lang.is_empty()
                && lang.len() <= 35
                && lang.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
            if !ok_lang || langs.iter().any(|l| l.eq_ignore_ascii_case(lang)) {
                return err(
                    Rule::Fault,
                    format!("reason language {lang:?} is not a distinct language tag"),
                );
            }
            if text.trim().is_empty() {
                return err(Rule::Fault, format!("the {lang} reason text is empty"));
            }
            langs.push(lang);
        }
        if let Some(s) = self.subcode
            && s.code() != self.code
        {
            return err(
                Rule::Fault,
                format!(
                    "subcode {} goes with soap:{:?}, not soap:{:?} (table 8)",
                    s.qname(),
                    s.code(),
                    self.code
                ),
            );
        }
        Ok(())
    }

    pub(crate) fn write(&self, out: &mut String) {
        let code = match self.code {
            FaultCode::Sender => "soap:Sender",
            FaultCode::Receiver => "soap:Receiver",
        };
        let _ = write!(
            out,
            "<soap:Fault>\n      <soap:Code>\n        <soap:Value>{code}</soap:Value>"
        );
        if let Some(s) = self.subcode {
            let _ = write!(
                out,
                "\n        <soap:Subcode><soap:Value>{}</soap:Value></soap:Subcode>",
                s.qname()
            );
        }
        let _ = write!(
            out,
            "\n      </soap:Code>\n      <soap:Reason><soap:Text xml:lang=\"ru\">{}</soap:Text>",
            crate::escape::text(&self.reason_ru)
        );
        for (lang, text) in &self.reasons {
            let _ = write!(
                out,
                "<soap:Text xml:lang=\"{}\">{}</soap:Text>",
                crate::escape::attr(lang),
                crate::escape::text(text)
            );
        }
        out.push_str("</soap:Reason>");
        if let Some(p) = &self.problem_message {
            // CDATA as the Decision recommends; a "]]>" inside is split across two sections.
            let _ = write!(
                out,
                "\n      <soap:Detail><int:ProblemMessage><![CDATA[{}]]></int:ProblemMessage></soap:Detail>",
                p.replace("]]>", "]]]]><![CDATA[>")
            );
        }
        out.push_str("\n    </soap:Fault>");
    }

    /// Reads a `soap:Fault`; `scope` holds the namespace declarations in force at the Fault.
    pub(crate) fn read(
        el: &Element,
        scope: &[(Option<String>, String)],
    ) -> Result<Fault, EnvelopeError> {
        let scope = with_decls(scope, el);
        let mut code = None;
        let mut subcode = None;
        let mut reason = None;
        let mut others = Vec::new();
        let mut problem = None;
        for c in &el.children {
            match (c.ns.as_deref(), c.local.as_str()) {
                (Some(SOAP_NS), "Code") => {
                    let cs = with_decls(&scope, c);
                    let value = c
                        .children
                        .iter()
                        .find(|v| v.is(SOAP_NS, "Value"))
                        .ok_or_else(|| {
                            EnvelopeError::new(Rule::Fault, "soap:Code without soap:Value")
                        })?;
                    let (ns, local) = resolve_qname(&with_decls(&cs, value), value.text.trim())?;
                    code = Some(match (ns.as_deref(), local.as_str()) {
                        (Some(SOAP_NS), "Sender") => FaultCode::Sender,
                        (Some(SOAP_NS), "Receiver") => FaultCode::Receiver,
                        _ => {
                            return err(
                                Rule::Fault,
                                format!(
                                    "fault code {:?} is not soap:Sender or soap:Receiver",
                                    value.text.trim()
                                ),
                            );
                        }
                    });
                    if let Some(sc) = c.children.iter().find(|v| v.is(SOAP_NS, "Subcode")) {
                        let scs = with_decls(&cs, sc);
                        let v = sc
                            .children
                            .iter()
                            .find(|v| v.is(SOAP_NS, "Value"))
                            .ok_or_else(|| {
                                EnvelopeError::new(Rule::Fault, "soap:Subcode without soap:Value")
                            })?;
                        let (ns, local) = resolve_qname(&with_decls(&scs, v), v.text.trim())?;
                        subcode = Some(
                            Subcode::from_name(ns.as_deref().unwrap_or_default(), &local)
                                .ok_or_else(|| {
                                    EnvelopeError::new(
                                        Rule::Fault,
                                        format!(
                                            "subcode {:?} is not one of table 8",
                                            v.text.trim()
                                        ),
                                    )
                                })?,
                        );
                    }
                }
                (Some(SOAP_NS), "Reason") => {
                    // Item 75: one soap:Text per language, one of them Russian.
                    let mut ru = None;
                    for t in c.children.iter().filter(|t| t.is(SOAP_NS, "Text")) {
                        let lang = t.attr(Some(XML_NS), "lang").ok_or_else(|| {
                            EnvelopeError::new(Rule::Fault, "a soap:Text without xml:lang")
                        })?;
                        if lang == "ru" {
                            if ru.is_some() {
                                return err(Rule::Fault, "two soap:Text in Russian");
                            }
                            ru = Some(t.text.clone());
                        } else {
                            others.push((lang.to_owned(), t.text.clone()));
                        }
                    }
                    reason = Some(ru.ok_or_else(|| {
                        EnvelopeError::new(
                            Rule::Fault,
                            "soap:Reason must hold a soap:Text with xml:lang=\"ru\"",
                        )
                    })?);
                }
                (Some(SOAP_NS), "Detail") => {
                    for d in &c.children {
                        if d.is(INT_NS, "ProblemMessage") {
                            problem = Some(d.text.clone());
                        }
                    }
                }
                (Some(SOAP_NS), "Node" | "Role") => {}
                _ => {
                    return err(
                        Rule::Fault,
                        format!("unexpected element {} in soap:Fault", c.qname()),
                    );
                }
            }
        }
        let f = Fault {
            code: code
                .ok_or_else(|| EnvelopeError::new(Rule::Fault, "soap:Fault without soap:Code"))?,
            subcode,
            reason_ru: reason
                .ok_or_else(|| EnvelopeError::new(Rule::Fault, "soap:Fault without soap:Reason"))?,
            reasons: others,
            problem_message: problem,
        };
        f.validate()?;
        Ok(f)
    }
}

pub(crate) fn with_decls(
    scope: &[(Option<String>, String)],
    el: &Element,
) -> Vec<(Option<String>, String)> {
    let mut s = scope.to_vec();
    s.extend(el.decls.iter().cloned());
    s
}

fn resolve_qname(
    scope: &[(Option<String>, String)],
    q: &str,
) -> Result<(Option<String>, String), EnvelopeError> {
    let (prefix, local) = match q.split_once(':') {
        Some((p, l)) => (Some(p.to_owned()), l.to_owned()),
        None => (None, q.to_owned()),
    };
    let ns = scope
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, u)| u.clone());
    if prefix.is_some() && ns.is_none() {
        return err(Rule::Fault, format!("prefix of {q:?} is not declared"));
    }
    Ok((ns, local))
}
