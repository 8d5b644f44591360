//! E-document validation, run before a document is accepted for processing: XSD with libxml2
//! (each schema compiled once, chosen by the root element's namespace), the `EDocHeader`
//! checks, and the filling rules of the process package, with code-list membership answered by
//! the NSI index as of the document's date.
//!
//! Validation returns every diagnostic (rule id, XPath, line, text in Russian and English),
//! never only the first, and never panics on outside bytes: DTDs and entities are refused
//! before libxml2 sees the document, and sizes are bounded.
//!
//! A `Validator` holds libxml2 state and stays on the thread that built it; `service::Pool`
//! runs validators on their own threads for async callers.

pub mod rules;
pub mod service;
pub mod xsd;

use std::collections::{BTreeMap, HashMap};

use process::Package;
use serde::Serialize;
use time::OffsetDateTime;

pub use service::Pool;

/// One finding about a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// `XML.*` (not a readable document), `XSD` (schema), `HDR.*` (EDocHeader) or the id of a
    /// filling rule of the package.
    pub rule: String,
    /// Where: an XPath with the document's prefixes.
    pub xpath: String,
    pub line: Option<u32>,
    pub ru: String,
    pub en: String,
}

impl Diagnostic {
    /// The `Details` of the ERR entry that reports this finding: the English text, where in
    /// the document, and which document (the signal's `Error` has no fields of its own for
    /// them).
    pub fn signal_details(&self, edoc_id: Option<&str>) -> String {
        let mut d = format!("[{}] {} (at {}", self.rule, self.en, self.xpath);
        if let Some(id) = edoc_id {
            d.push_str(&format!(", EDocId {id}"));
        }
        d.push(')');
        d
    }
}

/// The outcome of validating one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Structure code and version the document was checked against, when one was found.
    pub structure: Option<(String, String)>,
    /// The document's `EDocId`, for the ERR signal that quotes it.
    pub edoc_id: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// The business entities a process keeps (e.g. the registry of conformity documents), for
/// filling rules of kind `registered`.
pub trait CommonResource {
    fn contains(&self, entity: &str, key: &str) -> bool;
}

/// What validation of one document needs to know besides its bytes.
pub struct Context<'a> {
    /// The process and its version the envelope's action names (`P.TS.01`, `1.0.1`): two
    /// versions of one process are told apart by these.
    pub process: &'a str,
    pub version: &'a str,
    /// The message code of the envelope's action, e.g. `P.TS.01.MSG.001`.
    pub message: &'a str,
    /// The `EDocId` of the document this one answers, when it is a response.
    pub ref_id: Option<&'a str>,
    pub nsi: &'a nsi::Index,
    /// Only the IS that keeps the common resource passes it; without it, `registered` rules
    /// are left to that IS.
    pub common: Option<&'a dyn CommonResource>,
    pub now: OffsetDateTime,
}

/// Limits on documents from outside.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_nodes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 20,
            max_nodes: 1_000_000,
        }
    }
}

/// The `EDocId` of a document, if it is readable XML without a DTD.
pub fn edoc_id(xml: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    header_field(&header_scope(&doc), "EDocId")
        .and_then(|n| n.text())
        .map(|t| t.trim().to_owned())
}

/// Where a document's header fields are: inside `ccdo:EDocHeader` (the Union's documents,
/// `EDocHeaderType`), else directly under the root (the flat layout of our own structures).
fn header_scope<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> HeaderScope<'a, 'i> {
    let root = doc.root_element();
    match root.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == "EDocHeader"
            && c.tag_name()
                .namespace()
                .is_some_and(|n| n.starts_with(CCDO_PREFIX))
    }) {
        Some(h) => HeaderScope {
            node: h,
            official: true,
        },
        None => HeaderScope {
            node: root,
            official: false,
        },
    }
}

struct HeaderScope<'a, 'i> {
    node: roxmltree::Node<'a, 'i>,
    /// The Union's `ccdo:EDocHeader`, whose `InfEnvelopeCode` is mandatory.
    official: bool,
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hexadecimal digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `csdo` field of the header.
fn header_field<'a, 'i>(
    scope: &HeaderScope<'a, 'i>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    scope.node.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == name
            && c.tag_name()
                .namespace()
                .is_some_and(|n| n.starts_with(CSDO_PREFIX))
    })
}

/// `EDocDateTime` may run ahead of the receiver's clock by this much.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

