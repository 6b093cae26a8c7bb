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

    /// A slot of `k` may have been freed for a waiter, `started`, that then went
    /// another way (its host's gate held it back, it took a pipelined connection's
    /// room or claimed a dial's): the next waiter, when fewer than `limit`
    /// connections of `k` are open here and `started` did not queue again for one
    /// (then no slot was free after all). So no task waits for a slot while one is
    /// free.
    pub fn unused_slot(
        &mut self,
        k: Key<'_>,
        limit: usize,
        started: usize,
        still_waiting: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let e = self.find(k)?;
        if e.open >= limit || e.waiters.contains(&started) {
            return None;
        }
        let w = pop_waiter(e, &still_waiting);
        if w.is_none() && e.is_empty() {
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
mod tests;
