//! Every host's [`HostState`], by scheme/host/port, under one [`Policy`]; the query
//! API for embedders ([`HostView`]) and the summary's list ([`HostReport`]).
//!
//! Invariants:
//! - a host with no entry behaves as a fresh [`HostState`], so an entry is created
//!   only when a request starts, and dropped when it holds nothing a fresh one would
//!   not ([`HostState::is_idle`]) by an amortised sweep when the table has doubled
//!   (at least [`SWEEP_FLOOR`] entries): not at each request's end, which would cost
//!   an allocation per request to a host probed one request at a time. Memory
//!   follows twice the hosts in flight (or 1,024) plus the hosts that pushed back;
//! - lookups by `&str` allocate nothing; keys are host, then (tls, port), as in the
//!   pool.

use super::host::{Admit, HostState, Policy, Signal};
use crate::engine::pool::Key;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The fewest entries before a sweep of idle ones.
const SWEEP_FLOOR: usize = 1024;

/// One host's state as an embedder sees it (for a progress display).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostView {
    /// New requests to the host wait until then (`None`: not paused).
    pub paused_until: Option<Instant>,
    /// Requests in flight allowed now.
    pub limit: usize,
    /// Requests in flight now.
    pub in_flight: usize,
    /// 429 and 503 responses so far.
    pub pushbacks: u64,
}

/// A host that pushed back, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// `scheme://host:port`.
    pub origin: String,
    /// 429 and 503 responses it sent.
    pub pushbacks: u64,
    /// The longest pause it was given.
    pub longest_pause: Duration,
    /// The requests in flight it took without pushing back, as learned at its last
    /// push-back (the level the limit returns to between probes).
    pub settled: usize,
    /// Its limit of requests in flight now.
    pub limit: usize,
}

/// The per-host table; see the module docs.
#[derive(Debug, Clone)]
pub struct Table {
    policy: Policy,
    map: HashMap<String, Vec<(bool, u16, HostState)>>,
    sweep_at: usize,
}

impl Table {
    /// An empty table under `policy`.
    pub fn new(policy: Policy) -> Table {
        Table {
            policy,
            map: HashMap::new(),
            sweep_at: SWEEP_FLOOR,
        }
    }

    /// Another engine with `ceiling` joins (engines sharing one table): when
    /// `adds`, the ceiling is the sum of theirs (`-c` split over `--workers`), and
    /// hosts at the old ceiling move to the new one; else the first one's holds
    /// (`--per-host` is already a total).
    pub fn join(&mut self, ceiling: usize, adds: bool) {
        if !adds {
            return;
        }
        let old = self.policy.ceiling;
        let new = old.saturating_add(ceiling);
        self.policy.ceiling = new;
        for h in self.map.values_mut().flat_map(|v| v.iter_mut()) {
            h.2.widen(old, new);
        }
    }

    fn get(&self, k: Key<'_>) -> Option<&HostState> {
        self.map
            .get(k.host)?
            .iter()
            .find(|e| e.0 == k.tls && e.1 == k.port)
            .map(|e| &e.2)
    }

    #[cfg(test)]
    fn get_mut(&mut self, k: Key<'_>) -> Option<&mut HostState> {
        self.map
            .get_mut(k.host)?
            .iter_mut()
            .find(|e| e.0 == k.tls && e.1 == k.port)
            .map(|e| &mut e.2)
    }

    /// Whether a request to `k` may start at `now`; when it may (`Go`), it is
    /// counted as started. One lookup; an entry is made for a host not yet known.
    pub fn try_start(&mut self, k: Key<'_>, now: Instant) -> Admit {
        let p = &self.policy;
        if let Some(h) = self
            .map
            .get_mut(k.host)
            .and_then(|v| v.iter_mut().find(|e| e.0 == k.tls && e.1 == k.port))
        {
            let a = h.2.admit(p, now);
            if a == Admit::Go {
                h.2.started(p, now);
            }
            return a;
        }
        if self.map.len() >= self.sweep_at {
            self.sweep(now);
        }
        let mut fresh = HostState::new(&self.policy);
        fresh.started(&self.policy, now);
        match self.map.get_mut(k.host) {
            Some(v) => v.push((k.tls, k.port, fresh)),
            None => {
                self.map
                    .insert(k.host.to_string(), vec![(k.tls, k.port, fresh)]);
            }
        }
        Admit::Go
    }

