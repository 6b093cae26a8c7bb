//! One host's adaptive politeness: its pause, its concurrency limit (AIMD), its
//! `--rate-per-host` bucket, and the counters the summary reports.
//!
//! The host is fed what happened ([`HostState::started`], [`HostState::finished`]
//! with a [`Signal`]) and the time, and answers whether a request may start now
//! ([`HostState::admit`]). It reads no clock and knows no task or socket.
//!
//! The policy, with its constants:
//! - a **push-back** is a 429, a 503, or a run of [`TROUBLE_RUN`] `connect_timeout`,
//!   `read_timeout` or `closed` failures in a row (no response between them). It
//!   pauses new requests to the host until now + min(its `Retry-After`, or else the
//!   backoff, `max_retry_after`), and halves the limit (never below [`MIN_LIMIT`]);
//! - the backoff without a `Retry-After` is `backoff × 2^(strikes − 1)`, at most
//!   [`MAX_BACKOFF`], where strikes counts push-backs since the last success;
//! - one congestion event cuts once: a push-back answering a request sent before the
//!   last cut (it was already in flight) may lengthen the pause but does not halve
//!   again, as TCP cuts its window once per round trip;
//! - a push-back also teaches a *cap*: the requests the host held when it pushed
//!   back, minus one (at least [`MIN_LIMIT`]) — the level it refused;
//! - every [`GROW_WINDOW`] successes (responses other than 429/503, to requests sent
//!   after the last cut, while not paused) raise the limit by one, up to the cap;
//!   once [`PROBE_WINDOW`] successes have been had at the cap, the cap (and the
//!   limit) rise by one, to probe whether the host takes more now — never above the
//!   ceiling (`--per-host`, else `-c`);
//! - other failures (refused, TLS, DNS, ...) are neither: they leave everything as is;
//! - the limit holds back requests only below the ceiling: at the ceiling the
//!   engine's own `--per-host` and `-c` apply, as they would without this module;
//! - with adaptation off (`--no-adapt`) only the counters and the rate apply.
//!
//! Invariants: `MIN_LIMIT ≤ limit ≤ cap ≤ ceiling`; `in_flight` counts starts minus
//! finishes (debug builds assert it never goes below zero); a pause never ends
//! earlier than one already set; the rate bucket never lends credit for idle time.

use std::time::{Duration, Instant};

/// Successes that raise a host's limit by one.
pub const GROW_WINDOW: u32 = 10;
/// `connect_timeout` / `read_timeout` / `closed` failures in a row that count as one
/// push-back.
pub const TROUBLE_RUN: u32 = 5;
/// The lowest limit a host is cut to.
pub const MIN_LIMIT: usize = 1;
/// Successes at the cap before the cap rises by one (a probe).
pub const PROBE_WINDOW: u32 = 100;
/// The longest pause computed from the backoff (a `Retry-After` may ask for more, up
/// to `max_retry_after`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The settings that shape every host's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Pause and cut on push-back, grow on success (`false`: `--no-adapt`).
    pub adapt: bool,
    /// The highest limit: `--per-host`, else `-c` (at least 1).
    pub ceiling: usize,
    /// The longest pause (`--max-retry-after`).
    pub max_retry_after: Duration,
    /// The first pause when no `Retry-After` was sent (`--retry-backoff`'s base).
    pub backoff: Duration,
    /// New requests per second to each host (0 or less: no limit).
    pub rate_per_host: f64,
}

impl Policy {
    /// The interval between two starts under `rate_per_host`.
    fn interval(&self) -> Option<Duration> {
        (self.rate_per_host > 0.0 && self.rate_per_host.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / self.rate_per_host))
    }
}

/// How a request to the host ended, for [`HostState::finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A 429 or 503, with the wait its `Retry-After` asked for (if any, and valid).
    PushBack(Option<Duration>),
    /// `connect_timeout`, `read_timeout` or `closed`.
    Trouble,
    /// Any other response.
    Success,
    /// Any other failure, or none to report (the request was cancelled).
    Neutral,
}

/// What [`HostState::admit`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Start now.
    Go,
    /// Paused, or the rate bucket is empty: not before this instant.
    Until(Instant),
    /// The host's limit of requests in flight is reached: when one finishes.
    Full,
}

/// One host's state; see the module docs.
#[derive(Debug, Clone)]
pub struct HostState {
    limit: usize,
    cap: usize,
    at_cap: u32,
    in_flight: usize,
    paused_until: Option<Instant>,
    pause_began: Option<Instant>,
    last_cut: Option<Instant>,
    strikes: u32,
    successes: u32,
    trouble_run: u32,
    /// The rate bucket's theoretical next start (GCRA; one token, no burst).
    next_start: Option<Instant>,
    pushbacks: u64,
    longest_pause: Duration,
}

