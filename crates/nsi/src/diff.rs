//! What changed between two versions of a resource or crosswalk, for the import preview and
//! `ortaq nsi diff`.

use std::collections::BTreeMap;

use crate::model::{Content, format_date};

/// Changes keyed by entry: `code` (and `@valid_from` when the code has several periods), or
/// `from -> to` for mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub header_changed: bool,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.header_changed
    }

    /// A short account: counts and the first few keys of each kind.
    pub fn summary(&self, show: usize) -> String {
        let list = |v: &[String]| {
            let mut s = v.iter().take(show).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > show {
                s.push_str(&format!(", … ({} more)", v.len() - show));
            }
            s
        };
        let mut out = format!(
            "{} added, {} removed, {} changed{}",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            if self.header_changed {
                ", header changed"
            } else {
                ""
            }
        );
        for (what, v) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("\n  {what}: {}", list(v)));
            }
        }
        out
    }
}

fn entries(c: &Content) -> BTreeMap<String, String> {
    match c {
        Content::Resource(r) => r
            .items
            .iter()
            .map(|it| {
                let key = match it.valid_from {
                    Some(d) => format!("{}@{}", it.code, format_date(d)),
                    None => it.code.clone(),
                };
                (key, serde_json::to_string(it).unwrap_or_default())
            })
            .collect(),
        Content::Crosswalk(cw) => cw
            .mappings
            .iter()
            .map(|m| {
                (
                    format!("{} -> {}", m.from, m.to),
                    serde_json::to_string(m).unwrap_or_default(),
                )
            })
            .collect(),
    }
}

fn header(c: &Content) -> String {
    match c {
        Content::Resource(r) => serde_json::to_string(&r.resource).unwrap_or_default(),
        Content::Crosswalk(cw) => serde_json::to_string(&cw.crosswalk).unwrap_or_default(),
    }
}

/// The changes from `old` (None: nothing published yet) to `new`.
pub fn diff(old: Option<&Content>, new: &Content) -> Diff {
    let empty = BTreeMap::new();
    let a = old.map(entries);
    let a = a.as_ref().unwrap_or(&empty);
    let b = entries(new);
    let mut d = Diff {
        header_changed: old.is_some_and(|o| header(o) != header(new)),
        ..Default::default()
    };
    for (k, v) in &b {
        match a.get(k) {
            None => d.added.push(k.clone()),
            Some(w) if w != v => d.changed.push(k.clone()),
            _ => {}
        }
    }
    d.removed = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    d
}
