//! A hierarchical timer wheel with millisecond resolution (Varghese & Lauck; the shape
//! of tokio's wheel): six levels of 64 slots, each level 64× coarser than the one
//! below, covering about 2.2 years; later deadlines are clamped to that horizon.
//!
//! Invariants:
//! - every entry sits in exactly one slot's doubly linked list (slab indices), so
//!   insert and cancel are O(1);
//! - an entry at level `L` has a deadline in the same 64^(L+1) ms block as `elapsed`,
//!   so its slot is at or after the current slot of that level, and a level's
//!   occupancy mask gives the next slot to process with one `trailing_zeros`;
//! - `advance(now)` fires every entry whose deadline is ≤ `now`, in deadline order,
//!   and never one that is later: entries in coarse slots are re-inserted (cascade)
//!   when their slot comes up.
//!
//! Time is a `u64` of milliseconds from the wheel's own epoch; [`Wheel::ms`] converts
//! an `Instant` (rounding up, so a timer never fires early).

use slab::Slab;
use std::time::{Duration, Instant};

const LEVELS: usize = 6;
const SLOTS: usize = 64;
const NIL: usize = usize::MAX;
/// The largest deadline offset the wheel can hold, in ms.
const HORIZON: u64 = (1u64 << (6 * LEVELS)) - 1;

/// A handle to an inserted timer, for [`Wheel::cancel`]. It carries a generation, so
/// a stale key (its timer fired or was cancelled, its slot reused) cancels nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey(usize, u64);

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    deadline: u64,
    value: T,
    prev: usize,
    next: usize,
    level: u8,
    slot: u8,
}

/// The timer wheel; see the module docs.
#[derive(Debug)]
pub struct Wheel<T> {
    epoch: Instant,
    elapsed: u64,
    entries: Slab<Entry<T>>,
    heads: [[usize; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    generation: u64,
}

impl<T> Wheel<T> {
    /// An empty wheel whose time 0 is `epoch`.
    pub fn new(epoch: Instant) -> Wheel<T> {
        Wheel {
            epoch,
            elapsed: 0,
            entries: Slab::new(),
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            generation: 0,
        }
    }

    /// `t` as milliseconds since the epoch, rounded up.
    pub fn ms(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        let ms = d.as_millis() as u64;
        if d > Duration::from_millis(ms) {
            ms + 1
        } else {
            ms
        }
    }

    /// The instant of wheel time `ms`.
    pub fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// The wheel's current time (the last `advance`).
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no timer is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts a timer for `deadline` (ms); a deadline already past fires on the
    /// next `advance`.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let deadline = deadline.clamp(self.elapsed, self.elapsed + HORIZON);
        self.generation += 1;
        let generation = self.generation;
        let key = self.entries.insert(Entry {
            generation,
            deadline,
            value,
            prev: NIL,
            next: NIL,
            level: 0,
            slot: 0,
        });
        self.link(key);
        TimerKey(key, generation)
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.entries
            .get(key.0)
            .filter(|e| e.generation == key.1)
            .map(|e| e.deadline)
    }

    /// Removes a timer; returns its value, or `None` if it already fired or was
    /// cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        if self
            .entries
            .get(key.0)
            .is_none_or(|e| e.generation != key.1)
        {
            return None;
        }
        self.unlink(key.0);
        Some(self.entries.remove(key.0).value)
    }

