//! Reading and writing NSI content: JSON (the native form), CSV (items or mappings of an
//! existing resource or crosswalk, one per line) and XML (`urn:ortaq:nsi:v1`, our own layout:
//! the official exchange structure was not available). Reading reports every problem it can,
//! each naming its line or item; XML goes through the same bounded reader as envelopes (no
//! DTDs, no entities beyond the predefined five, size and depth limits).

use std::collections::BTreeMap;

use envelope::escape;
use envelope::xml::{self, Element};

use crate::model::{
    Content, Crosswalk, CrosswalkHeader, Header, Item, Kind, Mapping, Problem, Relation, Resource,
    format_date, parse_date,
};

pub const XML_NS: &str = "urn:ortaq:nsi:v1";

/// Largest file an import reads.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Xml,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "xml" => Ok(Format::Xml),
            other => Err(format!("format {other:?} is not json, csv or xml")),
        }
    }

    /// From a file name's extension.
    pub fn of_path(p: &std::path::Path) -> Option<Format> {
        Format::parse(p.extension()?.to_str()?).ok()
    }
}

/// Content read from a file, with where each item or mapping came from.
#[derive(Debug, Clone)]
pub struct Read {
    pub content: Content,
    pub locations: Vec<String>,
}

impl Read {
    /// Every problem of the content, located in the file.
    pub fn check(&self) -> Vec<Problem> {
        self.content.check(&|i| {
            self.locations
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("item {}", i + 1))
        })
    }
}

fn one(at: impl Into<String>, message: impl Into<String>) -> Vec<Problem> {
    vec![Problem {
        at: at.into(),
        message: message.into(),
    }]
}

/// Reads `bytes` in `format`. CSV carries only items (or mappings): `base` gives the header of
/// the resource or crosswalk they belong to.
pub fn read(bytes: &[u8], format: Format, base: Option<&Content>) -> Result<Read, Vec<Problem>> {
    if bytes.len() > MAX_BYTES {
        return Err(one("file", format!("larger than {MAX_BYTES} bytes")));
    }
    match format {
        Format::Json => read_json(bytes),
        Format::Csv => read_csv(bytes, base),
        Format::Xml => read_xml(bytes),
    }
}

fn read_json(bytes: &[u8]) -> Result<Read, Vec<Problem>> {
    let at = |e: &serde_json::Error| format!("line {}, column {}", e.line(), e.column());
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| one(at(&e), e.to_string()))?;
    let content = if v.get("resource").is_some() {
        Content::Resource(serde_json::from_slice(bytes).map_err(|e| one(at(&e), e.to_string()))?)
    } else if v.get("crosswalk").is_some() {
        Content::Crosswalk(serde_json::from_slice(bytes).map_err(|e| one(at(&e), e.to_string()))?)
    } else {
        return Err(one(
            "top level",
            "expected an object with \"resource\" or \"crosswalk\"",
        ));
    };
    let locations = match &content {
        Content::Resource(r) => r
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| format!("item {} ({})", i + 1, it.code))
            .collect(),
        Content::Crosswalk(c) => c
            .mappings
            .iter()
            .enumerate()
            .map(|(i, m)| format!("mapping {} ({} -> {})", i + 1, m.from, m.to))
            .collect(),
    };
    Ok(Read { content, locations })
}

