//! State shared by engines that run as one — the binary's `--workers` — so that
//! `--rate` and `--per-host` are totals, not per-engine figures.
//!
//! A [`Shared`] travels in `Config::shared`; cloning a `Config` shares it (the
//! binary clones one `Config` per worker), and `Config::default()` makes a fresh one.
//! It holds:
//! - the `--rate` pacer (one [`Rate`] behind a mutex: a request starts only with a
//!   token from it, so W engines together start no more than one engine would);
//! - a per-host table (scheme/host/port): connections open in all engines together,
//!   and which engines wait for a slot of that host. This is where later per-host
//!   politeness state (pauses, AIMD limits, `--rate-per-host`) belongs, beside
//!   `open`;
//! - the member engines' wakers and their inboxes of [`Note`]s;
//! - the politeness table (`politeness::Table`: pauses, AIMD limits,
//!   `--rate-per-host`), under the first engine's policy; unlike the connection
//!   counts it is used with adaptation on (the default) or a `--rate-per-host`,
//!   one lock at each request's start and end. Embedders read it through
//!   [`Shared::host_state`] and [`Shared::pushed_back`].
//!
//! Per-engine caches (the idle pool, DNS) stay per engine.
//!
//! Invariants:
//! - the table is used only with a per-host limit (`per_host > 0`), and the rate only
//!   with a rate: without them no lock is ever taken;
//! - `open` of a host counts every connection of all engines that is not closed,
//!   and is ≤ the limit; it changes in [`Shared::try_open`] (+1) and
//!   [`Shared::closed`] (−1) only, which the engines call exactly where their own
//!   pool's count changes;
//! - an engine that waits for a host is told ([`Note::Freed`]) when any other engine
//!   frees a slot of it, and the engines holding idle connections of that host are
//!   told ([`Note::Wanted`]) to close one, so a wait never lasts an idle timeout;
//! - entries for hosts with nothing open and nobody waiting are removed, so the table
//!   stays as small as the connections open; critical sections are a map lookup.

use super::politeness::{HostReport, HostView, Policy, Table};
use super::pool::Key;
use super::rate::Rate;
use mio::Waker;
use slab::Slab;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// State shared by the engines of one run; see the module docs.
#[derive(Clone, Default)]
pub struct Shared(Arc<Inner>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("hosts", &lock(&self.0.hosts).len())
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    rate: Mutex<Option<Rate>>,
    hosts: Mutex<HashMap<String, Vec<Host>>>,
    members: Mutex<Slab<Member>>,
    polite: Mutex<Option<Table>>,
}

/// One host's shared state.
#[derive(Debug)]
struct Host {
    tls: bool,
    port: u16,
    /// Connections open (or being dialed) in all engines.
    open: usize,
    /// Member engines waiting for a slot.
    waiting: Vec<usize>,
}

struct Member {
    waker: Arc<Waker>,
    notes: Vec<Note>,
    has_notes: Arc<AtomicBool>,
}

/// What another engine tells a member about a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// A slot of this host was freed: start waiters again.
    Freed(OwnedKey),
    /// Another engine waits for this host: close an idle connection of it.
    Wanted(OwnedKey),
}

/// A pool key with its host owned (for notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedKey {
    /// Host name or IP literal.
    pub host: String,
    /// https.
    pub tls: bool,
    /// Port.
    pub port: u16,
}

impl OwnedKey {
    /// The borrowed key.
    pub fn key(&self) -> Key<'_> {
        Key {
            host: &self.host,
            tls: self.tls,
            port: self.port,
        }
    }

    fn of(k: Key<'_>) -> OwnedKey {
        OwnedKey {
            host: k.host.to_string(),
            tls: k.tls,
            port: k.port,
        }
    }
}

/// A poisoned lock (a panic elsewhere) still holds consistent counts: use it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A member engine's handle: its id and its "notes waiting" flag. Dropping it
/// (with its engine) leaves.
#[derive(Debug)]
pub(crate) struct Membership {
    /// The member's id.
    pub id: usize,
    flag: Arc<AtomicBool>,
    shared: Shared,
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.shared.0.members).try_remove(self.id);
    }
}

impl Membership {
    /// True (once) when notes arrived since the last call.
    #[inline]
    pub fn has_notes(&self) -> bool {
        self.flag.load(Ordering::Relaxed) && self.flag.swap(false, Ordering::Acquire)
    }
}

impl Shared {
    /// A fresh shared state (the engines given clones of it run as one).
    pub fn new() -> Shared {
        Shared::default()
    }

    /// An engine with politeness `policy` joins; the first one's policy holds,
    /// except that without a `--per-host` (`adds`) the ceiling is the sum of the
    /// engines' concurrency.
    pub(crate) fn polite_join(&self, policy: Policy, adds: bool) {
        let mut p = lock(&self.0.polite);
        match p.as_mut() {
            None => *p = Some(Table::new(policy)),
            Some(t) => t.join(policy.ceiling, adds),
        }
    }