impl HostState {
    /// A host nobody has heard from: the full limit, no pause.
    pub fn new(p: &Policy) -> HostState {
        HostState {
            limit: p.ceiling.max(MIN_LIMIT),
            cap: p.ceiling.max(MIN_LIMIT),
            at_cap: 0,
            in_flight: 0,
            paused_until: None,
            pause_began: None,
            last_cut: None,
            strikes: 0,
            successes: 0,
            trouble_run: 0,
            next_start: None,
            pushbacks: 0,
            longest_pause: Duration::ZERO,
        }
    }

    /// Whether a request may start at `now`.
    pub fn admit(&self, p: &Policy, now: Instant) -> Admit {
        if p.adapt {
            if let Some(until) = self.paused_until.filter(|&u| u > now) {
                return Admit::Until(until);
            }
            // At the ceiling the engine's own limits (`--per-host`, `-c`) hold.
            if self.in_flight >= self.limit && self.limit < p.ceiling.max(MIN_LIMIT) {
                return Admit::Full;
            }
        }
        match self.next_start {
            Some(at) if at > now && p.interval().is_some() => Admit::Until(at),
            _ => Admit::Go,
        }
    }

    /// A request starts at `now` (after [`HostState::admit`] said `Go`).
    pub fn started(&mut self, p: &Policy, now: Instant) {
        self.in_flight += 1;
        if let Some(iv) = p.interval() {
            let base = self.next_start.map_or(now, |t| t.max(now));
            self.next_start = Some(base + iv);
        }
    }

    /// A request sent at `sent_at` finished at `now` as `signal` says.
    pub fn finished(&mut self, p: &Policy, now: Instant, sent_at: Instant, signal: Signal) {
        debug_assert!(self.in_flight > 0, "host in-flight count below zero");
        self.in_flight = self.in_flight.saturating_sub(1);
        match signal {
            Signal::PushBack(retry_after) => {
                self.pushbacks += 1;
                self.trouble_run = 0;
                self.push_back(p, now, sent_at, retry_after);
            }
            Signal::Trouble => {
                self.trouble_run += 1;
                if self.trouble_run >= TROUBLE_RUN {
                    self.trouble_run = 0;
                    self.push_back(p, now, sent_at, None);
                }
            }
            Signal::Success => {
                self.trouble_run = 0;
                self.strikes = 0;
                let after_cut = self.last_cut.is_none_or(|c| sent_at >= c);
                if p.adapt && after_cut && !self.is_paused(now) {
                    self.successes += 1;
                    if self.successes >= GROW_WINDOW {
                        self.successes = 0;
                        self.grow(p);
                    }
                }
            }
            Signal::Neutral => {}
        }
    }

    /// A window of successes: one more, up to the cap; at the cap, a probe after
    /// [`PROBE_WINDOW`] successes.
    fn grow(&mut self, p: &Policy) {
        let ceiling = p.ceiling.max(MIN_LIMIT);
        if self.limit < self.cap {
            self.limit += 1;
            return;
        }
        if self.cap < ceiling {
            self.at_cap += GROW_WINDOW;
            if self.at_cap >= PROBE_WINDOW {
                self.at_cap = 0;
                self.cap += 1;
                self.limit = self.cap;
            }
        }
    }

    fn push_back(
        &mut self,
        p: &Policy,
        now: Instant,
        sent_at: Instant,
        retry_after: Option<Duration>,
    ) {
        if !p.adapt {
            return;
        }
        let new_event = self.last_cut.is_none_or(|c| sent_at >= c);
        if new_event {
            self.strikes = self.strikes.saturating_add(1);
            // The requests the host held when it pushed back: this one included.
            let held = self.in_flight + 1;
            self.cap = (held - 1).clamp(MIN_LIMIT, p.ceiling.max(MIN_LIMIT));
            self.at_cap = 0;
            self.limit = (self.limit / 2).clamp(MIN_LIMIT, self.cap);
            self.successes = 0;
            self.last_cut = Some(now);
        }
        let pause = retry_after
            .unwrap_or_else(|| backoff(p.backoff, self.strikes))
            .min(p.max_retry_after);
        let until = now + pause;
        if !self.is_paused(now) {
            self.pause_began = Some(now);
        }
        if self.paused_until.is_none_or(|u| u < until) {
            self.paused_until = Some(until);
        }
        if let (Some(b), Some(u)) = (self.pause_began, self.paused_until) {
            self.longest_pause = self.longest_pause.max(u.saturating_duration_since(b));
        }
    }

