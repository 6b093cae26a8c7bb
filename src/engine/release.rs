//! A connection's end of a use: detached from its task, then handed to a task
//! waiting for the same scheme/host/port, put in the pool's idle list (with its
//! idle timer, under the global idle cap), or closed — and closing itself, the one
//! way a registered connection leaves the slab.
//!
//! Part of the driver with `mod.rs`, `task.rs` and `conns.rs`; the counting is the
//! `pool`'s, the idle order the `idle` seam's. Invariants: a pooled connection has
//! no task and exactly one idle timer; a closed connection is deregistered from the
//! poll and its pool count dropped once (`close_conn`; `drop_conn_socket` alone
//! leaves the count with the dialing task); tasks pipelined behind a connection
//! that closes are sent again elsewhere; at most `max_idle` connections are idle
//! over all hosts (the one idle longest closes first); with `--per-host` shared
//! among engines, an idle connection another engine waits for is closed, not kept.

use super::conns::Slot;
use super::task::still_waiting;
use super::{Engine, Handler, Handoff, Source, TimerRef};

impl<S: Source, H: Handler> Engine<S, H> {
    /// Detaches `c` from its task and pools it, or closes it.
    /// Tasks pipelined behind are sent again elsewhere (the connection closes).
    pub(super) fn release_conn(&mut self, c: usize, close: bool) {
        let Some(slot) = self.conns.get_mut(c) else {
            return;
        };
        slot.task = None;
        if slot.in_room {
            slot.in_room = false;
            self.pool.remove_room(slot.key(), c);
        }
        if !slot.behind.is_empty() {
            let behind = std::mem::take(&mut slot.behind);
            self.close_conn(c);
            self.resend_behind(behind, c);
            return;
        }
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
            self.hand_off(Handoff::Reuse(w, c));
            return;
        }
        // Another engine waits for this host's slot: free it rather than keep it.
        if self.cfg.per_host > 0 && self.cfg.shared.wanted_elsewhere(slot.key(), self.member.id) {
            self.remove_idle(c);
            self.close_conn(c);
            return;
        }
        let at = self.deadline_ms(self.cfg.idle_timeout);
        self.conns[c].idle_timer = Some(self.wheel.insert(at, TimerRef::Idle(c)));
        self.idle.add(c);
        self.cap_idle();
    }

    /// Closes the connections idle longest while more than `max_idle` are idle
    /// (over all hosts): with millions of distinct hosts, each leaves one.
    pub(super) fn cap_idle(&mut self) {
        while self.idle.len() > self.cfg.max_idle {
            let Some(c) = self.idle.oldest() else {
                break;
            };
            self.idle.remove(c);
            self.remove_idle(c);
            self.close_conn(c);
        }
    }

    /// Takes `c` out of the pool's idle list (it is about to close).
    pub(super) fn remove_idle(&mut self, c: usize) {
        if let Some(s) = self.conns.get(c) {
            self.pool.remove_idle(s.key(), c);
        }
    }

    /// Closes a connection that is registered and counted in the pool.
    pub(super) fn close_conn(&mut self, c: usize) {
        let Some(slot) = self.drop_conn_socket(c) else {
            return;
        };
        if self.cfg.per_host > 0 {
            self.cfg.shared.closed(slot.key(), self.member.id);
        }
        let tasks = &self.tasks;
        if let Some(w) = self.pool.closed(slot.key(), |w| still_waiting(tasks, w)) {
            self.hand_off(Handoff::Start(w));
        }
    }

    /// Deregisters and drops the socket without touching the pool's counts (a
    /// connect attempt that failed: the pool slot stays with the task).
    pub(super) fn drop_conn_socket(&mut self, c: usize) -> Option<Slot> {
        self.idle.remove(c);
        let mut slot = self.conns.try_remove(c)?;
        if let Some(k) = slot.idle_timer.take() {
            self.wheel.cancel(k);
        }
        let _ = self.poll.registry().deregister(&mut slot.conn.sock);
        Some(slot)
    }
}
