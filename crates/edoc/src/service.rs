//! Validators on their own threads, for callers on other threads (the node's async tasks):
//! libxml2 state never crosses a thread, only bytes and reports do.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use process::Package;
use time::OffsetDateTime;

use crate::{CommonResource, CompileError, Context, Limits, Report, Validator};

/// One document to validate, with owned context.
pub struct Job {
    pub bytes: Vec<u8>,
    /// The process, its version and the message code the envelope's action names.
    pub process: String,
    pub version: String,
    pub message: String,
    pub ref_id: Option<String>,
    pub nsi: Arc<nsi::Index>,
    pub common: Option<Arc<dyn CommonResource + Send + Sync>>,
    pub now: OffsetDateTime,
    /// Called on the validator thread with the report.
    pub reply: Box<dyn FnOnce(Report) + Send>,
}

/// A fixed set of validator threads sharing one queue.
#[derive(Clone)]
pub struct Pool {
    tx: Sender<Job>,
    /// (process, version, message code) of every message the packages define.
    messages: Arc<HashSet<(String, String, String)>>,
}

impl Pool {
    /// Starts `threads` validator threads, each compiling the packages' schemas once. Fails
    /// with every problem if the packages do not compile.
    pub fn start(
        packages: Vec<Package>,
        threads: usize,
        limits: Limits,
    ) -> Result<Pool, CompileError> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let messages: HashSet<(String, String, String)> = packages
            .iter()
            .flat_map(|p| {
                p.messages.iter().map(|m| {
                    (
                        p.process.code.clone(),
                        p.process.version.clone(),
                        m.code.clone(),
                    )
                })
            })
            .collect();
        let packages = Arc::new(packages);
        for i in 0..threads.max(1) {
            let (ready_tx, ready_rx) = sync_channel(1);
            let (rx, packages) = (rx.clone(), packages.clone());
            std::thread::Builder::new()
                .name(format!("edoc-{i}"))
                .spawn(move || run(&packages, limits, rx, ready_tx))
                .map_err(|e| CompileError(vec![format!("starting a validator thread: {e}")]))?;
            ready_rx.recv().map_err(|_| {
                CompileError(vec!["a validator thread stopped while starting".to_owned()])
            })??;
        }
        Ok(Pool {
            tx,
            messages: Arc::new(messages),
        })
    }

    /// Does the loaded package of this process version define this message?
    pub fn knows(&self, process: &str, version: &str, message: &str) -> bool {
        self.messages
            .contains(&(process.to_owned(), version.to_owned(), message.to_owned()))
    }

    /// Queues a job; false if the validator threads are gone.
    pub fn submit(&self, job: Job) -> bool {
        self.tx.send(job).is_ok()
    }

    /// Validates on a validator thread and waits for the report.
    pub fn validate_blocking(&self, mut job: Job) -> Option<Report> {
        let (tx, rx) = sync_channel(1);
        job.reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        if !self.submit(job) {
            return None;
        }
        rx.recv().ok()
    }
}

fn run(
    packages: &[Package],
    limits: Limits,
    rx: Arc<Mutex<Receiver<Job>>>,
    ready: SyncSender<Result<(), CompileError>>,
) {
    let v = match Validator::new(packages, limits) {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    loop {
        // The lock is held only while taking one job off the queue.
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let ctx = Context {
            process: &job.process,
            version: &job.version,
            message: &job.message,
            ref_id: job.ref_id.as_deref(),
            nsi: &job.nsi,
            common: job.common.as_deref().map(|c| c as &dyn CommonResource),
            now: job.now,
        };
        let report = v.validate(&job.bytes, &ctx);
        (job.reply)(report);
    }
}
