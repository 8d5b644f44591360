//! The in-memory view of published versions: lookups as of a date, hierarchy paths, searches
//! in any language, crosswalk translation, and the allocation-free validity check used when
//! e-documents are validated (`codeListId` → resource).

use std::collections::{BTreeMap, HashMap};

use time::Date;

use crate::model::{Content, Crosswalk, CrosswalkHeader, Header, Item, Mapping, Problem, Relation};

/// One published version of a resource, indexed.
#[derive(Debug, Clone)]
pub struct ResourceIndex {
    pub header: Header,
    pub version: i64,
    pub sha256: String,
    items: Vec<Item>,
    /// Item positions per code, ordered by start of validity.
    by_code: HashMap<String, Vec<u32>>,
    /// Validity per code as Julian day ranges (inclusive), for the hot path.
    validity: HashMap<String, Vec<(i32, i32)>>,
    grams: HashMap<[char; 3], Vec<u32>>,
}

/// Letters folded for search, so Kazakh, Belarusian and Kyrgyz spellings meet Russian ones
/// ("Қазақстан" finds "Казахстан"): lower case, then the national letters to their nearest
/// Russian ones.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'қ' | 'ҡ' => 'к',
            'ә' => 'а',
            'ғ' => 'г',
            'ң' => 'н',
            'ө' => 'о',
            'ұ' | 'ү' | 'ў' => 'у',
            'һ' | 'х' => 'х',
            'і' | 'ї' => 'и',
            'ё' => 'е',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'á' | 'à' | 'â' | 'ä' | 'å' => 'a',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect()
}