fn read_csv(bytes: &[u8], base: Option<&Content>) -> Result<Read, Vec<Problem>> {
    let Some(base) = base else {
        return Err(one(
            "file",
            "a CSV file carries items only; import the resource's JSON or XML first, or name an existing resource",
        ));
    };
    let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = r
        .headers()
        .map_err(|e| one("line 1", e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut problems = Vec::new();
    let mut locations = Vec::new();
    match base {
        Content::Resource(res) => {
            let Some(code) = col("code") else {
                return Err(one("line 1", "no \"code\" column"));
            };
            for h in headers.iter() {
                let h = h.trim();
                let known = matches!(h, "code" | "parent" | "valid_from" | "valid_to" | "act")
                    || h.starts_with("name:")
                    || h.starts_with("attr:");
                if let Some(l) = h.strip_prefix("name:")
                    && !crate::model::known_language(l)
                {
                    problems.push(Problem {
                        at: "line 1".into(),
                        message: format!(
                            "column {h:?}: unknown language {l:?} (ISO 639-1 expected)"
                        ),
                    });
                }
                if !known {
                    problems.push(Problem { at: "line 1".into(), message: format!("unknown column {h:?} (code, parent, valid_from, valid_to, act, name:<lang>, attr:<name>)") });
                }
            }
            let mut items = Vec::new();
            for rec in r.records() {
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        problems.push(Problem {
                            at: format!("line {line}"),
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                let line = rec.position().map_or(0, |p| p.line());
                let at = format!("line {line}");
                let get = |c: Option<usize>| {
                    c.and_then(|c| rec.get(c))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                };
                let date = |name: &str, problems: &mut Vec<Problem>| match get(col(name)) {
                    None => None,
                    Some(s) => match parse_date(s) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            problems.push(Problem {
                                at: at.clone(),
                                message: format!("{name}: {e}"),
                            });
                            None
                        }
                    },
                };
                let mut names = BTreeMap::new();
                let mut attributes = BTreeMap::new();
                for (i, h) in headers.iter().enumerate() {
                    let Some(v) = rec.get(i).map(str::trim).filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    if let Some(l) = h.trim().strip_prefix("name:") {
                        names.insert(l.to_owned(), v.to_owned());
                    } else if let Some(a) = h.trim().strip_prefix("attr:") {
                        attributes.insert(a.to_owned(), v.to_owned());
                    }
                }
                let item = Item {
                    code: get(Some(code)).unwrap_or_default().to_owned(),
                    names,
                    attributes,
                    parent: get(col("parent")).map(str::to_owned),
                    valid_from: date("valid_from", &mut problems),
                    valid_to: date("valid_to", &mut problems),
                    act: get(col("act")).map(str::to_owned),
                };
                locations.push(format!("{at} ({})", item.code));
                items.push(item);
            }
            finish(
                Read {
                    content: Content::Resource(Resource {
                        resource: res.resource.clone(),
                        items,
                    }),
                    locations,
                },
                problems,
            )
        }
        Content::Crosswalk(cw) => {
            let (Some(from), Some(to), Some(rel)) = (col("from"), col("to"), col("relation"))
            else {
                return Err(one(
                    "line 1",
                    "expected columns from, to, relation (and optionally valid_from, valid_to)",
                ));
            };
            let mut mappings = Vec::new();
            for rec in r.records() {
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        problems.push(Problem {
                            at: format!("line {line}"),
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                let at = format!("line {}", rec.position().map_or(0, |p| p.line()));
                let get =
                    |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).unwrap_or("");
                let relation = match relation(get(Some(rel))) {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(Problem {
                            at: at.clone(),
                            message: e,
                        });
                        continue;
                    }
                };
                let mut d = |name: &str| {
                    let s = get(col(name));
                    if s.is_empty() {
                        return None;
                    }
                    parse_date(s)
                        .map_err(|e| {
                            problems.push(Problem {
                                at: at.clone(),
                                message: format!("{name}: {e}"),
                            })
                        })
                        .ok()
                };
                let (vf, vt) = (d("valid_from"), d("valid_to"));
                mappings.push(Mapping {
                    from: get(Some(from)).into(),
                    to: get(Some(to)).into(),
                    relation,
                    valid_from: vf,
                    valid_to: vt,
                });
                locations.push(at);
            }
            finish(
                Read {
                    content: Content::Crosswalk(Crosswalk {
                        crosswalk: cw.crosswalk.clone(),
                        mappings,
                    }),
                    locations,
                },
                problems,
            )
        }
    }
}

fn relation(s: &str) -> Result<Relation, String> {
    match s {
        "exact" => Ok(Relation::Exact),
        "broader" => Ok(Relation::Broader),
        "narrower" => Ok(Relation::Narrower),
        "related" => Ok(Relation::Related),
        other => Err(format!(
            "relation {other:?} is not exact, broader, narrower or related"
        )),
    }
}

fn names_of(e: &Element, at: &str, problems: &mut Vec<Problem>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for n in e.children.iter().filter(|c| c.is(XML_NS, "Name")) {
        match n.attr(None, "lang") {
            Some(l) => {
                names.insert(l.to_owned(), n.text.clone());
            }
            None => problems.push(Problem {
                at: at.into(),
                message: "Name without lang".into(),
            }),
        }
    }
    names
}

fn read_xml(bytes: &[u8]) -> Result<Read, Vec<Problem>> {
    let limits = envelope::Limits {
        max_bytes: MAX_BYTES,
        max_depth: 16,
    };
    let text = xml::as_text(bytes).map_err(|e| one("file", e.to_string()))?;
    let root = xml::read_text(text, limits).map_err(|e| one("file", e.to_string()))?;
    let mut problems = Vec::new();
    let mut locations = Vec::new();
    let date = |e: &Element, name: &str, at: &str, problems: &mut Vec<Problem>| {
        e.attr(None, name)
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| {
                parse_date(s)
                    .map_err(|m| {
                        problems.push(Problem {
                            at: at.into(),
                            message: format!("{name}: {m}"),
                        })
                    })
                    .ok()
            })
    };
    let line_of = |e: &Element| {
        let line = text[..e.start.min(text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1;
        format!("line {line}")
    };
    let content = if root.is(XML_NS, "Resource") {
        let kind = match root.attr(None, "kind") {
            Some("directory") => Kind::Directory,
            Some("classifier") => Kind::Classifier,
            other => {
                return Err(one(
                    "line 1",
                    format!("kind {other:?} is not directory or classifier"),
                ));
            }
        };
        let header = Header {
            code: root.attr(None, "code").unwrap_or_default().into(),
            kind,
            names: names_of(&root, "header", &mut problems),
            owner: root.attr(None, "owner").unwrap_or_default().into(),
            act: root.attr(None, "act").unwrap_or_default().into(),
            source: root.attr(None, "source").unwrap_or_default().into(),
        };
        let mut items = Vec::new();
        for e in &root.children {
            if e.is(XML_NS, "Name") {
                continue;
            }
            let at = line_of(e);
            if !e.is(XML_NS, "Item") {
                problems.push(Problem {
                    at: at.clone(),
                    message: format!("unexpected element {}", e.qname()),
                });
                continue;
            }
            let mut attributes = BTreeMap::new();
            for a in e.children.iter().filter(|c| c.is(XML_NS, "Attribute")) {
                attributes.insert(
                    a.attr(None, "name").unwrap_or_default().to_owned(),
                    a.text.clone(),
                );
            }
            let item = Item {
                code: e.attr(None, "code").unwrap_or_default().into(),
                names: names_of(e, &at, &mut problems),
                attributes,
                parent: e.attr(None, "parent").map(str::to_owned),
                valid_from: date(e, "validFrom", &at, &mut problems),
                valid_to: date(e, "validTo", &at, &mut problems),
                act: e.attr(None, "act").map(str::to_owned),
            };
            locations.push(format!("{at} ({})", item.code));
            items.push(item);
        }
        Content::Resource(Resource {
            resource: header,
            items,
        })
    } else if root.is(XML_NS, "Crosswalk") {
        let header = CrosswalkHeader {
            code: root.attr(None, "code").unwrap_or_default().into(),
            from: root.attr(None, "from").unwrap_or_default().into(),
            to: root.attr(None, "to").unwrap_or_default().into(),
            names: names_of(&root, "header", &mut problems),
            source: root.attr(None, "source").unwrap_or_default().into(),
        };
        let mut mappings = Vec::new();
        for e in root.children.iter().filter(|c| !c.is(XML_NS, "Name")) {
            let at = line_of(e);
            if !e.is(XML_NS, "Mapping") {
                problems.push(Problem {
                    at: at.clone(),
                    message: format!("unexpected element {}", e.qname()),
                });
                continue;
            }
            let rel = match relation(e.attr(None, "relation").unwrap_or_default()) {
                Ok(r) => r,
                Err(m) => {
                    problems.push(Problem {
                        at: at.clone(),
                        message: m,
                    });
                    continue;
                }
            };
            mappings.push(Mapping {
                from: e.attr(None, "from").unwrap_or_default().into(),
                to: e.attr(None, "to").unwrap_or_default().into(),
                relation: rel,
                valid_from: date(e, "validFrom", &at, &mut problems),
                valid_to: date(e, "validTo", &at, &mut problems),
            });
            locations.push(at);
        }
        Content::Crosswalk(Crosswalk {
            crosswalk: header,
            mappings,
        })
    } else {
        return Err(one(
            "line 1",
            format!(
                "root element {} is not {{{XML_NS}}}Resource or Crosswalk",
                root.qname()
            ),
        ));
    };
    finish(Read { content, locations }, problems)
}

/// The content read, or, when reading found problems, those together with every problem of
/// what could be read: one pass shows the whole list.
fn finish(read: Read, mut problems: Vec<Problem>) -> Result<Read, Vec<Problem>> {
    if problems.is_empty() {
        return Ok(read);
    }
    problems.extend(read.check());
    Err(problems)
}

/// Writes `content` in `format`.
pub fn write(content: &Content, format: Format) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(content).unwrap_or_default();
            v.push(b'\n');
            v
        }
        Format::Csv => write_csv(content),
        Format::Xml => write_xml(content).into_bytes(),
    }
}

