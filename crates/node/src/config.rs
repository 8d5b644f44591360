//! `node.toml`: which segment a node serves, where it listens and keeps its data, which
//! participants it hosts. Files are named, keys are never embedded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use envelope::{Address, Segment};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `EEC` or a member state's alpha-2 code.
    pub segment: String,
    /// Adapter API address, e.g. `127.0.0.1:7101`.
    pub listen: SocketAddr,
    /// Folder for the SQLite store and the node key (relative to the config file).
    pub data_dir: PathBuf,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub participants: Vec<ParticipantConfig>,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Sign a log checkpoint after this many records (and every few seconds when idle).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: i64,
    /// Exchange with other nodes; absent for a node that serves its segment alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationSection>,
    #[serde(default)]
    pub delivery: DeliverySection,
    /// Reference data distribution (P.CC.10-style); absent: the node only serves what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsi: Option<NsiSection>,
    /// Process packages to enforce; absent: documents are delivered unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<ProcessesSection>,
    /// The trust space: the federation's trust list and, on a node that serves as trusted
    /// third party, the key its receipts are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttp: Option<TtpSection>,
    /// A time-stamp authority run by this node (RFC 3161 at `POST /v1/tsa`, and the stamps
    /// on its receipts and legally significant messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa: Option<TsaSection>,
    /// TLS for the adapter API; absent: plain HTTP (on loopback, or behind a proxy that
    /// terminates TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ApiTlsSection>,
    /// The namespace of signal bodies (Decision No. 5 appendix 5), the same at every node of
    /// the federation; `urn:EEC:signal:v1.0` when unset (see `envelope::DEFAULT_SIGNAL_NS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_namespace: Option<String>,
    /// The diagnostic journal of the exchange: a national node reports it to its `collector`
    /// every `report_secs`; the node without a collector (the EEC) collects and keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalSection>,
    /// The queue adapter: participants whose ISs talk to the node through AMQP 0-9-1
    /// (RabbitMQ) instead of HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSection>,
    /// The pages (the `web` crate) on a listener of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSection>,
}

/// `[web]`: where the node serves its pages.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// e.g. `127.0.0.1:8101`; plain HTTP (behind a proxy that terminates TLS in production).
    pub listen: SocketAddr,
    /// Session cookies carry `Secure` (sent over HTTPS only; browsers count loopback HTTP as
    /// secure too). Turn off only for a node served over plain HTTP beyond loopback, which is
    /// not a production setting.
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
    /// The pages' public address, e.g. `https://portal.eaeunion.org`: the node's OpenID issuer
    /// and client id in cross-border sign-in, as the trust list names it; `http://<listen>`
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Serve the public portal: the unified registry of conformity documents, open data (CSV,
    /// JSON, XML downloads, a DCAT-AP catalogue, the CKAN Action API) and the showcases. The
    /// EEC node does; a national node may, for its segment.
    #[serde(default)]
    pub portal: bool,
}

impl WebSection {
    /// The pages' public address, without a trailing '/'.
    pub fn issuer(&self) -> String {
        self.public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

fn default_true() -> bool {
    true
}

/// `[queue]`: the broker, and which participants' ISs use it (see the `queue` crate).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// `amqp://user:password@host:port/vhost`, or `amqps://` (the system's roots).
    pub url: String,
    /// First part of every queue and exchange name.
    #[serde(default = "default_queue_prefix")]
    pub prefix: String,
    /// Requests taken at once per participant (the AMQP prefetch).
    #[serde(default = "default_queue_prefetch")]
    pub prefetch: u16,
    pub participants: Vec<QueueParticipantSection>,
}

/// A participant whose IS talks through the broker, and the broker user it publishes as.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParticipantSection {
    pub address: String,
    /// Its requests must carry this AMQP `user_id`, which the broker checks against the
    /// connection's user.
    pub user: String,
}