    /// A request to `k` sent at `sent_at` finished at `now` as `signal` says.
    pub fn finished(&mut self, k: Key<'_>, now: Instant, sent_at: Instant, signal: Signal) {
        let p = &self.policy;
        match self
            .map
            .get_mut(k.host)
            .and_then(|v| v.iter_mut().find(|e| e.0 == k.tls && e.1 == k.port))
        {
            Some(h) => h.2.finished(p, now, sent_at, signal),
            None => debug_assert!(false, "finished a request never started for {k:?}"),
        }
    }

    /// Drops every idle entry; the next sweep comes when the table has doubled.
    fn sweep(&mut self, now: Instant) {
        let p = &self.policy;
        self.map.retain(|_, v| {
            v.retain(|e| !e.2.is_idle(p, now));
            !v.is_empty()
        });
        self.sweep_at = (self.map.len() * 2).max(SWEEP_FLOOR);
    }

    /// The state of host `k` at `now`: `None` when nothing is known of it (it is
    /// at its full limit, not paused).
    pub fn view(&self, k: Key<'_>, now: Instant) -> Option<HostView> {
        self.get(k).map(|h| HostView {
            paused_until: h.paused_until(now),
            limit: h.limit(),
            in_flight: h.in_flight(),
            pushbacks: h.pushbacks(),
        })
    }

    /// The hosts that pushed back (a 429 or 503, or a run of failures that paused
    /// them), most 429/503s first, at most `n`.
    pub fn report(&self, n: usize) -> Vec<HostReport> {
        let mut all: Vec<HostReport> = self
            .map
            .iter()
            .flat_map(|(host, v)| v.iter().map(move |e| (host, e)))
            .filter(|(_, e)| e.2.pushbacks() > 0 || e.2.longest_pause() > Duration::ZERO)
            .map(|(host, (tls, port, h))| HostReport {
                origin: origin(host, *tls, *port),
                pushbacks: h.pushbacks(),
                longest_pause: h.longest_pause(),
                settled: h.settled(),
                limit: h.limit(),
            })
            .collect();
        all.sort_by(|a, b| {
            (b.pushbacks, b.longest_pause)
                .cmp(&(a.pushbacks, a.longest_pause))
                .then_with(|| a.origin.cmp(&b.origin))
        });
        all.truncate(n);
        all
    }

    /// What `try_start` would answer, starting nothing (tests).
    #[cfg(test)]
    fn admit(&self, k: Key<'_>, now: Instant) -> Admit {
        self.get(k)
            .map_or(Admit::Go, |h| h.admit(&self.policy, now))
    }

