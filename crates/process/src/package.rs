//! The process package: `process.toml` (see `docs/process-packages.md`) and the XSD files it
//! names, loaded and checked as a whole. Every problem is reported at once, each naming the
//! entry it concerns, so an operator who drops in the official tables sees everything to fix.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use envelope::ProcessCode;
use serde::Deserialize;

use crate::engine::{Pattern, Timing};

pub type Names = BTreeMap<String, String>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessHeader {
    /// `P.TS.01`.
    pub code: String,
    /// `1.0.1`.
    pub version: String,
    pub names: Names,
    /// What the package was written from, e.g. "modeled on Decision No. 93, not copied".
    #[serde(default)]
    pub modeled_on: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// `P.TS.01.ACT.002`, or a Commission-wide role such as `P.ACT.001`.
    pub code: String,
    pub names: Names,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub code: String,
    pub names: Names,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionDef {
    pub code: String,
    pub procedure: String,
    pub names: Names,
    pub pattern: Pattern,
    /// The initiating and the responding role.
    pub initiator: String,
    pub responder: String,
    /// The initiating message and the messages that may answer it.
    pub message: String,
    #[serde(default)]
    pub responses: Vec<String>,
    /// Time for receipt confirmation (RCV), seconds; absent when not used («-»).
    #[serde(default)]
    pub receipt_secs: Option<u64>,
    /// Time for processing confirmation (PRS), seconds.
    #[serde(default)]
    pub processing_secs: Option<u64>,
    /// Response wait, seconds.
    #[serde(default)]
    pub response_secs: Option<u64>,
    /// How many times the initiator may resend («Количество повторов»).
    #[serde(default)]
    pub retries: u32,
    /// «Признак авторизации»; its meaning was not found in the sources, so it is kept, not used.
    #[serde(default)]
    pub authorization: bool,
    /// The business entity the transaction produces, and its state on success.
    #[serde(default)]
    pub result: Option<String>,
    /// What answers an initiating document that fails validation.
    #[serde(default)]
    pub on_invalid: OnInvalid,
}

/// How a transaction answers an invalid document (Decision No. 5 allows both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalid {
    /// The receiving node answers ERR `Common:DataError` with the diagnostics and does not
    /// deliver the document.
    #[default]
    ErrorSignal,
    /// The document reaches the responding IS, which answers with a processing result
    /// (R.006) listing the diagnostics.
    ProcessingResult,
}

impl TransactionDef {
    pub fn timing(&self) -> Timing {
        let d = |s: Option<u64>| s.map(Duration::from_secs);
        Timing {
            receipt: d(self.receipt_secs),
            processing: d(self.processing_secs),
            response: d(self.response_secs),
            retries: self.retries,
        }
    }

