//! The Decision No. 5 envelope: SOAP 1.2, WS-Addressing 1.0 and the `urn:EEC:Interaction:v1.0`
//! extension, as types, a strict parser and a deterministic writer. No I/O.
//!
//! Every header rule of `eaeu-iis-reference.md` §1.2–§1.6 is checked in one place
//! ([`Envelope::validate`]) that both the parser and the builders call, so whatever this crate
//! writes it also accepts. The parser refuses DTDs, foreign entities and processing
//! instructions, and bounds size and depth ([`Limits`]).

mod codes;
mod error;
pub mod escape;
mod fault;
mod ids;
mod model;
mod parse;
mod signal;
mod write;
pub mod xml;

pub use codes::{
    Action, Address, AddressKind, CpAction, ProcessCode, Segment, SignalKind, Step,
    WSA_FAULT_ACTION, WSA_SOAP_FAULT_ACTION,
};
pub use error::{EnvelopeError, Rule};
pub use fault::{Fault, FaultCode, MAX_QUOTE, Subcode, quote};
pub use ids::UrnUuid;
pub use model::{
    ApplicationMessage, Body, Envelope, Header, Integration, MessageKind, Origin, RelatesTo,
    document_text,
};
pub use parse::{ParseOptions, parse, parse_partial};
pub use signal::{
    DEFAULT_SIGNAL_NS, ErrorCode, Signal, SignalError, set_signal_namespace, signal_namespace,
};
pub use xml::Limits;

/// SOAP 1.2 envelope namespace.
pub const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace: recognised only to refuse it with a clear message.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Addressing 1.0 namespace.
pub const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";
/// The EEC interaction extension namespace.
pub const INT_NS: &str = "urn:EEC:Interaction:v1.0";
