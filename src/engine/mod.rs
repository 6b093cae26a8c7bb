//! The engine: one single-threaded mio event loop driving many requests.
//!
//! This file is the loop (`step`), the dispatch of readiness, resolver answers and
//! deadlines, and the task's way through the seams. Each seam is a type or pure
//! function of its own that this file alone calls:
//!
//! | seam | owns | answers |
//! |---|---|---|
//! | [`pool`] | per-host open / idle / waiting counts | reuse this, dial, wait |
//! | [`dial`] | resolve → policy → connect → tunnel → TLS | open, retry, ready, failed |
//! | [`exchange`] | request bytes out, response head and body in | pending, done, failed |
//! | [`redirect`] | the redirect rules | follow, final, too many |
//! | [`retry`] | the retry rules and backoff | retry or not, the delay |
//! | [`deadline`] | a task's deadlines and its wheel entry | which one fired, its error |
//! | [`rate`] | `--rate` pacing | start now, or when |
//! | [`attempt`] | per-attempt state, the `Outcome` | |
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
//! - every task pulled from the source gets exactly one `on_done` (unless `stop`);
//! - a task has at most one wheel entry: its nearest deadline ([`deadline`]);
//! - no deadline runs while a task waits for a slot (concurrency, per-host, rate,
//!   backoff); the attempt's clock starts when it leaves the queue;
//! - `active` counts tasks holding a concurrency slot (all but those in backoff);
//! - a connection in the slab is registered with the poll under its slab key, and
//!   counted open in the pool from its dial until [`Engine::close_conn`].
//!
//! See `docs/architecture.md` and `docs/timeouts.md`.

pub mod api;
mod attempt;
mod deadline;
mod dial;
mod exchange;
mod pool;
mod rate;
mod redirect;
mod retry;

pub use api::{
    Config, Handler, Notifier, Outcome, Proxy, Redirect, Request, RequestSpec, ResponseHead,
    Source, Stats, Timings,
};

use crate::codec::request::{RequestHead, DEFAULT_HEADERS};
use crate::codec::{Coding, ContentDecoder};
use crate::conn::{Conn, Phase};
use crate::error::{Error, ErrorKind};
use crate::resolve::{Addrs, Answered, DnsError, Lookup, Resolver};
use crate::target::Target;
use crate::timer::{TimerKey, Wheel};
use attempt::{Attempt, Identity};
use deadline::{Deadlines, Doing};
use dial::{Ctx, Dialer, Step};
use exchange::{Bufs, Exchange, Read, Sink, Verdict};
use mio::{Events, Interest, Poll, Token, Waker};
use pool::{Acquire, Key, Pool};
use redirect::Decision;
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
/// The stub resolver's UDP sockets (IPv4, IPv6).
const DNS_TOKENS: [Token; 2] = [Token(usize::MAX - 1), Token(usize::MAX - 2)];
const READ_BUF: usize = 64 * 1024;
const DECODE_BUF: usize = 16 * 1024;
/// Delay before retrying a connect that failed for lack of file descriptors.
const FD_BACKOFF_MS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerRef {
    /// A task's nearest deadline.
    Task(usize),
    /// A task's retry backoff (or file-descriptor wait) is over.
    Wake(usize),
    /// An idle pooled connection has been idle long enough.
    Idle(usize),
    /// The rate limiter allows another request.
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    /// Waiting for its first (or next) attempt to start: queued for a slot.
    Queued,
    /// Waiting for a per-host connection slot.
    WaitHost,
    /// Getting a new connection (its `Dialer` runs).
    Dialing,
    /// Request/response exchange on a connection.
    Exchanging,
    /// Retry backoff; no slot held.
    Backoff,
}

/// A request in progress: what lasts across attempts, and the current attempt.
#[derive(Debug)]
struct Task {
    tag: u64,
    input: String,
    spec: Arc<RequestSpec>,
    first: Target,
    attempts: u32,
    state: TaskState,
    deadlines: Deadlines,
    a: Attempt,
}

