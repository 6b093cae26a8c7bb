//! A task (one request in progress) and its way through the seams: admitted, an
//! attempt begun, a connection taken from the pool or dialed (or a wait for a host's
//! slot, ended by a hand-off from the work list or a note from another engine), and
//! at the end a retry or its one `Outcome` (`Cancelled` at a stop).
//!
//! This file is part of the driver, with `mod.rs` (the loop and the dispatch),
//! `conns.rs` (the connections) and the other driver files listed in `mod.rs`: only
//! they call across the seams, and they call the seams only, never a seam's insides.
//!
//! Invariants:
//! - a task holds at most one of: a pool slot reserved for its dial, a connection,
//!   a place among a host's waiters; `fail` gives back whichever it holds;
//! - the attempt count rises when the attempt's clock starts (a connection in hand
//!   or being dialed), and a wait for file descriptors takes it back;
//! - a task leaves through `finish` exactly once, which assembles its `Outcome`.

use super::api::Request;
use super::attempt::{self, Attempt, Identity};
use super::deadline::{self, Deadlines, Doing};
use super::dial::{Ctx, Dialer, Step};
use super::overrides::Settings;
use super::pool::{Acquire, Key};
use super::{retry, Engine, Handler, Handoff, RequestSpec, Source, TimerRef, Timings};
use crate::conn::{Conn, Phase};
use crate::error::{Error, ErrorKind};
use crate::resolve::{Addrs, Lookup};
use crate::target::Target;
use slab::Slab;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delay before retrying a connect that failed for lack of file descriptors.
const FD_BACKOFF_MS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TaskState {
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
    /// Its host may not take it yet (paused, at its limit, `--rate-per-host`): no
    /// slot held, no deadline running (`gate.rs`).
    Parked,
}

/// A request in progress: what lasts across attempts, and the current attempt.
#[derive(Debug)]
pub(super) struct Task {
    /// The caller's tag.
    pub(super) tag: u64,
    /// The input line, as given, when it is not `first`'s text itself (an input
    /// already absolute and canonical is that text: no copy).
    pub(super) input: Option<String>,
    /// Method, headers, body.
    pub(super) spec: Arc<RequestSpec>,
    /// The URL requested (the first hop).
    pub(super) first: Target,
    /// Attempts started (their clocks ran).
    pub(super) attempts: u32,
    /// Where the task is.
    pub(super) state: TaskState,
    /// Its deadlines and their one wheel entry.
    pub(super) deadlines: Deadlines,
    /// The current attempt.
    pub(super) a: Attempt,
    /// Its settings: the request's overrides over the `Config`.
    pub(super) settings: Settings,
    /// Its backoff (or file-descriptor wait) timer, while one is armed.
    pub(super) wake: Option<crate::timer::TimerKey>,
    /// The handler paused the body (`BodyAction::Pause`) and has not resumed it.
    pub(super) paused: bool,
    /// Counted in flight at its hop's host since then (`gate.rs`).
    pub(super) held: Option<Instant>,
    /// Parked for a time (`gate.rs`): in the parking area, not a host's queue.
    pub(super) timed: bool,
    /// Unique in the engine's life (the count of requests pulled when it was
    /// admitted): a slab index is taken again by the next task once this one
    /// finishes, so code that ran other tasks meanwhile tells them apart by this.
    pub(super) serial: u64,
}

impl Task {
    /// What the task is doing, for a deadline's error (`conn`: the connection it
    /// holds).
    pub(super) fn doing<'a>(&'a self, conn: Option<&'a Conn>, host: &'a &'a str) -> Doing<'a> {
        let a = &self.a;
        match self.state {
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
                None => Doing::Connecting(host),
            },
        }
    }
}

/// The pool key of a hop's URL.
#[inline]
pub(super) fn key_of(t: &Target) -> Key<'_> {
    Key {
        host: t.host(),
        tls: t.tls,
        port: t.port,
    }
}

