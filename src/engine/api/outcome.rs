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
///
/// Its three URLs are read through [`Outcome::input`], [`Outcome::url`] and
/// [`Outcome::final_url`]: it keeps the request's own string, and the other two only
/// when they differ from it. `Debug` and `==` go by what the three read, not by how
/// they are kept.
#[derive(Clone)]
pub struct Outcome {
    /// The request's tag.
    pub tag: u64,
    /// The URL as the request gave it ([`Outcome::input`]).
    input: String,
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
    /// Peer address of the final connection (with [`Config::peer_info`](super::Config::peer_info); `None`
    /// otherwise, and over a Unix socket).
    pub peer: Option<std::net::SocketAddr>,
    /// TLS details of the final connection (with [`Config::tls_info`](super::Config::tls_info), for https).
    pub tls: Option<Arc<TlsInfo>>,
    /// The final response's header fields, in order (with [`Config::keep_headers`](super::Config::keep_headers)).
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
        self.set_url_texts(Some(url), Some(final_url));
        self
    }

    /// The URL as the request gave it (trimmed when it was not a usable URL).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Absolute URL of the first request (the input when it was not a valid URL).
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(&self.input)
    }

    /// URL of the last request made (the first's, without redirects).
    pub fn final_url(&self) -> &str {
        self.final_url.as_deref().unwrap_or_else(|| self.url())
    }

    /// Sets the first and final URLs (`None`: the same as the input, resp. the
    /// first); one equal to what it would otherwise read is dropped, so equal
    /// outcomes keep equal fields.
    pub(crate) fn set_url_texts(&mut self, url: Option<String>, final_url: Option<String>) {
        self.url = url.filter(|u| *u != self.input);
        self.final_url = None;
        self.final_url = final_url.filter(|f| f != self.url());
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("tag", &self.tag)
            .field("input", &self.input)
            .field("url", &self.url())
            .field("final_url", &self.final_url())
            .field("status", &self.status)
            .field("error", &self.error)
            .field("content_length", &self.content_length)
            .field("bytes", &self.bytes)
            .field("capped", &self.capped)
            .field("location", &self.location)
            .field("redirects", &self.redirects)
            .field("timings", &self.timings)
            .field("attempts", &self.attempts)
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("headers", &self.headers)
            .finish()
    }
}

impl PartialEq for Outcome {
    fn eq(&self, o: &Outcome) -> bool {
        self.tag == o.tag
            && self.input == o.input
            && self.url() == o.url()
            && self.final_url() == o.final_url()
            && self.status == o.status
            && self.error == o.error
            && self.content_length == o.content_length
            && self.bytes == o.bytes
            && self.capped == o.capped
            && self.location == o.location
            && self.redirects == o.redirects
            && self.timings == o.timings
            && self.attempts == o.attempts
            && self.peer == o.peer
            && self.tls == o.tls
            && self.headers == o.headers
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

#[cfg(test)]
mod tests {
    use super::Outcome;

    /// URLs read the same whether kept or implied; `==` and `Debug` go by what they
    /// read.
    #[test]
    fn urls_read_the_same_however_kept() {
        let plain = Outcome::new(1, "http://h/a".into());
        let same = Outcome::new(1, "http://h/a".into())
            .with_urls("http://h/a".into(), "http://h/a".into());
        assert_eq!(plain, same);
        assert_eq!(
            (same.input(), same.url(), same.final_url()),
            ("http://h/a", "http://h/a", "http://h/a")
        );
        let moved =
            Outcome::new(1, "h/a".into()).with_urls("http://h/a".into(), "http://h/b".into());
        assert_eq!(
            (moved.input(), moved.url(), moved.final_url()),
            ("h/a", "http://h/a", "http://h/b")
        );
        assert_ne!(plain, moved);
        let d = format!("{plain:?}");
        assert!(
            d.contains("url: \"http://h/a\"") && d.contains("final_url: \"http://h/a\""),
            "{d}"
        );
        let mut engine_kept = Outcome::new(1, "http://h/a".into());
        engine_kept.set_url_texts(Some("http://h/a".into()), None);
        assert_eq!(
            engine_kept.url, None,
            "a first URL equal to the input is not kept"
        );
    }
}
