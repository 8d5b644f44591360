//! The strict envelope parser: bytes → tree (bounded, no DTDs or foreign entities) → header
//! fields → the same rule checks the builders use.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::codes::{Action, Address};
use crate::error::{EnvelopeError, Rule, err};
use crate::fault::{Fault, with_decls};
use crate::ids::UrnUuid;
use crate::model::{Body, Envelope, Header, Integration, MessageKind, Origin, RelatesTo};
use crate::signal::Signal;
use crate::xml::{self, Element, Limits};
use crate::{INT_NS, SOAP_NS, SOAP11_NS, WSA_NS};

#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    pub origin: Origin,
    pub limits: Limits,
}

impl ParseOptions {
    pub fn new(origin: Origin) -> Self {
        ParseOptions {
            origin,
            limits: Limits::default(),
        }
    }
}

/// Parses and checks an envelope.
///
/// On failure the error says which rule broke; when the header could be read that far, the
/// header is returned beside the error by [`parse_partial`], so a Fault can relate to it.
pub fn parse(input: &[u8], opts: &ParseOptions) -> Result<Envelope, EnvelopeError> {
    parse_partial(input, opts).map_err(|(e, _)| e)
}

/// Like [`parse`], but a failure carries the header when the header itself was readable.
pub fn parse_partial(
    input: &[u8],
    opts: &ParseOptions,
) -> Result<Envelope, (EnvelopeError, Option<Box<Header>>)> {
    let text = xml::as_text(input).map_err(|e| (e, None))?;
    let root = xml::read_text(text, opts.limits).map_err(|e| (e, None))?;
    let (header_el, body_el) = envelope_parts(&root).map_err(|e| (e, None))?;
    let header = read_header(header_el).map_err(|e| (e, None))?;
    let scope = with_decls(&with_decls(&[], &root), body_el);
    let body = read_body(text, &header, body_el, &scope)
        .map_err(|e| (e, Some(Box::new(header.clone()))))?;
    let env = Envelope { header, body };
    env.validate(opts.origin)
        .map_err(|e| (e, Some(Box::new(env.header.clone()))))?;
    Ok(env)
}

