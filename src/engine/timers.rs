//! The driver's clock and timers: the wheel's millisecond time, firing what is due
//! (`expire`: a task's deadline, a task's wake-up, a Happy Eyeballs race step, an
//! idle connection's close, the rate and 100-continue timers, the gate's recheck),
//! and arming a task's phase and read deadlines.
//!
//! Part of the driver with `mod.rs`, `task.rs`, `conns.rs` (one `impl Engine`); the
//! deadlines themselves are the `deadline` seam's. Invariants: the clock is read
//! again for each fired timer; a task has at most one wheel entry for its deadlines
//! (`deadline::Deadlines` keeps it at the nearest), and a deadline that fires for a
//! task whose bytes are already waiting is not declared before they are read
//! (`look_first`).

use super::conns::Slot;
use super::task::TaskState;
use super::{deadline, Engine, Handler, Source, TimerRef};
use std::time::{Duration, Instant};

impl<S: Source, H: Handler> Engine<S, H> {
    pub(super) fn now_ms_floor(&self) -> u64 {
        self.now
            .saturating_duration_since(self.wheel.instant(0))
            .as_millis() as u64
    }

    pub(super) fn deadline_ms(&self, after: Duration) -> u64 {
        self.wheel.ms(self.now + after)
    }

    pub(super) fn expire(&mut self) {
        let now = self.now_ms_floor();
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(now, &mut fired);
        for t in fired.drain(..) {
            self.now = Instant::now();
            match t {
                TimerRef::Task(k) => self.task_deadline(k),
                TimerRef::Wake(k) => self.task_wake(k),
                TimerRef::Race(k) => {
                    if self
                        .tasks
                        .get(k)
                        .is_some_and(|t| t.state == TaskState::Dialing)
                    {
                        let step = self.with_dialer(k, None, |d, ctx, _, _, _| d.on_timer(ctx));
                        self.dial_step(k, step);
                    }
                }
                TimerRef::Idle(c) => {
                    // Only if `c`'s idle timer is the one that fired: a timer handled
                    // before it in this batch may have ended a task whose slot started
                    // a request that took `c` from the pool (its timer, out of the
                    // wheel already, could not be cancelled), or `c` may have closed
                    // and its index gone to a new connection.
                    let wheel = &self.wheel;
                    let fired = |s: &mut Slot| {
                        s.idle_timer
                            .take_if(|k| wheel.deadline(*k).is_none())
                            .is_some()
                    };
                    if self.conns.get_mut(c).is_some_and(fired) {
                        self.remove_idle(c);
                        self.close_conn(c);
                    }
                }
                TimerRef::Rate => self.rate_timer = false,
                TimerRef::Continue(k) => self.continue_timer(k),
                TimerRef::Recheck => self.recheck(),
            }
        }
        self.fired = fired;
    }

    pub(super) fn set_phase(&mut self, t: usize, phase: deadline::Phase) {
        let after = match phase {
            deadline::Phase::Connect => self.tasks[t].settings.connect_timeout,
            deadline::Phase::Read => self.tasks[t].settings.read_timeout,
        };
        let d = self.deadline_ms(after);
        let tag = TimerRef::Task(t);
        self.tasks[t]
            .deadlines
            .set_phase(phase, d, &mut self.wheel, tag);
    }

    /// Pushes the read deadline forward after progress (cheap when it has not moved).
    pub(super) fn touch_read(&mut self, t: usize) {
        let d = self.deadline_ms(self.tasks[t].settings.read_timeout);
        let tag = TimerRef::Task(t);
        self.tasks[t].deadlines.touch_read(d, &mut self.wheel, tag);
    }

    pub(super) fn task_deadline(&mut self, t: usize) {
        let now = self.now_ms_floor();
        // Its deadlines not armed: the entry is not its own (fired with others in
        // this turn, for a task one of them ended; the index is the next request's,
        // which may wait with no deadline running).
        let Some(task) = self.tasks.get_mut(t).filter(|x| x.deadlines.is_armed()) else {
            return;
        };
        let Some(fired) = task
            .deadlines
            .fired(now, &mut self.wheel, TimerRef::Task(t))
        else {
            return;
        };
        if self.cfg.pipeline > 1 && self.pipeline_deadline(t, fired) {
            return;
        }
        let total = fired == deadline::Fired::Total;
        if fired != deadline::Fired::Phase(deadline::Phase::Connect) && self.look_first(t, total) {
            return;
        }
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        let timeouts = deadline::Timeouts {
            connect: task.settings.connect_timeout,
            read: task.settings.read_timeout,
            total: task.settings.total_timeout,
        };
        let a = &task.a;
        let host = a.url(&task.first).host();
        let conn = a.conn.and_then(|c| self.conns.get(c)).map(|s| &s.conn);
        let doing = task.doing(conn, &host);
        let error = deadline::error(fired, doing, timeouts);
        self.fail(t, error, false);
    }

    pub(super) fn task_wake(&mut self, t: usize) {
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        task.wake = None;
        if task.state == TaskState::Queued {
            // A file-descriptor wait: the task kept its slot.
            self.start_attempt(t);
        }
    }
}
