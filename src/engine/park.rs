//! The parking area: tasks that wait outside a concurrency slot until a time (retry
//! backoff today; a paused host, a host under calibration later), in one bounded
//! place.
//!
//! The engine parks a task with the time it may go on ([`Park::park`]), asks for the
//! ones whose time has come when it has a free slot ([`Park::pop_ready`], earliest
//! first), wakes for [`Park::next_wake`], and stops pulling new requests from its
//! source while [`Park::is_full`]. The park only orders and counts: it never starts,
//! fails or times anything.
//!
//! Invariants:
//! - each parked task comes out exactly once, never before its time, in time order
//!   (ties in parking order);
//! - `len()` counts the tasks parked; `is_full()` is `len() >= capacity()`. Parking
//!   is never refused (a task already admitted must have somewhere to wait), so the
//!   park can pass its capacity by at most the tasks in flight when it filled: the
//!   engine admits nothing new while it is full, and only tasks holding a slot can
//!   come to park;
//! - memory is one heap entry per parked task.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The parking area; see the module docs.
#[derive(Debug)]
pub(crate) struct Park {
    cap: usize,
    seq: u64,
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
}

impl Park {
    /// An empty park that counts as full at `cap` tasks (at least one).
    pub fn new(cap: usize) -> Park {
        Park {
            cap: cap.max(1),
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    /// Parks `task` until `until`.
    pub fn park(&mut self, task: usize, until: Instant) {
        self.seq += 1;
        self.heap.push(Reverse((until, self.seq, task)));
    }

    /// The task whose time came first, if its time is `now` or earlier; it leaves
    /// the park.
    pub fn pop_ready(&mut self, now: Instant) -> Option<usize> {
        match self.heap.peek() {
            Some(Reverse((until, _, _))) if *until <= now => {
                self.heap.pop().map(|Reverse((_, _, t))| t)
            }
            _ => None,
        }
    }

    /// Forgets every parked task (the run stopped; the engine finishes them).
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// When the earliest parked task may go on.
    pub fn next_wake(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((until, _, _))| *until)
    }

    /// Tasks parked.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is parked.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The capacity: tasks parked at which the engine admits no new request.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// True when the park holds `capacity()` tasks or more.
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tasks_leave_in_time_order_never_early() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Park::new(3);
        p.park(7, ms(30));
        p.park(8, ms(10));
        assert!(!p.is_full());
        p.park(9, ms(10));
        assert!(p.is_full());
        assert_eq!(p.next_wake(), Some(ms(10)));
        assert_eq!(p.pop_ready(ms(9)), None, "not before its time");
        assert_eq!(p.pop_ready(ms(10)), Some(8), "ties in parking order");
        assert_eq!(p.pop_ready(ms(10)), Some(9));
        assert_eq!(p.pop_ready(ms(29)), None);
        assert_eq!(p.pop_ready(ms(100)), Some(7));
        assert!(p.is_empty());
        assert_eq!(p.next_wake(), None);
        assert_eq!(Park::new(0).capacity(), 1);
    }

    proptest::proptest! {
        /// Whatever is parked comes out exactly once, never early, in time order.
        #[test]
        fn each_task_once_in_order(
            times in proptest::collection::vec(0u64..50, 0..60),
            steps in proptest::collection::vec(0u64..20, 1..40),
        ) {
            let t0 = Instant::now();
            let mut p = Park::new(10);
            for (task, &ms) in times.iter().enumerate() {
                p.park(task, t0 + Duration::from_millis(ms));
            }
            let mut now = 0;
            let mut out: Vec<(u64, usize)> = Vec::new();
            for s in steps.iter().chain(std::iter::once(&1000)) {
                now += s;
                while let Some(t) = p.pop_ready(t0 + Duration::from_millis(now)) {
                    proptest::prop_assert!(times[t] <= now, "task {} out early", t);
                    out.push((times[t], t));
                }
            }
            let mut want: Vec<(u64, usize)> =
                times.iter().enumerate().map(|(t, &ms)| (ms, t)).collect();
            want.sort();
            proptest::prop_assert_eq!(out, want);
            proptest::prop_assert!(p.is_empty());
        }
    }
}
