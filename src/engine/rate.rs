//! The `--rate` limiter: new requests per second, paced one interval apart. The
//! engines of one run share one (`shared`), so the rate is a total.
//!
//! Invariant: over any window of length T, at most `rate × T + 2` requests start (at
//! most one interval of unused time is carried over, so an idle spell never buys a
//! burst). The clock is passed in, so the pacing is tested with made-up instants.

use std::time::{Duration, Instant};

/// Paces request starts; see the module docs.
#[derive(Debug, Clone)]
pub struct Rate {
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl Rate {
    /// A limiter for `per_second` starts per second (0 or less: no limit).
    pub fn new(per_second: f64) -> Rate {
        Rate {
            interval: (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second)),
            next: None,
        }
    }

    /// `None` when a request may start at `now`, else the instant when one may.
    pub fn wait(&self, now: Instant) -> Option<Instant> {
        match (self.interval, self.next) {
            (Some(_), Some(next)) if next > now => Some(next),
            _ => None,
        }
    }

    /// Takes a start at `now` if one is allowed, else `Err` with the instant one
    /// may.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(at) = self.wait(now) {
            return Err(at);
        }
        self.take(now);
        Ok(())
    }

    /// Records a start at `now` (which `wait` allowed).
    pub fn take(&mut self, now: Instant) {
        let Some(interval) = self.interval else {
            return;
        };
        let next = self.next.unwrap_or(now);
        let base = if now.saturating_duration_since(next) > interval {
            now
        } else {
            next
        };
        self.next = Some(base + interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited() {
        let mut r = Rate::new(0.0);
        let t = Instant::now();
        for _ in 0..1000 {
            assert!(r.wait(t).is_none());
            r.take(t);
        }
    }

    #[test]
    fn paces_and_never_bursts_after_idle() {
        let mut r = Rate::new(10.0);
        let t0 = Instant::now();
        // Greedy caller: start whenever allowed, over 10 simulated seconds.
        let mut now = t0;
        let mut starts = Vec::new();
        while now < t0 + Duration::from_secs(10) {
            match r.wait(now) {
                None => {
                    r.take(now);
                    starts.push(now);
                }
                Some(at) => now = at,
            }
        }
        assert!((100..=102).contains(&starts.len()), "{}", starts.len());
        // After 5 s idle, still one at a time.
        let later = now + Duration::from_secs(5);
        assert!(r.wait(later).is_none());
        r.take(later);
        assert_eq!(r.wait(later), Some(later + Duration::from_millis(100)));
    }
}
