//! Name resolution that never blocks the event loop's thread.
//!
//! Order: IP literals; pinned `--resolve` entries; the hosts file (read once at
//! start, [`crate::dns::conf::Hosts`]); then the UDP stub resolver in the event loop
//! ([`crate::dns::stub`], the default: its servers from resolv.conf, or
//! `--dns-server`; it keeps its own bounded cache, positive and negative). Only when
//! no nameserver is usable (none configured, or the stub's sockets cannot be opened)
//! does the system resolver answer, on a few helper threads ([`system`]), its
//! answers kept in a bounded cache of their own. Concurrent lookups of one name are
//! coalesced into one.
//!
//! Invariants: `lookup` returns at once; every `Pending` lookup is answered exactly
//! once through `poll_done` unless its waiter was withdrawn by [`Resolver::cancel`];
//! the waiting list holds only waiters not withdrawn (so it is bounded by the
//! requests in flight), and a name nobody waits for any more is not looked up by the
//! system fallback; memory is bounded by configuration: the caches by their
//! capacity, the fallback's queue by its cap.

use crate::dns::cache::{Cache, Cached};
use crate::dns::conf::{Hosts, ResolvConf};
use crate::dns::stub::{Settled, Stub, StubConfig};
use crate::error::{Error, ErrorKind};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod system;

/// How long a system-resolver answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Addresses of one name.
pub type Addrs = Arc<[IpAddr]>;

/// A resolution failure; `temporary` when it may succeed if retried.
#[derive(Debug, Clone)]
pub struct DnsError {
    /// The `dns` error.
    pub error: Error,
    /// A temporary failure (server failure, timeout), worth a retry.
    pub temporary: bool,
}

/// The answer to [`Resolver::lookup`].
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Known now.
    Ready(Addrs),
    /// Asked; the answer comes through `poll_done`.
    Pending,
    /// Failed now.
    Failed(DnsError),
}

/// A finished lookup as [`Resolver::poll_done`] reports it: (waiter, name, answer).
pub type Answered = (usize, Arc<str>, Result<Addrs, DnsError>);

/// What the resolver is built from (the engine's configuration, per worker).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Pinned addresses: (host, port, address).
    pub pins: Vec<(String, u16, IpAddr)>,
    /// The hosts file (`None`: none).
    pub hosts_file: Option<PathBuf>,
    /// resolv.conf (`None`: none; its servers, search list and options).
    pub resolv_conf: Option<PathBuf>,
    /// Servers replacing resolv.conf's (`--dns-server`).
    pub servers: Vec<SocketAddr>,
    /// New queries per second at most (0: no cap).
    pub rate: f64,
    /// Queries in flight at most (0: the stub's default).
    pub max_in_flight: usize,
    /// Names each cache holds (0: the default).
    pub cache_size: usize,
    /// Fall back to the system resolver when no nameserver is usable (else such
    /// lookups fail).
    pub system_fallback: bool,
    /// Names the system fallback's queue holds at most.
    pub system_queue: usize,
}

/// Where names go when neither a pin nor the hosts file knows them.
#[derive(Debug)]
enum Backend {
    Stub(Box<Stub>),
    System(system::System, Cache),
    /// No nameserver, and the fallback is off: the reason.
    None(Arc<str>),
}

/// The resolver; see the module docs.
pub struct Resolver {
    pins: HashMap<(String, u16), Addrs>,
    hosts: Hosts,
    backend: Backend,
    waiting: HashMap<String, Vec<usize>>,
    settled: Vec<Settled>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("pins", &self.pins.len())
            .field("hosts", &self.hosts.len())
            .field("backend", &self.describe())
            .finish()
    }
}

impl Resolver {
    /// A resolver from `s`. The stub's sockets register with `registry` under the
    /// tokens `first`, `first − 1`, … (`StubConfig::tokens_needed` of them); the
    /// system fallback's answers wake `waker`. Never fails: what cannot be used is
    /// replaced by the next choice (an unreadable file reads as empty).
    pub fn new(
        s: &Settings,
        registry: &mio::Registry,
        first: mio::Token,
        waker: Arc<mio::Waker>,
    ) -> Resolver {
        let mut pin_map: HashMap<(String, u16), Vec<IpAddr>> = HashMap::new();
        for (h, p, a) in &s.pins {
            pin_map
                .entry((h.to_ascii_lowercase(), *p))
                .or_default()
                .push(*a);
        }
        let hosts = s
            .hosts_file
            .as_deref()
            .and_then(|p| Hosts::load(p).ok())
            .unwrap_or_default();
        let rc = s
            .resolv_conf
            .as_deref()
            .and_then(|p| ResolvConf::load(p).ok())
            .unwrap_or_default();
        let mut cfg = StubConfig::from_resolv_conf(&rc);
        if !s.servers.is_empty() {
            cfg.servers = s.servers.clone();
        }
        if s.rate > 0.0 {
            cfg.rate = Some(s.rate);
        }
        if s.max_in_flight > 0 {
            cfg.max_in_flight = s.max_in_flight;
        }
        if s.cache_size > 0 {
            cfg.cache_size = s.cache_size;
        }
        let cache_size = cfg.cache_size;
        let why: Arc<str> = if cfg.servers.is_empty() {
            Arc::from("no nameserver configured")
        } else {
            match Stub::with_config(cfg, registry, first) {
                Ok(stub) => {
                    return Resolver::with(pin_map, hosts, Backend::Stub(Box::new(stub)));
                }
                Err(e) => Arc::from(format!("the nameservers are not usable: {e}")),
            }
        };
        let backend = if s.system_fallback {
            Backend::System(
                system::System::new(s.system_queue, waker),
                Cache::new(cache_size),
            )
        } else {
            Backend::None(why)
        };
        Resolver::with(pin_map, hosts, backend)
    }

