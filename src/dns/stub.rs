//! An asynchronous DNS stub resolver driven by the engine's event loop: no thread
//! blocks on a lookup, and the caller passes the current time in.
//!
//! For each name it asks A and AAAA together (for each name the search list gives,
//! in turn, until one exists), sends each query from a pooled UDP socket with a random
//! source port (`dns::pool`), retransmits after the timeout to the next server
//! (with `rotate`, successive queries also start at successive servers), retries over
//! TCP when an answer is truncated (`dns::tcp`), follows CNAME chains inside the
//! answer, and reports each name once: its addresses (IPv4 first) and TTL, or a `dns`
//! error that says whether a retry could help. Answers — positive, and negative ones
//! by their SOA minimum (capped) — are kept in a bounded cache ([`super::cache`]).
//!
//! Invariants: query IDs and source ports come from the OS CSPRNG
//! ([`crate::rng::SecureRandom`]) and IDs are unique among queries in flight; a reply
//! is accepted only on the socket its query went out on, from a server that query was
//! sent to, with its ID and its question (anything else is ignored and the query keeps
//! waiting); at most `max_in_flight` queries are in flight and `rate` started per
//! second, the rest wait in a FIFO queue — never a spin, never a loss: every started
//! name is reported exactly once.

use super::cache::{Cache, Cached};
use super::conf::names_to_try;
use super::message::{encode_query, TYPE_A, TYPE_AAAA};
use super::pool::{Batch, Pool};
use super::tcp::TcpQuery;
use crate::error::{Error, ErrorKind};
use crate::rng::SecureRandom;
use mio::{Registry, Token};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod config;
mod replies;
mod settle;
pub use config::{StubConfig, StubStats, QUERY_TIMEOUT, TRIES};
use settle::{Outcome, RC_INVALID, RC_NO_RANDOM, RC_TIMED_OUT};

/// A finished name: addresses and TTL, or the error and whether it is temporary.
pub type Settled = (String, Result<(Vec<IpAddr>, u32), (Error, bool)>);

/// How sockets map to tokens.
#[derive(Debug, Clone, Copy)]
enum Tokens {
    /// Everything IPv4 on the first, IPv6 on the second ([`Stub::new`]).
    Shared([Token; 2]),
    /// Distinct tokens `first, first - 1, ...` ([`Stub::with_config`]).
    Span { first: usize, count: usize },
}

#[derive(Debug)]
struct Query {
    key: Arc<str>,
    qname: Arc<str>,
    qtype: u16,
    first_server: usize,
    sends: u32,
    /// Bit `i`: sent to server `i` (servers beyond 64 share bits).
    sent_to: u64,
    slot: usize,
    tcp: bool,
    seq: u64,
}

#[derive(Debug)]
struct Queued {
    key: Arc<str>,
    qname: Arc<str>,
    qtype: u16,
}

#[derive(Debug)]
struct Name {
    candidates: Vec<Arc<str>>,
    idx: usize,
    v4: Option<Outcome>,
    v6: Option<Outcome>,
}

/// The stub resolver; see the module docs.
#[derive(Debug)]
pub struct Stub {
    cfg: StubConfig,
    tokens: Tokens,
    registry: Registry,
    pool: Pool,
    tcp: Vec<Option<TcpQuery>>,
    tcp_wait: VecDeque<(u16, SocketAddr)>,
    queries: HashMap<u16, Query>,
    /// (deadline, id, seq) in send order: deadlines never decrease.
    timers: VecDeque<(Instant, u16, u64)>,
    seq: u64,
    queue: VecDeque<Queued>,
    names: HashMap<Arc<str>, Name>,
    cache: Cache,
    rand: SecureRandom,
    next_server: usize,
    bucket: f64,
    bucket_at: Option<Instant>,
    buf: Vec<u8>,
    /// Buffers for batched UDP reads.
    batch: Box<Batch>,
    stats: StubStats,
}

impl Stub {
    /// A resolver asking `servers` with the default configuration; its sockets
    /// register with `tokens` (IPv4, IPv6), one UDP socket per family.
    pub fn new(
        servers: Vec<SocketAddr>,
        registry: &Registry,
        tokens: [Token; 2],
    ) -> io::Result<Stub> {
        let mut cfg = StubConfig::new(servers);
        cfg.sockets = 1;
        Stub::build(cfg, registry, Tokens::Shared(tokens))
    }

