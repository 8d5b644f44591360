//! EDocHeader checks and filling rules, evaluated over a read-only DOM: absolute element paths
//! with the package's prefixes, an optional final `@attribute`.

use std::collections::{BTreeMap, HashMap};

use process::package::{Condition, Rule, RuleCheck};
use roxmltree::{Document, Node};
use time::{Date, OffsetDateTime};

use crate::{Context, Diagnostic};

/// A rule path resolved against the package's namespaces.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    text: String,
    steps: Vec<(String, String)>,
    attribute: Option<String>,
}

impl Path {
    pub(crate) fn parse(text: &str, ns: &BTreeMap<String, String>) -> Result<Path, String> {
        let mut steps = Vec::new();
        let mut attribute = None;
        let parts: Vec<&str> = text.split('/').skip(1).collect();
        if !text.starts_with('/') || parts.is_empty() {
            return Err(format!("path {text:?} must be absolute"));
        }
        for (i, part) in parts.iter().enumerate() {
            if let Some(a) = part.strip_prefix('@') {
                if i + 1 != parts.len() || a.is_empty() {
                    return Err(format!(
                        "path {text:?}: an attribute may only be the last step"
                    ));
                }
                attribute = Some(a.to_owned());
                continue;
            }
            let (uri, local) = match part.split_once(':') {
                Some((p, l)) => (
                    ns.get(p)
                        .ok_or_else(|| format!("path {text:?}: prefix {p:?} is not declared"))?
                        .clone(),
                    l,
                ),
                None => (String::new(), *part),
            };
            if local.is_empty() {
                return Err(format!("path {text:?} has an empty step"));
            }
            steps.push((uri, local.to_owned()));
        }
        if steps.is_empty() {
            return Err(format!("path {text:?} names no element"));
        }
        Ok(Path {
            text: text.to_owned(),
            steps,
            attribute,
        })
    }

    fn matches(n: &Node, (uri, local): &(String, String)) -> bool {
        n.is_element()
            && n.tag_name().name() == local
            && n.tag_name().namespace().unwrap_or("") == uri
    }

    /// The elements at this path (for an attribute path: the elements carrying it).
    fn select<'a, 'i>(&self, doc: &'a Document<'i>) -> Vec<Node<'a, 'i>> {
        let root = doc.root_element();
        if !Path::matches(&root, &self.steps[0]) {
            return Vec::new();
        }
        let mut cur = vec![root];
        for step in &self.steps[1..] {
            cur = cur
                .iter()
                .flat_map(|n| n.children().filter(|c| Path::matches(c, step)))
                .collect();
        }
        if let Some(a) = &self.attribute {
            cur.retain(|n| n.has_attribute(a.as_str()));
        }
        cur
    }

    fn value<'a>(&self, n: &Node<'a, '_>) -> &'a str {
        match &self.attribute {
            Some(a) => n.attribute(a.as_str()).unwrap_or(""),
            None => n.text().unwrap_or("").trim(),
        }
    }
}

/// A relative path below an element: element steps only (`each-has` children).
#[derive(Debug, Clone)]
struct Relative(Vec<(String, String)>);

impl Relative {
    fn parse(text: &str, ns: &BTreeMap<String, String>) -> Result<Relative, String> {
        let full = Path::parse(&format!("/{text}"), ns)?;
        if full.attribute.is_some() {
            return Err(format!("child path {text:?} may not name an attribute"));
        }
        Ok(Relative(full.steps))
    }

    fn exists(&self, n: &Node) -> bool {
        let mut cur = vec![*n];
        for step in &self.0 {
            cur = cur
                .iter()
                .flat_map(|n| n.children().filter(|c| Path::matches(c, step)))
                .collect();
            if cur.is_empty() {
                return false;
            }
        }
        true
    }
}

/// A second path of a rule (a condition, a date, another date), read in the same record as the
/// element checked: both paths are absolute, and the element they share (the deepest step
/// their paths have in common, e.g. one `trcdo:ConformityDocDetails` of a registry message
/// with many) is the scope. A message with one record behaves as if the paths were global.
#[derive(Debug, Clone)]
struct Scoped {
    path: Path,
    /// Steps the two paths share.
    shared: usize,
}

impl Scoped {
    fn new(path: Path, main: &Path) -> Scoped {
        let shared = path
            .steps
            .iter()
            .zip(&main.steps)
            .take_while(|(a, b)| a == b)
            .count();
        Scoped { path, shared }
    }

    /// The scope element of a node found at `p` (a path sharing `shared` steps with this one).
    fn scope_of<'a, 'i>(shared: usize, p: &Path, n: Node<'a, 'i>) -> Option<roxmltree::NodeId> {
        let up = p.steps.len().checked_sub(shared.max(1))?;
        n.ancestors().nth(up).map(|a| a.id())
    }

