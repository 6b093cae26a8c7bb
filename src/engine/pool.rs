//! The keep-alive pool: per scheme/host/port, the connections open (for
//! `--per-host`), the idle ones ready for reuse, and the tasks waiting for a
//! connection slot.
//!
//! The pool only counts and hands out: it never opens, closes or dials anything, and
//! knows tasks and connections only as slab keys. The engine asks it for a connection
//! ([`Pool::acquire`]), tells it when one closes ([`Pool::closed`]) or goes idle
//! ([`Pool::put_idle`]), and acts on the answers.
//!
//! Invariants:
//! - `open` counts every connection of the key that is not closed (dialing, busy or
//!   idle), and a dial reserved but not yet connected; it changes in exactly two
//!   places, [`Pool::acquire`] (+1, answering [`Acquire::Dial`]) and [`Pool::closed`]
//!   (−1), and debug builds assert it never goes below zero;
//! - `idle` holds only connections in `Phase::Idle`, most recently used last (reuse
//!   takes the last: the one least likely to have been closed by the server);
//! - a waiter holds a concurrency slot but no deadline runs for it;
//! - an entry that holds nothing is dropped, so memory stays flat over millions of
//!   distinct hosts. Entries are keyed by host name, then (tls, port): lookups by
//!   `&str` allocate nothing. Later per-host state (politeness, limits) belongs in
//!   [`Entry`];
//! - `room` (with `--pipeline` above 1) holds busy connections that can take one more
//!   pipelined request, each at most once, never one that is idle or closed: the
//!   engine adds and removes them as their queues change. A key whose responses could
//!   not be framed is remembered in `no_pipeline` for the run (few keys: only those
//!   that failed);
//! - `dials` (with `--pipeline` above 1) are the dials in progress for a pipelinable
//!   request, each with the room its connection will have that no task has claimed
//!   yet (`free`) and the tasks that claimed some (`claimants`: each waits, as a
//!   waiter does, for that connection instead of opening one). A dial's record goes
//!   when it settles ([`Pool::settle`]: its request went out, or it failed), and its
//!   claimants are answered then, to start again: so no task waits on a dial that
//!   is over.

use std::collections::{HashMap, VecDeque};

/// A pool key: scheme (as `tls`), host and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    /// Host name or IP literal, as in the URL.
    pub host: &'a str,
    /// https.
    pub tls: bool,
    /// Port.
    pub port: u16,
}

/// The state of one key.
#[derive(Debug, Default)]
struct Entry {
    tls: bool,
    port: u16,
    open: usize,
    idle: Vec<usize>,
    waiters: VecDeque<usize>,
    room: Vec<usize>,
    dials: Vec<Dial>,
}

/// A dial in progress for a pipelinable request (`--pipeline` above 1).
#[derive(Debug)]
struct Dial {
    /// The dialing task.
    task: usize,
    /// Room its connection will have that nobody claimed yet.
    free: usize,
    /// The tasks waiting for that room, in order.
    claimants: Vec<usize>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.open == 0 && self.waiters.is_empty() && self.dials.is_empty()
    }
}

/// What [`Pool::acquire`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// Reuse this idle connection (already taken out of the pool).
    Idle(usize),
    /// A connection slot is reserved: dial a new connection.
    Dial,
    /// The per-host limit is reached: the task now waits for a slot.
    Wait,
}

/// The keep-alive pool; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    map: HashMap<String, Vec<Entry>>,
    no_pipeline: HashMap<String, Vec<(bool, u16)>>,
}

impl Pool {
    fn find(&mut self, k: Key<'_>) -> Option<&mut Entry> {
        self.map
            .get_mut(k.host)?
            .iter_mut()
            .find(|e| e.tls == k.tls && e.port == k.port)
    }

    fn entry(&mut self, k: Key<'_>) -> &mut Entry {
        if !self.map.contains_key(k.host) {
            self.map.insert(k.host.to_string(), Vec::new());
        }
        let v = self.map.get_mut(k.host).expect("inserted above");
        let i = match v.iter().position(|e| e.tls == k.tls && e.port == k.port) {
            Some(i) => i,
            None => {
                v.push(Entry {
                    tls: k.tls,
                    port: k.port,
                    ..Entry::default()
                });
                v.len() - 1
            }
        };
        &mut v[i]
    }

