//! The stub resolver against fake DNS servers on loopback (UDP and TCP) written here:
//! A+AAAA, truncation → TCP, CNAME chains, NXDOMAIN cached, forged answers (ID,
//! source address, question) ignored, the ID space full (queued, not spinning),
//! search/ndots expansion, retransmission across servers, the in-flight and rate caps.
//! Each test waits for the state it needs (names settled), bounded by a generous
//! limit; nothing asserts on timing.

use mio::{Events, Poll, Token};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use volley::dns::stub::{Settled, Stub, StubConfig};

const A: u16 = 1;
const AAAA: u16 = 28;
const CNAME: u16 = 5;
const SOA: u16 = 6;

/// A query as the fake server saw it.
#[derive(Debug, Clone)]
struct Q {
    id: u16,
    name: String,
    qtype: u16,
    question: Vec<u8>,
}

fn parse_query(m: &[u8]) -> Option<Q> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *m.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(m.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*m.get(pos)?, *m.get(pos + 1)?]);
    Some(Q {
        id: u16::from_be_bytes([m[0], m[1]]),
        name: labels.join("."),
        qtype,
        question: m.get(12..pos + 4)?.to_vec(),
    })
}

fn wire(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A record: owner, type, rdata.
type Rr = (String, u16, Vec<u8>);

/// A response to `q` (flags: QR RD RA + `rcode`, `tc`), answers and authority.
fn response(q: &Q, id: u16, rcode: u8, tc: bool, an: &[Rr], ns: &[Rr]) -> Vec<u8> {
    let mut r = id.to_be_bytes().to_vec();
    r.push(0x81 | if tc { 0x02 } else { 0 });
    r.push(0x80 | rcode);
    for n in [1, an.len(), ns.len(), 0] {
        r.extend_from_slice(&(n as u16).to_be_bytes());
    }
    r.extend_from_slice(&q.question);
    for (owner, t, data) in an.iter().chain(ns) {
        r.extend(wire(owner));
        r.extend_from_slice(&t.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
    }
    r
}

fn soa_rr(zone: &str, minimum: u32) -> Rr {
    let mut v = wire("ns.test");
    v.extend(wire("admin.test"));
    for x in [1u32, 2, 3, 4, minimum] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    (zone.to_string(), SOA, v)
}

/// The address records of `q`'s type for `owner`: v4 `127.0.0.n`, v6 `::n`.
fn addr_rr(q: &Q, owner: &str, n: u8) -> Rr {
    if q.qtype == A {
        (owner.to_string(), A, vec![127, 0, 0, n])
    } else {
        let mut b = vec![0u8; 16];
        b[15] = n;
        (owner.to_string(), AAAA, b)
    }
}

/// A reply, sent from the server's socket or from another one (a forged source).
enum Reply {
    Udp(Vec<u8>),
    FromElsewhere(Vec<u8>),
}

type Handler = dyn Fn(&Q, bool) -> Vec<Reply> + Send + Sync;

/// A fake DNS server on 127.0.0.1: UDP and TCP on one port; `handler(query, tcp)`.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(Q, bool)>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(&Q, bool) -> Vec<Reply> + Send + Sync + 'static) -> Server {
        let handler: Arc<Handler> = Arc::new(handler);
        // UDP and TCP on the same port: retry until a port is free for both.
        let (udp, tcp) = loop {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(t) = TcpListener::bind(u.local_addr().unwrap()) {
                break (u, t);
            }
        };
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        {
            let (stop, seen, handler) = (stop.clone(), seen.clone(), handler.clone());
            let other = UdpSocket::bind("127.0.0.1:0").unwrap();
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some(q) = parse_query(&buf[..n]) else {
                        continue;
                    };
                    seen.lock().unwrap().push((q.clone(), false));
                    for r in handler(&q, false) {
                        let _ = match r {
                            Reply::Udp(m) => udp.send_to(&m, from),
                            Reply::FromElsewhere(m) => other.send_to(&m, from),
                        };
                    }
                }
            }));
        }
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            threads.push(std::thread::spawn(move || {
                for conn in tcp.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(mut s) = conn else { continue };
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut m).is_err() {
                        continue;
                    }
                    let Some(q) = parse_query(&m) else { continue };
                    seen.lock().unwrap().push((q.clone(), true));
                    for r in handler(&q, true) {
                        if let Reply::Udp(m) = r {
                            let mut out = (m.len() as u16).to_be_bytes().to_vec();
                            out.extend(m);
                            let _ = s.write_all(&out);
                        }
                    }
                }
            }));
        }
        Server {
            addr,
            stop,
            seen,
            threads,
        }
    }

    fn seen(&self) -> Vec<(Q, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Answers every name with `127.0.0.n` / `::n`, n from the name's length.
fn answer_all(q: &Q, _tcp: bool) -> Vec<Reply> {
    let n = (q.name.len() % 250) as u8 + 1;
    vec![Reply::Udp(response(
        q,
        q.id,
        0,
        false,
        &[addr_rr(q, &q.name, n)],
        &[],
    ))]
}

fn config(servers: &[SocketAddr]) -> StubConfig {
    let mut c = StubConfig::new(servers.to_vec());
    c.timeout = Duration::from_millis(200);
    c.attempts = 2;
    c
}

struct Driver {
    poll: Poll,
    events: Events,
    stub: Stub,
    settled: Vec<Settled>,
}

impl Driver {
    fn new(cfg: StubConfig) -> Driver {
        let poll = Poll::new().unwrap();
        let stub = Stub::with_config(cfg, poll.registry(), Token(1 << 20)).unwrap();
        Driver {
            poll,
            events: Events::with_capacity(256),
            stub,
            settled: Vec::new(),
        }
    }

    fn start(&mut self, name: &str) {
        self.stub.start(name, Instant::now(), &mut self.settled);
    }

    /// Runs the loop until `n` names have settled (at most 20 s).
    fn wait(&mut self, n: usize) -> &[Settled] {
        let limit = Instant::now() + Duration::from_secs(20);
        while self.settled.len() < n {
            assert!(
                Instant::now() < limit,
                "only {} of {n} settled",
                self.settled.len()
            );
            let now = Instant::now();
            let wait = self
                .stub
                .next_deadline()
                .map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            self.poll.poll(&mut self.events, Some(wait)).unwrap();
            let now = Instant::now();
            for e in self.events.iter() {
                assert!(self.stub.owns(e.token()));
                self.stub.on_ready(e.token(), now, &mut self.settled);
            }
            self.stub.on_time(now, &mut self.settled);
        }
        &self.settled
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn one(d: &mut Driver, name: &str) -> Result<(Vec<IpAddr>, u32), (volley::Error, bool)> {
    let before = d.settled.len();
    d.start(name);
    d.wait(before + 1);
    let (n, r) = d.settled[before].clone();
    assert_eq!(n, name);
    r
}

#[test]
fn a_and_aaaa_together() {
    let s = Server::start(answer_all);
    let mut d = Driver::new(config(&[s.addr]));
    let (addrs, ttl) = one(&mut d, "host.test").unwrap();
    assert_eq!(addrs, [ip("127.0.0.10"), ip("::a")]);
    assert_eq!(ttl, 60);
    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen.iter().map(|q| q.0.qtype).sum::<u16>(), A + AAAA);
    // Distinct random IDs.
    assert_ne!(seen[0].0.id, seen[1].0.id);
}

#[test]
fn truncated_answer_retried_over_tcp() {
    let s = Server::start(|q, tcp| {
        if tcp {
            vec![Reply::Udp(response(
                q,
                q.id,
                0,
                false,
                &[addr_rr(q, &q.name, 7)],
                &[],
            ))]
        } else {
            vec![Reply::Udp(response(q, q.id, 0, true, &[], &[]))]
        }
    });
    let mut d = Driver::new(config(&[s.addr]));
    let (addrs, _) = one(&mut d, "big.test").unwrap();
    assert_eq!(addrs, [ip("127.0.0.7"), ip("::7")]);
    let seen = s.seen();
    assert_eq!(seen.iter().filter(|(_, tcp)| *tcp).count(), 2, "{seen:?}");
    assert_eq!(d.stub.stats().tcp, 2);
}

#[test]
fn cname_chain_followed() {
    let s = Server::start(|q, _| {
        let an = vec![
            (q.name.clone(), CNAME, wire("mid.test")),
            ("mid.test".to_string(), CNAME, wire("end.test")),
            addr_rr(q, "elsewhere.test", 66),
            addr_rr(q, "end.test", 9),
        ];
        vec![Reply::Udp(response(q, q.id, 0, false, &an, &[]))]
    });
    let mut d = Driver::new(config(&[s.addr]));
    let (addrs, _) = one(&mut d, "www.alias.test").unwrap();
    assert_eq!(addrs, [ip("127.0.0.9"), ip("::9")]);
}

#[test]
fn nxdomain_is_cached() {
    let s = Server::start(|q, _| {
        vec![Reply::Udp(response(
            q,
            q.id,
            3,
            false,
            &[],
            &[soa_rr("test", 30)],
        ))]
    });
    let mut d = Driver::new(config(&[s.addr]));
    let (e, temporary) = one(&mut d, "missing.test").unwrap_err();
    assert!(!temporary);
    assert!(e.detail.contains("NXDOMAIN"), "{e}");
    assert_eq!(s.seen().len(), 2);
    // Asked again: answered from the cache at once, no query sent.
    let mut out = Vec::new();
    d.stub.start("missing.test", Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].1.as_ref().unwrap_err().0.detail.contains("NXDOMAIN"));
    assert_eq!(d.stub.in_flight() + d.stub.queued(), 0);
    assert_eq!(s.seen().len(), 2);
    assert_eq!(d.stub.cache().len(), 1);
}

#[test]
fn forged_answers_are_ignored() {
    // Each query gets, in order: a wrong ID, the right ID from another address, the
    // right ID for another question, then the real answer.
    let s = Server::start(|q, _| {
        let bad = |n| addr_rr(q, &q.name, n);
        let mut other_q = q.clone();
        other_q.question = {
            let mut v = wire("other.test");
            v.extend_from_slice(&q.question[q.question.len() - 4..]);
            v
        };
        vec![
            Reply::Udp(response(q, q.id ^ 1, 0, false, &[bad(66)], &[])),
            Reply::FromElsewhere(response(q, q.id, 0, false, &[bad(66)], &[])),
            Reply::Udp(response(
                &other_q,
                q.id,
                0,
                false,
                &[addr_rr(q, "other.test", 66)],
                &[],
            )),
            Reply::Udp(response(q, q.id, 0, false, &[bad(5)], &[])),
        ]
    });
    let mut d = Driver::new(config(&[s.addr]));
    let (addrs, _) = one(&mut d, "target.test").unwrap();
    assert_eq!(addrs, [ip("127.0.0.5"), ip("::5")]);
    // The three forgeries for each of the two queries were seen and dropped (the
    // last one may still be on its way when the answers settle the name).
    assert!(d.stub.stats().ignored >= 4, "{:?}", d.stub.stats());
}

#[test]
fn only_forged_answers_time_out() {
    let s = Server::start(|q, _| {
        vec![
            Reply::Udp(response(
                q,
                q.id.wrapping_add(1),
                0,
                false,
                &[addr_rr(q, &q.name, 66)],
                &[],
            )),
            Reply::FromElsewhere(response(q, q.id, 0, false, &[addr_rr(q, &q.name, 66)], &[])),
        ]
    });
    let mut cfg = config(&[s.addr]);
    cfg.timeout = Duration::from_millis(50);
    cfg.attempts = 1;
    let mut d = Driver::new(cfg);
    let (e, temporary) = one(&mut d, "target.test").unwrap_err();
    assert!(temporary && e.detail.contains("in time"), "{e}");
}

#[test]
fn id_space_full_queues_without_spinning() {
    // A server that never reads: every query stays in flight until its deadline.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = StubConfig::new(vec![silent.local_addr().unwrap()]);
    cfg.max_in_flight = 1 << 16;
    cfg.attempts = 1;
    cfg.timeout = Duration::from_secs(1);
    let poll = Poll::new().unwrap();
    let mut stub = Stub::with_config(cfg, poll.registry(), Token(1 << 20)).unwrap();
    let t0 = Instant::now();
    let mut settled = Vec::new();
    let names = (1 << 15) + 1;
    for i in 0..names {
        stub.start(&format!("n{i}.test"), t0, &mut settled);
    }
    // 65,536 IDs in flight: the last name's two queries wait, start returned at once.
    assert_eq!(stub.in_flight(), 1 << 16);
    assert_eq!(stub.queued(), 2);
    assert!(settled.is_empty());
    // Time passes (passed in): everyone times out, the queued name goes out and
    // times out too; every name is reported exactly once.
    let mut now = t0;
    for _ in 0..4 {
        now += Duration::from_secs(2);
        stub.on_time(now, &mut settled);
    }
    assert_eq!(settled.len(), names);
    let unique: std::collections::HashSet<&String> = settled.iter().map(|s| &s.0).collect();
    assert_eq!(unique.len(), names);
    assert!(settled.iter().all(|s| s.1.as_ref().is_err_and(|e| e.1)));
    assert_eq!(stub.in_flight() + stub.queued() + stub.names_pending(), 0);
}

#[test]
fn in_flight_cap_queues_and_loses_nothing() {
    let s = Server::start(answer_all);
    let mut cfg = config(&[s.addr]);
    cfg.max_in_flight = 3;
    let mut d = Driver::new(cfg);
    let names: Vec<String> = (0..20)
        .map(|i| format!("{}.test", "x".repeat(i + 1)))
        .collect();
    for n in &names {
        d.start(n);
        assert!(d.stub.in_flight() <= 3);
    }
    assert!(d.stub.queued() > 0);
    d.wait(names.len());
    for (name, r) in &d.settled {
        let (addrs, _) = r.as_ref().unwrap();
        assert_eq!(
            addrs[0],
            IpAddr::from([127, 0, 0, (name.len() % 250) as u8 + 1])
        );
    }
}

#[test]
fn search_list_and_ndots() {
    // Only three names exist.
    let s = Server::start(|q, _| {
        if ["www.corp.test", "two.dots.test", "x.corp.test"].contains(&q.name.as_str()) {
            answer_all(q, false)
        } else {
            vec![Reply::Udp(response(
                q,
                q.id,
                3,
                false,
                &[],
                &[soa_rr("test", 5)],
            ))]
        }
    });
    let mut cfg = config(&[s.addr]);
    cfg.search = vec!["corp.test".into(), "other.test".into()];
    cfg.ndots = 2;
    cfg.cache_size = 0;
    let mut d = Driver::new(cfg);
    // Fewer dots than ndots: search domains first.
    one(&mut d, "www").unwrap();
    let asked: Vec<String> = s.seen().iter().map(|q| q.0.name.clone()).collect();
    assert_eq!(asked, ["www.corp.test", "www.corp.test"]);
    // Enough dots: as given first (it exists, so nothing else is asked).
    one(&mut d, "two.dots.test").unwrap();
    assert_eq!(s.seen().len(), 4);
    // Not found anywhere: every candidate in order, then an error.
    let e = one(&mut d, "nope").unwrap_err();
    assert!(!e.1);
    let asked: Vec<String> = s.seen()[4..].iter().map(|q| q.0.name.clone()).collect();
    let mut want = vec!["nope.corp.test", "nope.other.test", "nope"];
    want = want.into_iter().flat_map(|n| [n, n]).collect();
    assert_eq!(asked, want);
    // A final dot: only the name itself.
    one(&mut d, "x.corp.test.").unwrap();
}

#[test]
fn retransmits_to_the_next_server_and_rotates() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = Server::start(answer_all);
    let mut cfg = config(&[silent.local_addr().unwrap(), s.addr]);
    cfg.timeout = Duration::from_millis(50);
    let mut d = Driver::new(cfg);
    let (addrs, _) = one(&mut d, "retry.test").unwrap();
    assert_eq!(addrs.len(), 2);
    assert_eq!(s.seen().len(), 2);
    // With rotate, successive queries start at successive servers.
    let s2 = Server::start(answer_all);
    let mut cfg = config(&[s.addr, s2.addr]);
    cfg.rotate = true;
    let mut d = Driver::new(cfg);
    for i in 0..4 {
        one(&mut d, &format!("r{i}.test")).unwrap();
    }
    assert!(s.seen().len() > 2 && !s2.seen().is_empty());
}

