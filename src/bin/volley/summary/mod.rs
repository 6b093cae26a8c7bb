//! The end-of-run summary, shared by the live run and `volley report`.
//!
//! Invariants: every result is counted exactly once, in a status class (1xx–5xx, or
//! `other` for any other status and for a result with neither status nor error) or
//! under its error kind, so the classes and kinds always add up to `total`. Memory
//! is fixed: counters, one log-scaled [`Histogram`] per phase, a bounded map of
//! error kinds, and a [`TopK`] sketch of the hosts with the most errors — nothing
//! per result.

pub mod histogram;
pub mod pushback;
pub mod topk;

use histogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;
use topk::TopK;
use volley::engine::Outcome;

/// The phases timed in `time_ms`, in the contract's order.
pub const PHASES: [&str; 5] = ["dns", "connect", "tls", "ttfb", "total"];
/// Distinct error kinds counted by name; further names are counted as [`OTHER_KIND`]
/// (the contract has 13; this bounds memory against damaged report input).
const MAX_KINDS: usize = 64;
/// Where kinds past [`MAX_KINDS`] are counted.
pub const OTHER_KIND: &str = "other_error";
/// Hosts listed under "most errors".
const TOP_HOSTS: usize = 10;

/// What the summary needs of one result.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    /// Final status, if any.
    pub status: Option<u16>,
    /// Error kind, if any.
    pub error: Option<&'a str>,
    /// Each phase's time in µs, in [`PHASES`] order.
    pub times: [Option<u64>; 5],
    /// The URL of the first request (for the hosts with most errors).
    pub url: &'a str,
    /// With `--calibrate`: the result's `soft404` (`None` without calibration).
    pub soft404: Option<Option<bool>>,
}

/// What calibration did in a run (`--calibrate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calibration {
    /// Results with `soft404: true`.
    pub soft404: u64,
    /// Results with `soft404: null` (their host could not be calibrated).
    pub unknown: u64,
    /// Hosts calibrated (live run only).
    pub hosts: u64,
    /// Calibration requests sent (live run only).
    pub requests: u64,
}

/// Counts for the end-of-run summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// All results.
    pub total: u64,
    /// Results without error by status class: index 1..=5 for 1xx–5xx, 0 for any
    /// other status (or none).
    pub classes: [u64; 6],
    /// Results with an error, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Time of each phase, in [`PHASES`] order.
    pub phases: [Histogram; 5],
    /// Hosts with the most errors.
    pub hosts: TopK,
    /// With `--calibrate` (or a report over calibrated results).
    pub calibration: Option<Calibration>,
}

