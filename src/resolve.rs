//! Name resolution that never blocks the event loop's thread.
//!
//! Order: IP literals; pinned `--resolve` entries; the hosts file (read once at
//! start); a positive cache; then either the UDP stub resolver in the event loop
//! (with `--dns-server`, see [`crate::dns::stub`]) or the system resolver on a small
//! pool of helper threads, whose answers come back through a channel and wake the
//! loop with a mio `Waker`. Concurrent lookups of one name are coalesced into one.
//!
//! Invariants: `lookup` returns at once; every `Pending` lookup is answered exactly
//! once through `poll_done` (waiters whose request gave up meanwhile are the
//! caller's to ignore); answers are cached for [`CACHE_TTL`].

use crate::error::{Error, ErrorKind};
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a system answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
const THREADS: usize = 4;

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
    /// Asked of the system resolver; the answer comes through `poll_done`.
    Pending,
    /// Failed now.
    Failed(DnsError),
}

type Answer = (String, Result<Addrs, DnsError>);

/// A finished lookup as [`Resolver::poll_done`] reports it: (waiter, name, answer).
pub type Answered = (usize, Arc<str>, Result<Addrs, DnsError>);

/// The resolver; see the module docs.
pub struct Resolver {
    pins: HashMap<(String, u16), Addrs>,
    hosts: HashMap<String, Addrs>,
    cache: HashMap<String, (Addrs, Instant)>,
    waiting: HashMap<String, Vec<usize>>,
    jobs: Option<Sender<String>>,
    answers: Receiver<Answer>,
    answer_tx: Sender<Answer>,
    job_rx: Arc<Mutex<Receiver<String>>>,
    threads: usize,
    waker: Arc<mio::Waker>,
    stub: Option<crate::dns::stub::Stub>,
    settled: Vec<crate::dns::stub::Settled>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("pins", &self.pins.len())
            .finish()
    }
}

/// Parses a hosts file's text into name → addresses (names lower-cased).
pub fn parse_hosts(text: &str) -> HashMap<String, Addrs> {
    let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            let v = map.entry(name.to_ascii_lowercase()).or_default();
            if !v.contains(&addr) {
                v.push(addr);
            }
        }
    }
    map.into_iter().map(|(k, v)| (k, v.into())).collect()
}

fn system_lookup(host: &str) -> Result<Addrs, DnsError> {
    match (host, 0u16).to_socket_addrs() {
        Ok(it) => {
            let mut v: Vec<IpAddr> = Vec::new();
            for a in it {
                if !v.contains(&a.ip()) {
                    v.push(a.ip());
                }
            }
            if v.is_empty() {
                Err(DnsError {
                    error: Error::new(ErrorKind::Dns, format!("{host}: no addresses")),
                    temporary: false,
                })
            } else {
                Ok(v.into())
            }
        }
        Err(e) => {
            let msg = e.to_string();
            Err(DnsError {
                temporary: msg.contains("Temporary") || msg.contains("try again"),
                error: Error::new(ErrorKind::Dns, format!("{host}: {msg}")),
            })
        }
    }
}

