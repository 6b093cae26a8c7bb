//! Driving the engine from someone else's event loop: the poll descriptor to watch
//! and the time the engine next needs a turn.
//!
//! The engine's mio `Poll` is an epoll (or kqueue) descriptor; it turns readable when
//! any socket, resolver answer or [`Notifier`](super::Notifier) wake-up is pending. A
//! foreign loop (epoll, mio, tokio's `AsyncFd`) watches it for readability, and calls
//! [`Engine::step`] with `Some(Duration::ZERO)` when it is readable or when
//! [`Engine::next_timeout`] has passed. Readiness is level-true but edge-reported: a
//! loop must clear its own readiness flag *before* the `step` that consumes the
//! events (as `examples/tokio_loop.rs` does), so an event that arrives during the
//! step is reported again.
//!
//! Invariant: `next_timeout` is `Some(ZERO)` whenever a turn has work the descriptor
//! will not announce (the last poll filled its event buffer, so more may be queued
//! without a new edge).

use super::{Engine, Handler, Source};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

impl<S: Source, H: Handler> AsRawFd for Engine<S, H> {
    /// The engine's poll descriptor: readable when a turn has events to handle.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// How long a foreign loop may wait (for the descriptor to turn readable) before
    /// calling [`Engine::step`] again: `None` when only I/O can bring more work (or
    /// everything is finished), `Some(ZERO)` when a turn is due now.
    pub fn next_timeout(&self) -> Option<Duration> {
        if self.is_finished() {
            return None;
        }
        if self.more_events {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        self.next_wake(now)
            .map(|t| t.saturating_duration_since(now))
    }

    /// The earliest of the wheel's next deadline, the resolver's, and (when a slot
    /// is free to start one) the first parked task's time.
    pub(super) fn next_wake(&self, now: Instant) -> Option<Instant> {
        // A parked task's time matters only when a slot is free to start it.
        let parked = self
            .park
            .next_wake()
            .filter(|_| self.active < self.cfg.concurrency);
        [
            self.wheel.next_deadline().map(|ms| self.wheel.instant(ms)),
            self.resolver.next_deadline(now),
            parked,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
