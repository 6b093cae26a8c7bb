//! Which deadline a task is under, its single wheel entry, and the error a fired
//! deadline becomes.
//!
//! A task runs under at most two deadlines at once: the phase deadline (connect —
//! resolution, TCP connect, proxy tunnel and TLS handshake of one connection — or
//! read, re-armed on progress) and the attempt's total. Only the nearest sits in the
//! timer wheel, as curl keeps only each transfer's nearest timeout in its global
//! structure (`docs/timeouts.md`).
//!
//! Invariants:
//! - a task has at most one wheel entry, at `min(phase, total)`;
//! - when the entry fires, [`Deadlines::fired`] says which deadline is really due, or
//!   re-arms when the phase deadline has moved since (read progress);
//! - a task waiting for a slot has no deadline at all, so no deadline fires for a
//!   request that has not started; a redirect hop that waits for a per-host slot
//!   pauses the attempt's total ([`Deadlines::suspend`]) and resumes it with the
//!   budget that was left ([`Deadlines::resume`]): slot waits never count.

use crate::error::{Error, ErrorKind};
use crate::timer::{TimerKey, Wheel};
use std::fmt::Display;
use std::time::Duration;

/// The phase deadline's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `--connect-timeout`: getting a ready connection.
    Connect,
    /// `--read-timeout`: silence once the request is under way.
    Read,
}

/// A deadline that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The attempt's `--timeout`.
    Total,
    /// The phase deadline of this kind.
    Phase(Phase),
}

/// What the task was doing when a deadline fired, for the error's detail.
#[derive(Clone, Copy)]
pub(crate) enum Doing<'a> {
    /// Resolving this host.
    Resolving(&'a str),
    /// Connecting (or waiting to) to this peer or host.
    Connecting(&'a dyn Display),
    /// In the TLS handshake with this peer.
    Handshaking(&'a dyn Display),
    /// Writing the request.
    Sending,
    /// Waiting for the response head.
    WaitingHead,
    /// Reading the body.
    ReadingBody,
}

/// The timeouts a task runs under (from `Config`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// `--connect-timeout`.
    pub connect: Duration,
    /// `--read-timeout`.
    pub read: Duration,
    /// `--timeout`.
    pub total: Option<Duration>,
}

/// One task's deadlines (milliseconds on the wheel's clock); see the module docs.
#[derive(Debug)]
pub(crate) struct Deadlines {
    phase: Phase,
    phase_at: u64,
    total_at: Option<u64>,
    /// The total's budget left while it is paused (a hop waiting for a slot).
    total_left: Option<u64>,
    timer: Option<TimerKey>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            phase: Phase::Connect,
            phase_at: 0,
            total_at: None,
            total_left: None,
            timer: None,
        }
    }
}

impl Deadlines {
    /// Starts (or, with `None`, clears) the attempt's total deadline. Takes effect at
    /// the next arming.
    pub fn set_total(&mut self, at: Option<u64>) {
        self.total_at = at;
        self.total_left = None;
    }

    /// True while a wheel entry is armed.
    pub fn is_armed(&self) -> bool {
        self.timer.is_some()
    }

    /// Removes the wheel entry; no deadline runs until the next arming.
    pub fn cancel<T>(&mut self, wheel: &mut Wheel<T>) {
        if let Some(k) = self.timer.take() {
            wheel.cancel(k);
        }
    }

    fn arm<T>(&mut self, wheel: &mut Wheel<T>, tag: T) {
        self.cancel(wheel);
        let d = match self.total_at {
            Some(total) => total.min(self.phase_at),
            None => self.phase_at,
        };
        self.timer = Some(wheel.insert(d, tag));
    }

    /// Enters phase `phase`, due at `at`.
    pub fn set_phase<T>(&mut self, phase: Phase, at: u64, wheel: &mut Wheel<T>, tag: T) {
        self.phase = phase;
        self.phase_at = at;
        self.arm(wheel, tag);
    }

