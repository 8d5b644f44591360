//! CPU-heavy work (trusted-third-party checks, carried-evidence checks, reference-data
//! exports and diffs) runs off the async threads, a few jobs at a time, behind a bounded
//! queue: a flood of such requests gets 503 with `Retry-After` instead of taking every core
//! and the memory of every job at once, and `/health` and submissions keep their threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Why a heavy job did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeavyError {
    /// As many jobs are running and waiting as the node allows; the caller may retry later.
    #[error("the node is busy with other heavy requests; retry in a moment")]
    Busy,
    /// The job panicked or the runtime is shutting down.
    #[error("the job stopped: {0}")]
    Stopped(String),
}

/// The pool's admission: `workers` jobs at once, at most `queue` more waiting.
pub struct Heavy {
    permits: Arc<Semaphore>,
    workers: usize,
    waiting: Arc<AtomicUsize>,
    queue: usize,
}

/// Takes back a waiting place however the wait ends (the request may be dropped mid-wait).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
        Heavy {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f` on a blocking thread once a worker is free, or answers `Busy` at once when the
    /// queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, HeavyError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(HeavyError::Busy);
                }
                let _waiting = Waiting(self.waiting.clone());
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| HeavyError::Stopped(e.to_string()))?
            }
        };
        let (permits, workers) = (self.permits.clone(), self.workers);
        // The permit goes with the job, not with the request: a caller that hangs up does
        // not free a place while its job still runs.
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            if permits.available_permits() == workers {
                give_back_memory();
            }
            out
        })
        .await
        .map_err(|e| HeavyError::Stopped(e.to_string()))
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
