//! The unified registry of conformity documents: the common resource of P.TS.01, kept by the
//! registry keeper in a store of its own on the node's engine (SQLite beside the node's file,
//! or its own tables in the node's PostgreSQL database). The keeper is an IS: the node's store
//! is not its database, and it never touches the node's tables.

use db::{Db, DbConfig, DbError, Engine, Value};

/// The business entity of P.TS.01 that the registry holds (filling rules name it).
const ENTITY: &str = "P.TS.01.BEN.001";

static MIGRATIONS: db::Migrations = db::Migrations {
    table: "conformity_migrations",
    list: &[
        db::Migration {
            version: 1,
            name: "registry",
            sqlite: include_str!("../migrations/sqlite/0001_registry.sql"),
            postgres: include_str!("../migrations/postgres/0001_registry.sql"),
        },
        db::Migration {
            version: 2,
            name: "portal",
            sqlite: include_str!("../migrations/sqlite/0002_portal.sql"),
            postgres: include_str!("../migrations/postgres/0002_portal.sql"),
        },
        db::Migration {
            version: 3,
            name: "search",
            sqlite: include_str!("../migrations/sqlite/0003_search.sql"),
            postgres: include_str!("../migrations/postgres/0003_search.sql"),
        },
    ],
};

/// One record of the unified registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryRecord {
    pub doc_id: String,
    pub country: String,
    pub kind: String,
    pub status: String,
    pub submitted_by: String,
    pub updated_at: String,
    /// The applicant's name.
    pub applicant: String,
    /// Product names, `; `-separated.
    pub products: String,
    /// `YYYY-MM-DD`, or empty.
    pub start_date: String,
    pub valid_until: String,
    /// Every name and code of the record, lower-cased: what a search looks in.
    pub search_text: String,
}

pub struct Registry {
    db: Db,
}

fn record(r: &db::Row) -> Result<(RegistryRecord, String), DbError> {
    Ok((
        RegistryRecord {
            doc_id: r.text(0)?,
            country: r.text(1)?,
            kind: r.text(2)?,
            status: r.text(3)?,
            submitted_by: r.text(4)?,
            updated_at: r.text(5)?,
            applicant: r.text(7)?,
            products: r.text(8)?,
            start_date: r.text(9)?,
            valid_until: r.text(10)?,
            search_text: String::new(),
        },
        r.text(6)?,
    ))
}

/// The columns of [`record`] without the record's XML, which lists and downloads do not show.
const LIST_COLUMNS: &str = "doc_id, country, kind, status, submitted_by, updated_at, '', applicant, products, start_date, valid_until";
const SELECT: &str = "SELECT doc_id, country, kind, status, submitted_by, updated_at, xml, applicant, products, start_date, valid_until FROM conformity_documents WHERE doc_id = $1";

fn entry(r: &RegistryRecord) -> adapter::portal::RegistryEntry {
    adapter::portal::RegistryEntry {
        doc_id: r.doc_id.clone(),
        country: r.country.clone(),
        kind: r.kind.clone(),
        status: r.status.clone(),
        applicant: r.applicant.clone(),
        products: r.products.clone(),
        start_date: r.start_date.clone(),
        valid_until: r.valid_until.clone(),
        updated_at: r.updated_at.clone(),
    }
}

