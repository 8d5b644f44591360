//! Errors of the envelope crate: every refusal names the Decision No. 5 rule it enforces.

use std::fmt;

/// A rule of the exchange format that an envelope can break.
///
/// Each rule carries its Decision No. 5 paragraph (as cited in `eaeu-iis-reference.md`) so a
/// Fault or an operator log can point at the text, and a stable identifier for tests and APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Input is not well-formed UTF-8 XML.
    XmlMalformed,
    /// A document type declaration (DTD) appeared; DTDs are refused outright.
    XmlDtd,
    /// An entity reference other than the five predefined ones or a character reference.
    XmlEntity,
    /// A processing instruction other than the XML declaration.
    XmlProcessingInstruction,
    /// The input is larger than the configured limit.
    XmlTooLarge,
    /// Elements nest deeper than the configured limit.
    XmlTooDeep,
    /// The root is not a SOAP 1.2 `Envelope`.
    SoapVersion,
    /// `Header`/`Body` missing, repeated, out of order, or stray content.
    SoapStructure,
    /// The Body must carry exactly one element (the e-document, signal or Fault).
    BodyOneDocument,
    /// A header element appears more than once.
    HeaderDuplicate,
    /// An unknown header in the WS-Addressing or `int:` namespace, or a foreign header marked
    /// `mustUnderstand`.
    HeaderUnknown,
    /// `wsa:To` missing or not a logical address.
    To,
    /// `wsa:ReplyTo/wsa:Address` missing or not a logical address.
    ReplyTo,
    /// `wsa:From` or `wsa:FaultTo` present in a common-process message or a Fault.
    FromFaultToForbidden,
    /// `wsa:MessageID` missing or not a `urn:uuid`.
    MessageId,
    /// `wsa:RelatesTo` missing where required or not a `urn:uuid`.
    RelatesTo,
    /// `wsa:Action` missing or not of the grammar `int://CP/<process>/<version>/<PRC>/<TRN>/<MSG>`.
    Action,
    /// An Action whose procedure, transaction or message code belongs to another process.
    ActionConsistency,
    /// `int:ConversationID` missing or not a `urn:uuid`.
    ConversationId,
    /// `int:ProcedureID` not a `urn:uuid`.
    ProcedureId,
    /// `int:Integration` came from an information system; only the platform writes it.
    IntegrationReserved,
    /// `int:Integration` missing from an envelope that crossed the platform.
    IntegrationMissing,
    /// `int:TrackID` not a `urn:uuid` or `int:AcceptTime` not UTC with `Z`.
    IntegrationValue,
    /// A signal body that does not match its Action or breaks the signal structure.
    Signal,
    /// A SOAP Fault that breaks the Fault rules (one `ru` reason, `int:RelatesAction`, …).
    Fault,
    /// A logical address that breaks the `EAEU://` grammar.
    Address,
}

impl Rule {
    /// Stable identifier, used in API errors and tests.
    pub fn id(self) -> &'static str {
        match self {
            Rule::XmlMalformed => "xml.malformed",
            Rule::XmlDtd => "xml.dtd",
            Rule::XmlEntity => "xml.entity",
            Rule::XmlProcessingInstruction => "xml.pi",
            Rule::XmlTooLarge => "xml.too-large",
            Rule::XmlTooDeep => "xml.too-deep",
            Rule::SoapVersion => "soap.version",
            Rule::SoapStructure => "soap.structure",
            Rule::BodyOneDocument => "body.one-document",
            Rule::HeaderDuplicate => "header.duplicate",
            Rule::HeaderUnknown => "header.unknown",
            Rule::To => "header.to",
            Rule::ReplyTo => "header.reply-to",
            Rule::FromFaultToForbidden => "header.from-fault-to",
            Rule::MessageId => "header.message-id",
            Rule::RelatesTo => "header.relates-to",
            Rule::Action => "header.action",
            Rule::ActionConsistency => "header.action-consistency",
            Rule::ConversationId => "header.conversation-id",
            Rule::ProcedureId => "header.procedure-id",
            Rule::IntegrationReserved => "header.integration-reserved",
            Rule::IntegrationMissing => "header.integration-missing",
            Rule::IntegrationValue => "header.integration-value",
            Rule::Signal => "signal",
            Rule::Fault => "fault",
            Rule::Address => "address",
        }
    }

    /// Decision No. 5 paragraphs the rule comes from (empty for XML safety rules, which are ours).
    pub fn paragraphs(self) -> &'static str {
        match self {
            Rule::XmlMalformed
            | Rule::XmlDtd
            | Rule::XmlEntity
            | Rule::XmlProcessingInstruction
            | Rule::XmlTooLarge
            | Rule::XmlTooDeep => "",
            Rule::SoapVersion => "18",
            Rule::SoapStructure => "18, 29",
            Rule::BodyOneDocument => "19, 26, 63",
            Rule::HeaderDuplicate | Rule::HeaderUnknown => "29",
            Rule::To => "30",
            Rule::ReplyTo => "32, 34, 58, 62",
            Rule::FromFaultToForbidden => "58, 66-76",
            Rule::MessageId => "36",
            Rule::RelatesTo => "37, 102",
            Rule::Action => "38, 59, 60",
            Rule::ActionConsistency => "59, 60",
            Rule::ConversationId => "40",
            Rule::ProcedureId => "39",
            Rule::IntegrationReserved | Rule::IntegrationMissing | Rule::IntegrationValue => {
                "41-44"
            }
            Rule::Signal => "112-121",
            Rule::Fault => "66-76",
            Rule::Address => "45-56",
        }
    }

    /// True for rules about the envelope header (a SOAP Fault subcode "invalid header").
    pub fn is_header_rule(self) -> bool {
        self.id().starts_with("header.")
    }
}

/// An envelope, address or action was refused; `detail` says exactly what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    pub rule: Rule,
    pub detail: String,
    /// The header the rule is about is absent (not wrong): a Fault says so with its own
    /// subcode (table 8).
    pub missing: bool,
}

impl EnvelopeError {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        EnvelopeError {
            rule,
            detail: detail.into(),
            missing: false,
        }
    }

    /// A mandatory header is absent.
    pub fn missing(rule: Rule, detail: impl Into<String>) -> Self {
        EnvelopeError {
            missing: true,
            ..EnvelopeError::new(rule, detail)
        }
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule.id(), self.detail)
    }
}

impl std::error::Error for EnvelopeError {}

pub(crate) fn err<T>(rule: Rule, detail: impl Into<String>) -> Result<T, EnvelopeError> {
    Err(EnvelopeError::new(rule, detail))
}
