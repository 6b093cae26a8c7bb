//! A growable bitset of target numbers `n`, for `volley report`'s check that
//! every `n` appears exactly once. It grows only as far as the largest `n` set (an
//! eighth of a byte per number); callers bound that `n`.

/// A growable bitset of `n`.
#[derive(Debug, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// True when `n` is set.
    pub fn get(&self, n: u64) -> bool {
        self.0
            .get((n / 64) as usize)
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    /// Sets `n`; returns whether it was set before.
    pub fn set(&mut self, n: u64) -> bool {
        let w = (n / 64) as usize;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        let before = self.0[w] & (1 << (n % 64)) != 0;
        self.0[w] |= 1 << (n % 64);
        before
    }

    /// Maximal runs `(first, last)` within `1..=upto` whose bit equals `value`, the
    /// first `max` of them, and how many runs and numbers there are in all.
    pub fn runs(&self, upto: u64, value: bool, max: usize) -> (Vec<(u64, u64)>, u64, u64) {
        let (mut runs, mut nruns, mut count) = (Vec::new(), 0u64, 0u64);
        let mut start: Option<u64> = None;
        let mut n = 1;
        while n <= upto {
            // Skip whole words that cannot change the state.
            let w = (n / 64) as usize;
            let word = self.0.get(w).copied().unwrap_or(0);
            let uniform = if value { word == u64::MAX } else { word == 0 };
            let uniform_other = if value { word == 0 } else { word == u64::MAX };
            if n % 64 == 0 && n + 63 <= upto && (uniform || uniform_other) {
                if uniform {
                    start.get_or_insert(n);
                    count += 64;
                } else if let Some(s) = start.take() {
                    nruns += 1;
                    if runs.len() < max {
                        runs.push((s, n - 1));
                    }
                }
                n += 64;
                continue;
            }
            if self.get(n) == value {
                start.get_or_insert(n);
                count += 1;
            } else if let Some(s) = start.take() {
                nruns += 1;
                if runs.len() < max {
                    runs.push((s, n - 1));
                }
            }
            n += 1;
        }
        if let Some(s) = start {
            nruns += 1;
            if runs.len() < max {
                runs.push((s, upto));
            }
        }
        (runs, nruns, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn runs_match_a_naive_scan(ns in proptest::collection::btree_set(1u64..400, 0..300), upto in 1u64..450) {
            let mut b = Bits::default();
            ns.iter().for_each(|&n| { b.set(n); });
            for value in [false, true] {
                let (runs, nruns, count) = b.runs(upto, value, usize::MAX);
                let want: Vec<u64> = (1..=upto).filter(|n| ns.contains(n) == value).collect();
                prop_assert_eq!(count, want.len() as u64);
                let flat: Vec<u64> = runs.iter().flat_map(|&(a, z)| a..=z).collect();
                prop_assert_eq!(flat, want);
                prop_assert_eq!(nruns, runs.len() as u64);
                for w in runs.windows(2) { prop_assert!(w[0].1 + 1 < w[1].0); }
            }
        }

    }

    #[test]
    fn set_reports_what_was_there() {
        let mut b = Bits::default();
        assert!(!b.set(64) && b.set(64) && b.get(64) && !b.get(63) && !b.get(1 << 40));
    }
}
