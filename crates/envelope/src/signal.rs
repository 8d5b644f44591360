//! Signals in the form of Decision No. 5 appendix 5: RCV («Получено», `DeliveryReceipt`), PRS
//! («Принято в обработку», `ProcessingReceipt`) and ERR (signal-exception, `ValidationError`),
//! each with `SignalId` and `DateTime`, ERR with its `Error` entries (`Common:UnexpectedMessage`,
//! `Common:DataError`, `Common:FatalError` or a process's own code).

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::codes::SignalKind;
use crate::error::{EnvelopeError, Rule, err};
use crate::ids::UrnUuid;
use crate::xml::Element;

/// The signal namespace used unless the federation sets another (`signal_namespace` in
/// `node.toml`).
///
/// Decision No. 5 appendix 5 names the signal elements (`DeliveryReceipt`,
/// `ProcessingReceipt`, `ValidationError`) but the pages read do not give their namespace URI.
/// This default is the one a third-party checker of the IIS rules writes, the only public
/// trace of it; a federation that learns the official URI sets it once for all its nodes.
pub const DEFAULT_SIGNAL_NS: &str = "urn:EEC:signal:v1.0";

static SIGNAL_NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the signal namespace of this process, once: every node of a federation must use the
/// same one, and a process (the demo, a test) runs nodes of one federation. Setting the same
/// value again is fine; another value is refused.
pub fn set_signal_namespace(ns: &str) -> Result<(), String> {
    let now = SIGNAL_NAMESPACE.get_or_init(|| ns.to_owned());
    if now == ns {
        Ok(())
    } else {
        Err(format!(
            "the signal namespace of this process is already {now:?}, not {ns:?}"
        ))
    }
}

/// The signal namespace in force.
pub fn signal_namespace() -> &'static str {
    SIGNAL_NAMESPACE
        .get()
        .map(String::as_str)
        .unwrap_or(DEFAULT_SIGNAL_NS)
}

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

/// One `Error` of an ERR signal (appendix 5, table 5): a code, a description and optional
/// details. Which document and where in it go into the details: the form has no field of its
/// own for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    pub code: ErrorCode,
    pub description: String,
    pub details: Option<String>,
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

    /// The element of each kind (appendix 5, tables 2-4).
    fn element(kind: SignalKind) -> &'static str {
        match kind {
            SignalKind::Rcv => "DeliveryReceipt",
            SignalKind::Prs => "ProcessingReceipt",
            SignalKind::Err => "ValidationError",
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        let created = self.created.format(&Rfc3339).unwrap_or_default();
        let name = Signal::element(self.kind);
        // SignalId is a bare UUID, as EDocId is in the data model.
        let _ = write!(
            out,
            "<sig:{name} xmlns:sig=\"{}\">\n      <sig:SignalId>{}</sig:SignalId>\n      <sig:DateTime>{created}</sig:DateTime>",
            crate::escape::attr(signal_namespace()),
            self.signal_id.uuid().hyphenated(),
        );
        for e in &self.errors {
            let _ = write!(
                out,
                "\n      <sig:Error>\n        <sig:Code>{}</sig:Code>\n        <sig:Description>{}</sig:Description>",
                crate::escape::text(e.code.as_str()),
                crate::escape::text(&e.description)
            );
            if let Some(d) = &e.details {
                let _ = write!(
                    out,
                    "\n        <sig:Details>{}</sig:Details>",
                    crate::escape::text(d)
                );
            }
            out.push_str("\n      </sig:Error>");
        }
        let _ = write!(out, "\n    </sig:{name}>");
    }

    /// Reads a signal body; `kind` is what the Action says, and the element must agree.
    pub(crate) fn read(el: &Element, kind: SignalKind) -> Result<Signal, EnvelopeError> {
        let ns = signal_namespace();
        let name = Signal::element(kind);
        if !el.is(ns, name) {
            return err(
                Rule::Signal,
                format!(
                    "a {} signal's body must be {{{ns}}}{name}, found {}",
                    kind.code(),
                    el.qname()
                ),
            );
        }
        let mut id = None;
        let mut created = None;
        let mut errors = Vec::new();
        for c in &el.children {
            if c.ns.as_deref() != Some(ns) {
                return err(
                    Rule::Signal,
                    format!("unexpected element {} in a signal", c.qname()),
                );
            }
            match c.local.as_str() {
                "SignalId" => set_once(&mut id, signal_id(c.text.trim())?, "SignalId")?,
                "DateTime" => {
                    let t = OffsetDateTime::parse(c.text.trim(), &Rfc3339).map_err(|_| {
                        EnvelopeError::new(
                            Rule::Signal,
                            format!(
                                "DateTime {:?} is not an ISO 8601 date-time with a time zone",
                                c.text.trim()
                            ),
                        )
                    })?;
                    set_once(&mut created, t, "DateTime")?
                }
                "Error" if kind == SignalKind::Err => errors.push(read_error(c, ns)?),
                other => {
                    return err(
                        Rule::Signal,
                        format!("unexpected element {other} in a {} signal", kind.code()),
                    );
                }
            }
        }
        let s = Signal {
            kind,
            signal_id: id.ok_or_else(|| EnvelopeError::new(Rule::Signal, "SignalId missing"))?,
            created: created.ok_or_else(|| EnvelopeError::new(Rule::Signal, "DateTime missing"))?,
            errors,
        };
        s.validate()?;
        Ok(s)
    }
}

/// A SignalId: a bare UUID, or one written as `urn:uuid:` (read either way).
fn signal_id(s: &str) -> Result<UrnUuid, EnvelopeError> {
    let bare = s.strip_prefix("urn:uuid:").unwrap_or(s);
    uuid::Uuid::parse_str(bare)
        .ok()
        .filter(|_| bare.len() == 36)
        .map(UrnUuid::from_uuid)
        .ok_or_else(|| EnvelopeError::new(Rule::Signal, format!("SignalId {s:?} is not a UUID")))
}

fn set_once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), EnvelopeError> {
    if slot.is_some() {
        return err(Rule::Signal, format!("{name} appears twice"));
    }
    *slot = Some(v);
    Ok(())
}

fn read_error(el: &Element, ns: &str) -> Result<SignalError, EnvelopeError> {
    let mut code = None;
    let mut description = None;
    let mut details = None;
    for c in &el.children {
        let v = c.text.clone();
        match (c.ns.as_deref(), c.local.as_str()) {
            (Some(n), "Code") if n == ns => {
                set_once(&mut code, ErrorCode::parse(v.trim())?, "Code")?
            }
            (Some(n), "Description") if n == ns => set_once(&mut description, v, "Description")?,
            (Some(n), "Details") if n == ns => set_once(&mut details, v, "Details")?,
            _ => {
                return err(
                    Rule::Signal,
                    format!("unexpected element {} in Error", c.qname()),
                );
            }
        }
    }
    Ok(SignalError {
        code: code.ok_or_else(|| EnvelopeError::new(Rule::Signal, "Error without Code"))?,
        description: description
            .ok_or_else(|| EnvelopeError::new(Rule::Signal, "Error without Description"))?,
        details,
    })
}
