//! The single writer: one thread, one connection, group commit.
//!
//! Every write is a job sent to this thread. The thread takes whatever jobs are waiting (up to
//! a batch limit), runs each inside its own savepoint of one transaction, commits once, and only
//! then answers each caller. Under load, hundreds of submissions share one fsync; alone, a job
//! commits immediately. A job that fails rolls back to its savepoint, so its partial writes
//! never reach the commit of the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::conn::{Conn, Dialect};
use crate::log::LogHead;

/// What a job sees: the connection, plus per-batch state (the message-log head, cached so a
/// batch reads and writes it once).
pub struct Tx<'a> {
    pub(crate) conn: &'a mut dyn Conn,
    pub(crate) head: Option<LogHead>,
    pub(crate) head_dirty: bool,
}

impl Tx<'_> {
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// The connection, for writes other crates keep in their own tables.
    pub fn conn(&mut self) -> &mut dyn Conn {
        self.conn
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Runs once per batch, after the jobs and before COMMIT, with the batch's log head (the
/// store uses it to sign checkpoints inside the same transaction).
pub(crate) type AfterBatch =
    dyn FnMut(&mut dyn Conn, &mut Option<LogHead>) -> Result<(), StoreError> + Send;
pub(crate) type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion) + Send>;

/// Counters the node exposes as metrics.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
}

pub(crate) struct Writer {
    pub tx: mpsc::Sender<Job>,
    pub thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<WriterStats>,
}

pub(crate) fn spawn(
    mut conn: Box<dyn Conn>,
    max_batch: usize,
    after_batch: Box<AfterBatch>,
) -> Writer {
    let (tx, mut rx) = mpsc::channel::<Job>(16 * 1024);
    let stats = Arc::new(WriterStats::default());
    let st = stats.clone();
    let mut after_batch = after_batch;
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            let mut jobs = Vec::with_capacity(max_batch);
            // blocking_recv returns None once every sender is gone: that is the shutdown
            // signal, and by then every queued job has been taken, so nothing is dropped.
            while let Some(first) = rx.blocking_recv() {
                jobs.push(first);
                while jobs.len() < max_batch {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                st.batches.fetch_add(1, Ordering::Relaxed);
                st.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                run_batch(conn.as_mut(), &mut jobs, &mut after_batch);
            }
        })
        .ok();
    Writer { tx, thread, stats }
}

fn run_batch(conn: &mut dyn Conn, jobs: &mut Vec<Job>, after_batch: &mut AfterBatch) {
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    let outcome = (|| -> Result<(), StoreError> {
        conn.begin_write()?;
        let mut tx = Tx {
            conn,
            head: None,
            head_dirty: false,
        };
        for job in jobs.drain(..) {
            tx.conn.batch("SAVEPOINT job")?;
            let head_before = tx.head.clone();
            let dirty_before = tx.head_dirty;
            let (ok, done) = job(&mut tx);
            if ok {
                tx.conn.batch("RELEASE SAVEPOINT job")?;
                completions.push(done);
            } else {
                tx.conn.batch("ROLLBACK TO SAVEPOINT job")?;
                tx.conn.batch("RELEASE SAVEPOINT job")?;
                tx.head = head_before;
                tx.head_dirty = dirty_before;
                // The job's own error is already inside `done`; Ok(()) means "the batch
                // committed", which is what a failed job reports alongside its error.
                completions.push(done);
            }
        }
        if tx.head_dirty {
            crate::log::store_head(&mut tx)?;
        }
        let Tx { conn, head, .. } = tx;
        let mut head = head;
        after_batch(conn, &mut head)?;
        conn.batch("COMMIT")
    })();
    if let Err(e) = &outcome {
        let _ = conn.batch("ROLLBACK");
        tracing::error!(error = %e, "store batch failed; every job in it is answered with the error");
    }
    jobs.clear();
    for done in completions {
        done(outcome.clone());
    }
}

/// Sends `f` to the writer and waits for its commit.
pub(crate) async fn write<R, F>(tx: &mpsc::Sender<Job>, f: F) -> Result<R, StoreError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    let job: Job = Box::new(move |t: &mut Tx<'_>| {
        let res = f(t);
        let ok = res.is_ok();
        let done: Completion = Box::new(move |commit| {
            let _ = reply.send(commit.and(res));
        });
        (ok, done)
    });
    tx.send(job).await.map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}