fn us(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Summary {
    /// Counts one result.
    pub fn add(&mut self, r: &Record<'_>) {
        self.total += 1;
        if let Some(v) = r.soft404 {
            let c = self.calibration.get_or_insert_with(Calibration::default);
            match v {
                Some(true) => c.soft404 += 1,
                None => c.unknown += 1,
                Some(false) => {}
            }
        }
        match (r.error, r.status) {
            (Some(kind), _) => {
                if let Some(c) = self.errors.get_mut(kind) {
                    *c += 1;
                } else if self.errors.len() < MAX_KINDS {
                    self.errors.insert(printable(kind), 1);
                } else {
                    *self.errors.entry(OTHER_KIND.to_string()).or_default() += 1;
                }
                // An invalid URL has no host to blame.
                if kind != "invalid_url" {
                    if let Some(h) = topk::host_of(r.url) {
                        self.hosts.add(&h, 1);
                    }
                }
            }
            (None, Some(s)) if (100..600).contains(&s) => self.classes[usize::from(s / 100)] += 1,
            (None, _) => self.classes[0] += 1,
        }
        for (h, t) in self.phases.iter_mut().zip(r.times) {
            if let Some(t) = t {
                h.add(t);
            }
        }
    }

    /// Counts one outcome of the live run (`soft404`: with `--calibrate`, its verdict).
    pub fn add_outcome(&mut self, o: &Outcome, soft404: Option<Option<bool>>) {
        let t = &o.timings;
        self.add(&Record {
            status: o.status,
            error: o.error.as_ref().map(|e| e.kind.as_str()),
            times: [us(t.dns), us(t.connect), us(t.tls), us(t.ttfb), us(t.total)],
            url: o.url(),
            soft404,
        });
    }

    /// Adds another summary's counts.
    pub fn merge(&mut self, o: &Summary) {
        self.total += o.total;
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        for (k, v) in &o.errors {
            if let Some(c) = self.errors.get_mut(k) {
                *c += v;
            } else if self.errors.len() < MAX_KINDS {
                self.errors.insert(k.clone(), *v);
            } else {
                *self.errors.entry(OTHER_KIND.to_string()).or_default() += v;
            }
        }
        for (a, b) in self.phases.iter_mut().zip(&o.phases) {
            a.merge(b);
        }
        self.hosts.merge(&o.hosts);
        if let Some(b) = o.calibration {
            let a = self.calibration.get_or_insert_with(Calibration::default);
            a.soft404 += b.soft404;
            a.unknown += b.unknown;
            a.hosts += b.hosts;
            a.requests += b.requests;
        }
    }

    /// Results counted in a class or under a kind (always equal to `total`).
    pub fn accounted(&self) -> u64 {
        self.classes.iter().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    /// `2xx: 950, other: 1, connect_refused: 19` (only non-zero counts).
    pub fn counts_line(&self) -> String {
        let mut s = String::new();
        let sep = |s: &mut String| {
            if !s.is_empty() {
                s.push_str(", ");
            }
        };
        for (i, &c) in self.classes.iter().enumerate().skip(1) {
            if c > 0 {
                sep(&mut s);
                let _ = write!(s, "{i}xx: {c}");
            }
        }
        if self.classes[0] > 0 {
            sep(&mut s);
            let _ = write!(s, "other: {}", self.classes[0]);
        }
        for (k, c) in &self.errors {
            sep(&mut s);
            let _ = write!(s, "{k}: {c}");
        }
        s
    }

    /// The summary as text, each line starting `prefix`: `head` and the counts, then
    /// percentiles per phase, a histogram of total time, and the hosts with the
    /// most errors. Sections without data are left out.
    pub fn render(&self, prefix: &str, head: &str) -> String {
        let mut out = format!("{prefix}{head}");
        let counts = self.counts_line();
        if !counts.is_empty() {
            let _ = write!(out, ", {counts}");
        }
        out.push('\n');
        if let Some(c) = self.calibration {
            let _ = write!(
                out,
                "{prefix}soft-404: {} of {} results",
                c.soft404, self.total
            );
            if c.unknown > 0 {
                let _ = write!(out, ", {} not calibrated (host did not answer)", c.unknown);
            }
            if c.hosts > 0 {
                let _ = write!(
                    out,
                    "; {} host(s) calibrated with {} requests (not counted as targets)",
                    c.hosts, c.requests
                );
            }
            out.push('\n');
        }
        if self.phases.iter().any(|h| h.count() > 0) {
            let _ = writeln!(
                out,
                "{prefix}time (ms)       p50        p90        p99    results"
            );
            for (name, h) in PHASES.iter().zip(&self.phases) {
                let q = |p| h.quantile(p).map_or("-".to_string(), ms);
                let _ = writeln!(
                    out,
                    "{prefix}  {name:<8} {:>10} {:>10} {:>10} {:>10}",
                    q(0.5),
                    q(0.9),
                    q(0.99),
                    h.count()
                );
            }
        }
        let bins = coarse_bins(&self.phases[4]);
        if !bins.is_empty() {
            let _ = writeln!(out, "{prefix}total time");
            let max = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1);
            for (lo, hi, c) in bins {
                let bar = if c == 0 {
                    0
                } else {
                    (c * 40).div_ceil(max) as usize
                };
                let label = match hi {
                    Some(hi) => format!("{}-{}", dur(lo), dur(hi)),
                    None => format!(">={}", dur(lo)),
                };
                let _ = writeln!(out, "{prefix}  {label:>13} {:<40} {c}", "#".repeat(bar));
            }
        }
        let top = self.hosts.top(TOP_HOSTS);
        if !top.is_empty() {
            let list: Vec<String> = top
                .iter()
                .map(|e| format!("{} {}", e.host, e.count))
                .collect();
            let _ = writeln!(out, "{prefix}most errors: {}", list.join(", "));
        }
        out
    }
}

/// `s` safe to print on a terminal: at most 64 bytes, control characters as `?`
/// (a report reads kinds from files that may be damaged or hostile).
pub fn printable(s: &str) -> String {
    let mut o: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if o.len() > 64 {
        let mut i = 64;
        while !o.is_char_boundary(i) {
            i -= 1;
        }
        o.truncate(i);
    }
    o
}

/// µs as milliseconds with three decimals.
pub fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// A short duration label: `50us`, `2ms`, `1s`.
pub fn dur(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}us"),
        1_000..1_000_000 => format!("{}ms", us / 1_000),
        _ => format!("{}s", us / 1_000_000),
    }
}

