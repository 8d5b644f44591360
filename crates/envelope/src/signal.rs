//! Signals RCV («Получено»), PRS («Принято в обработку») and ERR (signal-exception) with their
//! error entries (`Common:UnexpectedMessage`, `Common:DataError`, `Common:FatalError` or a
//! process's own code).

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::codes::SignalKind;
use crate::error::{EnvelopeError, Rule, err};
use crate::ids::UrnUuid;
use crate::xml::Element;

/// Namespace of signal bodies.
///
/// Decision No. 5 appendix 5 defines a separate signal namespace whose URI the reference notes
/// did not capture; this one is ours, kept in one place so it can be swapped for the official
/// URI once appendix 5 is read.
pub const SIGNAL_NS: &str = "urn:EEC:Interaction:Signal:v1.0";

/// The error code of an ERR entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A message not expected in the transaction's state or from that role.
    UnexpectedMessage,
    /// The content is invalid (XSD, filling rules, code lists).
    DataError,
    /// An unrecoverable failure of processing.
    FatalError,
    /// A code of the common process itself (e.g. a filling-rule id).
    Process(String),
}

impl ErrorCode {
    pub fn parse(s: &str) -> Result<Self, EnvelopeError> {
        if s.is_empty() || s.chars().count() > 255 {
            return err(
                Rule::Signal,
                format!(
                    "error code must be 1-255 characters, got {}",
                    s.chars().count()
                ),
            );
        }
        Ok(match s {
            "Common:UnexpectedMessage" => ErrorCode::UnexpectedMessage,
            "Common:DataError" => ErrorCode::DataError,
            "Common:FatalError" => ErrorCode::FatalError,
            other if other.starts_with("Common:") => {
                return err(
                    Rule::Signal,
                    format!("{other:?} is not one of the Common:* codes of Decision No. 5"),
                );
            }
            other => ErrorCode::Process(other.to_owned()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::UnexpectedMessage => "Common:UnexpectedMessage",
            ErrorCode::DataError => "Common:DataError",
            ErrorCode::FatalError => "Common:FatalError",
            ErrorCode::Process(s) => s,
        }
    }
}

/// One error entry of an ERR signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    pub code: ErrorCode,
    pub description: String,
    pub details: Option<String>,
    /// The `EDocId` of the e-document the error is about.
    pub edoc_id: Option<String>,
    /// Where in the document (for example an XPath).
    pub reference: Option<String>,
}

/// The body of a signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    pub signal_id: UrnUuid,
    /// Creation time; always carries its offset (Decision No. 5 requires a time zone).
    pub created: OffsetDateTime,
    /// Non-empty for ERR, empty for RCV and PRS.
    pub errors: Vec<SignalError>,
}

impl Signal {
    pub fn new(kind: SignalKind, created: OffsetDateTime) -> Signal {
        Signal {
            kind,
            signal_id: UrnUuid::new_v4(),
            created,
            errors: Vec::new(),
        }
    }

    pub fn err(created: OffsetDateTime, errors: Vec<SignalError>) -> Signal {
        Signal {
            errors,
            ..Signal::new(SignalKind::Err, created)
        }
    }