#[derive(Debug)]
struct Slot {
    conn: Conn,
    /// Pool key: host, tls, port.
    host: Rc<str>,
    tls: bool,
    port: u16,
    content: ContentDecoder,
    task: Option<usize>,
    idle_timer: Option<TimerKey>,
    /// A readable event arrived while the request was still being written.
    readable: bool,
}

impl Slot {
    fn key(&self) -> Key<'_> {
        Key {
            host: &self.host,
            tls: self.tls,
            port: self.port,
        }
    }
}

#[inline]
fn key_of(t: &Target) -> Key<'_> {
    Key {
        host: t.host(),
        tls: t.tls,
        port: t.port,
    }
}

/// The engine; see the module docs and `examples/fetch.rs`.
pub struct Engine<S: Source, H: Handler> {
    cfg: Config,
    source: S,
    handler: H,
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    wheel: Wheel<TimerRef>,
    fired: Vec<TimerRef>,
    ready_io: Vec<(usize, bool, bool, bool)>,
    tasks: Slab<Task>,
    conns: Slab<Slot>,
    pool: Pool,
    resolver: Resolver,
    dns_done: Vec<Answered>,
    /// Tasks whose backoff ended, waiting for a slot (before new source requests).
    ready: VecDeque<usize>,
    active: usize,
    filling: bool,
    in_backoff: usize,
    source_done: bool,
    rate: rate::Rate,
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

/// Raises the soft limit on open files to the hard limit (best effort).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// A new engine. Raises the open-file soft limit to the hard limit.
    pub fn new(cfg: Config, source: S, handler: H) -> io::Result<Self> {
        raise_fd_limit();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut resolver = Resolver::new(&cfg.resolve, cfg.hosts_file.as_deref(), waker.clone());
        resolver.use_servers(&cfg.dns_servers, poll.registry(), DNS_TOKENS)?;
        let tls = match &cfg.tls {
            Some(t) => t.clone(),
            None => crate::tls::client_config(&crate::tls::TlsOptions::default())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        };
        let now = Instant::now();
        let seed = now.elapsed().subsec_nanos() as u64
            ^ (std::process::id() as u64) << 32
            ^ 0x9e37_79b9_7f4a_7c15;
        Ok(Engine {
            cfg: Config {
                concurrency: cfg.concurrency.max(1),
                ..cfg
            },
            source,
            handler,
            poll,
            events: Events::with_capacity(1024),
            waker,
            wheel: Wheel::new(now),
            fired: Vec::new(),
            ready_io: Vec::new(),
            tasks: Slab::new(),
            conns: Slab::new(),
            pool: Pool::default(),
            resolver,
            dns_done: Vec::new(),
            ready: VecDeque::new(),
            active: 0,
            filling: false,
            in_backoff: 0,
            source_done: false,
            rate: rate::Rate::new(cfg.rate),
            rate_timer: false,
            rbuf: vec![0u8; READ_BUF].into_boxed_slice(),
            cbuf: vec![0u8; DECODE_BUF].into_boxed_slice(),
            tls,
            rng: retry::Rng::new(seed),
            stats: Stats::default(),
            now,
        })
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
        Ok(())
    }

