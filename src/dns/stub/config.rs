//! The stub resolver's settings: defaults, and what resolv.conf overrides.
//!
//! Invariants: none beyond the types; [`super::Stub`] clamps what it must (in-flight
//! cap to the ID space, at least one attempt, socket and connection).

use crate::dns::conf::ResolvConf;
use std::net::SocketAddr;
use std::time::Duration;

/// Default wait before a query is sent again (to the next server).
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Default rounds over the server list before a query counts as timed out.
pub const TRIES: u32 = 3;

/// How the stub behaves; [`StubConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct StubConfig {
    /// Servers to ask (at least one).
    pub servers: Vec<SocketAddr>,
    /// Wait for an answer before sending again.
    pub timeout: Duration,
    /// Rounds over the server list (sends per query = attempts × servers).
    pub attempts: u32,
    /// Start successive queries at successive servers.
    pub rotate: bool,
    /// Search domains ([`crate::dns::conf::names_to_try`]).
    pub search: Vec<String>,
    /// Dots that make a name be tried as given first.
    pub ndots: u8,
    /// Queries in flight at most (1..=65,536: the ID space).
    pub max_in_flight: usize,
    /// Queries started per second at most (`--dns-rate`); `None`: no cap.
    pub rate: Option<f64>,
    /// UDP sockets per address family.
    pub sockets: usize,
    /// Queries a UDP socket carries before it is replaced (new random port).
    pub socket_reuse: u32,
    /// TCP connections (truncated answers) at once.
    pub tcp_max: usize,
    /// Names the cache holds (0: no cache).
    pub cache_size: usize,
    /// Longest time a positive answer is cached.
    pub max_ttl: Duration,
    /// Longest time a negative answer is cached.
    pub max_negative_ttl: Duration,
}

impl StubConfig {
    /// Defaults for these servers.
    pub fn new(servers: Vec<SocketAddr>) -> StubConfig {
        StubConfig {
            servers,
            timeout: QUERY_TIMEOUT,
            attempts: TRIES,
            rotate: false,
            search: Vec::new(),
            ndots: 1,
            max_in_flight: 512,
            rate: None,
            sockets: 8,
            socket_reuse: 256,
            tcp_max: 16,
            cache_size: crate::dns::cache::DEFAULT_CAPACITY,
            max_ttl: Duration::from_secs(3600),
            max_negative_ttl: Duration::from_secs(300),
        }
    }

    /// Defaults overridden by what resolv.conf says (servers, search, ndots,
    /// timeout, attempts, rotate).
    pub fn from_resolv_conf(c: &ResolvConf) -> StubConfig {
        let mut s = StubConfig::new(c.servers.clone());
        s.search = c.search.clone();
        s.ndots = c.ndots;
        s.timeout = c.timeout.unwrap_or(s.timeout);
        s.attempts = c.attempts.unwrap_or(s.attempts);
        s.rotate = c.rotate;
        s
    }

    /// Tokens [`super::Stub::with_config`] uses (UDP sockets of both families, TCP).
    pub fn tokens_needed(&self) -> usize {
        2 * self.sockets.max(1) + self.tcp_max.max(1)
    }
}

/// What the stub has done, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StubStats {
    /// UDP queries sent (retransmissions included).
    pub sent: u64,
    /// Of those, retransmissions.
    pub retransmitted: u64,
    /// Replies dropped: unknown ID, wrong socket or source, wrong question, malformed.
    pub ignored: u64,
    /// Queries retried over TCP after a truncated answer.
    pub tcp: u64,
}
