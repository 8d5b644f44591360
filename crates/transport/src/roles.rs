//! Key roles and revocation for the federation's certificates. A node holds two keys: a TLS
//! key (certificate with extended key usage serverAuth and clientAuth) and an envelope-signing
//! key (key usage nonRepudiation, no TLS usage). Each is accepted only in its own role: a TLS
//! peer must show a certificate made for TLS, a hop signature must come from a signing
//! certificate. A certificate whose SHA-256 is in the [`Revoked`] set (filled from the signed
//! trust list) is refused at the next handshake and for every hop signature, with no restart.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// SHA-256 digests of revoked federation certificates (DER).
#[derive(Debug, Default)]
pub struct Revoked(RwLock<HashSet<[u8; 32]>>);

impl Revoked {
    /// The SHA-256 of a certificate, as the trust list names it.
    pub fn digest(der: &[u8]) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Puts `digests` in place of what was revoked before (a newer list says it all).
    pub fn replace(&self, digests: impl IntoIterator<Item = [u8; 32]>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = digests.into_iter().collect();
    }

    pub fn contains(&self, der: &[u8]) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&Revoked::digest(der))
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which side of a TLS connection a certificate is shown for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSide {
    Client,
    Server,
}

/// Whether `der` is made for TLS on `side`: its extended key usage must be present and name
/// it. (The WebPKI verifier alone takes a certificate without the extension for any purpose,
/// which would let a signing certificate open a connection.)
pub fn check_tls_role(der: &[u8], side: TlsSide) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let eku = cert
        .extended_key_usage()
        .map_err(|e| e.to_string())?
        .ok_or("the certificate has no extended key usage: it is not a TLS certificate")?;
    let ok = match side {
        TlsSide::Client => eku.value.client_auth,
        TlsSide::Server => eku.value.server_auth,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the certificate is not made for the TLS {} side",
            match side {
                TlsSide::Client => "client",
                TlsSide::Server => "server",
            }
        ))
    }
}

/// Whether `der` is made for signing envelopes: key usage nonRepudiation (contentCommitment),
/// and no TLS usage.
pub fn check_signing_role(der: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let ku = cert.key_usage().map_err(|e| e.to_string())?;
    if !ku.is_some_and(|k| k.value.non_repudiation()) {
        return Err(
            "the certificate's key usage lacks nonRepudiation: it is not a signing certificate"
                .into(),
        );
    }
    if let Some(eku) = cert.extended_key_usage().map_err(|e| e.to_string())?
        && (eku.value.server_auth || eku.value.client_auth)
    {
        return Err("the certificate is made for TLS, not for signing envelopes".into());
    }
    Ok(())
}

/// What both verifiers add to the WebPKI chain check: the certificate's role for `side`, and
/// that the trust list has not revoked it.
fn role_and_revocation(
    end_entity: &CertificateDer<'_>,
    side: TlsSide,
    revoked: &Revoked,
) -> Result<(), rustls::Error> {
    check_tls_role(end_entity, side)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose))?;
    if revoked.contains(end_entity) {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
    }
    Ok(())
}

/// The server's check of a peer's client certificate: the federation chain (WebPKI), then role
/// and revocation.
#[derive(Debug)]
pub(crate) struct PeerClientVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) revoked: Arc<Revoked>,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        role_and_revocation(end_entity, TlsSide::Client, &self.revoked)?;
        Ok(ok)
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

/// A node's check of the peer it connects to: the federation chain and host name (WebPKI),
/// then role and revocation.
#[derive(Debug)]
pub(crate) struct PeerServerVerifier {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
    pub(crate) revoked: Arc<Revoked>,
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        role_and_revocation(end_entity, TlsSide::Server, &self.revoked)?;
        Ok(ok)
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