const CSDO_PREFIX: &str = "urn:EEC:M:SimpleDataObjects:";
const CCDO_PREFIX: &str = "urn:EEC:M:ComplexDataObjects:";
/// The languages resource of the shipped reference data.
const LANGUAGES: &str = "ISO.639-1";

struct StructureEntry {
    code: String,
    version: String,
    namespace: String,
    root: String,
    schema: usize,
    edoc_header: bool,
}

struct MessageEntry {
    structure: usize,
    rules: Vec<rules::Compiled>,
}

/// Why a set of packages could not be compiled: every problem found, at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct CompileError(pub Vec<String>);

/// Compiled schemas and rules of a set of process packages.
pub struct Validator {
    schemas: Vec<xsd::Schema>,
    structures: Vec<StructureEntry>,
    /// By (process, version, message code).
    messages: HashMap<(String, String, String), MessageEntry>,
    limits: Limits,
}

impl Validator {
    /// Compiles every structure's XSD (each file once) and every filling rule of `packages`.
    /// All problems at once.
    pub fn new(packages: &[Package], limits: Limits) -> Result<Validator, CompileError> {
        let mut problems = Vec::new();
        let mut schemas = Vec::new();
        let mut files: HashMap<std::path::PathBuf, usize> = HashMap::new();
        let mut structures: Vec<StructureEntry> = Vec::new();
        let mut by_key: BTreeMap<(String, String), usize> = BTreeMap::new();
        for p in packages {
            for s in &p.structures {
                let file = p.dir.join(&s.xsd);
                let canon = file.canonicalize().unwrap_or(file.clone());
                let schema = match files.get(&canon) {
                    Some(&i) => i,
                    None => match xsd::Schema::compile(&file) {
                        Ok(c) => {
                            schemas.push(c);
                            files.insert(canon, schemas.len() - 1);
                            schemas.len() - 1
                        }
                        Err(e) => {
                            problems.push(format!("{} structure {}: {e}", p.process.code, s.code));
                            continue;
                        }
                    },
                };
                if let Some(&other) = by_key.get(&(s.code.clone(), s.version.clone())) {
                    let o = &structures[other];
                    if o.namespace != s.namespace || o.root != s.root {
                        problems.push(format!(
                            "structure {} {} is defined differently by two packages",
                            s.code, s.version
                        ));
                    }
                    continue;
                }
                if let Some(o) = structures
                    .iter()
                    .find(|o| o.namespace == s.namespace && o.root == s.root)
                {
                    problems.push(format!(
                        "structures {} and {} both have root {{{}}}{}: the namespace could not tell them apart",
                        o.code, s.code, s.namespace, s.root
                    ));
                    continue;
                }
                by_key.insert((s.code.clone(), s.version.clone()), structures.len());
                structures.push(StructureEntry {
                    code: s.code.clone(),
                    version: s.version.clone(),
                    namespace: s.namespace.clone(),
                    root: s.root.clone(),
                    schema,
                    edoc_header: s.edoc_header,
                });
            }
        }
        let mut messages = HashMap::new();
        for p in packages {
            for m in &p.messages {
                let Some(&structure) =
                    by_key.get(&(m.structure.clone(), m.structure_version.clone()))
                else {
                    continue; // reported above or by the package check
                };
                let mut rules = Vec::new();
                let rules_of = m.rules_of.as_deref().unwrap_or(&m.code);
                for r in p.rules.iter().filter(|r| r.message == rules_of) {
                    match rules::Compiled::new(r, &p.namespaces) {
                        Ok(c) => rules.push(c),
                        Err(e) => problems.push(format!("{}: {e}", p.process.code)),
                    }
                }
                messages.insert(
                    (
                        p.process.code.clone(),
                        p.process.version.clone(),
                        m.code.clone(),
                    ),
                    MessageEntry { structure, rules },
                );
            }
        }
        if problems.is_empty() {
            Ok(Validator {
                schemas,
                structures,
                messages,
                limits,
            })
        } else {
            Err(CompileError(problems))
        }
    }

    /// Does the loaded package of this process version define this message?
    pub fn knows(&self, process: &str, version: &str, message: &str) -> bool {
        self.messages
            .contains_key(&(process.to_owned(), version.to_owned(), message.to_owned()))
    }

