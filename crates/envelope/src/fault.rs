//! SOAP 1.2 Faults as technological error messages: `soap:Sender` or `soap:Receiver`, exactly
//! one Russian reason text, and the problem message quoted in `int:ProblemMessage`.

use std::fmt::Write as _;

use crate::error::{EnvelopeError, Rule, err};
use crate::xml::{Element, XML_NS};
use crate::{INT_NS, SOAP_NS};

/// Who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The message was wrong (header or data); resending it unchanged will fail again.
    Sender,
    /// The receiver failed internally; the same message may succeed later.
    Receiver,
}

/// Subcodes in the `int:` namespace.
///
/// Decision No. 5 table 8 lists the subcode QNames; the reference did not capture them, so these
/// local names are ours ("invalid header", "data error", "internal error" are the meanings seen).
pub const SUBCODE_INVALID_HEADER: &str = "InvalidHeader";
pub const SUBCODE_DATA_ERROR: &str = "DataError";
pub const SUBCODE_INTERNAL_ERROR: &str = "InternalError";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    /// Local name of the subcode in the `int:` namespace.
    pub subcode: Option<String>,
    /// The one reason text, in Russian.
    pub reason_ru: String,
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
    /// The Fault for an envelope the receiver refused.
    pub fn for_error(e: &EnvelopeError, problem: Option<&[u8]>) -> Fault {
        let (code, subcode) = if e.rule.is_header_rule() {
            (FaultCode::Sender, SUBCODE_INVALID_HEADER)
        } else {
            (FaultCode::Sender, SUBCODE_DATA_ERROR)
        };
        Fault {
            code,
            subcode: Some(subcode.to_owned()),
            reason_ru: quote(format!("Сообщение отклонено: {}", e).as_bytes()),
            problem_message: problem.map(quote),
        }
    }

    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.reason_ru.trim().is_empty() {
            return err(Rule::Fault, "the Fault reason text is empty");
        }
        if let Some(s) = &self.subcode
            && (s.is_empty() || !s.bytes().all(|c| c.is_ascii_alphanumeric()))
        {
            return err(Rule::Fault, format!("subcode {s:?} is not a local name"));
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
        if let Some(s) = &self.subcode {
            let _ = write!(
                out,
                "\n        <soap:Subcode><soap:Value>int:{s}</soap:Value></soap:Subcode>"
            );
        }
        let _ = write!(
            out,
            "\n      </soap:Code>\n      <soap:Reason><soap:Text xml:lang=\"ru\">{}</soap:Text></soap:Reason>",
            crate::escape::text(&self.reason_ru)
        );
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
                        if ns.as_deref() != Some(INT_NS) {
                            return err(
                                Rule::Fault,
                                format!("subcode {:?} is not in the int: namespace", v.text.trim()),
                            );
                        }
                        subcode = Some(local);
                    }
                }
                (Some(SOAP_NS), "Reason") => {
                    let texts: Vec<&Element> = c
                        .children
                        .iter()
                        .filter(|t| t.is(SOAP_NS, "Text"))
                        .collect();
                    let ru: Vec<&&Element> = texts
                        .iter()
                        .filter(|t| t.attr(Some(XML_NS), "lang") == Some("ru"))
                        .collect();
                    if texts.len() != 1 || ru.len() != 1 {
                        return err(
                            Rule::Fault,
                            format!(
                                "soap:Reason must hold exactly one soap:Text with xml:lang=\"ru\" (found {} texts, {} in Russian)",
                                texts.len(),
                                ru.len()
                            ),
                        );
                    }
                    reason = Some(ru[0].text.clone());
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
