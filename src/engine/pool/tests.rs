//! Tests of the keep-alive pool: counts, waiters, idle order, pipelining room and
//! the claims on a dial's room, against a model where there is an invariant.

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

#[test]
fn a_slot_its_waiter_left_unused_goes_to_the_next_waiter() {
    let mut p = Pool::default();
    assert_eq!(p.acquire(A, 1, lim(2)), Acquire::Dial);
    assert_eq!(p.acquire(A, 2, lim(2)), Acquire::Dial);
    assert_eq!(p.acquire(A, 3, lim(2)), Acquire::Wait);
    assert_eq!(p.acquire(A, 4, lim(2)), Acquire::Wait);
    assert_eq!(p.acquire(A, 5, lim(2)), Acquire::Wait);
    // Task 1's connection closes: task 3 is woken but went another way (its host's
    // gate held it back): the free slot goes to task 4.
    assert_eq!(p.closed(A, |_| true), Some(3));
    assert_eq!(p.unused_slot(A, 2, 3, |_| true), Some(4));
    // Task 4 took it: nothing more is free.
    assert_eq!(p.acquire(A, 4, lim(2)), Acquire::Dial);
    assert_eq!(p.unused_slot(A, 2, 4, |_| true), None);
    // A waiter woken that queued again (no slot after all) passes nothing on.
    assert_eq!(p.closed(A, |_| true), Some(5));
    assert_eq!(p.acquire(A, 5, |_| false), Acquire::Wait);
    assert_eq!(p.unused_slot(A, 2, 5, |_| true), None);
    // Waiters that gave up are skipped; with none left the entry stays as counted.
    assert_eq!(p.unused_slot(A, 3, 9, |w| w != 5), None);
    assert_eq!(
        p.unused_slot(
            Key {
                host: "b.test",
                ..A
            },
            2,
            1,
            |_| true
        ),
        None
    );
}