    /// Counts a start whatever the host's state (tests: requests in flight
    /// already when the state changed).
    #[cfg(test)]
    fn started(&mut self, k: Key<'_>, now: Instant) {
        if self.get(k).is_none() {
            assert_eq!(self.try_start(k, now), Admit::Go);
            return;
        }
        let p = self.policy.clone();
        if let Some(h) = self.get_mut(k) {
            h.started(&p, now);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.values().map(Vec::len).sum()
    }
}

/// `scheme://host:port`, with IPv6 literals bracketed.
fn origin(host: &str, tls: bool, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    if host.contains(':') && !host.starts_with('[') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            adapt: true,
            ceiling: 8,
            max_retry_after: Duration::from_secs(60),
            backoff: Duration::from_millis(200),
            rate_per_host: 0.0,
        }
    }

    fn key(host: &str, tls: bool) -> Key<'_> {
        Key {
            host,
            tls,
            port: if tls { 443 } else { 80 },
        }
    }

    #[test]
    fn hosts_are_separate_and_healthy_ones_are_swept() {
        let mut t = Table::new(policy());
        let now = Instant::now();
        let (a, b, a_tls) = (
            key("a.test", false),
            key("b.test", false),
            key("a.test", true),
        );
        for k in [a, b, a_tls] {
            t.started(k, now);
        }
        t.finished(a, now, now, Signal::PushBack(Some(Duration::from_secs(2))));
        t.finished(b, now, now, Signal::Success);
        t.finished(a_tls, now, now, Signal::Success);
        assert_eq!(t.len(), 3, "kept until a sweep");
        assert_eq!(t.view(b, now).map(|v| v.limit), Some(8), "at the ceiling");
        t.sweep(now);
        assert_eq!(t.len(), 1, "only the host that pushed back is kept");
        assert_eq!(t.admit(b, now), Admit::Go);
        assert_eq!(t.admit(a_tls, now), Admit::Go);
        assert_eq!(t.admit(a, now), Admit::Until(now + Duration::from_secs(2)));
        let v = t.view(a, now).unwrap();
        // One request held when it pushed back: the cap, and the limit, are 1.
        assert_eq!((v.limit, v.in_flight, v.pushbacks), (1, 0, 1));
        assert_eq!(v.paused_until, Some(now + Duration::from_secs(2)));
        assert_eq!(t.view(b, now), None);
    }

    #[test]
    fn joined_ceilings_add_up_and_hosts_at_the_old_one_follow() {
        let mut t = Table::new(Policy {
            ceiling: 5,
            ..policy()
        });
        let now = Instant::now();
        let (a, b) = (key("a.test", false), key("b.test", false));
        for _ in 0..5 {
            t.started(a, now);
            t.started(b, now);
        }
        t.finished(b, now, now, Signal::PushBack(None));
        t.join(5, true);
        assert_eq!(
            t.view(a, now).unwrap().limit,
            10,
            "at the ceiling: follows it"
        );
        assert_eq!(t.view(b, now).unwrap().limit, 2, "cut: stays");
        t.join(7, false);
        assert_eq!(
            t.view(a, now).unwrap().limit,
            10,
            "--per-host: the first holds"
        );
    }

    #[test]
    fn report_lists_pushers_most_first_top_n() {
        let mut t = Table::new(policy());
        let now = Instant::now();
        let hosts: Vec<String> = (0..15).map(|i| format!("h{i:02}.test")).collect();
        for (i, h) in hosts.iter().enumerate() {
            for _ in 0..=i {
                t.started(key(h, false), now);
                t.finished(key(h, false), now, now, Signal::PushBack(None));
            }
        }
        t.started(key("::1", true), now);
        t.finished(key("::1", true), now, now, Signal::PushBack(None));
        let r = t.report(10);
        assert_eq!(r.len(), 10);
        assert_eq!(r[0].origin, "http://h14.test:80");
        assert_eq!(r[0].pushbacks, 15);
        assert_eq!((r[0].limit, r[0].settled), (1, 1));
        assert!(r.windows(2).all(|w| w[0].pushbacks >= w[1].pushbacks));
        let all = t.report(100);
        assert_eq!(all.len(), 16);
        assert_eq!(all[15].origin, "https://[::1]:443");
    }

    #[test]
    fn rate_paced_hosts_are_swept() {
        let p = Policy {
            rate_per_host: 1.0,
            ..policy()
        };
        let mut t = Table::new(p);
        let now = Instant::now();
        let names: Vec<String> = (0..5000).map(|i| format!("h{i}.test")).collect();
        for (i, h) in names.iter().enumerate() {
            let at = now + Duration::from_secs(i as u64);
            t.started(key(h, false), at);
            t.finished(key(h, false), at, at, Signal::Success);
        }
        assert!(t.len() <= 2 * SWEEP_FLOOR, "{} entries", t.len());
    }
}