    fn with(pins: HashMap<(String, u16), Vec<IpAddr>>, hosts: Hosts, backend: Backend) -> Self {
        Resolver {
            pins: pins.into_iter().map(|(k, v)| (k, v.into())).collect(),
            hosts,
            backend,
            waiting: HashMap::new(),
            settled: Vec::new(),
        }
    }

    /// What answers names: the stub, the system fallback, or nothing.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Stub(_) => "stub resolver in the event loop".into(),
            Backend::System(..) => "system resolver (no nameserver usable)".into(),
            Backend::None(why) => format!("none ({why})"),
        }
    }

    /// True when the in-loop stub resolver answers names.
    #[cfg(test)]
    pub fn is_stub(&self) -> bool {
        matches!(self.backend, Backend::Stub(_))
    }

    /// True when `t` is a token of the stub resolver's sockets.
    pub fn owns(&self, t: mio::Token) -> bool {
        matches!(&self.backend, Backend::Stub(s) if s.owns(t))
    }

    /// Readiness on one of the stub resolver's sockets.
    pub fn on_ready(&mut self, t: mio::Token, now: Instant) {
        if let Backend::Stub(s) = &mut self.backend {
            s.on_ready(t, now, &mut self.settled);
        }
    }

    /// Retransmits and timeouts of the stub resolver.
    pub fn on_time(&mut self, now: Instant) {
        if let Backend::Stub(s) = &mut self.backend {
            s.on_time(now, &mut self.settled);
        }
    }

    /// When the resolver next needs the loop to wake (now, when answers wait).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if !self.settled.is_empty() {
            return Some(now);
        }
        match &self.backend {
            Backend::Stub(s) => s.next_deadline(),
            _ => None,
        }
    }

    /// Looks `host` up for a connection to `port`; `waiter` is handed back by
    /// `poll_done` when the answer is not known now.
    pub fn lookup(&mut self, host: &str, port: u16, waiter: usize, now: Instant) -> Lookup {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Lookup::Ready(Arc::from([ip]));
        }
        if let Some(a) = self.pins.get(&(host.to_string(), port)) {
            return Lookup::Ready(a.clone());
        }
        if let Some(a) = self.hosts.get(host) {
            return Lookup::Ready(Arc::from(a));
        }
        if let Some(w) = self.waiting.get_mut(host) {
            w.push(waiter);
            return Lookup::Pending;
        }
        match &mut self.backend {
            Backend::Stub(stub) => {
                stub.start(host, now, &mut self.settled);
                // A cached answer is reported at once.
                if let Some(i) = self.settled.iter().position(|(n, _)| n == host) {
                    let (_, r) = self.settled.swap_remove(i);
                    return match r {
                        Ok((addrs, _)) => Lookup::Ready(addrs.into()),
                        Err((error, temporary)) => Lookup::Failed(DnsError { error, temporary }),
                    };
                }
            }
            Backend::System(sys, cache) => {
                if let Some((Cached::Addrs(a), _)) = cache.get(host, now) {
                    return Lookup::Ready(a.clone());
                }
                if !sys.ask(host) {
                    return Lookup::Failed(DnsError {
                        error: Error::new(
                            ErrorKind::Dns,
                            format!("{host}: the system resolver's queue is full"),
                        ),
                        temporary: true,
                    });
                }
            }
            Backend::None(why) => {
                return Lookup::Failed(DnsError {
                    error: Error::new(ErrorKind::Dns, format!("{host}: {why}")),
                    temporary: false,
                })
            }
        }
        self.waiting.insert(host.to_string(), vec![waiter]);
        Lookup::Pending
    }

    /// `waiter` no longer wants `host` (its request ended or moved on). When nobody
    /// else does, the system fallback skips the lookup if it has not begun.
    pub fn cancel(&mut self, host: &str, waiter: usize) {
        let Some(w) = self.waiting.get_mut(host) else {
            return;
        };
        w.retain(|&x| x != waiter);
        if w.is_empty() {
            self.waiting.remove(host);
            if let Backend::System(sys, _) = &mut self.backend {
                sys.forget(host);
            }
        }
    }

    /// Names being looked up (with at least one waiter).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.waiting.len()
    }

    /// Moves finished lookups to `out` as (waiter, name, answer). The name lets a
    /// caller whose waiter ids are reused check that the answer is still for it.
    pub fn poll_done(&mut self, now: Instant, out: &mut Vec<Answered>) {
        for (host, r) in std::mem::take(&mut self.settled) {
            let answer = match r {
                Ok((addrs, _)) => Ok(addrs.into()),
                Err((error, temporary)) => Err(DnsError { error, temporary }),
            };
            self.deliver(host, answer, out);
        }
        if let Backend::System(sys, _) = &self.backend {
            let mut got = Vec::new();
            while let Some(a) = sys.try_answer() {
                got.push(a);
            }
            for (host, answer) in got {
                if let (Ok(a), Backend::System(_, cache)) = (&answer, &mut self.backend) {
                    cache.insert(&host, Cached::Addrs(a.clone()), now + CACHE_TTL);
                }
                self.deliver(host, answer, out);
            }
        }
    }

    fn deliver(&mut self, host: String, answer: Result<Addrs, DnsError>, out: &mut Vec<Answered>) {
        let Some(waiters) = self.waiting.remove(&host) else {
            return;
        };
        let host: Arc<str> = Arc::from(host);
        for w in waiters {
            out.push((w, host.clone(), answer.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(s: &Settings) -> (mio::Poll, Resolver) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let r = Resolver::new(s, poll.registry(), mio::Token(usize::MAX - 1), waker);
        (poll, r)
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("volley-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn literals_pins_hosts_before_anything_else() {
        let hosts = temp_file("hosts", "127.0.0.7 Listed.test\n");
        let (_p, mut r) = resolver(&Settings {
            pins: vec![("pinned.test".into(), 80, "127.0.0.9".parse().unwrap())],
            hosts_file: Some(hosts.clone()),
            ..Settings::default()
        });
        let now = Instant::now();
        assert!(matches!(r.lookup("::1", 80, 0, now), Lookup::Ready(a) if a.len() == 1));
        assert!(
            matches!(r.lookup("pinned.test", 80, 0, now), Lookup::Ready(a) if a[0].to_string() == "127.0.0.9")
        );
        assert!(
            matches!(r.lookup("listed.test", 80, 0, now), Lookup::Ready(a) if a[0].to_string() == "127.0.0.7")
        );
        // No nameserver and no fallback: a name fails at once, permanently.
        assert!(!r.is_stub());
        match r.lookup("other.test", 80, 0, now) {
            Lookup::Failed(e) => {
                assert!(!e.temporary);
                assert!(e.error.detail.contains("no nameserver"), "{e:?}");
            }
            l => panic!("{l:?}"),
        }
        let _ = std::fs::remove_file(hosts);
    }

    #[test]
    fn resolv_conf_servers_make_the_stub_and_dns_server_replaces_them() {
        let rc = temp_file("resolv", "nameserver 127.0.0.1\noptions ndots:2\n");
        let (_p, r) = resolver(&Settings {
            resolv_conf: Some(rc.clone()),
            ..Settings::default()
        });
        assert!(r.is_stub(), "{}", r.describe());
        let empty = temp_file("resolv-empty", "# nothing\n");
        let (_p, r) = resolver(&Settings {
            resolv_conf: Some(empty.clone()),
            servers: vec!["127.0.0.1:5353".parse().unwrap()],
            ..Settings::default()
        });
        assert!(r.is_stub());
        let (_p, r) = resolver(&Settings {
            resolv_conf: Some(empty.clone()),
            system_fallback: true,
            system_queue: 4,
            ..Settings::default()
        });
        assert!(r.describe().starts_with("system"), "{}", r.describe());
        let _ = std::fs::remove_file(rc);
        let _ = std::fs::remove_file(empty);
    }

    #[test]
    fn cancelled_waiters_are_forgotten() {
        // A stub whose server (a bound, silent socket) never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (_p, mut r) = resolver(&Settings {
            servers: vec![silent.local_addr().unwrap()],
            ..Settings::default()
        });
        let now = Instant::now();
        assert!(matches!(r.lookup("a.test", 80, 1, now), Lookup::Pending));
        assert!(matches!(r.lookup("a.test", 80, 2, now), Lookup::Pending));
        assert_eq!(r.pending(), 1);
        r.cancel("a.test", 1);
        assert_eq!(r.pending(), 1);
        r.cancel("a.test", 2);
        assert_eq!(r.pending(), 0, "nobody waits: the name is dropped");
    }
}
