//! The engine: one single-threaded mio event loop driving many connections.
//!
//! It owns the clock, the timer wheel, the slab of connections, the slab of tasks
//! (requests in progress), the keep-alive pool and the scheduler (concurrency,
//! per-host limit, rate, retry backoff). A task's life:
//!
//! ```text
//!  source ─▶ start ─▶ [wait host slot] ─▶ resolve ─▶ connect ─▶ write ─▶ head ─▶ body ─▶ done
//!              ▲           (no deadline)     └─ pooled connection ─────┘          │
//!              └──────────────── retry after backoff (no slot held) ◀── retryable error
//! ```
//!
//! Invariants:
//! - every task pulled from the source gets exactly one `on_done` (unless `stop`);
//! - a task has at most one wheel entry: its nearest deadline (connect or read
//!   phase, or the attempt's total); the error names the deadline that fired;
//! - no deadline runs while a task waits for a slot (concurrency, per-host, rate,
//!   backoff); the attempt's clock starts when it leaves the queue;
//! - `active` counts tasks holding a concurrency slot (all but those in backoff).
//!
//! See `docs/architecture.md` and `docs/timeouts.md`.

pub mod api;
mod host;
mod rate;

pub use api::{
    Config, Handler, Outcome, Proxy, Redirect, Request, RequestSpec, ResponseHead, Source, Timings,
};

use crate::codec::request::{encode, RequestHead, DEFAULT_HEADERS};
use crate::codec::{Coding, ContentDecoder};
use crate::conn::{Conn, Flow, Phase, ReadEnd, ReadEvent};
use crate::error::{Error, ErrorKind};
use crate::resolve::{Addrs, Answered, DnsError, Lookup, Resolver};
use crate::socket::Peer;
use crate::target::Target;
use crate::timer::{TimerKey, Wheel};
use host::Hosts;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
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
    /// Waiting for the resolver.
    Resolving,
    /// TCP connect in progress.
    Connecting,
    /// Request/response exchange on a connection.
    Exchanging,
    /// Retry backoff; no slot held.
    Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhaseDeadline {
    Connect,
    Read,
}

impl Task {
    /// The URL of the current hop.
    fn cur(&self) -> &Target {
        self.hop.as_ref().unwrap_or(&self.first)
    }
}

#[derive(Debug)]
struct Task {
    tag: u64,
    input: String,
    spec: Arc<RequestSpec>,
    first: Target,
    /// The current hop's URL when a redirect was followed (else `first`).
    hop: Option<Target>,
    get_override: bool,
    redirects: Vec<Redirect>,
    attempts: u32,
    state: TaskState,
    conn: Option<usize>,
    addrs: Option<Addrs>,
    addr_idx: usize,
    last_connect_error: Option<Error>,
    timer: Option<TimerKey>,
    phase: PhaseDeadline,
    phase_deadline: u64,
    total_deadline: Option<u64>,
    attempt_start: Option<Instant>,
    stage_start: Instant,
    timings: Timings,
    sent_at: Option<Instant>,
    status: Option<u16>,
    content_length: Option<u64>,
    bytes: u64,
    capped: bool,
    location: Option<String>,
    /// The current response is a redirect being followed: its body is discarded.
    next_hop: Option<Target>,
}

/// What the read callback decided, acted upon after the read turn.
#[derive(Debug)]
enum After {
    Nothing,
    Done { reusable: bool },
    Fail(Error),
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

/// Wakes the engine from another thread (for sources that wait for input).
#[derive(Debug, Clone)]
pub struct Notifier(Arc<Waker>);

impl Notifier {
    /// Makes the engine run a loop turn (and ask its source again) soon.
    pub fn notify(&self) {
        let _ = self.0.wake();
    }
}

/// Counters the engine keeps, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests pulled from the source.
    pub started: u64,
    /// Requests finished (`on_done` called).
    pub done: u64,
    /// Of those, finished with an error.
    pub errors: u64,
    /// Connections opened.
    pub connections: u64,
    /// Requests in flight now.
    pub active: usize,
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
    hosts: Hosts,
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
    rng: u64,
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

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// The kinds the contract retries (`dns` only when temporary: callers say so).
fn retryable(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Dns
            | ErrorKind::Connect
            | ErrorKind::ConnectTimeout
            | ErrorKind::Closed
            | ErrorKind::ReadTimeout
    )
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
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
            hosts: Hosts::default(),
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
            rng: seed | 1,
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

