//! TLS to PostgreSQL as libpq's `sslmode` and `sslrootcert` say, on rustls: `disable` (and
//! no `sslmode`, as before) connect in the clear; `prefer` and `require` encrypt without
//! checking the server's certificate (`require` with `sslrootcert` checks it as `verify-ca`
//! does, like libpq); `verify-ca` checks the chain to `sslrootcert`; `verify-full` also checks
//! that the certificate names the host connected to. The postgres crate knows only `disable`,
//! `prefer` and `require`, so the TLS parameters are taken out of the connection string here
//! and the rest is passed on.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::DbError;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Encrypted, certificate not checked (`prefer`, `require`).
    None,
    /// The chain to the root (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// The TLS a connection string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgTls {
    pub(crate) check: Check,
    pub(crate) root: Option<PathBuf>,
}

/// Splits `config` (key=value form or a `postgres://` URL) into what the postgres crate
/// takes and the TLS to use (None: the clear, as asked or by default).
pub(crate) fn split(config: &str) -> Result<(String, Option<PgTls>), DbError> {
    let bad = |m: String| DbError::Engine(format!("PostgreSQL connection string: {m}"));
    let url = config.starts_with("postgres://") || config.starts_with("postgresql://");
    let (head, pairs) = if url {
        match config.split_once('?') {
            Some((h, q)) => (
                h.to_owned(),
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect(),
            ),
            None => (config.to_owned(), Vec::new()),
        }
    } else {
        (String::new(), key_values(config).map_err(bad)?)
    };
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "sslmode" => mode = Some(v),
            "sslrootcert" => root = Some(PathBuf::from(v)),
            _ => rest.push((k, v)),
        }
    }
    let (tls, passed_mode) = match mode.as_deref() {
        None => (None, None),
        Some("disable") => (None, Some("disable")),
        Some("prefer") => (
            Some(PgTls {
                check: Check::None,
                root: None,
            }),
            Some("prefer"),
        ),
        Some("require") => (
            Some(PgTls {
                check: if root.is_some() {
                    Check::Chain
                } else {
                    Check::None
                },
                root: root.clone(),
            }),
            Some("require"),
        ),
        Some("verify-ca") => (
            Some(PgTls {
                check: Check::Chain,
                root: root.clone(),
            }),
            Some("require"),
        ),
        Some("verify-full") => (
            Some(PgTls {
                check: Check::Full,
                root: root.clone(),
            }),
            Some("require"),
        ),
        Some(other) => {
            return Err(bad(format!(
                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    if let Some(m) = passed_mode {
        rest.push(("sslmode".into(), m.into()));
    }
    let out = if url {
        if rest.is_empty() {
            head
        } else {
            let q: Vec<String> = rest.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{head}?{}", q.join("&"))
        }
    } else {
        rest.iter()
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok((out, tls))
}

/// The pairs of libpq's key=value form: `key = value`, a value quoted with `'` when it holds
/// spaces, `\` escaping inside quotes.
fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(format!("{key:?} has no value"));
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    Some('\\') => value.push(it.next().ok_or("a value ends in \\")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} is not closed")),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((key, value));
    }
}

impl PgTls {
    /// The rustls connector for this check.
    pub(crate) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, DbError> {
        let err = |m: String| DbError::Engine(format!("PostgreSQL TLS: {m}"));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.check {
            Check::None => Arc::new(Unchecked(provider.clone())),
            Check::Chain | Check::Full => {
                let root = self.root.as_ref().ok_or_else(|| {
                    err("verify-ca and verify-full need sslrootcert (the server's CA)".into())
                })?;
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(root)
                    .map_err(|e| err(format!("{}: {e}", root.display())))?
                {
                    let c = c.map_err(|e| err(format!("{}: {e}", root.display())))?;
                    roots
                        .add(c)
                        .map_err(|e| err(format!("{}: {e}", root.display())))?;
                }
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .map_err(|e| err(e.to_string()))?;
                Arc::new(Checked {
                    inner: webpki,
                    host_name: self.check == Check::Full,
                })
            }
        };
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
    }
}

/// `verify-ca` and `verify-full`: the WebPKI chain check, with the host name left out for
/// `verify-ca`.
#[derive(Debug)]
struct Checked {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    host_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host_name => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root: encrypted, the certificate taken as it is (the
/// handshake signature is still checked, so the session key belongs to whoever holds it).
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reaches the postgres crate, and the TLS asked for, per connection string.
    fn check(config: &str, passed: &str, tls: Option<(Check, Option<&str>)>) {
        let (out, got) = split(config).unwrap();
        assert_eq!(out, passed, "for {config}");
        assert_eq!(
            got,
            tls.map(|(check, root)| PgTls {
                check,
                root: root.map(PathBuf::from)
            }),
            "for {config}"
        );
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_passed_on() {
        check("host=h user=u", "host='h' user='u'", None);
        check("host=h sslmode=disable", "host='h' sslmode='disable'", None);
        check(
            "host = h  options='-c search_path=x' sslmode=verify-full sslrootcert=/ca.pem",
            "host='h' options='-c search_path=x' sslmode='require'",
            Some((Check::Full, Some("/ca.pem"))),
        );
        check(
            "host=h sslmode=require",
            "host='h' sslmode='require'",
            Some((Check::None, None)),
        );
        check(
            "host=h sslmode=require sslrootcert=/ca.pem",
            "host='h' sslmode='require'",
            Some((Check::Chain, Some("/ca.pem"))),
        );
        check(
            "postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/ca.pem&application_name=x",
            "postgresql://u@h/db?application_name=x&sslmode=require",
            Some((Check::Chain, Some("/ca.pem"))),
        );
        check(r"password='it\'s'", r"password='it\'s'", None);
        for bad in ["host", "sslmode=allowish", "password='open"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }
}