    pub fn validate(&self) -> Result<(), EnvelopeError> {
        match (self.kind, self.errors.is_empty()) {
            (SignalKind::Err, true) => err(Rule::Signal, "an ERR signal lists at least one error"),
            (SignalKind::Rcv | SignalKind::Prs, false) => err(
                Rule::Signal,
                format!("a {} signal carries no errors", self.kind.code()),
            ),
            _ => {
                for e in &self.errors {
                    ErrorCode::parse(e.code.as_str())?;
                    if e.description.trim().is_empty() {
                        return err(Rule::Signal, "every error entry needs a description");
                    }
                }
                Ok(())
            }
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        let created = self.created.format(&Rfc3339).unwrap_or_default();
        let _ = write!(
            out,
            "<sig:SignalDetails xmlns:sig=\"{SIGNAL_NS}\">\n      <sig:SignalCode>{}</sig:SignalCode>\n      <sig:SignalId>{}</sig:SignalId>\n      <sig:CreationDateTime>{created}</sig:CreationDateTime>",
            self.kind.code(),
            self.signal_id,
        );
        for e in &self.errors {
            let _ = write!(
                out,
                "\n      <sig:ValidationError>\n        <sig:Code>{}</sig:Code>\n        <sig:Description>{}</sig:Description>",
                crate::escape::text(e.code.as_str()),
                crate::escape::text(&e.description)
            );
            for (name, v) in [
                ("Details", &e.details),
                ("EDocId", &e.edoc_id),
                ("ReferenceId", &e.reference),
            ] {
                if let Some(v) = v {
                    let _ = write!(
                        out,
                        "\n        <sig:{name}>{}</sig:{name}>",
                        crate::escape::text(v)
                    );
                }
            }
            out.push_str("\n      </sig:ValidationError>");
        }
        out.push_str("\n    </sig:SignalDetails>");
    }

    pub(crate) fn read(el: &Element) -> Result<Signal, EnvelopeError> {
        if !el.is(SIGNAL_NS, "SignalDetails") {
            return err(
                Rule::Signal,
                format!(
                    "signal body must be {{{SIGNAL_NS}}}SignalDetails, found {}",
                    el.qname()
                ),
            );
        }
        let mut code = None;
        let mut id = None;
        let mut created = None;
        let mut errors = Vec::new();
        for c in &el.children {
            if c.ns.as_deref() != Some(SIGNAL_NS) {
                return err(
                    Rule::Signal,
                    format!("unexpected element {} in a signal", c.qname()),
                );
            }
            match c.local.as_str() {
                "SignalCode" => set_once(&mut code, c.text.trim().to_owned(), "SignalCode")?,
                "SignalId" => set_once(
                    &mut id,
                    UrnUuid::parse_for(c.text.trim(), Rule::Signal)?,
                    "SignalId",
                )?,
                "CreationDateTime" => {
                    let t = OffsetDateTime::parse(c.text.trim(), &Rfc3339).map_err(|_| {
                        EnvelopeError::new(
                            Rule::Signal,
                            format!(
                                "CreationDateTime {:?} is not an ISO 8601 date-time with a time zone",
                                c.text.trim()
                            ),
                        )
                    })?;
                    set_once(&mut created, t, "CreationDateTime")?
                }
                "ValidationError" => errors.push(read_error(c)?),
                other => {
                    return err(
                        Rule::Signal,
                        format!("unexpected element {other} in a signal"),
                    );
                }
            }
        }
        let code = code.ok_or_else(|| EnvelopeError::new(Rule::Signal, "SignalCode missing"))?;
        let kind = SignalKind::from_code(&code).ok_or_else(|| {
            EnvelopeError::new(Rule::Signal, format!("{code:?} is not RCV, PRS or ERR"))
        })?;
        let s = Signal {
            kind,
            signal_id: id.ok_or_else(|| EnvelopeError::new(Rule::Signal, "SignalId missing"))?,
            created: created
                .ok_or_else(|| EnvelopeError::new(Rule::Signal, "CreationDateTime missing"))?,
            errors,
        };
        s.validate()?;
        Ok(s)
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), EnvelopeError> {
    if slot.is_some() {
        return err(Rule::Signal, format!("{name} appears twice"));
    }
    *slot = Some(v);
    Ok(())
}

fn read_error(el: &Element) -> Result<SignalError, EnvelopeError> {
    let mut code = None;
    let mut description = None;
    let mut details = None;
    let mut edoc_id = None;
    let mut reference = None;
    for c in &el.children {
        let v = c.text.clone();
        match (c.ns.as_deref(), c.local.as_str()) {
            (Some(SIGNAL_NS), "Code") => set_once(&mut code, ErrorCode::parse(v.trim())?, "Code")?,
            (Some(SIGNAL_NS), "Description") => set_once(&mut description, v, "Description")?,
            (Some(SIGNAL_NS), "Details") => set_once(&mut details, v, "Details")?,
            (Some(SIGNAL_NS), "EDocId") => set_once(&mut edoc_id, v, "EDocId")?,
            (Some(SIGNAL_NS), "ReferenceId") => set_once(&mut reference, v, "ReferenceId")?,
            _ => {
                return err(
                    Rule::Signal,
                    format!("unexpected element {} in ValidationError", c.qname()),
                );
            }
        }
    }
    Ok(SignalError {
        code: code
            .ok_or_else(|| EnvelopeError::new(Rule::Signal, "ValidationError without Code"))?,
        description: description.ok_or_else(|| {
            EnvelopeError::new(Rule::Signal, "ValidationError without Description")
        })?,
        details,
        edoc_id,
        reference,
    })
}
