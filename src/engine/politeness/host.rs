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
//!   after the last cut, while not paused, with the host at its limit — as TCP does
//!   not grow a window the sender does not fill) raise the limit by one, up to the
//!   cap;
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
    settled: usize,
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
            settled: p.ceiling.max(MIN_LIMIT),
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
        // The limit was what held the host back (not the work there was).
        let bound = self.in_flight >= self.limit;
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
                if p.adapt && after_cut && bound && !self.is_paused(now) {
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
            self.settled = self.cap;
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

    /// The ceiling grew from `old` to `new` (another engine joined): a limit or cap
    /// at the old ceiling moves to the new one.
    pub fn widen(&mut self, old: usize, new: usize) {
        if self.limit == old {
            self.limit = new;
        }
        if self.cap == old {
            self.cap = new;
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

    /// Where the host settled: the requests it took without pushing back, as
    /// learned at its last push-back (its held requests then, minus one); the
    /// ceiling if it never pushed back.
    pub fn settled(&self) -> usize {
        self.settled
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
#[path = "host_tests.rs"]
mod tests;