    /// `f` on the entry of `k`, made when missing: one hash lookup when the key is
    /// known (the steady state), three when it is new.
    #[inline]
    fn with_entry<R>(&mut self, k: Key<'_>, f: impl FnOnce(&mut Entry) -> R) -> R {
        if let Some(e) = self.find(k) {
            return f(e);
        }
        f(self.entry(k))
    }

    /// Drops the entry for a key when it holds nothing.
    fn prune(&mut self, k: Key<'_>) {
        if let Some(v) = self.map.get_mut(k.host) {
            v.retain(|e| e.tls != k.tls || e.port != k.port || !e.is_empty());
            if v.is_empty() {
                self.map.remove(k.host);
            }
        }
    }

    /// A connection for task `task` to `k`: an idle one, a reserved slot to dial
    /// (when `may_open`, given this pool's open count of `k`, allows a new
    /// connection: the per-host limit, shared across engines), or a place among the
    /// waiters.
    #[inline]
    pub fn acquire(
        &mut self,
        k: Key<'_>,
        task: usize,
        may_open: impl FnOnce(usize) -> bool,
    ) -> Acquire {
        self.with_entry(k, |e| {
            if let Some(c) = e.idle.pop() {
                return Acquire::Idle(c);
            }
            if !may_open(e.open) {
                e.waiters.push_back(task);
                return Acquire::Wait;
            }
            e.open += 1;
            Acquire::Dial
        })
    }

    /// The next task still waiting for `k` (another engine freed a slot of it).
    pub fn next_waiter(
        &mut self,
        k: Key<'_>,
        still_waiting: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let e = self.find(k)?;
        pop_waiter(e, &still_waiting)
    }

    /// An idle connection of `k`, taken out of the pool (another engine waits for
    /// `k`); the caller closes it.
    pub fn take_idle(&mut self, k: Key<'_>) -> Option<usize> {
        self.find(k)?.idle.pop()
    }

    /// A connection of `k` (or a reserved dial) is gone. Answers the next waiter that
    /// `still_waiting` confirms; the caller starts it again (it then acquires the
    /// freed slot, or an idle connection).
    pub fn closed(&mut self, k: Key<'_>, still_waiting: impl Fn(usize) -> bool) -> Option<usize> {
        let Some(e) = self.find(k) else {
            debug_assert!(false, "closed a connection of an unknown key {k:?}");
            return None;
        };
        debug_assert!(e.open > 0, "open count of {k:?} below zero");
        e.open = e.open.saturating_sub(1);
        let w = pop_waiter(e, &still_waiting);
        if w.is_none() {
            self.prune(k);
        }
        w
    }

    /// Connection `c` of `k` is idle. Answers the waiter that takes it at once, if
    /// any (one waiting for a slot, else one waiting for a dial's room); else it
    /// joins the pool.
    pub fn put_idle(
        &mut self,
        k: Key<'_>,
        c: usize,
        still_waiting: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        self.with_entry(k, |e| {
            if let Some(w) = pop_waiter(e, &still_waiting) {
                return Some(w);
            }
            // A task waiting for a dial's room takes a connection ready now.
            for d in &mut e.dials {
                while !d.claimants.is_empty() {
                    let w = d.claimants.remove(0);
                    d.free += 1;
                    if still_waiting(w) {
                        return Some(w);
                    }
                }
            }
            e.idle.push(c);
            None
        })
    }

    /// Takes idle connection `c` out of the pool (it is about to close).
    pub fn remove_idle(&mut self, k: Key<'_>, c: usize) {
        if let Some(e) = self.find(k) {
            e.idle.retain(|&x| x != c);
        }
    }

    /// Task `task` no longer waits for a slot of `k` (nor for a dial's room: the
    /// room it claimed is free again).
    pub fn cancel_wait(&mut self, k: Key<'_>, task: usize) {
        if let Some(e) = self.find(k) {
            e.waiters.retain(|&w| w != task);
            for d in &mut e.dials {
                if let Some(i) = d.claimants.iter().position(|&w| w == task) {
                    d.claimants.remove(i);
                    d.free += 1;
                }
            }
        }
    }

    /// Task `task` began a dial of `k` for a pipelinable request: its connection
    /// will have room for `n` more requests.
    pub fn promise(&mut self, k: Key<'_>, task: usize, n: usize) {
        self.with_entry(k, |e| {
            e.dials.push(Dial {
                task,
                free: n,
                claimants: Vec::new(),
            })
        });
    }

