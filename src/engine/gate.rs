//! The driver's per-host gate: before a hop's request starts, the host's politeness
//! state (the `politeness` seam, in the table `Shared` holds for all engines of a
//! run) is asked whether it may; a task that may not is *parked* — it gives back its
//! concurrency slot, no deadline runs — until the host's pause or `--rate-per-host`
//! interval is over, or (at the host's limit) a request to that host finishes. When
//! a hop ends, the host is told how (`Signal`).
//!
//! Part of the driver with `mod.rs`, `task.rs` and `conns.rs`.
//!
//! Invariants:
//! - a task counts in its host's `in_flight` (`Task::held`) from the gate's `Go`
//!   until its hop ends (`host_done`), exactly once per hop, whatever way it ends;
//! - a parked task is in `parked` under its host, holds no slot (`active` does not
//!   count it), runs no deadline, and has one wheel entry (`Task::park_timer`) that
//!   wakes it at the end of the pause, or after [`FULL_RECHECK`] when it waits for
//!   the host's limit (a request finishing in another engine tells this one
//!   nothing, so it looks again);
//! - the engine pulls no new request while [`Engine::park_full`] is true, so the
//!   parking area stays bounded whatever the list holds.

use super::politeness::{self, Admit, Signal};
use super::task::{key_of, TaskState};
use super::{Engine, Handler, Source, TimerRef};
use crate::error::ErrorKind;
use std::time::{Duration, Instant, SystemTime};

/// How long a task parked at its host's limit waits before looking again, should
/// no request of that host finish in this engine meanwhile.
pub(super) const FULL_RECHECK: Duration = Duration::from_millis(50);

/// Parked tasks at most, as a multiple of `--concurrency` (and at least
/// [`PARK_MIN`]); beyond it no new request is pulled.
const PARK_PER_SLOT: usize = 4;
/// The smallest bound on parked tasks.
const PARK_MIN: usize = 256;

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

    /// True when the parking area is full: no new request is pulled.
    pub(super) fn park_full(&self) -> bool {
        self.parked_count >= (self.cfg.concurrency * PARK_PER_SLOT).max(PARK_MIN)
    }

    /// Whether task `t`'s hop may start now; if not, the task is parked. A task
    /// already counted at its host (a stale pooled connection retried, a wait for
    /// file descriptors) goes on.
    pub(super) fn gate(&mut self, t: usize) -> bool {
        if !self.polite_on() || self.tasks[t].held.is_some() {
            return true;
        }
        let task = &self.tasks[t];
        let key = key_of(task.a.url(&task.first));
        let now = self.now;
        let admit = self.cfg.shared.polite(|table| {
            let a = table.admit(key, now);
            if a == Admit::Go {
                table.started(key, now);
            }
            a
        });
        match admit {
            None | Some(Admit::Go) => {
                self.tasks[t].held = Some(now);
                true
            }
            Some(Admit::Until(at)) => {
                self.park(t, at);
                false
            }
            Some(Admit::Full) => {
                self.park(t, now + FULL_RECHECK);
                false
            }
        }
    }

    /// Parks task `t` (it holds its slot) until `at` at the latest.
    fn park(&mut self, t: usize, at: Instant) {
        let now_ms = self.wheel.ms(self.now);
        let ms = self.wheel.ms(at);
        let task = &mut self.tasks[t];
        task.state = TaskState::Parked;
        task.deadlines.suspend(now_ms, &mut self.wheel);
        task.park_timer = Some(self.wheel.insert(ms, TimerRef::Wake(t)));
        let host = task.a.url(&task.first).host();
        match self.parked.get_mut(host) {
            Some(q) => q.push_back(t),
            None => {
                self.parked.insert(host.to_string(), [t].into());
            }
        }
        self.parked_count += 1;
        self.active -= 1;
    }

    /// Takes parked task `t` out of the parking area (its timer cancelled); it then
    /// holds no slot and is in no queue.
    pub(super) fn unpark_out(&mut self, t: usize) {
        let task = &mut self.tasks[t];
        if task.state != TaskState::Parked {
            return;
        }
        if let Some(k) = task.park_timer.take() {
            self.wheel.cancel(k);
        }
        task.state = TaskState::Queued;
        let host = task.a.url(&task.first).host();
        if let Some(q) = self.parked.get_mut(host) {
            q.retain(|&x| x != t);
            if q.is_empty() {
                self.parked.remove(host);
            }
        }
        self.parked_count -= 1;
    }

    /// Parked task `t` may look again: it queues for a slot (before new requests).
    pub(super) fn unpark(&mut self, t: usize) {
        if self
            .tasks
            .get(t)
            .is_some_and(|x| x.state == TaskState::Parked)
        {
            // A fired timer's key is stale: cancelling it is a no-op.
            self.unpark_out(t);
            self.unparked.push_back(t);
        }
    }

    /// The hop of task `t` ended: its host is told how (`kind`: the error, if it
    /// failed), and a task parked for that host looks again.
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
        let next = self.parked.get(key.host).and_then(|q| q.front().copied());
        if let Some(w) = next {
            self.unpark(w);
        }
    }
}

/// The wait a `Retry-After` value asks for, read now.
pub(super) fn retry_after(value: &[u8]) -> Option<Duration> {
    politeness::retry_after::parse(value, SystemTime::now())
}
