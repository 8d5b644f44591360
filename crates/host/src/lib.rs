//! Runs nodes. In this process: a node with the built-in services its configuration names
//! (reference-data and trust-list distribution, the trusted third party as a participant),
//! started in order and stopped cleanly with one call, for `ortaq node serve`, the demo, the
//! conformance runner, the benchmarks and the tests ([`start`], [`Running`]). As child
//! processes of the real binary ([`process`]), for crash tests and benchmarks.
//!
//! This crate is where the node and the ISs that run beside it meet: the node knows no
//! service, and each service knows only the adapter boundary.

pub mod catalogue;
pub mod process;
pub mod trustspace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use node::{Clock, LocalAdapter, Node, NodeConfig, NodeError};
use tokio::sync::watch;

/// A node serving in this process, and the services running beside it.
pub struct Running {
    pub node: Arc<Node>,
    registry: Option<Arc<conformity::Registry>>,
    services: Vec<tokio::task::JoinHandle<()>>,
    stop_services: watch::Sender<bool>,
    stop_server: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Running {
    /// The handle of a participant of this node, in-process.
    pub fn adapter(&self, participant: &str) -> Result<LocalAdapter, NodeError> {
        LocalAdapter::new(self.node.clone(), participant)
    }

    /// The unified registry of conformity documents the node's portal shows (`[web] portal`),
    /// for the registry keeper to write.
    pub fn registry(&self) -> Option<Arc<conformity::Registry>> {
        self.registry.clone()
    }

    /// A receiver that turns true when the node begins to stop: for ISs run beside it.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop_services.subscribe()
    }

    /// Tells the services, and the ISs watching [`Running::stopping`], to stop; the node goes
    /// on serving until [`Running::stop`].
    pub fn begin_stop(&self) {
        let _ = self.stop_services.send(true);
    }

    /// Stops the services (they finish what they hold), then the node: it stops taking
    /// requests, lets in-flight ones finish, stops its workers and closes its store.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.stop_services.send(true);
        for s in self.services {
            let _ = s.await;
        }
        let _ = self.stop_server.send(true);
        self.server
            .await
            .map_err(|e| NodeError::Internal(format!("the server task failed: {e}")))?
    }

    /// Serves until `shutdown` resolves (SIGTERM, Ctrl-C), then stops as [`Running::stop`].
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        shutdown.await;
        self.stop().await
    }
}

/// Opens the node of `cfg` and runs it ([`run`]) on `listener`.
pub async fn start_on(
    cfg: NodeConfig,
    clock: Clock,
    listener: tokio::net::TcpListener,
) -> Result<Running, NodeError> {
    run(Node::open(cfg, clock)?, listener).await
}

