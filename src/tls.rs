//! TLS configuration: trust anchors, `--insecure`, `--pin-sha256`, session resumption,
//! and error descriptions a person understands.
//!
//! Invariants: one `Arc<ClientConfig>` is shared by every connection of an engine, so
//! its in-memory session cache lets reconnections to a host resume (tickets or
//! session IDs) instead of running a full handshake; ALPN offers only `http/1.1`;
//! verification is never skipped silently — `--insecure` installs
//! [`AcceptAnyCertificate`], a verifier that says what it does, and pins are checked
//! after (and in addition to) whichever verifier is in force.

use ring::digest::{digest, SHA256};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;

/// How many TLS sessions the resumption cache keeps (one or two per host).
pub const SESSION_CACHE: usize = 4096;

/// The user's TLS choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra trust anchors (PEM file), beside the built-in web roots.
    pub cacert: Option<PathBuf>,
    /// Accept any certificate (`-k`).
    pub insecure: bool,
    /// Accepted SHA-256 hashes of the peer's SubjectPublicKeyInfo, base64 (curl's
    /// `--pinnedpubkey sha256//…`).
    pub pins: Vec<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the shared client configuration; errors name what is wrong (a file that
/// cannot be read, a PEM without certificates).
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &opts.cacert {
        let pem = std::fs::read(path).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("--cacert {}: {e:?}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--cacert {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "--cacert {}: no PEM certificates found",
                path.display()
            ));
        }
    }
    let inner: Arc<dyn ServerCertVerifier> = if opts.insecure {
        Arc::new(AcceptAnyCertificate {
            provider: provider.clone(),
        })
    } else {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("TLS verifier: {e}"))?
    };
    let verifier: Arc<dyn ServerCertVerifier> = if opts.pins.is_empty() {
        inner
    } else {
        for p in &opts.pins {
            let p = p.strip_prefix("sha256//").unwrap_or(p);
            if p.len() != 44 || !p.ends_with('=') {
                return Err(format!(
                    "--pin-sha256 {p:?}: expected 44 characters of base64 (a SHA-256 hash)"
                ));
            }
        }
        Arc::new(PinnedVerifier {
            inner,
            pins: opts
                .pins
                .iter()
                .map(|p| p.strip_prefix("sha256//").unwrap_or(p).to_string())
                .collect(),
        })
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::in_memory_sessions(SESSION_CACHE);
    Ok(Arc::new(config))
}

/// The server name for SNI and verification: a DNS name, or an IP address (for
/// which rustls sends no SNI).
pub fn server_name(
    host: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<ServerName<'static>, String> {
    match ip {
        Some(ip) => Ok(ServerName::IpAddress(ip.into())),
        None => ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host:?} is not a valid TLS server name")),
    }
}

/// Verifies nothing about the certificate (`--insecure`): any certificate, any name,
/// any date. Handshake signatures are still checked, so the peer must hold the key
/// of the certificate it sent.
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Runs the inner verifier, then accepts only a peer whose public key hash is pinned.
#[derive(Debug)]
pub struct PinnedVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<String>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let spki = spki_of(end_entity).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        let hash = crate::text::base64(digest(&SHA256, spki).as_ref());
        if self.pins.contains(&hash) {
            Ok(ok)
        } else {
            Err(rustls::Error::General(format!(
                "public key pin mismatch: the peer's key is sha256//{hash}"
            )))
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

/// Reads one DER TLV at the start of `b`: (tag, whole TLV length, content range).
pub(crate) fn der_tlv(b: &[u8]) -> Option<(u8, usize, std::ops::Range<usize>)> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    (end <= b.len()).then_some((tag, end, hdr..end))
}

/// The DER SubjectPublicKeyInfo (whole TLV) of an X.509 certificate.
pub fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, _, c) = der_tlv(cert)?; // Certificate
    let (_, _, t) = der_tlv(&cert[c.clone()])?; // tbsCertificate
    let tbs = &cert[c][t];
    let mut rest = tbs;
    // [0] version (optional), serial, signature, issuer, validity, subject, spki
    let mut field = 0;
    loop {
        let (tag, len, _) = der_tlv(rest)?;
        if field == 0 && tag == 0xa0 {
            rest = &rest[len..];
            continue;
        }
        if field == 5 {
            return (tag == 0x30).then_some(&rest[..len]);
        }
        rest = &rest[len..];
        field += 1;
    }
}

/// A TLS failure in words a person understands.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "certificate not trusted: unknown issuer (self-signed or private CA; --cacert adds one, -k skips verification)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not valid yet".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate is not valid for this host name".into()
            }
            CertificateError::Revoked => "certificate has been revoked".into(),
            CertificateError::BadSignature => "certificate has a bad signature".into(),
            other => format!("invalid certificate: {other:?}"),
        },
        E::AlertReceived(a) => format!("peer sent TLS alert {a:?}"),
        E::General(s) => s.clone(),
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_of_generated_cert() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let spki = spki_of(cert.der()).unwrap();
        assert_eq!(spki, key.public_key_der());
        assert!(spki_of(b"\x30\x03\x30\x01").is_none());
        assert!(spki_of(b"").is_none());
    }
}