    /// The ids of the filling rules of a message of a process version.
    pub fn rule_ids(&self, process: &str, version: &str, message: &str) -> Vec<&str> {
        self.messages
            .get(&(process.to_owned(), version.to_owned(), message.to_owned()))
            .map(|m| m.rules.iter().map(|r| r.id()).collect())
            .unwrap_or_default()
    }

    /// Every diagnostic of `bytes` as the document of `ctx.message`.
    pub fn validate(&self, bytes: &[u8], ctx: &Context) -> Report {
        let mut report = Report::default();
        let d = &mut report.diagnostics;
        let fail = |d: &mut Vec<Diagnostic>, rule: &str, line, ru: String, en: String| {
            d.push(Diagnostic {
                rule: rule.into(),
                xpath: "/".into(),
                line,
                ru,
                en,
            })
        };
        let key = (
            ctx.process.to_owned(),
            ctx.version.to_owned(),
            ctx.message.to_owned(),
        );
        let Some(msg) = self.messages.get(&key) else {
            fail(
                d,
                "HDR.000",
                None,
                format!(
                    "Сообщение {} процесса {} {} не описано ни в одном загруженном пакете",
                    ctx.message, ctx.process, ctx.version
                ),
                format!(
                    "Message {} of process {} {} is not defined by any loaded package",
                    ctx.message, ctx.process, ctx.version
                ),
            );
            return report;
        };
        if bytes.len() > self.limits.max_bytes {
            fail(
                d,
                "XML.001",
                None,
                format!(
                    "Документ длиной {} байт превышает предел {} байт",
                    bytes.len(),
                    self.limits.max_bytes
                ),
                format!(
                    "The document is {} bytes, over the limit of {}",
                    bytes.len(),
                    self.limits.max_bytes
                ),
            );
            return report;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            fail(
                d,
                "XML.002",
                None,
                "Документ должен быть в кодировке UTF-8".into(),
                "The document must be UTF-8".into(),
            );
            return report;
        };
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: self.limits.max_nodes,
            // No resolver: an external entity reference is an error, never a file read.
            ..roxmltree::ParsingOptions::default()
        };
        let doc = match roxmltree::Document::parse_with_options(text, opts) {
            Ok(doc) => doc,
            Err(e) => {
                let pos = e.pos();
                fail(
                    d,
                    "XML.003",
                    Some(pos.row),
                    format!(
                        "Документ не является корректным XML (DTD и сущности не допускаются): {e}"
                    ),
                    format!(
                        "The document is not well-formed XML (DTDs and entities are refused): {e}"
                    ),
                );
                return report;
            }
        };
        let s = &self.structures[msg.structure];
        report.structure = Some((s.code.clone(), s.version.clone()));
        let root = doc.root_element();
        let (ns, local) = (
            root.tag_name().namespace().unwrap_or(""),
            root.tag_name().name(),
        );
        if ns != s.namespace || local != s.root {
            let found = self
                .structures
                .iter()
                .find(|o| o.namespace == ns && o.root == local)
                .map(|o| format!(" ({} {})", o.code, o.version))
                .unwrap_or_default();
            fail(
                d,
                "HDR.001",
                Some(1),
                format!(
                    "Сообщение {} несёт документ {} {}: ожидался корневой элемент {{{}}}{}, получен {{{ns}}}{local}{found}",
                    ctx.message, s.code, s.version, s.namespace, s.root
                ),
                format!(
                    "Message {} carries structure {} {}: root {{{}}}{} expected, got {{{ns}}}{local}{found}",
                    ctx.message, s.code, s.version, s.namespace, s.root
                ),
            );
            return report;
        }
        // An enveloped XMLDSig signature (the root's last child) signs the document; it is not
        // part of the structure, whose official schemas leave no room for it. The schema
        // judges the document without it; the signature is judged by the node and the TTP.
        let unsigned;
        let mut text = text;
        if let Some(sig) = doc.root_element().last_element_child()
            && sig.tag_name().name() == "Signature"
            && sig.tag_name().namespace() == Some("http://www.w3.org/2000/09/xmldsig#")
        {
            let r = sig.range();
            unsigned = format!("{}{}", &text[..r.start], &text[r.end..]);
            text = &unsigned;
        }
        for e in self.schemas[s.schema].validate(text) {
            d.push(Diagnostic {
                rule: "XSD".into(),
                xpath: e.xpath,
                line: e.line,
                ru: format!("Нарушена схема XSD {} {}: {}", s.code, s.version, e.message),
                en: format!("Schema {} {} violated: {}", s.code, s.version, e.message),
            });
        }
        if s.edoc_header {
            header(&doc, s, ctx, &mut report);
        }
        for r in &msg.rules {
            r.check(&doc, ctx, &mut report.diagnostics);
        }
        report
    }
}