    fn link(&mut self, key: usize) {
        let deadline = self.entries[key].deadline;
        let masked = (self.elapsed ^ deadline) | (SLOTS as u64 - 1);
        let level = ((63 - masked.leading_zeros()) / 6) as usize;
        let level = level.min(LEVELS - 1);
        let slot = ((deadline >> (6 * level)) & 63) as usize;
        let head = self.heads[level][slot];
        {
            let e = &mut self.entries[key];
            e.level = level as u8;
            e.slot = slot as u8;
            e.prev = NIL;
            e.next = head;
        }
        if head != NIL {
            self.entries[head].prev = key;
        }
        self.heads[level][slot] = key;
        self.occupied[level] |= 1 << slot;
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next, level, slot) = {
            let e = &self.entries[key];
            (e.prev, e.next, e.level as usize, e.slot as usize)
        };
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        } else {
            self.entries[prev].next = next;
        }
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    /// The time (ms) at which the next slot must be processed: the exact deadline
    /// for the finest level, the slot's start for coarser ones (it is processed
    /// then and its timers move down). `None` when the wheel is empty.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, t)| t)
    }

    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let mut best: Option<(usize, usize, u64)> = None;
        for level in 0..LEVELS {
            let occ = self.occupied[level];
            if occ == 0 {
                continue;
            }
            let shift = 6 * level as u32;
            let now_slot = ((self.elapsed >> shift) & 63) as u32;
            let slot = ((occ.rotate_right(now_slot).trailing_zeros() + now_slot) % 64) as usize;
            let block = self.elapsed & !((1u64 << (shift + 6)) - 1);
            let t = (block + ((slot as u64) << shift)).max(self.elapsed);
            if best.is_none_or(|(_, _, b)| t < b) {
                best = Some((level, slot, t));
            }
            // Lower levels always expire before higher ones.
            break;
        }
        best
    }

    /// Advances to `now` (ms), pushing the value of every timer with a deadline
    /// ≤ `now` onto `fired`, in deadline order.
    pub fn advance(&mut self, now: u64, fired: &mut Vec<T>) {
        while let Some((level, slot, t)) = self.next_slot() {
            if t > now {
                break;
            }
            self.elapsed = self.elapsed.max(t);
            let mut key = self.heads[level][slot];
            self.heads[level][slot] = NIL;
            self.occupied[level] &= !(1 << slot);
            while key != NIL {
                let next = self.entries[key].next;
                if self.entries[key].deadline <= now && level == 0 {
                    fired.push(self.entries.remove(key).value);
                } else {
                    self.link(key);
                }
                key = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wheel() -> Wheel<u32> {
        Wheel::new(Instant::now())
    }

    #[test]
    fn fires_in_order_not_early() {
        let mut w = wheel();
        for (i, d) in [5u64, 1, 70, 4100, 64, 63, 300_000].iter().enumerate() {
            w.insert(*d, i as u32);
        }
        let mut fired = Vec::new();
        w.advance(0, &mut fired);
        assert!(fired.is_empty());
        w.advance(63, &mut fired);
        assert_eq!(fired, [1, 0, 5]);
        fired.clear();
        w.advance(4099, &mut fired);
        assert_eq!(fired, [4, 2]);
        fired.clear();
        assert_eq!(w.next_deadline(), Some(4100));
        w.advance(1_000_000, &mut fired);
        assert_eq!(fired, [3, 6]);
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_and_past_deadlines() {
        let mut w = wheel();
        let a = w.insert(10, 1);
        let _b = w.insert(10, 2);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        let mut fired = Vec::new();
        w.advance(20, &mut fired);
        assert_eq!(fired, [2]);
        w.insert(5, 3); // already past: fires at once
        assert_eq!(w.next_deadline(), Some(20));
        fired.clear();
        w.advance(20, &mut fired);
        assert_eq!(fired, [3]);
    }

    #[test]
    fn next_deadline_is_a_lower_bound() {
        let mut w = wheel();
        w.insert(1000, 0);
        let mut fired = Vec::new();
        let mut wakes = 0;
        while let Some(t) = w.next_deadline() {
            assert!(t <= 1000);
            w.advance(t, &mut fired);
            wakes += 1;
        }
        assert_eq!(fired, [0]);
        assert!(wakes <= 3, "{wakes} wake-ups");
    }

    proptest! {
        /// Against a sorted reference: random inserts, cancels and advances fire
        /// exactly the due timers.
        #[test]
        fn matches_reference(ops in proptest::collection::vec((0u8..3, 0u64..200_000), 1..300)) {
            let mut w = wheel();
            let mut reference: Vec<(u64, u32)> = Vec::new();
            let mut keys = Vec::new();
            let mut now = 0u64;
            for (i, (op, x)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        let d = now + x;
                        keys.push((w.insert(d, i as u32), i as u32));
                        reference.push((d, i as u32));
                    }
                    1 => {
                        if !keys.is_empty() {
                            let (k, v) = keys.swap_remove(x as usize % keys.len());
                            let live = reference.iter().position(|&(_, r)| r == v);
                            prop_assert_eq!(w.cancel(k).is_some(), live.is_some());
                            if let Some(p) = live { reference.remove(p); }
                        }
                    }
                    _ => {
                        now += x % 5000;
                        let mut fired = Vec::new();
                        w.advance(now, &mut fired);
                        let mut due: Vec<(u64, u32)> = reference.iter().copied().filter(|&(d, _)| d <= now).collect();
                        due.sort();
                        reference.retain(|&(d, _)| d > now);
                        let fired_deadlines: Vec<u64> = fired.iter().map(|v| due.iter().find(|&&(_, r)| r == *v).map(|&(d, _)| d).unwrap_or(u64::MAX)).collect();
                        let mut sorted = fired_deadlines.clone();
                        sorted.sort();
                        prop_assert_eq!(&fired_deadlines, &sorted, "fired out of order");
                        let mut f = fired.clone(); f.sort();
                        let mut d: Vec<u32> = due.iter().map(|&(_, v)| v).collect(); d.sort();
                        prop_assert_eq!(f, d);
                        if let Some(next) = w.next_deadline() {
                            let min = reference.iter().map(|&(d, _)| d).min().unwrap();
                            prop_assert!(next <= min && next > now);
                        } else {
                            prop_assert!(reference.is_empty());
                        }
                    }
                }
            }
        }
    }
}