/// Serves an opened node's adapter API on `listener` (and its federation listener, when it has
/// one), waits until the federation listener takes connections, and only then starts the
/// built-in services, so that their first messages find every listener up. (Open the node
/// yourself when something must be in its store before it serves, such as published
/// reference data.)
pub async fn run(node: Arc<Node>, listener: tokio::net::TcpListener) -> Result<Running, NodeError> {
    let clock = node.clock();
    let (stop_server, mut server_rx) = watch::channel(false);
    let server = tokio::spawn(node::serve(node.clone(), listener, async move {
        let _ = server_rx.wait_for(|s| *s).await;
    }));
    if let Some(f) = &node.config().federation {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(f.listen).await.is_err() {
            if Instant::now() > deadline || server.is_finished() {
                let _ = stop_server.send(true);
                return Err(match server.await {
                    Ok(Err(e)) => e,
                    _ => NodeError::Startup(format!(
                        "federation listener {} did not come up",
                        f.listen
                    )),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (stop_services, stop_rx) = watch::channel(false);
    let mut registry = None;
    let services = start_services(&node, clock, &stop_rx, &mut registry)?;
    Ok(Running {
        node,
        registry,
        services,
        stop_services,
        stop_server,
        server,
    })
}

/// [`start_on`] on the adapter address of `cfg`.
pub async fn start(cfg: NodeConfig, clock: Clock) -> Result<Running, NodeError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| NodeError::Startup(format!("cannot listen on {}: {e}", cfg.listen)))?;
    start_on(cfg, clock, listener).await
}

/// The built-in services the configuration names, each an IS on its node's adapter.
fn start_services(
    node: &Arc<Node>,
    clock: Clock,
    stop: &watch::Receiver<bool>,
    portal: &mut Option<Arc<conformity::Registry>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, NodeError> {
    let cfg = node.config();
    let mut tasks = Vec::new();
    if let Some(me) = cfg.ttp_participant() {
        let a = LocalAdapter::new(node.clone(), &me)?;
        tasks.push(tokio::spawn(services::ttp::run(
            a,
            me,
            clock.clone(),
            stop.clone(),
        )));
    }
    if let (Some(me), Some(t), Some(list)) = (cfg.trust_service(), &cfg.ttp, node.trust_list()) {
        let a = LocalAdapter::new(node.clone(), &me)?;
        let c = services::Config {
            me,
            publisher: t.publisher.clone(),
            subscribers: t.subscribers.clone(),
            refresh: Duration::from_secs(t.refresh_secs.max(1)),
        };
        tasks.push(tokio::spawn(services::trustlist::run(
            a,
            list,
            c,
            clock.clone(),
            stop.clone(),
        )));
    }
    if let (Some(me), Some(n)) = (cfg.nsi_service(), &cfg.nsi) {
        let a = LocalAdapter::new(node.clone(), &me)?;
        let c = services::Config {
            me,
            publisher: n.publisher.clone(),
            subscribers: n.subscribers.clone(),
            refresh: Duration::from_secs(n.refresh_secs.max(1)),
        };
        tasks.push(tokio::spawn(services::reference::run(
            a,
            node.reference_holdings(),
            c,
            stop.clone(),
        )));
    }
    if let (Some(me), Some(j)) = (cfg.journal_service(), &cfg.journal) {
        let a = LocalAdapter::new(node.clone(), &me)?;
        let c = services::journal::JournalConfig {
            me,
            collector: j.collector.clone(),
            every: Duration::from_secs(j.report_secs.max(1)),
        };
        tasks.push(tokio::spawn(services::journal::run(
            a,
            node.journal_holdings(),
            c,
            clock.clone(),
            stop.clone(),
        )));
    }
    if let Some(w) = &cfg.web {
        let people = people::People::open(
            cfg.store_engine().for_app("people"),
            clock.clone(),
            people::Policy::default(),
        )
        .map(Arc::new)
        .map_err(|e| NodeError::Startup(format!("cannot open the accounts of [web]: {e}")))?;
        // The portal's registry: the one the registry keeper writes, opened here so the pages
        // and the keeper share it (`Running::registry`).
        let registry = if w.portal {
            let r = conformity::Registry::open(cfg.store_engine().for_app("conformity"))
                .map_err(|e| NodeError::Startup(format!("cannot open the registry: {e}")))?;
            Some(Arc::new(r))
        } else {
            None
        };
        *portal = registry.clone();
        let site = web::Site {
            segment: cfg.segment.clone(),
            participants: cfg
                .participants
                .iter()
                .map(|p| web::Participant {
                    address: p.address.clone(),
                    name: p.name.clone(),
                })
                .collect(),
            api: Some(format!("http://{}/openapi.json", cfg.listen)),
            holdings: Arc::new(node.reference_holdings()),
            people: people.clone(),
            secure_cookies: w.secure_cookies,
            identity: node
                .identity()
                .map(|i| Arc::new(i) as Arc<dyn adapter::Identity>),
            issuer: w.issuer(),
            console: Some(Arc::new(node.console()) as Arc<dyn adapter::console::Console>),
            registry: registry
                .clone()
                .map(|r| r as Arc<dyn adapter::portal::Registry>),
            statistics: w
                .portal
                .then(|| Arc::new(node.console()) as Arc<dyn adapter::portal::Statistics>),
            catalogue: catalogue::build(cfg, &w.issuer(), node.identity().is_some()),
        };
        let pages = web::router(site).map_err(NodeError::Startup)?;
        let listener = std::net::TcpListener::bind(w.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| {
                NodeError::Startup(format!("cannot listen on {} for [web]: {e}", w.listen))
            })?;
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, pages)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the pages' listener failed");
            }
            if let Err(e) = people.close().await {
                tracing::warn!(error = %e, "the accounts did not close cleanly");
            }
            if let Some(r) = registry
                && let Err(e) = r.close().await
            {
                tracing::warn!(error = %e, "the registry did not close cleanly");
            }
        }));
    }
    if let Some(q) = &cfg.queue {
        let mut served = Vec::new();
        for p in &q.participants {
            let a = LocalAdapter::new(node.clone(), &p.address)?;
            let who = queue::QueueParticipant {
                address: p.address.clone(),
                user: p.user.clone(),
            };
            served.push((who, a));
        }
        let c = queue::Config {
            url: q.url.clone(),
            prefix: q.prefix.clone(),
            prefetch: q.prefetch,
        };
        tasks.push(tokio::spawn(queue::run(
            c,
            cfg.limits.max_envelope_bytes,
            served,
            stop.clone(),
        )));
    }
    Ok(tasks)
}
