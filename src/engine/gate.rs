//! The driver's per-host gate: before a hop's request starts, the host's politeness
//! state (the `politeness` seam, in the table `Shared` holds for all engines of a
//! run) is asked whether it may; a task that may not gives back its concurrency
//! slot, runs no deadline, and waits — until the host's pause or `--rate-per-host`
//! interval is over (a *timed* wait), or, at the host's limit, until a request to
//! that host finishes (a wait in the host's *queue*). When a hop ends, the host is
//! told how (`Signal`), and the head of its queue looks again.
//!
//! Part of the driver with `mod.rs`, `task.rs` and `conns.rs`.
//!
//! Invariants:
//! - a task counts in its host's `in_flight` (`Task::held`) from the gate's `Go`
//!   until its hop ends (`host_done`), exactly once per hop, whatever way it ends;
//! - a waiting task is `TaskState::Parked`, holds no slot (`active` does not count
//!   it) and runs no deadline; a timed wait is in the engine's parking area
//!   (`park.rs`, with the retry backoffs) until its time (`Task::timed`), a queued
//!   one in its host's queue here: its host's next finish in this engine wakes it,
//!   and (a request finishing in another engine tells this one nothing) the queue
//!   heads look again every [`RECHECK`] while any queue is non-empty — one wheel
//!   entry for the engine;
//! - the hosts' queues count against the parking area's capacity
//!   (`Config::max_parked`): the engine pulls no new request while the parked and
//!   the queued tasks together fill it, so the waiting tasks stay bounded whatever
//!   the list holds (a task moving from a queue to the parking area leaves the sum
//!   as it was).

use super::politeness::{self, Admit, Signal};
use super::task::{key_of, TaskState};
use super::{Engine, Handler, Source, TimerRef};
use crate::error::ErrorKind;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

/// How often the heads of the hosts' queues look again while any task waits in
/// one (for slots freed in other engines).
pub(super) const RECHECK: Duration = Duration::from_millis(50);

/// The tasks the gate holds back; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// Tasks waiting at their host's limit, by host, oldest first.
    queues: HashMap<String, VecDeque<usize>>,
    queued: usize,
    /// The engine's recheck timer is armed.
    recheck: bool,
    /// Tasks let go, waiting for a slot (before all others).
    pub(super) ready: VecDeque<usize>,
}

impl Waiting {
    /// Tasks waiting in the hosts' queues: they count against the parking area's
    /// capacity (`Config::max_parked`) with those parked there.
    pub(super) fn queued(&self) -> usize {
        self.queued
    }
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// The politeness policy of this engine's configuration.
    pub(super) fn polite_policy(&self) -> politeness::Policy {
        politeness::Policy {
            adapt: self.cfg.adapt,
            ceiling: match self.cfg.per_host {
                0 => self.cfg.concurrency.max(1),
                n => n,
            },
            max_retry_after: self.cfg.max_retry_after,
            backoff: self.cfg.retry_backoff,
            rate_per_host: self.cfg.rate_per_host,
        }
    }

    /// True when the gate applies (adaptation on, or a `--rate-per-host`).
    #[inline]
    pub(super) fn polite_on(&self) -> bool {
        self.cfg.adapt || self.cfg.rate_per_host > 0.0
    }

    /// Whether task `t`'s hop may start now; if not, the task waits. A task
    /// already counted at its host whose request has not gone out (it waited for a
    /// connection slot, its pooled connection was stale, it waited for file
    /// descriptors) goes on unless the host was paused meanwhile: then it gives its
    /// count back and waits like any other.
    pub(super) fn gate(&mut self, t: usize) -> bool {
        if !self.polite_on() {
            return true;
        }
        let task = &self.tasks[t];
        let key = key_of(task.a.url(&task.first));
        let now = self.now;
        if task.held.is_some() {
            let paused = self.cfg.shared.polite(|table| {
                table
                    .view(key, now)
                    .is_some_and(|v| v.paused_until.is_some())
            });
            if paused != Some(true) {
                return true;
            }
            self.host_done(t, None);
            return self.gate(t);
        }
        let admit = self.cfg.shared.polite(|table| table.try_start(key, now));
        match admit {
            None | Some(Admit::Go) => {
                self.tasks[t].held = Some(now);
                return true;
            }
            Some(Admit::Until(at)) => {
                self.tasks[t].timed = true;
                self.park.park(t, at);
            }
            Some(Admit::Full) => {
                let host = key.host;
                match self.waiting.queues.get_mut(host) {
                    Some(q) => q.push_back(t),
                    None => {
                        self.waiting.queues.insert(host.to_string(), [t].into());
                    }
                }
                self.waiting.queued += 1;
                if !self.waiting.recheck {
                    self.waiting.recheck = true;
                    let ms = self.wheel.ms(now + RECHECK);
                    self.wheel.insert(ms, TimerRef::Recheck);
                }
            }
        }
        let now_ms = self.wheel.ms(now);
        let task = &mut self.tasks[t];
        task.state = TaskState::Parked;
        task.deadlines.suspend(now_ms, &mut self.wheel);
        self.active -= 1;
        false
    }

