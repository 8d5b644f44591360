//! The model of an NSI resource and of a crosswalk, the checks an import must pass, and the
//! canonical form whose SHA-256 names a version.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;

/// ISO 639-1 codes: the languages a name may be given in.
const LANGUAGES: &str = "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de \
dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia \
id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo \
lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl \
ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti \
tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

pub fn known_language(l: &str) -> bool {
    l.len() == 2 && LANGUAGES.split(' ').any(|x| x == l)
}

/// Directory (справочник) or classifier (классификатор).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Directory,
    Classifier,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::Classifier => "classifier",
        }
    }
}

/// What a resource is: code designation, kind, names, owner, approving act, trusted source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub code: String,
    pub kind: Kind,
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub act: String,
    /// Where the data comes from, with its licence.
    #[serde(default)]
    pub source: String,
}

mod date_opt {
    //! Dates as `YYYY-MM-DD`, absent when open-ended.
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    const FMT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]");

    pub fn parse(s: &str) -> Result<Date, String> {
        Date::parse(s.trim(), FMT).map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
    }

    pub fn format(d: Date) -> String {
        d.format(FMT).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => parse(s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

pub use date_opt::{format as format_date, parse as parse_date};

/// One entry of a resource. The same code may appear more than once with validity periods
/// that do not overlap (a name changed, a code was withdrawn and reused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub code: String,
    pub names: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, with = "date_opt", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Date>,
    #[serde(default, with = "date_opt", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Date>,
    /// The act that introduced or changed this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
}

impl Item {
    /// Valid on `day` (both ends inclusive; an open end is unbounded).
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day <= t)
    }

    fn overlaps(&self, other: &Item) -> bool {
        let (a0, a1) = (
            self.valid_from.unwrap_or(Date::MIN),
            self.valid_to.unwrap_or(Date::MAX),
        );
        let (b0, b1) = (
            other.valid_from.unwrap_or(Date::MIN),
            other.valid_to.unwrap_or(Date::MAX),
        );
        a0 <= b1 && b0 <= a1
    }
}

/// A directory or classifier: its header and all its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub resource: Header,
    pub items: Vec<Item>,
}

/// How a source code relates to its target, from the source's side (as SKOS mapping
/// properties): `broader` means the target is broader than the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    Exact,
    Broader,
    Narrower,
    Related,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Exact => "exact",
            Relation::Broader => "broader",
            Relation::Narrower => "narrower",
            Relation::Related => "related",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrosswalkHeader {
    pub code: String,
    /// Source and target resources.
    pub from: String,
    pub to: String,
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub from: String,
    pub to: String,
    pub relation: Relation,
    #[serde(default, with = "date_opt", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Date>,
    #[serde(default, with = "date_opt", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Date>,
}

impl Mapping {
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day <= t)
    }
}

/// A crosswalk ("transition key") between two resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crosswalk {
    pub crosswalk: CrosswalkHeader,
    pub mappings: Vec<Mapping>,
}

/// What a version holds: a resource or a crosswalk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Resource(Resource),
    Crosswalk(Crosswalk),
}

/// One thing wrong with an import, located as precisely as the format allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `line 12`, `item 5 (BY)`, `header`.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

fn problem(at: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        at: at.into(),
        message: message.into(),
    }
}

/// Codes and resource designations: printable, no spaces, at most 64 characters.
fn check_code(what: &str, code: &str) -> Result<(), String> {
    if code.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if code.chars().count() > 64 {
        return Err(format!("{what} {code:?} is longer than 64 characters"));
    }
    if code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} {code:?} contains spaces or control characters"
        ));
    }
    Ok(())
}

fn check_names(at: &str, names: &BTreeMap<String, String>, out: &mut Vec<Problem>) {
    if names.is_empty() {
        out.push(problem(at, "has no name in any language"));
    }
    for (lang, name) in names {
        if !known_language(lang) {
            out.push(problem(
                at,
                format!("unknown language {lang:?} (ISO 639-1 expected)"),
            ));
        }
        if name.trim().is_empty() {
            out.push(problem(at, format!("empty name in {lang:?}")));
        }
    }
}

/// Where item `i` came from, for messages: the format's own location if it gave one.
pub type Locate<'a> = &'a dyn Fn(usize) -> String;