    /// Task `task` claims one request's room of a dial of `k` in progress, if one
    /// has some unclaimed, and waits for it (true); else it must find a connection
    /// itself.
    pub fn claim(&mut self, k: Key<'_>, task: usize) -> bool {
        let Some(d) = self
            .find(k)
            .and_then(|e| e.dials.iter_mut().find(|d| d.free > 0))
        else {
            return false;
        };
        d.free -= 1;
        d.claimants.push(task);
        true
    }

    /// Task `task`'s dial of `k` is over (its request went out, or it failed): its
    /// record goes, and its claimants are answered, in order, for the caller to
    /// start again (onto its connection's room, or elsewhere).
    pub fn settle(&mut self, k: Key<'_>, task: usize) -> Vec<usize> {
        let Some(e) = self.find(k) else {
            return Vec::new();
        };
        let Some(i) = e.dials.iter().position(|d| d.task == task) else {
            return Vec::new();
        };
        let d = e.dials.swap_remove(i);
        if e.is_empty() {
            self.prune(k);
        }
        d.claimants
    }

    /// True when `k` has an idle connection.
    pub fn has_idle(&mut self, k: Key<'_>) -> bool {
        self.find(k).is_some_and(|e| !e.idle.is_empty())
    }

    /// Busy connection `c` of `k` can take another pipelined request.
    pub fn add_room(&mut self, k: Key<'_>, c: usize) {
        self.with_entry(k, |e| e.room.push(c));
    }

    /// Connection `c` of `k` no longer has room (full, idle, or closing).
    pub fn remove_room(&mut self, k: Key<'_>, c: usize) {
        if let Some(e) = self.find(k) {
            e.room.retain(|&x| x != c);
        }
    }

    /// A busy connection of `k` with room, taken off the room list (the engine puts
    /// it back if it still has room after its new request).
    pub fn take_room(&mut self, k: Key<'_>) -> Option<usize> {
        self.find(k)?.room.pop()
    }

    /// Responses of `k` could not be framed while pipelining: from now on its
    /// requests go one at a time. Its room list is emptied.
    pub fn stop_pipelining(&mut self, k: Key<'_>) {
        if let Some(e) = self.find(k) {
            e.room.clear();
        }
        if !self.pipelining(k) {
            return;
        }
        match self.no_pipeline.get_mut(k.host) {
            Some(v) => v.push((k.tls, k.port)),
            None => {
                self.no_pipeline
                    .insert(k.host.to_string(), vec![(k.tls, k.port)]);
            }
        }
    }

    /// False once [`Pool::stop_pipelining`] was called for `k`.
    pub fn pipelining(&self, k: Key<'_>) -> bool {
        self.no_pipeline.is_empty()
            || !self
                .no_pipeline
                .get(k.host)
                .is_some_and(|v| v.contains(&(k.tls, k.port)))
    }

    /// Any idle connection of any host (to free a file descriptor), removed from its
    /// pool; the caller closes it.
    pub fn take_any_idle(&mut self) -> Option<usize> {
        self.map
            .values_mut()
            .flat_map(|v| v.iter_mut())
            .find_map(|e| e.idle.pop())
    }
}

