//! The engine: one single-threaded mio event loop driving many requests.
//!
//! The driver is one `impl Engine` over several files, split by what it drives:
//! this one (the `Engine`, the loop `step`, the dispatch of readiness and resolver
//! answers), `fill.rs` (admission under `--concurrency`, the parking area and
//! `--rate`), `timers.rs` (the wheel's clock and fired timers), `task.rs` (a task's
//! way from admission to its `Outcome`), `gate.rs` (the per-host politeness gate
//! before a hop), `conns.rs` (opening and using connections), `pipeline.rs`
//! (requests queued on a connection with room) and `release.rs` (pooling or
//! closing a connection after use). Only these call across the seams; each seam is
//! a type or pure function of its own that calls no other seam:
//!
//! | seam | owns | answers |
//! |---|---|---|
//! | `pool` | per-host open / idle / waiting counts | reuse this, dial, wait |
//! | `dial` | resolve → policy → connect → tunnel → TLS | open, ready, failed |
//! | `race` | one dial's Happy Eyeballs racers | next address due, losers |
//! | `exchange` | request bytes out, response head and body in | pending, done, failed |
//! | `redirect` | the redirect rules (pure) | follow, final, too many |
//! | `retry` | the retry rules and backoff (pure) | retry or not, the delay |
//! | `deadline` | a task's deadlines and its wheel entry | which one fired, its error |
//! | `rate` | `--rate` pacing | start now, or when |
//! | `shared` | what the engines of one run share (pacer, per-host counts, politeness) | may open, wait |
//! | `politeness` | per host: pause, AIMD limit, `--rate-per-host` | go, wait until, full |
//! | `attempt` | per-attempt state, the `Outcome` | |
//! | `park` | tasks waiting outside a slot until a time | ready ones; full |
//! | `idle` | the order connections went idle (all hosts) | the oldest |
//! | `overrides` | a request's settings over the `Config` (pure) | the task's `Settings` |
//! | `credentials` | cookies, URL credentials per hop (pure but for the jar) | the hop's headers |
//!
//! The embedder's API beyond `step`/`run` sits in two small files of the driver:
//! `embed.rs` (`as_raw_fd`, `next_timeout`: the engine in a foreign loop) and
//! `control.rs` (`cancel`, `resume` by tag).
//!
//! A task's life:
//!
//! ```text
//!  source ─▶ admit ─▶ [wait host slot] ─▶ dial ─▶ send ─▶ head ─▶ body ─▶ done
//!              ▲       (no deadline)  └─ pooled connection ─┘        │   (redirect: next hop)
//!              └──────────── retry after backoff (no slot held) ◀── retryable error
//! ```
//!
//! Invariants:
//! - every task pulled from the source gets exactly one `on_done` (at a `stop`, the
//!   tasks in flight get theirs with `Cancelled`, as does one `cancel`led or whose
//!   body the handler aborted);
//! - a task whose body the handler paused is not read, and has no read deadline,
//!   until `resume`;
//! - a task has at most one wheel entry: its nearest deadline (`deadline`);
//! - no deadline runs while a task waits for a slot (concurrency, per-host, rate,
//!   backoff); the attempt's clock starts when it leaves the queue;
//! - `active` counts tasks holding a concurrency slot (all but those in the park);
//! - the park holds the tasks in backoff; while it is full no request is pulled
//!   from the source; at most `max_idle` connections are idle over all hosts;
//! - a connection in the slab is registered with the poll under its slab key, and
//!   counted open in the pool from its dial until it closes (`conns.rs`).
//!
//!
//! Re-entry: many driver calls run other tasks' code before they return (work-list
//! hand-offs, `finish`'s `fill`, a dial's claimants, room offered, a connection
//! released or closed). After one, a task index names the same task only if nothing
//! the others reach holds it (a task just detached from its connection, dialing, or
//! failing); else the task may be gone and its index the next request's (`serial`
//! tells them apart, `holds`). A connection index may name a new or re-used
//! connection (check its task and phase). A turn's fired timers and ready events
//! were gathered first: each handler checks its entry still applies.
//!
//! See `docs/architecture.md` and `docs/timeouts.md`.

pub mod api;
mod attempt;
mod conns;
mod control;
mod credentials;
mod deadline;
mod dial;
mod embed;
mod exchange;
mod fill;
mod gate;
mod idle;
mod overrides;
mod park;
mod pipeline;
mod politeness;
mod pool;
mod race;
mod rate;
mod redirect;
mod release;
mod retry;
mod shared;
mod task;
mod timers;

