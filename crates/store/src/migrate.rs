//! Schema migrations for both engines: numbered SQL files per engine, applied in order inside
//! a transaction, each recorded with a checksum so an edited, already-applied migration is
//! refused instead of silently diverging.

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::conn::{Conn, Dialect, Value};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "federation",
        sqlite: include_str!("../migrations/sqlite/0002_federation.sql"),
        postgres: include_str!("../migrations/postgres/0002_federation.sql"),
    },
    Migration {
        version: 3,
        name: "nsi",
        sqlite: include_str!("../migrations/sqlite/0003_nsi.sql"),
        postgres: include_str!("../migrations/postgres/0003_nsi.sql"),
    },
    Migration {
        version: 4,
        name: "evidence",
        sqlite: include_str!("../migrations/sqlite/0004_evidence.sql"),
        postgres: include_str!("../migrations/postgres/0004_evidence.sql"),
    },
    Migration {
        version: 5,
        name: "checkpoint_stamps",
        sqlite: include_str!("../migrations/sqlite/0005_checkpoint_stamps.sql"),
        postgres: include_str!("../migrations/postgres/0005_checkpoint_stamps.sql"),
    },
];

pub fn run(conn: &mut dyn Conn) -> Result<(), StoreError> {
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)",
    )?;
    for m in MIGRATIONS {
        let sql = match conn.dialect() {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        conn.begin_write()?;
        let applied = conn.query_one(
            "SELECT checksum FROM schema_migrations WHERE version = $1",
            &[Value::I64(m.version)],
        );
        let result = match applied {
            Ok(Some(row)) => {
                let have = row.text(0)?;
                if have == checksum {
                    Ok(())
                } else {
                    Err(StoreError::Migration(format!(
                        "migration {} ({}) was applied with checksum {have}, the binary carries {checksum}",
                        m.version, m.name
                    )))
                }
            }
            Ok(None) => conn.batch(sql).and_then(|_| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
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
