//! The stub resolver's UDP sockets: a small pool per address family, each bound to a
//! source port drawn from the OS CSPRNG and replaced by a fresh one (new random port)
//! once it has carried [`Pool::reuse`] queries and has none left in flight.
//!
//! Invariants: a slot's token never changes (a replacement socket is registered with
//! the same token); a slot is replaced only when no query is waiting on it; a failed
//! replacement keeps the old socket (it is retried after the next query ends).

use crate::rng::SecureRandom;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Random ports tried before the kernel is asked to choose.
const PORT_TRIES: usize = 16;

#[derive(Debug)]
struct Slot {
    sock: UdpSocket,
    v6: bool,
    token: Token,
    used: u32,
    inflight: u32,
}

/// The pool; see the module docs.
#[derive(Debug)]
pub(crate) struct Pool {
    slots: Vec<Slot>,
    /// Queries one socket carries before it is replaced.
    pub(crate) reuse: u32,
}

/// Binds a UDP socket of the family to a random port in 1024..=65535 (the kernel's
/// own random choice when every try is taken).
fn bind_random(v6: bool, rand: &mut SecureRandom) -> io::Result<UdpSocket> {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    for _ in 0..PORT_TRIES {
        let port = rand.in_range(1024, 65535)?;
        match UdpSocket::bind(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) => {}
            Err(e) => return Err(e),
        }
    }
    UdpSocket::bind(SocketAddr::new(ip, 0))
}

impl Pool {
    /// `per_family` sockets for each family in `families` ([IPv4, IPv6]); slot `i`
    /// registers with `token(i)` (IPv4 slots first).
    pub(crate) fn new(
        per_family: usize,
        families: [bool; 2],
        reuse: u32,
        token: impl Fn(usize, bool) -> Token,
        registry: &Registry,
        rand: &mut SecureRandom,
    ) -> io::Result<Pool> {
        let mut slots = Vec::new();
        for (f, _) in families.iter().enumerate().filter(|(_, &on)| on) {
            let v6 = f == 1;
            for k in 0..per_family.max(1) {
                let mut sock = bind_random(v6, rand)?;
                let t = token(f * per_family.max(1) + k, v6);
                registry.register(&mut sock, t, Interest::READABLE)?;
                slots.push(Slot {
                    sock,
                    v6,
                    token: t,
                    used: 0,
                    inflight: 0,
                });
            }
        }
        Ok(Pool {
            slots,
            reuse: reuse.max(1),
        })
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when slot `i` is an IPv6 socket.
    pub(crate) fn is_v6(&self, i: usize) -> bool {
        self.slots[i].v6
    }

    /// The slot's token.
    pub(crate) fn token(&self, i: usize) -> Token {
        self.slots[i].token
    }

    /// A slot of the family for a new query: a random one among those not yet due for
    /// replacement, else the least busy one. `None` when the family has no socket.
    pub(crate) fn pick(&self, v6: bool, rand: &mut SecureRandom) -> Option<usize> {
        let n = self.slots.len();
        let start = rand.u16().map_or(0, usize::from);
        let fresh = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.slots[i].v6 == v6 && self.slots[i].used < self.reuse);
        if fresh.is_some() {
            return fresh;
        }
        (0..self.slots.len())
            .filter(|&i| self.slots[i].v6 == v6)
            .min_by_key(|&i| self.slots[i].inflight)
    }

    /// A query was assigned to slot `i`.
    pub(crate) fn assign(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.used = s.used.saturating_add(1);
        s.inflight += 1;
    }

    /// Sends `msg` to `to` from slot `i` (errors are left to the retransmit timer).
    pub(crate) fn send(&self, i: usize, msg: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.slots[i].sock.send_to(msg, to)
    }

    /// Reads one datagram from slot `i`.
    pub(crate) fn recv(&self, i: usize, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.slots[i].sock.recv_from(buf)
    }

    /// A query on slot `i` ended; replaces the socket when it is due and idle.
    pub(crate) fn release(&mut self, i: usize, registry: &Registry, rand: &mut SecureRandom) {
        let s = &mut self.slots[i];
        s.inflight = s.inflight.saturating_sub(1);
        if s.inflight > 0 || s.used < self.reuse {
            return;
        }
        let Ok(mut fresh) = bind_random(s.v6, rand) else {
            return;
        };
        if registry
            .register(&mut fresh, s.token, Interest::READABLE)
            .is_err()
        {
            return;
        }
        let _ = registry.deregister(&mut s.sock);
        s.sock = fresh;
        s.used = 0;
    }

    /// The local port of slot `i` (for tests and diagnostics).
    pub(crate) fn local_port(&self, i: usize) -> Option<u16> {
        self.slots[i].sock.local_addr().ok().map(|a| a.port())
    }
}