    /// One loop turn: start what may start, wait for readiness up to the next
    /// deadline (or `max_wait`, if sooner), then handle events and deadlines.
    /// Returns whether work remains.
    pub fn step(&mut self, max_wait: Option<Duration>) -> io::Result<bool> {
        self.now = Instant::now();
        self.fill();
        let next = match (
            self.wheel.next_deadline().map(|ms| self.wheel.instant(ms)),
            self.resolver.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut wait = next.map(|t| t.saturating_duration_since(self.now));
        if let Some(m) = max_wait {
            wait = Some(wait.map_or(m, |w| w.min(m)));
        }
        if self.is_finished() {
            return Ok(false);
        }
        if let Err(e) = self.poll.poll(&mut self.events, wait) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.now = Instant::now();
        let mut ready = std::mem::take(&mut self.ready_io);
        let mut dns_readable = false;
        for e in self.events.iter() {
            let token = e.token();
            if token == WAKER {
                continue;
            }
            if self.resolver.owns(token) {
                dns_readable = true;
                continue;
            }
            ready.push((
                token.0,
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_writable() || e.is_write_closed() || e.is_error(),
                e.is_read_closed() || e.is_error(),
            ));
        }
        if dns_readable {
            self.resolver.on_readable();
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
        Ok(!self.is_finished())
    }

    // ----- time -------------------------------------------------------------------

    fn now_ms_floor(&self) -> u64 {
        self.now
            .saturating_duration_since(self.wheel.instant(0))
            .as_millis() as u64
    }

    fn deadline_ms(&self, after: Duration) -> u64 {
        self.wheel.ms(self.now + after)
    }

    fn expire(&mut self) {
        let now = self.now_ms_floor();
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(now, &mut fired);
        for t in fired.drain(..) {
            self.now = Instant::now();
            match t {
                TimerRef::Task(k) => self.task_deadline(k),
                TimerRef::Wake(k) => self.task_wake(k),
                TimerRef::Idle(c) => {
                    if let Some(s) = self.conns.get_mut(c) {
                        s.idle_timer = None;
                        self.remove_idle(c);
                        self.close_conn(c);
                    }
                }
                TimerRef::Rate => self.rate_timer = false,
            }
        }
        self.fired = fired;
    }

    fn set_phase(&mut self, t: usize, phase: deadline::Phase) {
        let after = match phase {
            deadline::Phase::Connect => self.cfg.connect_timeout,
            deadline::Phase::Read => self.cfg.read_timeout,
        };
        let d = self.deadline_ms(after);
        let tag = TimerRef::Task(t);
        self.tasks[t]
            .deadlines
            .set_phase(phase, d, &mut self.wheel, tag);
    }

    /// Pushes the read deadline forward after progress (cheap when it has not moved).
    fn touch_read(&mut self, t: usize) {
        let d = self.deadline_ms(self.cfg.read_timeout);
        let tag = TimerRef::Task(t);
        self.tasks[t].deadlines.touch_read(d, &mut self.wheel, tag);
    }

    fn task_deadline(&mut self, t: usize) {
        let now = self.now_ms_floor();
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        let Some(fired) = task
            .deadlines
            .fired(now, &mut self.wheel, TimerRef::Task(t))
        else {
            return;
        };
        let timeouts = deadline::Timeouts {
            connect: self.cfg.connect_timeout,
            read: self.cfg.read_timeout,
            total: self.cfg.total_timeout,
        };
        let a = &task.a;
        let host = a.url(&task.first).host();
        let conn = a.conn.and_then(|c| self.conns.get(c)).map(|s| &s.conn);
        let doing = match task.state {
            TaskState::Exchanging if a.resp.status.is_some() => Doing::ReadingBody,
            TaskState::Exchanging if conn.is_some_and(|c| c.phase == Phase::Writing) => {
                Doing::Sending
            }
            TaskState::Exchanging => Doing::WaitingHead,
            TaskState::Dialing if a.dial.as_ref().is_some_and(Dialer::resolving) => {
                Doing::Resolving(host)
            }
            _ => match conn {
                Some(c) if c.phase == Phase::Handshaking => Doing::Handshaking(&c.peer),
                Some(c) => Doing::Connecting(&c.peer),
                None => Doing::Connecting(&host),
            },
        };
        let error = deadline::error(fired, doing, timeouts);
        self.fail(t, error, false);
    }

    fn task_wake(&mut self, t: usize) {
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        if task.state == TaskState::Backoff {
            task.state = TaskState::Queued;
            self.in_backoff -= 1;
            self.ready.push_back(t);
        } else if task.state == TaskState::Queued {
            // A file-descriptor wait: the task kept its slot.
            self.start_attempt(t);
        }
    }

    // ----- scheduling -------------------------------------------------------------

    /// Starts queued retries and new requests while slots are free. Called at the
    /// start and end of a turn and whenever a request finishes, so a freed slot (and
    /// its now idle connection) is reused at once rather than after the rest of the
    /// turn's events. Re-entry (a request that fails at once inside `fill`) returns
    /// immediately: the outer loop goes on.
    fn fill(&mut self) {
        if self.stopped() || self.filling {
            return;
        }
        self.filling = true;
        self.fill_slots();
        self.filling = false;
    }

    fn fill_slots(&mut self) {
        while self.active < self.cfg.concurrency {
            if let Some(t) = self.ready.pop_front() {
                self.active += 1;
                self.start_attempt(t);
                continue;
            }
            if self.source_done || !self.rate_allows() {
                break;
            }
            match self.source.next_request() {
                Some(req) => {
                    self.rate.take(self.now);
                    self.admit(req)
                }
                None => {
                    if self.source.is_exhausted() {
                        self.source_done = true;
                    }
                    break;
                }
            }
        }
    }

    /// True when `--rate` lets a request start now; else arms a wake-up.
    fn rate_allows(&mut self) -> bool {
        match self.rate.wait(self.now) {
            None => true,
            Some(at) => {
                if !self.rate_timer {
                    let ms = self.wheel.ms(at);
                    self.wheel.insert(ms, TimerRef::Rate);
                    self.rate_timer = true;
                }
                false
            }
        }
    }

    fn admit(&mut self, req: Request) {
        self.now = Instant::now();
        self.stats.started += 1;
        let target = match Target::parse(&req.url) {
            Ok(t) => t,
            Err(e) => {
                let input = req.url.trim().to_string();
                let id = Identity {
                    tag: req.tag,
                    url: input.clone(),
                    final_url: input.clone(),
                    input,
                    attempts: 0,
                };
                self.stats.done += 1;
                self.stats.errors += 1;
                let o = attempt::outcome(id, &mut Attempt::default(), Some(e), self.now);
                self.handler.on_done(o);
                return;
            }
        };
        let t = self.tasks.insert(Task {
            tag: req.tag,
            input: req.url,
            spec: req.spec,
            first: target,
            attempts: 0,
            state: TaskState::Queued,
            deadlines: Deadlines::default(),
            a: Attempt::default(),
        });
        self.active += 1;
        self.start_attempt(t);
    }

    /// Begins an attempt (first, retry) from the first URL, with fresh state.
    fn start_attempt(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        task.a = Attempt::default();
        task.deadlines.set_total(None);
        self.start_hop(t);
    }

    /// Starts the attempt's clocks if they are not running yet.
    fn begin_clock(&mut self, t: usize) {
        if self.tasks[t].a.started.is_none() {
            let total = self.cfg.total_timeout.map(|d| self.deadline_ms(d));
            let task = &mut self.tasks[t];
            task.a.started = Some(self.now);
            task.a.timings = Timings::default();
            task.deadlines.set_total(total);
            task.attempts += 1;
        }
    }

    /// Gets a connection for the current URL: pooled, or a new one when the
    /// per-host limit allows, else waits for one.
    fn start_hop(&mut self, t: usize) {
        let task = &self.tasks[t];
        let key = key_of(task.a.url(&task.first));
        match self.pool.acquire(key, t, self.cfg.per_host) {
            Acquire::Idle(c) => self.reuse_for(t, c),
            Acquire::Wait => {
                let task = &mut self.tasks[t];
                task.state = TaskState::WaitHost;
                // No deadline runs while waiting; a redirect hop's total keeps running.
                task.deadlines.suspend(&mut self.wheel, TimerRef::Task(t));
            }
            Acquire::Dial => self.dial(t),
        }
    }

    /// Gives pooled connection `c` to task `t`: the attempt's clocks start (if not
    /// yet), and the phases a reused connection skips are reported as not run.
    fn reuse_for(&mut self, t: usize, c: usize) {
        self.begin_clock(t);
        self.tasks[t].a.new_hop();
        let slot = &mut self.conns[c];
        if let Some(k) = slot.idle_timer.take() {
            self.wheel.cancel(k);
        }
        slot.task = Some(t);
        self.tasks[t].a.conn = Some(c);
        self.send(t, c);
    }

    // ----- dialing ----------------------------------------------------------------

    /// A new connection for the task's hop (its pool slot is reserved).
    fn dial(&mut self, t: usize) {
        self.begin_clock(t);
        let task = &mut self.tasks[t];
        task.a.new_hop();
        task.state = TaskState::Dialing;
        task.a.dial = Some(Dialer::new(self.now));
        self.set_phase(t, deadline::Phase::Connect);
        if self.cfg.unix_socket.is_some() {
            let step = self.with_dialer(t, None, |d, ctx, _, _, _| d.skip_resolution(ctx));
            self.dial_step(t, step);
            return;
        }
        let task = &self.tasks[t];
        let (host, port) = dial::dial_to(&self.cfg, task.a.url(&task.first));
        match self.resolver.lookup(host, port, t, self.now) {
            Lookup::Ready(a) => self.resolved(t, a),
            Lookup::Pending => {}
            Lookup::Failed(e) => self.fail(t, e.error, !e.temporary),
        }
    }

    fn dns_answer(&mut self, t: usize, host: &str, answer: Result<Addrs, DnsError>) {
        // The task may have given up meanwhile, and its slot gone to another task.
        if self.tasks.get(t).is_none_or(|task| {
            task.state != TaskState::Dialing
                || !task.a.dial.as_ref().is_some_and(Dialer::resolving)
                || dial::dial_to(&self.cfg, task.a.url(&task.first)).0 != host
        }) {
            return;
        }
        match answer {
            Ok(a) => self.resolved(t, a),
            Err(e) => self.fail(t, e.error, !e.temporary),
        }
    }

    fn resolved(&mut self, t: usize, addrs: Addrs) {
        let step = self.with_dialer(t, None, |d, ctx, timings, _, _| {
            d.resolved(addrs, ctx, timings)
        });
        self.dial_step(t, step);
    }

    /// Calls the task's dialer with its context (and connection `c`, if given).
    fn with_dialer(
        &mut self,
        t: usize,
        c: Option<usize>,
        f: impl FnOnce(&mut Dialer, Ctx<'_>, &mut Timings, Option<&mut Conn>, &mut [u8]) -> Step,
    ) -> Step {
        let task = &mut self.tasks[t];
        let a = &mut task.a;
        let Some(d) = a.dial.as_mut() else {
            return Step::Pending;
        };
        let ctx = Ctx {
            cfg: &self.cfg,
            target: a.hop.as_ref().unwrap_or(&task.first),
            tls: &self.tls,
            now: self.now,
        };
        let conn = c.and_then(|c| self.conns.get_mut(c)).map(|s| &mut s.conn);
        f(d, ctx, &mut a.timings, conn, &mut self.rbuf)
    }

    /// Carries out what the dialer asked, until it waits, is ready, or fails.
    fn dial_step(&mut self, t: usize, mut step: Step) {
        loop {
            step = match step {
                Step::Pending => return,
                Step::Open(conn) => self.open_conn(t, conn),
                Step::Retry => {
                    if let Some(c) = self.tasks[t].a.conn.take() {
                        self.drop_conn_socket(c);
                    }
                    self.with_dialer(t, None, |d, ctx, _, _, _| d.next(ctx))
                }
                Step::NoFds => {
                    // Out of file descriptors: free an idle one, or wait a little.
                    let Some(c) = self.pool.take_any_idle() else {
                        self.release_host_slot(t);
                        self.requeue_after(t, FD_BACKOFF_MS);
                        return;
                    };
                    self.close_conn(c);
                    self.with_dialer(t, None, |d, ctx, _, _, _| d.next(ctx))
                }
                Step::Ready => {
                    let a = &mut self.tasks[t].a;
                    a.dial = None;
                    let c = a.conn.expect("a ready dial holds its connection");
                    self.send(t, c);
                    return;
                }
                Step::Failed { error, final_ } => {
                    self.fail(t, error, final_);
                    return;
                }
            }
        }
    }

    /// Registers a connection the dialer started and puts it in the slab.
    fn open_conn(&mut self, t: usize, conn: Conn) -> Step {
        let c = self.conns.vacant_key();
        let cur = self.tasks[t].a.url(&self.tasks[t].first);
        let mut slot = Slot {
            conn,
            host: Rc::from(cur.host()),
            tls: cur.tls,
            port: cur.port,
            content: ContentDecoder::new(Coding::Identity, 0),
            task: Some(t),
            idle_timer: None,
            readable: false,
        };
        let registered = self.poll.registry().register(
            &mut slot.conn.sock,
            Token(c),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            let peer = slot.conn.peer.clone();
            return self.with_dialer(t, None, |d, ctx, _, _, _| d.open_failed(&peer, &e, ctx));
        }
        self.conns.insert(slot);
        self.stats.connections += 1;
        self.tasks[t].a.conn = Some(c);
        self.with_dialer(t, Some(c), |d, ctx, timings, conn, rbuf| match conn {
            Some(conn) => d.opened(conn, rbuf, ctx, timings),
            None => Step::Retry,
        })
    }

    /// Puts a task back to wait `ms` (keeping its slot), undoing the attempt count.
    fn requeue_after(&mut self, t: usize, ms: u64) {
        let task = &mut self.tasks[t];
        task.deadlines.cancel(&mut self.wheel);
        if task.a.started.take().is_some() {
            task.attempts -= 1;
        }
        task.state = TaskState::Queued;
        let at = self.deadline_ms(Duration::from_millis(ms));
        self.wheel.insert(at, TimerRef::Wake(t));
    }

    /// The task gives back the pool slot it reserved for a dial.
    fn release_host_slot(&mut self, t: usize) {
        let task = &self.tasks[t];
        let tasks = &self.tasks;
        let key = key_of(task.a.url(&task.first));
        if let Some(w) = self.pool.closed(key, |w| still_waiting(tasks, w)) {
            self.start_hop(w);
        }
    }

    // ----- connections ------------------------------------------------------------

    fn conn_event(&mut self, c: usize, readable: bool, writable: bool, hup: bool) {
        let Some(slot) = self.conns.get_mut(c) else {
            return;
        };
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
                    Some(conn) => d.on_ready(conn, readable, writable, rbuf, ctx, timings),
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
                if readable {
                    let t = slot.task.expect("reading conn has a task");
                    self.read(t, c, hup);
                }
            }
        }
    }

    // ----- the exchange -----------------------------------------------------------

    /// Encodes the request for the task's current URL on connection `c` and writes it.
    fn send(&mut self, t: usize, c: usize) {
        let task = &mut self.tasks[t];
        let spec = &task.spec;
        let (method, body): (&str, &[u8]) = if task.a.as_get {
            ("GET", b"")
        } else {
            (&spec.method, &spec.body)
        };
        let cur = task.a.url(&task.first);
        let via_proxy = self.cfg.proxy.as_ref().filter(|_| !cur.tls);
        let started = exchange::start(
            &mut self.conns[c].conn,
            &RequestHead {
                method,
                target: match via_proxy {
                    Some(_) => cur.url.as_str(),
                    None => cur.origin_form(),
                },
                host: cur.host_for_header(),
                port: cur.explicit_port(),
                defaults: &DEFAULT_HEADERS,
                headers: &spec.headers,
                body,
                close: !self.cfg.keepalive,
                proxy_auth: via_proxy.and_then(|p| p.auth.as_deref()),
            },
        );
        if let Err(e) = started {
            self.fail(t, e, true);
            return;
        }
        task.state = TaskState::Exchanging;
        task.a.exchange = Exchange::default();
        self.set_phase(t, deadline::Phase::Read);
        self.write(t, c);
    }

    fn write(&mut self, t: usize, c: usize) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        match exchange::write(&mut slot.conn, &mut self.tasks[t].a.exchange, self.now) {
            Ok(w) => {
                if w.moved {
                    self.touch_read(t);
                }
                if w.done && std::mem::take(&mut self.conns[c].readable) {
                    self.read(t, c, true);
                }
            }
            Err(e) => self.exchange_failed(t, c, e, reused),
        }
    }

