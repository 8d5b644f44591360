//! The single writer: one thread, one connection, group commit.
//!
//! Every write is a job sent to this thread. The thread takes whatever jobs are waiting (up to
//! a batch limit), runs them all in one transaction, commits once, and only then answers each
//! caller. Under load, hundreds of submissions share one commit and one fsync; alone, a job
//! commits immediately.
//!
//! Batches are optimistic: jobs report expected outcomes (a duplicate, a lost lease) as values,
//! so an error is rare. When one happens, the whole batch rolls back and every job runs again
//! in a transaction of its own, in the same order, so the failing job cannot take the others'
//! writes with it. Savepoints per job would give the same isolation, but on SQLite they copy
//! every page a job touches into a statement journal, which cost more than half the writer's
//! time in profiles.

use std::any::Any;
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

type Output = Box<dyn Any + Send>;
type Run = Box<dyn FnMut(&mut Tx<'_>) -> Result<Output, StoreError> + Send>;
type Reply = Box<dyn FnOnce(Result<Output, StoreError>) + Send>;

pub(crate) struct Job {
    run: Run,
    reply: Reply,
}

/// Runs once per batch, after the jobs and before COMMIT, with the batch's log head (the
/// store uses it to sign checkpoints inside the same transaction).
pub(crate) type AfterBatch =
    dyn FnMut(&mut dyn Conn, &mut Option<LogHead>) -> Result<(), StoreError> + Send;

/// Counters the node exposes as metrics.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    /// Batches that failed and were re-run one job at a time.
    pub retried_batches: AtomicU64,
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
                if !run_batch(conn.as_mut(), &mut jobs, &mut after_batch) {
                    st.retried_batches.fetch_add(1, Ordering::Relaxed);
                    for job in jobs.drain(..) {
                        // Alone, a job is always answered: committed, or with its own error.
                        run_batch(conn.as_mut(), &mut vec![job], &mut after_batch);
                    }
                }
                jobs.clear();
            }
        })
        .ok();
    Writer { tx, thread, stats }
}

/// Runs `jobs` in one transaction. On success answers them all and returns true. If a job
/// fails and there are several, rolls back, answers nobody and returns false (the caller
/// re-runs them singly). A single failing job, or a failed COMMIT, is answered with the error.
fn run_batch(conn: &mut dyn Conn, jobs: &mut Vec<Job>, after_batch: &mut AfterBatch) -> bool {
    let single = jobs.len() == 1;
    let mut outputs: Vec<Output> = Vec::with_capacity(jobs.len());
    let outcome = (|| -> Result<(), StoreError> {
        conn.begin_write()?;
        let mut tx = Tx {
            conn,
            head: None,
            head_dirty: false,
        };
        for job in jobs.iter_mut() {
            outputs.push((job.run)(&mut tx)?);
        }
        if tx.head_dirty {
            crate::log::store_head(&mut tx)?;
        }
        let Tx { conn, mut head, .. } = tx;
        after_batch(conn, &mut head)?;
        conn.batch("COMMIT")
    })();
    match outcome {
        Ok(()) => {
            for (job, out) in jobs.drain(..).zip(outputs) {
                (job.reply)(Ok(out));
            }
            true
        }
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            if single {
                if let Some(job) = jobs.pop() {
                    (job.reply)(Err(e));
                }
                true
            } else {
                tracing::debug!(error = %e, jobs = jobs.len(), "batch failed; re-running its jobs one by one");
                false
            }
        }
    }
}

/// Sends `f` to the writer and waits for its commit. `f` may run more than once (only the
/// last run's writes are committed), so it must not have effects outside the transaction.
pub(crate) async fn write<R, F>(tx: &mpsc::Sender<Job>, mut f: F) -> Result<R, StoreError>
where
    F: FnMut(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, rx) = oneshot::channel::<Result<Output, StoreError>>();
    let job = Job {
        run: Box::new(move |t: &mut Tx<'_>| f(t).map(|r| Box::new(r) as Output)),
        reply: Box::new(move |r| {
            let _ = reply.send(r);
        }),
    };
    tx.send(job).await.map_err(|_| StoreError::Closed)?;
    let out = rx.await.map_err(|_| StoreError::Closed)??;
    out.downcast::<R>()
        .map(|b| *b)
        .map_err(|_| StoreError::Corrupt("writer returned a value of another type".into()))
}