fn default_queue_prefix() -> String {
    "ortaq".into()
}

fn default_queue_prefetch() -> u16 {
    64
}

/// `[journal]`: where this gateway reports its diagnostic journal, and how often.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// The collecting journal service (`EAEU://EEC/SR/journal`); absent on the collecting node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<String>,
    #[serde(default = "default_report_secs")]
    pub report_secs: u64,
}

fn default_report_secs() -> u64 {
    300
}

/// `[tls]`: the adapter API over HTTPS. With `client_ca`, an information system may show a
/// client certificate from that CA instead of a bearer token; the certificate names its
/// participant address as a URI in subjectAltName (`EAEU://KZ/CA/conformity-body`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// `[tsa]`: the time-stamping key (ECDSA P-256, PKCS#8 PEM) and its certificate, whose
/// extended key usage is `timeStamping` alone and critical (`ortaq pki issue --tsa`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TsaSection {
    pub key: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    /// The policy OID stated in tokens; the project's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// How long the batcher waits for more records before stamping (milliseconds).
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
}

fn default_batch_ms() -> u64 {
    2
}

/// `[ttp]`: files, never embedded keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TtpSection {
    /// The signed trust list (XML).
    pub trust_list: std::path::PathBuf,
    /// The certificate the trust list must be signed with (PEM), pinned here.
    pub trust_list_signer: std::path::PathBuf,
    /// The TTP's receipt-signing key (PKCS#8 PEM) and certificate (PEM); without them the
    /// node does not issue receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<std::path::PathBuf>,
    /// On the node that publishes the list (the EEC): the trust services of the nodes it
    /// sends every new list to (`EAEU://<SEG>/SR/trust`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<String>,
    /// On a subscribing node: the publisher's trust service (`EAEU://EEC/SR/trust`). The node
    /// asks it for the list at start, whenever it holds none that is valid, and when its list
    /// runs out within 14 days; a received list replaces `trust_list` only when it verifies
    /// and is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// How often a subscriber looks whether it needs a list (seconds).
    #[serde(default = "default_trust_refresh")]
    pub refresh_secs: u64,
}

fn default_trust_refresh() -> u64 {
    3600
}

/// `[processes]`: the folder of process packages (technological documents) this node loads.
/// Every document addressed to a participant of this node, in a transaction of a loaded
/// package, is validated (XSD, EDocHeader, filling rules, code lists) before it is delivered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessesSection {
    pub dir: std::path::PathBuf,
    /// Validator threads (libxml2 runs on its own threads).
    #[serde(default = "default_validators")]
    pub validators: usize,
}

fn default_validators() -> usize {
    1
}

/// `[nsi]`: the EEC node lists `subscribers` and tells them of every new version; a national
/// node names its `publisher` and fetches from it. Either way the node's own reference-data
/// service is `EAEU://<segment>/SR/nsi`, hosted automatically.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NsiSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<String>,
    /// How often a subscriber asks the publisher for its catalogue, besides notifications.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Whether anyone may read reference data at `/v1/nsi` (it is open data); false asks a
    /// participant's token.
    #[serde(default = "default_public_reads")]
    pub public_reads: bool,
}

fn default_public_reads() -> bool {
    true
}

impl Default for NsiSection {
    fn default() -> Self {
        NsiSection {
            publisher: None,
            subscribers: Vec::new(),
            refresh_secs: default_refresh(),
            public_reads: default_public_reads(),
        }
    }
}

fn default_refresh() -> u64 {
    3600
}