    /// Runs `f` on the politeness table (`None` before any engine joined).
    #[inline]
    pub(crate) fn polite<R>(&self, f: impl FnOnce(&mut Table) -> R) -> Option<R> {
        lock(&self.0.polite).as_mut().map(f)
    }

    /// The politeness state of a host (`https`, `port`) now, for a progress display:
    /// paused until when, its current limit. `None` when nothing is known of it (it
    /// runs at its full limit, unpaused).
    ///
    /// ```
    /// let shared = volley::engine::Shared::new();
    /// assert_eq!(shared.host_state("example.test", false, 80), None);
    /// ```
    pub fn host_state(&self, host: &str, https: bool, port: u16) -> Option<HostView> {
        let k = Key {
            host,
            tls: https,
            port,
        };
        let now = Instant::now();
        self.polite(|t| t.view(k, now)).flatten()
    }

    /// The hosts that pushed back (429/503, or runs of timeouts), most 429/503s
    /// first, at most `n`: for a summary.
    pub fn pushed_back(&self, n: usize) -> Vec<HostReport> {
        self.polite(|t| t.report(n)).unwrap_or_default()
    }

    /// An engine joins; `waker` wakes its loop when a note arrives. The first
    /// engine's `rate` (requests per second, 0 = none) sets the shared pace.
    pub(crate) fn join(&self, waker: Arc<Waker>, rate: f64) -> Membership {
        {
            let mut r = lock(&self.0.rate);
            if r.is_none() {
                *r = Some(Rate::new(rate));
            }
        }
        let flag = Arc::new(AtomicBool::new(false));
        let id = lock(&self.0.members).insert(Member {
            waker,
            notes: Vec::new(),
            has_notes: flag.clone(),
        });
        Membership {
            id,
            flag,
            shared: self.clone(),
        }
    }

    /// A request may start at `now` (and its start is taken): `Ok`, or `Err` with
    /// the instant one may. The engine asks only with a request in hand, so a start
    /// is never taken for nothing.
    pub(crate) fn rate_take(&self, now: Instant) -> Result<(), Instant> {
        match lock(&self.0.rate).as_mut() {
            Some(r) => r.try_take(now),
            None => Ok(()),
        }
    }

    /// A new connection to `k` may open when fewer than `limit` are open in all
    /// engines; counted when it may. Else member `me` waits for `k`, and the other
    /// members are asked to close an idle connection of it.
    pub(crate) fn try_open(&self, k: Key<'_>, limit: usize, me: usize) -> bool {
        let mut hosts = lock(&self.0.hosts);
        if !hosts.contains_key(k.host) {
            hosts.insert(k.host.to_string(), Vec::new());
        }
        let v = hosts.get_mut(k.host).expect("inserted above");
        let i = match v.iter().position(|h| h.tls == k.tls && h.port == k.port) {
            Some(i) => i,
            None => {
                v.push(Host {
                    tls: k.tls,
                    port: k.port,
                    open: 0,
                    waiting: Vec::new(),
                });
                v.len() - 1
            }
        };
        let h = &mut v[i];
        if h.open < limit {
            h.open += 1;
            return true;
        }
        if !h.waiting.contains(&me) {
            h.waiting.push(me);
            drop(hosts);
            let mut members = lock(&self.0.members);
            for (id, m) in members.iter_mut() {
                if id != me {
                    m.tell(Note::Wanted(OwnedKey::of(k)));
                }
            }
        }
        false
    }

    /// A connection of `k` counted by [`Shared::try_open`] closed in member `me`:
    /// the other members waiting for `k` are told.
    pub(crate) fn closed(&self, k: Key<'_>, me: usize) {
        let mut hosts = lock(&self.0.hosts);
        let Some(v) = hosts.get_mut(k.host) else {
            debug_assert!(false, "closed a connection of an unknown host {k:?}");
            return;
        };
        let Some(i) = v.iter().position(|h| h.tls == k.tls && h.port == k.port) else {
            debug_assert!(false, "closed a connection of an unknown host {k:?}");
            return;
        };
        let h = &mut v[i];
        debug_assert!(h.open > 0, "shared open count of {k:?} below zero");
        h.open = h.open.saturating_sub(1);
        let waiting = std::mem::take(&mut h.waiting);
        if h.open == 0 {
            v.swap_remove(i);
            if v.is_empty() {
                hosts.remove(k.host);
            }
        }
        drop(hosts);
        if waiting.iter().any(|&w| w != me) {
            let mut members = lock(&self.0.members);
            for w in waiting.into_iter().filter(|&w| w != me) {
                if let Some(m) = members.get_mut(w) {
                    m.tell(Note::Freed(OwnedKey::of(k)));
                }
            }
        }
    }