    /// Pushes the read deadline to `at` after progress. Re-arms only when it moved:
    /// at most once per millisecond however many reads arrive.
    pub fn touch_read<T>(&mut self, at: u64, wheel: &mut Wheel<T>, tag: T) {
        if self.phase_at != at {
            self.set_phase(Phase::Read, at, wheel, tag);
        }
    }

    /// Waiting for a slot at `now`: no deadline runs. A total that has started (a
    /// redirect hop) is paused with the budget it has left.
    pub fn suspend<T>(&mut self, now: u64, wheel: &mut Wheel<T>) {
        self.cancel(wheel);
        if let Some(at) = self.total_at.take() {
            self.total_left = Some(at.saturating_sub(now));
        }
    }

    /// The wait is over at `now`: a paused total runs again with the budget it had
    /// left. Takes effect at the next arming.
    pub fn resume(&mut self, now: u64) {
        if let Some(left) = self.total_left.take() {
            self.total_at = Some(now.saturating_add(left));
        }
    }

    /// Queued behind other pipelined requests: no phase deadline (the read deadline
    /// starts when the responses before it are done); the total keeps running.
    pub fn hold_phase<T>(&mut self, wheel: &mut Wheel<T>, tag: T) {
        self.cancel(wheel);
        if self.total_at.is_some() {
            self.phase_at = u64::MAX;
            self.arm(wheel, tag);
        }
    }

    /// The wheel entry fired at `now`: which deadline is due, if any. When none is
    /// (the phase deadline moved since), the entry is re-armed.
    pub fn fired<T>(&mut self, now: u64, wheel: &mut Wheel<T>, tag: T) -> Option<Fired> {
        self.timer = None;
        if self.total_at.is_some_and(|d| d <= now) {
            return Some(Fired::Total);
        }
        if self.phase_at > now {
            self.arm(wheel, tag);
            return None;
        }
        Some(Fired::Phase(self.phase))
    }
}

