//! The engine's public API types: what callers give (a [`Source`] of [`Request`]s,
//! a [`Config`]) and what they get back (callbacks on a [`Handler`], one
//! [`Outcome`] per request).
//!
//! Invariants: every request pulled from the source gets exactly one
//! [`Handler::on_done`] (one cancelled by `Config::stop`, by `Engine::cancel` or by
//! [`BodyAction::Abort`] with [`crate::error::ErrorKind::Cancelled`]); `on_head` and
//! `on_body` (through `on_body_action`) are only called for the final response (not
//! for redirects that are followed), never while its body is paused, and never after
//! `on_done`.

use crate::codec::response::FieldSpan;
use crate::codec::Limits;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Method, headers and body shared by many requests (one allocation for a whole run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// Method token (`GET`, `HEAD`, `POST`, ...).
    pub method: String,
    /// User headers, in order; each replaces a default header of the same name (one
    /// with an empty value is not sent: it only removes that default).
    pub headers: Vec<(String, String)>,
    /// Request body (sent with Content-Length when not empty).
    pub body: Vec<u8>,
    /// A streamed request body (instead of `body`): sent with `Content-Length` when
    /// its source declares a length, else with chunked transfer coding. See
    /// [`crate::body::Stream`].
    pub stream: Option<crate::body::Stream>,
    /// Send `Expect: 100-continue` with a body (`body` or `stream`), and the body only
    /// after the server's `100 Continue` (or after [`CONTINUE_WAIT`] without an
    /// answer, as RFC 9110 §10.1.1 allows). A final response instead means the body
    /// is never sent, and the connection is not reused.
    pub expect_continue: bool,
    /// Per-request settings over the engine's `Config` (timeouts, redirects, body
    /// cap); `None` uses the `Config` as it is.
    pub overrides: Option<Arc<super::Overrides>>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
            expect_continue: false,
            overrides: None,
        }
    }
}

/// How long a request with `Expect: 100-continue` waits for the `100 Continue`
/// before sending its body anyway.
pub const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// One request to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// Caller's identifier, handed back in every callback.
    pub tag: u64,
    /// The URL as given (a missing scheme means `http://`); parsed by the engine, so
    /// an unusable one still yields an outcome (`invalid_url`).
    pub url: String,
    /// Method, headers and body.
    pub spec: Arc<RequestSpec>,
}

/// Where requests come from: the engine pulls the next one only when it has room
/// for it, so a source of any length needs no memory up front.
pub trait Source {
    /// The next request, or `None` when there are no more (for now: the engine asks
    /// again after a request finishes, so a source may return `None` while it waits).
    fn next_request(&mut self) -> Option<Request>;
    /// True once the source will never return another request. Asked only after
    /// `next_request` returned `None`; a source that may still produce requests
    /// (a stream waiting for input) answers false, and the engine asks again later.
    /// Required (no default): a wrong default would end a streaming source early.
    fn is_exhausted(&self) -> bool;
}

impl<I: Iterator<Item = Request>> Source for std::iter::Fuse<I> {
    fn next_request(&mut self) -> Option<Request> {
        self.next()
    }

    /// A fused iterator that returned `None` never returns anything else.
    fn is_exhausted(&self) -> bool {
        true
    }
}

/// A response head as handed to [`Handler::on_head`].
#[derive(Debug)]
pub struct ResponseHead<'a> {
    /// Status code.
    pub status: u16,
    /// The URL this response answers.
    pub url: &'a str,
    /// Content-Length, if sent.
    pub content_length: Option<u64>,
    pub(crate) fields: &'a [FieldSpan],
    pub(crate) buf: &'a [u8],
}