    /// True while new requests wait for the pause to end.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|u| u > now)
    }

    /// The end of the pause, if one runs at `now`.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&u| u > now)
    }

    /// The current limit of requests in flight.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// 429 and 503 responses received.
    pub fn pushbacks(&self) -> u64 {
        self.pushbacks
    }

    /// The longest pause so far.
    pub fn longest_pause(&self) -> Duration {
        self.longest_pause
    }

    /// True when the state holds nothing a fresh one would not: it may be dropped.
    /// Hosts that ever pushed back are kept, for the summary.
    pub fn is_idle(&self, p: &Policy, now: Instant) -> bool {
        self.in_flight == 0
            && self.pushbacks == 0
            && self.trouble_run == 0
            && self.strikes == 0
            && self.limit == p.ceiling.max(MIN_LIMIT)
            && self.cap == self.limit
            && !self.is_paused(now)
            && self.next_start.is_none_or(|t| t <= now)
    }
}

/// The pause after the `strikes`-th push-back in a row without a `Retry-After`.
fn backoff(base: Duration, strikes: u32) -> Duration {
    let factor = 1u32 << strikes.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ceiling: usize) -> Policy {
        Policy {
            adapt: true,
            ceiling,
            max_retry_after: Duration::from_secs(60),
            backoff: Duration::from_millis(200),
            rate_per_host: 0.0,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Starts and finishes one request sent at `sent` and ending at `end`.
    fn one(h: &mut HostState, p: &Policy, sent: Instant, end: Instant, s: Signal) {
        h.started(p, sent);
        h.finished(p, end, sent, s);
    }

    #[test]
    fn push_back_pauses_for_retry_after_and_halves() {
        let p = policy(8);
        let t = Instant::now();
        let mut h = HostState::new(&p);
        assert_eq!(h.admit(&p, t), Admit::Go);
        for _ in 0..6 {
            h.started(&p, t);
        }
        // Seven in flight: halved to 4 (the cap is 6).
        one(&mut h, &p, t, t + ms(10), Signal::PushBack(Some(ms(1000))));
        assert_eq!(h.limit(), 4);
        assert_eq!(h.pushbacks(), 1);
        for _ in 0..6 {
            h.finished(&p, t + ms(10), t, Signal::Neutral);
        }
        assert_eq!(h.admit(&p, t + ms(500)), Admit::Until(t + ms(1010)));
        assert_eq!(h.paused_until(t + ms(500)), Some(t + ms(1010)));
        assert_eq!(h.admit(&p, t + ms(1010)), Admit::Go);
        assert_eq!(h.longest_pause(), ms(1000));
    }

    #[test]
    fn table_of_pauses() {
        // (retry_after, strikes before, cap, expected pause)
        let table = [
            (Some(ms(1000)), 0, 60_000, ms(1000)),
            (Some(ms(90_000)), 0, 60_000, ms(60_000)),
            (None, 0, 60_000, ms(200)),
            (None, 1, 60_000, ms(400)),
            (None, 3, 60_000, ms(1600)),
            (None, 20, 60_000, MAX_BACKOFF),
            (None, 20, 5_000, ms(5000)),
            (Some(ms(0)), 0, 60_000, ms(0)),
        ];
        for (i, (ra, strikes, cap, want)) in table.into_iter().enumerate() {
            let p = Policy {
                max_retry_after: ms(cap),
                ..policy(64)
            };
            let mut h = HostState::new(&p);
            let mut t = Instant::now();
            for _ in 0..strikes {
                // Push-backs in a row, each after the previous pause, each a new event.
                one(&mut h, &p, t, t, Signal::PushBack(Some(ms(0))));
                t += ms(1);
            }
            one(&mut h, &p, t, t, Signal::PushBack(ra));
            let got = h.paused_until(t).map_or(ms(0), |u| u - t);
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn one_event_cuts_once_but_may_lengthen_the_pause() {
        let p = policy(16);
        let t = Instant::now();
        let mut h = HostState::new(&p);
        for _ in 0..8 {
            h.started(&p, t);
        }
        // All eight were in flight when the first 429 came back.
        h.finished(&p, t + ms(10), t, Signal::PushBack(Some(ms(1000))));
        for i in 1..8 {
            h.finished(&p, t + ms(10 + i), t, Signal::PushBack(Some(ms(1000))));
        }
        // Halved to 8, and capped at the 8 held − 1; once.
        assert_eq!(h.limit(), 7, "one cut for one event");
        assert_eq!(h.pushbacks(), 8);
        assert_eq!(h.paused_until(t), Some(t + ms(1017)));
        assert_eq!(h.longest_pause(), ms(1007));
        // A request sent after the cut that is pushed back again cuts again.
        let later = t + ms(1100);
        h.started(&p, later);
        h.started(&p, later);
        one(&mut h, &p, later, later, Signal::PushBack(None));
        assert_eq!(h.limit(), 2, "7 / 2 = 3, capped at the 3 held − 1");
    }

    #[test]
    fn grows_by_one_per_window_up_to_the_cap_then_probes_to_the_ceiling() {
        let p = policy(8);
        let mut t = Instant::now();
        let mut h = HostState::new(&p);
        // Pushed back with 5 in flight: the cap is 4, the limit 8 / 2 = 4.
        for _ in 0..5 {
            h.started(&p, t);
        }
        h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
        for _ in 0..4 {
            h.finished(&p, t, t, Signal::Neutral);
        }
        assert_eq!(h.limit(), 4);
        // Pushed back again with one in flight: the cap is 1 (at least MIN_LIMIT).
        t += ms(1);
        one(&mut h, &p, t, t, Signal::PushBack(Some(ms(0))));
        assert_eq!(h.limit(), 1);
        let mut limits = Vec::new();
        for _ in 0..1000 {
            t += ms(1);
            one(&mut h, &p, t, t, Signal::Success);
            limits.push(h.limit());
        }
        // At the cap (1): a probe after PROBE_WINDOW successes, then one per
        // window up to the new cap, and so on; never above the ceiling.
        let w = GROW_WINDOW as usize;
        let probe = PROBE_WINDOW as usize;
        assert_eq!(limits[probe - 2], 1);
        assert_eq!(limits[probe - 1], 2);
        assert_eq!(limits[2 * probe - 2], 2);
        assert_eq!(limits[2 * probe - 1], 3);
        assert!(limits.iter().all(|&l| l <= 8));
        assert_eq!(limits[999], 8, "probed up to the ceiling");
        assert!(
            limits.windows(w).all(|x| x[w - 1] <= x[0] + 1),
            "one per window"
        );
        // With a cap learned high, growth is one per window.
        let mut h = HostState::new(&p);
        for _ in 0..8 {
            h.started(&p, t);
        }
        h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
        for _ in 0..7 {
            h.finished(&p, t, t, Signal::Neutral);
        }
        assert_eq!(h.limit(), 4);
        let mut limits = Vec::new();
        for _ in 0..40 {
            t += ms(1);
            one(&mut h, &p, t, t, Signal::Success);
            limits.push(h.limit());
        }
        assert_eq!((limits[8], limits[9], limits[19], limits[29]), (4, 5, 6, 7));
        assert_eq!(limits[39], 7, "the cap: one below the level pushed back");
    }

    #[test]
    fn successes_from_before_the_cut_or_during_the_pause_do_not_grow() {
        let p = policy(8);
        let t = Instant::now();
        let mut h = HostState::new(&p);
        for _ in 0..30 {
            h.started(&p, t);
        }
        h.finished(&p, t + ms(5), t, Signal::PushBack(Some(ms(100))));
        for _ in 0..29 {
            h.finished(&p, t + ms(200), t, Signal::Success);
        }
        assert_eq!(h.limit(), 4, "old requests' successes");
        for _ in 0..GROW_WINDOW {
            one(&mut h, &p, t + ms(50), t + ms(60), Signal::Success);
        }
        assert_eq!(h.limit(), 4, "successes during the pause");
    }

    #[test]
    fn a_run_of_troubles_is_a_push_back_and_a_response_breaks_the_run() {
        let p = policy(8);
        let mut t = Instant::now();
        let mut h = HostState::new(&p);
        for _ in 0..TROUBLE_RUN - 1 {
            one(&mut h, &p, t, t, Signal::Trouble);
        }
        one(&mut h, &p, t, t, Signal::Success);
        one(&mut h, &p, t, t, Signal::Neutral);
        for _ in 0..TROUBLE_RUN - 1 {
            one(&mut h, &p, t, t, Signal::Trouble);
        }
        assert_eq!((h.limit(), h.is_paused(t)), (8, false));
        t += ms(1);
        for _ in 0..6 {
            h.started(&p, t);
        }
        one(&mut h, &p, t, t, Signal::Trouble);
        assert_eq!(h.limit(), 4);
        assert_eq!(h.paused_until(t), Some(t + ms(200)));
        assert_eq!(h.pushbacks(), 0, "troubles are not 429/503s");
    }

    #[test]
    fn limit_holds_requests_in_flight_below_the_ceiling() {
        let p = policy(4);
        let t = Instant::now();
        let mut h = HostState::new(&p);
        for _ in 0..6 {
            h.started(&p, t);
        }
        assert_eq!(
            h.admit(&p, t),
            Admit::Go,
            "at the ceiling, -c and --per-host hold"
        );
        h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
        assert_eq!(h.limit(), 2);
        assert_eq!(h.admit(&p, t), Admit::Full);
        for _ in 0..3 {
            h.finished(&p, t, t, Signal::Neutral);
        }
        assert_eq!(h.admit(&p, t), Admit::Full, "two in flight");
        h.finished(&p, t, t, Signal::Neutral);
        assert_eq!(h.admit(&p, t), Admit::Go);
    }

    #[test]
    fn no_adapt_only_counts() {
        let p = Policy {
            adapt: false,
            ..policy(2)
        };
        let t = Instant::now();
        let mut h = HostState::new(&p);
        one(&mut h, &p, t, t, Signal::PushBack(Some(ms(5000))));
        for _ in 0..5 {
            h.started(&p, t);
        }
        assert_eq!(h.admit(&p, t), Admit::Go);
        assert_eq!((h.limit(), h.pushbacks(), h.is_paused(t)), (2, 1, false));
    }

    #[test]
    fn rate_per_host_paces_without_bursts() {
        let p = Policy {
            rate_per_host: 10.0,
            ..policy(100)
        };
        let t0 = Instant::now();
        let mut h = HostState::new(&p);
        let mut now = t0;
        let mut starts = 0;
        while now < t0 + Duration::from_secs(5) {
            match h.admit(&p, now) {
                Admit::Go => {
                    h.started(&p, now);
                    h.finished(&p, now, now, Signal::Success);
                    starts += 1;
                }
                Admit::Until(at) => now = at,
                Admit::Full => unreachable!(),
            }
        }
        assert!((50..=51).contains(&starts), "{starts}");
        // Idle for a minute: still one start, then wait an interval.
        let later = now + Duration::from_secs(60);
        assert_eq!(h.admit(&p, later), Admit::Go);
        h.started(&p, later);
        assert_eq!(h.admit(&p, later), Admit::Until(later + ms(100)));
    }

    #[test]
    fn idle_states_may_be_dropped() {
        let p = policy(4);
        let t = Instant::now();
        let mut h = HostState::new(&p);
        assert!(h.is_idle(&p, t));
        h.started(&p, t);
        assert!(!h.is_idle(&p, t));
        h.finished(&p, t, t, Signal::Success);
        assert!(h.is_idle(&p, t));
        one(&mut h, &p, t, t, Signal::PushBack(None));
        assert!(
            !h.is_idle(&p, t + Duration::from_secs(3600)),
            "kept for the summary"
        );
    }

    proptest::proptest! {
        /// Whatever happens, the limit stays within [MIN_LIMIT, ceiling], a pause
        /// never shrinks, and a host is never admitted above its limit.
        #[test]
        fn limit_and_pause_invariants(
            ceiling in 1usize..20,
            adapt: bool,
            ops in proptest::collection::vec((0u8..6, 0u64..3000), 0..200),
        ) {
            let p = Policy { adapt, ..policy(ceiling) };
            let mut h = HostState::new(&p);
            let mut now = Instant::now();
            let mut sent: Vec<Instant> = Vec::new();
            for (op, n) in ops {
                now += ms(n % 50);
                let before = h.paused_until;
                match op {
                    0 | 1 => {
                        if h.admit(&p, now) == Admit::Go {
                            h.started(&p, now);
                            sent.push(now);
                        }
                    }
                    _ if sent.is_empty() => {}
                    2 => h.finished(&p, now, sent.remove(0), Signal::Success),
                    3 => h.finished(&p, now, sent.remove(0), Signal::PushBack(Some(ms(n)))),
                    4 => h.finished(&p, now, sent.remove(0), Signal::PushBack(None)),
                    _ => h.finished(&p, now, sent.remove(0), Signal::Trouble),
                }
                proptest::prop_assert!(h.limit() >= MIN_LIMIT && h.limit() <= ceiling);
                proptest::prop_assert_eq!(h.in_flight(), sent.len());
                if adapt && h.admit(&p, now) == Admit::Go {
                    proptest::prop_assert!(
                        h.in_flight() < h.limit() || h.limit() == ceiling
                    );
                }
                if let (Some(b), Some(a)) = (before, h.paused_until) {
                    proptest::prop_assert!(a >= b);
                }
                if let Some(u) = h.paused_until(now) {
                    proptest::prop_assert!(u <= now + p.max_retry_after);
                }
            }
        }
    }
}