/// `10s`, `1.5s`: a duration as the options spell it.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// The error a fired deadline becomes: its kind names the deadline, its detail the
/// option and what the task was doing.
pub(crate) fn error(fired: Fired, doing: Doing<'_>, t: Timeouts) -> Error {
    match fired {
        Fired::Total => {
            let what = match doing {
                Doing::ReadingBody => "while reading the body",
                Doing::Sending | Doing::WaitingHead => "while waiting for the response",
                _ => "while connecting",
            };
            Error::new(
                ErrorKind::TotalTimeout,
                format!(
                    "attempt exceeded --timeout {} {what}",
                    secs(t.total.unwrap_or_default())
                ),
            )
        }
        Fired::Phase(Phase::Connect) => {
            let what = match doing {
                Doing::Resolving(host) => format!("resolving {host}"),
                Doing::Handshaking(peer) => format!("TLS handshake with {peer}"),
                Doing::Connecting(peer) => format!("connecting to {peer}"),
                _ => "connecting".to_string(),
            };
            Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "no connection within --connect-timeout {} ({what})",
                    secs(t.connect)
                ),
            )
        }
        Fired::Phase(Phase::Read) => {
            let what = match doing {
                Doing::ReadingBody => "reading the body",
                Doing::Sending => "sending the request",
                _ => "waiting for the response head",
            };
            Error::new(
                ErrorKind::ReadTimeout,
                format!(
                    "peer silent for --read-timeout {} while {what}",
                    secs(t.read)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const T: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_millis(1500),
        total: Some(Duration::from_secs(30)),
    };

    #[test]
    fn error_texts() {
        let peer = "10.0.0.1:443";
        let table: [(Fired, Doing<'_>, ErrorKind, &str); 7] = [
            (
                Fired::Phase(Phase::Connect),
                Doing::Connecting(&peer),
                ErrorKind::ConnectTimeout,
                "no connection within --connect-timeout 10s (connecting to 10.0.0.1:443)",
            ),
            (
                Fired::Phase(Phase::Connect),
                Doing::Handshaking(&peer),
                ErrorKind::ConnectTimeout,
                "no connection within --connect-timeout 10s (TLS handshake with 10.0.0.1:443)",
            ),
            (
                Fired::Phase(Phase::Connect),
                Doing::Resolving("a.test"),
                ErrorKind::ConnectTimeout,
                "no connection within --connect-timeout 10s (resolving a.test)",
            ),
            (
                Fired::Phase(Phase::Read),
                Doing::Sending,
                ErrorKind::ReadTimeout,
                "peer silent for --read-timeout 1.5s while sending the request",
            ),
            (
                Fired::Phase(Phase::Read),
                Doing::WaitingHead,
                ErrorKind::ReadTimeout,
                "peer silent for --read-timeout 1.5s while waiting for the response head",
            ),
            (
                Fired::Total,
                Doing::ReadingBody,
                ErrorKind::TotalTimeout,
                "attempt exceeded --timeout 30s while reading the body",
            ),
            (
                Fired::Total,
                Doing::Resolving("a.test"),
                ErrorKind::TotalTimeout,
                "attempt exceeded --timeout 30s while connecting",
            ),
        ];
        for (fired, doing, kind, detail) in table {
            let e = error(fired, doing, T);
            assert_eq!((e.kind, e.detail.as_str()), (kind, detail));
        }
    }

    #[test]
    fn one_entry_at_the_nearest_and_moved_deadlines_rearm() {
        // Deadlines below 64 ms sit in the wheel's finest level, where
        // `next_deadline` is exact.
        let mut w: Wheel<u8> = Wheel::new(Instant::now());
        let mut d = Deadlines::default();
        d.set_total(Some(40));
        d.set_phase(Phase::Connect, 10, &mut w, 1);
        d.set_phase(Phase::Read, 20, &mut w, 1);
        assert_eq!((w.len(), w.next_deadline()), (1, Some(20)));
        d.touch_read(30, &mut w, 1);
        d.touch_read(30, &mut w, 1);
        assert_eq!((w.len(), w.next_deadline()), (1, Some(30)));
        let mut out = Vec::new();
        w.advance(30, &mut out);
        assert_eq!(out, [1]);
        // Asked at a time before the phase deadline (it moved): re-armed, nothing due.
        assert_eq!(d.fired(29, &mut w, 1), None);
        assert_eq!((w.len(), w.next_deadline()), (1, Some(30)));
        d.cancel(&mut w);
        assert_eq!(d.fired(30, &mut w, 1), Some(Fired::Phase(Phase::Read)));
        // Waiting for a slot in a redirect hop at 30: nothing runs, and the total's
        // 10 ms left resume when the wait ends at 50.
        d.suspend(30, &mut w);
        assert!(w.is_empty());
        d.resume(50);
        d.set_phase(Phase::Read, 100, &mut w, 1);
        assert_eq!((w.len(), w.next_deadline()), (1, Some(60)));
        w.advance(60, &mut out);
        assert_eq!(d.fired(60, &mut w, 1), Some(Fired::Total));
        d.cancel(&mut w);
        d.set_total(None);
        d.suspend(60, &mut w);
        d.resume(70);
        assert!(w.is_empty() && d.total_at.is_none());
    }

    #[test]
    fn held_behind_pipelined_requests_only_the_total_runs() {
        let mut w: Wheel<u8> = Wheel::new(Instant::now());
        let mut d = Deadlines::default();
        d.set_total(Some(40));
        d.set_phase(Phase::Read, 20, &mut w, 1);
        d.hold_phase(&mut w, 1);
        assert_eq!((w.len(), w.next_deadline()), (1, Some(40)));
        let mut out = Vec::new();
        w.advance(40, &mut out);
        assert_eq!(d.fired(40, &mut w, 1), Some(Fired::Total));
        d.set_total(None);
        d.hold_phase(&mut w, 1);
        assert!(w.is_empty(), "no total: nothing runs");
    }
}
