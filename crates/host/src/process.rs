//! A node as a child process: config written, tokens issued through the CLI, started, waited
//! for, and stopped with SIGTERM (graceful) or SIGKILL (crash).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

/// The participants the test and benchmark nodes host (segment KZ).
pub const SENDER: &str = "EAEU://KZ/CA/conformity-body";
pub const RECIPIENT: &str = "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002";

pub struct NodeProcess {
    exe: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub base: String,
    child: Option<std::process::Child>,
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The configuration of a node process of `segment` hosting `participant`: its store under
/// `data`, its API on a free port, everything else as the defaults say (callers add a
/// federation, reference data or a trust space).
pub fn config(segment: &str, participant: &str) -> anyhow::Result<node::NodeConfig> {
    Ok(node::NodeConfig {
        segment: segment.into(),
        listen: ([127, 0, 0, 1], free_port()?).into(),
        data_dir: "data".into(),
        store: Default::default(),
        participants: vec![node::config::ParticipantConfig {
            address: participant.into(),
            name: String::new(),
        }],
        limits: Default::default(),
        checkpoint_every: 1000,
        federation: None,
        delivery: Default::default(),
        nsi: None,
        processes: None,
        ttp: None,
        tsa: None,
        tls: None,
        signal_namespace: None,
        journal: None,
        queue: None,
        web: None,
    })
}

impl NodeProcess {
    /// Writes `dir/node.toml` from `cfg`, whose relative paths are taken from `dir`. Nothing
    /// is started yet.
    pub fn with_config(
        exe: &Path,
        dir: &Path,
        cfg: &node::NodeConfig,
    ) -> anyhow::Result<NodeProcess> {
        std::fs::create_dir_all(dir)?;
        let config = dir.join("node.toml");
        std::fs::write(&config, toml::to_string(cfg)?)?;
        Ok(NodeProcess {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            config,
            base: format!("http://{}", cfg.listen),
            child: None,
        })
    }

    /// Writes `dir/node.toml` (SQLite in `dir/data`) for a KZ node hosting SENDER and
    /// RECIPIENT. Nothing is started yet.
    pub fn configure(exe: &Path, dir: &Path) -> anyhow::Result<NodeProcess> {
        let port = free_port()?;
        let config = dir.join("node.toml");
        std::fs::write(
            &config,
            format!(
                "segment = \"KZ\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\n[[participants]]\naddress = \"{SENDER}\"\n\n[[participants]]\naddress = \"{RECIPIENT}\"\n"
            ),
        )?;
        Ok(NodeProcess {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            config,
            base: format!("http://127.0.0.1:{port}"),
            child: None,
        })
    }

    /// Runs `ortaq <args> --config <config>` to completion.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Ok(std::process::Command::new(&self.exe)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()?)
    }

    pub fn token(&self, participant: &str) -> anyhow::Result<String> {
        let out = self.cli(&["node", "token", "issue", "--participant", participant])?;
        if !out.status.success() {
            bail!("token: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Starts `ortaq node serve` and waits until `/health` answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))?;
        self.child = Some(
            std::process::Command::new(&self.exe)
                .args(["node", "serve", "--config"])
                .arg(&self.config)
                .stderr(log)
                .spawn()?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::get(format!("{}/health", self.base))
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the node did not come up; see {}",
                    self.dir.join("node.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGTERM, then waits: the node finishes in-flight requests and closes its store.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            bail!("not running")
        };
        std::process::Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()?;
        Ok(c.wait()?)
    }

    /// SIGKILL: the process dies at whatever instruction it is on.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// CPU time (user + system) the node process has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.pid().map_or(0.0, |p| cpu_seconds_of(&p.to_string()))
    }

    /// Starts counting the peak resident memory (`VmHWM:`) afresh (Linux `clear_refs` 5).
    pub fn reset_peak_memory(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// CPU time (user + system) of a process (`"self"` for this one), in seconds, from
/// `/proc/<pid>/stat`; Linux reports it in ticks of 1/100 s.
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
