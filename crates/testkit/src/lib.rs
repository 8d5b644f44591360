//! Test support shared by every crate's tests, so each convention exists once.
//!
//! **Outside judges** (PostgreSQL, xmllint, xmlsec1, the OpenSSL gost engine, signxml, RabbitMQ
//! with Python's pika): a test
//! that needs one asks [`need`]. When it is missing the test is skipped with a `SKIPPED:` line,
//! unless `ORTAQ_REQUIRE_<NAME>=1` is set (CI sets it for every judge it installs), in which
//! case the test fails: a judge CI promised can never be skipped silently.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU16, Ordering};

/// What a test needs from outside the project, and the variable that makes it required.
#[derive(Debug, Clone, Copy)]
pub enum Judge {
    Postgres,
    Xmllint,
    Xmlsec1,
    Gost,
    Signxml,
    /// A RabbitMQ broker on 127.0.0.1:5672 and a Python with pika (`ORTAQ_PIKA_PYTHON`).
    Rabbitmq,
    /// Headless Chromium with chromedriver, and a Python with Selenium and axe-selenium-python
    /// (`ORTAQ_BROWSER_PYTHON`).
    Browser,
    /// A Python with the Authlib OpenID client (`ORTAQ_OIDC_PYTHON`).
    Oidc,
    /// A Python with ckanapi and rdflib (`ORTAQ_OPENDATA_PYTHON`).
    Opendata,
}

impl Judge {
    /// `ORTAQ_REQUIRE_<NAME>`.
    pub fn variable(self) -> &'static str {
        match self {
            Judge::Postgres => "ORTAQ_REQUIRE_PG",
            Judge::Xmllint => "ORTAQ_REQUIRE_XMLLINT",
            Judge::Xmlsec1 => "ORTAQ_REQUIRE_XMLSEC1",
            Judge::Gost => "ORTAQ_REQUIRE_GOST",
            Judge::Signxml => "ORTAQ_REQUIRE_SIGNXML",
            Judge::Rabbitmq => "ORTAQ_REQUIRE_RABBITMQ",
            Judge::Browser => "ORTAQ_REQUIRE_BROWSER",
            Judge::Oidc => "ORTAQ_REQUIRE_OIDC",
            Judge::Opendata => "ORTAQ_REQUIRE_OPENDATA",
        }
    }

    pub fn required(self) -> bool {
        std::env::var(self.variable()).is_ok_and(|v| v == "1")
    }
}

/// `found` as an Option: Some when the judge is there; None (the test should return) after
/// printing `SKIPPED`, or a panic when the judge is required.
pub fn need<T, E: std::fmt::Display>(judge: Judge, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(t) => Some(t),
        Err(e) => {
            assert!(
                !judge.required(),
                "{judge:?} is required ({}=1) but unavailable: {e}",
                judge.variable()
            );
            eprintln!("SKIPPED: {judge:?} unavailable: {e}");
            None
        }
    }
}

/// Whether `program` runs (`program --version`, or the given probe arguments).
pub fn program(program: &str, probe: &[&str]) -> Result<(), String> {
    let args: &[&str] = if probe.is_empty() {
        &["--version"]
    } else {
        probe
    };
    match std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// The Python named by `variable` (else `python3`) when it imports `modules` (`pika`, or
/// `selenium, axe_selenium_python`).
fn python_with(variable: &str, modules: &str) -> Result<String, String> {
    let python = std::env::var(variable).unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(format!("{python} cannot import {modules}"))
    }
}

/// The Python with pika that plays an IS on the queue adapter, when RabbitMQ listens on
/// 127.0.0.1:5672 and `ORTAQ_PIKA_PYTHON` (else `python3`) imports pika.
pub fn rabbitmq_and_pika() -> Option<String> {
    let found = std::net::TcpStream::connect(("127.0.0.1", 5672))
        .map_err(|e| format!("RabbitMQ on 127.0.0.1:5672: {e}"))
        .and_then(|_| python_with("ORTAQ_PIKA_PYTHON", "pika"));
    need(Judge::Rabbitmq, found)
}

/// The Python that drives headless Chromium for page tests, when `ORTAQ_BROWSER_PYTHON` (else
/// `python3`) imports Selenium and axe-selenium-python and chromium and chromedriver are
/// installed.
pub fn browser_python() -> Option<String> {
    let missing = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .into_iter()
        .find(|exe| !std::path::Path::new(exe).exists());
    let found = match missing {
        Some(exe) => Err(format!("{exe} is not installed")),
        None => python_with("ORTAQ_BROWSER_PYTHON", "selenium, axe_selenium_python"),
    };
    need(Judge::Browser, found)
}

/// The Python whose Authlib plays an outside OpenID client, when `ORTAQ_OIDC_PYTHON` (else
/// `python3`) imports authlib and requests.
pub fn oidc_python() -> Option<String> {
    need(
        Judge::Oidc,
        python_with("ORTAQ_OIDC_PYTHON", "authlib, requests"),
    )
}

/// The Python whose ckanapi and rdflib read a portal's open data, when
/// `ORTAQ_OPENDATA_PYTHON` (else `python3`) imports both.
pub fn opendata_python() -> Option<String> {
    need(
        Judge::Opendata,
        python_with("ORTAQ_OPENDATA_PYTHON", "ckanapi, rdflib"),
    )
}

/// The PostgreSQL server tests use: `ORTAQ_PG`, else the local one with trust auth.
pub fn postgres_base() -> String {
    std::env::var("ORTAQ_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into())
}

/// A connection string whose `search_path` is a schema of its own, made now (so tests running
/// at once never see each other's tables); None when PostgreSQL is unreachable and not
/// required.
pub fn postgres_schema() -> Option<String> {
    use db::Conn as _;
    let base = postgres_base();
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<String, db::DbError> {
            let mut admin = db::PgConn::open(&base)?;
            let schema = format!("t_{:016x}", rand::random::<u64>());
            admin.batch(&format!("CREATE SCHEMA {schema}"))?;
            Ok(schema)
        })
        .join()
        .unwrap_or_else(|_| Err(db::DbError::Engine("panicked".into())))
    });
    let schema = need(Judge::Postgres, made)?;
    Some(format!("{base} options='-c search_path={schema}'"))
}

/// An address for a node of one of the tests that run at once in this process. Ports come
/// from a counter below the kernel's ephemeral range, so no two nodes here get the same one
/// and no outgoing connection takes one between its reservation and its bind (a port from
/// bind(0), dropped, could be handed to another test's node: it would then talk to the wrong
/// peer).
pub fn free_addr() -> SocketAddr {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 30) as u16 * 400;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < 400, "out of test ports");
        let addr: SocketAddr = ([127, 0, 0, 1], base + n).into();
        // Skip a port something else on the machine holds.
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A clock the test moves forward by whole seconds, and its handle.
pub type Clock = Arc<dyn Fn() -> time::OffsetDateTime + Send + Sync>;

pub fn movable_clock() -> (Clock, Arc<AtomicI64>) {
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let clock: Clock = Arc::new(move || {
        time::OffsetDateTime::now_utc() + time::Duration::seconds(o.load(Ordering::Relaxed))
    });
    (clock, offset)
}
