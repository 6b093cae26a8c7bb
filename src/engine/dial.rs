//! The way to a ready connection, as a state machine of its own:
//! resolve → address policy → connect (Happy Eyeballs: addresses raced, see
//! `race`) → proxy tunnel → TLS.
//!
//! With `--proxy` and an address policy, the policy judges the *target*, never the
//! proxy: the target's name is resolved locally first (which shows the name to the
//! local resolver, though the proxy resolves it again itself), and every address it
//! has must be permitted, since the proxy picks one; only then is the proxy resolved
//! and dialed. A denied target sends nothing to the proxy.
//!
//! A [`Dialer`] belongs to one hop of one task. The engine feeds it the resolver's
//! answer, the new connection's readiness and the time, and it answers with a
//! [`Step`]: wait, open this socket, drop that one and try the next address, out of
//! file descriptors, ready, or failed. It never touches the poll registry, the pool,
//! the wheel or the task: the engine registers the sockets it hands out, frees file
//! descriptors, and keeps the deadline.
//!
//! Invariants:
//! - addresses are tried in `race::interleave` order (families alternating, from the
//!   resolver's first), each at most once (a try refused for lack of file
//!   descriptors is not counted as a try); the next starts 250 ms after the last
//!   while none has connected ([`Dialer::on_timer`]), or at once when one fails;
//! - the first connection to connect wins; every other one is handed back through
//!   [`Dialer::pop_dropped`] for the engine to close, as is every failed one;
//! - when every address has failed, the error is the last connect error;
//! - the stage timings are measured from the moment the stage began: `dns` from the
//!   dialer's start (`None` when no lookup ran: an IP literal, a `--resolve` pin),
//!   `connect` from the first address's connect, so it covers every address tried
//!   (the whole race, plus the proxy tunnel), `tls` from the connected (or tunneled)
//!   socket; a dial that fails reports the time of the stage it failed in
//!   ([`Dialer::note_failure`]: a refused connect took that long too).

use super::api::{Config, Proxy, Timings};
use super::race::{interleave, Race};
use crate::codec::request::encode_connect;
use crate::conn::{connect_error, Conn, Flow, Phase, ReadEnd, ReadEvent};
use crate::error::{Error, ErrorKind};
use crate::resolve::Addrs;
use crate::socket::Peer;
use crate::target::Target;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What the dialer wants done next.
#[derive(Debug)]
// `Open` is returned once per connection and moved straight into the slab: boxing it
// would cost an allocation per connection for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// Wait for readiness (or the resolver).
    Pending,
    /// Look up [`Dialer::lookup`]'s name and hand the answer to
    /// [`Dialer::resolved`] (the proxy's, once the target was judged).
    Lookup,
    /// Register this new connection, then hand it to [`Dialer::opened`] (or, when
    /// registration fails, call [`Dialer::open_failed`]).
    Open(Box<Conn>),
    /// Out of file descriptors: free one and call [`Dialer::next`], or wait.
    NoFds,
    /// The connection is ready for the request.
    Ready,
    /// The dial failed; `final_` forbids a retry.
    Failed {
        /// Why.
        error: Error,
        /// No retry (TLS failure, policy, the proxy's refusal).
        final_: bool,
    },
}

/// What a dial needs to know, borrowed from the engine for one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The engine's configuration.
    pub cfg: &'a Config,
    /// The URL of the hop being dialed.
    pub target: &'a Target,
    /// The TLS client configuration.
    pub tls: &'a Arc<rustls::ClientConfig>,
    /// The time of this call.
    pub now: Instant,
}

/// Where a hop's connections go: the proxy, when there is one, else the target.
pub(crate) fn dial_to<'a>(cfg: &'a Config, target: &'a Target) -> (&'a str, u16) {
    match &cfg.proxy {
        Some(p) => (&p.host, p.port),
        None => (target.host(), target.port),
    }
}

/// True when finding `host`'s addresses is a lookup (not an IP literal, not a
/// `--resolve` pin): only then is a `dns` time reported.
fn looked_up(cfg: &Config, host: &str, port: u16) -> bool {
    host.parse::<std::net::IpAddr>().is_err()
        && !cfg.resolve.iter().any(|(h, p, _)| h == host && *p == port)
}

/// True when an error says the process is out of file descriptors.
fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// A failure of the proxy to give a tunnel: a `connect` error.
fn proxy_error(detail: &str) -> Error {
    Error::new(ErrorKind::Connect, format!("proxy: {detail}"))
}

