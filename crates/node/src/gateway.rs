//! The node itself: its parts, and the one accept path every envelope takes (route, legal
//! significance and evidence, stamp and sign, validation screen, store), whether an IS submitted
//! it or a peer handed it over. The peer path only adds its own checks in front
//! (`peers::receive_from_peer`); the workers and the HTTP face are components that call in.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use envelope::{
    Address, ApplicationMessage, CpAction, Envelope, EnvelopeError, Fault, MessageKind, Origin,
    ParseOptions, Segment, Signal, SignalKind, Subcode, UrnUuid,
};
use sha2::{Digest, Sha256};
use store::{
    Accepted, AckOutcome, Destination, Direction, NewMessage, NodeSignature, Route, Store,
    StoreConfig,
};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::NodeConfig;
use crate::reference::Reference;
use crate::screen::Screen;
use crate::stamping::Stamping;
use crate::trusted::Trust;
use crate::{Clock, NodeError, Receipt, Submission, federation, from_micros, keys, legal, micros};

/// Where an envelope comes from, and what that side brought with it.
pub(crate) enum Source {
    /// An IS of this node; `received` holds its bytes when it sent a whole envelope.
    Is { received: Option<Vec<u8>> },
    /// A peer node, which proved the origin's signature (checked before) and may carry
    /// evidence from the node that judged the document.
    Peer {
        /// The envelope exactly as received: it is stored and forwarded byte for byte.
        bytes: Vec<u8>,
        direction: Direction,
        signature: NodeSignature,
        evidence: Vec<(String, Vec<u8>)>,
    },
}

/// How long a node trusts what its store said about a token: a token revoked by another
/// process (`ortaq node token revoke`) is refused by a running node within this.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct CachedGrant {
    grant: Option<store::TokenGrant>,
    checked: Instant,
}

