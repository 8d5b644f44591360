//! Schema migrations for both engines: numbered SQL files per engine, applied in order inside
//! a transaction, each recorded with a checksum so an edited, already-applied migration is
//! refused instead of silently diverging.

use sha2::{Digest, Sha256};

use crate::DbError;
use crate::conn::{Conn, Dialect, Value};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The migrations of one owner (the node's store, or one application), and the table that
/// records which of them a database has applied. Each owner keeps its own table, so an
/// application's migrations never mix with the node's.
pub struct Migrations {
    pub table: &'static str,
    pub list: &'static [Migration],
}

pub fn run(conn: &mut dyn Conn, set: &Migrations) -> Result<(), DbError> {
    let table = set.table;
    conn.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)"
    ))?;
    for m in set.list {
        let sql = match conn.dialect() {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        conn.begin_write()?;
        let applied = conn.query_one(
            &format!("SELECT checksum FROM {table} WHERE version = $1"),
            &[Value::I64(m.version)],
        );
        let result = match applied {
            Ok(Some(row)) => {
                let have = row.text(0)?;
                if have == checksum {
                    Ok(())
                } else {
                    Err(DbError::Migration(format!(
                        "migration {} ({}) was applied with checksum {have}, the binary carries {checksum}",
                        m.version, m.name
                    )))
                }
            }
            Ok(None) => conn.batch(sql).and_then(|_| {
                conn.execute(
                    &format!("INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)"),
                    &[Value::I64(m.version), m.name.into(), checksum.into()],
                )
                .map(|_| ())
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => conn.batch("COMMIT")?,
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