impl<'a> ResponseHead<'a> {
    /// Header fields in the order received, as raw bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        let buf = self.buf;
        self.fields
            .iter()
            .map(move |f| (&buf[f.name.clone()], &buf[f.value.clone()]))
    }

    /// Header fields as owned text (invalid UTF-8 replaced), in the order received.
    pub fn headers_owned(&self) -> Vec<(String, String)> {
        self.headers()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    /// The status line as received (`HTTP/1.1 200 OK`, without its line end). The
    /// head buffer may begin with interim (1xx) heads: the first head whose status
    /// code is this response's is the final one (an interim code is never final,
    /// except 101, which no interim head carries).
    pub fn status_line(&self) -> &'a [u8] {
        let mut rest = self.buf;
        loop {
            while let Some(r) = rest.strip_prefix(b"\r\n").or(rest.strip_prefix(b"\n")) {
                rest = r;
            }
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                return &[];
            };
            let line = &rest[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let code = line.splitn(3, |&b| b == b' ').nth(1);
            let digits = |c: &[u8]| {
                c.iter().try_fold(0u16, |n, &d| {
                    d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0'))
                })
            };
            if code.is_some_and(|c| c.len() == 3 && digits(c) == Some(self.status)) {
                return line;
            }
            // Past this head: its blank line.
            let mut at = end + 1;
            loop {
                let Some(e) = rest[at..].iter().position(|&b| b == b'\n') else {
                    return &[];
                };
                let l = &rest[at..at + e];
                at += e + 1;
                if l.is_empty() || l == b"\r" {
                    break;
                }
            }
            rest = &rest[at..];
        }
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

mod outcome;
pub use outcome::{Outcome, Redirect, Timings, TlsInfo};

/// What the handler wants after a body chunk ([`Handler::on_body_action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAction {
    /// Keep reading.
    Continue,
    /// Stop reading from the socket until [`Engine::resume`](super::Engine::resume)
    /// with this tag (the kernel's receive window then slows the peer). The read
    /// deadline does not run while paused; the total deadline does. Body bytes that
    /// arrived with this chunk are handed on after the resume.
    Pause,
    /// Stop reading and end the request now: its `Outcome` has the error kind
    /// [`crate::error::ErrorKind::Cancelled`], with the bytes counted so far; the
    /// connection is closed (its unread rest cannot be reused).
    Abort,
}