pub struct Node {
    pub(crate) cfg: NodeConfig,
    pub(crate) segment: Segment,
    pub(crate) store: Store,
    key: SigningKey,
    hosted: HashSet<String>,
    pub(crate) gate: Address,
    clock: Clock,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// One wake-up per outbox destination (local and each peer).
    wakes: HashMap<Destination, Notify>,
    pub(crate) fed: Option<federation::Federation>,
    pub(crate) reference: Arc<Reference>,
    /// Token hash → what it grants, as the store said at most `TOKEN_RECHECK` ago.
    tokens: RwLock<HashMap<String, CachedGrant>>,
    /// Process packages this node enforces, and the validator threads for their documents.
    pub(crate) screen: Screen,
    /// The trust list and the TTP's receipt key (`[ttp]`).
    trust: Option<Arc<Trust>>,
    /// The time-stamp authority (`[tsa]`).
    stamping: Option<Arc<Stamping>>,
    pub(crate) worker_id: String,
    pub(crate) metrics: crate::metrics::NodeMetrics,
    /// CPU-heavy requests, a few at a time ([limits] heavy_workers, heavy_queue).
    heavy: crate::heavy::Heavy,
    /// Decoded reference-data versions and finished exports and diffs.
    read_cache: crate::readcache::ReadCache,
    /// The adapter API's TLS (`[tls]`), read at start so a bad file stops the node there.
    pub(crate) api_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Node {
    /// Opens the node's key and store (creating both on first start).
    pub fn open(cfg: NodeConfig, clock: Clock) -> Result<Arc<Node>, NodeError> {
        cfg.check().map_err(|e| NodeError::Startup(e.0))?;
        envelope::set_signal_namespace(
            cfg.signal_namespace
                .as_deref()
                .unwrap_or(envelope::DEFAULT_SIGNAL_NS),
        )
        .map_err(NodeError::Startup)?;
        let segment = cfg.segment().map_err(|e| NodeError::Startup(e.0))?;
        let key =
            keys::load_or_create(&cfg.key_path()).map_err(|e| NodeError::Startup(e.to_string()))?;
        let mut sc = StoreConfig::new(cfg.store_engine());
        sc.checkpoint_every = cfg.checkpoint_every;
        sc.signer = Some(Arc::new(keys::NodeSigner(key.clone())));
        let c = clock.clone();
        sc.clock = Arc::new(move || micros(c()));
        let store = Store::open(sc)?;
        let gate = Address::parse(&format!("EAEU://{segment}/SR/gate"))?;
        // Revoked federation certificates, as the trust list in use names them; the TLS
        // verifiers and the hop verifier read the set at every check.
        let revoked = Arc::new(transport::Revoked::default());
        let fed = cfg
            .federation
            .as_ref()
            .map(|f| federation::Federation::open(f, &cfg.delivery, revoked.clone()))
            .transpose()?;
        let screen = match &cfg.processes {
            Some(p) => {
                let packages = process::package::load_all(&p.dir)
                    .map_err(|e| NodeError::Startup(format!("process packages: {e}")))?;
                let limits = edoc::Limits {
                    max_bytes: cfg.limits.max_envelope_bytes,
                    ..Default::default()
                };
                let pool = edoc::Pool::start(packages.clone(), p.validators, limits)
                    .map_err(|e| NodeError::Startup(format!("process packages: {e}")))?;
                Screen::new(packages, Some(pool))
            }
            None => Screen::new(Vec::new(), None),
        };
        let trust = cfg
            .ttp
            .as_ref()
            .map(|t| Trust::load(t, clock(), revoked.clone()).map(Arc::new))
            .transpose()
            .map_err(|e| NodeError::Startup(e.to_string()))?;
        let stamping = cfg
            .tsa
            .as_ref()
            .map(|t| {
                let root = cfg.federation.as_ref().map(|f| f.root.as_path());
                Stamping::load(t, root, clock.clone()).map(Arc::new)
            })
            .transpose()
            .map_err(|e| NodeError::Startup(e.to_string()))?;
        let api_tls = cfg
            .tls
            .as_ref()
            .map(|t| transport::api_server_config(&t.cert, &t.key, t.client_ca.as_deref()))
            .transpose()
            .map_err(|e| NodeError::Startup(format!("[tls]: {e}")))?;
        let mut wakes = HashMap::new();
        wakes.insert(Destination::Local, Notify::new());
        for p in fed.iter().flat_map(|f| f.peer_segments()) {
            wakes.insert(Destination::Peer(p.as_str().to_owned()), Notify::new());
        }
        Ok(Arc::new(Node {
            hosted: cfg
                .participants
                .iter()
                .map(|p| p.address.clone())
                .chain(cfg.nsi_service())
                .chain(cfg.journal_service())
                .chain(cfg.trust_service())
                .chain(cfg.ttp_participant())
                .collect(),
            reference: Arc::new(Reference::new(
                cfg.nsi.as_ref().and_then(|n| n.publisher.clone()),
            )),
            metrics: crate::metrics::NodeMetrics::new(segment.as_str()),
            heavy: crate::heavy::Heavy::new(cfg.limits.heavy_workers, cfg.limits.heavy_queue),
            // Four decoded versions (HS is about 20 MB decoded) and 32 MiB of answers.
            read_cache: crate::readcache::ReadCache::new(4, 32 * 1024 * 1024),
            api_tls,
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
            screen,
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

    /// The store, for what the node's operators and tools read (status, log, counts).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The trust service, when `[ttp]` is configured.
    pub fn trust(&self) -> Option<Arc<Trust>> {
        self.trust.clone()
    }

    /// The time-stamp authority, when `[tsa]` is configured.
    pub fn stamping(&self) -> Option<Arc<Stamping>> {
        self.stamping.clone()
    }

    pub fn hosts(&self, participant: &str) -> bool {
        self.hosted.contains(participant)
    }

    /// The node's clock (every time the node reads goes through it).
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The XML limits of this node, for every path that reads outside bytes.
    /// What legally significant messages are judged with, as of now.
    fn judge(&self) -> legal::Judge<'_> {
        legal::Judge {
            packages: &self.screen.packages,
            trust: self.trust.clone(),
            stamping: self.stamping.clone(),
            federation_root: self.fed.as_ref().map(|f| f.root.as_slice()),
            heavy: &self.heavy,
            now: self.now(),
        }
    }

    /// Where CPU-heavy work of requests runs.
    pub fn heavy(&self) -> &crate::heavy::Heavy {
        &self.heavy
    }

    pub(crate) fn read_cache(&self) -> &crate::readcache::ReadCache {
        &self.read_cache
    }

    pub(crate) fn limits(&self) -> envelope::Limits {
        envelope::Limits {
            max_bytes: self.cfg.limits.max_envelope_bytes,
            ..Default::default()
        }
    }

    /// The latest verified reference data this node holds.
    pub fn reference(&self) -> Arc<nsi::Index> {
        self.reference.index()
    }

    /// Rebuilds the reference-data index from the store (after a publication).
    pub async fn reload_reference(&self) -> Result<(), crate::reference::ReferenceError> {
        self.reference.reload(&self.store).await
    }

    pub fn sync_status(&self) -> crate::reference::SyncStatus {
        self.reference.sync_status(micros(self.now()))
    }

    /// The node's reference data, as its distribution service reaches it.
    /// The node's diagnostic journal, for its journal service.
    pub fn journal_holdings(&self) -> crate::journal::Holdings {
        crate::journal::Holdings {
            store: self.store.clone(),
            segment: self.segment.as_str().to_owned(),
            clock: self.clock.clone(),
        }
    }

    pub fn reference_holdings(&self) -> crate::reference::Holdings {
        crate::reference::Holdings {
            store: self.store.clone(),
            reference: self.reference.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The node's trust list, as its distribution service reaches it (with `[ttp]`).
    pub fn trust_list(&self) -> Option<crate::trusted::TrustList> {
        Some(crate::trusted::TrustList {
            trust: self.trust.clone()?,
            clock: self.clock.clone(),
        })
    }

    // ------------------------------------------------------------ tokens

    /// Issues an API token for a hosted participant; only its SHA-256 is stored.
    pub async fn issue_token(&self, participant: &str, label: &str) -> Result<String, NodeError> {
        self.issue_token_until(participant, label, None).await
    }

    /// [`Node::issue_token`] with an end: from `until` on the token is refused.
    pub async fn issue_token_until(
        &self,
        participant: &str,
        label: &str,
        until: Option<OffsetDateTime>,
    ) -> Result<String, NodeError> {
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
            .add_token(
                &token_hash(&token),
                participant,
                label,
                micros(self.now()),
                until.map(micros),
            )
            .await?;
        Ok(token)
    }

    /// The participant a bearer token stands for: refused once revoked (seen within
    /// [`TOKEN_RECHECK`], even when another process revoked it), once expired, and when its
    /// participant is no longer hosted here.
    pub async fn authenticate(&self, token: &str) -> Result<Option<String>, NodeError> {
        let h = token_hash(token);
        let cached = self
            .tokens
            .read()
            .ok()
            .and_then(|t| t.get(&h).cloned())
            .filter(|c| c.checked.elapsed() < TOKEN_RECHECK);
        let grant = match cached {
            Some(c) => c.grant,
            None => {
                let grant = self.store.token_grant(&h).await?;
                if let Ok(mut t) = self.tokens.write() {
                    // Bounded: stale entries of unknown tokens go when the cache is full.
                    if t.len() >= 100_000 {
                        t.retain(|_, c| c.checked.elapsed() < TOKEN_RECHECK);
                    }
                    t.insert(
                        h,
                        CachedGrant {
                            grant: grant.clone(),
                            checked: Instant::now(),
                        },
                    );
                }
                grant
            }
        };
        let now = micros(self.now());
        Ok(grant
            .filter(|g| g.expires_at.is_none_or(|e| now < e))
            .filter(|g| self.hosts(&g.participant))
            .map(|g| g.participant))
    }

    /// The participant a client certificate (chain already checked at the handshake) names:
    /// the first subjectAltName URI that is a participant configured here.
    pub fn participant_of_certificate(&self, der: &[u8]) -> Option<String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u)
                if self.cfg.participants.iter().any(|p| p.address == *u) =>
            {
                Some((*u).to_owned())
            }
            _ => None,
        })
    }

    /// Every token issued here (by id, never the token itself).
    pub async fn tokens(&self) -> Result<Vec<store::TokenInfo>, NodeError> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes tokens; a running node refuses them within [`TOKEN_RECHECK`].
    pub async fn revoke_tokens(&self, which: store::TokenSelector) -> Result<u64, NodeError> {
        let n = self.store.revoke_tokens(which, micros(self.now())).await?;
        // This node need not wait: it forgets what it knew.
        if let Ok(mut t) = self.tokens.write() {
            t.clear();
        }
        Ok(n)
    }

    // ------------------------------------------------------------ accepting

    /// Where a message for `to` goes: a participant of this node, or the next node.
    pub(crate) fn route(&self, to: &Address) -> Result<Route, NodeError> {
        if to.segment() == self.segment {
            if self.hosts(to.as_str()) {
                Ok(Route::Outbox {
                    destination: Destination::Local,
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
                    destination: Destination::Peer(via.as_str().to_owned()),
                }),
                None => Err(NodeError::NoRoute(format!(
                    "no route from node {} to segment {}",
                    self.segment,
                    to.segment()
                ))),
            }
        }
    }

    pub(crate) fn wake(&self, route: &Route) {
        if let Route::Outbox { destination } = route
            && let Some(w) = self.wakes.get(destination)
        {
            w.notify_one();
        }
    }

    pub(crate) fn wakes(&self, destination: &Destination) -> Option<&Notify> {
        self.wakes.get(destination)
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
        self.accept_from_is(env, None).await
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
            // Table 8: which subcode each refusal is.
            let subcode = match &err {
                NodeError::Store(_) | NodeError::Internal(_) | NodeError::Busy(_) => {
                    Subcode::InternalError
                }
                NodeError::Envelope(e) => Subcode::for_error(e),
                NodeError::UnknownRecipient(_) | NodeError::NoRoute(_) => {
                    Subcode::DestinationUnreachable
                }
                NodeError::Forbidden(_) | NodeError::Conflict(_) => {
                    Subcode::InvalidAddressingHeader
                }
                NodeError::Unsigned(_)
                | NodeError::Evidence(_)
                | NodeError::NotFound
                | NodeError::Startup(_) => Subcode::DataError,
            };
            let f = Fault {
                code: subcode.code(),
                subcode: Some(subcode),
                reason_ru: envelope::quote(format!("Сообщение отклонено: {err}").as_bytes()),
                reasons: vec![(
                    "en".into(),
                    envelope::quote(format!("Message refused: {err}").as_bytes()),
                )],
                problem_message: Some(envelope::quote(bytes)),
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
            // The node takes no Fault Action from an IS: table 8's "action not supported".
            let why = "an information system sends messages and signals, not Faults";
            let f = Fault {
                code: Subcode::ActionNotSupported.code(),
                subcode: Some(Subcode::ActionNotSupported),
                reason_ru: "Сообщение отклонено: информационная система не отправляет Fault".into(),
                reasons: vec![("en".into(), format!("Message refused: {why}"))],
                problem_message: Some(envelope::quote(bytes)),
            };
            return Err((
                Envelope::fault(Some(&env.header), f),
                NodeError::Forbidden(why.into()),
            ));
        }
        let header = env.header.clone();
        match self.accept_from_is(env.clone(), Some(bytes.to_vec())).await {
            Ok(receipt) => {
                // The same RCV for a repeat, byte for byte.
                let rcv = crate::record::rcv(
                    &self.gate,
                    self.segment.as_str(),
                    &header,
                    receipt.accept_time,
                    "is-rcv",
                )
                .map_err(|e| fault_for(&env, NodeError::Envelope(e)))?;
                Ok((receipt, rcv))
            }
            Err(e) => Err(fault_for(&env, e)),
        }
    }

    /// An IS's envelope: routed, accepted, and its receipt made from the outcome.
    async fn accept_from_is(
        &self,
        env: Envelope,
        received: Option<Vec<u8>>,
    ) -> Result<Receipt, NodeError> {
        let started = Instant::now();
        let to = env
            .header
            .to
            .clone()
            .ok_or_else(|| EnvelopeError::new(envelope::Rule::To, "wsa:To is mandatory"))?;
        let route = self.route(&to).inspect_err(|_| {
            self.metrics.rejected.increment(1);
        })?;
        let (message_id, conversation_id) = (env.header.message_id, env.header.conversation_id);
        let (outcome, track_id, accept_time) =
            self.accept(env, route, Source::Is { received }).await?;
        self.metrics
            .submit_seconds
            .record(started.elapsed().as_secs_f64());
        Ok(match outcome {
            Accepted::New => Receipt {
                message_id,
                track_id,
                accept_time,
                conversation_id,
                duplicate: false,
            },
            // What it was told then: the conversation the first submission opened, not one
            // this repeat would have opened (a submission without one gets a new one each time).
            Accepted::Duplicate {
                track_id,
                accept_time,
                conversation_id: first,
            } => Receipt {
                message_id,
                track_id,
                accept_time: from_micros(accept_time),
                conversation_id: first
                    .and_then(|c| UrnUuid::parse_for(&c, envelope::Rule::ConversationId).ok())
                    .or(conversation_id),
                duplicate: true,
            },
        })
    }

    /// The one accept path: legal significance and evidence, stamp and sign (for an IS's
    /// envelope), the store record, the validation screen, the durable commit. Answers the
    /// outcome with the TrackID and AcceptTime the message now has.
    pub(crate) async fn accept(
        &self,
        mut env: Envelope,
        route: Route,
        source: Source,
    ) -> Result<(Accepted, String, OffsetDateTime), NodeError> {
        let carried = match &source {
            Source::Is { .. } => {
                legal::require_signature(&self.judge(), &env).await?;
                Vec::new()
            }
            Source::Peer { evidence, .. } => evidence.clone(),
        };
        let evidence = legal::evidence_for(&self.judge(), &env, carried).await?;
        let from_is = matches!(source, Source::Is { .. });
        let mut m = match source {
            Source::Is { received } => {
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
                    (
                        Route::Outbox {
                            destination: Destination::Peer(_),
                        },
                        Some(f),
                    ) => Some(f.sign(&bytes)?),
                    _ => None,
                };
                let mut m = self.record(&env, bytes, track.to_string(), accept_time, route.clone());
                m.received = received;
                m.signature = signature;
                m
            }
            Source::Peer {
                bytes,
                direction,
                signature,
                ..
            } => {
                // Microseconds, as stored: a repeated RCV must carry the very same time.
                let now = from_micros(micros(self.now()));
                let track = env
                    .header
                    .integration
                    .as_ref()
                    .map(|i| i.track_id.to_string())
                    .unwrap_or_else(|| UrnUuid::new_v4().to_string());
                let mut m = self.record(&env, bytes, track, now, route.clone());
                m.direction = direction;
                m.signature = Some(signature);
                m
            }
        };
        m.evidence = evidence;
        let (track, accept_time) = (m.track_id.clone(), from_micros(m.accept_time));
        let outcome = self.store_screened(m, &env, &route).await?;
        match &outcome {
            Accepted::New => {
                if from_is {
                    self.metrics.accepted.increment(1);
                }
                self.wake(&route);
                self.observe_transaction(&env, from_is, &route).await;
            }
            Accepted::Duplicate { .. } => self.metrics.duplicates.increment(1),
        }
        Ok((outcome, track, accept_time))
    }

    /// The store record of an envelope leaving this node as `route` says.
    pub(crate) fn record(
        &self,
        env: &Envelope,
        bytes: Vec<u8>,
        track_id: String,
        accept_time: OffsetDateTime,
        route: Route,
    ) -> NewMessage {
        crate::record::record(
            env,
            bytes,
            track_id,
            accept_time,
            route,
            Direction::Out,
            self.cfg.delivery.expire_after_secs,
        )
    }

    /// A notice from this node's gate, as a store record routed back to the sender.
    pub(crate) fn notice_record(&self, notice: &Envelope) -> Option<NewMessage> {
        let sender = notice.header.to.clone()?;
        let route = self.route(&sender).ok()?;
        let now = notice
            .header
            .integration
            .as_ref()
            .map(|i| i.accept_time)
            .unwrap_or_else(|| self.now());
        let track = notice.header.integration.as_ref()?.track_id.to_string();
        let bytes = notice.to_xml().into_bytes();
        let mut m = self.record(notice, bytes, track, now, route.clone());
        m.direction = Direction::Notice;
        if let Route::Outbox {
            destination: Destination::Peer(_),
        } = &route
        {
            m.signature = self.fed.as_ref()?.sign(&m.envelope).ok();
        }
        Some(m)
    }

    /// Stores an accepted message, screening its document first when it is addressed to a
    /// participant of this node in a transaction of a loaded package: a refused document is
    /// kept (state `failed`) but queued for nobody, and its ERR notice commits with it.
    async fn store_screened(
        &self,
        mut m: NewMessage,
        env: &Envelope,
        route: &Route,
    ) -> Result<Accepted, NodeError> {
        let now = self.now();
        let Some((code, report)) = self
            .screen
            .check(env, route, &self.store, self.reference(), now)
            .await
        else {
            return Ok(self.store.accept(m).await?);
        };
        let notice = (env.header.kind() == MessageKind::Application)
            .then(|| {
                crate::record::err_notice(
                    &self.gate,
                    self.segment.as_str(),
                    env,
                    "data-error",
                    crate::screen::refusal_errors(&code, &report),
                    now,
                )
            })
            .flatten()
            .and_then(|n| self.notice_record(&n));
        let notice_route = notice.as_ref().map(|n| n.route.clone());
        let first = &report.diagnostics[0];
        let detail = format!(
            "document refused: {} problems; first [{}] {}: {}",
            report.diagnostics.len(),
            first.rule,
            first.xpath,
            first.en
        );
        tracing::info!(message = %env.header.message_id, problems = report.diagnostics.len(), "document refused by validation");
        m.route = Route::None;
        m.expires_at = None;
        let out = self.store.accept_refused(m, detail, notice).await?;
        if out == Accepted::New {
            self.metrics.rejected.increment(1);
            if let Some(r) = notice_route {
                self.wake(&r);
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------ inbox

    fn waiter(&self, participant: &str) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(participant.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes the long polls of `participant` (a message reached its inbox).
    pub(crate) fn notify_inbox(&self, participant: &str) {
        self.waiter(participant).notify_waiters();
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
                // The transaction's RCV goes out before the delivery is recorded: a crash in
                // between hands the message over again, and the repeated RCV is a duplicate.
                for i in items.iter().filter(|i| i.first_delivery) {
                    self.confirm_receipt(participant, i).await;
                }
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

    /// The synchronous exchange: submits a request of a question/answer transaction and
    /// waits for what answers it (the response, an ERR or a Fault) in the caller's inbox, at
    /// most `wait` and no longer than the transaction's response time when this node knows the
    /// process. The answer is handed over like an inbox page item and stays in the inbox until
    /// acknowledged; None when nothing came in time (it will wait in the inbox when it comes).
    pub async fn exchange(
        &self,
        participant: &str,
        s: Submission,
        wait: Duration,
    ) -> Result<(Receipt, Option<store::InboxItem>), NodeError> {
        let wait = match self
            .screen
            .transaction(&s.process, &s.version, &s.transaction)
        {
            Some(t) if t.responses.is_empty() => {
                return Err(NodeError::Forbidden(format!(
                    "{} is not a question/answer transaction ({:?}): nothing answers it",
                    t.code, t.pattern
                )));
            }
            Some(t) => t
                .response_secs
                .map_or(wait, |secs| wait.min(Duration::from_secs(secs))),
            None => wait,
        };
        let receipt = self.submit(participant, s).await?;
        let request = receipt.message_id.to_string();
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.waiter(participant);
        loop {
            // Registered before the query, as in `inbox`.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.store.inbox_answer(participant, &request).await? {
                if item.first_delivery {
                    self.confirm_receipt(participant, &item).await;
                    self.store
                        .mark_delivered(
                            vec![(item.seq, item.message_id.clone())],
                            micros(self.now()),
                        )
                        .await?;
                }
                return Ok((receipt, Some(item)));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok((receipt, None));
            }
        }
    }

    /// The transaction's RCV for a message handed to `participant` for the first time, when
    /// its transaction asks for one (`TransactionDef::receipt_confirmed`): a DeliveryReceipt
    /// from the participant to the sender, relating to the message. It is distinct from this
    /// node's acceptance of the message (the hop's RCV, or the 202 of the API): it says the
    /// recipient's IS has it. Its identifiers derive from the message, so a repeat is a
    /// duplicate. A failure is logged; the message is handed over all the same.
    async fn confirm_receipt(&self, participant: &str, item: &store::InboxItem) {
        // A node that loads no process knows no transaction: nothing to parse on its polls.
        if self.screen.packages.is_empty() {
            return;
        }
        let Ok(env) = envelope::parse(&item.envelope, &ParseOptions::new(Origin::Any)) else {
            return;
        };
        let Some(cp) = env.header.cp_action() else {
            return;
        };
        if env.header.kind() != MessageKind::Application {
            return;
        }
        let wanted = self
            .screen
            .transaction(cp.process.as_str(), &cp.version, &cp.transaction)
            .zip(cp.message_code())
            .is_some_and(|(t, m)| t.receipt_confirmed(m));
        if !wanted {
            return;
        }
        let Ok(me) = Address::parse(participant) else {
            return;
        };
        let mut signal = Signal::new(SignalKind::Rcv, self.now());
        signal.signal_id =
            crate::record::derived_id(&["txn-rcv-signal", participant, &item.message_id]);
        let mut rcv = match Envelope::signal_for(&env.header, me, signal) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(message = %item.message_id, error = %e, "no RCV for the transaction");
                return;
            }
        };
        rcv.header.message_id =
            crate::record::derived_id(&["txn-rcv", participant, &item.message_id]);
        let Some(to) = rcv.header.to.clone() else {
            return;
        };
        let sent = match self.route(&to) {
            Ok(route) => self
                .accept(rcv, route, Source::Is { received: None })
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(message = %item.message_id, error = %e, "the transaction's RCV could not be sent");
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
        match crate::metrics::handle() {
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
