//! Code designations of common processes (`P.TS.01`, `P.TS.01.TRN.001`, …), logical
//! addresses (`EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002`) and Action URIs
//! (`int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001`).
//!
//! Everything here is checked at construction, so a value of these types is always printable
//! back to the exact text it came from.

use std::fmt;
use std::str::FromStr;

use crate::error::{EnvelopeError, Rule, err};

/// Longest logical address or Action we accept; real ones are under 100 characters.
const MAX_URI_LEN: usize = 512;

/// A common-process code, `P.<AA>.<nn>` (e.g. `P.TS.01`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessCode(String);

impl ProcessCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = b.len() == 7
            && b[0] == b'P'
            && b[1] == b'.'
            && b[2].is_ascii_uppercase()
            && b[3].is_ascii_uppercase()
            && b[4] == b'.'
            && b[5].is_ascii_digit()
            && b[6].is_ascii_digit();
        if ok {
            Ok(ProcessCode(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a common-process code of the form P.AA.nn"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that `code` is `<this process>.<kind>.<nnn>` (e.g. `P.TS.01.TRN.001`).
    pub fn check_member(&self, code: &str, kind: &str) -> Result<(), String> {
        // Bytes, not str slicing: outside input may hold multibyte characters anywhere.
        let b = code.as_bytes();
        let well_formed = b.len() == self.0.len() + kind.len() + 5 && {
            let tail = &b[b.len() - 4..];
            tail[0] == b'.' && tail[1..].iter().all(u8::is_ascii_digit)
        };
        let prefix = format!("{}.{}.", self.0, kind);
        if code.starts_with(&prefix) && well_formed {
            return Ok(());
        }
        // Say which of the two things is wrong: the shape or the owning process.
        if let Some(pos) = code.find(&format!(".{kind}.")) {
            let owner = &code[..pos];
            if owner != self.0 && ProcessCode::parse(owner).is_ok() {
                return Err(format!(
                    "{code} belongs to process {owner}, not to {}",
                    self.0
                ));
            }
        }
        Err(format!("{code:?} is not a code of the form {}NNN", prefix))
    }
}

impl fmt::Display for ProcessCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A segment of the IIS: the Commission's integration segment or a national segment named by
/// its ISO 3166-1 alpha-2 code. Membership in the Union is a registry matter, not syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Eec,
    National([u8; 2]),
}

impl Segment {
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        if s == "EEC" {
            Ok(Segment::Eec)
        } else if b.len() == 2 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Segment::National([b[0], b[1]]))
        } else {
            Err(format!(
                "segment {s:?} is neither EEC nor an upper-case alpha-2 country code"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Segment::Eec => "EEC",
            // The bytes were checked to be ASCII upper-case letters at construction.
            Segment::National(b) => std::str::from_utf8(b).unwrap_or("??"),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Segment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Segment::parse(s)
    }
}

/// What an address names, by its space (`CP`, `CA` or `SR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// A participant of a common process: `CP/<process>/<participant>[/<authority>]`.
    Participant {
        process: ProcessCode,
        participant: String,
        authority: Option<String>,
    },
    /// A competent authority: `CA/<authority>`.
    Authority(String),
    /// A service resource: `SR/<resource>`.
    Resource(String),
}

/// A logical address, `EAEU://<segment>/<CP|CA|SR>/...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    segment: Segment,
    kind: AddressKind,
    text: String,
}

fn check_ident(s: &str, what: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
        ))
    }
}

impl Address {
    pub fn parse(s: &str) -> Result<Self, EnvelopeError> {
        Self::parse_inner(s).map_err(|d| EnvelopeError::new(Rule::Address, d))
    }