fn write_csv(content: &Content) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    match content {
        Content::Resource(r) => {
            let langs: std::collections::BTreeSet<&String> =
                r.items.iter().flat_map(|i| i.names.keys()).collect();
            let attrs: std::collections::BTreeSet<&String> =
                r.items.iter().flat_map(|i| i.attributes.keys()).collect();
            let mut head = vec![
                "code".to_owned(),
                "parent".into(),
                "valid_from".into(),
                "valid_to".into(),
                "act".into(),
            ];
            head.extend(langs.iter().map(|l| format!("name:{l}")));
            head.extend(attrs.iter().map(|a| format!("attr:{a}")));
            let _ = w.write_record(&head);
            for it in &r.items {
                let mut row = vec![
                    it.code.clone(),
                    it.parent.clone().unwrap_or_default(),
                    it.valid_from.map(format_date).unwrap_or_default(),
                    it.valid_to.map(format_date).unwrap_or_default(),
                    it.act.clone().unwrap_or_default(),
                ];
                row.extend(
                    langs
                        .iter()
                        .map(|l| it.names.get(*l).cloned().unwrap_or_default()),
                );
                row.extend(
                    attrs
                        .iter()
                        .map(|a| it.attributes.get(*a).cloned().unwrap_or_default()),
                );
                let _ = w.write_record(&row);
            }
        }
        Content::Crosswalk(c) => {
            let _ = w.write_record(["from", "to", "relation", "valid_from", "valid_to"]);
            for m in &c.mappings {
                let _ = w.write_record([
                    m.from.as_str(),
                    m.to.as_str(),
                    m.relation.as_str(),
                    &m.valid_from.map(format_date).unwrap_or_default(),
                    &m.valid_to.map(format_date).unwrap_or_default(),
                ]);
            }
        }
    }
    w.into_inner().unwrap_or_default()
}