#[test]
fn server_failure_asks_the_next_server() {
    let bad = Server::start(|q, _| vec![Reply::Udp(response(q, q.id, 2, false, &[], &[]))]);
    let good = Server::start(answer_all);
    let mut d = Driver::new(config(&[bad.addr, good.addr]));
    assert!(one(&mut d, "sf.test").is_ok());
    let mut d = Driver::new(config(&[bad.addr]));
    let (e, temporary) = one(&mut d, "sf.test").unwrap_err();
    assert!(temporary && e.detail.contains("SERVFAIL"), "{e}");
}

#[test]
fn rate_cap_queues_the_rest() {
    let s = Server::start(answer_all);
    let mut cfg = config(&[s.addr]);
    cfg.rate = Some(50.0);
    let mut d = Driver::new(cfg);
    let t = Instant::now();
    for i in 0..10 {
        d.stub.start(&format!("rate{i}.test"), t, &mut d.settled);
    }
    // A burst of a tenth of a second's worth (5 queries) goes out at once.
    assert_eq!(d.stub.in_flight(), 5);
    assert_eq!(d.stub.queued(), 15);
    assert!(d.stub.next_deadline().is_some());
    d.wait(10);
    assert!(d.settled.iter().all(|s| s.1.is_ok()));
}

#[test]
fn source_ports_are_random_and_sockets_rotate() {
    let s = Server::start(answer_all);
    let mut cfg = config(&[s.addr]);
    cfg.sockets = 2;
    cfg.socket_reuse = 2;
    let mut d = Driver::new(cfg);
    let before = d.stub.source_ports();
    assert_eq!(before.len(), 2);
    assert_ne!(before[0], before[1]);
    for i in 0..12 {
        one(&mut d, &format!("p{i}.test")).unwrap();
    }
    let after = d.stub.source_ports();
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} {after:?}"
    );
}