    fn parse_inner(s: &str) -> Result<Self, String> {
        if s.len() > MAX_URI_LEN {
            return Err(format!("address longer than {MAX_URI_LEN} characters"));
        }
        let rest = s
            .strip_prefix("EAEU://")
            .ok_or_else(|| format!("{s:?} does not start with EAEU://"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 3 {
            return Err(format!(
                "{s:?} must be EAEU://<segment>/<CP|CA|SR>/<identifier>"
            ));
        }
        let segment = Segment::parse(parts[0])?;
        let kind = match (parts[1], &parts[2..]) {
            ("CP", [process, participant, rest @ ..]) if rest.len() <= 1 => {
                let process = ProcessCode::parse(process)?;
                if *participant == "P.ACT.001" {
                    // P.ACT.001 is the Commission in every process, so it lives in EEC only.
                    if segment != Segment::Eec {
                        return Err(format!(
                            "participant P.ACT.001 (the Commission) must be in segment EEC, not {segment}"
                        ));
                    }
                } else {
                    process.check_member(participant, "ACT")?;
                }
                let authority = match rest.first() {
                    Some(a) => {
                        check_ident(a, "authority identifier")?;
                        Some((*a).to_owned())
                    }
                    None => None,
                };
                AddressKind::Participant {
                    process,
                    participant: (*participant).to_owned(),
                    authority,
                }
            }
            ("CP", _) => {
                return Err(format!(
                    "{s:?}: a CP address is EAEU://<segment>/CP/<process>/<participant>[/<authority>]"
                ));
            }
            ("CA", [authority]) => {
                check_ident(authority, "authority identifier")?;
                AddressKind::Authority((*authority).to_owned())
            }
            ("SR", [resource]) => {
                check_ident(resource, "resource identifier")?;
                AddressKind::Resource((*resource).to_owned())
            }
            ("CA" | "SR", _) => {
                return Err(format!(
                    "{s:?}: CA and SR addresses carry exactly one identifier"
                ));
            }
            (space, _) => return Err(format!("address space {space:?} is not CP, CA or SR")),
        };
        Ok(Address {
            segment,
            kind,
            text: s.to_owned(),
        })
    }

    pub fn segment(&self) -> Segment {
        self.segment
    }

    pub fn kind(&self) -> &AddressKind {
        &self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Address {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// The three signals of Decision No. 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// «Получено»: the message was received and durably stored.
    Rcv,
    /// «Принято в обработку»: the message passed format and logical checks.
    Prs,
    /// Signal-exception: processing failed; the body lists the errors.
    Err,
}

impl SignalKind {
    pub fn code(self) -> &'static str {
        match self {
            SignalKind::Rcv => "RCV",
            SignalKind::Prs => "PRS",
            SignalKind::Err => "ERR",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "RCV" => Some(SignalKind::Rcv),
            "PRS" => Some(SignalKind::Prs),
            "ERR" => Some(SignalKind::Err),
            _ => None,
        }
    }

    /// The last component of a signal's Action: `P.MSG.RCV`, `P.MSG.PRS`, `P.MSG.ERR`.
    pub fn action_step(self) -> &'static str {
        match self {
            SignalKind::Rcv => "P.MSG.RCV",
            SignalKind::Prs => "P.MSG.PRS",
            SignalKind::Err => "P.MSG.ERR",
        }
    }

    pub fn from_action_step(s: &str) -> Option<Self> {
        SignalKind::from_code(s.strip_prefix("P.MSG.")?)
    }
}

/// The last component of a common-process Action: a message code, or a signal code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Message(String),
    Signal(SignalKind),
}

/// `int://CP/<process>/<version>/<procedure>/<transaction>/<message | P.MSG.RCV | P.MSG.PRS |
/// P.MSG.ERR>`.
///
/// Signals reuse the Action of their transaction with `P.MSG.<signal>` in the last place (items
/// 114, 115 and 121 as a public rule checker cites them; a national adapter's MQ harness matches
/// on these endings), so `Action LIKE '<transaction>%'` routing filters match the signals of
/// that transaction too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpAction {
    pub process: ProcessCode,
    pub version: String,
    pub procedure: String,
    pub transaction: String,
    pub step: Step,
}

impl CpAction {
    /// Builds and checks an application-message Action.
    pub fn new(
        process: &str,
        version: &str,
        procedure: &str,
        transaction: &str,
        message: &str,
    ) -> Result<Self, EnvelopeError> {
        let text = format!("int://CP/{process}/{version}/{procedure}/{transaction}/{message}");
        match Action::parse(&text)? {
            Action::Cp(a) if matches!(a.step, Step::Message(_)) => Ok(a),
            _ => err(Rule::Action, format!("{message:?} is not a message code")),
        }
    }

    /// The same transaction's Action for a signal.
    pub fn for_signal(&self, kind: SignalKind) -> CpAction {
        CpAction {
            step: Step::Signal(kind),
            ..self.clone()
        }
    }

    pub fn message_code(&self) -> Option<&str> {
        match &self.step {
            Step::Message(m) => Some(m),
            Step::Signal(_) => None,
        }
    }
}

impl fmt::Display for CpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = match &self.step {
            Step::Message(m) => m.as_str(),
            Step::Signal(s) => s.action_step(),
        };
        write!(
            f,
            "int://CP/{}/{}/{}/{}/{}",
            self.process, self.version, self.procedure, self.transaction, last
        )
    }
}

/// WS-Addressing fault Actions used by technological error messages.
pub const WSA_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/fault";
pub const WSA_SOAP_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

/// A `wsa:Action` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// A common-process message or signal.
    Cp(CpAction),
    /// A SOAP Fault (`…/addressing/soap/fault`) or WS-A fault (`…/addressing/fault`).
    Fault(String),
}

fn check_version(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("process version {v:?} is not of the form X.Y.Z"))
    }
}

impl Action {
    pub fn parse(s: &str) -> Result<Self, EnvelopeError> {
        if s == WSA_FAULT_ACTION || s == WSA_SOAP_FAULT_ACTION {
            return Ok(Action::Fault(s.to_owned()));
        }
        if s.len() > MAX_URI_LEN {
            return err(Rule::Action, "Action longer than 512 characters");
        }
        let rest = s.strip_prefix("int://CP/").ok_or_else(|| {
            EnvelopeError::new(Rule::Action, format!("{s:?} does not start with int://CP/"))
        })?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [process, version, procedure, transaction, last] = parts.as_slice() else {
            return err(
                Rule::Action,
                format!(
                    "{s:?} must be int://CP/<process>/<version>/<procedure>/<transaction>/<message>"
                ),
            );
        };
        let process =
            ProcessCode::parse(process).map_err(|d| EnvelopeError::new(Rule::Action, d))?;
        check_version(version).map_err(|d| EnvelopeError::new(Rule::Action, d))?;
        let consistency = |code: &str, kind: &str| {
            process
                .check_member(code, kind)
                .map_err(|d| EnvelopeError::new(Rule::ActionConsistency, d))
        };
        consistency(procedure, "PRC")?;
        consistency(transaction, "TRN")?;
        let step = match SignalKind::from_action_step(last) {
            Some(k) => Step::Signal(k),
            None => {
                consistency(last, "MSG")?;
                Step::Message((*last).to_owned())
            }
        };
        Ok(Action::Cp(CpAction {
            version: (*version).to_owned(),
            procedure: (*procedure).to_owned(),
            transaction: (*transaction).to_owned(),
            process,
            step,
        }))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Cp(a) => a.fmt(f),
            Action::Fault(u) => f.write_str(u),
        }
    }
}