/// Edges (µs) of the coarse histogram: a 1-2-5 series from 10 µs to 1000 s.
fn edges() -> Vec<u64> {
    let mut v = Vec::new();
    let mut decade = 10u64;
    while decade <= 1_000_000_000 {
        v.extend([decade, 2 * decade, 5 * decade]);
        decade *= 10;
    }
    v
}

/// The histogram regrouped into 1-2-5 bins `(low, high or open, count)`, from the
/// first non-empty bin to the last; empty when there are no values. A fine bucket
/// goes to the bin holding its middle.
pub fn coarse_bins(h: &Histogram) -> Vec<(u64, Option<u64>, u64)> {
    let edges = edges();
    // bins[i] counts [edges[i-1], edges[i]); bins[0] is below 10 µs.
    let mut bins = vec![0u64; edges.len() + 1];
    for (lo, w, c) in h.buckets() {
        let mid = lo + w / 2;
        bins[edges.partition_point(|&e| e <= mid)] += c;
    }
    let (Some(first), Some(last)) = (
        bins.iter().position(|&c| c > 0),
        bins.iter().rposition(|&c| c > 0),
    ) else {
        return Vec::new();
    };
    (first..=last)
        .map(|i| {
            let lo = if i == 0 { 0 } else { edges[i - 1] };
            (lo, edges.get(i).copied(), bins[i])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(status: Option<u16>, error: Option<&str>, total: Option<u64>) -> Record<'_> {
        Record {
            status,
            error,
            times: [None, None, None, None, total],
            url: "http://h.example/x",
            soft404: None,
        }
    }

    #[test]
    fn every_status_is_counted() {
        let mut s = Summary::default();
        for st in [100, 204, 302, 404, 503, 600, 799, 999, 0, 42] {
            s.add(&rec(Some(st), None, None));
        }
        s.add(&rec(None, None, None));
        s.add(&rec(Some(200), Some("truncated"), None));
        assert_eq!(s.total, 12);
        assert_eq!(s.accounted(), 12);
        assert_eq!(s.classes, [6, 1, 1, 1, 1, 1]);
        assert_eq!(
            s.counts_line(),
            "1xx: 1, 2xx: 1, 3xx: 1, 4xx: 1, 5xx: 1, other: 6, truncated: 1"
        );
        assert_eq!(s.hosts.top(1)[0].host, "h.example");
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut s = Summary::default();
        for i in 0..1000 {
            s.add(&rec(None, Some(&format!("k{i}")), None));
        }
        assert!(s.errors.len() <= MAX_KINDS + 1);
        assert_eq!(s.accounted(), 1000);
        assert_eq!(s.errors[OTHER_KIND], 1000 - MAX_KINDS as u64);
    }

    #[test]
    fn render_shows_percentiles_and_histogram() {
        let mut s = Summary::default();
        for i in 1..=100u64 {
            s.add(&rec(Some(200), None, Some(i * 1000)));
        }
        let text = s.render("volley: ", "100 targets");
        assert!(
            text.starts_with("volley: 100 targets, 2xx: 100\n"),
            "{text}"
        );
        assert!(text.contains("  total "), "{text}");
        assert!(text.contains("  dns "), "{text}");
        assert!(text.contains("1ms-2ms"), "{text}");
        assert!(text.contains("50ms-100ms"), "{text}");
        assert!(!text.contains("most errors"));
        let bins = coarse_bins(&s.phases[4]);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 100);
        assert_eq!(bins.first().unwrap().0, 1000);
    }

    proptest! {
        #[test]
        fn accounts_for_every_result(
            rs in proptest::collection::vec((proptest::option::of(any::<u16>()), proptest::option::of(0usize..3)), 0..300),
            split in 0usize..300,
        ) {
            let kinds = ["dns", "closed", "tls"];
            let (mut a, mut b, mut all) = (Summary::default(), Summary::default(), Summary::default());
            for (i, (st, e)) in rs.iter().enumerate() {
                let r = rec(*st, e.map(|k| kinds[k]), Some(i as u64));
                all.add(&r);
                if i < split { a.add(&r) } else { b.add(&r) }
            }
            a.merge(&b);
            prop_assert_eq!(all.total, rs.len() as u64);
            prop_assert_eq!(all.accounted(), all.total);
            prop_assert_eq!(a.accounted(), all.total);
            prop_assert_eq!(a.counts_line(), all.counts_line());
            prop_assert_eq!(a.phases[4].quantile(0.5), all.phases[4].quantile(0.5));
        }
    }
}