/// Callbacks for responses. Only `on_done` is required.
pub trait Handler {
    /// The final response's head arrived.
    fn on_head(&mut self, _tag: u64, _head: &ResponseHead<'_>) {}
    /// A chunk of the final response's body (after content decoding).
    fn on_body(&mut self, _tag: u64, _chunk: &[u8]) {}
    /// A chunk of the final response's body, with a say in what comes next. The
    /// engine calls this one; its default hands the chunk to [`Handler::on_body`] and
    /// continues. Override it (instead of `on_body`) to abort a body.
    fn on_body_action(&mut self, tag: u64, chunk: &[u8]) -> BodyAction {
        self.on_body(tag, chunk);
        BodyAction::Continue
    }
    /// The request is finished, successfully or not.
    fn on_done(&mut self, outcome: Outcome);
}

/// Engine settings. `Default` gives the contract's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Connections per scheme/host/port at most (0 = no limit), in all engines that
    /// share `shared` together.
    pub per_host: usize,
    /// New requests per second at most (0 = no limit), in all engines that share
    /// `shared` together (the first engine's figure sets the pace).
    pub rate: f64,
    /// Resolution + TCP connect + TLS handshake of one connection.
    pub connect_timeout: Duration,
    /// Longest silence from the peer (or stalled write) once the request is under way.
    pub read_timeout: Duration,
    /// The whole attempt, redirects included (`None` = no limit).
    pub total_timeout: Option<Duration>,
    /// Retries after retryable failures.
    pub retries: u32,
    /// First retry backoff; doubles each retry, plus jitter.
    pub retry_backoff: Duration,
    /// Politeness adapts per host (`--no-adapt` turns it off): a 429 or 503, or a
    /// run of timeouts, pauses that host and halves its concurrency, which grows
    /// back with successes (see `docs/politeness.md`).
    pub adapt: bool,
    /// The longest `Retry-After` waited for (`--max-retry-after`): a longer one is
    /// not retried (the result is that response), and a host's pause is never
    /// longer.
    pub max_retry_after: Duration,
    /// New requests per second to each scheme/host/port (0 = no limit), in all
    /// engines that share `shared` together.
    pub rate_per_host: f64,
    /// Follow redirects.
    pub follow: bool,
    /// Most redirects followed.
    pub max_redirects: u32,
    /// Send `Authorization` and `Cookie` on redirect hops to other schemes, hosts or
    /// ports too (curl's `--location-trusted`); by default they are dropped there.
    pub location_trusted: bool,
    /// Most decoded body bytes read per response.
    pub max_body: u64,
    /// Keep connections alive and reuse them.
    pub keepalive: bool,
    /// Requests outstanding per keep-alive connection at most (`--pipeline`; 1 = no
    /// pipelining). Only GET, HEAD and OPTIONS without a body are pipelined.
    pub pipeline: usize,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Pinned addresses: (host, port, address), like curl's `--resolve`.
    pub resolve: Vec<(String, u16, IpAddr)>,
    /// Send every connection to this Unix domain socket (`--unix-socket`); URLs still
    /// give the Host header, TLS server name and pool key. No name resolution and no
    /// address policy apply.
    pub unix_socket: Option<Arc<std::path::PathBuf>>,
    /// Send everything through this HTTP proxy: plain requests in absolute form,
    /// https through a CONNECT tunnel.
    pub proxy: Option<Proxy>,
    /// DNS servers to ask over UDP from the event loop (`--dns-server`), replacing
    /// the nameservers of `resolv_conf`.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Path of resolv.conf (`/etc/resolv.conf`): nameservers, search, ndots, timeout,
    /// attempts, rotate for the stub resolver in the event loop. `None`: none read.
    pub resolv_conf: Option<std::path::PathBuf>,
    /// Path of the hosts file (`/etc/hosts`).
    pub hosts_file: Option<std::path::PathBuf>,
    /// New DNS queries per second at most (`--dns-rate`; 0 = no cap).
    pub dns_rate: f64,
    /// DNS queries in flight at most (0 = twice the concurrency, at least 512).
    pub dns_in_flight: usize,
    /// Names the DNS cache holds (0 = the default, 65,536).
    pub dns_cache: usize,
    /// When no nameserver is usable, ask the system resolver (on helper threads);
    /// when false, such names fail with `dns` (tests use this to be sure no query
    /// leaves loopback).
    pub system_resolver: bool,
    /// Idle keep-alive connections kept across all hosts at most (0 = the
    /// concurrency); past it the one idle longest is closed.
    pub max_idle: usize,
    /// Tasks waiting outside a concurrency slot (retry backoff, a paused or
    /// throttled host) at most (0 = ten times the concurrency); while full, no new
    /// request is taken from the source.
    pub max_parked: usize,
    /// Response head limits.
    pub limits: Limits,
    /// `--allow` / `--deny`: checked after resolution, before any connection, on
    /// every hop; a target left with no permitted address is `denied`. With a
    /// `proxy`, the target is judged (its name resolved locally first: the local
    /// resolver sees it) and every address it has must be permitted; the proxy's
    /// own address is not judged, and a denied target sends nothing to it.
    pub addresses: crate::cidr::AddressPolicy,
    /// TLS client configuration shared by all https connections (see
    /// [`crate::tls::client_config`]); `None` = verify against the built-in web roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// State shared with other engines built from clones of this `Config` (the
    /// binary's workers): `rate` and `per_host` are totals across them. A fresh one
    /// per `Config::default()`; give engines that must not share a
    /// `Shared::new()` each.
    pub shared: super::Shared,
    /// When it turns true (say from a signal handler), `run` returns at once and
    /// `step` starts nothing new: every request in flight then gets its one `on_done`
    /// with [`crate::error::ErrorKind::Cancelled`] (at the end of the turn that saw
    /// the flag), so "exactly one `on_done` per request pulled" holds.
    pub stop: Option<Arc<AtomicBool>>,
    /// Report the final connection's peer address ([`Outcome::peer`]).
    pub peer_info: bool,
    /// Keep the final response's header fields on the `Outcome` ([`Outcome::headers`]).
    pub keep_headers: bool,
    /// A cookie jar (off by default): every response head's `Set-Cookie` (redirect
    /// hops included) is stored, and each request sends the cookies that apply to
    /// it. Cloning the `Config` shares the jar, so the engines of a run share it.
    pub cookies: Option<Arc<std::sync::Mutex<crate::cookie::Jar>>>,
    /// Report the final connection's TLS details ([`Outcome::tls`]).
    pub tls_info: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            concurrency: 100,
            per_host: 0,
            rate: 0.0,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            total_timeout: Some(Duration::from_secs(30)),
            retries: 1,
            retry_backoff: Duration::from_millis(200),
            adapt: true,
            max_retry_after: Duration::from_secs(60),
            rate_per_host: 0.0,
            follow: false,
            max_redirects: 10,
            location_trusted: false,
            max_body: 1 << 20,
            keepalive: true,
            pipeline: 1,
            idle_timeout: Duration::from_secs(30),
            resolve: Vec::new(),
            unix_socket: None,
            proxy: None,
            dns_servers: Vec::new(),
            resolv_conf: Some("/etc/resolv.conf".into()),
            hosts_file: Some("/etc/hosts".into()),
            dns_rate: 0.0,
            dns_in_flight: 0,
            dns_cache: 0,
            system_resolver: true,
            max_idle: 0,
            max_parked: 0,
            limits: Limits::default(),
            addresses: crate::cidr::AddressPolicy::default(),
            tls: None,
            shared: super::Shared::new(),
            stop: None,
            peer_info: false,
            keep_headers: false,
            cookies: None,
            tls_info: false,
        }
    }
}