/// Trigrams of a folded text, words padded with a space on each side.
fn trigrams(folded: &str) -> Vec<[char; 3]> {
    let mut out = Vec::new();
    for w in folded.split_whitespace() {
        let cs: Vec<char> = std::iter::once(' ')
            .chain(w.chars())
            .chain(std::iter::once(' '))
            .collect();
        out.extend(cs.windows(3).map(|g| [g[0], g[1], g[2]]));
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn day(d: Date) -> i32 {
    d.to_julian_day()
}

impl ResourceIndex {
    pub fn new(content: crate::Resource, version: i64, sha256: String) -> ResourceIndex {
        let mut r = content;
        r.normalize();
        let mut by_code: HashMap<String, Vec<u32>> = HashMap::new();
        let mut validity: HashMap<String, Vec<(i32, i32)>> = HashMap::new();
        let mut grams: HashMap<[char; 3], Vec<u32>> = HashMap::new();
        for (i, it) in r.items.iter().enumerate() {
            by_code.entry(it.code.clone()).or_default().push(i as u32);
            validity.entry(it.code.clone()).or_default().push((
                it.valid_from.map_or(i32::MIN, day),
                it.valid_to.map_or(i32::MAX, day),
            ));
            let mut text = fold(&it.code);
            for n in it.names.values() {
                text.push(' ');
                text.push_str(&fold(n));
            }
            for g in trigrams(&text) {
                grams.entry(g).or_default().push(i as u32);
            }
        }
        ResourceIndex {
            header: r.resource,
            version,
            sha256,
            items: r.items,
            by_code,
            validity,
            grams,
        }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The entry of `code` valid on `on`.
    pub fn lookup(&self, code: &str, on: Date) -> Option<&Item> {
        self.by_code
            .get(code)?
            .iter()
            .map(|&i| &self.items[i as usize])
            .find(|it| it.valid_on(on))
    }

    /// Every entry ever given for `code`, oldest first.
    pub fn history(&self, code: &str) -> Vec<&Item> {
        self.by_code
            .get(code)
            .map(|v| v.iter().map(|&i| &self.items[i as usize]).collect())
            .unwrap_or_default()
    }

    /// Is `code` valid on Julian day `day`? No allocation: the hot path of validation.
    #[inline]
    pub fn is_valid(&self, code: &str, day: i32) -> bool {
        self.validity
            .get(code)
            .is_some_and(|v| v.iter().any(|&(f, t)| f <= day && day <= t))
    }

    /// The entry and its ancestors up to the root, as of `on`.
    pub fn path(&self, code: &str, on: Date) -> Vec<&Item> {
        let mut out = Vec::new();
        let mut cur = self.lookup(code, on);
        while let Some(it) = cur {
            if out.iter().any(|o: &&Item| o.code == it.code) || out.len() > 64 {
                break;
            }
            out.push(it);
            cur = it.parent.as_deref().and_then(|p| self.lookup(p, on));
        }
        out
    }

    /// Entries whose code or names match `query` in any language, best first: trigram overlap
    /// of the folded texts (so inflections and national spellings still meet), with exact
    /// codes and whole-word matches first. Only entries valid on `on`, when given.
    pub fn search(&self, query: &str, on: Option<Date>, limit: usize) -> Vec<(f32, &Item)> {
        let folded = fold(query);
        let q = trigrams(&folded);
        if q.is_empty() {
            return Vec::new();
        }
        let mut hits: HashMap<u32, u32> = HashMap::new();
        for g in &q {
            for &i in self.grams.get(g).map(Vec::as_slice).unwrap_or(&[]) {
                *hits.entry(i).or_default() += 1;
            }
        }
        let needle = folded.trim();
        let mut scored: Vec<(f32, &Item)> = hits
            .into_iter()
            .filter_map(|(i, n)| {
                let it = &self.items[i as usize];
                if on.is_some_and(|d| !it.valid_on(d)) {
                    return None;
                }
                let mut score = n as f32 / q.len() as f32;
                if score < 0.5 {
                    return None;
                }
                if fold(&it.code) == needle {
                    score += 2.0;
                } else if it.names.values().any(|n| fold(n).contains(needle)) {
                    score += 1.0;
                }
                Some((score, it))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.code.cmp(&b.1.code)));
        scored.truncate(limit);
        scored
    }
}

/// One published version of a crosswalk, indexed by source code.
#[derive(Debug, Clone)]
pub struct CrosswalkIndex {
    pub header: CrosswalkHeader,
    pub version: i64,
    pub sha256: String,
    by_from: HashMap<String, Vec<Mapping>>,
    mappings: usize,
}

impl CrosswalkIndex {
    pub fn new(c: Crosswalk, version: i64, sha256: String) -> CrosswalkIndex {
        let mappings = c.mappings.len();
        let mut by_from: HashMap<String, Vec<Mapping>> = HashMap::new();
        for m in c.mappings {
            by_from.entry(m.from.clone()).or_default().push(m);
        }
        CrosswalkIndex {
            header: c.crosswalk,
            version,
            sha256,
            by_from,
            mappings,
        }
    }

    pub fn len(&self) -> usize {
        self.mappings
    }

    pub fn is_empty(&self) -> bool {
        self.mappings == 0
    }
}

/// What a code becomes in another classifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub targets: Vec<(String, Relation)>,
}

impl Translation {
    /// One target exactly: the translation is unambiguous.
    pub fn unique(&self) -> Option<&str> {
        match self.targets.as_slice() {
            [(t, _)] => Some(t),
            _ => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn is_ambiguous(&self) -> bool {
        self.targets.len() > 1
    }
}

/// The published versions a node holds, one per resource and crosswalk.
#[derive(Debug, Clone, Default)]
pub struct Index {
    resources: BTreeMap<String, ResourceIndex>,
    crosswalks: BTreeMap<String, CrosswalkIndex>,
}

impl Index {
    pub fn insert(&mut self, content: Content, version: i64, sha256: String) {
        match content {
            Content::Resource(r) => {
                self.resources.insert(
                    r.resource.code.clone(),
                    ResourceIndex::new(r, version, sha256),
                );
            }
            Content::Crosswalk(c) => {
                self.crosswalks.insert(
                    c.crosswalk.code.clone(),
                    CrosswalkIndex::new(c, version, sha256),
                );
            }
        }
    }

    pub fn resource(&self, code: &str) -> Option<&ResourceIndex> {
        self.resources.get(code)
    }

    pub fn crosswalk(&self, code: &str) -> Option<&CrosswalkIndex> {
        self.crosswalks.get(code)
    }

    pub fn resources(&self) -> impl Iterator<Item = &ResourceIndex> {
        self.resources.values()
    }

    pub fn crosswalks(&self) -> impl Iterator<Item = &CrosswalkIndex> {
        self.crosswalks.values()
    }

    /// Is `code` valid in `resource` on Julian day `day`? None when the resource is unknown.
    #[inline]
    pub fn is_valid(&self, resource: &str, code: &str, day: i32) -> Option<bool> {
        Some(self.resources.get(resource)?.is_valid(code, day))
    }

    /// `code` of the crosswalk's source resource, in its target resource, as of `on`.
    pub fn translate(&self, crosswalk: &str, code: &str, on: Date) -> Result<Translation, String> {
        let cw = self
            .crosswalks
            .get(crosswalk)
            .ok_or_else(|| format!("no crosswalk {crosswalk}"))?;
        if let Some(src) = self.resources.get(&cw.header.from)
            && src.lookup(code, on).is_none()
        {
            return Err(format!(
                "{code} is not a code of {} valid on {}",
                cw.header.from,
                crate::model::format_date(on)
            ));
        }
        let targets = cw
            .by_from
            .get(code)
            .map(|v| {
                v.iter()
                    .filter(|m| m.valid_on(on))
                    .map(|m| (m.to.clone(), m.relation))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Translation { targets })
    }

    /// Mappings whose codes do not exist in the source or target resource (when held).
    pub fn check_crosswalk(&self, c: &Crosswalk) -> Vec<Problem> {
        let mut out = Vec::new();
        for (side, res) in [("source", &c.crosswalk.from), ("target", &c.crosswalk.to)] {
            let Some(r) = self.resources.get(res.as_str()) else {
                out.push(Problem {
                    at: "header".into(),
                    message: format!("{side} resource {res} is not published here"),
                });
                continue;
            };
            for (i, m) in c.mappings.iter().enumerate() {
                let code = if side == "source" { &m.from } else { &m.to };
                if r.history(code).is_empty() {
                    out.push(Problem {
                        at: format!("mapping {} ({} -> {})", i + 1, m.from, m.to),
                        message: format!("{code} is not a code of {res}"),
                    });
                }
            }
        }
        out
    }
}
