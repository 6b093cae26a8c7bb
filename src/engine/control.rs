//! The caller's commands to requests in flight, by tag: [`Engine::cancel`] and
//! [`Engine::resume`] (of a body the handler paused with `BodyAction::Pause`).
//!
//! Part of the driver (it calls the task's way in `task.rs`), kept apart because it
//! is the embedder's API rather than the loop's. Invariant: a cancelled request
//! gets its one `on_done` (kind `Cancelled`) at once, holds nothing afterwards (no
//! connection, pool slot, waiter place or timer), and frees its concurrency slot
//! for the next request.

use super::deadline;
use super::{Engine, Handler, Source};
use crate::error::{Error, ErrorKind};

impl<S: Source, H: Handler> Engine<S, H> {
    /// The slab key of the request with `tag`, if it is in flight (a scan: tags are
    /// the caller's, not an index; with duplicate tags, the first found).
    fn task_of(&self, tag: u64) -> Option<usize> {
        self.tasks
            .iter()
            .find(|(_, task)| task.tag == tag)
            .map(|(k, _)| k)
    }

    /// Resumes the body of the request with `tag`, which the handler paused: the
    /// bytes that arrived with the pausing chunk and since are handed on now (in this
    /// call, which may thus call `on_body`, and `on_done`), and reading goes on. The
    /// read deadline runs again from now. Returns false when no request with that
    /// tag is paused.
    pub fn resume(&mut self, tag: u64) -> bool {
        let Some(t) = self.task_of(tag).filter(|&t| self.tasks[t].paused) else {
            return false;
        };
        self.now = std::time::Instant::now();
        self.tasks[t].paused = false;
        self.set_phase(t, deadline::Phase::Read);
        if let Some(c) = self.tasks[t].a.conn {
            self.read(t, c, true);
        }
        true
    }

    /// Cancels the request with `tag`: its connection is closed (or its dial, wait
    /// or retry backoff abandoned) and `on_done` is called at once with an `Outcome`
    /// of kind [`ErrorKind::Cancelled`]. Returns false when no request with that tag
    /// is in flight (not pulled from the source yet, or already done).
    pub fn cancel(&mut self, tag: u64) -> bool {
        let Some(t) = self.task_of(tag) else {
            return false;
        };
        self.now = std::time::Instant::now();
        let task = &mut self.tasks[t];
        if let Some(k) = task.wake.take() {
            self.wheel.cancel(k);
        }
        // A task waiting outside a slot (backoff, its host's queue, let go but not
        // started) holds none: `finish` gives one back, so count one in.
        if self.leave_wait(t) {
            self.active += 1;
        }
        // A request pipelined behind another leaves its connection, which then
        // closes after its current response (its answer can no longer be matched).
        self.leave_behind(t);
        self.give_back(t);
        let e = Error::new(ErrorKind::Cancelled, "cancelled by the caller");
        self.finish(t, Some(e));
        true
    }
}