    /// Re-arms a task's single wheel entry at its nearest deadline.
    fn arm(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        if let Some(k) = task.timer.take() {
            self.wheel.cancel(k);
        }
        let d = match task.total_deadline {
            Some(total) => total.min(task.phase_deadline),
            None => task.phase_deadline,
        };
        task.timer = Some(self.wheel.insert(d, TimerRef::Task(t)));
    }

    fn set_phase(&mut self, t: usize, phase: PhaseDeadline) {
        let after = match phase {
            PhaseDeadline::Connect => self.cfg.connect_timeout,
            PhaseDeadline::Read => self.cfg.read_timeout,
        };
        let d = self.deadline_ms(after);
        let task = &mut self.tasks[t];
        task.phase = phase;
        task.phase_deadline = d;
        self.arm(t);
    }

    /// Pushes the read deadline forward after progress (cheap when it has not moved).
    fn touch_read(&mut self, t: usize) {
        let d = self.deadline_ms(self.cfg.read_timeout);
        let task = &mut self.tasks[t];
        if task.phase_deadline != d {
            task.phase = PhaseDeadline::Read;
            task.phase_deadline = d;
            // Re-armed only when the deadline moved: at most once per millisecond
            // however many reads arrive.
            self.arm(t);
        }
    }

    fn task_deadline(&mut self, t: usize) {
        let now = self.now_ms_floor();
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        task.timer = None;
        let total_due = task.total_deadline.is_some_and(|d| d <= now);
        if !total_due && task.phase_deadline > now {
            // Woken for a deadline that has since moved.
            self.arm(t);
            return;
        }
        let error = if total_due {
            let what = match task.state {
                TaskState::Exchanging if task.status.is_some() => "while reading the body",
                TaskState::Exchanging => "while waiting for the response",
                _ => "while connecting",
            };
            Error::new(
                ErrorKind::TotalTimeout,
                format!(
                    "attempt exceeded --timeout {} {what}",
                    secs(self.cfg.total_timeout.unwrap_or_default())
                ),
            )
        } else if task.phase == PhaseDeadline::Connect {
            let conn = task.conn.and_then(|c| self.conns.get(c));
            let what = match task.state {
                TaskState::Resolving => format!("resolving {}", task.cur().host()),
                _ if conn.is_some_and(|s| s.conn.phase == Phase::Handshaking) => format!(
                    "TLS handshake with {}",
                    conn.map_or_else(String::new, |s| s.conn.peer.to_string())
                ),
                _ => format!(
                    "connecting to {}",
                    conn.map_or_else(
                        || task.cur().host().to_string(),
                        |s| s.conn.peer.to_string()
                    )
                ),
            };
            Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "no connection within --connect-timeout {} ({what})",
                    secs(self.cfg.connect_timeout)
                ),
            )
        } else {
            let writing = task
                .conn
                .and_then(|c| self.conns.get(c))
                .is_some_and(|s| s.conn.phase == Phase::Writing);
            let what = match task.status {
                Some(_) => "reading the body",
                None if writing => "sending the request",
                None => "waiting for the response head",
            };
            Error::new(
                ErrorKind::ReadTimeout,
                format!(
                    "peer silent for --read-timeout {} while {what}",
                    secs(self.cfg.read_timeout)
                ),
            )
        };
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

    fn jitter(&mut self, max: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if max == 0 {
            0
        } else {
            r % max
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
                self.stats.done += 1;
                self.stats.errors += 1;
                self.handler.on_done(Outcome {
                    tag: req.tag,
                    url: input.clone(),
                    final_url: input.clone(),
                    input,
                    status: None,
                    error: Some(e),
                    content_length: None,
                    bytes: 0,
                    capped: false,
                    location: None,
                    redirects: Vec::new(),
                    timings: Timings::default(),
                    attempts: 0,
                });
                return;
            }
        };
        let t = self.tasks.insert(Task {
            tag: req.tag,
            input: req.url,
            spec: req.spec,
            first: target,
            hop: None,
            get_override: false,
            redirects: Vec::new(),
            attempts: 0,
            state: TaskState::Queued,
            conn: None,
            addrs: None,
            addr_idx: 0,
            last_connect_error: None,
            timer: None,
            phase: PhaseDeadline::Connect,
            phase_deadline: 0,
            total_deadline: None,
            attempt_start: None,
            stage_start: self.now,
            timings: Timings::default(),
            sent_at: None,
            status: None,
            content_length: None,
            bytes: 0,
            capped: false,
            location: None,
            next_hop: None,
        });
        self.active += 1;
        self.start_attempt(t);
    }

    /// Begins an attempt (first, retry) from the first URL.
    fn start_attempt(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        task.hop = None;
        task.get_override = false;
        task.redirects.clear();
        task.attempt_start = None;
        task.total_deadline = None;
        self.start_hop(t);
    }

    /// Starts the attempt's clocks if they are not running yet.
    fn begin_clock(&mut self, t: usize) {
        if self.tasks[t].attempt_start.is_none() {
            let total = self.cfg.total_timeout.map(|d| self.deadline_ms(d));
            let task = &mut self.tasks[t];
            task.attempt_start = Some(self.now);
            task.total_deadline = total;
            task.attempts += 1;
            task.timings = Timings::default();
        }
    }

    /// Gets a connection for the current URL: pooled, or a new one when the
    /// per-host limit allows, else waits for one.
    fn start_hop(&mut self, t: usize) {
        let per_host = self.cfg.per_host;
        let cur = self.tasks[t].cur();
        let (tls, port) = (cur.tls, cur.port);
        let entry = self.hosts.entry(cur.host(), tls, port);
        if let Some(c) = entry.idle.pop() {
            self.reuse_for(t, c);
            return;
        }
        if per_host > 0 && entry.open >= per_host {
            entry.waiters.push_back(t);
            let task = &mut self.tasks[t];
            task.state = TaskState::WaitHost;
            // No deadline runs while waiting; a redirect hop's total keeps running.
            if let Some(k) = task.timer.take() {
                self.wheel.cancel(k);
            }
            if task.total_deadline.is_some() {
                task.phase_deadline = u64::MAX;
                self.arm(t);
            }
            return;
        }
        entry.open += 1;
        self.begin_clock(t);
        let task = &mut self.tasks[t];
        // A redirect hop reports its own phases, not the previous hop's.
        task.timings.dns = None;
        task.timings.connect = None;
        task.timings.tls = None;
        task.state = TaskState::Resolving;
        task.stage_start = self.now;
        task.addrs = None;
        task.addr_idx = 0;
        task.last_connect_error = None;
        self.set_phase(t, PhaseDeadline::Connect);
        if self.cfg.unix_socket.is_some() {
            // Every connection goes to the socket: nothing to resolve.
            self.tasks[t].addrs = Some(Arc::from([]));
            self.connect_next(t);
            return;
        }
        let (dial_host, dial_port) = dial(&self.cfg, self.tasks[t].cur());
        let lookup = self.resolver.lookup(dial_host, dial_port, t, self.now);
        match lookup {
            Lookup::Ready(a) => self.resolved(t, a),
            Lookup::Pending => {}
            Lookup::Failed(e) => {
                let retry = e.temporary;
                self.fail(t, e.error, !retry);
            }
        }
    }

    fn dns_answer(&mut self, t: usize, host: &str, answer: Result<Addrs, DnsError>) {
        // The task may have given up meanwhile, and its slot gone to another task.
        if self.tasks.get(t).is_none_or(|task| {
            task.state != TaskState::Resolving || dial(&self.cfg, task.cur()).0 != host
        }) {
            return;
        }
        match answer {
            Ok(a) => self.resolved(t, a),
            Err(e) => {
                self.fail(t, e.error, !e.temporary);
            }
        }
    }

    fn resolved(&mut self, t: usize, addrs: Addrs) {
        let policy = &self.cfg.addresses;
        let addrs = if policy.is_open() || addrs.iter().all(|&a| policy.permits(a)) {
            addrs
        } else {
            let allowed: Vec<_> = addrs
                .iter()
                .copied()
                .filter(|&a| policy.permits(a))
                .collect();
            if allowed.is_empty() {
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                let e = Error::new(
                    ErrorKind::Denied,
                    format!(
                        "every address of {} ({}) is outside --allow or inside --deny",
                        self.tasks[t].cur().host(),
                        list.join(", ")
                    ),
                );
                self.fail(t, e, true);
                return;
            }
            allowed.into()
        };
        let task = &mut self.tasks[t];
        task.timings.dns = Some(self.now.duration_since(task.stage_start));
        task.addrs = Some(addrs);
        task.addr_idx = 0;
        self.connect_next(t);
    }

    /// Connects to the task's next address; fails the task when none is left.
    fn connect_next(&mut self, t: usize) {
        loop {
            let task = &mut self.tasks[t];
            let addrs = task.addrs.clone().expect("resolved");
            let unix = self.cfg.unix_socket.clone();
            let peers = if unix.is_some() { 1 } else { addrs.len() };
            if task.addr_idx >= peers {
                let e = task
                    .last_connect_error
                    .take()
                    .unwrap_or_else(|| Error::new(ErrorKind::Connect, "no addresses left to try"));
                self.fail(t, e, false);
                return;
            }
            let peer = match unix {
                Some(path) => Peer::Unix(path),
                None => Peer::Tcp(SocketAddr::new(
                    addrs[task.addr_idx],
                    dial(&self.cfg, task.cur()).1,
                )),
            };
            task.addr_idx += 1;
            task.stage_start = self.now;
            task.state = TaskState::Connecting;
            match Conn::connect(peer.clone(), self.cfg.limits) {
                Ok(conn) => {
                    let entry = self.conns.vacant_entry();
                    let c = entry.key();
                    let mut slot = Slot {
                        conn,
                        host: Rc::from(task.cur().host()),
                        tls: task.cur().tls,
                        port: task.cur().port,
                        content: ContentDecoder::new(Coding::Identity, 0),
                        task: Some(t),
                        idle_timer: None,
                        readable: false,
                    };
                    if let Err(e) = self.poll.registry().register(
                        &mut slot.conn.sock,
                        Token(c),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.tasks[t].last_connect_error =
                            Some(Error::new(ErrorKind::Connect, format!("{peer}: {e}")));
                        continue;
                    }
                    entry.insert(slot);
                    self.stats.connections += 1;
                    self.tasks[t].conn = Some(c);
                    // A near peer (loopback, same host) has often accepted already:
                    // send now rather than after a poll round trip.
                    self.connect_progress(t, c);
                    return;
                }
                Err(e) if is_fd_exhaustion(&e) => {
                    // Out of file descriptors: free an idle one, or wait a little.
                    let task = &mut self.tasks[t];
                    task.addr_idx -= 1;
                    if let Some(c) = self.hosts.take_any_idle() {
                        self.close_conn(c);
                        continue;
                    }
                    self.release_host_slot(t);
                    self.requeue_after(t, FD_BACKOFF_MS);
                    return;
                }
                Err(e) => {
                    self.tasks[t].last_connect_error = Some(crate::conn::connect_error(&e, &peer));
                }
            }
        }
    }

    /// Puts a task back to wait `ms` (keeping its slot), undoing the attempt count.
    fn requeue_after(&mut self, t: usize, ms: u64) {
        let task = &mut self.tasks[t];
        if let Some(k) = task.timer.take() {
            self.wheel.cancel(k);
        }
        if task.attempt_start.take().is_some() {
            task.attempts -= 1;
        }
        task.state = TaskState::Queued;
        let at = self.deadline_ms(Duration::from_millis(ms));
        self.wheel.insert(at, TimerRef::Wake(t));
    }

    fn release_host_slot(&mut self, t: usize) {
        let c = self.tasks[t].cur();
        let (tls, port) = (c.tls, c.port);
        let host: Rc<str> = Rc::from(c.host());
        let e = self.hosts.entry(&host, tls, port);
        e.open = e.open.saturating_sub(1);
        self.host_slot_freed(&host, tls, port);
    }

    /// A connection of this key closed: a waiter may open one.
    fn host_slot_freed(&mut self, host: &str, tls: bool, port: u16) {
        match pop_waiter(self.hosts.entry(host, tls, port), &self.tasks) {
            Some(w) => self.start_hop(w),
            None => self.hosts.prune(host, tls, port),
        }
    }

    /// Gives pooled connection `c` to task `t`: the attempt's clocks start (if not
    /// yet), and the phases a reused connection skips are reported as not run.
    fn reuse_for(&mut self, t: usize, c: usize) {
        self.begin_clock(t);
        let task = &mut self.tasks[t];
        task.timings.dns = None;
        task.timings.connect = None;
        task.timings.tls = None;
        self.use_conn(t, c);
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
            Phase::Connecting => {
                if !(writable || readable) {
                    return;
                }
                let t = slot.task.expect("connecting conn has a task");
                self.connect_progress(t, c);
            }
            Phase::Tunneling => {
                let t = slot.task.expect("tunneling conn has a task");
                if readable {
                    slot.readable = true;
                }
                if slot.conn.wpos_done() {
                    if std::mem::take(&mut slot.readable) {
                        self.tunnel_read(t, c);
                    }
                } else if writable {
                    // Reads the answer afterwards if it is already there.
                    self.tunnel_write(t, c);
                }
            }
            Phase::Handshaking => {
                if readable || writable {
                    let t = slot.task.expect("handshaking conn has a task");
                    self.handshake(t, c);
                }
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

    /// Checks a connect in progress; once connected, opens a proxy tunnel, starts TLS
    /// or sends.
    fn connect_progress(&mut self, t: usize, c: usize) {
        match self.conns[c].conn.finish_connect() {
            Ok(false) => {}
            Ok(true) => {
                let task = &mut self.tasks[t];
                task.timings.connect = Some(self.now.duration_since(task.stage_start));
                task.stage_start = self.now;
                if task.cur().tls && self.cfg.proxy.is_some() {
                    self.open_tunnel(t, c);
                } else {
                    self.secure_or_send(t, c);
                }
            }
            Err(e) => {
                self.tasks[t].last_connect_error = Some(e);
                self.tasks[t].conn = None;
                self.drop_conn_socket(c);
                self.connect_next(t);
            }
        }
    }

    /// On a connected (or tunneled) socket: the TLS handshake for https, else the request.
    fn secure_or_send(&mut self, t: usize, c: usize) {
        let task = &self.tasks[t];
        if !task.cur().tls {
            self.send(t, c);
            return;
        }
        let started = crate::tls::server_name(task.cur().host(), task.cur().ip)
            .map_err(|e| Error::new(ErrorKind::Tls, e))
            .and_then(|n| self.conns[c].conn.start_tls(self.tls.clone(), n));
        match started {
            Ok(()) => self.handshake(t, c),
            Err(e) => self.fail(t, e, true),
        }
    }

    /// Asks the proxy for a tunnel to the https target (`CONNECT host:port`).
    fn open_tunnel(&mut self, t: usize, c: usize) {
        let cur = self.tasks[t].cur();
        let auth = self.cfg.proxy.as_ref().and_then(|p| p.auth.as_deref());
        let conn = &mut self.conns[c].conn;
        conn.wbuf.clear();
        let authority = format!("{}:{}", cur.host_for_header(), cur.port);
        conn.wbuf.extend_from_slice(b"CONNECT ");
        conn.wbuf.extend_from_slice(authority.as_bytes());
        conn.wbuf.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        conn.wbuf.extend_from_slice(authority.as_bytes());
        conn.wbuf.extend_from_slice(b"\r\n");
        if let Some(a) = auth {
            conn.wbuf.extend_from_slice(b"Proxy-Authorization: ");
            conn.wbuf.extend_from_slice(a.as_bytes());
            conn.wbuf.extend_from_slice(b"\r\n");
        }
        conn.wbuf.extend_from_slice(b"\r\n");
        conn.start_tunnel();
        self.tunnel_write(t, c);
    }

    fn tunnel_write(&mut self, t: usize, c: usize) {
        match self.conns[c].conn.write() {
            Ok((true, _)) => {
                if std::mem::take(&mut self.conns[c].readable) {
                    self.tunnel_read(t, c);
                }
            }
            Ok((false, _)) => {}
            Err(e) => self.fail(t, proxy_error(&e.detail), false),
        }
    }

    fn tunnel_read(&mut self, t: usize, c: usize) {
        let mut status = None;
        let end = self.conns[c]
            .conn
            .read(&mut self.rbuf, true, |ev| match ev {
                ReadEvent::Head(h, _, _) => {
                    status = Some(h.status);
                    Flow::Continue
                }
                ReadEvent::Body(_) => Flow::Continue,
                ReadEvent::End { .. } => Flow::Stop,
            });
        match (end, status) {
            (ReadEnd::WouldBlock, _) => {}
            (ReadEnd::Finished, Some(s)) if (200..300).contains(&s) => {
                let task = &mut self.tasks[t];
                let tunnel = self.now.duration_since(task.stage_start);
                task.timings.connect = Some(task.timings.connect.unwrap_or_default() + tunnel);
                task.stage_start = self.now;
                self.conns[c].conn.phase = Phase::Connecting; // tunnel up; TLS next
                self.secure_or_send(t, c);
            }
            (ReadEnd::Finished, s) => {
                let e = proxy_error(&format!(
                    "the proxy answered CONNECT with {}",
                    s.map_or_else(|| "nothing".to_string(), |s| s.to_string())
                ));
                self.fail(t, e, true);
            }
            (ReadEnd::Failed(e), _) => self.fail(t, proxy_error(&e.detail), false),
        }
    }

    fn handshake(&mut self, t: usize, c: usize) {
        match self.conns[c].conn.handshake() {
            Ok(false) => {}
            Ok(true) => {
                let task = &mut self.tasks[t];
                task.timings.tls = Some(self.now.duration_since(task.stage_start));
                self.send(t, c);
            }
            Err(e) => self.fail(t, e, true),
        }
    }

    fn use_conn(&mut self, t: usize, c: usize) {
        let slot = &mut self.conns[c];
        if let Some(k) = slot.idle_timer.take() {
            self.wheel.cancel(k);
        }
        slot.task = Some(t);
        self.tasks[t].conn = Some(c);
        self.send(t, c);
    }

    /// Encodes the request for the task's current URL on connection `c` and writes it.
    fn send(&mut self, t: usize, c: usize) {
        let task = &mut self.tasks[t];
        let spec = task.spec.clone();
        let (method, body): (&str, &[u8]) = if task.get_override {
            ("GET", b"")
        } else {
            (&spec.method, &spec.body)
        };
        let head_request = method.eq_ignore_ascii_case("HEAD");
        let via_proxy = self.cfg.proxy.as_ref().filter(|_| !task.cur().tls);
        let slot = &mut self.conns[c];
        slot.conn.wbuf.clear();
        let r = encode(
            &mut slot.conn.wbuf,
            &RequestHead {
                method,
                target: match via_proxy {
                    Some(_) => task.cur().url.as_str(),
                    None => task.cur().origin_form(),
                },
                host: task.cur().host_for_header(),
                port: task.cur().explicit_port(),
                defaults: &DEFAULT_HEADERS,
                headers: &spec.headers,
                body,
                close: !self.cfg.keepalive,
                proxy_auth: via_proxy.and_then(|p| p.auth.as_deref()),
            },
        );
        if let Err(e) = r {
            self.fail(t, e, true);
            return;
        }
        slot.conn.start_request(head_request);
        task.state = TaskState::Exchanging;
        task.sent_at = None;
        task.status = None;
        task.next_hop = None;
        self.set_phase(t, PhaseDeadline::Read);
        self.write(t, c);
    }

    fn write(&mut self, t: usize, c: usize) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        match slot.conn.write() {
            Ok((done, moved)) => {
                if moved && self.tasks[t].sent_at.is_none() {
                    self.tasks[t].sent_at = Some(self.now);
                }
                if moved {
                    self.touch_read(t);
                }
                if done && std::mem::take(&mut self.conns[c].readable) {
                    self.read(t, c, true);
                }
            }
            Err(e) => self.exchange_failed(t, c, e, reused),
        }
    }

    fn read(&mut self, t: usize, c: usize, drain: bool) {
        let slot = &mut self.conns[c];
        let task = &mut self.tasks[t];
        let reused = slot.conn.served > 0;
        let before = slot.conn.received;
        let handler = &mut self.handler;
        let cbuf = &mut self.cbuf;
        let content = &mut slot.content;
        let cfg = &self.cfg;
        let now = self.now;
        let mut after = After::Nothing;
        let end = slot.conn.read(&mut self.rbuf, drain, |ev| match ev {
            ReadEvent::Head(h, fields, buf) => {
                task.timings.ttfb = task.sent_at.map(|s| now.duration_since(s));
                let is_redirect = matches!(h.status, 301 | 302 | 303 | 307 | 308);
                let location = h
                    .location
                    .clone()
                    .filter(|_| is_redirect)
                    .map(|r| String::from_utf8_lossy(&buf[r]).into_owned());
                let resolved = location.as_deref().and_then(|l| task.cur().join(l).ok());
                if cfg.follow && is_redirect && resolved.is_some() {
                    if task.redirects.len() as u32 >= cfg.max_redirects {
                        after = After::Fail(Error::new(
                            ErrorKind::TooManyRedirects,
                            format!(
                                "more than {} redirects (last to {})",
                                cfg.max_redirects,
                                location.unwrap_or_default()
                            ),
                        ));
                        return Flow::Stop;
                    }
                    task.redirects.push(Redirect {
                        url: task.cur().url.to_string(),
                        status: h.status,
                    });
                    let post_like =
                        !task.get_override && !task.spec.method.eq_ignore_ascii_case("HEAD");
                    if h.status == 303 && post_like
                        || matches!(h.status, 301 | 302)
                            && task.spec.method.eq_ignore_ascii_case("POST")
                    {
                        task.get_override = true;
                    }
                    task.next_hop = resolved;
                    return Flow::Continue;
                }
                task.status = Some(h.status);
                task.content_length = h.content_length;
                task.location = if is_redirect {
                    resolved.map(|r| r.url.to_string())
                } else {
                    None
                };
                task.bytes = 0;
                task.capped = false;
                content.reset(h.coding, cfg.max_body);
                handler.on_head(
                    task.tag,
                    &ResponseHead {
                        status: h.status,
                        url: task.cur().url.as_str(),
                        content_length: h.content_length,
                        fields,
                        buf,
                    },
                );
                Flow::Continue
            }
            ReadEvent::Body(mut data) => {
                if task.next_hop.is_some() {
                    return Flow::Continue; // a followed redirect's body is discarded
                }
                loop {
                    match content.decode(data, cbuf) {
                        Ok((used, made)) => {
                            if made > 0 {
                                handler.on_body(task.tag, &cbuf[..made]);
                                task.bytes += made as u64;
                            }
                            data = &data[used..];
                            if content.capped() {
                                task.capped = true;
                                after = After::Done { reusable: false };
                                return Flow::Stop;
                            }
                            if used == 0 && made == 0 {
                                return Flow::Continue;
                            }
                        }
                        Err(e) => {
                            after = After::Fail(e);
                            return Flow::Stop;
                        }
                    }
                }
            }
            ReadEvent::End { reusable } => {
                if task.next_hop.is_none() {
                    // Take output the inflater still holds, then check completeness.
                    loop {
                        match content.decode(&[], cbuf) {
                            Ok((_, 0)) => break,
                            Ok((_, made)) => {
                                handler.on_body(task.tag, &cbuf[..made]);
                                task.bytes += made as u64;
                            }
                            Err(e) => {
                                after = After::Fail(e);
                                return Flow::Stop;
                            }
                        }
                    }
                    task.capped |= content.capped();
                    if let Err(e) = content.finish() {
                        after = After::Fail(e);
                        return Flow::Stop;
                    }
                }
                after = After::Done { reusable };
                Flow::Stop
            }
        });
        let progressed = self.conns[c].conn.received > before;
        match end {
            ReadEnd::WouldBlock => {
                if progressed {
                    self.touch_read(t);
                }
            }
            ReadEnd::Finished => match after {
                After::Done { reusable } => self.response_done(t, c, reusable),
                After::Fail(e) => {
                    self.release_conn(c, true);
                    self.fail(t, e, true);
                }
                After::Nothing => {}
            },
            ReadEnd::Failed(e) => self.exchange_failed(t, c, e, reused),
        }
    }

    /// The exchange on `c` failed. A reused connection that died before any response
    /// byte was stale: retry on a fresh one without counting an attempt.
    fn exchange_failed(&mut self, t: usize, c: usize, e: Error, reused: bool) {
        let stale =
            reused && !self.conns[c].conn.got_response_bytes() && e.kind == ErrorKind::Closed;
        self.release_conn(c, true);
        if stale {
            let task = &mut self.tasks[t];
            task.conn = None;
            self.start_hop(t);
            return;
        }
        let after_response = self.tasks[t].status.is_some();
        self.fail(t, e, after_response);
    }

    fn response_done(&mut self, t: usize, c: usize, reusable: bool) {
        self.conns[c].conn.served += 1;
        let keep = reusable && self.cfg.keepalive;
        self.release_conn(c, !keep);
        let task = &mut self.tasks[t];
        task.conn = None;
        if let Some(next) = task.next_hop.take() {
            task.hop = Some(next);
            self.start_hop(t);
            return;
        }
        self.finish(t, None);
    }

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
        let (host, tls, port) = (slot.host.clone(), slot.tls, slot.port);
        let entry = self.hosts.entry(&host, tls, port);
        if let Some(w) = pop_waiter(entry, &self.tasks) {
            self.reuse_for(w, c);
            return;
        }
        entry.idle.push(c);
        let at = self.deadline_ms(self.cfg.idle_timeout);
        self.conns[c].idle_timer = Some(self.wheel.insert(at, TimerRef::Idle(c)));
    }

    fn pool_key_of(&self, c: usize) -> Option<(Rc<str>, bool, u16)> {
        self.conns.get(c).map(|s| (s.host.clone(), s.tls, s.port))
    }

    fn remove_idle(&mut self, c: usize) {
        if let Some((host, tls, port)) = self.pool_key_of(c) {
            let e = self.hosts.entry(&host, tls, port);
            e.idle.retain(|&x| x != c);
        }
    }

    /// Closes a connection that is registered and counted in its host entry.
    fn close_conn(&mut self, c: usize) {
        let key = self.pool_key_of(c);
        self.drop_conn_socket(c);
        if let Some((host, tls, port)) = key {
            let e = self.hosts.entry(&host, tls, port);
            e.open = e.open.saturating_sub(1);
            self.host_slot_freed(&host, tls, port);
        }
    }

    /// Deregisters and drops the socket without touching host counts (a connect
    /// attempt that failed; the host slot stays with the task).
    fn drop_conn_socket(&mut self, c: usize) {
        if let Some(mut slot) = self.conns.try_remove(c) {
            if let Some(k) = slot.idle_timer.take() {
                self.wheel.cancel(k);
            }
            let _ = self.poll.registry().deregister(&mut slot.conn.sock);
        }
    }

    // ----- endings ----------------------------------------------------------------

    /// The attempt failed with `e`: retry when allowed, else finish with the error.
    fn fail(&mut self, t: usize, e: Error, no_retry: bool) {
        // Give back what the task holds: its connection, or its host slot while it
        // resolves or connects, or its place among a host's waiters.
        let conn = self.tasks[t].conn.take();
        match conn.filter(|&c| self.conns.get(c).is_some_and(|s| s.task == Some(t))) {
            Some(c) if self.conns[c].conn.phase == Phase::Connecting => {
                self.drop_conn_socket(c);
                self.release_host_slot(t);
            }
            Some(c) => self.release_conn(c, true),
            None => match self.tasks[t].state {
                TaskState::Resolving | TaskState::Connecting => self.release_host_slot(t),
                TaskState::WaitHost => {
                    let cur = self.tasks[t].cur();
                    let e = self.hosts.entry(cur.host(), cur.tls, cur.port);
                    e.waiters.retain(|&w| w != t);
                }
                _ => {}
            },
        }
        let task = &mut self.tasks[t];
        let can_retry = !no_retry
            && retryable(e.kind)
            && task.status.is_none()
            && task.attempts <= self.cfg.retries;
        if can_retry {
            if let Some(k) = task.timer.take() {
                self.wheel.cancel(k);
            }
            let base = self.cfg.retry_backoff.as_millis() as u64;
            let exp = base.saturating_mul(1u64 << (task.attempts.saturating_sub(1)).min(16));
            let delay = exp.min(30_000) + self.jitter(exp.min(30_000) / 2 + 1);
            let task = &mut self.tasks[t];
            task.state = TaskState::Backoff;
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
        if let Some(k) = task.timer.take() {
            self.wheel.cancel(k);
        }
        task.timings.total = task.attempt_start.map(|s| self.now.duration_since(s));
        self.active -= 1;
        self.stats.done += 1;
        if error.is_some() {
            self.stats.errors += 1;
        }
        self.handler.on_done(Outcome {
            tag: task.tag,
            input: task.input,
            final_url: match task.hop {
                Some(h) => h.url.into(),
                None => task.first.url.to_string(),
            },
            url: task.first.url.into(),
            status: task.status,
            error,
            content_length: task.content_length,
            bytes: task.bytes,
            capped: task.capped,
            location: task.location,
            redirects: task.redirects,
            timings: task.timings,
            attempts: task.attempts,
        });
        self.fill();
    }
}

/// Where a task's connections go: the proxy, when there is one, else the target.
fn dial<'a>(cfg: &'a Config, cur: &'a Target) -> (&'a str, u16) {
    match &cfg.proxy {
        Some(p) => (&p.host, p.port),
        None => (cur.host(), cur.port),
    }
}

/// A failure of the proxy to give a tunnel: a `connect` error.
fn proxy_error(detail: &str) -> Error {
    Error::new(ErrorKind::Connect, format!("proxy: {detail}"))
}

/// The next task still waiting for a connection slot of this key (waiters that gave
/// up meanwhile are dropped).
fn pop_waiter(entry: &mut host::HostEntry, tasks: &Slab<Task>) -> Option<usize> {
    while let Some(w) = entry.waiters.pop_front() {
        if tasks.get(w).is_some_and(|x| x.state == TaskState::WaitHost) {
            return Some(w);
        }
    }
    None
}