impl Resource {
    /// Every problem in the resource: header, codes, names and languages, dates, duplicate
    /// codes and overlapping validity, parents that do not exist, circular hierarchies.
    pub fn check(&self, locate: Locate<'_>) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(e) = check_code("resource code", &self.resource.code) {
            out.push(problem("header", e));
        }
        check_names("header", &self.resource.names, &mut out);
        let mut by_code: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, it) in self.items.iter().enumerate() {
            let at = locate(i);
            if let Err(e) = check_code("code", &it.code) {
                out.push(problem(&at, e));
            }
            check_names(&at, &it.names, &mut out);
            if let (Some(f), Some(t)) = (it.valid_from, it.valid_to)
                && f > t
            {
                out.push(problem(
                    &at,
                    format!(
                        "valid_from {} is after valid_to {}",
                        format_date(f),
                        format_date(t)
                    ),
                ));
            }
            if it.parent.as_deref() == Some(it.code.as_str()) {
                out.push(problem(&at, "is its own parent"));
            }
            let same = by_code.entry(it.code.as_str()).or_default();
            for &j in same.iter() {
                let other = &self.items[j];
                if other.valid_from == it.valid_from && other.valid_to == it.valid_to {
                    out.push(problem(
                        &at,
                        format!("duplicate code {} (also {})", it.code, locate(j)),
                    ));
                } else if other.overlaps(it) {
                    out.push(problem(
                        &at,
                        format!("validity of {} overlaps {}", it.code, locate(j)),
                    ));
                }
            }
            same.push(i);
        }
        for (i, it) in self.items.iter().enumerate() {
            if let Some(p) = &it.parent
                && p != &it.code
                && !by_code.contains_key(p.as_str())
            {
                out.push(problem(locate(i), format!("parent {p} does not exist")));
            }
        }
        // Circular hierarchies: follow parents; a walk longer than the number of codes loops.
        let parent: HashMap<&str, &str> = self
            .items
            .iter()
            .filter_map(|it| Some((it.code.as_str(), it.parent.as_deref()?)))
            .collect();
        let mut reported: HashSet<&str> = HashSet::new();
        for (i, it) in self.items.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut cur = it.code.as_str();
            while let Some(&p) = parent.get(cur) {
                if reported.contains(cur) {
                    break;
                }
                if !seen.insert(cur) {
                    // `cur` is on a cycle: name its members once.
                    let mut members = vec![cur];
                    let mut c = parent[cur];
                    while c != cur && members.len() <= self.items.len() {
                        members.push(c);
                        c = parent.get(c).copied().unwrap_or(cur);
                    }
                    reported.extend(members.iter().copied());
                    out.push(problem(
                        locate(i),
                        format!("circular hierarchy: {} -> {cur}", members.join(" -> ")),
                    ));
                    break;
                }
                cur = p;
            }
        }
        out
    }

    /// Items in a fixed order (code, then start of validity), so equal content hashes equal.
    pub fn normalize(&mut self) {
        self.items
            .sort_by(|a, b| (&a.code, a.valid_from).cmp(&(&b.code, b.valid_from)));
    }
}

impl Crosswalk {
    /// Codes, relations and dates; whether the codes exist is checked against the resources
    /// (see `Index::check_crosswalk`).
    pub fn check(&self, locate: Locate<'_>) -> Vec<Problem> {
        let mut out = Vec::new();
        for (what, c) in [
            ("crosswalk code", &self.crosswalk.code),
            ("source resource", &self.crosswalk.from),
            ("target resource", &self.crosswalk.to),
        ] {
            if let Err(e) = check_code(what, c) {
                out.push(problem("header", e));
            }
        }
        check_names("header", &self.crosswalk.names, &mut out);
        let mut seen = HashSet::new();
        for (i, m) in self.mappings.iter().enumerate() {
            for c in [&m.from, &m.to] {
                if let Err(e) = check_code("code", c) {
                    out.push(problem(locate(i), e));
                }
            }
            if let (Some(f), Some(t)) = (m.valid_from, m.valid_to)
                && f > t
            {
                out.push(problem(locate(i), "valid_from is after valid_to"));
            }
            if !seen.insert((&m.from, &m.to, m.valid_from)) {
                out.push(problem(
                    locate(i),
                    format!("mapping {} -> {} given twice", m.from, m.to),
                ));
            }
        }
        out
    }

    pub fn normalize(&mut self) {
        self.mappings
            .sort_by(|a, b| (&a.from, &a.to, a.valid_from).cmp(&(&b.from, &b.to, b.valid_from)));
    }
}

impl Content {
    /// The resource or crosswalk code this content is a version of.
    pub fn code(&self) -> &str {
        match self {
            Content::Resource(r) => &r.resource.code,
            Content::Crosswalk(c) => &c.crosswalk.code,
        }
    }

    pub fn check(&self, locate: Locate<'_>) -> Vec<Problem> {
        match self {
            Content::Resource(r) => r.check(locate),
            Content::Crosswalk(c) => c.check(locate),
        }
    }

    pub fn normalize(&mut self) {
        match self {
            Content::Resource(r) => r.normalize(),
            Content::Crosswalk(c) => c.normalize(),
        }
    }

    /// The canonical bytes of a version: normalized content as compact JSON with sorted keys
    /// (every map is a BTreeMap and every struct serializes its fields in a fixed order).
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.normalize();
        serde_json::to_vec(&c).unwrap_or_default()
    }

    /// SHA-256 of the canonical bytes, hex: the name of this content.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical()))
    }

    /// Hash of bytes that are already canonical (as stored), to check a received version.
    pub fn sha256_of(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }
}
