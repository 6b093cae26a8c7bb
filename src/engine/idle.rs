//! The global order of idle keep-alive connections, across all hosts, for the idle
//! cap (`Config::max_idle`): when more connections are idle than the cap, the one
//! idle longest is closed first.
//!
//! The per-host idle lists stay the `pool`'s; this seam only remembers when each
//! idle connection went idle. The driver tells it when a connection goes idle
//! ([`IdleOrder::add`]) and when it stops being idle for any reason
//! ([`IdleOrder::remove`]: reused, closed), and asks for the oldest
//! ([`IdleOrder::oldest`]) while [`IdleOrder::len`] is over the cap.
//!
//! Invariants: `len()` is the number of connections added and not removed since;
//! `oldest()` answers the one among them added earliest; memory is bounded by the
//! idle connections (stale order entries are dropped at the front as met, and all
//! of them once they outnumber the live ones twice over) and by the largest
//! connection key (a slab key: the most connections open at once). No hashing: a
//! stamp is found by the connection's key.

use std::collections::VecDeque;

/// The idle order; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct IdleOrder {
    seq: u64,
    /// Connection (a slab key: small and dense) → the stamp it went idle with, 0
    /// when it is not idle. As long as the largest key seen, like the slab.
    stamp: Vec<u64>,
    /// Connections idle now.
    idle: usize,
    /// (stamp, connection), oldest first; entries whose stamp is no longer the
    /// connection's are stale.
    order: VecDeque<(u64, usize)>,
}

impl IdleOrder {
    fn stamp_of(&self, c: usize) -> u64 {
        self.stamp.get(c).copied().unwrap_or(0)
    }

    /// Connection `c` went idle now.
    pub fn add(&mut self, c: usize) {
        self.seq += 1;
        if c >= self.stamp.len() {
            self.stamp.resize(c + 1, 0);
        }
        if self.stamp[c] == 0 {
            self.idle += 1;
        }
        self.stamp[c] = self.seq;
        self.order.push_back((self.seq, c));
        if self.order.len() > 2 * self.idle + 64 {
            let stamp = &self.stamp;
            self.order.retain(|&(s, c)| stamp[c] == s);
        }
    }

    /// Connection `c` is no longer idle (a no-op if it was not).
    pub fn remove(&mut self, c: usize) {
        if let Some(s) = self.stamp.get_mut(c).filter(|s| **s != 0) {
            *s = 0;
            self.idle -= 1;
        }
    }

    /// Idle connections.
    pub fn len(&self) -> usize {
        self.idle
    }

    /// The connection idle longest (it stays until removed).
    pub fn oldest(&mut self) -> Option<usize> {
        while let Some(&(s, c)) = self.order.front() {
            if self.stamp_of(c) == s {
                return Some(c);
            }
            self.order.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_first_and_reuse_moves_to_the_back() {
        let mut o = IdleOrder::default();
        o.add(1);
        o.add(2);
        o.add(3);
        assert_eq!(o.oldest(), Some(1));
        o.remove(1);
        o.add(1); // reused, then idle again: now the newest
        assert_eq!(o.oldest(), Some(2));
        o.remove(2);
        o.remove(3);
        assert_eq!(o.oldest(), Some(1));
        o.remove(1);
        assert_eq!((o.len(), o.oldest()), (0, None));
    }

    proptest::proptest! {
        /// Against a model (a list in idle order): same length, same oldest, and the
        /// order queue stays within its bound.
        #[test]
        fn follows_the_model(ops in proptest::collection::vec((proptest::bool::ANY, 0usize..12), 0..300)) {
            let mut o = IdleOrder::default();
            let mut model: Vec<usize> = Vec::new();
            for (add, c) in ops {
                if add && !model.contains(&c) {
                    o.add(c);
                    model.push(c);
                } else if !add {
                    o.remove(c);
                    model.retain(|&x| x != c);
                }
                proptest::prop_assert_eq!(o.len(), model.len());
                proptest::prop_assert_eq!(o.oldest(), model.first().copied());
                proptest::prop_assert!(o.order.len() <= 2 * o.idle + 65);
            }
        }
    }
}