/// One dial; see the module docs.
#[derive(Debug)]
pub(crate) struct Dialer {
    /// The addresses, once resolved (empty for a Unix socket).
    addrs: Option<Addrs>,
    next: usize,
    last_error: Option<Error>,
    stage_start: Instant,
    /// When the first address's connect began.
    connect_start: Option<Instant>,
    /// A readable event arrived while the CONNECT request was still being written.
    readable: bool,
    /// The target was resolved and judged by the policy (through a proxy).
    judged: bool,
    /// A name lookup ran (for the `dns` time).
    looked_up: bool,
    /// Every connection goes to `--unix-socket` (one peer).
    unix: bool,
    /// The connections racing, the winner, the ones to close.
    race: Race,
}

impl Dialer {
    /// A dial starting at `now` (resolution first).
    pub fn new(now: Instant) -> Dialer {
        Dialer {
            addrs: None,
            next: 0,
            last_error: None,
            stage_start: now,
            connect_start: None,
            readable: false,
            judged: false,
            looked_up: false,
            unix: false,
            race: Race::default(),
        }
    }

    /// True while the target is to be resolved and judged before the proxy is
    /// dialed (see the module docs).
    fn judging(&self, cfg: &Config) -> bool {
        !self.judged && cfg.proxy.is_some() && cfg.unix_socket.is_none() && !cfg.addresses.is_open()
    }