/// The words of a text as search sees them: runs of letters and digits, lower-cased. Stored
/// text and queries both go through it, so SQLite's FTS5 and PostgreSQL's 'simple' parser see
/// the same plain words.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Registry {
    /// Opens (creating and migrating if needed) the registry. Blocking.
    pub fn open(engine: Engine) -> Result<Registry, DbError> {
        let mut cfg = DbConfig::new(engine, &MIGRATIONS, "conformity");
        cfg.readers = 2;
        Ok(Registry { db: Db::open(cfg)? })
    }

    /// A registered document and its XML.
    pub async fn get(&self, doc_id: &str) -> Result<Option<(RegistryRecord, String)>, DbError> {
        let id = doc_id.to_owned();
        self.db
            .read(move |c| {
                c.query_one(SELECT, &[id.into()])?
                    .map(|r| record(&r))
                    .transpose()
            })
            .await
    }

    pub async fn len(&self) -> Result<i64, DbError> {
        self.db
            .read(|c| {
                c.query_one("SELECT count(*) FROM conformity_documents", &[])?
                    .map_or(Ok(0), |r| r.i64(0))
            })
            .await
    }

    pub async fn is_empty(&self) -> Result<bool, DbError> {
        Ok(self.len().await? == 0)
    }

    /// Registers the records of one message, or replaces what is registered under their
    /// numbers: in one transaction, so a message is registered whole or not at all.
    pub async fn put(
        &self,
        records: &[(RegistryRecord, String)],
        edoc_id: Option<&str>,
    ) -> Result<(), DbError> {
        let sqlite = self.db.dialect() == db::Dialect::Sqlite;
        let rows: Vec<Vec<Value>> = records
            .iter()
            .map(|(rec, xml)| {
                vec![
                    rec.doc_id.clone().into(),
                    rec.country.clone().into(),
                    rec.kind.clone().into(),
                    rec.status.clone().into(),
                    edoc_id.map(str::to_owned).into(),
                    xml.clone().into(),
                    rec.submitted_by.clone().into(),
                    rec.updated_at.clone().into(),
                    rec.applicant.clone().into(),
                    rec.products.clone().into(),
                    rec.start_date.clone().into(),
                    rec.valid_until.clone().into(),
                    words(&rec.search_text).join(" ").into(),
                ]
            })
            .collect();
        self.db
            .write(move |tx| {
                for params in &rows {
                    tx.conn.execute(
                        "INSERT INTO conformity_documents (doc_id, country, kind, status, edoc_id, xml, submitted_by, updated_at, applicant, products, start_date, valid_until, search_text) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (doc_id) DO UPDATE SET \
                         country = excluded.country, kind = excluded.kind, status = excluded.status, edoc_id = excluded.edoc_id, xml = excluded.xml, \
                         submitted_by = excluded.submitted_by, updated_at = excluded.updated_at, applicant = excluded.applicant, \
                         products = excluded.products, start_date = excluded.start_date, valid_until = excluded.valid_until, \
                         search_text = excluded.search_text",
                        params,
                    )?;
                    tx.conn.execute(
                        "INSERT INTO conformity_status_history (doc_id, status, at) VALUES ($1, $2, $3)",
                        &[params[0].clone(), params[3].clone(), params[7].clone()],
                    )?;
                    if sqlite {
                        // The index row shares the document's rowid: found without a scan.
                        let rowid = tx
                            .conn
                            .query_one(
                                "SELECT rowid FROM conformity_documents WHERE doc_id = $1",
                                &[params[0].clone()],
                            )?
                            .map_or(Ok(0), |r| r.i64(0))?;
                        tx.conn.execute(
                            "DELETE FROM search_conformity WHERE rowid = $1",
                            &[rowid.into()],
                        )?;
                        tx.conn.execute(
                            "INSERT INTO search_conformity (rowid, doc_id, search_text) VALUES ($1, $2, $3)",
                            &[rowid.into(), params[0].clone(), params[12].clone()],
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Changes a registered document's status; false when no such document is registered.
    pub async fn set_status(&self, doc_id: &str, status: &str, at: &str) -> Result<bool, DbError> {
        let (id, status, at) = (doc_id.to_owned(), status.to_owned(), at.to_owned());
        self.db
            .write(move |tx| {
                let changed = tx.conn.execute(
                    "UPDATE conformity_documents SET status = $2, updated_at = $3 WHERE doc_id = $1",
                    &[(&id).into(), (&status).into(), (&at).into()],
                )? == 1;
                if changed {
                    tx.conn.execute(
                        "INSERT INTO conformity_status_history (doc_id, status, at) VALUES ($1, $2, $3)",
                        &[(&id).into(), (&status).into(), (&at).into()],
                    )?;
                }
                Ok(changed)
            })
            .await
    }

    /// Documents matching `q`, by number, and how many match in all.
    pub async fn search(
        &self,
        q: adapter::portal::RegistryQuery,
    ) -> Result<(Vec<RegistryRecord>, i64), DbError> {
        let sqlite = self.db.dialect() == db::Dialect::Sqlite;
        self.db
            .read(move |c| {
                let mut wheres = Vec::new();
                let mut params: Vec<Value> = Vec::new();
                let mut add = |clause: &str, v: Value| {
                    params.push(v);
                    wheres.push(clause.replace('?', &format!("${}", params.len())));
                };
                if let Some(t) = &q.text {
                    let w = words(t);
                    // Text with no word in it (punctuation only) matches nothing.
                    if w.is_empty() {
                        return Ok((Vec::new(), 0));
                    }
                    let w: Vec<String> = w.into_iter().take(8).collect();
                    // A word of three letters or more matches words it begins; a shorter one only
                    // itself (a prefix of one or two characters matches half the index).
                    let prefix = |x: &String| if x.chars().count() >= 3 { "*" } else { "" };
                    if sqlite {
                        let q: Vec<String> =
                            w.iter().map(|x| format!("\"{x}\"{}", prefix(x))).collect();
                        add(
                            "rowid IN (SELECT rowid FROM search_conformity WHERE search_conformity MATCH ?)",
                            q.join(" ").into(),
                        );
                    } else {
                        let q: Vec<String> = w
                            .iter()
                            .map(|x| format!("{x}{}", if prefix(x).is_empty() { "" } else { ":*" }))
                            .collect();
                        add(
                            "to_tsvector('simple', search_text) @@ to_tsquery('simple', ?)",
                            q.join(" & ").into(),
                        );
                    }
                }
                if let Some(v) = &q.country {
                    add("country = ?", v.into());
                }
                if let Some(v) = &q.status {
                    add("status = ?", v.into());
                }
                let filter = if wheres.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", wheres.join(" AND "))
                };
                // One pass gives the page and the number of matches (a window over the rows
                // before LIMIT); a page past the end asks for the number on its own.
                let (limit, offset) = (q.limit.clamp(1, 500), q.offset.clamp(0, 1_000_000));
                // Unfiltered, the count is the primary key's index alone, and the window would
                // read every row: count apart.
                let window = if wheres.is_empty() {
                    "(SELECT count(*) FROM conformity_documents)"
                } else {
                    "count(*) OVER ()"
                };
                let found = c.query(
                    &format!(
                        "SELECT {LIST_COLUMNS}, {window} FROM conformity_documents {filter} ORDER BY doc_id LIMIT {limit} OFFSET {offset}"
                    ),
                    &params,
                )?;
                let total = match found.first() {
                    Some(r) => r.i64(11)?,
                    None if offset == 0 => 0,
                    None => c
                        .query_one(
                            &format!("SELECT count(*) FROM conformity_documents {filter}"),
                            &params,
                        )?
                        .map_or(Ok(0), |r| r.i64(0))?,
                };
                let rows = found
                    .iter()
                    .map(|r| record(r).map(|(rec, _)| rec))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((rows, total))
            })
            .await
    }

    /// The statuses a document has had: (status, when), oldest first.
    pub async fn history(&self, doc_id: &str) -> Result<Vec<(String, String)>, DbError> {
        let id = doc_id.to_owned();
        self.db
            .read(move |c| {
                c.query(
                    "SELECT status, at FROM conformity_status_history WHERE doc_id = $1 ORDER BY at",
                    &[id.into()],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect()
            })
            .await
    }

    /// Up to `limit` documents numbered after `after`, in number order.
    pub async fn after(&self, after: &str, limit: i64) -> Result<Vec<RegistryRecord>, DbError> {
        let a = after.to_owned();
        self.db
            .read(move |c| {
                c.query(
                    &format!(
                        "SELECT {LIST_COLUMNS} FROM conformity_documents WHERE doc_id > $1 ORDER BY doc_id LIMIT {}",
                        limit.clamp(1, 10_000)
                    ),
                    &[a.into()],
                )?
                .iter()
                .map(|r| record(r).map(|(rec, _)| rec))
                .collect()
            })
            .await
    }

    /// Tables and columns of the registry, for the schema-parity test.
    pub async fn schema(&self) -> Result<Vec<db::ColumnInfo>, DbError> {
        self.db.schema("conformity_").await
    }

    /// Lets queued writes finish and closes the database.
    pub async fn close(&self) -> Result<(), DbError> {
        self.db.close().await
    }
}

impl adapter::portal::Registry for Registry {
    fn search(
        &self,
        q: adapter::portal::RegistryQuery,
    ) -> adapter::console::Answer<'_, adapter::portal::RegistryPage> {
        Box::pin(async move {
            let (rows, total) = Registry::search(self, q).await.map_err(unavailable)?;
            Ok(adapter::portal::RegistryPage {
                entries: rows.iter().map(entry).collect(),
                total,
            })
        })
    }

    fn document<'a>(
        &'a self,
        doc_id: &'a str,
    ) -> adapter::console::Answer<'a, Option<adapter::portal::RegistryDocument>> {
        Box::pin(async move {
            let Some((rec, xml)) = self.get(doc_id).await.map_err(unavailable)? else {
                return Ok(None);
            };
            let history = self.history(doc_id).await.map_err(unavailable)?;
            Ok(Some(adapter::portal::RegistryDocument {
                entry: entry(&rec),
                xml,
                history,
            }))
        })
    }

    fn entries_after<'a>(
        &'a self,
        after: &'a str,
        limit: i64,
    ) -> adapter::console::Answer<'a, Vec<adapter::portal::RegistryEntry>> {
        Box::pin(async move {
            Ok(self
                .after(after, limit)
                .await
                .map_err(unavailable)?
                .iter()
                .map(entry)
                .collect())
        })
    }

    fn summary(&self) -> adapter::console::Answer<'_, (i64, String)> {
        Box::pin(async move {
            self.db
                .read(|c| {
                    let r = c.query_one(
                        "SELECT count(*), max(updated_at) FROM conformity_documents",
                        &[],
                    )?;
                    Ok(match r {
                        Some(r) => (r.i64(0)?, r.opt_text(1)?.unwrap_or_default()),
                        None => (0, String::new()),
                    })
                })
                .await
                .map_err(unavailable)
        })
    }
}

fn unavailable(e: DbError) -> adapter::HoldingsError {
    adapter::HoldingsError::Unavailable(e.to_string())
}

impl edoc::CommonResource for Registry {
    /// Called on a validator thread (never an async one), so it reads on that thread.
    fn contains(&self, entity: &str, key: &str) -> bool {
        entity == ENTITY
            && matches!(
                self.db
                    .read_blocking(|c| c.query_one(SELECT, &[key.into()])),
                Ok(Some(_))
            )
    }
}