    /// True when a member other than `me` waits for `k` (a connection of `k` that
    /// falls idle is then closed rather than pooled).
    pub(crate) fn wanted_elsewhere(&self, k: Key<'_>, me: usize) -> bool {
        lock(&self.0.hosts).get(k.host).is_some_and(|v| {
            v.iter()
                .any(|h| h.tls == k.tls && h.port == k.port && h.waiting.iter().any(|&w| w != me))
        })
    }

    /// The notes for member `me`, taken.
    pub(crate) fn take_notes(&self, me: usize) -> Vec<Note> {
        lock(&self.0.members)
            .get_mut(me)
            .map(|m| std::mem::take(&mut m.notes))
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn open(&self, k: Key<'_>) -> usize {
        lock(&self.0.hosts).get(k.host).map_or(0, |v| {
            v.iter()
                .filter(|h| h.tls == k.tls && h.port == k.port)
                .map(|h| h.open)
                .sum()
        })
    }
}

impl Member {
    fn tell(&mut self, n: Note) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
        self.has_notes.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Key<'static> = Key {
        host: "a.test",
        tls: false,
        port: 80,
    };

    fn member(s: &Shared) -> (Membership, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let w = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        (s.join(w, 0.0), poll)
    }

    #[test]
    fn one_limit_for_all_members_and_the_waiter_is_told() {
        let s = Shared::new();
        let ((m1, _p1), (m2, _p2)) = (member(&s), member(&s));
        assert!(s.try_open(A, 1, m1.id));
        assert!(!s.try_open(A, 1, m2.id), "the limit is a total");
        // Member 1 is asked to free an idle connection of A.
        assert!(m1.has_notes() && !m1.has_notes());
        assert_eq!(s.take_notes(m1.id), [Note::Wanted(OwnedKey::of(A))]);
        assert!(s.wanted_elsewhere(A, m1.id) && !s.wanted_elsewhere(A, m2.id));
        s.closed(A, m1.id);
        assert!(m2.has_notes());
        assert_eq!(s.take_notes(m2.id), [Note::Freed(OwnedKey::of(A))]);
        assert_eq!(s.open(A), 0);
        assert!(lock(&s.0.hosts).is_empty(), "an empty host is removed");
        assert!(s.try_open(A, 1, m2.id));
        s.closed(A, m2.id);
        assert!(!m1.has_notes(), "nobody waited: no note");
        drop((m1, m2));
        assert!(lock(&s.0.members).is_empty(), "members leave when dropped");
    }

    #[test]
    fn one_pace_for_all_members() {
        let s = Shared::new();
        let poll = mio::Poll::new().unwrap();
        let w = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let _a = s.join(w.clone(), 10.0);
        let _b = s.join(w, 1000.0); // the first member's rate holds
        let t = Instant::now();
        assert!(s.rate_take(t).is_ok());
        let next = s.rate_take(t).unwrap_err();
        assert_eq!(next, t + std::time::Duration::from_millis(100));
        assert!(s.rate_take(next).is_ok());
        assert!(s.rate_take(next).is_err());
    }

    proptest::proptest! {
        /// Whatever the order of opens and closes among three members: the shared
        /// count equals the connections open, never exceeds the limit, a member that
        /// was refused hears of the next close by another, and an empty host leaves
        /// no entry behind.
        #[test]
        fn counts_follow_the_members(
            limit in 1usize..4,
            ops in proptest::collection::vec((0usize..3, proptest::bool::ANY), 0..60),
        ) {
            let s = Shared::new();
            let members: Vec<_> = (0..3).map(|_| member(&s)).collect();
            let mut open = [0usize; 3];
            let mut refused = [false; 3];
            for (m, opening) in ops {
                let id = members[m].0.id;
                if opening {
                    let total: usize = open.iter().sum();
                    let ok = s.try_open(A, limit, id);
                    proptest::prop_assert_eq!(ok, total < limit);
                    if ok {
                        open[m] += 1;
                    } else {
                        refused[m] = true;
                    }
                } else if open[m] > 0 {
                    open[m] -= 1;
                    s.closed(A, id);
                    for (o, r) in refused.iter_mut().enumerate() {
                        if *r && o != m {
                            proptest::prop_assert!(members[o].0.has_notes());
                            let notes = s.take_notes(members[o].0.id);
                            proptest::prop_assert!(notes.contains(&Note::Freed(OwnedKey::of(A))));
                        }
                        *r = false;
                    }
                }
                let total: usize = open.iter().sum();
                proptest::prop_assert_eq!(s.open(A), total);
                proptest::prop_assert!(total <= limit);
                if total == 0 {
                    proptest::prop_assert!(lock(&s.0.hosts).is_empty());
                }
            }
        }
    }
}
