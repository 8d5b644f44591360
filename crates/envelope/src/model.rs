//! The envelope model: header, body kinds (e-document, signal, Fault) and the rule checks that
//! both the parser and the builders go through, so an envelope we write is one we would accept.

use time::OffsetDateTime;

use crate::codes::{Action, Address, CpAction, SignalKind, Step};
use crate::error::{EnvelopeError, Rule, err};
use crate::fault::Fault;
use crate::ids::UrnUuid;
use crate::signal::Signal;
use crate::xml::{self, Limits};
use crate::{INT_NS, SOAP_NS, WSA_NS};

/// `int:Integration`: written by the integration platform when it accepts an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub track_id: UrnUuid,
    /// Always UTC; written with `Z`.
    pub accept_time: OffsetDateTime,
}

/// `wsa:RelatesTo`, with the `int:RelatesAction` attribute that Faults carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatesTo {
    pub id: UrnUuid,
    pub relates_action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub to: Option<Address>,
    pub reply_to: Option<Address>,
    pub action: Action,
    pub message_id: UrnUuid,
    pub relates_to: Option<RelatesTo>,
    pub conversation_id: Option<UrnUuid>,
    pub procedure_id: Option<UrnUuid>,
    pub integration: Option<Integration>,
}

/// The single element the Body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// An e-document, as the exact text of its root element (namespace declarations it needs
    /// from the envelope are added to its start tag, nothing else is touched).
    Document(String),
    Signal(Signal),
    Fault(Fault),
}

/// A Decision No. 5 envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Header,
    pub body: Body,
}

/// Who hands us the envelope, which decides the `int:Integration` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An authority's information system: it must not write `int:Integration`.
    InformationSystem,
    /// Another node of the platform: the envelope was accepted there, so `int:Integration`
    /// must be present (Faults excepted).
    Platform,
    /// Tools and stored copies: `int:Integration` may or may not be there.
    Any,
}

/// What kind of message an Action makes the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Application,
    Signal(SignalKind),
    Fault,
}

impl Header {
    pub fn kind(&self) -> MessageKind {
        match &self.action {
            Action::Fault(_) => MessageKind::Fault,
            Action::Cp(CpAction {
                step: Step::Signal(k),
                ..
            }) => MessageKind::Signal(*k),
            Action::Cp(_) => MessageKind::Application,
        }
    }

    pub fn cp_action(&self) -> Option<&CpAction> {
        match &self.action {
            Action::Cp(a) => Some(a),
            Action::Fault(_) => None,
        }
    }
}

/// The fields an information system chooses for an application message.
#[derive(Debug, Clone)]
pub struct ApplicationMessage {
    pub to: Address,
    pub reply_to: Address,
    pub action: CpAction,
    pub message_id: UrnUuid,
    pub relates_to: Option<UrnUuid>,
    pub conversation_id: UrnUuid,
    pub procedure_id: Option<UrnUuid>,
    /// The e-document: one XML element, optionally preceded by an XML declaration.
    pub document: String,
}

impl Envelope {
    /// Builds an application message, checking the e-document is a single safe XML element
    /// within `limits` (a node passes its configured ones, the same the SOAP path uses).
    pub fn application(m: ApplicationMessage, limits: Limits) -> Result<Envelope, EnvelopeError> {
        let document = document_text(&m.document, limits)?;
        let env = Envelope {
            header: Header {
                to: Some(m.to),
                reply_to: Some(m.reply_to),
                action: Action::Cp(m.action),
                message_id: m.message_id,
                relates_to: m.relates_to.map(|id| RelatesTo {
                    id,
                    relates_action: None,
                }),
                conversation_id: Some(m.conversation_id),
                procedure_id: m.procedure_id,
                integration: None,
            },
            body: Body::Document(document),
        };
        env.validate(Origin::InformationSystem)?;
        Ok(env)
    }

    /// A signal answering `original`: new MessageID, RelatesTo = the original's MessageID,
    /// the same ConversationID and ProcedureID, sent to the original's ReplyTo from `from`.
    pub fn signal_for(
        original: &Header,
        from: Address,
        signal: Signal,
    ) -> Result<Envelope, EnvelopeError> {
        let Some(action) = original.cp_action() else {
            return err(Rule::Signal, "a Fault is never answered with a signal");
        };
        let to = original.reply_to.clone().ok_or_else(|| {
            EnvelopeError::new(
                Rule::ReplyTo,
                "the original message has no ReplyTo to answer",
            )
        })?;
        let env = Envelope {
            header: Header {
                to: Some(to),
                reply_to: Some(from),
                action: Action::Cp(action.for_signal(signal.kind)),
                message_id: UrnUuid::new_v4(),
                relates_to: Some(RelatesTo {
                    id: original.message_id,
                    relates_action: None,
                }),
                conversation_id: original.conversation_id,
                procedure_id: original.procedure_id,
                integration: None,
            },
            body: Body::Signal(signal),
        };
        env.validate(Origin::Any)?;
        Ok(env)
    }

