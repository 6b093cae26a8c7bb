//! Happy Eyeballs v2 (RFC 8305) bookkeeping for one dial: the order addresses are
//! tried in, the connections racing, when the next one may start, and the winner.
//!
//! The `Dialer` owns a [`Race`] and asks it; the race knows connections only as slab
//! keys and never touches a socket. Addresses are interleaved by family, starting
//! with the family of the resolver's first address ([`interleave`]). A connect
//! starts; while it is still connecting, the next address starts [`ATTEMPT_DELAY`]
//! later (or at once when a connect fails); the first to connect wins and every
//! other racer is handed back to be closed. All of it runs under the one connect
//! deadline, which the engine keeps.
//!
//! Invariants: a key is racing from [`Race::started`] until it fails, loses or wins;
//! every key that stops racing without winning is handed out once by
//! [`Race::pop_dropped`]; after a win nothing races.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// RFC 8305's recommended Connection Attempt Delay.
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The addresses in the order to try them: families alternate, starting with the
/// family of the first address; within a family the resolver's order is kept.
pub(crate) fn interleave(addrs: &[IpAddr]) -> Vec<IpAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let v6_first = first.is_ipv6();
    let (mut a, mut b): (Vec<IpAddr>, Vec<IpAddr>) =
        addrs.iter().partition(|x| x.is_ipv6() == v6_first);
    let mut out = Vec::with_capacity(addrs.len());
    let (mut ia, mut ib) = (a.drain(..), b.drain(..));
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// One dial's racing connections; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Race {
    racing: Vec<usize>,
    dropped: Vec<usize>,
    winner: Option<usize>,
    last_start: Option<Instant>,
    armed: Option<Instant>,
}

impl Race {
    /// Connection `c` started connecting at `now`.
    pub fn started(&mut self, c: usize, now: Instant) {
        self.racing.push(c);
        self.last_start = Some(now);
    }

    /// Connection `c` failed to connect; false when it was not racing.
    pub fn failed(&mut self, c: usize) -> bool {
        let Some(i) = self.racing.iter().position(|&x| x == c) else {
            return false;
        };
        self.racing.remove(i);
        self.dropped.push(c);
        true
    }

    /// Connection `c` connected first: the others are dropped.
    pub fn won(&mut self, c: usize) {
        self.racing.retain(|&x| x != c);
        self.dropped.append(&mut self.racing);
        self.winner = Some(c);
    }

    /// The winner, or else the connection racing longest.
    pub fn current(&self) -> Option<usize> {
        self.winner.or_else(|| self.racing.first().copied())
    }

    /// True while a connection is still connecting.
    pub fn is_racing(&self) -> bool {
        !self.racing.is_empty()
    }

    /// True when `c` is racing.
    pub fn has(&self, c: usize) -> bool {
        self.racing.contains(&c)
    }

    /// A connection to close (failed or lost), once each.
    pub fn pop_dropped(&mut self) -> Option<usize> {
        self.dropped.pop()
    }

    /// Every connection still racing, handed over to be closed (the dial ends).
    pub fn abandon(&mut self) {
        self.dropped.append(&mut self.racing);
    }

    /// When the next address may start, while one is still connecting and `more`
    /// addresses are left.
    pub fn due(&self, more: bool) -> Option<Instant> {
        if !more || self.racing.is_empty() {
            return None;
        }
        self.last_start.map(|t| t + ATTEMPT_DELAY)
    }

    /// A timer fired: the next [`Race::arm`] asks again.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    /// [`Race::due`], when no timer has been asked for it yet.
    pub fn arm(&mut self, more: bool) -> Option<Instant> {
        let due = self.due(more)?;
        if self.armed == Some(due) {
            return None;
        }
        self.armed = Some(due);
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first() {
        let table: [(&[&str], &[&str]); 5] = [
            (&[], &[]),
            (&["10.0.0.1", "10.0.0.2"], &["10.0.0.1", "10.0.0.2"]),
            (
                &["10.0.0.1", "10.0.0.2", "::1", "::2", "::3"],
                &["10.0.0.1", "::1", "10.0.0.2", "::2", "::3"],
            ),
            (
                &["::1", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
                &["::1", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
            ),
            (&["::1", "::2", "10.0.0.1"], &["::1", "10.0.0.1", "::2"]),
        ];
        for (given, want) in table {
            assert_eq!(interleave(&ips(given)), ips(want), "{given:?}");
        }
    }

    #[test]
    fn next_start_is_due_while_connecting_and_losers_are_dropped() {
        let t0 = Instant::now();
        let mut r = Race::default();
        assert_eq!(r.due(true), None, "nothing racing: nothing due");
        r.started(4, t0);
        assert_eq!(r.due(false), None, "no address left");
        assert_eq!(r.arm(true), Some(t0 + ATTEMPT_DELAY));
        assert_eq!(r.arm(true), None, "armed once");
        r.started(9, t0 + ATTEMPT_DELAY);
        assert_eq!(r.current(), Some(4));
        assert!(r.failed(4));
        assert!(!r.failed(4));
        assert_eq!(r.current(), Some(9));
        r.started(11, t0 + ATTEMPT_DELAY * 2);
        r.won(11);
        assert!(!r.is_racing());
        assert_eq!(r.current(), Some(11));
        let mut dropped: Vec<usize> = std::iter::from_fn(|| r.pop_dropped()).collect();
        dropped.sort();
        assert_eq!(dropped, [4, 9]);
        assert_eq!(r.due(true), None);
    }
}