    /// A resolver with `cfg`; its sockets register with the tokens `first`,
    /// `first - 1`, … (`cfg.tokens_needed()` of them).
    pub fn with_config(cfg: StubConfig, registry: &Registry, first: Token) -> io::Result<Stub> {
        let count = cfg.tokens_needed();
        if first.0 < count {
            return Err(io::Error::other("token range below zero"));
        }
        Stub::build(
            cfg,
            registry,
            Tokens::Span {
                first: first.0,
                count,
            },
        )
    }

    fn build(mut cfg: StubConfig, registry: &Registry, tokens: Tokens) -> io::Result<Stub> {
        if cfg.servers.is_empty() {
            return Err(io::Error::other("no DNS server"));
        }
        cfg.max_in_flight = cfg.max_in_flight.clamp(1, 1 << 16);
        cfg.rate = cfg.rate.filter(|r| r.is_finite() && *r > 0.0);
        let hour = Duration::from_secs(3600);
        cfg.timeout = cfg.timeout.clamp(Duration::from_millis(1), hour);
        cfg.max_ttl = cfg.max_ttl.min(24 * hour);
        cfg.max_negative_ttl = cfg.max_negative_ttl.min(24 * hour);
        cfg.attempts = cfg.attempts.max(1);
        cfg.tcp_max = cfg.tcp_max.max(1);
        cfg.sockets = cfg.sockets.max(1);
        let mut rand = SecureRandom::new();
        let families = [
            cfg.servers.iter().any(SocketAddr::is_ipv4),
            cfg.servers.iter().any(SocketAddr::is_ipv6),
        ];
        let per = cfg.sockets;
        let udp_token = |i: usize, v6: bool| match tokens {
            Tokens::Shared(t) => t[usize::from(v6)],
            Tokens::Span { first, .. } => Token(first - i),
        };
        let pool = Pool::new(
            per,
            families,
            cfg.socket_reuse,
            udp_token,
            registry,
            &mut rand,
        )?;
        let bucket = cfg.rate.map_or(0.0, burst);
        Ok(Stub {
            tcp: (0..cfg.tcp_max).map(|_| None).collect(),
            cache: Cache::new(cfg.cache_size),
            cfg,
            tokens,
            registry: registry.try_clone()?,
            pool,
            tcp_wait: VecDeque::new(),
            queries: HashMap::new(),
            timers: VecDeque::new(),
            seq: 0,
            queue: VecDeque::new(),
            names: HashMap::new(),
            rand,
            next_server: 0,
            bucket,
            bucket_at: None,
            buf: vec![0u8; 1 << 16],
            batch: Box::new(Batch::new()),
            stats: StubStats::default(),
        })
    }

    fn tcp_token(&self, j: usize, server: SocketAddr) -> Token {
        match self.tokens {
            Tokens::Shared(t) => t[usize::from(server.is_ipv6())],
            Tokens::Span { first, .. } => Token(first - 2 * self.cfg.sockets - j),
        }
    }

    /// True when `t` is one of this resolver's tokens.
    pub fn owns(&self, t: Token) -> bool {
        match self.tokens {
            Tokens::Shared(ts) => ts.contains(&t),
            Tokens::Span { first, count } => t.0 <= first && t.0 > first - count,
        }
    }

    /// Queries in flight (UDP and TCP).
    pub fn in_flight(&self) -> usize {
        self.queries.len()
    }

    /// Queries waiting for room in flight or for the rate cap.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Names being resolved.
    pub fn names_pending(&self) -> usize {
        self.names.len()
    }

    /// Counters since the start.
    pub fn stats(&self) -> StubStats {
        self.stats
    }

    /// The cache (read-only: for sizes and tests).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The source ports of the UDP sockets now open (for tests).
    pub fn source_ports(&self) -> Vec<u16> {
        (0..self.pool.len())
            .filter_map(|i| self.pool.local_port(i))
            .collect()
    }