pub use crate::socket::{raise_fd_limit, reserve_fds};
pub use api::{
    BodyAction, Config, Handler, Notifier, Outcome, Proxy, Redirect, Request, RequestSpec,
    ResponseHead, Source, Stats, Timings,
};
pub use overrides::Overrides;
pub use politeness::{HostReport, HostView};
pub use shared::Shared;
use task::{Task, TaskState};

use crate::conn::Phase;
use crate::resolve::{Addrs, Answered, DnsError, Resolver, Settings};
use crate::timer::Wheel;
use conns::Slot;
use dial::{Dialer, Step};
use mio::{Events, Poll, Token, Waker};
use pool::Pool;
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
/// The stub resolver's sockets take the tokens from this one down (a few dozen);
/// connections' tokens are slab keys, far below.
const DNS_FIRST_TOKEN: Token = Token(usize::MAX - 1);
const READ_BUF: usize = 64 * 1024;
const DECODE_BUF: usize = 16 * 1024;

/// A waiter woken by a freed per-host slot or an idle connection, run from the
/// engine's work list (`hand_off`) rather than from inside the call that freed it,
/// so a chain of waiters that fail at once never deepens the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handoff {
    /// Task `0` may take the freed slot: start its hop again.
    Start(usize),
    /// Task `0` takes idle connection `1` (in no pool list meanwhile).
    Reuse(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerRef {
    /// A task's nearest deadline.
    Task(usize),
    /// A task's file-descriptor wait is over.
    Wake(usize),
    /// A dial's next address may start (Happy Eyeballs' attempt delay).
    Race(usize),
    /// An idle pooled connection has been idle long enough.
    Idle(usize),
    /// The rate limiter allows another request.
    Rate,
    /// A task's wait for `100 Continue` is over.
    Continue(usize),
    /// The heads of the hosts' queues look again (`gate.rs`).
    Recheck,
}

/// The engine; see the module docs and `examples/fetch.rs`.
pub struct Engine<S: Source, H: Handler> {
    cfg: Config,
    source: S,
    handler: H,
    poll: Poll,
    events: Events,
    /// The last poll filled `events`: more may be pending (see `embed`).
    more_events: bool,
    waker: Arc<Waker>,
    wheel: Wheel<TimerRef>,
    fired: Vec<TimerRef>,
    ready_io: Vec<(usize, bool, bool, bool)>,
    tasks: Slab<Task>,
    conns: Slab<Slot>,
    pool: Pool,
    resolver: Resolver,
    dns_done: Vec<Answered>,
    /// Tasks the per-host gate holds back at their host's limit (`gate.rs`).
    waiting: gate::Waiting,
    /// Tasks waiting outside a slot (retry backoff) until a time; they go before
    /// new source requests, and none is pulled while the park is full.
    park: park::Park,
    /// Idle connections in the order they went idle, for the global idle cap.
    idle: idle::IdleOrder,
    /// Waiters to wake, in order (see `Handoff`); `handing` while the list runs.
    handoffs: VecDeque<Handoff>,
    handing: bool,
    active: usize,
    filling: bool,
    source_done: bool,
    /// A request pulled from the source that `--rate` holds back (at most one).
    held_request: Option<Request>,
    /// This engine's place among those sharing `cfg.shared`.
    member: shared::Membership,
    rate_timer: bool,
    rbuf: Box<[u8]>,
    cbuf: Box<[u8]>,
    tls: Arc<rustls::ClientConfig>,
    rng: retry::Rng,
    stats: Stats,
    now: Instant,
}

impl<S: Source, H: Handler> std::fmt::Debug for Engine<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// A new engine. Raises the open-file soft limit to the hard limit, and grows
    /// the descriptor table to fit its concurrency ([`reserve_fds`]).
    pub fn new(cfg: Config, source: S, handler: H) -> io::Result<Self> {
        let concurrency = cfg.concurrency.max(1);
        // Its connections (a Happy Eyeballs racer each) and resolver sockets: the
        // descriptor table grows once now, not by doublings mid-run.
        reserve_fds(concurrency.saturating_mul(2).saturating_add(1024));
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let resolver = Resolver::new(
            &Settings {
                pins: cfg.resolve.clone(),
                hosts_file: cfg.hosts_file.clone(),
                resolv_conf: cfg.resolv_conf.clone(),
                servers: cfg.dns_servers.clone(),
                rate: cfg.dns_rate,
                // Enough for every slot's A and AAAA at once: the cap never holds back
                // a request with a name to resolve (a weak resolver: --dns-rate).
                max_in_flight: match cfg.dns_in_flight {
                    0 => concurrency.saturating_mul(2).clamp(512, 1 << 16),
                    n => n,
                },
                cache_size: cfg.dns_cache,
                system_fallback: cfg.system_resolver,
                // Only requests in flight wait for names: never more than this.
                system_queue: concurrency,
            },
            poll.registry(),
            DNS_FIRST_TOKEN,
            waker.clone(),
        );
        let tls = match &cfg.tls {
            Some(t) => t.clone(),
            None => crate::tls::client_config(&crate::tls::TlsOptions::default())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        };
        let member = cfg.shared.join(waker.clone(), cfg.rate);
        let adapt_or_rate = cfg.adapt || cfg.rate_per_host > 0.0;
        let now = Instant::now();
        let parked = match cfg.max_parked {
            0 => concurrency.saturating_mul(10),
            n => n,
        };
        let max_idle = match cfg.max_idle {
            0 => concurrency,
            n => n,
        };
        let engine = Engine {
            cfg: Config {
                concurrency,
                max_idle,
                ..cfg
            },
            source,
            handler,
            poll,
            events: Events::with_capacity(1024),
            more_events: false,
            waker,
            wheel: Wheel::new(now),
            fired: Vec::new(),
            ready_io: Vec::new(),
            tasks: Slab::new(),
            conns: Slab::new(),
            pool: Pool::default(),
            resolver,
            dns_done: Vec::new(),
            waiting: gate::Waiting::default(),
            park: park::Park::new(parked),
            idle: idle::IdleOrder::default(),
            handoffs: VecDeque::new(),
            handing: false,
            active: 0,
            filling: false,
            source_done: false,
            held_request: None,
            member,
            rate_timer: false,
            rbuf: vec![0u8; READ_BUF].into_boxed_slice(),
            cbuf: vec![0u8; DECODE_BUF].into_boxed_slice(),
            tls,
            // Seeded from the OS CSPRNG: independent per engine, so per worker.
            rng: retry::Rng::from_os()?,
            stats: Stats::default(),
            now,
        };
        if adapt_or_rate {
            let adds = engine.cfg.per_host == 0;
            engine.cfg.shared.polite_join(engine.polite_policy(), adds);
        }
        Ok(engine)
    }

    /// A handle that wakes the engine from another thread.
    pub fn notifier(&self) -> Notifier {
        Notifier(self.waker.clone())
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            active: self.active,
            parked: self.park.len() + self.waiting.queued(),
            idle: self.idle.len(),
            ..self.stats
        }
    }

    /// Gives back the source and handler.
    pub fn into_parts(self) -> (S, H) {
        (self.source, self.handler)
    }

    /// True when every request has finished and the source is exhausted.
    pub fn is_finished(&self) -> bool {
        self.source_done && self.tasks.is_empty()
    }

    fn stopped(&self) -> bool {
        self.cfg
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Runs until every request is finished (or `Config::stop` turns true).
    pub fn run(&mut self) -> io::Result<()> {
        while !self.is_finished() && !self.stopped() {
            self.step(None)?;
        }
        if self.stopped() {
            self.cancel_all();
        }
        Ok(())
    }

    /// One loop turn: start what may start, wait for readiness up to the next
    /// deadline (or `max_wait`, if sooner), then handle events and deadlines.
    /// Returns whether work remains.
    pub fn step(&mut self, max_wait: Option<Duration>) -> io::Result<bool> {
        self.now = Instant::now();
        if self.stopped() {
            self.cancel_all();
            return Ok(!self.is_finished());
        }
        self.fill();
        let next = self.next_wake(self.now);
        let mut wait = next.map(|t| t.saturating_duration_since(self.now));
        if let Some(m) = max_wait {
            wait = Some(wait.map_or(m, |w| w.min(m)));
        }
        if self.is_finished() {
            // `fill` may just have seen the source end: the idle connections kept
            // for more requests free their slots (shared with other engines)
            // before this engine ends.
            self.close_unneeded_idle();
            return Ok(false);
        }
        if let Err(e) = self.poll.poll(&mut self.events, wait) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.now = Instant::now();
        self.more_events = self.events.iter().count() >= self.events.capacity();
        let mut ready = std::mem::take(&mut self.ready_io);
        for e in self.events.iter() {
            let token = e.token();
            if token == WAKER {
                continue;
            }
            if self.resolver.owns(token) {
                self.resolver.on_ready(token, self.now);
                continue;
            }
            ready.push((
                token.0,
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_writable() || e.is_write_closed() || e.is_error(),
                e.is_read_closed() || e.is_error(),
            ));
        }
        if self.member.has_notes() {
            self.on_notes();
        }
        for &(c, readable, writable, hup) in &ready {
            // The clock is read per event (a vDSO call, ~20 ns): with thousands of
            // events in one turn, stamps and deadlines stay exact.
            self.now = Instant::now();
            self.conn_event(c, readable, writable, hup);
        }
        ready.clear();
        self.ready_io = ready;
        self.resolver.on_time(self.now);
        self.resolver.poll_done(self.now, &mut self.dns_done);
        let done = std::mem::take(&mut self.dns_done);
        for (t, host, answer) in &done {
            self.dns_answer(*t, host, answer.clone());
        }
        self.dns_done = done;
        self.dns_done.clear();
        self.expire();
        self.fill();
        if self.stopped() {
            self.cancel_all();
        }
        self.close_unneeded_idle();
        Ok(!self.is_finished())
    }

    /// Once the source is exhausted and no task waits (for a slot, a host, a
    /// backoff), no new request can come for an idle connection: each is closed as
    /// it goes idle, while the last requests are still in flight, rather than all
    /// at the end. The server gets its connections back sooner, the closing work
    /// overlaps the wait for the last answers, and with a `--per-host` shared by
    /// engines the slots go to engines still running. (A redirect or retry of a
    /// request still in flight then dials again: rare, and only at the very end.)
    fn close_unneeded_idle(&mut self) {
        if !self.source_done
            || self.held_request.is_some()
            || !self.park.is_empty()
            || self.waiting.queued() > 0
            || !self.waiting.ready.is_empty()
        {
            return;
        }
        while let Some(c) = self.idle.oldest() {
            self.idle.remove(c);
            self.remove_idle(c);
            self.close_conn(c);
        }
    }

    /// Task `t` stops waiting for the resolver, if it was (it failed or gave up): a
    /// name nobody waits for any more is not looked up by the system fallback.
    pub(super) fn forget_lookup(&mut self, t: usize) {
        let Some(task) = self.tasks.get(t) else {
            return;
        };
        if task.state != TaskState::Dialing {
            return;
        }
        if let Some(d) = task.a.dial.as_ref().filter(|d| d.resolving()) {
            let host = d.lookup(&self.cfg, task.a.url(&task.first)).0;
            self.resolver.cancel(host, t);
        }
    }

    fn dns_answer(&mut self, t: usize, host: &str, answer: Result<Addrs, DnsError>) {
        // The task may have given up meanwhile, and its slot gone to another task.
        if self.tasks.get(t).is_none_or(|task| {
            task.state != TaskState::Dialing
                || !task.a.dial.as_ref().is_some_and(Dialer::resolving)
                || task
                    .a
                    .dial
                    .as_ref()
                    .is_some_and(|d| d.lookup(&self.cfg, task.a.url(&task.first)).0 != host)
        }) {
            return;
        }
        match answer {
            Ok(a) => self.resolved(t, a),
            Err(e) => self.fail(t, e.error, !e.temporary),
        }
    }

    // ----- connections ------------------------------------------------------------

    fn conn_event(&mut self, c: usize, readable: bool, writable: bool, hup: bool) {
        let Some(slot) = self.conns.get_mut(c) else {
            return;
        };
        slot.peer_closed |= hup;
        match slot.conn.phase {
            Phase::Idle => {
                if readable && slot.conn.idle_is_dead(&mut self.rbuf) {
                    self.remove_idle(c);
                    self.close_conn(c);
                }
            }
            Phase::Connecting | Phase::Tunneling | Phase::Handshaking => {
                let t = slot.task.expect("a dialing conn has a task");
                let step = self.with_dialer(t, Some(c), |d, ctx, timings, conn, rbuf| match conn {
                    Some(conn) => d.on_ready((c, conn), (readable, writable), rbuf, ctx, timings),
                    None => Step::Pending,
                });
                self.dial_step(t, step);
            }
            Phase::Writing => {
                if readable {
                    slot.readable = true;
                }
                if writable {
                    let t = slot.task.expect("writing conn has a task");
                    self.write(t, c);
                }
            }
            Phase::Reading => {
                let t = slot.task.expect("reading conn has a task");
                if writable && !slot.conn.wpos_done() {
                    // Pipelined requests still being written.
                    self.write(t, c);
                    // Still `t`'s, or (`t` finished, its index and `c` from the pool
                    // taken by the next request) that request's own socket: a read
                    // there is one it would do anyway.
                    if self.conns.get(c).is_none_or(|s| s.task != Some(t)) {
                        return;
                    }
                }
                if readable {
                    // A paused body is not read (`resume` reads what came meanwhile).
                    if !self.tasks[t].paused {
                        self.read(t, c, hup);
                    }
                }
            }
        }
    }
}
