//! The stub resolver's UDP sockets: a small pool per address family, each bound to a
//! source port drawn from the OS CSPRNG and replaced by a fresh one (new random port)
//! once it has carried [`Pool::reuse`] queries and has none left in flight.
//!
//! Replies are read [`BATCH`] datagrams per system call (`recvmmsg`) rather than
//! one `recvfrom` per answer plus one that finds the socket empty.
//!
//! Invariants: a slot's token never changes (a replacement socket is registered with
//! the same token); a slot is replaced only when no query is waiting on it; a failed
//! replacement keeps the old socket (it is retried after the next query ends).

use crate::rng::SecureRandom;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// Datagrams read per system call.
pub(crate) const BATCH: usize = 32;
/// The largest datagram kept whole (answers without EDNS are at most 512 bytes; a
/// longer one is cut and reported as such).
pub(crate) const DATAGRAM: usize = 4096;

/// Buffers for one batched read: datagram `k` is `data[k * DATAGRAM..][..len[k]]`.
#[derive(Debug)]
pub(crate) struct Batch {
    data: Vec<u8>,
    len: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    cut: [bool; BATCH],
}

impl Batch {
    /// Empty buffers.
    pub(crate) fn new() -> Batch {
        Batch {
            data: vec![0; BATCH * DATAGRAM],
            len: [0; BATCH],
            from: [None; BATCH],
            cut: [false; BATCH],
        }
    }

    /// Datagram `k` of the last read: its bytes and sender (`None`: cut short, or
    /// from an address of no family we know).
    pub(crate) fn get(&self, k: usize) -> Option<(&[u8], SocketAddr)> {
        if self.cut[k] {
            return None;
        }
        let from = self.from[k]?;
        Some((&self.data[k * DATAGRAM..k * DATAGRAM + self.len[k]], from))
    }
}

/// The address the kernel filled in, as a `SocketAddr`.
fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

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

    /// Reads up to [`BATCH`] datagrams waiting on slot `i` into `b` (one system
    /// call); how many. `WouldBlock` when none waits.
    pub(crate) fn recv_batch(&self, i: usize, b: &mut Batch) -> io::Result<usize> {
        let fd = self.slots[i].sock.as_raw_fd();
        // SAFETY: all-zero sockaddr_storage, iovec and mmsghdr values are valid.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let base = b.data.as_mut_ptr();
        for k in 0..BATCH {
            iovs[k] = libc::iovec {
                // SAFETY: k * DATAGRAM + DATAGRAM <= data.len() (BATCH * DATAGRAM).
                iov_base: unsafe { base.add(k * DATAGRAM) } as *mut libc::c_void,
                iov_len: DATAGRAM,
            };
            let h = &mut hdrs[k].msg_hdr;
            h.msg_name = &mut names[k] as *mut _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[k];
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points into `names`, `iovs` and `b.data`, which
        // outlive the call; the count matches the arrays.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for k in 0..n {
            b.len[k] = (hdrs[k].msg_len as usize).min(DATAGRAM);
            b.cut[k] = hdrs[k].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            b.from[k] = socket_addr(&names[k]);
        }
        Ok(n)
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
