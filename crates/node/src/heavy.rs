//! CPU-heavy work (trusted-third-party checks, document-signature and carried-evidence
//! checks, reference-data decodes, exports and diffs) runs off the async threads, a few jobs
//! at a time, behind a bounded queue: a flood of such requests gets 503 with `Retry-After`
//! instead of taking every core and the memory of every job at once, and `/health` and
//! submissions keep their threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a heavy job did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeavyError {
    /// As many jobs are running and waiting as the node allows; the caller may retry later.
    #[error("the node is busy with other heavy requests; retry in a moment")]
    Busy,
    /// The job panicked or the node is shutting down.
    #[error("the job stopped: {0}")]
    Stopped(String),
}

/// A job as the workers take it.
type Job = Box<dyn FnOnce() + Send>;

/// `workers` threads of its own, and a queue of at most `queue` jobs waiting for them.
///
/// Threads of its own, not tokio's blocking pool: the allocator keeps one arena per thread,
/// and a large document parsed on each of a pool's many threads would leave that much memory
/// in each arena. A fixed few threads reuse their arenas, so the memory of heavy work stays
/// within `workers` jobs' worth.
pub struct Heavy {
    queue: std::sync::mpsc::SyncSender<Job>,
    workers: usize,
}

impl Heavy {
    /// `workers` 0 takes half the machine's cores (at least one): the other half is left to
    /// the async threads, the store's writer and the validator threads.
    pub fn new(workers: usize, queue: usize) -> Heavy {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
        } else {
            workers
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let running = Arc::new(AtomicUsize::new(0));
        for i in 0..workers {
            let (rx, running) = (rx.clone(), running.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("heavy-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        // The sender is gone with the node: nothing more will come.
                        let Ok(job) = job else { return };
                        running.fetch_add(1, Ordering::AcqRel);
                        job();
                        if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                            give_back_memory();
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a heavy-work thread could not start");
            }
        }
        Heavy { queue: tx, workers }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f` on a worker once one is free, or answers `Busy` at once when the queue is
    /// full. A caller that hangs up does not stop its job: the worker stays taken until the
    /// job ends, so hanging up cannot start more jobs than there are workers.
    pub async fn run<T, F>(&self, f: F) -> Result<T, HeavyError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(out);
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(HeavyError::Busy),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(HeavyError::Stopped(
                    "no heavy-work thread is running".into(),
                ));
            }
        }
        match rx.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(HeavyError::Stopped("the job panicked".into())),
            Err(_) => Err(HeavyError::Stopped("the job was dropped".into())),
        }
    }
}

/// Sets the process's allocator to give large buffers back when they are freed: glibc would
/// otherwise raise its mmap threshold after the first large request body and keep every later
/// one of that size in its heap, so a burst of 16 MB bodies stays resident after it ends.
/// Called once at the start of a node process.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; a fixed threshold is always valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Returns freed heap pages to the system once no heavy job runs: a parsed XML tree of a
/// large document is millions of small allocations that glibc would otherwise keep.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One worker and one waiting place: a third job is refused at once, and a job whose
    /// caller hung up still holds its worker until it ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_and_a_dropped_caller_keeps_its_worker() {
        let heavy = Arc::new(Heavy::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = heavy.clone();
        let first = tokio::spawn(async move { h.run(move || rx.recv().is_ok()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let h = heavy.clone();
        let second = tokio::spawn(async move { h.run(|| 2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(heavy.run(|| 3).await, Err(HeavyError::Busy));
        // The first caller hangs up; its job still runs, so the waiting one stays waiting.
        first.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        tx.send(()).unwrap();
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(heavy.run(|| 4).await, Ok(4));
    }
}
