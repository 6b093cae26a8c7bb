//! Admission scheduling: filling free concurrency slots, in order — tasks the
//! per-host gate let go, then parked tasks whose time came (retry backoff, a host's
//! pause or pace over), then new requests pulled from the `Source`, paced by
//! `--rate`.
//!
//! Part of the driver with `mod.rs`, `task.rs`, `conns.rs` (one `impl Engine`).
//! Invariants: `active` never exceeds `Config::concurrency`; the source is asked
//! only when a slot is free and the parking area (with the hosts' queues) is not
//! full, so the waiting tasks stay bounded whatever the input's length; a request
//! pulled while `--rate` says wait is held (`held_request`), never dropped, and
//! the end of the input is seen at once; `fill` does not re-enter itself.

use super::task::TaskState;
use super::{Engine, Handler, Source, TimerRef};

impl<S: Source, H: Handler> Engine<S, H> {
    /// Starts queued retries and new requests while slots are free. Called at the
    /// start and end of a turn and whenever a request finishes, so a freed slot (and
    /// its now idle connection) is reused at once rather than after the rest of the
    /// turn's events. Re-entry (a request that fails at once inside `fill`) returns
    /// immediately: the outer loop goes on.
    pub(super) fn fill(&mut self) {
        if self.stopped() || self.filling {
            return;
        }
        self.filling = true;
        self.fill_slots();
        self.filling = false;
    }

    /// True when the tasks waiting outside a slot — parked for a time, or in a
    /// host's queue (`gate.rs`) — fill the parking area: no new request is pulled.
    pub(super) fn park_full(&self) -> bool {
        let queued = self.waiting.queued();
        self.park.is_full() || self.park.len() + queued >= self.park.capacity()
    }

    pub(super) fn fill_slots(&mut self) {
        while self.active < self.cfg.concurrency {
            if let Some(t) = self.waiting.ready.pop_front() {
                // Let go by the gate: its hop (not a new attempt) starts.
                self.active += 1;
                self.start_hop(t);
                continue;
            }
            if let Some(t) = self.park.pop_ready(self.now) {
                if let Some(task) = self.tasks.get_mut(t) {
                    match task.state {
                        TaskState::Backoff => {
                            task.state = TaskState::Queued;
                            self.active += 1;
                            self.start_attempt(t);
                        }
                        TaskState::Parked => {
                            // Its host's pause or pace is over: its hop (not a new
                            // attempt) starts.
                            self.unpark_out(t);
                            self.active += 1;
                            self.start_hop(t);
                        }
                        _ => {}
                    }
                }
                continue;
            }
            // A full park holds back new requests: memory stays bounded by -c.
            if self.park_full() {
                break;
            }
            // The request is pulled before `--rate` is asked, and held while the
            // rate says wait: so the end of the input is seen at once, not one rate
            // interval after the last request.
            let req = match self.held_request.take() {
                Some(r) => r,
                None if self.source_done => break,
                None => match self.source.next_request() {
                    Some(r) => r,
                    None => {
                        if self.source.is_exhausted() {
                            self.source_done = true;
                        }
                        break;
                    }
                },
            };
            if !self.rate_take() {
                self.held_request = Some(req);
                break;
            }
            self.admit(req);
        }
    }

    /// True when `--rate` lets a request start now (the start is taken); else arms
    /// a wake-up. No lock without a rate.
    pub(super) fn rate_take(&mut self) -> bool {
        if self.cfg.rate <= 0.0 {
            return true;
        }
        match self.cfg.shared.rate_take(self.now) {
            Ok(()) => true,
            Err(at) => {
                if !self.rate_timer {
                    let ms = self.wheel.ms(at);
                    self.wheel.insert(ms, TimerRef::Rate);
                    self.rate_timer = true;
                }
                false
            }
        }
    }
}
