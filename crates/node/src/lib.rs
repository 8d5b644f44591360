//! A node: the integration gateway of one segment (EEC or a member state) and the adapter API
//! its authorities' information systems talk to.
//!
//! The node turns what an IS submits into a Decision No. 5 envelope, stamps `int:Integration`,
//! stores it durably, and routes it; a message between two participants of the same node takes
//! the same durable path (outbox → delivery worker → recipient's inbox) as any other. Nothing is
//! answered before the store has committed it.

pub mod api;
pub mod builtin;
pub mod client;
pub mod config;
pub mod conformance;
pub mod evidence;
pub mod federation;
pub mod keys;
pub mod legal;
pub mod metrics;
pub mod reference;
mod screen;
pub mod stamping;
pub mod trusted;
pub mod trustspace;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use envelope::{
    Address, ApplicationMessage, CpAction, Envelope, EnvelopeError, Fault, FaultCode, MessageKind,
    Origin, ParseOptions, Segment, Signal, SignalKind, UrnUuid,
};
use sha2::{Digest, Sha256};
use store::{Accepted, AckOutcome, Route, Store, StoreConfig, StoreError};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

pub use config::NodeConfig;

/// The node's time source; tests inject a fixed or stepping clock.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnknownRecipient(String),
    #[error("{0}")]
    NoRoute(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Startup(String),
    /// A legally significant message without a valid document signature.
    #[error("{0}")]
    Unsigned(String),
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => NodeError::Conflict(m),
            e => NodeError::Store(e),
        }
    }
}

/// What the node tells the IS once a message is durably accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: UrnUuid,
    pub track_id: String,
    pub accept_time: OffsetDateTime,
    pub conversation_id: Option<UrnUuid>,
    /// True when this MessageID had been accepted before: the original receipt is repeated.
    pub duplicate: bool,
}

/// An application message to send. The sender is the participant of the token; this is the
/// JSON body of `POST /v1/messages` and what the Rust client sends.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Recipient's logical address, e.g. `EAEU://EEC/CP/P.TS.01/P.ACT.001`.
    pub to: String,
    /// Common process, e.g. `P.TS.01`.
    pub process: String,
    /// Process version, e.g. `1.0.1`.
    pub version: String,
    /// Procedure code, e.g. `P.TS.01.PRC.001`.
    pub procedure: String,
    /// Transaction code, e.g. `P.TS.01.TRN.001`.
    pub transaction: String,
    /// Message code, e.g. `P.TS.01.MSG.001`.
    pub message: String,
    /// The e-document: one XML element (an XML declaration may precede it).
    pub body: String,
    /// Your own MessageID (`urn:uuid:…`), to make retries safe: resending it returns the
    /// original receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The transaction instance to continue (`urn:uuid:…`); a new one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The procedure instance (`urn:uuid:…`); a new one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_id: Option<String>,
    /// The MessageID this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relates_to: Option<String>,
}

pub struct Node {
    cfg: NodeConfig,
    segment: Segment,
    store: Store,
    key: SigningKey,
    hosted: HashSet<String>,
    gate: Address,
    clock: Clock,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// One wake-up per outbox destination (`local` and each peer).
    wakes: HashMap<String, Notify>,
    fed: Option<federation::Federation>,
    /// The latest verified version of every resource and crosswalk this node holds.
    reference: RwLock<Arc<nsi::Index>>,
    sync: Mutex<reference::SyncStatus>,
    tokens: RwLock<HashMap<String, String>>,
    /// Process packages this node enforces, and the validator threads for their documents.
    packages: Vec<process::Package>,
    validation: Option<edoc::Pool>,
    /// The trust list and the TTP's receipt key (`[ttp]`).
    trust: Option<Arc<trusted::Trust>>,
    /// The time-stamp authority (`[tsa]`).
    stamping: Option<Arc<stamping::Stamping>>,
    worker_id: String,
    metrics: metrics::NodeMetrics,
}

