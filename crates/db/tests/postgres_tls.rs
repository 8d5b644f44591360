//! PostgreSQL over TLS, against this machine's server and its own certificate: `verify-full`
//! connects when the certificate names the host and chains to `sslrootcert`, and refuses an
//! address the certificate does not name or a root that did not issue it; `verify-ca` checks
//! the chain only; `require` encrypts without checking; no `sslmode` stays in the clear.

use db::{Conn as _, PgConn};
use testkit::{Judge, need};

/// The server's certificate file and the first DNS name it carries.
fn server_certificate() -> Result<(String, String), String> {
    let mut c = PgConn::open(&testkit::postgres_base()).map_err(|e| e.to_string())?;
    let on = c
        .query_one("SELECT setting FROM pg_settings WHERE name = 'ssl'", &[])
        .map_err(|e| e.to_string())?
        .map(|r| r.text(0).unwrap_or_default());
    if on.as_deref() != Some("on") {
        return Err("the server has ssl = off".into());
    }
    let file = c
        .query_one("SHOW ssl_cert_file", &[])
        .map_err(|e| e.to_string())?
        .ok_or("no ssl_cert_file")?
        .text(0)
        .map_err(|e| e.to_string())?;
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in", &file])
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let name = text
        .split([',', '\n'])
        .find_map(|p| p.trim().strip_prefix("DNS:"))
        .ok_or_else(|| format!("{file} names no DNS host: {text}"))?
        .to_owned();
    Ok((file, name))
}

/// The base connection string without its host: the tests say where to connect.
fn base_without_host() -> String {
    testkit::postgres_base()
        .split_whitespace()
        .filter(|kv| !kv.starts_with("host=") && !kv.starts_with("hostaddr="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Connects with `extra` and says whether the session is encrypted, or why it failed.
fn encrypted(extra: &str) -> Result<bool, String> {
    let config = format!("{} {extra}", base_without_host());
    std::thread::spawn(move || {
        let mut c = PgConn::open(&config).map_err(|e| e.to_string())?;
        let ssl = c
            .query_one(
                "SELECT (CASE WHEN ssl THEN 1 ELSE 0 END)::bigint FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .map_err(|e| e.to_string())?
            .ok_or("no pg_stat_ssl row")?
            .i64(0)
            .map_err(|e| e.to_string())?;
        Ok(ssl == 1)
    })
    .join()
    .unwrap_or_else(|_| Err("panicked".into()))
}

#[test]
fn sslmode_verify_full_checks_the_chain_and_the_host_name() {
    let Some((root, name)) = need(Judge::Postgres, server_certificate()) else {
        return;
    };
    let at = |host: &str| format!("host={host} hostaddr=127.0.0.1 sslrootcert={root}");
    let cases: Vec<(String, Result<bool, &str>)> = vec![
        (format!("{} sslmode=verify-full", at(&name)), Ok(true)),
        (
            format!("host=127.0.0.1 sslmode=verify-full sslrootcert={root}"),
            Err("certificate"),
        ),
        (
            format!(
                "host={name} hostaddr=127.0.0.1 sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt"
            ),
            Err("certificate"),
        ),
        (
            format!("host={name} hostaddr=127.0.0.1 sslmode=verify-full"),
            Err("sslrootcert"),
        ),
        (
            format!("host=127.0.0.1 sslmode=verify-ca sslrootcert={root}"),
            Ok(true),
        ),
        ("host=127.0.0.1 sslmode=require".into(), Ok(true)),
        ("host=127.0.0.1".into(), Ok(false)),
    ];
    for (extra, expect) in cases {
        let got = encrypted(&extra);
        match (&got, expect) {
            (Ok(g), Ok(e)) => assert_eq!(*g, e, "{extra}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{extra}: {g}"),
            _ => panic!("{extra}: got {got:?}, expected {expect:?}"),
        }
    }
}