impl Resolver {
    /// A resolver with `--resolve` pins and the hosts file at `hosts_file`; answers
    /// from helper threads wake `waker`.
    pub fn new(
        pins: &[(String, u16, IpAddr)],
        hosts_file: Option<&Path>,
        waker: Arc<mio::Waker>,
    ) -> Resolver {
        let mut pin_map: HashMap<(String, u16), Vec<IpAddr>> = HashMap::new();
        for (h, p, a) in pins {
            pin_map
                .entry((h.to_ascii_lowercase(), *p))
                .or_default()
                .push(*a);
        }
        let hosts = hosts_file
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_hosts(&t))
            .unwrap_or_default();
        let (job_tx, job_rx) = channel::<String>();
        let (answer_tx, answers) = channel::<Answer>();
        Resolver {
            pins: pin_map.into_iter().map(|(k, v)| (k, v.into())).collect(),
            hosts,
            cache: HashMap::new(),
            waiting: HashMap::new(),
            jobs: Some(job_tx),
            answers,
            answer_tx,
            job_rx: Arc::new(Mutex::new(job_rx)),
            threads: 0,
            waker,
            stub: None,
            settled: Vec::new(),
        }
    }

    /// Sends lookups to these DNS servers over UDP from the event loop instead of the
    /// system resolver (`--dns-server`).
    pub fn use_servers(
        &mut self,
        servers: &[std::net::SocketAddr],
        registry: &mio::Registry,
        tokens: [mio::Token; 2],
    ) -> std::io::Result<()> {
        if !servers.is_empty() {
            self.stub = Some(crate::dns::stub::Stub::new(
                servers.to_vec(),
                registry,
                tokens,
            )?);
        }
        Ok(())
    }

    /// True when `t` is a token of the stub resolver's sockets.
    pub fn owns(&self, t: mio::Token) -> bool {
        self.stub.as_ref().is_some_and(|s| s.owns(t))
    }

    /// The stub resolver's sockets are readable.
    pub fn on_readable(&mut self) {
        if let Some(s) = self.stub.as_mut() {
            s.on_readable(&mut self.settled);
        }
    }

    /// Retransmits and timeouts of the stub resolver.
    pub fn on_time(&mut self, now: Instant) {
        if let Some(s) = self.stub.as_mut() {
            s.on_time(now, &mut self.settled);
        }
    }

    /// When the stub resolver next needs the loop to wake.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.stub.as_ref().and_then(|s| s.next_deadline())
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
            return Lookup::Ready(a.clone());
        }
        if let Some((a, exp)) = self.cache.get(host) {
            if *exp > now {
                return Lookup::Ready(a.clone());
            }
        }
        if let Some(w) = self.waiting.get_mut(host) {
            w.push(waiter);
            return Lookup::Pending;
        }
        if let Some(stub) = self.stub.as_mut() {
            self.waiting.insert(host.to_string(), vec![waiter]);
            stub.start(host, now, &mut self.settled);
            return Lookup::Pending;
        }
        self.spawn_helper();
        match &self.jobs {
            Some(tx) if tx.send(host.to_string()).is_ok() => {
                self.waiting.insert(host.to_string(), vec![waiter]);
                Lookup::Pending
            }
            _ => Lookup::Failed(DnsError {
                error: Error::new(ErrorKind::Dns, "resolver threads unavailable"),
                temporary: true,
            }),
        }
    }

    fn spawn_helper(&mut self) {
        if self.threads >= THREADS || self.threads > self.waiting.len() {
            return;
        }
        let rx = self.job_rx.clone();
        let tx = self.answer_tx.clone();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("volley-dns".into())
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(host) = job else { return };
                let answer = system_lookup(&host);
                if tx.send((host, answer)).is_err() {
                    return;
                }
                let _ = waker.wake();
            });
        if spawned.is_ok() {
            self.threads += 1;
        }
    }

    /// Moves finished lookups to `out` as (waiter, name, answer). The name lets a
    /// caller whose waiter ids are reused check that the answer is still for it.
    pub fn poll_done(&mut self, now: Instant, out: &mut Vec<Answered>) {
        for (host, r) in std::mem::take(&mut self.settled) {
            let answer = match r {
                Ok((addrs, ttl)) => {
                    let a: Addrs = addrs.into();
                    let ttl = Duration::from_secs(u64::from(ttl)).min(CACHE_TTL);
                    self.cache.insert(host.clone(), (a.clone(), now + ttl));
                    Ok(a)
                }
                Err((error, temporary)) => Err(DnsError { error, temporary }),
            };
            let waiters = self.waiting.remove(&host).unwrap_or_default();
            let host: Arc<str> = Arc::from(host);
            for w in waiters {
                out.push((w, host.clone(), answer.clone()));
            }
        }
        while let Ok((host, answer)) = self.answers.try_recv() {
            if let Ok(a) = &answer {
                self.cache
                    .insert(host.clone(), (a.clone(), now + CACHE_TTL));
            }
            let waiters = self.waiting.remove(&host).unwrap_or_default();
            let host: Arc<str> = Arc::from(host);
            for w in waiters {
                out.push((w, host.clone(), answer.clone()));
            }
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // Closing the job channel ends the helper threads after their current lookup.
        self.jobs = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let m = parse_hosts(
            "127.0.0.1 localhost Loc2 # comment\n::1 localhost\n# x\nbad line\n10.0.0.1\n",
        );
        assert_eq!(
            &m["localhost"][..],
            &[
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(m["loc2"].len(), 1);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn literals_pins_hosts() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let mut r = Resolver::new(
            &[("pinned.test".into(), 80, "127.0.0.9".parse().unwrap())],
            None,
            waker,
        );
        let now = Instant::now();
        assert!(matches!(r.lookup("::1", 80, 0, now), Lookup::Ready(a) if a.len() == 1));
        assert!(
            matches!(r.lookup("pinned.test", 80, 0, now), Lookup::Ready(a) if a[0].to_string() == "127.0.0.9")
        );
    }
}