impl Node {
    /// Opens the node's key and store (creating both on first start).
    pub fn open(cfg: NodeConfig, clock: Clock) -> Result<Arc<Node>, NodeError> {
        cfg.check().map_err(NodeError::Startup)?;
        let segment = cfg.segment().map_err(NodeError::Startup)?;
        let key =
            keys::load_or_create(&cfg.key_path()).map_err(|e| NodeError::Startup(e.to_string()))?;
        let mut sc = StoreConfig::new(cfg.store_engine());
        sc.checkpoint_every = cfg.checkpoint_every;
        sc.signer = Some(Arc::new(keys::NodeSigner(key.clone())));
        let c = clock.clone();
        sc.clock = Arc::new(move || micros(c()));
        let store = Store::open(sc)?;
        let gate = Address::parse(&format!("EAEU://{segment}/SR/gate"))?;
        let fed = cfg
            .federation
            .as_ref()
            .map(|f| federation::Federation::open(f, &cfg.delivery))
            .transpose()?;
        let (packages, validation) = match &cfg.processes {
            Some(p) => {
                let packages = process::package::load_all(&p.dir)
                    .map_err(|e| NodeError::Startup(format!("process packages: {e}")))?;
                let limits = edoc::Limits {
                    max_bytes: cfg.limits.max_envelope_bytes,
                    ..Default::default()
                };
                let pool =
                    edoc::Pool::start(packages.clone(), p.validators, limits).map_err(|e| {
                        NodeError::Startup(format!("process packages: {}", e.join("; ")))
                    })?;
                (packages, Some(pool))
            }
            None => (Vec::new(), None),
        };
        let trust = cfg
            .ttp
            .as_ref()
            .map(|t| trusted::Trust::load(t, clock()).map(Arc::new))
            .transpose()
            .map_err(NodeError::Startup)?;
        let stamping = cfg
            .tsa
            .as_ref()
            .map(|t| {
                let root = cfg.federation.as_ref().map(|f| f.root.as_path());
                stamping::Stamping::load(t, root, clock.clone()).map(Arc::new)
            })
            .transpose()
            .map_err(NodeError::Startup)?;
        let mut wakes = HashMap::new();
        wakes.insert("local".to_owned(), Notify::new());
        for p in fed.iter().flat_map(|f| f.peer_segments()) {
            wakes.insert(p.as_str().to_owned(), Notify::new());
        }
        Ok(Arc::new(Node {
            hosted: cfg
                .participants
                .iter()
                .map(|p| p.address.clone())
                .chain(cfg.nsi_service())
                .chain(cfg.trust_service())
                .chain(cfg.ttp_participant())
                .collect(),
            reference: RwLock::new(Arc::new(nsi::Index::default())),
            sync: Mutex::new(reference::SyncStatus::default()),
            metrics: metrics::NodeMetrics::new(segment.as_str()),
            // Stable across restarts (see Store::claim_outbox); unique per listener on a host.
            worker_id: format!("{segment}@{}:{}", hostname(), cfg.listen.port()),
            segment,
            store,
            key,
            gate,
            clock,
            waiters: Mutex::new(HashMap::new()),
            wakes,
            fed,
            tokens: RwLock::new(HashMap::new()),
            packages,
            validation,
            trust,
            stamping,
            cfg,
        }))
    }

    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    pub fn segment(&self) -> Segment {
        self.segment
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The trust service, when `[ttp]` is configured.
    pub fn trust(&self) -> Option<Arc<trusted::Trust>> {
        self.trust.clone()
    }

    /// The time-stamp authority, when `[tsa]` is configured.
    pub fn stamping(&self) -> Option<Arc<stamping::Stamping>> {
        self.stamping.clone()
    }

    pub fn hosts(&self, participant: &str) -> bool {
        self.hosted.contains(participant)
    }

    /// The XML limits of this node, for every path that reads outside bytes.
    fn limits(&self) -> envelope::Limits {
        envelope::Limits {
            max_bytes: self.cfg.limits.max_envelope_bytes,
            ..Default::default()
        }
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    // ------------------------------------------------------------ tokens

    /// Issues an API token for a hosted participant; only its SHA-256 is stored.
    pub async fn issue_token(&self, participant: &str, label: &str) -> Result<String, NodeError> {
        if !self.hosts(participant) {
            return Err(NodeError::UnknownRecipient(format!(
                "{participant} is not a participant of this node"
            )));
        }
        use base64::Engine as _;
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let token = format!(
            "ortaq_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        self.store
            .add_token(&token_hash(&token), participant, label, micros(self.now()))
            .await?;
        Ok(token)
    }

    /// The participant a bearer token stands for.
    pub async fn authenticate(&self, token: &str) -> Result<Option<String>, NodeError> {
        let h = token_hash(token);
        if let Some(p) = self.tokens.read().ok().and_then(|t| t.get(&h).cloned()) {
            return Ok(Some(p));
        }
        let p = self.store.token_participant(&h).await?;
        if let (Some(p), Ok(mut t)) = (&p, self.tokens.write()) {
            t.insert(h, p.clone());
        }
        Ok(p)
    }

    // ------------------------------------------------------------ accepting

    fn route(&self, to: &Address) -> Result<Route, NodeError> {
        if to.segment() == self.segment {
            if self.hosts(to.as_str()) {
                Ok(Route::Outbox {
                    destination: "local".into(),
                })
            } else {
                Err(NodeError::UnknownRecipient(format!(
                    "{to} is not a participant of node {}",
                    self.segment
                )))
            }
        } else {
            match self.fed.as_ref().and_then(|f| f.next_hop(to.segment())) {
                Some(via) => Ok(Route::Outbox {
                    destination: via.as_str().to_owned(),
                }),
                None => Err(NodeError::NoRoute(format!(
                    "no route from node {} to segment {}",
                    self.segment,
                    to.segment()
                ))),
            }
        }
    }

    fn wake(&self, destination: &str) {
        if let Some(w) = self.wakes.get(destination) {
            w.notify_one();
        }
    }

    fn expiry(&self, route: &Route, now: OffsetDateTime) -> Option<i64> {
        match route {
            Route::Outbox { destination } if destination != "local" => {
                let secs = self
                    .cfg
                    .delivery
                    .expire_after_secs
                    .min(i64::MAX as u64 / 2_000_000);
                Some(micros(now) + secs as i64 * 1_000_000)
            }
            _ => None,
        }
    }

    /// Builds the envelope for a submission from `participant` and accepts it.
    pub async fn submit(&self, participant: &str, s: Submission) -> Result<Receipt, NodeError> {
        let uuid = |v: &Option<String>, rule| -> Result<Option<UrnUuid>, NodeError> {
            Ok(v.as_deref()
                .map(|s| UrnUuid::parse_for(s, rule))
                .transpose()?)
        };
        let env = Envelope::application(
            ApplicationMessage {
                to: Address::parse(&s.to)
                    .map_err(|e| EnvelopeError::new(envelope::Rule::To, e.detail))?,
                reply_to: Address::parse(participant)?,
                action: CpAction::new(
                    &s.process,
                    &s.version,
                    &s.procedure,
                    &s.transaction,
                    &s.message,
                )?,
                message_id: uuid(&s.message_id, envelope::Rule::MessageId)?
                    .unwrap_or_else(UrnUuid::new_v4),
                relates_to: uuid(&s.relates_to, envelope::Rule::RelatesTo)?,
                conversation_id: uuid(&s.conversation_id, envelope::Rule::ConversationId)?
                    .unwrap_or_else(UrnUuid::new_v4),
                procedure_id: Some(
                    uuid(&s.procedure_id, envelope::Rule::ProcedureId)?
                        .unwrap_or_else(UrnUuid::new_v4),
                ),
                document: s.body,
            },
            self.limits(),
        )?;
        self.accept(env, None).await
    }

    /// Accepts a full envelope from an IS (SOAP passthrough). Returns the receipt and the RCV
    /// signal that answers it, or the Fault to send back.
    pub async fn submit_envelope(
        &self,
        participant: &str,
        bytes: &[u8],
    ) -> Result<(Receipt, Envelope), (Envelope, NodeError)> {
        let opts = ParseOptions {
            origin: Origin::InformationSystem,
            limits: self.limits(),
        };
        let env = match envelope::parse_partial(bytes, &opts) {
            Ok(e) => e,
            Err((e, header)) => {
                let fault = Envelope::fault(header.as_deref(), Fault::for_error(&e, Some(bytes)));
                return Err((fault, NodeError::Envelope(e)));
            }
        };
        let fault_for = |env: &Envelope, err: NodeError| {
            let (code, sub) = match &err {
                NodeError::Store(_) => (FaultCode::Receiver, envelope::SUBCODE_INTERNAL_ERROR),
                _ => (FaultCode::Sender, envelope::SUBCODE_INVALID_HEADER),
            };
            let f = Fault {
                code,
                subcode: Some(sub.into()),
                reason_ru: format!("Сообщение отклонено: {err}"),
                problem_message: Some(String::from_utf8_lossy(bytes).into_owned()),
            };
            (Envelope::fault(Some(&env.header), f), err)
        };
        if env.sender().map(Address::as_str) != Some(participant) {
            let err = NodeError::Forbidden(format!(
                "wsa:ReplyTo must be the authenticated participant {participant}"
            ));
            return Err(fault_for(&env, err));
        }
        if env.header.kind() == MessageKind::Fault {
            let err = NodeError::Forbidden(
                "an information system sends messages and signals, not Faults".into(),
            );
            return Err(fault_for(&env, err));
        }
        let header = env.header.clone();
        match self.accept(env.clone(), Some(bytes.to_vec())).await {
            Ok(receipt) => {
                let rcv = Envelope::signal_for(
                    &header,
                    self.gate.clone(),
                    Signal::new(SignalKind::Rcv, receipt.accept_time),
                )
                .map_err(|e| fault_for(&env, NodeError::Envelope(e)))?;
                Ok((receipt, rcv))
            }
            Err(e) => Err(fault_for(&env, e)),
        }
    }

    async fn accept(
        &self,
        mut env: Envelope,
        received: Option<Vec<u8>>,
    ) -> Result<Receipt, NodeError> {
        let started = Instant::now();
        let to = env
            .header
            .to
            .clone()
            .ok_or_else(|| EnvelopeError::new(envelope::Rule::To, "wsa:To is mandatory"))?;
        let route = match self.route(&to) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.rejected.increment(1);
                return Err(e);
            }
        };
        self.require_signature(&env)?;
        let evidence = self.evidence_for(&env, Vec::new()).await?;
        let now = self.now();
        let track = UrnUuid::new_v4();
        env.stamp(track, now);
        let accept_time = env
            .header
            .integration
            .as_ref()
            .map(|i| i.accept_time)
            .unwrap_or(now);
        let bytes = env.to_xml().into_bytes();
        let signature = match (&route, &self.fed) {
            (Route::Outbox { destination }, Some(f)) if destination != "local" => {
                Some(f.sign(&bytes)?)
            }
            _ => None,
        };
        let mut m = self.new_message(&env, bytes, track.to_string(), accept_time, route.clone());
        m.received = received;
        m.signature = signature;
        m.evidence = evidence;
        let outcome = self.store_screened(m, &env, &route).await?;
        self.metrics
            .submit_seconds
            .record(started.elapsed().as_secs_f64());
        Ok(match outcome {
            Accepted::New => {
                self.metrics.accepted.increment(1);
                if let Route::Outbox { destination } = &route {
                    self.wake(destination);
                }
                Receipt {
                    message_id: env.header.message_id,
                    track_id: track.to_string(),
                    accept_time,
                    conversation_id: env.header.conversation_id,
                    duplicate: false,
                }
            }
            Accepted::Duplicate {
                track_id,
                accept_time,
            } => {
                self.metrics.duplicates.increment(1);
                Receipt {
                    message_id: env.header.message_id,
                    track_id,
                    accept_time: from_micros(accept_time),
                    conversation_id: env.header.conversation_id,
                    duplicate: true,
                }
            }
        })
    }

    // ------------------------------------------------------------ inbox

    fn waiter(&self, participant: &str) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(participant.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Unacknowledged messages after `after`; waits up to `wait` for the first one to arrive.
    pub async fn inbox(
        &self,
        participant: &str,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<store::InboxItem>, NodeError> {
        let limit = limit.clamp(1, 1000);
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.waiter(participant);
        loop {
            // Registered before the query, so a delivery between the query and the wait is
            // not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let items = self.store.inbox(participant, after, limit).await?;
            if !items.is_empty() {
                let fresh: Vec<(i64, String)> = items
                    .iter()
                    .filter(|i| i.first_delivery)
                    .map(|i| (i.seq, i.message_id.clone()))
                    .collect();
                if !fresh.is_empty() {
                    self.store.mark_delivered(fresh, micros(self.now())).await?;
                }
                return Ok(items);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(items);
            }
        }
    }

    pub async fn ack(&self, participant: &str, message_id: &str) -> Result<AckOutcome, NodeError> {
        let id = UrnUuid::parse_for(message_id, envelope::Rule::MessageId)?;
        let out = self
            .store
            .ack(participant, &id.to_string(), micros(self.now()))
            .await?;
        if out == AckOutcome::Acknowledged {
            self.metrics.acknowledged.increment(1);
        }
        Ok(out)
    }

    /// Status and history of a message the participant sent or received.
    pub async fn status(
        &self,
        participant: &str,
        message_id: &str,
    ) -> Result<(store::MessageRecord, Vec<store::StateChange>), NodeError> {
        let id = UrnUuid::parse_for(message_id, envelope::Rule::MessageId)?.to_string();
        let rec = self.store.message(&id).await?.ok_or(NodeError::NotFound)?;
        // Someone else's message looks exactly like one that does not exist.
        if rec.sender != participant && rec.recipient != participant {
            return Err(NodeError::NotFound);
        }
        let hist = self.store.history(&id).await?;
        Ok((rec, hist))
    }

    pub async fn envelope_of(
        &self,
        participant: &str,
        message_id: &str,
    ) -> Result<Vec<u8>, NodeError> {
        let (rec, _) = self.status(participant, message_id).await?;
        self.store
            .envelope(&rec.message_id)
            .await?
            .ok_or(NodeError::NotFound)
    }

    // ------------------------------------------------------------ background work

    /// Moves `local` outbox entries into their recipients' inboxes until `stop` turns true.
    pub async fn run_delivery(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let lease = Duration::from_secs(30).as_micros() as i64;
        // The first claim also takes back leases this worker held before a crash.
        let mut resume = true;
        while !*stop.borrow() {
            let now = micros(self.now());
            let items = match self
                .store
                .claim_outbox(&self.worker_id, "local", 512, lease, now, resume)
                .await
            {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(error = %e, "outbox claim failed");
                    Vec::new()
                }
            };
            resume = false;
            if items.is_empty() {
                tokio::select! {
                    _ = self.wakes["local"].notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            self.deliver_local(items).await;
        }
    }

    /// Delivers claimed local outbox entries in one store job.
    async fn deliver_local(&self, local: Vec<store::OutboxItem>) {
        let now = micros(self.now());
        let ids = local.iter().map(|i| i.id).collect();
        match self
            .store
            .deliver_local_batch(ids, &self.worker_id, now)
            .await
        {
            Ok(done) => {
                for (it, recipient) in local.iter().zip(done) {
                    let Some(recipient) = recipient else { continue };
                    self.metrics.delivered.increment(1);
                    self.metrics
                        .delivery_seconds
                        .record((now - it.created_at).max(0) as f64 / 1e6);
                    self.waiter(&recipient).notify_waiters();
                }
            }
            Err(e) => {
                self.metrics.failed.increment(local.len() as u64);
                tracing::error!(error = %e, entries = local.len(), "local delivery failed; retried after the lease");
            }
        }
    }

    /// Signs a log checkpoint every few seconds when something was logged.
    pub async fn run_checkpoints(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.store.checkpoint().await {
                tracing::error!(error = %e, "log checkpoint failed");
            }
            if let Err(e) = self.stamp_checkpoints().await {
                tracing::error!(error = %e, "log checkpoint time stamp failed");
            }
        }
    }

    /// Time-stamps the signed checkpoints that have no stamp yet, when this node runs a
    /// time-stamp authority: the stamp proves the log up to that checkpoint existed by then.
    pub async fn stamp_checkpoints(&self) -> Result<usize, NodeError> {
        let Some(st) = self.stamping() else {
            return self.stamp_checkpoints_remotely().await;
        };
        let todo = self.store.unstamped_checkpoints(256).await?;
        let mut set = tokio::task::JoinSet::new();
        for (seq, hash) in todo {
            let Some(h) = hex::decode(&hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            let digest = tsa::sha256(&store::log::checkpoint_message(seq, &h));
            let st = st.clone();
            // Stamped together, they share the batcher's token.
            set.spawn(async move { (seq, st.stamp(digest).await) });
        }
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            let (seq, stamp) = r.map_err(|e| NodeError::Startup(e.to_string()))?;
            let stamp = stamp.map_err(NodeError::Startup)?;
            self.store
                .stamp_checkpoint(seq, stamp.token.to_vec(), stamp.proof.to_text())
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Without an authority of its own, a node has its checkpoints stamped by a peer's
    /// (`[federation] timestamps_from`): one request for a hash tree of all that wait.
    async fn stamp_checkpoints_remotely(&self) -> Result<usize, NodeError> {
        let Some(fed) = self.fed() else {
            return Ok(0);
        };
        let todo = self.store.unstamped_checkpoints(4096).await?;
        let digests: Vec<(i64, [u8; 32])> = todo
            .iter()
            .filter_map(|(seq, hash)| {
                let h = <[u8; 32]>::try_from(hex::decode(hash).ok()?).ok()?;
                Some((*seq, tsa::sha256(&store::log::checkpoint_message(*seq, &h))))
            })
            .collect();
        let only: Vec<[u8; 32]> = digests.iter().map(|(_, d)| *d).collect();
        let Some((root, proofs)) = tsa::batch::tree(&only) else {
            return Ok(0);
        };
        let Some(token) = fed.remote_stamp(&root).await else {
            return Ok(0);
        };
        let token = token.map_err(NodeError::Startup)?;
        for ((seq, _), proof) in digests.iter().zip(proofs) {
            self.store
                .stamp_checkpoint(*seq, token.clone(), proof.to_text())
                .await?;
        }
        Ok(digests.len())
    }

    /// Updates the queue-depth gauges and renders the metrics page.
    pub async fn render_metrics(&self) -> String {
        if let Ok((out, inb)) = self.store.queue_depth().await {
            self.metrics.outbox_pending.set(out as f64);
            self.metrics.inbox_unacked.set(inb as f64);
        }
        let st = self.store.writer_stats();
        self.metrics
            .store_batches
            .absolute(st.batches.load(std::sync::atomic::Ordering::Relaxed));
        self.metrics
            .store_jobs
            .absolute(st.jobs.load(std::sync::atomic::Ordering::Relaxed));
        match metrics::handle() {
            Some(h) => {
                h.run_upkeep();
                h.render()
            }
            None => String::new(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Serves the adapter API on `listener` until `shutdown` resolves, then stops taking
/// requests, lets in-flight ones finish, stops the workers and closes the store (which
/// drains every queued write and signs a final checkpoint).
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    metrics::handle();
    let (stop_tx, stop_rx) = watch::channel(false);
    node.reload_reference()
        .await
        .map_err(|e| NodeError::Startup(format!("reference data: {e}")))?;
    let mut workers = vec![
        tokio::spawn(node.clone().run_delivery(stop_rx.clone())),
        tokio::spawn(node.clone().run_checkpoints(stop_rx.clone())),
    ];
    if let Some(f) = &node.fed {
        let peer_listener = tokio::net::TcpListener::bind(f.listen)
            .await
            .map_err(|e| NodeError::Startup(format!("federation listener {}: {e}", f.listen)))?;
        workers.push(tokio::spawn(federation::serve_peers(
            node.clone(),
            peer_listener,
            stop_rx.clone(),
        )));
        for peer in f.peer_segments() {
            workers.push(tokio::spawn(federation::run_peer(
                node.clone(),
                peer,
                stop_rx.clone(),
            )));
        }
    }
    if node.cfg.ttp_participant().is_some() {
        workers.push(tokio::spawn(trusted::run_receipts(
            node.clone(),
            stop_rx.clone(),
        )));
    }
    if node.cfg.trust_service().is_some() {
        workers.push(tokio::spawn(trusted::run_service(
            node.clone(),
            stop_rx.clone(),
        )));
    }
    // Last, so that its first requests find the peer listener up for the answers.
    if node.cfg.nsi.is_some() {
        workers.push(tokio::spawn(reference::run_service(
            node.clone(),
            stop_rx.clone(),
        )));
    }
    let app = api::router(node.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| NodeError::Startup(format!("server: {e}")));
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    node.store.close().await?;
    tracing::info!(segment = %node.segment, "node stopped; store closed");
    result
}
