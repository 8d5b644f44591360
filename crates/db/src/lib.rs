//! The database engine layer under every store of a node: one connection interface over SQLite
//! (embedded) and PostgreSQL (production), numbered migrations per owner, one writer thread with
//! group commit, and a small pool of readers.
//!
//! The node's store (`store`) and each application's store are written on this crate, each in
//! its own database (SQLite: a file of its own; PostgreSQL: its own tables and migration record
//! in the node's database), so an application never reaches the node's tables and the node's
//! store exposes no connection at all. Queries are written once, with `$1`-style parameters,
//! and every store runs its test suite on both engines.

pub mod conn;
pub mod migrate;
mod pgtls;
mod pool;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

pub use conn::{Conn, Dialect, PgConn, Row, SqliteConn, Value};
pub use migrate::{Migration, Migrations};
use pool::Pool;
pub use writer::{BeforeCommit, Tx, WriterStats};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Engine(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration refused: {0}")]
    Migration(String),
    /// A write that contradicts what is stored (a key that belongs to someone else).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the store is closed")]
    Closed,
}

/// Which engine holds the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file (created if missing), in WAL mode.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`host=… user=… dbname=…` or a URL).
    Postgres(String),
}

impl Engine {
    /// Where an application named `app` keeps its data beside a node whose store is `self`:
    /// a SQLite file of its own next to the node's (one writer per file, so the application
    /// never waits on the node's writer), or the same PostgreSQL database, where the
    /// application's tables and migration record carry its name.
    pub fn for_app(&self, app: &str) -> Engine {
        match self {
            Engine::Sqlite(p) => Engine::Sqlite(
                p.parent()
                    .map(|d| d.join("apps").join(format!("{app}.db")))
                    .unwrap_or_else(|| PathBuf::from(format!("{app}.db"))),
            ),
            Engine::Postgres(c) => Engine::Postgres(c.clone()),
        }
    }
}

/// One column of a schema, normalised across engines for the parity tests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    /// `int`, `text` or `bytes`.
    pub kind: String,
    pub not_null: bool,
}

/// How to open a database.
pub struct DbConfig<S> {
    pub engine: Engine,
    pub migrations: &'static Migrations,
    /// Names the writer thread (`<name>-writer`).
    pub name: &'static str,
    /// Read connections to keep.
    pub readers: usize,
    /// Runs inside every batch's transaction just before COMMIT.
    pub before_commit: Box<BeforeCommit<S>>,
}

impl<S> DbConfig<S> {
    pub fn new(engine: Engine, migrations: &'static Migrations, name: &'static str) -> Self {
        DbConfig {
            engine,
            migrations,
            name,
            readers: 4,
            before_commit: Box::new(|_| Ok(())),
        }
    }
}

struct Inner<S> {
    checkpointer: std::sync::Mutex<Option<Checkpointer>>,
    writer_tx: RwLock<Option<mpsc::Sender<writer::Job<S>>>>,
    writer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<WriterStats>,
    pool: Pool,
    dialect: Dialect,
}

/// Copies the SQLite WAL into the database file in the background (PASSIVE: never blocks the
/// writer or readers), and truncates it when the database closes.
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: PathBuf) -> Result<Checkpointer, DbError> {
        let mut conn = SqliteConn::open(&path, false)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if let Err(e) = conn.query("PRAGMA wal_checkpoint(PASSIVE)", &[]) {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
                let _ = conn.query("PRAGMA wal_checkpoint(TRUNCATE)", &[]);
            })
            .map_err(|e| DbError::Engine(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// A database: one writer thread (group commit), a pool of readers. Cheap to clone.
pub struct Db<S = ()> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Db<S> {
    fn clone(&self) -> Self {
        Db {
            inner: self.inner.clone(),
        }
    }
}

fn open_conn(engine: &Engine, read_only: bool) -> Result<Box<dyn Conn>, DbError> {
    Ok(match engine {
        Engine::Sqlite(p) => Box::new(SqliteConn::open(p, read_only)?),
        Engine::Postgres(c) => Box::new(PgConn::open(c)?),
    })
}

/// Creates `dir` (and its parents) readable by the owner only: a store holds what others must
/// not read.
fn private_dir(dir: &std::path::Path) -> Result<(), DbError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| DbError::Engine(format!("cannot create {}: {e}", dir.display())))
}