/// The `EDocHeader` checks: the document says which structure and message it is, which
/// document it answers, and when it was made.
fn header(doc: &roxmltree::Document, s: &StructureEntry, ctx: &Context, report: &mut Report) {
    let scope = header_scope(doc);
    let root = scope.node;
    let child = |name: &str| header_field(&scope, name);
    let value = |n: &roxmltree::Node| n.text().unwrap_or("").trim().to_owned();
    report.edoc_id = child("EDocId").map(|n| value(&n));
    let mut push = |n: Option<roxmltree::Node>, rule: &str, path: &str, ru: String, en: String| {
        report.diagnostics.push(Diagnostic {
            rule: rule.into(),
            xpath: n
                .as_ref()
                .map(|n| rules::xpath(n, None))
                .unwrap_or_else(|| format!("{}/{path}", rules::xpath(&root, None))),
            line: n.as_ref().map(|n| rules::line(doc, n)),
            ru,
            en,
        })
    };
    match child("EDocCode") {
        Some(n) if value(&n) == s.code => {}
        n => {
            let got = n.as_ref().map(value).unwrap_or_default();
            push(
                n,
                "HDR.002",
                "csdo:EDocCode",
                format!(
                    "Код электронного документа (EDocCode) должен быть {}, указано «{got}»",
                    s.code
                ),
                format!("EDocCode must be {}, found {got:?}", s.code),
            );
        }
    }
    // The Union's header always names the message; our flat layout may leave it out.
    match child("InfEnvelopeCode") {
        Some(n) if value(&n) == ctx.message => {}
        None if !scope.official => {}
        n => {
            let got = n.as_ref().map(value).unwrap_or_default();
            push(
                n,
                "HDR.003",
                "csdo:InfEnvelopeCode",
                format!(
                    "Код сообщения (InfEnvelopeCode) должен быть {}, указано «{got}»",
                    ctx.message
                ),
                format!("InfEnvelopeCode must be {}, found {got:?}", ctx.message),
            );
        }
    }
    // In this version of the data model EDocId is a bare UUID (no urn:uuid: prefix).
    if let Some(n) = child("EDocId") {
        let id = value(&n);
        let bare = is_uuid(&id);
        if !bare {
            push(
                Some(n),
                "HDR.006",
                "",
                format!(
                    "Идентификатор документа (EDocId) «{id}» не является UUID вида xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
                ),
                format!(
                    "EDocId {id:?} is not a UUID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
                ),
            );
        }
    }
    // LanguageCode: two lower-case letters, a language of ISO 639-1 when the node holds it.
    if let Some(n) = child("LanguageCode") {
        let code = value(&n);
        let form = code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase());
        let day = ctx.now.date().to_julian_day();
        let known = ctx.nsi.is_valid(LANGUAGES, &code, day);
        if !form || known == Some(false) {
            push(
                Some(n),
                "HDR.007",
                "",
                format!("Код языка (LanguageCode) «{code}» не является кодом языка ISO 639-1"),
                format!("LanguageCode {code:?} is not an ISO 639-1 language code"),
            );
        }
    }
    if let Some(expected) = ctx.ref_id {
        match child("EDocRefId") {
            Some(n) if value(&n).eq_ignore_ascii_case(expected) => {}
            n => {
                let got = n.as_ref().map(value).unwrap_or_default();
                push(
                    n,
                    "HDR.004",
                    "csdo:EDocRefId",
                    format!(
                        "Ответ должен ссылаться (EDocRefId) на документ {expected}, указано «{got}»"
                    ),
                    format!(
                        "A response must refer (EDocRefId) to document {expected}, found {got:?}"
                    ),
                );
            }
        }
    }
    if let Some(n) = child("EDocDateTime")
        && let Some(t) = rules::parse_datetime(&value(&n))
        && t > ctx.now + CLOCK_SKEW
    {
        let now = ctx
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        push(
            Some(n),
            "HDR.005",
            "",
            format!(
                "Дата и время документа {} позже текущего времени {now}",
                value(&n)
            ),
            format!(
                "The document's date and time {} is later than now ({now})",
                value(&n)
            ),
        );
    }
}