/// The next waiter still waiting (waiters that gave up meanwhile are dropped).
fn pop_waiter(e: &mut Entry, still_waiting: &impl Fn(usize) -> bool) -> Option<usize> {
    while let Some(w) = e.waiters.pop_front() {
        if still_waiting(w) {
            return Some(w);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-host limit as the engine applies it (0: none).
    fn lim(limit: usize) -> impl FnOnce(usize) -> bool {
        move |open| limit == 0 || open < limit
    }

    const A: Key<'static> = Key {
        host: "a.test",
        tls: false,
        port: 80,
    };
    const A_TLS: Key<'static> = Key {
        host: "a.test",
        tls: true,
        port: 443,
    };

    #[test]
    fn per_host_limit_then_waiter_gets_freed_slot() {
        let mut p = Pool::default();
        assert_eq!(p.acquire(A, 1, lim(2)), Acquire::Dial);
        assert_eq!(p.acquire(A, 2, lim(2)), Acquire::Dial);
        assert_eq!(p.acquire(A, 3, lim(2)), Acquire::Wait);
        assert_eq!(
            p.acquire(A_TLS, 4, lim(2)),
            Acquire::Dial,
            "keys are separate"
        );
        // Connection of task 1 closes: task 3 is woken and takes the slot.
        assert_eq!(p.closed(A, |_| true), Some(3));
        assert_eq!(p.acquire(A, 3, lim(2)), Acquire::Dial);
        assert_eq!(p.acquire(A, 5, lim(2)), Acquire::Wait);
        // Task 5 gave up: skipped, and the slot is simply freed.
        assert_eq!(p.closed(A, |w| w != 5), None);
        assert_eq!(p.acquire(A, 6, lim(2)), Acquire::Dial);
    }

    #[test]
    fn idle_reuse_is_last_in_first_out_and_waiters_come_first() {
        let mut p = Pool::default();
        assert_eq!(p.acquire(A, 1, lim(0)), Acquire::Dial);
        assert_eq!(p.acquire(A, 2, lim(0)), Acquire::Dial);
        assert_eq!(p.put_idle(A, 10, |_| true), None);
        assert_eq!(p.put_idle(A, 11, |_| true), None);
        assert_eq!(p.acquire(A, 3, lim(0)), Acquire::Idle(11));
        p.remove_idle(A, 10);
        assert_eq!(p.acquire(A, 4, lim(1)), Acquire::Wait);
        assert_eq!(p.put_idle(A, 11, |_| true), Some(4));
        assert_eq!(p.take_any_idle(), None);
    }

    #[test]
    fn room_is_taken_once_and_pipelining_stops_per_key() {
        let mut p = Pool::default();
        assert_eq!(p.take_room(A), None);
        p.add_room(A, 10);
        assert!(!p.has_idle(A));
        assert_eq!(p.take_room(A), Some(10));
        assert_eq!(p.take_room(A), None, "taken off the list");
        p.add_room(A, 10);
        p.remove_room(A, 10);
        assert_eq!(p.take_room(A), None);
        assert!(p.pipelining(A) && p.pipelining(A_TLS));
        p.add_room(A, 11);
        p.add_room(A_TLS, 12);
        p.stop_pipelining(A);
        p.stop_pipelining(A);
        assert!(!p.pipelining(A) && p.pipelining(A_TLS), "per key");
        assert_eq!(p.take_room(A), None, "room emptied");
        assert_eq!(p.take_room(A_TLS), Some(12));
        p.map.clear();
        assert!(!p.pipelining(A), "remembered after the entry is gone");
    }

    #[test]
    fn empty_entries_are_dropped() {
        let mut p = Pool::default();
        assert_eq!(p.acquire(A, 1, lim(0)), Acquire::Dial);
        assert_eq!(p.closed(A, |_| true), None);
        assert!(p.map.is_empty());
        assert_eq!(p.acquire(A, 1, lim(1)), Acquire::Dial);
        assert_eq!(p.acquire(A, 2, lim(1)), Acquire::Wait);
        p.cancel_wait(A, 2);
        assert_eq!(p.closed(A, |_| true), None);
        assert!(p.map.is_empty());
    }

    #[test]
    #[should_panic(expected = "below zero")]
    #[cfg(debug_assertions)]
    fn closing_more_than_opened_is_caught() {
        let mut p = Pool::default();
        assert_eq!(p.acquire(A, 1, lim(1)), Acquire::Dial);
        assert_eq!(p.acquire(A, 2, lim(1)), Acquire::Wait);
        assert_eq!(p.closed(A, |_| false), None);
        let _ = p.entry(A);
        p.closed(A, |_| true);
    }

    /// The engine's use of the pool as a model: connections dialed, busy, idle and
    /// closed, tasks waiting. Whatever the order, the pool's `open` equals the model's
    /// count of connections not closed, never exceeds `--per-host`, waiters are
    /// served first come first served, and an emptied key leaves no entry behind.
    #[derive(Default)]
    struct Model {
        open: usize,
        busy: Vec<usize>,
        idle: Vec<usize>,
        waiting: VecDeque<usize>,
        next_id: usize,
    }

    impl Model {
        fn id(&mut self) -> usize {
            self.next_id += 1;
            self.next_id
        }

        fn start(&mut self, p: &mut Pool, task: usize, limit: usize) {
            match p.acquire(A, task, lim(limit)) {
                Acquire::Idle(c) => {
                    assert_eq!(self.idle.pop(), Some(c), "reuse takes the last idle");
                    self.busy.push(c);
                }
                Acquire::Dial => {
                    assert!(self.idle.is_empty());
                    self.open += 1;
                    let c = self.id();
                    self.busy.push(c);
                }
                Acquire::Wait => {
                    assert!(limit > 0 && self.open >= limit && self.idle.is_empty());
                    self.waiting.push_back(task);
                }
            }
        }

        fn woken(&mut self, w: Option<usize>) -> Option<usize> {
            if let Some(w) = w {
                assert_eq!(self.waiting.pop_front(), Some(w), "first come first served");
            } else {
                assert!(self.waiting.is_empty());
            }
            w
        }
    }

    proptest::proptest! {
        #[test]
        fn counts_follow_the_model(
            limit in 0usize..4,
            ops in proptest::collection::vec((0u8..5, 0usize..8), 0..80),
        ) {
            let mut p = Pool::default();
            let mut m = Model::default();
            for (op, pick) in ops {
                match op {
                    0 => {
                        let t = m.id();
                        m.start(&mut p, t, limit);
                    }
                    1 if !m.busy.is_empty() => {
                        m.busy.remove(pick % m.busy.len());
                        m.open -= 1;
                        let w = p.closed(A, |_| true);
                        if let Some(w) = m.woken(w) {
                            m.start(&mut p, w, limit);
                        }
                    }
                    2 if !m.busy.is_empty() => {
                        let c = m.busy.remove(pick % m.busy.len());
                        let w = p.put_idle(A, c, |_| true);
                        match m.woken(w) {
                            Some(_) => m.busy.push(c),
                            None => m.idle.push(c),
                        }
                    }
                    3 if !m.idle.is_empty() => {
                        let c = m.idle.remove(pick % m.idle.len());
                        p.remove_idle(A, c);
                        m.open -= 1;
                        let w = p.closed(A, |_| true);
                        if let Some(w) = m.woken(w) {
                            m.start(&mut p, w, limit);
                        }
                    }
                    4 if !m.waiting.is_empty() => {
                        let w = m.waiting.remove(pick % m.waiting.len()).unwrap();
                        p.cancel_wait(A, w);
                    }
                    _ => {}
                }
                let open = p.find(A).map_or(0, |e| e.open);
                proptest::prop_assert_eq!(open, m.open);
                if limit > 0 {
                    proptest::prop_assert!(m.open <= limit);
                }
                let idle = p.find(A).map_or(0, |e| e.idle.len());
                proptest::prop_assert_eq!(idle, m.idle.len());
                if m.open == 0 && m.waiting.is_empty() {
                    proptest::prop_assert!(p.map.is_empty(), "an empty key is dropped");
                }
            }
        }
    }

    /// A dial's promised room is claimed up to its size; settling answers its
    /// claimants in order and leaves nothing behind; a cancelled claim frees its
    /// room; an idle connection goes to a claimant before the idle list.
    #[test]
    fn dial_room_is_claimed_settled_and_freed() {
        let mut p = Pool::default();
        let yes = |_: usize| true;
        assert!(!p.claim(A, 9), "no dial in progress");
        assert_eq!(p.acquire(A, 1, lim(0)), Acquire::Dial);
        p.promise(A, 1, 2);
        assert!(p.claim(A, 2) && p.claim(A, 3));
        assert!(!p.claim(A, 4), "its room is all claimed");
        assert!(!p.claim(A_TLS, 4), "another key has no dial");
        p.cancel_wait(A, 2);
        assert!(p.claim(A, 5), "a cancelled claim frees its room");
        assert_eq!(p.settle(A, 1), vec![3, 5]);
        assert_eq!(p.settle(A, 1), Vec::<usize>::new(), "settled once");
        assert!(!p.claim(A, 6), "nothing promised any more");
        // A second dial: its claimant takes a connection that goes idle meanwhile.
        p.promise(A, 7, 3);
        assert!(p.claim(A, 8));
        assert_eq!(p.put_idle(A, 100, yes), Some(8));
        assert_eq!(p.put_idle(A, 100, yes), None, "then the idle list");
        assert_eq!(p.settle(A, 7), Vec::<usize>::new());
        // The entry goes once nothing is held.
        assert_eq!(p.take_idle(A), Some(100));
        assert_eq!(p.closed(A, yes), None);
        assert!(p.map.is_empty(), "{:?}", p.map);
    }
}
