//! What the engine hands back for each request: the [`Outcome`] (status or error,
//! URLs, sizes, redirects followed), its phase [`Timings`], and the connection's
//! [`TlsInfo`].
//!
//! Invariant: an `Outcome` keeps the request's URL string as `input`, and its first
//! and final URLs only when they differ from it (a normalised or redirected URL), so
//! making one costs no copy of a URL; [`Outcome::url`] and [`Outcome::final_url`]
//! answer either way.

use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;

/// How long each phase of the last attempt took; `None` for phases that did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Name resolution.
    pub dns: Option<Duration>,
    /// TCP connect.
    pub connect: Option<Duration>,
    /// TLS handshake.
    pub tls: Option<Duration>,
    /// From the request's first byte sent to the response's first byte.
    pub ttfb: Option<Duration>,
    /// The whole attempt.
    pub total: Option<Duration>,
}

/// One redirect that was followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The URL that answered with a redirect.
    pub url: String,
    /// Its status.
    pub status: u16,
    /// Where it sent the request: its `Location`, resolved against `url`.
    pub location: String,
}

/// The final result of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The request's tag.
    pub tag: u64,
    /// The URL as the request gave it.
    pub input: String,
    /// The first request's absolute URL when it is not `input` itself
    /// ([`Outcome::url`]); `None` spares a copy of the usual, already absolute input.
    url: Option<String>,
    /// The last request's URL when it is not the first's ([`Outcome::final_url`]).
    final_url: Option<String>,
    /// Status of the final response, if one arrived.
    pub status: Option<u16>,
    /// The error, if the request failed.
    pub error: Option<Error>,
    /// Content-Length of the final response, if sent.
    pub content_length: Option<u64>,
    /// Body bytes received after content decoding, up to the body cap.
    pub bytes: u64,
    /// The body exceeded the cap (reading stopped there).
    pub capped: bool,
    /// Resolved Location of a 3xx that was not followed.
    pub location: Option<String>,
    /// Redirects followed, in order.
    pub redirects: Vec<Redirect>,
    /// Phase timings of the last attempt.
    pub timings: Timings,
    /// Attempts made (1 when not retried).
    pub attempts: u32,
    /// Peer address of the final connection (with [`Config::peer_info`]; `None`
    /// otherwise, and over a Unix socket).
    pub peer: Option<std::net::SocketAddr>,
    /// TLS details of the final connection (with [`Config::tls_info`], for https).
    pub tls: Option<Arc<TlsInfo>>,
    /// The final response's header fields, in order (with [`Config::keep_headers`]).
    pub headers: Option<Vec<(String, String)>>,
}

impl Outcome {
    /// An outcome for the request `tag` with URL `input`, before anything happened:
    /// no status, no error, no bytes, no attempt; its URLs are the input (see
    /// [`Outcome::with_urls`]). For tests and adapters that make outcomes of their
    /// own; the engine fills in the rest.
    pub fn new(tag: u64, input: String) -> Outcome {
        Outcome {
            tag,
            input,
            url: None,
            final_url: None,
            status: None,
            error: None,
            content_length: None,
            bytes: 0,
            capped: false,
            location: None,
            redirects: Vec::new(),
            timings: Timings::default(),
            attempts: 0,
            peer: None,
            tls: None,
            headers: None,
        }
    }

    /// The same outcome with its first and final URLs set (each kept only when it
    /// differs from what it would otherwise be).
    pub fn with_urls(mut self, url: String, final_url: String) -> Outcome {
        self.final_url = (final_url != url).then_some(final_url);
        self.url = (url != self.input).then_some(url);
        self
    }

    /// Absolute URL of the first request (the input when it was not a valid URL).
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(&self.input)
    }

    /// URL of the last request made (the first's, without redirects).
    pub fn final_url(&self) -> &str {
        self.final_url.as_deref().unwrap_or_else(|| self.url())
    }

    pub(crate) fn set_url_texts(&mut self, url: Option<String>, final_url: Option<String>) {
        self.url = url;
        self.final_url = final_url;
    }
}

/// What `--tls-info` reports of a connection: read once per connection, shared by
/// every outcome on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version (`TLSv1_3`).
    pub version: String,
    /// Cipher suite (`TLS13_AES_128_GCM_SHA256`).
    pub cipher: String,
    /// The peer's leaf certificate (DER), if it sent one.
    pub leaf: Option<Vec<u8>>,
}

impl TlsInfo {
    /// Reads it off a rustls connection whose handshake is done.
    pub(crate) fn of(c: &rustls::ClientConnection) -> TlsInfo {
        TlsInfo {
            version: c
                .protocol_version()
                .map_or_else(String::new, |v| format!("{v:?}")),
            cipher: c
                .negotiated_cipher_suite()
                .map_or_else(String::new, |s| format!("{:?}", s.suite())),
            leaf: c
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| cert.as_ref().to_vec()),
        }
    }

    /// The leaf certificate's subject CN, SANs, issuer, not-after and SPKI pin.
    pub fn certificate(&self) -> Option<crate::fingerprint::cert::CertInfo> {
        self.leaf
            .as_deref()
            .and_then(crate::fingerprint::cert::parse)
    }
}
