//! Reference data held by a node: import (check everything, show the diff, publish all or
//! nothing as the next immutable version) and the index of the latest versions, rebuilt from
//! the store at start and after each import. A stored version whose bytes no longer match its
//! hash is refused, never served.

use nsi::format::{self, Format};
use nsi::model::{Content, Problem};
use store::{NsiVersion, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Problem>),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Corrupt(String),
}

/// What an import found and did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub code: String,
    pub kind: &'static str,
    pub sha256: String,
    pub diff: nsi::diff::Diff,
    /// The version published (and whether it is new), or None for a dry run.
    pub version: Option<(i64, bool)>,
    pub entries: usize,
}

/// Parses and checks a stored version.
pub fn decode(v: &NsiVersion) -> Result<Content, ReferenceError> {
    let sha = Content::sha256_of(&v.content);
    if sha != v.sha256 {
        return Err(ReferenceError::Corrupt(format!(
            "{} version {}: content hash {sha} does not match the recorded {}",
            v.code, v.version, v.sha256
        )));
    }
    serde_json::from_slice(&v.content)
        .map_err(|e| ReferenceError::Corrupt(format!("{} version {}: {e}", v.code, v.version)))
}

/// The index of the latest version of everything in the store.
pub async fn load(store: &Store) -> Result<nsi::Index, ReferenceError> {
    let mut idx = nsi::Index::default();
    // Resources first, so crosswalks can be checked against them by whoever asks.
    let mut all = store.nsi_latest().await?;
    all.sort_by_key(|v| v.kind != "resource");
    for v in all {
        let c = decode(&v)?;
        idx.insert(c, v.version, v.sha256);
    }
    Ok(idx)
}

/// Imports `bytes`. CSV names the resource or crosswalk it belongs to with `code`; JSON and
/// XML carry their header. Every problem is reported at once; nothing is stored unless all
/// is well and `dry_run` is false.
pub async fn import(
    store: &Store,
    index: &nsi::Index,
    bytes: &[u8],
    format: Format,
    code: Option<&str>,
    dry_run: bool,
    now: i64,
) -> Result<Imported, ReferenceError> {
    let base = match (format, code) {
        (Format::Csv, Some(c)) => match store.nsi_version(c, None).await? {
            Some(v) => Some(decode(&v)?),
            None => {
                return Err(ReferenceError::Problems(vec![Problem {
                    at: "file".into(),
                    message: format!(
                        "no resource or crosswalk {c} is published here; import its JSON or XML first"
                    ),
                }]));
            }
        },
        _ => None,
    };
    let read = format::read(bytes, format, base.as_ref()).map_err(ReferenceError::Problems)?;
    let mut problems = read.check();
    if let Content::Crosswalk(c) = &read.content {
        problems.extend(index.check_crosswalk(c));
    }
    if let Some(c) = code
        && c != read.content.code()
    {
        problems.push(Problem {
            at: "header".into(),
            message: format!("the file is {}, not {c}", read.content.code()),
        });
    }
    if !problems.is_empty() {
        return Err(ReferenceError::Problems(problems));
    }
    let content = read.content;
    let code = content.code().to_owned();
    let current = match store.nsi_version(&code, None).await? {
        Some(v) => Some(decode(&v)?),
        None => None,
    };
    let diff = nsi::diff::diff(current.as_ref(), &content);
    let (kind, entries) = match &content {
        Content::Resource(r) => ("resource", r.items.len()),
        Content::Crosswalk(c) => ("crosswalk", c.mappings.len()),
    };
    let canonical = content.canonical();
    let sha256 = Content::sha256_of(&canonical);
    let version = if dry_run {
        None
    } else {
        Some(
            store
                .nsi_publish(&code, kind, &sha256, canonical, now)
                .await?,
        )
    };
    Ok(Imported {
        code,
        kind,
        sha256,
        diff,
        version,
        entries,
    })
}