/// `[federation]`: the mutual-TLS listener for peers, the PKI files, the peers and the routes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// Where peers connect (mutual TLS), e.g. `127.0.0.1:7400`.
    pub listen: SocketAddr,
    /// The federation root certificate: the only trust anchor for peers.
    pub root: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The key and certificate this node signs envelopes with.
    pub signing_cert: PathBuf,
    pub signing_key: PathBuf,
    /// Whether this node forwards envelopes between other segments (the EEC node does).
    #[serde(default)]
    pub relay: bool,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Next hop per destination segment; `"*"` for every other segment. A destination that is
    /// a peer and has no entry is reached directly.
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, String>,
    /// The peer whose time-stamp authority stamps this node's log checkpoints (one token per
    /// batch of checkpoints), when this node runs none of its own; e.g. `"EEC"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub segment: String,
    /// `host:port` of the peer's federation listener.
    pub address: String,
    /// Segments whose envelopes this peer may hand over besides its own (a relay's list).
    #[serde(default)]
    pub relays_for: Vec<String>,
}

/// `[delivery]`: how hard the node tries to hand a message to the next node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// A message not handed over within this many seconds expires, and its sender is told.
    #[serde(default = "default_expire_after")]
    pub expire_after_secs: u64,
    /// Requests in flight to one peer at most: the per-peer back-pressure.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// First retry delay; it doubles per attempt (with jitter) up to `retry_max_ms`.
    #[serde(default = "default_retry_min")]
    pub retry_min_ms: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// How long one request to a peer may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

fn default_expire_after() -> u64 {
    24 * 3600
}
fn default_in_flight() -> usize {
    64
}
fn default_retry_min() -> u64 {
    250
}
fn default_retry_max() -> u64 {
    60_000
}
fn default_request_timeout() -> u64 {
    30
}

impl FederationSection {
    /// The star the IIS runs: every national node talks to the `hub` (the EEC node), which
    /// relays between them. `addrs` holds each segment's federation listener; the files are
    /// those `ortaq pki init` wrote under `pki`.
    pub fn star(
        pki: &Path,
        me: Segment,
        hub: Segment,
        addrs: &std::collections::BTreeMap<Segment, SocketAddr>,
    ) -> Option<FederationSection> {
        let files = trust::pki::NodeFiles::in_dir(pki, me);
        let peer = |s: Segment, relays_for: Vec<String>| PeerConfig {
            segment: s.as_str().to_owned(),
            address: addrs[&s].to_string(),
            relays_for,
        };
        let (peers, routes) = if me == hub {
            let peers = addrs
                .keys()
                .filter(|s| **s != me)
                .map(|s| peer(*s, Vec::new()))
                .collect();
            (peers, Default::default())
        } else {
            let others = addrs
                .keys()
                .filter(|s| **s != me && **s != hub)
                .map(|s| s.as_str().to_owned())
                .collect();
            let routes = [("*".to_owned(), hub.as_str().to_owned())].into();
            (vec![peer(hub, others)], routes)
        };
        Some(FederationSection {
            listen: *addrs.get(&me)?,
            root: trust::pki::root_cert_path(pki),
            tls_cert: files.tls_cert,
            tls_key: files.tls_key,
            signing_cert: files.signing_cert,
            signing_key: files.signing_key,
            relay: me == hub,
            peers,
            routes,
            timestamps_from: None,
        })
    }
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            expire_after_secs: default_expire_after(),
            max_in_flight: default_in_flight(),
            retry_min_ms: default_retry_min(),
            retry_max_ms: default_retry_max(),
            request_timeout_secs: default_request_timeout(),
        }
    }
}

