//! `node.toml`: which segment a node serves, where it listens and keeps its data, which
//! participants it hosts. Files are named, keys are never embedded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use envelope::{Address, Segment};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
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
}

fn default_checkpoint_every() -> i64 {
    1000
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    #[serde(default)]
    pub engine: Option<String>,
    /// PostgreSQL connection string, when `engine = "postgres"`.
    #[serde(default)]
    pub postgres: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantConfig {
    pub address: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest envelope or e-document accepted, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_envelope_bytes: usize,
}

fn default_max_bytes() -> usize {
    16 * 1024 * 1024
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_envelope_bytes: default_max_bytes(),
        }
    }
}

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
        if cfg.data_dir.is_relative()
            && let Some(dir) = path.parent()
        {
            cfg.data_dir = dir.join(&cfg.data_dir);
        }
        cfg.check().map_err(invalid)?;
        Ok(cfg)
    }

    /// Checks the segment, every participant address and the store section.
    pub fn check(&self) -> Result<(), String> {
        let seg = self.segment()?;
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
        Ok(())
    }

    pub fn segment(&self) -> Result<Segment, String> {
        Segment::parse(&self.segment)
    }

    pub fn store_engine(&self) -> store::Engine {
        match (self.store.engine.as_deref(), &self.store.postgres) {
            (Some("postgres"), Some(c)) => store::Engine::Postgres(c.clone()),
            _ => store::Engine::Sqlite(self.data_dir.join("node.db")),
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("node.key")
    }
}