/// True when task `w` still waits for a pool slot.
pub(super) fn still_waiting(tasks: &Slab<Task>, w: usize) -> bool {
    tasks.get(w).is_some_and(|x| x.state == TaskState::WaitHost)
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// A request from the source: a task with its first attempt begun, or (a bad
    /// URL) its outcome at once.
    pub(super) fn admit(&mut self, req: Request) {
        self.now = Instant::now();
        self.stats.started += 1;
        let Request { tag, url, spec } = req;
        let (target, input) = match Target::parse_owned(url) {
            Ok(t) => t,
            Err((url, e)) => return self.done_unstarted(Request { tag, url, spec }, e),
        };
        let settings = Settings::of(&self.cfg, spec.overrides.as_deref());
        let t = self.tasks.insert(Task {
            tag,
            input,
            spec,
            first: target,
            attempts: 0,
            state: TaskState::Queued,
            deadlines: Deadlines::default(),
            a: Attempt::default(),
            settings,
            wake: None,
            paused: false,
            held: None,
            timed: false,
            serial: self.stats.started,
        });
        self.active += 1;
        self.start_attempt(t);
    }

    /// Begins an attempt (first, retry) from the first URL, with fresh state.
    pub(super) fn start_attempt(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        // A dial on record in the pool is settled before its attempt is dropped
        // (`give_back`): a lost record would leave its claimants waiting.
        debug_assert!(!task.a.promised, "an unsettled dial record");
        task.a = Attempt::default();
        task.paused = false;
        task.deadlines.set_total(None);
        self.start_hop(t);
    }

    /// Starts the attempt's clocks if they are not running yet, or resumes a total
    /// paused while a later hop waited for a slot.
    pub(super) fn begin_clock(&mut self, t: usize) {
        if self.tasks[t].a.started.is_none() {
            let total = self.tasks[t]
                .settings
                .total_timeout
                .map(|d| self.deadline_ms(d));
            let task = &mut self.tasks[t];
            task.a.started = Some(self.now);
            task.a.timings = Timings::default();
            task.deadlines.set_total(total);
            task.attempts += 1;
        } else {
            // A later hop that waited for a slot: its paused total runs again.
            let now = self.wheel.ms(self.now);
            self.tasks[t].deadlines.resume(now);
        }
    }

    /// Gets a connection for the current URL: pooled, or a new one when the
    /// per-host limit allows, else waits for one.
    pub(super) fn start_hop(&mut self, t: usize) {
        if !self.gate(t) {
            return;
        }
        if self.cfg.pipeline > 1 && self.pipe_onto_room(t) {
            return;
        }
        let pipe = self.cfg.pipeline > 1 && self.may_pipeline(t);
        let task = &self.tasks[t];
        let key = key_of(task.a.url(&task.first));
        // A connection being dialed for its host will have room: wait for it rather
        // than open another.
        if pipe && !self.pool.has_idle(key) && self.pool.claim(key, t) {
            self.wait_host(t);
            return;
        }
        let (limit, shared, me) = (self.cfg.per_host, &self.cfg.shared, self.member.id);
        let may_open = |_| limit == 0 || shared.try_open(key, limit, me);
        match self.pool.acquire(key, t, may_open) {
            Acquire::Idle(c) => self.reuse_for(t, c),
            Acquire::Wait => self.wait_host(t),
            Acquire::Dial => {
                if pipe {
                    self.pool.promise(key, t, self.cfg.pipeline - 1);
                    self.tasks[t].a.promised = true;
                }
                self.dial(t)
            }
        }
    }

    /// Task `t` waits for a connection of its host (a slot, or a dial's room).
    fn wait_host(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        task.state = TaskState::WaitHost;
        // No deadline runs while waiting; a redirect hop's total is paused
        // (`begin_clock` resumes it).
        let now = self.wheel.ms(self.now);
        task.deadlines.suspend(now, &mut self.wheel);
    }

    /// Gives pooled connection `c` to task `t`: the attempt's clocks start (if not
    /// yet), and the phases a reused connection skips are reported as not run.
    pub(super) fn reuse_for(&mut self, t: usize, c: usize) {
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

    /// A new connection for the task's hop (its pool slot is reserved).
    pub(super) fn dial(&mut self, t: usize) {
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
        self.lookup(t);
    }

    /// Looks up the name the task's dialer needs now.
    pub(super) fn lookup(&mut self, t: usize) {
        let task = &self.tasks[t];
        let Some(d) = task.a.dial.as_ref() else {
            return;
        };
        let (host, port) = d.lookup(&self.cfg, task.a.url(&task.first));
        match self.resolver.lookup(host, port, t, self.now) {
            Lookup::Ready(a) => self.resolved(t, a),
            Lookup::Pending => {}
            Lookup::Failed(e) => self.fail(t, e.error, !e.temporary),
        }
    }

    pub(super) fn resolved(&mut self, t: usize, addrs: Addrs) {
        let step = self.with_dialer(t, None, |d, ctx, timings, _, _| {
            d.resolved(addrs, ctx, timings)
        });
        self.dial_step(t, step);
    }

    /// Calls the task's dialer with its context (and connection `c`, if given).
    pub(super) fn with_dialer(
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
    pub(super) fn dial_step(&mut self, t: usize, mut step: Step) {
        loop {
            self.sync_race(t);
            step = match step {
                Step::Pending => return,
                Step::Lookup => {
                    self.lookup(t);
                    return;
                }
                Step::Open(conn) => self.open_conn(t, *conn),
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

    /// Puts a task back to wait `ms` (keeping its slot), undoing the attempt count.
    pub(super) fn requeue_after(&mut self, t: usize, ms: u64) {
        let task = &mut self.tasks[t];
        task.deadlines.cancel(&mut self.wheel);
        if task.a.started.take().is_some() {
            task.attempts -= 1;
        }
        task.state = TaskState::Queued;
        let at = self.deadline_ms(Duration::from_millis(ms));
        self.tasks[t].wake = Some(self.wheel.insert(at, TimerRef::Wake(t)));
    }

    /// The task gives back the pool slot it reserved for a dial.
    pub(super) fn release_host_slot(&mut self, t: usize) {
        self.settle_dial(t);
        let task = &self.tasks[t];
        let tasks = &self.tasks;
        let key = key_of(task.a.url(&task.first));
        if self.cfg.per_host > 0 {
            self.cfg.shared.closed(key, self.member.id);
        }
        if let Some(w) = self.pool.closed(key, |w| still_waiting(tasks, w)) {
            self.hand_off(Handoff::Start(w));
        }
    }

    /// The attempt failed with `e`: retry when allowed (`final_` forbids it), else
    /// finish with the error.
    pub(super) fn fail(&mut self, t: usize, e: Error, final_: bool) {
        // A dial that fails: the stage it was in ran, and took this long.
        let task = &mut self.tasks[t];
        if let Some(d) = task.a.dial.as_ref() {
            let tls = task.a.url(&task.first).tls;
            d.note_failure(self.now, tls, &mut task.a.timings);
        }
        // The host hears first, so that a pause holds back the waiter that takes
        // what this task gives back.
        self.host_done(t, Some(e.kind));
        self.give_back(t);
        let task = &mut self.tasks[t];
        let failure = retry::Failure {
            kind: e.kind,
            final_,
            // A response to any hop counts: a redirect followed is a response.
            got_response: task.a.resp.status.is_some() || !task.a.redirects.is_empty(),
            attempts: task.attempts,
        };
        if retry::should_retry(failure, self.cfg.retries) {
            let base = self.cfg.retry_backoff.as_millis() as u64;
            let delay = retry::backoff_ms(base, task.attempts, &mut self.rng);
            self.backoff(t, Duration::from_millis(delay));
            return;
        }
        self.finish(t, Some(e));
    }

    /// The task waits `delay` for its next attempt, holding no slot and running no
    /// deadline.
    pub(super) fn backoff(&mut self, t: usize, delay: Duration) {
        let task = &mut self.tasks[t];
        task.deadlines.cancel(&mut self.wheel);
        task.state = TaskState::Backoff;
        self.active -= 1;
        self.park.park(t, self.now + delay);
    }

    /// Gives back what the task holds: its connection, or its pool slot while it
    /// dials, or its place among a host's waiters.
    pub(super) fn give_back(&mut self, t: usize) {
        self.settle_dial(t);
        self.forget_lookup(t);
        self.abandon_race(t);
        let conn = self.tasks[t].a.conn.take();
        match conn.filter(|&c| self.conns.get(c).is_some_and(|s| s.task == Some(t))) {
            Some(c) if self.conns[c].conn.phase == Phase::Connecting => {
                self.drop_conn_socket(c);
                self.release_host_slot(t);
            }
            // It fails (a deadline, a dial or request error) or is cancelled while
            // it holds `c`: the engine closes `c`, so the requests behind it are
            // sent again without spending a free re-send (they get their own answer,
            // or their own deadline).
            Some(c) => self.close_by_choice(c),
            None => match self.tasks[t].state {
                TaskState::Dialing => self.release_host_slot(t),
                TaskState::WaitHost => {
                    let task = &self.tasks[t];
                    self.pool.cancel_wait(key_of(task.a.url(&task.first)), t);
                }
                _ => {}
            },
        }
    }

    /// The one outcome of a request that never became a task (a bad URL, or the
    /// request held for `--rate` when the run stopped): no attempt was made.
    fn done_unstarted(&mut self, req: Request, e: Error) {
        let mut input = req.url;
        if input.trim().len() != input.len() {
            input = input.trim().to_string();
        }
        let id = Identity {
            tag: req.tag,
            url: None,
            final_url: None,
            input,
            attempts: 0,
        };
        self.stats.done += 1;
        self.stats.errors += 1;
        let o = attempt::outcome(id, &mut Attempt::default(), Some(e), self.now);
        self.handler.on_done(o);
    }

    /// `Config::stop`: every task in flight gives back what it holds and gets its
    /// one `on_done` with `Cancelled` (tasks in backoff or queued for a retry too,
    /// and the request held back by `--rate`).
    pub(super) fn cancel_all(&mut self) {
        if let Some(req) = self.held_request.take() {
            self.stats.started += 1;
            let e = Error::new(
                ErrorKind::Cancelled,
                "the run was stopped before the request started",
            );
            self.done_unstarted(req, e);
        }
        // Tasks waiting outside a slot are counted in as each is finished (`finish`
        // gives one back). Each is asked in its turn, not before the loop: finishing
        // one lets the head of its host's queue go, into the queue of tasks let go.
        // The park is emptied first (its tasks are all finished below), so taking
        // each out of it costs nothing.
        self.park.clear();
        let keys: Vec<usize> = self.tasks.iter().map(|(k, _)| k).collect();
        for t in keys {
            if !self.tasks.contains(t) {
                continue;
            }
            if self.leave_wait(t) {
                self.active += 1;
            }
            // As `cancel`: a request behind another leaves its connection (no
            // answer read on it can be matched to a finished task).
            self.leave_behind(t);
            self.give_back(t);
            let e = Error::new(
                ErrorKind::Cancelled,
                "the run was stopped while the request was in flight",
            );
            self.finish(t, Some(e));
        }
    }

    pub(super) fn finish(&mut self, t: usize, error: Option<Error>) {
        self.settle_dial(t);
        self.host_done(t, error.as_ref().map(|e| e.kind));
        let mut task = self.tasks.remove(t);
        task.deadlines.cancel(&mut self.wheel);
        self.active -= 1;
        self.stats.done += 1;
        if error.is_some() {
            self.stats.errors += 1;
        }
        let first = task.first.into_string();
        let (input, url) = match task.input {
            None => (first, None),
            Some(input) => (input, Some(first)),
        };
        let id = Identity {
            tag: task.tag,
            input,
            url,
            final_url: task.a.hop.take().map(Target::into_string),
            attempts: task.attempts,
        };
        let o = attempt::outcome(id, &mut task.a, error, self.now);
        self.handler.on_done(o);
        self.fill();
    }

    /// Other engines sharing `cfg.shared` freed a slot of a host this one waits for
    /// (its waiters start again, while slots last), or wait for a host this one
    /// keeps idle connections of (one is closed, which frees its slot).
    pub(super) fn on_notes(&mut self) {
        for note in self.cfg.shared.take_notes(self.member.id) {
            match note {
                super::shared::Note::Freed(k) => loop {
                    let tasks = &self.tasks;
                    let Some(w) = self.pool.next_waiter(k.key(), |w| still_waiting(tasks, w))
                    else {
                        break;
                    };
                    self.hand_off(Handoff::Start(w));
                    if still_waiting(&self.tasks, w) {
                        break; // no slot left: it waits again
                    }
                },
                super::shared::Note::Wanted(k) => {
                    if let Some(c) = self.pool.take_idle(k.key()) {
                        self.close_conn(c);
                    }
                }
            }
        }
    }

    /// Task `t` was started from its host's wait (a slot was freed, or the dial
    /// it claimed settled) and went another way than a new connection: the slot
    /// it left, if one is free, goes to the host's next waiter (through the work
    /// list). Without this a waiter could wait for a slot that is free, forever.
    fn pass_unused_slot(&mut self, t: usize) {
        if self.cfg.per_host == 0 {
            return; // nobody waits for a slot
        }
        // Finished, its index maybe taken by the next request: then a waiter may be
        // woken for nothing (it asks the pool again and waits on).
        let Some(task) = self.tasks.get(t) else {
            return; // finished: what it held, it gave back (which woke a waiter)
        };
        let key = key_of(task.a.url(&task.first));
        let tasks = &self.tasks;
        let next = self
            .pool
            .unused_slot(key, self.cfg.per_host, t, |w| still_waiting(tasks, w));
        if let Some(w) = next {
            self.handoffs.push_back(Handoff::Start(w));
        }
    }

    /// Wakes a waiter: queued on the work list, which the outermost call runs to
    /// its end (a waiter whose hop fails at once wakes the next one through the
    /// list, not through recursion).
    pub(super) fn hand_off(&mut self, h: Handoff) {
        self.handoffs.push_back(h);
        if self.handing {
            return;
        }
        self.handing = true;
        while let Some(h) = self.handoffs.pop_front() {
            match h {
                Handoff::Start(w) if still_waiting(&self.tasks, w) => {
                    self.start_hop(w);
                    self.pass_unused_slot(w);
                }
                Handoff::Start(_) => {}
                Handoff::Reuse(w, c) if still_waiting(&self.tasks, w) => {
                    // Its host may have been paused while it waited.
                    if self.gate(w) {
                        self.reuse_for(w, c)
                    } else {
                        self.release_conn(c, false)
                    }
                }
                // The waiter is gone: the connection goes to the pool after all.
                Handoff::Reuse(_, c) => self.release_conn(c, false),
            }
        }
        self.handing = false;
    }
}