fn write_xml(content: &Content) -> String {
    use std::fmt::Write as _;
    let a = |s: &str| escape::attr(s).into_owned();
    let t = |s: &str| escape::text(s).into_owned();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let names = |o: &mut String, names: &BTreeMap<String, String>, indent: &str| {
        for (l, n) in names {
            let _ = writeln!(o, "{indent}<nsi:Name lang=\"{}\">{}</nsi:Name>", a(l), t(n));
        }
    };
    let opt = |name: &str, v: Option<String>| {
        v.map(|v| format!(" {name}=\"{}\"", a(&v)))
            .unwrap_or_default()
    };
    match content {
        Content::Resource(r) => {
            let h = &r.resource;
            let _ = writeln!(
                o,
                "<nsi:Resource xmlns:nsi=\"{XML_NS}\" code=\"{}\" kind=\"{}\" owner=\"{}\" act=\"{}\" source=\"{}\">",
                a(&h.code),
                h.kind.as_str(),
                a(&h.owner),
                a(&h.act),
                a(&h.source)
            );
            names(&mut o, &h.names, "  ");
            for it in &r.items {
                let _ = writeln!(
                    o,
                    "  <nsi:Item code=\"{}\"{}{}{}{}>",
                    a(&it.code),
                    opt("parent", it.parent.clone()),
                    opt("validFrom", it.valid_from.map(format_date)),
                    opt("validTo", it.valid_to.map(format_date)),
                    opt("act", it.act.clone())
                );
                names(&mut o, &it.names, "    ");
                for (k, v) in &it.attributes {
                    let _ = writeln!(
                        o,
                        "    <nsi:Attribute name=\"{}\">{}</nsi:Attribute>",
                        a(k),
                        t(v)
                    );
                }
                o.push_str("  </nsi:Item>\n");
            }
            o.push_str("</nsi:Resource>\n");
        }
        Content::Crosswalk(c) => {
            let h = &c.crosswalk;
            let _ = writeln!(
                o,
                "<nsi:Crosswalk xmlns:nsi=\"{XML_NS}\" code=\"{}\" from=\"{}\" to=\"{}\" source=\"{}\">",
                a(&h.code),
                a(&h.from),
                a(&h.to),
                a(&h.source)
            );
            names(&mut o, &h.names, "  ");
            for m in &c.mappings {
                let _ = writeln!(
                    o,
                    "  <nsi:Mapping from=\"{}\" to=\"{}\" relation=\"{}\"{}{}/>",
                    a(&m.from),
                    a(&m.to),
                    m.relation.as_str(),
                    opt("validFrom", m.valid_from.map(format_date)),
                    opt("validTo", m.valid_to.map(format_date))
                );
            }
            o.push_str("</nsi:Crosswalk>\n");
        }
    }
    o
}
