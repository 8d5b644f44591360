//! Reference data held by a node: import (check everything, show the diff, publish all or
//! nothing as the next immutable version) and the index of the latest versions, rebuilt from
//! the store at start and after each import. A stored version whose bytes no longer match its
//! hash is refused, never served. The node's distribution service (`services::reference`)
//! reaches all this only through [`adapter::ReferenceHoldings`].

use std::sync::{Arc, Mutex, RwLock};

use adapter::{HoldingsError, StoredVersion, SyncNote};
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

// ---------------------------------------------------------------- distribution

/// How the reference data of a subscribing node stands against its publisher.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// The publisher this node fetches from (none on the publishing node).
    pub publisher: Option<String>,
    /// When the publisher last answered, RFC 3339.
    pub last_success: Option<String>,
    /// Seconds since then: how old this node's copy may be.
    pub age_seconds: Option<i64>,
    pub last_error: Option<String>,
    /// Versions received and stored since the node started.
    pub received: u64,
    /// Versions refused (hash mismatch, wrong sender, unreadable), newest last.
    pub refused: Vec<String>,
    #[serde(skip)]
    last_success_us: Option<i64>,
}

/// The latest verified reference data a node serves, and how its copy stands.
pub struct Reference {
    index: RwLock<Arc<nsi::Index>>,
    sync: Mutex<SyncStatus>,
    publisher: Option<String>,
}

impl Reference {
    pub(crate) fn new(publisher: Option<String>) -> Reference {
        Reference {
            index: RwLock::new(Arc::new(nsi::Index::default())),
            sync: Mutex::new(SyncStatus::default()),
            publisher,
        }
    }

    /// The latest verified reference data this node holds.
    pub fn index(&self) -> Arc<nsi::Index> {
        self.index
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Rebuilds the index from the store (after a publication or a received version).
    pub async fn reload(&self, store: &Store) -> Result<(), ReferenceError> {
        let idx = Arc::new(load(store).await?);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = idx;
        Ok(())
    }

    pub fn sync_status(&self, now_us: i64) -> SyncStatus {
        let mut s = self.sync.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.publisher = self.publisher.clone();
        if let Some(t) = s.last_success_us {
            s.age_seconds = Some(((now_us - t) / 1_000_000).max(0));
        }
        s
    }

    fn note(&self, note: SyncNote, now_us: i64) {
        let mut s = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let mut success = || {
            s.last_success_us = Some(now_us);
            s.last_success = Some(crate::from_micros(now_us).to_string());
        };
        match note {
            SyncNote::Answered => success(),
            SyncNote::Received => {
                success();
                s.received += 1;
            }
            SyncNote::Refused(why) => {
                s.refused.push(why.clone());
                s.last_error = Some(why);
            }
            SyncNote::Error(why) => s.last_error = Some(why),
        }
    }
}

/// The node's reference data as its distribution service sees it: the store's versions, and
/// the index the node serves from.
pub struct Holdings {
    pub(crate) store: Store,
    pub(crate) reference: Arc<Reference>,
    pub(crate) clock: crate::Clock,
}

fn unavailable(e: StoreError) -> HoldingsError {
    HoldingsError::Unavailable(e.to_string())
}

fn stored(v: NsiVersion) -> StoredVersion {
    StoredVersion {
        code: v.code,
        version: v.version,
        kind: v.kind,
        sha256: v.sha256,
        published_at: v.published_at,
        content: v.content,
    }
}

impl adapter::ReferenceHoldings for Holdings {
    async fn latest(&self) -> Result<Vec<StoredVersion>, HoldingsError> {
        let v = self.store.nsi_latest().await.map_err(unavailable)?;
        Ok(v.into_iter().map(stored).collect())
    }

    async fn version(
        &self,
        code: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredVersion>, HoldingsError> {
        let v = self
            .store
            .nsi_version(code, version)
            .await
            .map_err(unavailable)?;
        Ok(v.map(stored))
    }

    async fn install(&self, v: StoredVersion) -> Result<bool, HoldingsError> {
        let v = NsiVersion {
            code: v.code,
            version: v.version,
            kind: v.kind,
            sha256: v.sha256,
            published_at: v.published_at,
            content: v.content,
        };
        // Only what hashes to its announced SHA-256 and reads as the resource it names.
        match decode(&v) {
            Ok(c) if c.code() == v.code => {}
            Ok(c) => {
                return Err(HoldingsError::Refused(format!(
                    "{} v{}: the content is {}",
                    v.code,
                    v.version,
                    c.code()
                )));
            }
            Err(e) => return Err(HoldingsError::Refused(e.to_string())),
        }
        let (code, version) = (v.code.clone(), v.version);
        self.store.nsi_put(v).await.map_err(|e| match e {
            StoreError::Conflict(m) => HoldingsError::Refused(format!("{code} v{version}: {m}")),
            e => HoldingsError::Unavailable(format!("{code} v{version}: {e}")),
        })
    }

    async fn refresh(&self) -> Result<(), HoldingsError> {
        self.reference
            .reload(&self.store)
            .await
            .map_err(|e| HoldingsError::Unavailable(e.to_string()))
    }

    fn note(&self, note: SyncNote) {
        self.reference.note(note, crate::micros((self.clock)()));
    }
}