/// Creates an empty database file readable by its owner only, unless it exists: SQLite gives
/// its WAL and shared-memory files the same mode.
fn private_file(path: &std::path::Path) -> Result<(), DbError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A store made before files were private is made private now, with its WAL.
            #[cfg(unix)]
            for suffix in ["", "-wal", "-shm"] {
                use std::os::unix::fs::PermissionsExt as _;
                let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
                if f.exists() {
                    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).map_err(
                        |e| DbError::Engine(format!("cannot restrict {}: {e}", f.display())),
                    )?;
                }
            }
            Ok(())
        }
        Err(e) => Err(DbError::Engine(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

impl<S: Default + Send + 'static> Db<S> {
    /// Opens (creating and migrating if needed) the database.
    ///
    /// Blocking. The PostgreSQL client runs its own small runtime, which may not be started
    /// from inside an async task, so the opening happens on a thread of its own and this is
    /// safe to call from anywhere.
    pub fn open(cfg: DbConfig<S>) -> Result<Db<S>, DbError> {
        std::thread::scope(|s| {
            s.spawn(|| Db::open_here(cfg))
                .join()
                .map_err(|_| DbError::Engine("database opening thread panicked".into()))?
        })
    }

    fn open_here(cfg: DbConfig<S>) -> Result<Db<S>, DbError> {
        if let Engine::Sqlite(p) = &cfg.engine
            && let Some(dir) = p.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            private_dir(dir)?;
        }
        if let Engine::Sqlite(p) = &cfg.engine {
            private_file(p)?;
        }
        let mut wconn = open_conn(&cfg.engine, false)?;
        migrate::run(wconn.as_mut(), cfg.migrations)?;
        let dialect = wconn.dialect();
        let max_batch = match dialect {
            Dialect::Sqlite => 1024,
            // Beyond 64 savepoints a PostgreSQL transaction overflows its subtransaction cache
            // and slows every concurrent snapshot; keep batches under it.
            Dialect::Postgres => 60,
        };
        let w = writer::spawn(cfg.name, wconn, max_batch, cfg.before_commit);
        let checkpointer = match &cfg.engine {
            Engine::Sqlite(p) => Some(Checkpointer::start(p.clone())?),
            Engine::Postgres(_) => None,
        };
        let engine = cfg.engine.clone();
        let pool = Pool::new(
            cfg.readers.max(1),
            Box::new(move || open_conn(&engine, true)),
        );
        Ok(Db {
            inner: Arc::new(Inner {
                checkpointer: std::sync::Mutex::new(checkpointer),
                writer_tx: RwLock::new(Some(w.tx)),
                writer_thread: std::sync::Mutex::new(w.thread),
                stats: w.stats,
                pool,
                dialect,
            }),
        })
    }
}

impl<S: 'static> Db<S> {
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Runs `f` in the writer's next batch and returns after the commit.
    ///
    /// `f` may run more than once when its batch is retried; only the last run's writes are
    /// committed, so `f` must keep its effects inside the transaction.
    pub async fn write<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnMut(&mut Tx<'_, S>) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let tx = self
            .inner
            .writer_tx
            .read()
            .map_err(|_| DbError::Closed)?
            .clone()
            .ok_or(DbError::Closed)?;
        writer::write(&tx, f).await
    }

    /// Runs `f` on a read connection, on a blocking thread.
    pub async fn read<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut dyn Conn) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
        S: Send + Sync,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.pool.with(f))
            .await
            .map_err(|e| DbError::Engine(format!("read task failed: {e}")))?
    }

    /// Runs `f` on a read connection on this thread. For code that already runs on a thread
    /// of its own (a validator thread asking about a common resource), never on an async one.
    pub fn read_blocking<R>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        self.inner.pool.with(f)
    }

    /// Stops taking writes, lets the writer finish every queued job and waits for its thread.
    pub async fn close(&self) -> Result<(), DbError> {
        let sender = self
            .inner
            .writer_tx
            .write()
            .map_err(|_| DbError::Closed)?
            .take();
        drop(sender);
        let handle = self
            .inner
            .writer_thread
            .lock()
            .map_err(|_| DbError::Closed)?
            .take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| DbError::Engine(e.to_string()))?
                .map_err(|_| DbError::Engine("writer thread panicked".into()))?;
        }
        let cp = self
            .inner
            .checkpointer
            .lock()
            .map_err(|_| DbError::Closed)?
            .take();
        if let Some(cp) = cp {
            tokio::task::spawn_blocking(move || cp.stop())
                .await
                .map_err(|e| DbError::Engine(e.to_string()))?;
        }
        Ok(())
    }

    /// Tables and columns whose table name starts with `prefix`, normalised, for the
    /// schema-parity tests of each store.
    pub async fn schema(&self, prefix: &str) -> Result<Vec<ColumnInfo>, DbError>
    where
        S: Send + Sync,
    {
        let prefix = prefix.to_owned();
        self.read(move |c| {
            let sql = match c.dialect() {
                Dialect::Sqlite => "SELECT m.name, p.name, p.type, CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 1 ELSE 0 END FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                Dialect::Postgres => "SELECT table_name::text, column_name::text, data_type::text, CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END FROM information_schema.columns WHERE table_schema = current_schema()",
            };
            let mut cols = c
                .query(sql, &[])?
                .iter()
                .map(|r| {
                    let ty = r.text(2)?.to_ascii_lowercase();
                    let kind = if ty.contains("int") {
                        "int"
                    } else if ty.contains("blob") || ty.contains("bytea") {
                        "bytes"
                    } else {
                        "text"
                    };
                    Ok(ColumnInfo {
                        table: r.text(0)?,
                        column: r.text(1)?,
                        kind: kind.into(),
                        not_null: r.i64(3)? == 1,
                    })
                })
                .filter(|c: &Result<ColumnInfo, DbError>| {
                    c.as_ref().map_or(true, |c| c.table.starts_with(&prefix))
                })
                .collect::<Result<Vec<_>, DbError>>()?;
            cols.sort();
            Ok(cols)
        })
        .await
    }
}

/// Microseconds since the Unix epoch, from the system clock (the default time source of a
/// store's checkpoints; tests inject their own).
pub fn system_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
