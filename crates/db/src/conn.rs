//! One small connection interface over SQLite (rusqlite) and PostgreSQL (postgres), so every
//! query of the store is written once.
//!
//! SQL is written with `$1`-style parameters (PostgreSQL's); for SQLite they become `?1`, which
//! SQLite binds by the same index. Values are the four kinds both engines share: integers,
//! text, bytes and NULL. Engine-specific clauses come from [`Dialect`].

use std::collections::HashMap;
use std::error::Error as StdError;

use crate::DbError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    I64(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A result row; getters fail with a clear error rather than panic on a schema surprise.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Corrupt(format!("row has no column {i}")))
    }
    pub fn i64(&self, i: usize) -> Result<i64, DbError> {
        match self.get(i)? {
            Value::I64(v) => Ok(*v),
            v => Err(DbError::Corrupt(format!(
                "column {i}: expected integer, got {v:?}"
            ))),
        }
    }
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }
    pub fn text(&self, i: usize) -> Result<String, DbError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            v => Err(DbError::Corrupt(format!(
                "column {i}: expected text, got {v:?}"
            ))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.get(i)? {
            Value::Blob(v) => Ok(v.clone()),
            v => Err(DbError::Corrupt(format!(
                "column {i}: expected bytes, got {v:?}"
            ))),
        }
    }
    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.blob(i).map(Some),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Row locking for a read-then-write inside a transaction. SQLite has one writer, so the
    /// transaction itself is the lock; PostgreSQL needs it spelled out (several node processes
    /// may share one database).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Claiming queue rows: PostgreSQL skips rows another process holds.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

pub trait Conn: Send {
    fn dialect(&self) -> Dialect;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    /// Runs several statements without parameters (migrations, transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite so the write lock is taken up
    /// front (a deferred transaction that reads then writes can fail with SQLITE_BUSY_SNAPSHOT
    /// without waiting), plain `BEGIN` on PostgreSQL.
    fn begin_write(&mut self) -> Result<(), DbError>;

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// The engine's error with the causes under it ("error performing TLS handshake: invalid
/// peer certificate: ..."), which is what an operator can act on.
fn engine_err(e: impl StdError) -> DbError {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    DbError::Engine(text)
}

// ---------------------------------------------------------------- SQLite

pub struct SqliteConn {
    conn: rusqlite::Connection,
    sql_cache: HashMap<String, String>,
}

impl SqliteConn {
    pub fn open(path: &std::path::Path, read_only: bool) -> Result<Self, DbError> {
        use rusqlite::OpenFlags;
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(engine_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(engine_err)?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(engine_err)?;
            // Checkpoints run on a thread of their own (Store::open), not inside the writer's
            // commits, where profiles showed them taking a fifth of its time.
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(engine_err)?;
            conn.pragma_update(None, "temp_store", "MEMORY")
                .map_err(engine_err)?;
        }
        // 16 MiB of page cache: the hot index pages stay in memory under load.
        conn.pragma_update(None, "cache_size", -16384)
            .map_err(engine_err)?;
        // FULL: a commit is on disk before we answer, which is the promise made to the IS.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(engine_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(engine_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteConn {
            conn,
            sql_cache: HashMap::new(),
        })
    }

    /// `$N` → `?N`, computed once per distinct statement.
    fn translate<'a>(cache: &'a mut HashMap<String, String>, sql: &str) -> &'a str {
        cache.entry(sql.to_owned()).or_insert_with(|| {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        })
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::I64(v) => ValueRef::Integer(*v),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl Conn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let sql = Self::translate(&mut self.sql_cache, sql);
        let mut st = self.conn.prepare_cached(sql).map_err(engine_err)?;
        let n = st
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(engine_err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        use rusqlite::types::ValueRef;
        let sql = Self::translate(&mut self.sql_cache, sql);
        let mut st = self.conn.prepare_cached(sql).map_err(engine_err)?;
        let n = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(engine_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(engine_err)? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match r.get_ref(i).map_err(engine_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::I64(v),
                    ValueRef::Real(v) => Value::I64(v as i64),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn.execute_batch(sql).map_err(engine_err)
    }

    fn begin_write(&mut self) -> Result<(), DbError> {
        self.batch("BEGIN IMMEDIATE")
    }
}

// ---------------------------------------------------------------- PostgreSQL

pub struct PgConn {
    // Always Some until dropped; an Option so Drop can move it to another thread.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl Drop for PgConn {
    /// The blocking client closes its connection by running a small runtime, which panics on a
    /// thread that is driving async tasks; close it on a thread of its own there.
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(c));
            } else {
                drop(c);
            }
        }
    }
}

impl PgConn {
    pub fn open(config: &str) -> Result<Self, DbError> {
        let (config, tls) = crate::pgtls::split(config)?;
        let client = match tls {
            None => postgres::Client::connect(&config, postgres::NoTls),
            Some(t) => postgres::Client::connect(&config, t.connector()?),
        }
        .map_err(engine_err)?;
        Ok(PgConn {
            client: Some(client),
            statements: HashMap::new(),
        })
    }

    fn client(&mut self) -> Result<&mut postgres::Client, DbError> {
        self.client.as_mut().ok_or(DbError::Closed)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client()?.prepare(sql).map_err(engine_err)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::I64(v) => v.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        self.client()?.execute(&st, &p).map_err(engine_err)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        use postgres::types::Type;
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.client()?.query(&st, &p).map_err(engine_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut vals = Vec::with_capacity(r.len());
            for (i, c) in r.columns().iter().enumerate() {
                let v = match *c.type_() {
                    Type::INT8 => r
                        .try_get::<_, Option<i64>>(i)
                        .map_err(engine_err)?
                        .map(Value::I64),
                    Type::INT4 => r
                        .try_get::<_, Option<i32>>(i)
                        .map_err(engine_err)?
                        .map(|v| Value::I64(v.into())),
                    Type::INT2 => r
                        .try_get::<_, Option<i16>>(i)
                        .map_err(engine_err)?
                        .map(|v| Value::I64(v.into())),
                    Type::BOOL => r
                        .try_get::<_, Option<bool>>(i)
                        .map_err(engine_err)?
                        .map(|v| Value::I64(v.into())),
                    Type::BYTEA => r
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map_err(engine_err)?
                        .map(Value::Blob),
                    _ => r
                        .try_get::<_, Option<String>>(i)
                        .map_err(engine_err)?
                        .map(Value::Text),
                };
                vals.push(v.unwrap_or(Value::Null));
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.client()?.batch_execute(sql).map_err(engine_err)
    }

    fn begin_write(&mut self) -> Result<(), DbError> {
        self.batch("BEGIN")
    }
}