    /// Starts resolving `name` (a no-op when it is already under way). A cached
    /// answer is reported into `settled` at once.
    pub fn start(&mut self, name: &str, now: Instant, settled: &mut Vec<Settled>) {
        if self.names.contains_key(name) {
            return;
        }
        if let Some((c, expires)) = self.cache.get(name, now) {
            let ttl = expires.saturating_duration_since(now).as_secs() as u32;
            let r = match c {
                Cached::Addrs(a) => Ok((a.to_vec(), ttl)),
                Cached::Negative(d) => Err((Error::new(ErrorKind::Dns, d.to_string()), false)),
            };
            settled.push((name.to_string(), r));
            return;
        }
        let candidates: Vec<Arc<str>> = names_to_try(name, &self.cfg.search, self.cfg.ndots)
            .into_iter()
            .map(Arc::from)
            .collect();
        let key: Arc<str> = Arc::from(name);
        let first = candidates[0].clone();
        self.names.insert(
            key.clone(),
            Name {
                candidates,
                idx: 0,
                v4: None,
                v6: None,
            },
        );
        self.enqueue(&key, &first);
        self.pump(now, settled);
    }

    fn enqueue(&mut self, key: &Arc<str>, qname: &Arc<str>) {
        for qtype in [TYPE_A, TYPE_AAAA] {
            self.queue.push_back(Queued {
                key: key.clone(),
                qname: qname.clone(),
                qtype,
            });
        }
    }

    /// Starts queued queries while there is room in flight and rate to spend.
    /// Every public call that changes state ends here, leaving the timers' front live.
    fn pump(&mut self, now: Instant, settled: &mut Vec<Settled>) {
        while !self.queue.is_empty() && self.queries.len() < self.cfg.max_in_flight {
            if !self.take_rate_token(now) {
                break;
            }
            let q = self.queue.pop_front().expect("not empty");
            self.launch(q, now, settled);
        }
        self.compact_timers();
    }