fn default_checkpoint_every() -> i64 {
    1000
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// PostgreSQL connection string, when `engine = "postgres"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantConfig {
    pub address: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest envelope or e-document accepted, in bytes (also the largest SOAP request).
    #[serde(default = "default_max_bytes")]
    pub max_envelope_bytes: usize,
    /// Largest signed document the trusted third party judges at `POST /v1/ttp/receipts`.
    #[serde(default = "default_max_ttp_bytes")]
    pub max_ttp_document_bytes: usize,
    /// Connections each listener holds at once, in all and per source address; over these a
    /// connection gets 503 with `Retry-After` and is closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// Seconds within which a request's header must arrive (and an idle kept-alive connection
    /// is closed).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// CPU-heavy requests (trusted-third-party checks, reference-data exports and diffs)
    /// worked on at once; 0 is half the cores. More than `heavy_queue` waiting get 503.
    #[serde(default)]
    pub heavy_workers: usize,
    #[serde(default = "default_heavy_queue")]
    pub heavy_queue: usize,
    /// Request bodies the adapter API holds at once, in bytes, counted from `Content-Length`
    /// (a body without one counts as the largest allowed); over this a request gets 503 with
    /// `Retry-After` before its body is read.
    #[serde(default = "default_bodies_in_flight")]
    pub max_body_bytes_in_flight: usize,
    /// Seconds within which a request with a body is received and answered (408 after).
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
}

fn default_body_timeout() -> u64 {
    60
}

fn default_heavy_queue() -> usize {
    32
}

fn default_bodies_in_flight() -> usize {
    128 * 1024 * 1024
}

fn default_max_connections() -> usize {
    4096
}

fn default_max_connections_per_source() -> usize {
    256
}

fn default_header_timeout() -> u64 {
    10
}

impl LimitsSection {
    /// What each listener of the node holds to.
    pub fn connections(&self) -> transport::ConnLimits {
        transport::ConnLimits {
            max_total: self.max_connections.max(1),
            max_per_source: self.max_connections_per_source.max(1),
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs.max(1)),
        }
    }
}

fn default_max_bytes() -> usize {
    16 * 1024 * 1024
}

fn default_max_ttp_bytes() -> usize {
    8 * 1024 * 1024
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_envelope_bytes: default_max_bytes(),
            max_ttp_document_bytes: default_max_ttp_bytes(),
            max_connections: default_max_connections(),
            max_connections_per_source: default_max_connections_per_source(),
            header_timeout_secs: default_header_timeout(),
            heavy_workers: 0,
            heavy_queue: default_heavy_queue(),
            max_body_bytes_in_flight: default_bodies_in_flight(),
            body_timeout_secs: default_body_timeout(),
        }
    }
}