fn envelope_parts(root: &Element) -> Result<(&Element, &Element), EnvelopeError> {
    if root.is(SOAP11_NS, "Envelope") {
        return err(
            Rule::SoapVersion,
            "this is a SOAP 1.1 envelope; Decision No. 5 uses SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope)",
        );
    }
    if !root.is(SOAP_NS, "Envelope") {
        return err(
            Rule::SoapVersion,
            format!(
                "the root element is {}, not a SOAP 1.2 Envelope",
                root.qname()
            ),
        );
    }
    if !root.text.trim().is_empty() {
        return err(Rule::SoapStructure, "text directly inside soap:Envelope");
    }
    match root.children.as_slice() {
        [h, b] if h.is(SOAP_NS, "Header") && b.is(SOAP_NS, "Body") => {
            for el in [h, b] {
                if !el.text.trim().is_empty() {
                    return err(
                        Rule::SoapStructure,
                        format!("text directly inside soap:{}", el.local),
                    );
                }
            }
            Ok((h, b))
        }
        [b] if b.is(SOAP_NS, "Body") => err(
            Rule::SoapStructure,
            "soap:Header is missing; Decision No. 5 addressing lives in the header",
        ),
        _ => err(
            Rule::SoapStructure,
            format!(
                "soap:Envelope must hold soap:Header then soap:Body, found [{}]",
                root.children
                    .iter()
                    .map(Element::qname)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

fn once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), EnvelopeError> {
    if slot.is_some() {
        return err(
            Rule::HeaderDuplicate,
            format!("{name} appears more than once"),
        );
    }
    *slot = Some(v);
    Ok(())
}

fn text_of(el: &Element) -> &str {
    // anyURI values collapse whitespace, so surrounding blanks are not part of the value.
    el.text.trim()
}

fn address(el: &Element, rule: Rule) -> Result<Address, EnvelopeError> {
    Address::parse(text_of(el)).map_err(|e| EnvelopeError::new(rule, e.detail))
}

fn must_understand(el: &Element) -> bool {
    matches!(el.attr(Some(SOAP_NS), "mustUnderstand"), Some("true" | "1"))
}

fn read_header(h: &Element) -> Result<Header, EnvelopeError> {
    let mut to = None;
    let mut reply_to = None;
    let mut action = None;
    let mut message_id = None;
    let mut relates_to = None;
    let mut conversation_id = None;
    let mut procedure_id = None;
    let mut integration = None;
    for c in &h.children {
        match (c.ns.as_deref(), c.local.as_str()) {
            (Some(WSA_NS), "To") => once(&mut to, address(c, Rule::To)?, "wsa:To")?,
            (Some(WSA_NS), "ReplyTo") => {
                let addrs: Vec<&Element> = c
                    .children
                    .iter()
                    .filter(|a| a.is(WSA_NS, "Address"))
                    .collect();
                let [a] = addrs.as_slice() else {
                    return err(
                        Rule::ReplyTo,
                        "wsa:ReplyTo must hold exactly one wsa:Address",
                    );
                };
                once(&mut reply_to, address(a, Rule::ReplyTo)?, "wsa:ReplyTo")?
            }
            (Some(WSA_NS), "From") => {
                return err(
                    Rule::FromFaultToForbidden,
                    "wsa:From must not appear in IIS messages",
                );
            }
            (Some(WSA_NS), "FaultTo") => {
                return err(
                    Rule::FromFaultToForbidden,
                    "wsa:FaultTo must not appear in IIS messages",
                );
            }
            (Some(WSA_NS), "Action") => {
                once(&mut action, Action::parse(text_of(c))?, "wsa:Action")?
            }
            (Some(WSA_NS), "MessageID") => once(
                &mut message_id,
                UrnUuid::parse_for(text_of(c), Rule::MessageId)?,
                "wsa:MessageID",
            )?,
            (Some(WSA_NS), "RelatesTo") => {
                if let Some(t) = c.attr(None, "RelationshipType")
                    && t != "http://www.w3.org/2005/08/addressing/reply"
                {
                    return err(
                        Rule::RelatesTo,
                        format!("RelationshipType {t:?} is not the WS-A reply relationship"),
                    );
                }
                once(
                    &mut relates_to,
                    RelatesTo {
                        id: UrnUuid::parse_for(text_of(c), Rule::RelatesTo)?,
                        relates_action: c.attr(Some(INT_NS), "RelatesAction").map(str::to_owned),
                    },
                    "wsa:RelatesTo",
                )?
            }
            (Some(INT_NS), "ConversationID") => once(
                &mut conversation_id,
                UrnUuid::parse_for(text_of(c), Rule::ConversationId)?,
                "int:ConversationID",
            )?,
            (Some(INT_NS), "ProcedureID") => once(
                &mut procedure_id,
                UrnUuid::parse_for(text_of(c), Rule::ProcedureId)?,
                "int:ProcedureID",
            )?,
            (Some(INT_NS), "Integration") => {
                once(&mut integration, read_integration(c)?, "int:Integration")?
            }
            (Some(WSA_NS), other) | (Some(INT_NS), other) => {
                return err(
                    Rule::HeaderUnknown,
                    format!("header {other} is not one Decision No. 5 defines"),
                );
            }
            _ if must_understand(c) => {
                return err(
                    Rule::HeaderUnknown,
                    format!(
                        "header {} is marked mustUnderstand and is not understood",
                        c.qname()
                    ),
                );
            }
            // Other foreign headers (national extensions) are ignored, as SOAP 1.2 allows;
            // the stored raw bytes still keep them.
            _ => {}
        }
    }
    Ok(Header {
        to,
        reply_to,
        action: action
            .ok_or_else(|| EnvelopeError::missing(Rule::Action, "wsa:Action is mandatory"))?,
        message_id: message_id
            .ok_or_else(|| EnvelopeError::missing(Rule::MessageId, "wsa:MessageID is mandatory"))?,
        relates_to,
        conversation_id,
        procedure_id,
        integration,
    })
}

fn read_integration(el: &Element) -> Result<Integration, EnvelopeError> {
    let mut track = None;
    let mut accept = None;
    for c in &el.children {
        match (c.ns.as_deref(), c.local.as_str()) {
            (Some(INT_NS), "TrackID") => once(
                &mut track,
                UrnUuid::parse_for(text_of(c), Rule::IntegrationValue)?,
                "int:TrackID",
            )?,
            (Some(INT_NS), "AcceptTime") => {
                let s = text_of(c);
                let t = OffsetDateTime::parse(s, &Rfc3339)
                    .ok()
                    .filter(|t| s.ends_with('Z') && t.offset().is_utc());
                let t = t.ok_or_else(|| {
                    EnvelopeError::new(
                        Rule::IntegrationValue,
                        format!("int:AcceptTime {s:?} is not a UTC date-time ending in Z"),
                    )
                })?;
                once(&mut accept, t, "int:AcceptTime")?
            }
            _ => {
                return err(
                    Rule::IntegrationValue,
                    format!("unexpected element {} in int:Integration", c.qname()),
                );
            }
        }
    }
    Ok(Integration {
        track_id: track
            .ok_or_else(|| EnvelopeError::new(Rule::IntegrationValue, "int:TrackID missing"))?,
        accept_time: accept
            .ok_or_else(|| EnvelopeError::new(Rule::IntegrationValue, "int:AcceptTime missing"))?,
    })
}

fn read_body(
    text: &str,
    header: &Header,
    body: &Element,
    scope: &[(Option<String>, String)],
) -> Result<Body, EnvelopeError> {
    let [doc] = body.children.as_slice() else {
        return err(
            Rule::BodyOneDocument,
            format!(
                "soap:Body must carry exactly one element, found {}",
                body.children.len()
            ),
        );
    };
    match header.kind() {
        MessageKind::Fault => {
            if !doc.is(SOAP_NS, "Fault") {
                return err(
                    Rule::Fault,
                    format!("a fault Action with body {}", doc.qname()),
                );
            }
            Ok(Body::Fault(Fault::read(doc, scope)?))
        }
        MessageKind::Signal(kind) => Ok(Body::Signal(Signal::read(doc, kind)?)),
        MessageKind::Application => {
            if doc.ns.as_deref() == Some(SOAP_NS)
                || doc.ns.as_deref() == Some(crate::signal::signal_namespace())
            {
                return err(
                    Rule::BodyOneDocument,
                    format!(
                        "a common-process message carries an e-document, not {}",
                        doc.qname()
                    ),
                );
            }
            Ok(Body::Document(standalone(text, doc, scope)))
        }
    }
}

/// The text of `doc`, with the namespace declarations it inherits from the envelope copied onto
/// its start tag, so the e-document means the same thing outside the envelope.
fn standalone(text: &str, doc: &Element, scope: &[(Option<String>, String)]) -> String {
    let raw = &text[doc.start..doc.end];
    let mut extra = String::new();
    let mut seen: Vec<&Option<String>> = doc.decls.iter().map(|(p, _)| p).collect();
    for (prefix, uri) in scope.iter().rev() {
        if seen.contains(&prefix) {
            continue;
        }
        seen.push(prefix);
        // The writer declares exactly these three on the Envelope; any other binding, even
        // of another prefix to the same namespace, must travel with the document.
        let declared_by_writer = matches!(
            (prefix.as_deref(), uri.as_str()),
            (Some("soap"), SOAP_NS) | (Some("wsa"), WSA_NS) | (Some("int"), INT_NS)
        );
        if declared_by_writer {
            continue;
        }
        match prefix {
            Some(p) => extra.push_str(&format!(
                " xmlns:{p}=\"{}\"",
                crate::escape::attr(uri.as_str())
            )),
            None => extra.push_str(&format!(" xmlns=\"{}\"", crate::escape::attr(uri.as_str()))),
        }
    }
    if extra.is_empty() {
        return raw.to_owned();
    }
    // The start tag is `<` + QName; insert right after the name.
    let name_end = raw
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_whitespace() || *c == '>' || *c == '/')
        .map(|(i, _)| i)
        .unwrap_or(raw.len());
    format!("{}{}{}", &raw[..name_end], extra, &raw[name_end..])
}
