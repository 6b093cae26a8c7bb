//! An asynchronous DNS stub resolver over UDP, driven by the engine's event loop:
//! no thread blocks on a lookup.
//!
//! For each name it sends an A and an AAAA query to the first server, retransmits
//! after [`QUERY_TIMEOUT`] to the next server (round robin), up to [`TRIES`] sends per
//! query, and reports once both queries are settled: the addresses (IPv4 first) and
//! the smallest TTL, or a `dns` error that says whether a retry could help (server
//! failure and timeouts could; "no such name" and "no addresses" could not).
//!
//! Invariants: a reply is accepted only from the server the query went to, with the
//! query's ID and question (see [`super::message::parse_answer`]); IDs are random and
//! unique among queries in flight; every started name is reported exactly once.

use super::message::{encode_query, parse_answer, TYPE_A, TYPE_AAAA};
use crate::error::{Error, ErrorKind};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long one query waits before it is sent again (to the next server).
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Sends per query before it counts as timed out.
pub const TRIES: u32 = 3;

/// A finished name: addresses and TTL, or the error and whether it is temporary.
pub type Settled = (String, Result<(Vec<IpAddr>, u32), (Error, bool)>);

#[derive(Debug)]
struct Query {
    name: String,
    qtype: u16,
    server: usize,
    sent: u32,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct Name {
    v4: Option<Result<(Vec<IpAddr>, u32), u8>>,
    v6: Option<Result<(Vec<IpAddr>, u32), u8>>,
}

/// Pseudo-rcode for "no answer in time".
const TIMED_OUT: u8 = 0xff;

/// The stub resolver; see the module docs.
#[derive(Debug)]
pub struct Stub {
    servers: Vec<SocketAddr>,
    socks: [Option<UdpSocket>; 2],
    tokens: [Token; 2],
    queries: HashMap<u16, Query>,
    names: HashMap<String, Name>,
    rng: u64,
    buf: Vec<u8>,
}

impl Stub {
    /// A resolver asking `servers`; its sockets register with `tokens` (IPv4, IPv6).
    pub fn new(
        servers: Vec<SocketAddr>,
        registry: &Registry,
        tokens: [Token; 2],
    ) -> io::Result<Stub> {
        let mut socks = [None, None];
        for (i, unspecified) in ["0.0.0.0:0", "[::]:0"].iter().enumerate() {
            if servers.iter().any(|s| s.is_ipv4() == (i == 0)) {
                let mut s = UdpSocket::bind(unspecified.parse().expect("literal"))?;
                registry.register(&mut s, tokens[i], Interest::READABLE)?;
                socks[i] = Some(s);
            }
        }
        let seed =
            Instant::now().elapsed().subsec_nanos() as u64 ^ (std::process::id() as u64) << 20;
        Ok(Stub {
            servers,
            socks,
            tokens,
            queries: HashMap::new(),
            names: HashMap::new(),
            rng: seed | 1,
            buf: vec![0u8; 4096],
        })
    }

    /// True when `t` is one of this resolver's sockets.
    pub fn owns(&self, t: Token) -> bool {
        self.tokens.contains(&t)
    }

    fn random_id(&mut self) -> u16 {
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let id = (self.rng >> 24) as u16;
            if !self.queries.contains_key(&id) {
                return id;
            }
        }
    }

    /// Starts resolving `name` (a no-op when it is already under way).
    pub fn start(&mut self, name: &str, now: Instant, settled: &mut Vec<Settled>) {
        if self.names.contains_key(name) {
            return;
        }
        self.names.insert(name.to_string(), Name::default());
        for qtype in [TYPE_A, TYPE_AAAA] {
            let id = self.random_id();
            self.queries.insert(
                id,
                Query {
                    name: name.to_string(),
                    qtype,
                    server: 0,
                    sent: 0,
                    deadline: now,
                },
            );
            self.send(id, now, settled);
        }
    }