/// What is wrong with a configuration, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl NodeConfig {
    /// Reads and checks a config file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if let Some(dir) = path.parent() {
            let rebase = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            rebase(&mut cfg.data_dir);
            if let Some(t) = &mut cfg.tls {
                rebase(&mut t.cert);
                rebase(&mut t.key);
                if let Some(ca) = &mut t.client_ca {
                    rebase(ca);
                }
            }
            if let Some(f) = &mut cfg.federation {
                for p in [
                    &mut f.root,
                    &mut f.tls_cert,
                    &mut f.tls_key,
                    &mut f.signing_cert,
                    &mut f.signing_key,
                ] {
                    rebase(p);
                }
            }
        }
        cfg.check().map_err(|e| invalid(e.0))?;
        Ok(cfg)
    }

    /// Checks the segment, every participant address and the store section.
    pub fn check(&self) -> Result<(), InvalidConfig> {
        self.check_text().map_err(InvalidConfig)
    }

    fn check_text(&self) -> Result<(), String> {
        let seg = self.segment().map_err(|e| e.0)?;
        for p in &self.participants {
            let a = Address::parse(&p.address).map_err(|e| format!("participant: {e}"))?;
            if a.segment() != seg {
                return Err(format!(
                    "participant {} is in segment {}, but this node serves {seg}",
                    p.address,
                    a.segment()
                ));
            }
        }
        match self.store.engine.as_deref() {
            None | Some("sqlite") => {}
            Some("postgres") if self.store.postgres.is_some() => {}
            Some("postgres") => {
                return Err("store.engine = \"postgres\" needs store.postgres".into());
            }
            Some(other) => return Err(format!("store.engine {other:?} is not sqlite or postgres")),
        }
        if let Some(f) = &self.federation {
            let mut peers = std::collections::HashSet::new();
            for p in &f.peers {
                let s = Segment::parse(&p.segment).map_err(|e| format!("peer: {e}"))?;
                if s == seg {
                    return Err(format!("peer {s} is this node itself"));
                }
                if !peers.insert(s) {
                    return Err(format!("peer {s} is listed twice"));
                }
                for r in &p.relays_for {
                    Segment::parse(r).map_err(|e| format!("peer {s} relays_for: {e}"))?;
                }
            }
            for (dest, via) in &f.routes {
                if dest != "*" {
                    Segment::parse(dest).map_err(|e| format!("route: {e}"))?;
                }
                let v = Segment::parse(via).map_err(|e| format!("route via: {e}"))?;
                if !peers.contains(&v) {
                    return Err(format!("route {dest} -> {via}: {via} is not a peer"));
                }
            }
        }
        if let Some(n) = &self.nsi {
            for a in n.publisher.iter().chain(&n.subscribers) {
                Address::parse(a).map_err(|e| format!("nsi: {e}"))?;
            }
        }
        if let Some(q) = &self.queue {
            if !q.url.starts_with("amqp://") && !q.url.starts_with("amqps://") {
                return Err("queue.url must be an amqp:// or amqps:// URL".into());
            }
            if q.prefix.is_empty() || q.prefetch == 0 {
                return Err("queue: prefix must not be empty and prefetch must be positive".into());
            }
            for p in &q.participants {
                if !self.participants.iter().any(|h| h.address == p.address) {
                    return Err(format!(
                        "queue: {} is not a participant of this node",
                        p.address
                    ));
                }
                if p.user.is_empty() {
                    return Err(format!(
                        "queue: {} needs the broker user it publishes as",
                        p.address
                    ));
                }
            }
        }
        let d = &self.delivery;
        if d.max_in_flight == 0 || d.retry_min_ms == 0 || d.retry_max_ms < d.retry_min_ms {
            return Err("delivery: max_in_flight and retry_min_ms must be positive, retry_max_ms at least retry_min_ms".into());
        }
        Ok(())
    }

    pub fn segment(&self) -> Result<Segment, InvalidConfig> {
        Segment::parse(&self.segment).map_err(InvalidConfig)
    }

    pub fn store_engine(&self) -> store::Engine {
        match (self.store.engine.as_deref(), &self.store.postgres) {
            (Some("postgres"), Some(c)) => store::Engine::Postgres(c.clone()),
            _ => store::Engine::Sqlite(self.data_dir.join("node.db")),
        }
    }

    /// The address of this node's trusted third party as a participant (P.XO.02), when `[ttp]`
    /// has a receipt key.
    pub fn ttp_participant(&self) -> Option<String> {
        self.ttp
            .as_ref()
            .filter(|t| t.key.is_some())
            .map(|_| format!("EAEU://{}/SR/ttp", self.segment))
    }

    /// The address of this node's trust-list service, when `[ttp]` publishes or subscribes.
    pub fn trust_service(&self) -> Option<String> {
        self.ttp
            .as_ref()
            .filter(|t| t.publisher.is_some() || !t.subscribers.is_empty())
            .map(|_| format!("EAEU://{}/SR/trust", self.segment))
    }

    /// Whether `/v1/nsi` answers without a token (`[nsi] public_reads`, true when unset).
    pub fn nsi_public_reads(&self) -> bool {
        self.nsi.as_ref().is_none_or(|n| n.public_reads)
    }

    /// The address of this node's journal service, when `[journal]` is configured.
    pub fn journal_service(&self) -> Option<String> {
        self.journal
            .as_ref()
            .map(|_| format!("EAEU://{}/SR/journal", self.segment))
    }

    /// The address of this node's reference-data service, when `[nsi]` is configured.
    pub fn nsi_service(&self) -> Option<String> {
        self.nsi
            .as_ref()
            .map(|_| format!("EAEU://{}/SR/nsi", self.segment))
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("node.key")
    }
}
