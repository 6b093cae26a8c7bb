//! HTTP/1.1 pipelining (`Config::pipeline` above 1): putting a request onto an open
//! connection of its host that has room, reading the responses in order, and what
//! happens when a connection cannot keep up its side.
//!
//! Part of the driver with `mod.rs`, `task.rs` and `conns.rs` (one `impl Engine`);
//! the host's room list and its "no more pipelining" mark are the `pool`'s. Nothing
//! here runs at `--pipeline 1`: the callers test `cfg.pipeline > 1` first.
//!
//! A busy connection's `task` is the one whose response is read now, `behind` the
//! tasks whose requests were written after it, in order; responses are matched in
//! that order. Invariants:
//! - only GET, HEAD and OPTIONS without a body (and not bumped from behind others
//!   `MAX_FREE_RESENDS` times: `close_by_choice`) join `behind`, only on a connection
//!   whose current request is one of those (from its first request on), whose host
//!   has not stopped pipelining, and while `1 + behind.len() < pipeline`; such a
//!   connection is on its host's room list (`in_room`) and nowhere else;
//! - a request goes onto a connection with room before a new connection is opened,
//!   and onto the room a dial in progress will bring (`pool`'s claims) before
//!   another dial; a dial's claimants start again when it settles (its request is
//!   written: they go onto its room; or it failed: they find their own way);
//! - an answer after which the connection cannot go on (`Connection: close`,
//!   HTTP/1.0, a body cut at `--max-body`) while requests wait behind it stops
//!   pipelining to the host (they are sent again);
//! - a task behind has no phase deadline (its total runs): its read deadline starts
//!   when it becomes the connection's `task`;
//! - a connection closing with tasks behind sends them again elsewhere, free of an
//!   attempt up to [`MAX_FREE_RESENDS`] times each; a connection that lost a task
//!   from `behind` (`doomed`) takes no more and closes after its current response;
//! - a response that cannot be framed while pipelining (a protocol error, a body
//!   until close, an answer that never comes) stops pipelining to its host, and so
//!   does a request left unanswered more than [`MAX_FREE_RESENDS`] times.

use super::conns::Slot;
use super::exchange::Exchange;
use super::task::{key_of, still_waiting, Task, TaskState};
use super::{deadline, Engine, Handler, Source, TimerRef};
use crate::conn::Phase;
use crate::error::{Error, ErrorKind};
use std::collections::VecDeque;

/// Free re-sends of one pipelined request (per attempt) before a re-send counts as
/// an attempt.
const MAX_FREE_RESENDS: u8 = 3;