    /// The values of this path by scope element.
    fn values<'a>(&self, doc: &'a Document) -> HashMap<roxmltree::NodeId, Vec<&'a str>> {
        let mut out: HashMap<_, Vec<&str>> = HashMap::new();
        for n in self.path.select(doc) {
            if let Some(s) = Scoped::scope_of(self.shared, &self.path, n) {
                out.entry(s).or_default().push(self.path.value(&n));
            }
        }
        out
    }
}

/// A filling rule with its paths resolved.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    rule: Rule,
    path: Path,
    when_present: Option<Scoped>,
    when: Option<(Scoped, String)>,
    other: Option<Scoped>,
    children: Vec<Relative>,
}

impl Compiled {
    pub(crate) fn new(rule: &Rule, ns: &BTreeMap<String, String>) -> Result<Compiled, String> {
        let p = |t: &str| Path::parse(t, ns).map_err(|e| format!("rule {}: {e}", rule.id));
        let path = p(&rule.path)?;
        let scoped = |t: &str| p(t).map(|o| Scoped::new(o, &path));
        Ok(Compiled {
            when_present: rule.when_present.as_deref().map(scoped).transpose()?,
            when: rule
                .when
                .as_ref()
                .map(|Condition { path, equals }| Ok::<_, String>((scoped(path)?, equals.clone())))
                .transpose()?,
            other: match &rule.check {
                RuleCheck::InResource { date_path, .. } => Some(scoped(date_path)?),
                RuleCheck::NotBefore { other } => Some(scoped(other)?),
                _ => None,
            },
            children: match &rule.check {
                RuleCheck::EachHas { children } => children
                    .iter()
                    .map(|c| Relative::parse(c, ns).map_err(|e| format!("rule {}: {e}", rule.id)))
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            },
            path,
            rule: rule.clone(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.rule.id
    }

    /// The scope element of `n` with respect to a second path.
    fn scope(&self, other: &Scoped, n: Node) -> Option<roxmltree::NodeId> {
        Scoped::scope_of(other.shared, &self.path, n)
    }

    /// Every diagnostic this rule finds in `doc`.
    pub(crate) fn check(&self, doc: &Document, ctx: &Context, out: &mut Vec<Diagnostic>) {
        // Conditions hold per record: an element is checked when its own record meets them.
        // Each condition as its path and the records (scope elements) that meet it.
        let present = self.when_present.as_ref().map(|w| (w, w.values(doc)));
        let equal = self.when.as_ref().map(|(w, eq)| {
            let mut v = w.values(doc);
            v.retain(|_, vals| vals.iter().any(|x| x == eq));
            (w, v)
        });
        let meets = |cond: &Option<(&Scoped, HashMap<roxmltree::NodeId, Vec<&str>>)>, n: &Node| {
            cond.as_ref()
                .is_none_or(|(w, m)| self.scope(w, *n).is_some_and(|s| m.contains_key(&s)))
        };
        let applies = |n: &Node| meets(&present, n) && meets(&equal, n);
        let nodes: Vec<Node> = self.path.select(doc).into_iter().filter(applies).collect();
        let diag = |node: Option<&Node>, ru: String, en: String| Diagnostic {
            rule: self.rule.id.clone(),
            xpath: match node {
                Some(n) => xpath(n, self.path.attribute.as_deref()),
                None => self.path.text.clone(),
            },
            line: node.map(|n| line(doc, n)),
            ru,
            en,
        };
        // A rule with a Russian text only (as the official ones are) says it in both places.
        let text = |lang: &str| {
            self.rule
                .text
                .get(lang)
                .or_else(|| self.rule.text.get("ru"))
                .cloned()
                .unwrap_or_default()
        };
        // The value of the second path in the record of `n`, else the first one anywhere.
        let other_by_scope = self.other.as_ref().map(|o| o.values(doc));
        let other_value = |n: &Node| -> Option<String> {
            let o = self.other.as_ref()?;
            let by_scope = other_by_scope.as_ref()?;
            self.scope(o, *n)
                .and_then(|s| by_scope.get(&s))
                .and_then(|v| v.first())
                .map(|v| (*v).to_owned())
        };
        match &self.rule.check {
            RuleCheck::Present => {
                // Presence is of the document: the conditions hold if any record meets them.
                let cond = present.as_ref().is_none_or(|(_, m)| !m.is_empty())
                    && equal.as_ref().is_none_or(|(_, m)| !m.is_empty());
                if cond && self.path.select(doc).is_empty() {
                    out.push(diag(None, text("ru"), text("en")));
                }
            }
            RuleCheck::Absent => {
                for n in &nodes {
                    out.push(diag(Some(n), text("ru"), text("en")));
                }
            }
            RuleCheck::Fixed { value } => {
                for n in &nodes {
                    let v = self.path.value(n);
                    if v != value {
                        out.push(diag(
                            Some(n),
                            format!("{} (указано «{v}»)", text("ru")),
                            format!("{} (found {v:?})", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::OneOf { values } => {
                for n in &nodes {
                    let v = self.path.value(n);
                    if !values.iter().any(|x| x == v) {
                        out.push(diag(
                            Some(n),
                            format!("{} (указано «{v}»)", text("ru")),
                            format!("{} (found {v:?})", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::StartsWith { prefix } => {
                for n in &nodes {
                    let v = self.path.value(n);
                    if !v.starts_with(prefix.as_str()) {
                        out.push(diag(
                            Some(n),
                            format!("{} (указано «{v}»)", text("ru")),
                            format!("{} (found {v:?})", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::Unique => {
                let mut seen = std::collections::HashSet::new();
                for n in &nodes {
                    let v = self.path.value(n);
                    if !seen.insert(v) {
                        out.push(diag(
                            Some(n),
                            format!("{} («{v}» повторяется)", text("ru")),
                            format!("{} ({v:?} is repeated)", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::EachHas { .. } => {
                for n in &nodes {
                    if !self.children.iter().any(|c| c.exists(n)) {
                        out.push(diag(Some(n), text("ru"), text("en")));
                    }
                }
            }
            RuleCheck::CodeListId { resource } => {
                for n in &nodes {
                    let v = n.attribute("codeListId").unwrap_or("");
                    if v != resource {
                        out.push(diag(
                            Some(n),
                            format!("{} (codeListId «{v}»)", text("ru")),
                            format!("{} (codeListId {v:?})", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::InResource {
                resource,
                first_chars,
                ..
            } => {
                for n in &nodes {
                    let on = other_value(n)
                        .and_then(|d| parse_date(&d))
                        .unwrap_or(ctx.now.date());
                    let full = self.path.value(n);
                    let code = match first_chars {
                        Some(k) => full
                            .char_indices()
                            .nth(*k)
                            .map_or(full, |(i, _)| &full[..i]),
                        None => full,
                    };
                    let shown = if code == full {
                        format!("«{code}»")
                    } else {
                        format!("«{code}» (из «{full}»)")
                    };
                    match ctx.nsi.is_valid(resource, code, on.to_julian_day()) {
                        Some(true) => {}
                        Some(false) => out.push(diag(
                            Some(n),
                            format!(
                                "{}: код {shown} не действует в {resource} на {on}",
                                text("ru")
                            ),
                            format!(
                                "{}: code {code:?} is not valid in {resource} on {on}",
                                text("en")
                            ),
                        )),
                        None => out.push(diag(
                            Some(n),
                            format!(
                                "{}: справочник {resource} недоступен на этом узле, код {shown} не проверен",
                                text("ru")
                            ),
                            format!(
                                "{}: resource {resource} is not available on this node, so code {code:?} cannot be checked",
                                text("en")
                            ),
                        )),
                    }
                }
            }
            RuleCheck::NotBefore { .. } => {
                for n in &nodes {
                    let Some(other) = other_value(n).and_then(|d| parse_date(&d)) else {
                        continue;
                    };
                    if let Some(d) = parse_date(self.path.value(n))
                        && d < other
                    {
                        out.push(diag(
                            Some(n),
                            format!("{} ({d} раньше {other})", text("ru")),
                            format!("{} ({d} is before {other})", text("en")),
                        ));
                    }
                }
            }
            RuleCheck::Registered { entity } => {
                // Only the IS that keeps the common resource can answer this one.
                let Some(common) = ctx.common else { return };
                for n in &nodes {
                    let key = self.path.value(n);
                    if !common.contains(entity, key) {
                        out.push(diag(
                            Some(n),
                            format!("{} («{key}» нет в реестре)", text("ru")),
                            format!("{} ({key:?} is not in the registry)", text("en")),
                        ));
                    }
                }
            }
        }
    }
}

/// `xs:date` (with or without a zone) or the date of an `xs:dateTime`.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let d = s.trim().get(..10)?;
    Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// `/p:A/p:B[2]/@x`-style path of an element, with the document's own prefixes and a position
/// only where same-named siblings exist (as libxml2's `xmlGetNodePath` writes them).
pub(crate) fn xpath(n: &Node, attribute: Option<&str>) -> String {
    let mut parts = Vec::new();
    for a in n.ancestors().filter(|a| a.is_element()) {
        let tag = a.tag_name();
        let name = match tag.namespace().and_then(|u| a.lookup_prefix(u)) {
            Some(p) if !p.is_empty() => format!("{p}:{}", tag.name()),
            _ => tag.name().to_owned(),
        };
        let same = |s: &Node| s.is_element() && s.tag_name() == tag;
        let count = a.parent().map_or(1, |p| p.children().filter(same).count());
        if count > 1 {
            let pos = a.prev_siblings().filter(same).count();
            parts.push(format!("{name}[{pos}]"));
        } else {
            parts.push(name);
        }
    }
    parts.reverse();
    let mut s = format!("/{}", parts.join("/"));
    if let Some(a) = attribute {
        s.push_str("/@");
        s.push_str(a);
    }
    s
}

pub(crate) fn line(doc: &Document, n: &Node) -> u32 {
    doc.text_pos_at(n.range().start).row
}
