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

use crate::DbError;
use crate::conn::{Conn, Dialect};

/// What a job sees: the connection inside the batch's transaction, and the state its owner
/// keeps per batch (the node's store caches the message-log head there, so a batch of a
/// thousand submissions reads and writes the head once).
pub struct Tx<'a, S = ()> {
    pub conn: &'a mut dyn Conn,
    pub state: &'a mut S,
}

impl<S> Tx<'_, S> {
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }
}

type Output = Box<dyn Any + Send>;
type Run<S> = Box<dyn FnMut(&mut Tx<'_, S>) -> Result<Output, DbError> + Send>;
type Reply = Box<dyn FnOnce(Result<Output, DbError>) + Send>;

pub(crate) struct Job<S> {
    run: Run<S>,
    reply: Reply,
}

/// Runs once per batch, after the jobs and before COMMIT, inside the same transaction (the
/// node's store writes the log head and signs checkpoints there).
pub type BeforeCommit<S> = dyn FnMut(&mut Tx<'_, S>) -> Result<(), DbError> + Send;

/// Counters the node exposes as metrics.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    /// Batches that failed and were re-run one job at a time.
    pub retried_batches: AtomicU64,
}

pub(crate) struct Writer<S> {
    pub tx: mpsc::Sender<Job<S>>,
    pub thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<WriterStats>,
}

pub(crate) fn spawn<S: Default + Send + 'static>(
    name: &str,
    mut conn: Box<dyn Conn>,
    max_batch: usize,
    before_commit: Box<BeforeCommit<S>>,
) -> Writer<S> {
    let (tx, mut rx) = mpsc::channel::<Job<S>>(16 * 1024);
    let stats = Arc::new(WriterStats::default());
    let st = stats.clone();
    let mut before_commit = before_commit;
    let thread = std::thread::Builder::new()
        .name(format!("{name}-writer"))
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
                if !run_batch(conn.as_mut(), &mut jobs, &mut before_commit) {
                    st.retried_batches.fetch_add(1, Ordering::Relaxed);
                    for job in jobs.drain(..) {
                        // Alone, a job is always answered: committed, or with its own error.
                        run_batch(conn.as_mut(), &mut vec![job], &mut before_commit);
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
fn run_batch<S: Default>(
    conn: &mut dyn Conn,
    jobs: &mut Vec<Job<S>>,
    before_commit: &mut BeforeCommit<S>,
) -> bool {
    let single = jobs.len() == 1;
    let mut outputs: Vec<Output> = Vec::with_capacity(jobs.len());
    let outcome = (|| -> Result<(), DbError> {
        conn.begin_write()?;
        let mut state = S::default();
        let mut tx = Tx {
            conn,
            state: &mut state,
        };
        for job in jobs.iter_mut() {
            outputs.push((job.run)(&mut tx)?);
        }
        before_commit(&mut tx)?;
        tx.conn.batch("COMMIT")
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
pub(crate) async fn write<S: 'static, R, F>(
    tx: &mpsc::Sender<Job<S>>,
    mut f: F,
) -> Result<R, DbError>
where
    F: FnMut(&mut Tx<'_, S>) -> Result<R, DbError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, rx) = oneshot::channel::<Result<Output, DbError>>();
    let job = Job {
        run: Box::new(move |t: &mut Tx<'_, S>| f(t).map(|r| Box::new(r) as Output)),
        reply: Box::new(move |r| {
            let _ = reply.send(r);
        }),
    };
    tx.send(job).await.map_err(|_| DbError::Closed)?;
    let out = rx.await.map_err(|_| DbError::Closed)??;
    out.downcast::<R>()
        .map(|b| *b)
        .map_err(|_| DbError::Corrupt("writer returned a value of another type".into()))
}