    /// The name (and port, for `--resolve` pins) to look up now: the target's while
    /// it is judged, else where the connection goes.
    pub fn lookup<'a>(&self, cfg: &'a Config, target: &'a Target) -> (&'a str, u16) {
        if self.judging(cfg) {
            (target.host(), target.port)
        } else {
            dial_to(cfg, target)
        }
    }

    /// True while waiting for the resolver.
    pub fn resolving(&self) -> bool {
        self.addrs.is_none()
    }

    /// Every connection goes to `--unix-socket`: nothing to resolve.
    pub fn skip_resolution(&mut self, ctx: Ctx<'_>) -> Step {
        self.addrs = Some(Arc::from([]));
        self.unix = true;
        self.next(ctx)
    }

    /// The dial fails at `now`: the stage it was in ran until then, and its time is
    /// reported (`dns` while resolving, `connect` while connecting, `tls` during
    /// the handshake of an https target); a stage that never began stays `None`.
    pub fn note_failure(&self, now: Instant, tls: bool, timings: &mut Timings) {
        if self.addrs.is_none() && !self.unix {
            timings.dns = Some(now.duration_since(self.stage_start));
        } else if timings.connect.is_none() {
            if let Some(began) = self.connect_start {
                timings.connect = Some(now.duration_since(began));
            }
        } else if tls && timings.tls.is_none() {
            timings.tls = Some(now.duration_since(self.stage_start));
        }
    }

    /// The resolver answered: applies `--allow`/`--deny`, then connects (or, for
    /// a target judged through a proxy, asks for the proxy's lookup).
    pub fn resolved(&mut self, addrs: Addrs, ctx: Ctx<'_>, timings: &mut Timings) -> Step {
        let policy = &ctx.cfg.addresses;
        let (host, port) = self.lookup(ctx.cfg, ctx.target);
        self.looked_up |= looked_up(ctx.cfg, host, port);
        if self.judging(ctx.cfg) {
            if let Some(bad) = addrs.iter().find(|&&a| !policy.permits(a)) {
                let error = Error::new(
                    ErrorKind::Denied,
                    format!(
                        "{} has address {bad}, outside --allow or inside --deny (through \
                         --proxy every address must be permitted: the proxy picks one)",
                        ctx.target.host()
                    ),
                );
                return Step::Failed {
                    error,
                    final_: true,
                };
            }
            self.judged = true;
            return Step::Lookup;
        }
        let open = policy.is_open() || ctx.cfg.proxy.is_some();
        let addrs = if open || addrs.iter().all(|&a| policy.permits(a)) {
            addrs
        } else {
            let allowed: Vec<_> = addrs
                .iter()
                .copied()
                .filter(|&a| policy.permits(a))
                .collect();
            if allowed.is_empty() {
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                let error = Error::new(
                    ErrorKind::Denied,
                    format!(
                        "every address of {} ({}) is outside --allow or inside --deny",
                        ctx.target.host(),
                        list.join(", ")
                    ),
                );
                return Step::Failed {
                    error,
                    final_: true,
                };
            }
            allowed.into()
        };
        timings.dns = self
            .looked_up
            .then(|| ctx.now.duration_since(self.stage_start));
        self.addrs = Some(if addrs.len() > 1 {
            interleave(&addrs).into()
        } else {
            addrs
        });
        self.next = 0;
        self.next(ctx)
    }

    /// Addresses not tried yet remain.
    fn more(&self) -> bool {
        let peers = match (self.unix, &self.addrs) {
            (true, _) => 1,
            (false, Some(a)) => a.len(),
            (false, None) => 0,
        };
        self.next < peers
    }

    /// Starts a connect to the next address; waits when none is left but a racer
    /// still connects; fails when nothing is left.
    pub fn next(&mut self, ctx: Ctx<'_>) -> Step {
        let Some(addrs) = self.addrs.clone() else {
            return Step::Pending;
        };
        let unix = ctx.cfg.unix_socket.as_ref();
        let peers = if unix.is_some() { 1 } else { addrs.len() };
        loop {
            if self.next >= peers && self.race.is_racing() {
                return Step::Pending;
            }
            if self.next >= peers {
                let error = self
                    .last_error
                    .take()
                    .unwrap_or_else(|| Error::new(ErrorKind::Connect, "no addresses left to try"));
                return Step::Failed {
                    error,
                    final_: false,
                };
            }
            let peer = match unix {
                Some(path) => Peer::Unix(path.clone()),
                None => Peer::Tcp(SocketAddr::new(
                    addrs[self.next],
                    dial_to(ctx.cfg, ctx.target).1,
                )),
            };
            self.next += 1;
            self.stage_start = ctx.now;
            self.connect_start.get_or_insert(ctx.now);
            match Conn::connect(peer.clone(), ctx.cfg.limits) {
                Ok(conn) => return Step::Open(Box::new(conn)),
                Err(e) if is_fd_exhaustion(&e) => {
                    self.next -= 1;
                    // With a racer still connecting, wait for it (this address is
                    // tried again at the next failure or attempt delay).
                    if self.race.is_racing() {
                        return Step::Pending;
                    }
                    return Step::NoFds;
                }
                Err(e) => self.last_error = Some(connect_error(&e, &peer)),
            }
        }
    }

    /// The connection [`Step::Open`] gave could not be registered: the next address.
    pub fn open_failed(&mut self, peer: &Peer, e: &io::Error, ctx: Ctx<'_>) -> Step {
        self.last_error = Some(Error::new(ErrorKind::Connect, format!("{peer}: {e}")));
        self.next(ctx)
    }

    /// The connection [`Step::Open`] gave is registered as slab key `c`: a near peer
    /// (loopback, the same host) has often accepted already, so it is checked at once
    /// rather than after a poll round trip.
    pub fn opened(
        &mut self,
        c: usize,
        conn: &mut Conn,
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        self.race.started(c, ctx.now);
        self.connect_progress(c, conn, rbuf, ctx, timings)
    }

    /// The attempt delay may have passed: starts the next address if it has and the
    /// racers are still connecting (a stale call is harmless).
    pub fn on_timer(&mut self, ctx: Ctx<'_>) -> Step {
        self.race.disarm();
        match self.race.due(self.more()) {
            Some(due) if due <= ctx.now => self.next(ctx),
            _ => Step::Pending,
        }
    }

    /// When [`Dialer::on_timer`] should be called, if a timer for it is not asked
    /// for yet.
    pub fn arm(&mut self) -> Option<Instant> {
        let more = self.more();
        self.race.arm(more)
    }

    /// A connection to close (failed or lost the race), once each.
    pub fn pop_dropped(&mut self) -> Option<usize> {
        self.race.pop_dropped()
    }

    /// The connection of this dial: the winner, or the one racing longest.
    pub fn current(&self) -> Option<usize> {
        self.race.current()
    }

    /// The dial is given up: every racer is to be closed (see `pop_dropped`).
    pub fn abandon(&mut self) {
        self.race.abandon();
    }

    /// Readiness on connection `c` of this dial: `(readable, writable)`.
    pub fn on_ready(
        &mut self,
        (c, conn): (usize, &mut Conn),
        (readable, writable): (bool, bool),
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        match conn.phase {
            Phase::Connecting if readable || writable => {
                self.connect_progress(c, conn, rbuf, ctx, timings)
            }
            Phase::Tunneling => {
                if readable {
                    self.readable = true;
                }
                if conn.wpos_done() {
                    if std::mem::take(&mut self.readable) {
                        return self.tunnel_read(conn, rbuf, ctx, timings);
                    }
                    Step::Pending
                } else if writable {
                    self.tunnel_write(conn, rbuf, ctx, timings)
                } else {
                    Step::Pending
                }
            }
            Phase::Handshaking if readable || writable => self.handshake(conn, ctx, timings),
            _ => Step::Pending,
        }
    }

    /// Checks a connect in progress; once connected, opens a proxy tunnel, starts TLS,
    /// or is ready.
    fn connect_progress(
        &mut self,
        c: usize,
        conn: &mut Conn,
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        if !self.race.has(c) {
            return Step::Pending;
        }
        match conn.finish_connect() {
            Ok(false) => Step::Pending,
            Ok(true) => {
                self.race.won(c);
                let began = self.connect_start.unwrap_or(self.stage_start);
                timings.connect = Some(ctx.now.duration_since(began));
                self.stage_start = ctx.now;
                match ctx.cfg.proxy.as_ref().filter(|_| ctx.target.tls) {
                    Some(proxy) => self.open_tunnel(proxy, conn, rbuf, ctx, timings),
                    None => self.secure(conn, ctx, timings),
                }
            }
            Err(e) => {
                self.last_error = Some(e);
                self.race.failed(c);
                self.next(ctx)
            }
        }
    }

    /// On a connected (or tunneled) socket: the TLS handshake for https, else ready.
    fn secure(&mut self, conn: &mut Conn, ctx: Ctx<'_>, timings: &mut Timings) -> Step {
        if !ctx.target.tls {
            return Step::Ready;
        }
        let started = crate::tls::server_name(ctx.target.host(), ctx.target.ip)
            .map_err(|e| Error::new(ErrorKind::Tls, e))
            .and_then(|n| conn.start_tls(ctx.tls.clone(), n));
        match started {
            Ok(()) => self.handshake(conn, ctx, timings),
            Err(error) => Step::Failed {
                error,
                final_: true,
            },
        }
    }

    fn handshake(&mut self, conn: &mut Conn, ctx: Ctx<'_>, timings: &mut Timings) -> Step {
        match conn.handshake() {
            Ok(false) => Step::Pending,
            Ok(true) => {
                timings.tls = Some(ctx.now.duration_since(self.stage_start));
                Step::Ready
            }
            // A TCP close under the handshake is `closed`, retried like any close.
            Err(error) => Step::Failed {
                final_: error.kind != ErrorKind::Closed,
                error,
            },
        }
    }

    /// Asks the proxy for a tunnel to the https target (`CONNECT host:port`).
    fn open_tunnel(
        &mut self,
        proxy: &Proxy,
        conn: &mut Conn,
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        conn.wbuf.clear();
        let authority = format!("{}:{}", ctx.target.host_for_header(), ctx.target.port);
        if let Err(error) = encode_connect(&mut conn.wbuf, &authority, proxy.auth.as_deref()) {
            return Step::Failed {
                error,
                final_: true,
            };
        }
        conn.start_tunnel();
        self.tunnel_write(conn, rbuf, ctx, timings)
    }

    fn tunnel_write(
        &mut self,
        conn: &mut Conn,
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        match conn.write() {
            Ok((true, _)) if std::mem::take(&mut self.readable) => {
                self.tunnel_read(conn, rbuf, ctx, timings)
            }
            Ok(_) => Step::Pending,
            Err(e) => Step::Failed {
                error: proxy_error(&e.detail),
                final_: false,
            },
        }
    }

    fn tunnel_read(
        &mut self,
        conn: &mut Conn,
        rbuf: &mut [u8],
        ctx: Ctx<'_>,
        timings: &mut Timings,
    ) -> Step {
        let mut status = None;
        let end = conn.read(rbuf, true, |ev| match ev {
            ReadEvent::Head(h, _, _) => {
                status = Some(h.status);
                Flow::Continue
            }
            ReadEvent::Body(_) => Flow::Continue,
            ReadEvent::End { .. } => Flow::Stop,
        });
        match (end, status) {
            // A tunnel's answer is never paused (only the handler pauses bodies).
            (ReadEnd::WouldBlock | ReadEnd::Paused, _) => Step::Pending,
            (ReadEnd::Finished, Some(s)) if (200..300).contains(&s) => {
                let tunnel = ctx.now.duration_since(self.stage_start);
                timings.connect = Some(timings.connect.unwrap_or_default() + tunnel);
                self.stage_start = ctx.now;
                conn.phase = Phase::Connecting; // tunnel up; TLS next
                self.secure(conn, ctx, timings)
            }
            (ReadEnd::Finished, s) => Step::Failed {
                error: proxy_error(&format!(
                    "the proxy answered CONNECT with {}",
                    s.map_or_else(|| "nothing".to_string(), |s| s.to_string())
                )),
                final_: true,
            },
            (ReadEnd::Failed(e), _) => Step::Failed {
                error: proxy_error(&e.detail),
                final_: false,
            },
        }
    }
}

#[cfg(test)]
mod tests;