    /// Takes waiting task `t` out of its wait: the parking area gave it back (or
    /// was cleared), or out of its host's queue. It then holds no slot and is in no
    /// queue.
    pub(super) fn unpark_out(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        if task.state != TaskState::Parked {
            return;
        }
        task.state = TaskState::Queued;
        if std::mem::take(&mut task.timed) {
            return;
        }
        let host = task.a.url(&task.first).host();
        if let Some(q) = self.waiting.queues.get_mut(host) {
            q.retain(|&x| x != t);
            if q.is_empty() {
                self.waiting.queues.remove(host);
            }
        }
        self.waiting.queued -= 1;
    }

    /// Task `t` leaves whatever wait it is in outside a concurrency slot (retry
    /// backoff in the park, its host's queue, a timed wait in the park, or the
    /// queue of tasks let go), to be finished (a cancel, a stop). True when it held
    /// no slot: the caller counts one in, as `finish` gives one back.
    pub(super) fn leave_wait(&mut self, t: usize) -> bool {
        match self.tasks[t].state {
            TaskState::Backoff => {
                self.park.remove(t);
                true
            }
            TaskState::Parked => {
                if self.tasks[t].timed {
                    self.park.remove(t);
                }
                self.unpark_out(t);
                true
            }
            TaskState::Queued => match self.waiting.ready.iter().position(|&w| w == t) {
                Some(i) => {
                    self.waiting.ready.remove(i);
                    true
                }
                // A file-descriptor wait keeps its slot.
                None => false,
            },
            _ => false,
        }
    }

    /// Task `t`, waiting in its host's queue, may look again: it queues for a slot
    /// (before new requests).
    fn unpark(&mut self, t: usize) {
        if self
            .tasks
            .get(t)
            .is_some_and(|x| x.state == TaskState::Parked && !x.timed)
        {
            self.unpark_out(t);
            self.waiting.ready.push_back(t);
        }
    }

    /// The recheck timer fired: the head of every host's queue looks again.
    pub(super) fn recheck(&mut self) {
        self.waiting.recheck = false;
        let heads: Vec<usize> = self
            .waiting
            .queues
            .values()
            .filter_map(|q| q.front().copied())
            .collect();
        for t in heads {
            self.unpark(t);
        }
    }

    /// The hop of task `t` ended: its host is told how (`kind`: the error, if it
    /// failed), and the head of that host's queue looks again.
    pub(super) fn host_done(&mut self, t: usize, kind: Option<ErrorKind>) {
        let Some(since) = self.tasks[t].held.take() else {
            return;
        };
        let task = &mut self.tasks[t];
        let signal = match (task.a.signal.take(), kind) {
            (Some(s), _) => s,
            (
                None,
                Some(ErrorKind::ConnectTimeout | ErrorKind::ReadTimeout | ErrorKind::Closed),
            ) => Signal::Trouble,
            (None, _) => Signal::Neutral,
        };
        let key = key_of(task.a.url(&task.first));
        let now = self.now;
        self.cfg
            .shared
            .polite(|table| table.finished(key, now, since, signal));
        let head = self
            .waiting
            .queues
            .get(key.host)
            .and_then(|q| q.front().copied());
        if let Some(w) = head {
            self.unpark(w);
        }
    }
}

/// The wait a `Retry-After` value asks for, read now.
pub(super) fn retry_after(value: &[u8]) -> Option<Duration> {
    politeness::retry_after::parse(value, SystemTime::now())
}