/// An HTTP proxy (`--proxy http://[USER:PASS@]HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or IP address (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic …`) when the URL carries credentials.
    pub auth: Option<String>,
}

impl Proxy {
    /// Parses `http://[USER:PASS@]HOST[:PORT]`; the port defaults to 1080, as curl's.
    ///
    /// ```
    /// let p = volley::engine::Proxy::parse("http://u:p%40ss@127.0.0.1:3128").unwrap();
    /// assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
    /// assert_eq!(p.auth.as_deref(), Some("Basic dTpwQHNz"));
    /// ```
    pub fn parse(s: &str) -> Result<Proxy, String> {
        let err = |why: &str| format!("--proxy {s:?}: {why}");
        let u = url::Url::parse(s).map_err(|e| err(&e.to_string()))?;
        if u.scheme() != "http" {
            return Err(err("only http:// proxies are supported"));
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(err("no host")),
        };
        let decode = |x: &str| {
            url::form_urlencoded::parse(format!("x={}", x.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let auth = (!u.username().is_empty()).then(|| {
            let creds = format!(
                "{}:{}",
                decode(u.username()),
                decode(u.password().unwrap_or(""))
            );
            format!("Basic {}", crate::text::base64(creds.as_bytes()))
        });
        Ok(Proxy {
            host,
            port: u.port().unwrap_or(1080),
            auth,
        })
    }
}

/// Wakes the engine from another thread (for sources that wait for input).
#[derive(Debug, Clone)]
pub struct Notifier(pub(crate) std::sync::Arc<mio::Waker>);

impl Notifier {
    /// Makes the engine run a loop turn (and ask its source again) soon.
    pub fn notify(&self) {
        let _ = self.0.wake();
    }
}

/// Counters the engine keeps, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests pulled from the source.
    pub started: u64,
    /// Requests finished (`on_done` called).
    pub done: u64,
    /// Of those, finished with an error.
    pub errors: u64,
    /// Connections opened.
    pub connections: u64,
    /// Requests in flight now.
    pub active: usize,
    /// Requests waiting outside a slot now (retry backoff, a paused or throttled
    /// host).
    pub parked: usize,
    /// Idle keep-alive connections now (over all hosts).
    pub idle: usize,
}