    /// Does the receiving side confirm receipt (RCV) of message `code` of this transaction,
    /// as the engine's sides do: the initiating message of a notification or of a transaction
    /// with a receipt time, and the response of mutual obligations or of a request/confirmation
    /// with a receipt time.
    pub fn receipt_confirmed(&self, code: &str) -> bool {
        use crate::engine::Pattern;
        if code == self.message {
            self.pattern == Pattern::Notification
                || (self.receipt_secs.is_some() && self.pattern != Pattern::InformationDistribution)
        } else if self.responses.iter().any(|r| r == code) {
            self.pattern == Pattern::MutualObligations
                || (self.pattern == Pattern::RequestConfirmation && self.receipt_secs.is_some())
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub code: String,
    pub names: Names,
    /// The e-document structure it carries (`R.TR.TS.01.001`) and its version.
    pub structure: String,
    pub structure_version: String,
    /// A legally significant message: the sending node accepts it only with a valid
    /// document signature, and a node running the trusted third party attaches its receipt.
    #[serde(default)]
    pub legally_significant: bool,
    /// Legally significant when its document is signed: a document that carries an enveloped
    /// signature is treated as `legally_significant` (the signature must verify, the trusted
    /// third party attaches its receipt); an unsigned one is an ordinary document. So one
    /// official message serves both, as the Union's documents may be signed or not.
    #[serde(default)]
    pub legally_significant_when_signed: bool,
    /// Checked by the filling rules of this other message, which carries the same structure
    /// (a signed variant of a message, say), instead of repeating them.
    #[serde(default)]
    pub rules_of: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    pub code: String,
    pub version: String,
    /// Target namespace of its XSD, e.g. `urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1`.
    pub namespace: String,
    /// Local name of the root element.
    pub root: String,
    /// The XSD file, relative to the package folder.
    pub xsd: PathBuf,
    /// The document opens with the EDocHeader of the EEC conventions (EDocCode, EDocId,
    /// EDocDateTime, ...), which validation checks. False for layouts of our own that have
    /// none.
    #[serde(default = "yes")]
    pub edoc_header: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    pub code: String,
    pub names: Names,
}

/// A filling rule: a declarative check on one message's document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, quoted in every diagnostic.
    pub id: String,
    pub message: String,
    /// Path of the element checked, with the prefixes of `namespaces`.
    pub path: String,
    pub check: RuleCheck,
    /// The rule applies only when this path is present.
    #[serde(default)]
    pub when_present: Option<String>,
    /// The rule applies only when the element at `path` has the text `equals`.
    #[serde(default)]
    pub when: Option<Condition>,
    /// What is wrong when the rule fails, in Russian and English.
    pub text: Names,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RuleCheck {
    /// The element must be present.
    Present,
    /// The element must be absent.
    Absent,
    /// The element's text must be this value.
    Fixed { value: String },
    /// The element's `codeListId` attribute must be this resource.
    CodeListId { resource: String },
    /// The element's text must be a code of this NSI resource valid on the document date
    /// (the date is read at `date_path`, in the same record: see `edoc`'s rule scoping). With
    /// `first_chars`, only that many leading characters are looked up: the first six digits of
    /// a code of the Union's commodity nomenclature are its Harmonized System subheading.
    InResource {
        resource: String,
        date_path: String,
        #[serde(default)]
        first_chars: Option<usize>,
    },
    /// The element's text must be one of these values (a filling rule that lists them).
    OneOf { values: Vec<String> },
    /// The element's text must begin with this prefix.
    StartsWith { prefix: String },
    /// No two elements at the path may have the same text (e.g. DocId within one message).
    Unique,
    /// Every element at the path must contain at least one of these relative paths (e.g. each
    /// address has its kind; each object has a commodity code in a product or an instance).
    EachHas { children: Vec<String> },
    /// The element's date must not be before the date at `other` (e.g. an end date).
    NotBefore { other: String },
    /// The element's text must be a key of this business entity in the common resource the
    /// process keeps (e.g. a status change names a document already in the registry).
    Registered { entity: String },
}

/// A condition on another element of the same document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub path: String,
    pub equals: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    process: ProcessHeader,
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    procedures: Vec<Procedure>,
    #[serde(default)]
    transactions: Vec<TransactionDef>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    structures: Vec<Structure>,
    #[serde(default)]
    entities: Vec<Entity>,
    #[serde(default)]
    rules: Vec<Rule>,
}

/// A loaded, checked process package.
#[derive(Debug, Clone)]
pub struct Package {
    pub dir: PathBuf,
    pub process: ProcessHeader,
    /// Prefix → namespace, for rule paths.
    pub namespaces: BTreeMap<String, String>,
    pub roles: Vec<Role>,
    pub procedures: Vec<Procedure>,
    pub transactions: Vec<TransactionDef>,
    pub messages: Vec<Message>,
    pub structures: Vec<Structure>,
    pub entities: Vec<Entity>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {} problems:\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl Package {
    /// Loads `dir/process.toml` and checks it with the files it names.
    pub fn load(dir: &Path) -> Result<Package, PackageError> {
        let path = dir.join("process.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| PackageError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Package::parse(dir, &text).map_err(|problems| PackageError::Invalid { path, problems })
    }

    /// Parses and checks a manifest whose files live in `dir`.
    pub fn parse(dir: &Path, text: &str) -> Result<Package, Vec<String>> {
        let m: Manifest = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let p = Package {
            dir: dir.to_owned(),
            process: m.process,
            namespaces: m.namespaces,
            roles: m.roles,
            procedures: m.procedures,
            transactions: m.transactions,
            messages: m.messages,
            structures: m.structures,
            entities: m.entities,
            rules: m.rules,
        };
        let problems = p.check();
        if problems.is_empty() {
            Ok(p)
        } else {
            Err(problems)
        }
    }

    /// Every inconsistency: codes of another process or malformed, duplicates, references to
    /// roles, procedures, messages, structures or entities that are not defined, XSD files
    /// that are missing, patterns whose parameters do not fit, rule paths with unknown
    /// prefixes.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        let pc = match ProcessCode::parse(&self.process.code) {
            Ok(p) => Some(p),
            Err(e) => {
                out.push(format!("process: {e}"));
                None
            }
        };
        if self.process.version.split('.').count() != 3
            || !self
                .process
                .version
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push(format!(
                "process: version {:?} is not X.Y.Z",
                self.process.version
            ));
        }
        let member = |out: &mut Vec<String>, what: &str, code: &str, kind: &str| {
            if let Some(pc) = &pc
                && let Err(e) = pc.check_member(code, kind)
            {
                out.push(format!("{what} {code}: {e}"));
            }
        };
        let mut seen = HashSet::new();
        let mut dup = |out: &mut Vec<String>, code: &str| {
            if !seen.insert(code.to_owned()) {
                out.push(format!("{code} is defined twice"));
            }
        };
        for r in &self.roles {
            dup(&mut out, &r.code);
            // Commission-wide roles (P.ACT.nnn) belong to no single process.
            let global = r
                .code
                .strip_prefix("P.ACT.")
                .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()));
            if !global {
                member(&mut out, "role", &r.code, "ACT");
            }
        }
        for x in &self.procedures {
            dup(&mut out, &x.code);
            member(&mut out, "procedure", &x.code, "PRC");
        }
        for x in &self.messages {
            dup(&mut out, &x.code);
            member(&mut out, "message", &x.code, "MSG");
        }
        for x in &self.entities {
            dup(&mut out, &x.code);
            member(&mut out, "business entity", &x.code, "BEN");
        }
        let roles: HashSet<&str> = self.roles.iter().map(|r| r.code.as_str()).collect();
        let procs: HashSet<&str> = self.procedures.iter().map(|r| r.code.as_str()).collect();
        let msgs: HashSet<&str> = self.messages.iter().map(|r| r.code.as_str()).collect();
        let ents: HashSet<&str> = self.entities.iter().map(|r| r.code.as_str()).collect();
        for t in &self.transactions {
            dup(&mut out, &t.code);
            member(&mut out, "transaction", &t.code, "TRN");
            let at = format!("transaction {}", t.code);
            if !procs.contains(t.procedure.as_str()) {
                out.push(format!("{at}: procedure {} is not defined", t.procedure));
            }
            for (what, r) in [("initiator", &t.initiator), ("responder", &t.responder)] {
                if !roles.contains(r.as_str()) {
                    out.push(format!("{at}: {what} role {r} is not defined"));
                }
            }
            for m in std::iter::once(&t.message).chain(&t.responses) {
                if !msgs.contains(m.as_str()) {
                    out.push(format!("{at}: message {m} is not defined"));
                }
            }
            if let Some(b) = t
                .result
                .as_deref()
                .and_then(|r| r.split_whitespace().next())
                && !ents.contains(b)
            {
                out.push(format!("{at}: business entity {b} is not defined"));
            }
            if let Err(e) = t.pattern.check(&t.timing(), !t.responses.is_empty()) {
                out.push(format!("{at}: {e}"));
            }
        }
        let mut structs = HashSet::new();
        for s in &self.structures {
            if !official_edoc_code(&s.code) {
                out.push(format!(
                    "structure {}: not of the data model's EDocCode form R[.AA.BB.nn].nnn",
                    s.code
                ));
            } else if user_assigned(&s.code) && s.namespace.starts_with("urn:EEC:") {
                out.push(format!(
                    "structure {}: a code of our own takes a namespace of our own, not {}",
                    s.code, s.namespace
                ));
            }
            if !structs.insert((s.code.as_str(), s.version.as_str())) {
                out.push(format!(
                    "structure {} {} is defined twice",
                    s.code, s.version
                ));
            }
            let f = self.dir.join(&s.xsd);
            if !f.is_file() {
                out.push(format!(
                    "structure {} {}: XSD file {} is missing",
                    s.code,
                    s.version,
                    f.display()
                ));
            } else {
                for p in outside_imports(&self.dir, &f) {
                    out.push(format!(
                        "structure {} {}: {p}: a package holds every schema it uses",
                        s.code, s.version
                    ));
                }
            }
        }
        for m in &self.messages {
            if let Some(o) = &m.rules_of
                && !self.messages.iter().any(|x| {
                    &x.code == o
                        && x.structure == m.structure
                        && x.structure_version == m.structure_version
                })
            {
                out.push(format!(
                    "message {}: rules_of {o} is not a message of this package with the same structure",
                    m.code
                ));
            }
            if !structs.contains(&(m.structure.as_str(), m.structure_version.as_str())) {
                out.push(format!(
                    "message {}: structure {} {} is not in the package",
                    m.code, m.structure, m.structure_version
                ));
            }
        }
        let mut ids = HashSet::new();
        for r in &self.rules {
            if !ids.insert(r.id.as_str()) {
                out.push(format!("rule {} is defined twice", r.id));
            }
            if !msgs.contains(r.message.as_str()) {
                out.push(format!(
                    "rule {}: message {} is not defined",
                    r.id, r.message
                ));
            }
            if let RuleCheck::Registered { entity } = &r.check
                && !ents.contains(entity.as_str())
            {
                out.push(format!(
                    "rule {}: business entity {entity} is not defined",
                    r.id
                ));
            }
            let extra = match &r.check {
                RuleCheck::InResource { date_path, .. } => Some(date_path),
                RuleCheck::NotBefore { other } => Some(other),
                _ => None,
            };
            if let RuleCheck::EachHas { children } = &r.check {
                if children.is_empty() {
                    out.push(format!("rule {}: each-has names no children", r.id));
                }
                for c in children {
                    if c.starts_with('/') || c.contains('@') || c.split('/').any(str::is_empty) {
                        out.push(format!(
                            "rule {}: child path {c} must be relative element steps",
                            r.id
                        ));
                    }
                    for step in c.split('/') {
                        if let Some((prefix, _)) = step.split_once(':')
                            && !self.namespaces.contains_key(prefix)
                        {
                            out.push(format!(
                                "rule {}: prefix {prefix} of {c} is not declared in [namespaces]",
                                r.id
                            ));
                        }
                    }
                }
            }
            for path in std::iter::once(&r.path)
                .chain(&r.when_present)
                .chain(r.when.as_ref().map(|c| &c.path))
                .chain(extra)
            {
                if !path.starts_with('/') {
                    out.push(format!(
                        "rule {}: path {path} must be absolute (start with /)",
                        r.id
                    ));
                }
                for step in path.split('/').filter(|s| !s.is_empty()) {
                    let step = step.trim_start_matches('@');
                    if let Some((prefix, _)) = step.split_once(':')
                        && !self.namespaces.contains_key(prefix)
                    {
                        out.push(format!(
                            "rule {}: prefix {prefix:?} in {path} is not declared in [namespaces]",
                            r.id
                        ));
                    }
                }
            }
            // The official filling rules are in Russian only; English is welcome, not required.
            if !r.text.contains_key("ru") {
                out.push(format!("rule {}: text needs a Russian text (ru)", r.id));
            }
        }
        out
    }

    pub fn transaction(&self, code: &str) -> Option<&TransactionDef> {
        self.transactions.iter().find(|t| t.code == code)
    }

    pub fn message(&self, code: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.code == code)
    }

    pub fn structure(&self, code: &str, version: &str) -> Option<&Structure> {
        self.structures
            .iter()
            .find(|s| s.code == code && s.version == version)
    }

    /// The transaction a message starts or answers.
    pub fn transaction_of(&self, message: &str) -> Option<&TransactionDef> {
        self.transactions
            .iter()
            .find(|t| t.message == message || t.responses.iter().any(|r| r == message))
    }
}