    fn take_rate_token(&mut self, now: Instant) -> bool {
        let Some(rate) = self.cfg.rate else {
            return true;
        };
        if let Some(at) = self.bucket_at {
            let add = now.saturating_duration_since(at).as_secs_f64() * rate;
            self.bucket = (self.bucket + add).min(burst(rate));
        }
        self.bucket_at = Some(now);
        if self.bucket >= 1.0 {
            self.bucket -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the rate cap allows the next query.
    fn rate_deadline(&self) -> Option<Instant> {
        let rate = self.cfg.rate?;
        if self.queue.is_empty() || self.queries.len() >= self.cfg.max_in_flight {
            return None;
        }
        let at = self.bucket_at?;
        let wait = ((1.0 - self.bucket).max(0.0) / rate).min(3600.0);
        Some(at + Duration::from_secs_f64(wait))
    }

    /// A fresh ID, unique among queries in flight.
    fn alloc_id(&mut self) -> Option<u16> {
        if self.queries.len() >= 1 << 16 {
            return None;
        }
        for _ in 0..16 {
            let id = self.rand.u16().ok()?;
            if !self.queries.contains_key(&id) {
                return Some(id);
            }
        }
        let start = self.rand.u16().ok()?;
        (0..=u16::MAX)
            .map(|k| start.wrapping_add(k))
            .find(|id| !self.queries.contains_key(id))
    }

    fn launch(&mut self, q: Queued, now: Instant, settled: &mut Vec<Settled>) {
        let Some(id) = self.alloc_id() else {
            self.finish_type(
                &q.key,
                &q.qname,
                q.qtype,
                Outcome::fail(RC_NO_RANDOM),
                now,
                settled,
            );
            return;
        };
        let n = self.cfg.servers.len();
        let first_server = if self.cfg.rotate {
            self.next_server = (self.next_server + 1) % n;
            self.next_server
        } else {
            0
        };
        self.queries.insert(
            id,
            Query {
                key: q.key,
                qname: q.qname,
                qtype: q.qtype,
                first_server,
                sends: 0,
                sent_to: 0,
                slot: usize::MAX,
                tcp: false,
                seq: 0,
            },
        );
        self.send(id, now, settled);
    }

    /// Sends query `id` to its next server (its first send picks a socket).
    fn send(&mut self, id: u16, now: Instant, settled: &mut Vec<Settled>) {
        let n = self.cfg.servers.len();
        let q = self.queries.get_mut(&id).expect("in flight");
        let server_i = (q.first_server + q.sends as usize) % n;
        let server = self.cfg.servers[server_i];
        let mut msg = Vec::with_capacity(64);
        if encode_query(id, &q.qname, q.qtype, &mut msg).is_err() {
            self.end_query(id, Outcome::fail(RC_INVALID), now, settled);
            return;
        }
        if q.slot != usize::MAX && self.pool.is_v6(q.slot) != server.is_ipv6() {
            // The next server is of the other family: a socket of that family.
            self.pool.release(q.slot, &self.registry, &mut self.rand);
            q.slot = usize::MAX;
        }
        if q.slot == usize::MAX {
            match self.pool.pick(server.is_ipv6(), &mut self.rand) {
                Some(s) => {
                    q.slot = s;
                    self.pool.assign(s);
                }
                None => {
                    self.end_query(id, Outcome::fail(RC_TIMED_OUT), now, settled);
                    return;
                }
            }
        }
        q.sends += 1;
        self.stats.sent += 1;
        if q.sends > 1 {
            self.stats.retransmitted += 1;
        }
        q.sent_to |= 1 << (server_i % 64);
        self.seq += 1;
        q.seq = self.seq;
        self.timers
            .push_back((now + self.cfg.timeout, id, self.seq));
        // A failed send (no route, buffer full) is left to the retransmit timer.
        let _ = self.pool.send(q.slot, &msg, server);
        self.compact_timers();
    }

    /// Drops stale timer entries once they outnumber live queries.
    fn compact_timers(&mut self) {
        // Stale entries at the front go at once (so the front is the next deadline).
        while let Some(&(_, id, seq)) = self.timers.front() {
            if self.queries.get(&id).is_some_and(|q| q.seq == seq) {
                break;
            }
            self.timers.pop_front();
        }
        if self.timers.len() > 4 * self.queries.len() + 1024 {
            let queries = &self.queries;
            self.timers
                .retain(|(_, id, seq)| queries.get(id).is_some_and(|q| q.seq == *seq));
        }
    }

    /// Retransmits or gives up on queries whose time has come; starts queued ones.
    pub fn on_time(&mut self, now: Instant, settled: &mut Vec<Settled>) {
        while let Some(&(at, id, seq)) = self.timers.front() {
            if at > now {
                break;
            }
            self.timers.pop_front();
            let Some(q) = self.queries.get(&id).filter(|q| q.seq == seq) else {
                continue;
            };
            let more = q.sends < self.cfg.attempts * self.cfg.servers.len() as u32;
            if !q.tcp && more {
                self.send(id, now, settled);
            } else {
                self.end_query(id, Outcome::fail(RC_TIMED_OUT), now, settled);
            }
        }
        self.pump(now, settled);
    }

    /// The next retransmission, give-up or rate-cap time.
    pub fn next_deadline(&self) -> Option<Instant> {
        // The front is live after every public call (see `compact_timers`).
        let timer = self.timers.front().map(|t| t.0);
        match (timer, self.rate_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends query `id` (freeing its socket or connection) with `outcome`.
    fn end_query(&mut self, id: u16, outcome: Outcome, now: Instant, settled: &mut Vec<Settled>) {
        let Some(q) = self.queries.remove(&id) else {
            return;
        };
        if q.slot != usize::MAX {
            self.pool.release(q.slot, &self.registry, &mut self.rand);
        }
        if q.tcp {
            if let Some(j) = self
                .tcp
                .iter()
                .position(|t| t.as_ref().is_some_and(|t| t.id == id))
            {
                if let Some(t) = self.tcp[j].take() {
                    t.close(&self.registry);
                }
            }
            self.tcp_wait.retain(|(w, _)| *w != id);
            self.start_tcp(now, settled);
        }
        self.finish_type(&q.key, &q.qname, q.qtype, outcome, now, settled);
    }
}

/// The rate bucket's size: a tenth of a second's worth, at least one query.
fn burst(rate: f64) -> f64 {
    (rate / 10.0).max(1.0)
}