    /// A technological error message (SOAP Fault) about a problem message.
    ///
    /// `problem` is what could be read of the faulty message: its header if it parsed that
    /// far. Without a header the Fault carries no RelatesTo (nothing to relate to) but still
    /// quotes the problem bytes.
    pub fn fault(problem: Option<&Header>, fault: Fault) -> Envelope {
        let header = Header {
            to: problem.and_then(|h| h.reply_to.clone()),
            reply_to: None,
            action: Action::Fault(crate::codes::WSA_SOAP_FAULT_ACTION.to_owned()),
            message_id: UrnUuid::new_v4(),
            relates_to: problem.map(|h| RelatesTo {
                id: h.message_id,
                relates_action: Some(h.action.to_string()),
            }),
            conversation_id: problem.and_then(|h| h.conversation_id),
            procedure_id: problem.and_then(|h| h.procedure_id),
            integration: None,
        };
        let env = Envelope {
            header,
            body: Body::Fault(fault),
        };
        // Like every builder, this one answers only what the parser would accept. A Fault the
        // caller got wrong (an empty reason, a subcode that is no local name) still has to say
        // something to the sender, so it becomes a receiver Fault that names the broken rule.
        match env.validate(Origin::Any) {
            Ok(()) => env,
            Err(e) => Envelope {
                body: Body::Fault(Fault {
                    code: crate::FaultCode::Receiver,
                    subcode: Some(crate::Subcode::InternalError),
                    reason_ru: format!("Внутренняя ошибка при составлении ответа: {e}"),
                    reasons: Vec::new(),
                    problem_message: None,
                }),
                ..env
            },
        }
    }

    /// Writes `int:Integration`; only the platform calls this, when it accepts the envelope.
    pub fn stamp(&mut self, track_id: UrnUuid, accept_time: OffsetDateTime) {
        self.header.integration = Some(Integration {
            track_id,
            // UTC, to the microsecond: the stores keep microseconds.
            accept_time: accept_time
                .to_offset(time::UtcOffset::UTC)
                .replace_nanosecond(accept_time.microsecond() * 1000)
                .unwrap_or(accept_time),
        });
    }

    /// Checks every header rule that depends on the message kind and on who sent it.
    pub fn validate(&self, origin: Origin) -> Result<(), EnvelopeError> {
        let h = &self.header;
        let kind = h.kind();
        match (kind, &self.body) {
            (MessageKind::Application, Body::Document(_)) => {}
            (MessageKind::Signal(k), Body::Signal(s)) => {
                if s.kind != k {
                    return err(
                        Rule::Signal,
                        format!(
                            "Action names signal {} but the body is a {} signal",
                            k.code(),
                            s.kind.code()
                        ),
                    );
                }
                s.validate()?;
            }
            (MessageKind::Fault, Body::Fault(f)) => f.validate()?,
            (MessageKind::Application, _) => {
                return err(
                    Rule::BodyOneDocument,
                    "a common-process message must carry an e-document, not a signal or Fault",
                );
            }
            (MessageKind::Signal(_), _) => {
                return err(Rule::Signal, "a signal Action needs a signal body");
            }
            (MessageKind::Fault, _) => {
                return err(Rule::Fault, "a fault Action needs a soap:Fault body");
            }
        }
        match kind {
            MessageKind::Application | MessageKind::Signal(_) => {
                if h.to.is_none() {
                    return Err(EnvelopeError::missing(Rule::To, "wsa:To is mandatory"));
                }
                if kind == MessageKind::Application && h.reply_to.is_none() {
                    return Err(EnvelopeError::missing(
                        Rule::ReplyTo,
                        "wsa:ReplyTo/wsa:Address is mandatory in common-process messages",
                    ));
                }
                if h.conversation_id.is_none() {
                    return Err(EnvelopeError::missing(
                        Rule::ConversationId,
                        "int:ConversationID is mandatory",
                    ));
                }
                if let Some(r) = &h.relates_to {
                    if r.relates_action.is_some() {
                        return err(
                            Rule::RelatesTo,
                            "int:RelatesAction belongs on the RelatesTo of a Fault only",
                        );
                    }
                } else if matches!(kind, MessageKind::Signal(_)) {
                    return Err(EnvelopeError::missing(
                        Rule::RelatesTo,
                        "a signal must carry wsa:RelatesTo naming the message it answers",
                    ));
                }
            }
            MessageKind::Fault => {
                if h.reply_to.is_some() {
                    return err(Rule::FromFaultToForbidden, "a Fault has no wsa:ReplyTo");
                }
                if let Some(r) = &h.relates_to {
                    match &r.relates_action {
                        None => {
                            return err(
                                Rule::Fault,
                                "the RelatesTo of a Fault must carry int:RelatesAction",
                            );
                        }
                        Some(a) => {
                            Action::parse(a).map_err(|e| {
                                EnvelopeError::new(
                                    Rule::Fault,
                                    format!("int:RelatesAction is not an Action: {}", e.detail),
                                )
                            })?;
                        }
                    }
                }
            }
        }
        match (origin, &h.integration, kind) {
            (Origin::InformationSystem, Some(_), _) => err(
                Rule::IntegrationReserved,
                "int:Integration is written by the integration platform only, never by an information system",
            ),
            (Origin::Platform, None, MessageKind::Application | MessageKind::Signal(_)) => {
                Err(EnvelopeError::missing(
                    Rule::IntegrationMissing,
                    "an envelope from another node must carry int:Integration (TrackID, AcceptTime)",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The sender as the envelope names it (ReplyTo), if any.
    pub fn sender(&self) -> Option<&Address> {
        self.header.reply_to.as_ref()
    }
}

/// Checks `xml` is exactly one element (after an optional XML declaration) and returns the text
/// of that element.
pub fn document_text(xml_text: &str, limits: Limits) -> Result<String, EnvelopeError> {
    let xml_text = xml_text.strip_prefix('\u{FEFF}').unwrap_or(xml_text);
    let root = xml::read_text(xml_text, limits)?;
    if root.ns.as_deref() == Some(SOAP_NS)
        || root.ns.as_deref() == Some(WSA_NS)
        || root.ns.as_deref() == Some(INT_NS)
    {
        return err(
            Rule::BodyOneDocument,
            format!(
                "the e-document root {} is an envelope element",
                root.qname()
            ),
        );
    }
    Ok(xml_text[root.start..root.end].to_owned())
}