/// True when the task's request may be pipelined: GET, HEAD or OPTIONS, no body.
pub(super) fn pipelinable(task: &Task) -> bool {
    if task.a.bumped >= MAX_FREE_RESENDS {
        return false; // bumped too often from behind others: it goes alone
    }
    let m = task.spec.method.as_str();
    task.a.as_get
        || (task.spec.body.is_empty()
            && task.spec.stream.is_none()
            && ["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|s| m.eq_ignore_ascii_case(s)))
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// With `--pipeline`: puts task `t` onto an open connection of its host with room
    /// (when none is idle). False when it must take the usual way.
    pub(super) fn pipe_onto_room(&mut self, t: usize) -> bool {
        let task = &self.tasks[t];
        if !pipelinable(task) {
            return false;
        }
        let key = key_of(task.a.url(&task.first));
        if self.pool.has_idle(key) {
            return false;
        }
        let Some(c) = self.pool.take_room(key) else {
            return false;
        };
        self.conns[c].in_room = false;
        self.enqueue(t, c);
        true
    }

    /// True when task `t`'s request could go onto a pipeline: pipelinable, with
    /// keep-alive, to a host still pipelining.
    pub(super) fn may_pipeline(&self, t: usize) -> bool {
        let task = &self.tasks[t];
        self.cfg.keepalive
            && pipelinable(task)
            && self.pool.pipelining(key_of(task.a.url(&task.first)))
    }

    /// Task `t`'s dial, if on record as bringing room, is over (its request is
    /// written, or it failed): its claimants start again, in order — onto its
    /// connection's room when there is some, else their own way.
    pub(super) fn settle_dial(&mut self, t: usize) {
        let Some(task) = self.tasks.get_mut(t).filter(|x| x.a.promised) else {
            return;
        };
        task.a.promised = false;
        let task = &self.tasks[t];
        let claimants = self.pool.settle(key_of(task.a.url(&task.first)), t);
        // At a stop the claimants are cancelled where they wait: none starts now.
        if self.stopped() {
            return;
        }
        for w in claimants {
            self.hand_off(super::Handoff::Start(w));
        }
    }

    /// Writes task `t`'s request behind those outstanding on `c`.
    fn enqueue(&mut self, t: usize, c: usize) {
        self.begin_clock(t);
        self.tasks[t].a.new_hop();
        self.send_as(t, c, true);
        self.refresh_room(c);
    }

    /// Task `t`'s request was queued on `c`: it waits behind the others (no read
    /// deadline yet; its total runs) and the connection writes what it has.
    pub(super) fn queued(&mut self, t: usize, c: usize) {
        let task = &mut self.tasks[t];
        task.state = TaskState::Exchanging;
        task.a.exchange = Exchange {
            sent_at: Some(self.now),
            pipelined: true,
            ..Exchange::default()
        };
        task.a.conn = Some(c);
        task.deadlines
            .hold_phase(&mut self.wheel, TimerRef::Task(t));
        let slot = &mut self.conns[c];
        slot.behind.push_back(t);
        let head = slot.task.expect("a connection with room has a task");
        self.refresh_room(c);
        self.write(head, c);
    }

    /// Puts `c` on its host's room list, or takes it off, as it can take another
    /// pipelined request or not; answers whether it can. A new connection has room
    /// from its first request on (not only once it has answered).
    pub(super) fn refresh_room(&mut self, c: usize) -> bool {
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        let room = slot.task.is_some()
            && slot.safe
            && !slot.doomed
            && matches!(slot.conn.phase, Phase::Writing | Phase::Reading)
            && 1 + slot.behind.len() < self.cfg.pipeline
            && self.cfg.keepalive
            && self.pool.pipelining(slot.key());
        if room != slot.in_room {
            slot.in_room = room;
            if room {
                self.pool.add_room(slot.key(), c);
            } else {
                self.pool.remove_room(slot.key(), c);
            }
        }
        room
    }

    /// Gives `c`'s room to tasks waiting for a connection of its host.
    pub(super) fn offer_room(&mut self, c: usize) {
        while self.refresh_room(c) {
            let tasks = &self.tasks;
            let key = self.conns[c].key();
            let Some(w) = self.pool.next_waiter(key, |w| still_waiting(tasks, w)) else {
                return;
            };
            self.start_hop(w);
            // (Were `w` finished and its index taken by a new waiter, the room waits
            // for `c`'s next answer: a delay, not a loss.)
            if still_waiting(&self.tasks, w) {
                return; // it may not be pipelined: it waits for a connection of its own
            }
        }
    }

    /// The response to `t` on `c` ended with requests pipelined behind it: the next
    /// one's response is read at once (its bytes may be here already), or the
    /// connection closes and they are sent again.
    pub(super) fn pipelined_done(&mut self, t: usize, c: usize, keep: bool) {
        let slot = &mut self.conns[c];
        if !keep || slot.doomed {
            // The host will not keep a connection going past this answer (it said
            // `Connection: close`, spoke HTTP/1.0, or framed the body until close),
            // or this answer could not be read to its end: the requests behind are
            // sent again, and no more go behind others to this host.
            if !keep && !slot.behind.is_empty() || self.tasks[t].a.exchange.until_close {
                self.pool.stop_pipelining(slot.key());
            }
            self.release_conn(c, true);
            self.hop_done(t);
            return;
        }
        let next = slot.behind.pop_front().expect("a task behind");
        slot.task = Some(next);
        let n = &self.tasks[next];
        let head_request = !n.a.as_get && n.spec.method.eq_ignore_ascii_case("HEAD");
        slot.conn.next_response(head_request);
        self.set_phase(next, deadline::Phase::Read);
        self.refresh_room(c);
        self.hop_done(t);
        let still = |s: &Slot| s.task == Some(next) && s.conn.phase == Phase::Reading;
        if self.conns.get(c).is_some_and(still) {
            self.offer_room(c);
        }
        if self.conns.get(c).is_some_and(still) {
            self.read(next, c, true);
        }
    }

    /// Sends task `t` (holding no connection) again, free of an attempt (not at a
    /// stop). A request that was pipelined is sent free only [`MAX_FREE_RESENDS`]
    /// times: then its host stops pipelining (it keeps closing connections with
    /// requests unanswered) and the request fails with `e`, which counts an attempt
    /// and may be retried.
    pub(super) fn resend(&mut self, t: usize, e: Error) {
        // At a stop nothing starts again (it would only be cancelled, and a
        // connection closed by the stop could count it as unanswered again and
        // again): the stop's loop finishes it with `Cancelled`.
        if self.stopped() {
            return;
        }
        let task = &mut self.tasks[t];
        if task.a.exchange.pipelined {
            if task.a.resends >= MAX_FREE_RESENDS {
                self.pool.stop_pipelining(key_of(task.a.url(&task.first)));
                self.fail(t, e, false);
                return;
            }
            task.a.resends += 1;
        }
        self.start_hop(t);
    }

    /// Task `t`, if it waits behind others on its connection, leaves it (which then
    /// takes no more and closes after its current response): true if it did.
    pub(super) fn leave_behind(&mut self, t: usize) -> bool {
        let Some(c) = self.tasks[t].a.conn else {
            return false;
        };
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        let Some(i) = slot.behind.iter().position(|&w| w == t) else {
            return false;
        };
        slot.behind.remove(i);
        slot.doomed = true;
        self.refresh_room(c);
        self.tasks[t].a.conn = None;
        true
    }

    /// A deadline of task `t` fired (`--pipeline` above 1). A task behind others
    /// leaves its connection, which then closes after its current response; a
    /// pipelined request whose answer never began (the host answered fewer than
    /// were sent) stops pipelining to the host and is sent again: true when so
    /// handled, and the deadline is not an error.
    pub(super) fn pipeline_deadline(&mut self, t: usize, fired: deadline::Fired) -> bool {
        let Some(c) = self.tasks[t].a.conn else {
            return false;
        };
        if self.leave_behind(t) {
            return false;
        }
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        let stalled = slot.task == Some(t)
            && fired == deadline::Fired::Phase(deadline::Phase::Read)
            && !slot.conn.got_response_bytes()
            && self.tasks[t].a.exchange.pipelined;
        if !stalled {
            return false;
        }
        // Its answer may be waiting unread (a busy turn): read before declaring.
        if self.look_first(t, false) {
            return true;
        }
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        self.pool.stop_pipelining(slot.key());
        self.tasks[t].a.conn = None;
        self.release_conn(c, true);
        let e = Error::new(ErrorKind::ReadTimeout, "no answer to the pipelined request");
        self.resend(t, e);
        true
    }

    /// Closes `c` by the engine's own choice: its current response was framed but
    /// cannot be used (too many redirects, a body that does not decode, the
    /// handler's abort), or its current request failed (a deadline) or was
    /// cancelled. The host closed nothing, so each request pipelined behind is
    /// sent again without spending one of its free re-sends (which count a host's
    /// closes); after [`MAX_FREE_RESENDS`] such bumps a request is no longer
    /// pipelinable (it goes on a connection alone), so requests ahead that keep
    /// failing (a host too slow for `--read-timeout`) cannot keep it waiting.
    pub(super) fn close_by_choice(&mut self, c: usize) {
        if let Some(slot) = self.conns.get(c) {
            for &w in &slot.behind {
                if let Some(task) = self.tasks.get_mut(w) {
                    task.a.exchange.pipelined = false;
                    task.a.bumped = task.a.bumped.saturating_add(1);
                }
            }
        }
        self.release_conn(c, true);
    }

    /// The tasks that were `behind` on `c`, which closed: each is sent again.
    pub(super) fn resend_behind(&mut self, behind: VecDeque<usize>, c: usize) {
        for w in behind {
            let Some(task) = self.tasks.get_mut(w) else {
                continue;
            };
            if task.a.conn == Some(c) && task.state == TaskState::Exchanging {
                task.a.conn = None;
                let e = Error::new(
                    ErrorKind::Closed,
                    "the connection closed before answering the pipelined request",
                );
                self.resend(w, e);
            }
        }
    }
}