    fn send(&mut self, id: u16, now: Instant, settled: &mut Vec<Settled>) {
        let Some(q) = self.queries.get_mut(&id) else {
            return;
        };
        let server = self.servers[q.server % self.servers.len()];
        q.sent += 1;
        q.deadline = now + QUERY_TIMEOUT;
        let mut msg = Vec::with_capacity(64);
        if encode_query(id, &q.name, q.qtype, &mut msg).is_err() {
            let (name, qtype) = (q.name.clone(), q.qtype);
            self.queries.remove(&id);
            self.settle(&name, qtype, Err(3), settled);
            return;
        }
        let sock = self.socks[usize::from(server.is_ipv6())]
            .as_ref()
            .expect("socket per family");
        // A failed send (no route, buffer full) is left to the retransmit timer.
        let _ = sock.send_to(&msg, server);
    }

    /// Reads every reply waiting on the sockets.
    pub fn on_readable(&mut self, settled: &mut Vec<Settled>) {
        for fam in 0..2 {
            let mut errors = 0;
            while let Some(sock) = self.socks[fam].as_ref() {
                let (n, from) = match sock.recv_from(&mut self.buf) {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors (port unreachable) surface here once each; the
                    // retransmit timer deals with them. A persistent error stops the
                    // loop rather than spinning.
                    Err(_) if errors < 16 => {
                        errors += 1;
                        continue;
                    }
                    Err(_) => break,
                };
                if n < 2 {
                    continue;
                }
                let id = u16::from_be_bytes([self.buf[0], self.buf[1]]);
                let Some(q) = self.queries.get(&id) else {
                    continue;
                };
                if from != self.servers[q.server % self.servers.len()] {
                    continue;
                }
                let Ok(a) = parse_answer(&self.buf[..n], id, &q.name, q.qtype) else {
                    continue;
                };
                let q = self.queries.remove(&id).expect("present");
                let outcome = match a.rcode {
                    0 => Ok((a.addrs, a.ttl)),
                    r => Err(r),
                };
                self.settle(&q.name, q.qtype, outcome, settled);
            }
        }
    }

    /// Retransmits or gives up on queries whose time has come.
    pub fn on_time(&mut self, now: Instant, settled: &mut Vec<Settled>) {
        let due: Vec<u16> = self
            .queries
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let q = self.queries.get_mut(&id).expect("present");
            if q.sent >= TRIES {
                let q = self.queries.remove(&id).expect("present");
                self.settle(&q.name, q.qtype, Err(TIMED_OUT), settled);
            } else {
                q.server += 1;
                self.send(id, now, settled);
            }
        }
    }

    /// The next retransmission or give-up time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queries.values().map(|q| q.deadline).min()
    }

    fn settle(
        &mut self,
        name: &str,
        qtype: u16,
        r: Result<(Vec<IpAddr>, u32), u8>,
        settled: &mut Vec<Settled>,
    ) {
        let Some(entry) = self.names.get_mut(name) else {
            return;
        };
        if qtype == TYPE_A {
            entry.v4 = Some(r);
        } else {
            entry.v6 = Some(r);
        }
        let (Some(v4), Some(v6)) = (&entry.v4, &entry.v6) else {
            return;
        };
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        for (a, t) in [v4, v6].into_iter().flatten() {
            addrs.extend_from_slice(a);
            if !a.is_empty() {
                ttl = ttl.min(*t);
            }
        }
        let result = if !addrs.is_empty() {
            Ok((addrs, ttl))
        } else {
            let codes = [v4, v6].map(|r| r.as_ref().err().copied());
            let (detail, temporary) = if codes.contains(&Some(TIMED_OUT)) {
                ("no answer from the DNS server in time", true)
            } else if codes.contains(&Some(2)) {
                ("DNS server failure (SERVFAIL)", true)
            } else if codes.contains(&Some(3)) {
                ("no such name (NXDOMAIN)", false)
            } else if codes.iter().all(Option::is_none) {
                ("the name has no addresses", false)
            } else {
                ("the DNS server refused or could not answer", true)
            };
            Err((
                Error::new(ErrorKind::Dns, format!("{name}: {detail}")),
                temporary,
            ))
        };
        self.names.remove(name);
        settled.push((name.to_string(), result));
    }
}
