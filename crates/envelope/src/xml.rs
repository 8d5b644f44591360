//! A small, bounded XML tree for envelopes: namespaces resolved, byte spans kept so the Body's
//! e-document can be cut out of the input exactly, DTDs, foreign entities and processing
//! instructions refused, size and depth limited.
//!
//! The tree is deliberately minimal (elements, attributes, direct text); it exists so the rule
//! checks in `parse` read like the rules, not like an event loop.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::error::{EnvelopeError, Rule, err};

pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Limits applied while reading outside bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting (the Envelope is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 16 MiB covers any e-document the IIS exchanges inline; larger files travel by the
        // separate >100 MB channel. 128 levels is far beyond real EEC structures (~15).
        Limits {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 128,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ns: Option<String>,
    pub local: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<Attr>,
    /// Namespace declarations made on this element: (prefix, uri); prefix `None` = default.
    pub decls: Vec<(Option<String>, String)>,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element (text and CDATA).
    pub text: String,
    /// Byte range of the element in the input, from `<` of the start tag to `>` of the end tag.
    pub start: usize,
    pub end: usize,
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    pub fn attr(&self, ns: Option<&str>, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.as_deref() == ns && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// `{ns}local`, for error messages.
    pub fn qname(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{{{ns}}}{}", self.local),
            None => self.local.clone(),
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError::new(Rule::XmlMalformed, format!("not well-formed XML: {e}"))
}

fn ns_of(r: &ResolveResult<'_>) -> Result<Option<String>, EnvelopeError> {
    match r {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
        ResolveResult::Unknown(p) => Err(malformed(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(p)
        ))),
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

/// `input` without a leading UTF-8 byte-order mark. The reader skips a BOM but its positions
/// would then be off by three bytes against the input, so every caller that slices by position
/// must slice the same stripped bytes.
pub fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input)
}

/// `strip_bom(input)` as UTF-8 text, or the refusal.
pub fn as_text(input: &[u8]) -> Result<&str, EnvelopeError> {
    std::str::from_utf8(strip_bom(input))
        .map_err(|e| EnvelopeError::new(Rule::XmlMalformed, format!("input is not UTF-8: {e}")))
}

/// Reads UTF-8, BOM-free `text` (see [`as_text`]) into a tree, enforcing `limits` and the
/// XML safety rules. Byte spans in the tree are positions in `text`.
pub fn read_text(text: &str, limits: Limits) -> Result<Element, EnvelopeError> {
    let input = text.as_bytes();
    if input.len() > limits.max_bytes {
        return err(
            Rule::XmlTooLarge,
            format!(
                "{} bytes is more than the limit of {} bytes",
                input.len(),
                limits.max_bytes
            ),
        );
    }
    let mut reader = NsReader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.check_comments = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut seen_decl = false;
    loop {
        let before = reader.buffer_position() as usize;
        let (res, event) = reader.read_resolved_event().map_err(malformed)?;
        let is_empty = matches!(event, Event::Empty(_));
        let ns = match &event {
            Event::Start(_) | Event::Empty(_) => ns_of(&res)?,
            _ => None,
        };
        let after = reader.buffer_position() as usize;
        match event {
            Event::Decl(d) => {
                if seen_decl || root.is_some() || !stack.is_empty() {
                    return err(Rule::XmlMalformed, "misplaced XML declaration");
                }
                seen_decl = true;
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(malformed)?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return err(
                            Rule::XmlMalformed,
                            format!("encoding {:?} is not UTF-8", String::from_utf8_lossy(&enc)),
                        );
                    }
                }
            }
            Event::DocType(_) => {
                return err(
                    Rule::XmlDtd,
                    "document type declarations (DTDs) are refused",
                );
            }
            Event::PI(_) => {
                return err(
                    Rule::XmlProcessingInstruction,
                    "processing instructions are refused",
                );
            }
            Event::Start(e) | Event::Empty(e) => {
                if root.is_some() {
                    return err(Rule::XmlMalformed, "content after the root element");
                }
                if stack.len() + 1 > limits.max_depth {
                    return err(
                        Rule::XmlTooDeep,
                        format!("elements nest deeper than {} levels", limits.max_depth),
                    );
                }
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                let mut decls = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(malformed)?;
                    let key = a.key.as_ref();
                    let value = a.unescape_value().map_err(|e| {
                        EnvelopeError::new(Rule::XmlEntity, format!("attribute value refused: {e}"))
                    })?;
                    if key == b"xmlns" {
                        decls.push((None, value.into_owned()));
                    } else if let Some(p) = key.strip_prefix(b"xmlns:") {
                        decls.push((
                            Some(String::from_utf8_lossy(p).into_owned()),
                            value.into_owned(),
                        ));
                    } else {
                        let (ares, alocal) = reader.resolve_attribute(a.key);
                        let ans = if key.starts_with(b"xml:") {
                            Some(XML_NS.to_owned())
                        } else {
                            ns_of(&ares)?
                        };
                        let alocal = String::from_utf8_lossy(alocal.as_ref()).into_owned();
                        if attrs
                            .iter()
                            .any(|x: &Attr| x.ns == ans && x.local == alocal)
                        {
                            return err(
                                Rule::XmlMalformed,
                                format!("duplicate attribute {alocal}"),
                            );
                        }
                        attrs.push(Attr {
                            ns: ans,
                            local: alocal,
                            value: value.into_owned(),
                        });
                    }
                }
                let el = Element {
                    ns,
                    local,
                    attrs,
                    decls,
                    children: Vec::new(),
                    text: String::new(),
                    start: before,
                    end: after,
                };
                if is_empty {
                    close(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| malformed("end tag without start tag"))?;
                el.end = after;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(malformed)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return err(Rule::XmlMalformed, "text outside the root element"),
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(malformed)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None => return err(Rule::XmlMalformed, "CDATA outside the root element"),
                }
            }
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| {
                        EnvelopeError::new(Rule::XmlEntity, format!("bad character reference: {e}"))
                    })?
                } else {
                    let name = r.decode().map_err(malformed)?;
                    Some(predefined_entity(&name).ok_or_else(|| {
                        EnvelopeError::new(
                            Rule::XmlEntity,
                            format!("entity reference &{name}; is refused (only the five predefined entities are allowed)"),
                        )
                    })?)
                };
                match (stack.last_mut(), ch) {
                    (Some(el), Some(c)) => el.text.push(c),
                    _ => return err(Rule::XmlMalformed, "reference outside the root element"),
                }
            }
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return err(
            Rule::XmlMalformed,
            "unexpected end of input inside an element",
        );
    }
    root.ok_or_else(|| EnvelopeError::new(Rule::XmlMalformed, "no root element"))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}