/// Every package under `dir` (each sub-folder holding a `process.toml`), sorted by code.
/// `EDocCodeType` of the data model: `R(\.[A-Z]{2}\.[A-Z]{2}\.[0-9]{2})?\.[0-9]{3}`.
fn official_edoc_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    let upper2 = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase());
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["R", n] => digits(n, 3),
        ["R", a, b, c, n] => upper2(a) && upper2(b) && digits(c, 2) && digits(n, 3),
        _ => false,
    }
}

/// Whether a structure code's area is one of the user-assigned codes of ISO 3166-1 (AA,
/// QM-QZ, XA-XZ, ZZ): the space of codes of our own, which the Commission never assigns.
fn user_assigned(code: &str) -> bool {
    let Some(area) = code.split('.').nth(1) else {
        return false;
    };
    let b = area.as_bytes();
    area == "AA"
        || area == "ZZ"
        || (b.len() == 2 && b[0] == b'X')
        || (b.len() == 2 && b[0] == b'Q' && b[1] >= b'M')
}

/// The `schemaLocation`s of `xsd` and of the package's schemas it reaches that lead out of the
/// package folder `dir` (as "file: location").
fn outside_imports(dir: &Path, xsd: &Path) -> Vec<String> {
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![xsd.to_owned()];
    while let Some(f) = todo.pop() {
        let Ok(f) = f.canonicalize() else { continue };
        if !seen.insert(f.clone()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for loc in text.split("schemaLocation=\"").skip(1) {
            let Some(loc) = loc.split('"').next() else {
                continue;
            };
            let target = f.parent().unwrap_or(dir).join(loc);
            let inside = target
                .canonicalize()
                .map(|t| t.starts_with(&root))
                .unwrap_or(!loc.contains(".."));
            if inside {
                todo.push(target);
            } else {
                let shown = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
                out.push(format!("{shown} imports {loc}"));
            }
        }
    }
    out
}

pub fn load_all(dir: &Path) -> Result<Vec<Package>, PackageError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| PackageError::Read {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    for e in entries.flatten() {
        if e.path().join("process.toml").is_file() {
            out.push(Package::load(&e.path())?);
        }
    }
    out.sort_by(|a, b| a.process.code.cmp(&b.process.code));
    Ok(out)
}
