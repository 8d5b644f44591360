//! The unified registry of conformity documents: the common resource of P.TS.01, kept by the
//! registry keeper in a store of its own on the node's engine (SQLite beside the node's file,
//! or its own tables in the node's PostgreSQL database). The keeper is an IS: the node's store
//! is not its database, and it never touches the node's tables.

use db::{Db, DbConfig, DbError, Engine, Value};

/// The business entity of P.TS.01 that the registry holds (filling rules name it).
const ENTITY: &str = "P.TS.01.BEN.001";

static MIGRATIONS: db::Migrations = db::Migrations {
    table: "conformity_migrations",
    list: &[db::Migration {
        version: 1,
        name: "registry",
        sqlite: include_str!("../migrations/sqlite/0001_registry.sql"),
        postgres: include_str!("../migrations/postgres/0001_registry.sql"),
    }],
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
        },
        r.text(6)?,
    ))
}

const SELECT: &str = "SELECT doc_id, country, kind, status, submitted_by, updated_at, xml FROM conformity_documents WHERE doc_id = $1";

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
                ]
            })
            .collect();
        self.db
            .write(move |tx| {
                for params in &rows {
                    tx.conn.execute(
                        "INSERT INTO conformity_documents (doc_id, country, kind, status, edoc_id, xml, submitted_by, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (doc_id) DO UPDATE SET \
                         country = excluded.country, kind = excluded.kind, status = excluded.status, edoc_id = excluded.edoc_id, xml = excluded.xml, \
                         submitted_by = excluded.submitted_by, updated_at = excluded.updated_at",
                        params,
                    )?;
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
                Ok(tx.conn.execute(
                    "UPDATE conformity_documents SET status = $2, updated_at = $3 WHERE doc_id = $1",
                    &[(&id).into(), (&status).into(), (&at).into()],
                )? == 1)
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
