//! A fixed-memory, log-scaled latency histogram (microseconds).
//!
//! Values below 16 µs have a bucket each; above, every power of two is split into
//! 16 equal buckets, so a bucket is at most 1/16 (6.25 %) of its value wide and a
//! percentile read from it is within about 3 % of the truth. Values from 2^40 µs
//! (12.7 days) up share the last bucket. Memory is [`BUCKETS`] counters whatever
//! the number of values; two histograms merge by adding counters.

/// Sub-buckets per power of two (and the exact range below it).
const SUB: u64 = 16;
/// Powers of two covered above the exact range: 2^4 .. 2^40 µs.
const POWERS: usize = 37;
/// Number of buckets.
pub const BUCKETS: usize = SUB as usize + POWERS * SUB as usize;

/// Counts of values by log-scaled bucket, plus exact count, min and max.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

/// The bucket holding `v`.
pub fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // floor(log2 v) >= 4
    if e as usize >= 4 + POWERS {
        return BUCKETS - 1;
    }
    let sub = (v >> (e - 4)) & (SUB - 1);
    (SUB + (e - 4) * SUB + sub) as usize
}

/// The smallest value in bucket `b`, and the bucket's width.
pub fn bucket_range(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, 1);
    }
    let e = (b - SUB) / SUB + 4;
    let sub = (b - SUB) % SUB;
    let width = 1u64 << (e - 4);
    ((1u64 << e) + sub * width, width)
}

impl Histogram {
    /// Adds one value (µs).
    pub fn add(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q`-quantile (0 < q ≤ 1) in µs: the middle of the bucket holding the
    /// value of rank ⌈q·count⌉, clamped to the exact min and max (the exact max for
    /// the last rank). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return Some(self.max);
        }
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bucket_range(b);
                return Some((lo + w / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Non-empty buckets as (lowest value, width, count), in order.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(b, &c)| {
                let (lo, w) = bucket_range(b);
                (lo, w, c)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_tile_the_line() {
        let mut next = 0;
        for b in 0..BUCKETS - 1 {
            let (lo, w) = bucket_range(b);
            assert_eq!(lo, next, "bucket {b}");
            assert_eq!(bucket_of(lo), b);
            assert_eq!(bucket_of(lo + w - 1), b);
            next = lo + w;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.add(v * 1000);
        }
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.04;
        assert!(
            near(h.quantile(0.5).unwrap(), 500_000),
            "{:?}",
            h.quantile(0.5)
        );
        assert!(near(h.quantile(0.9).unwrap(), 900_000));
        assert!(near(h.quantile(0.99).unwrap(), 990_000));
        assert_eq!(h.quantile(1.0), Some(1_000_000));
        assert_eq!(h.count(), 1000);
    }

    proptest! {
        #[test]
        fn bucket_holds_its_value(v in any::<u64>()) {
            let b = bucket_of(v);
            let (lo, w) = bucket_range(b);
            prop_assert!(v >= lo);
            prop_assert!(b == BUCKETS - 1 || v - lo < w);
        }

        #[test]
        fn quantile_is_close_and_merge_is_addition(
            a in proptest::collection::vec(0u64..10_000_000, 1..200),
            b in proptest::collection::vec(0u64..10_000_000, 1..200),
        ) {
            let (mut ha, mut hb, mut all) = (Histogram::default(), Histogram::default(), Histogram::default());
            a.iter().for_each(|&v| { ha.add(v); all.add(v) });
            b.iter().for_each(|&v| { hb.add(v); all.add(v) });
            ha.merge(&hb);
            for q in [0.5, 0.9, 0.99] {
                prop_assert_eq!(ha.quantile(q), all.quantile(q));
            }
            let mut sorted: Vec<u64> = a.iter().chain(&b).copied().collect();
            sorted.sort_unstable();
            let rank = ((0.9 * sorted.len() as f64).ceil() as usize).max(1);
            let exact = sorted[rank - 1];
            let got = all.quantile(0.9).unwrap();
            prop_assert!((got as f64 - exact as f64).abs() <= exact as f64 / 16.0 + 1.0, "{} vs {}", got, exact);
        }
    }
}