    fn read(&mut self, t: usize, c: usize, drain: bool) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        let task = &mut self.tasks[t];
        let a = &mut task.a;
        let cur = a.hop.as_ref().unwrap_or(&task.first);
        let (redirects, as_get) = (&mut a.redirects, &mut a.as_get);
        let method = task.spec.method.as_str();
        let policy = redirect::Policy {
            follow: self.cfg.follow,
            max: self.cfg.max_redirects,
        };
        let read = exchange::read(
            &mut slot.conn,
            &mut slot.content,
            Bufs {
                read: &mut self.rbuf,
                decoded: &mut self.cbuf,
            },
            drain,
            self.now,
            &mut a.exchange,
            &mut a.resp,
            &mut a.timings,
            Sink {
                handler: &mut self.handler,
                tag: task.tag,
                url: cur.url.as_str(),
                max_body: self.cfg.max_body,
            },
            |status, location| {
                let hop = redirect::Hop {
                    url: cur,
                    method,
                    as_get: *as_get,
                    followed: redirects.len(),
                };
                match redirect::decide(status, location, hop, policy) {
                    Decision::Final { location } => Verdict::Final(location),
                    Decision::Follow {
                        next,
                        record,
                        as_get: get,
                    } => {
                        redirects.push(record);
                        *as_get = get;
                        Verdict::Follow(next)
                    }
                    Decision::TooMany(e) => Verdict::Fail(e),
                }
            },
        );
        match read {
            Read::Pending { progressed } => {
                if progressed {
                    self.touch_read(t);
                }
            }
            Read::Done { reusable } => self.response_done(t, c, reusable),
            Read::Failed(e) => {
                self.release_conn(c, true);
                self.fail(t, e, true);
            }
            Read::Broken(e) => self.exchange_failed(t, c, e, reused),
        }
    }

    /// The exchange on `c` failed. A reused connection that died before any response
    /// byte was stale: retry on a fresh one without counting an attempt.
    fn exchange_failed(&mut self, t: usize, c: usize, e: Error, reused: bool) {
        let stale =
            reused && !self.conns[c].conn.got_response_bytes() && e.kind == ErrorKind::Closed;
        self.release_conn(c, true);
        if stale {
            self.tasks[t].a.conn = None;
            self.start_hop(t);
            return;
        }
        let after_response = self.tasks[t].a.resp.status.is_some();
        self.fail(t, e, after_response);
    }

    fn response_done(&mut self, t: usize, c: usize, reusable: bool) {
        self.conns[c].conn.served += 1;
        let keep = reusable && self.cfg.keepalive;
        self.release_conn(c, !keep);
        let a = &mut self.tasks[t].a;
        a.conn = None;
        if let Some(next) = a.exchange.follow.take() {
            a.hop = Some(next);
            self.start_hop(t);
            return;
        }
        self.finish(t, None);
    }

    // ----- the pool ---------------------------------------------------------------

    /// Detaches `c` from its task and pools it, or closes it.
    fn release_conn(&mut self, c: usize, close: bool) {
        let Some(slot) = self.conns.get_mut(c) else {
            return;
        };
        slot.task = None;
        if close || !slot.conn.make_idle() {
            self.close_conn(c);
            return;
        }
        // Pool it: hand to a waiter of the same key first.
        let tasks = &self.tasks;
        if let Some(w) = self
            .pool
            .put_idle(slot.key(), c, |w| still_waiting(tasks, w))
        {
            self.reuse_for(w, c);
            return;
        }
        let at = self.deadline_ms(self.cfg.idle_timeout);
        self.conns[c].idle_timer = Some(self.wheel.insert(at, TimerRef::Idle(c)));
    }

    fn remove_idle(&mut self, c: usize) {
        if let Some(s) = self.conns.get(c) {
            self.pool.remove_idle(s.key(), c);
        }
    }

    /// Closes a connection that is registered and counted in the pool.
    fn close_conn(&mut self, c: usize) {
        let Some(slot) = self.drop_conn_socket(c) else {
            return;
        };
        let tasks = &self.tasks;
        if let Some(w) = self.pool.closed(slot.key(), |w| still_waiting(tasks, w)) {
            self.start_hop(w);
        }
    }

    /// Deregisters and drops the socket without touching the pool's counts (a
    /// connect attempt that failed: the pool slot stays with the task).
    fn drop_conn_socket(&mut self, c: usize) -> Option<Slot> {
        let mut slot = self.conns.try_remove(c)?;
        if let Some(k) = slot.idle_timer.take() {
            self.wheel.cancel(k);
        }
        let _ = self.poll.registry().deregister(&mut slot.conn.sock);
        Some(slot)
    }

    // ----- endings ----------------------------------------------------------------

    /// The attempt failed with `e`: retry when allowed (`final_` forbids it), else
    /// finish with the error.
    fn fail(&mut self, t: usize, e: Error, final_: bool) {
        // Give back what the task holds: its connection, or its pool slot while it
        // dials, or its place among a host's waiters.
        let conn = self.tasks[t].a.conn.take();
        match conn.filter(|&c| self.conns.get(c).is_some_and(|s| s.task == Some(t))) {
            Some(c) if self.conns[c].conn.phase == Phase::Connecting => {
                self.drop_conn_socket(c);
                self.release_host_slot(t);
            }
            Some(c) => self.release_conn(c, true),
            None => match self.tasks[t].state {
                TaskState::Dialing => self.release_host_slot(t),
                TaskState::WaitHost => {
                    let task = &self.tasks[t];
                    self.pool.cancel_wait(key_of(task.a.url(&task.first)), t);
                }
                _ => {}
            },
        }
        let task = &mut self.tasks[t];
        let failure = retry::Failure {
            kind: e.kind,
            final_,
            got_response: task.a.resp.status.is_some(),
            attempts: task.attempts,
        };
        if retry::should_retry(failure, self.cfg.retries) {
            task.deadlines.cancel(&mut self.wheel);
            task.state = TaskState::Backoff;
            let base = self.cfg.retry_backoff.as_millis() as u64;
            let delay = retry::backoff_ms(base, task.attempts, &mut self.rng);
            self.active -= 1;
            self.in_backoff += 1;
            let at = self.deadline_ms(Duration::from_millis(delay));
            self.wheel.insert(at, TimerRef::Wake(t));
            return;
        }
        self.finish(t, Some(e));
    }

    fn finish(&mut self, t: usize, error: Option<Error>) {
        let mut task = self.tasks.remove(t);
        task.deadlines.cancel(&mut self.wheel);
        self.active -= 1;
        self.stats.done += 1;
        if error.is_some() {
            self.stats.errors += 1;
        }
        let id = Identity {
            tag: task.tag,
            input: task.input,
            final_url: match task.a.hop.take() {
                Some(h) => h.url.into(),
                None => task.first.url.to_string(),
            },
            url: task.first.url.into(),
            attempts: task.attempts,
        };
        let o = attempt::outcome(id, &mut task.a, error, self.now);
        self.handler.on_done(o);
        self.fill();
    }
}

/// True when task `w` still waits for a pool slot.
fn still_waiting(tasks: &Slab<Task>, w: usize) -> bool {
    tasks.get(w).is_some_and(|x| x.state == TaskState::WaitHost)
}
