//! Calibration in front of the engine: a [`Source`] wrapper and a [`Handler`] wrapper
//! that share one per-host table, so the engine knows nothing of calibration.
//!
//! [`calibrated`] wraps a source and a handler. For each scheme/host/port, the source
//! wrapper yields that host's calibration probes ([`super::probes`]) before any of its
//! targets and *parks* the host's targets until the probes' outcomes have arrived;
//! the handler wrapper routes probe outcomes (and their `on_head`/`on_body`, for
//! fingerprints) to the host's [`SignatureBuilder`](super::SignatureBuilder), and hands every target's result
//! to the inner handler with a [`Verdict`] (its `soft404` and its body's
//! [`Fingerprint`]) just before `on_done`.
//!
//! Invariants:
//! - Probe tags have [`PROBE_TAG`] set; the inner source's tags must not (they are
//!   passed through unchanged). The inner handler never sees a probe: no callback, no
//!   verdict, no `on_done`.
//! - Every target pulled from the inner source is yielded exactly once, and gets
//!   exactly one `on_verdict` followed by its `on_done`.
//! - At most [`Options::park_cap`] targets are parked at once (all hosts together);
//!   when full, the source yields only probes and released targets, and reports not
//!   exhausted. A parked target is not in the engine, so no deadline runs for it.
//! - The host table holds at most [`Options::max_hosts`] signatures beyond the hosts
//!   that still have targets parked or in flight; past that, the least recently used
//!   idle hosts are forgotten (a later target of such a host calibrates it again).
//! - Single-threaded: the two wrappers share state through `Rc<RefCell<_>>`; each
//!   engine (each worker thread) gets its own pair and calibrates the hosts it sees.

use super::table::Shared;
pub use super::table::{host_key, wordlist_word};
use crate::engine::{Handler, Outcome, Request, ResponseHead, Source};
use crate::fingerprint::{Fingerprint, Want};
use std::cell::RefCell;
use std::rc::Rc;

/// Set in every probe's tag (targets' tags must leave it clear).
pub const PROBE_TAG: u64 = 1 << 63;

/// How a run's targets are made, so probes look like them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Each target is a URL of its own (a list): probes are random last path
    /// segments in the directory of the host's first target.
    List,
    /// Targets are `expand(base, word)` and `expand(base, word.ext)`: probes are
    /// random words placed the same way. A `FUZZ` in the scheme or host part makes
    /// each host a list-mode host (the word there names the host, not a path).
    Wordlist {
        /// The base URL.
        base: String,
        /// The extensions (a leading dot is optional).
        exts: Vec<String>,
    },
}

/// Calibration settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target shape.
    pub mode: Mode,
    /// Random words per host ([`super::DEFAULT_WORDS`]).
    pub words: usize,
    /// Fingerprints the inner handler wants in each [`Verdict`] (counts and the
    /// simhash are computed for the verdict anyway).
    pub want: Want,
    /// Targets parked at most, all hosts together (say 10 × concurrency).
    pub park_cap: usize,
    /// Idle host signatures kept at most ([`DEFAULT_MAX_HOSTS`]).
    pub max_hosts: usize,
    /// Seed of the probe words' generator; `None` = from the system's CSPRNG.
    pub seed: Option<u64>,
}

/// Default of [`Options::max_hosts`]: a signature is typically under 1 KiB.
pub const DEFAULT_MAX_HOSTS: usize = 16_384;

impl Options {
    /// The defaults for `mode` and a concurrency of `concurrency`.
    pub fn new(mode: Mode, concurrency: usize) -> Options {
        Options {
            mode,
            words: super::DEFAULT_WORDS,
            want: Want::default(),
            park_cap: concurrency.saturating_mul(10).max(1),
            max_hosts: DEFAULT_MAX_HOSTS,
            seed: None,
        }
    }
}

/// What calibration says about one target's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// `Some(true)`: looks like the host's answer for a missing path; `Some(false)`:
    /// does not (or an error); `None`: the host could not be calibrated (or the
    /// target is not a usable URL).
    pub soft404: Option<bool>,
    /// The final response body's fingerprint (with at least counts and the simhash;
    /// plus [`Options::want`]); `None` when no response head arrived.
    pub fingerprint: Option<Fingerprint>,
}

/// A [`Handler`] that also takes each target's [`Verdict`].
pub trait VerdictHandler: Handler {
    /// The verdict on `tag`'s result, called just before its `on_done`.
    fn on_verdict(&mut self, tag: u64, verdict: Verdict);
}

/// Counters of the calibration work (for diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalibrationStats {
    /// Hosts calibrated (a host forgotten and seen again counts twice).
    pub hosts: u64,
    /// Probes sent.
    pub probes: u64,
    /// Hosts whose probes all failed.
    pub uncalibrated: u64,
}

/// The source half of [`calibrated`].
pub struct CalibratedSource<S> {
    inner: S,
    shared: Rc<RefCell<Shared>>,
}

/// The handler half of [`calibrated`].
pub struct CalibratedHandler<H> {
    inner: H,
    shared: Rc<RefCell<Shared>>,
}

/// Wraps `source` and `handler` for one engine: see the module doc.
pub fn calibrated<S: Source, H: VerdictHandler>(
    source: S,
    handler: H,
    opts: Options,
) -> (CalibratedSource<S>, CalibratedHandler<H>) {
    let shared = Rc::new(RefCell::new(Shared::new(opts)));
    (
        CalibratedSource {
            inner: source,
            shared: shared.clone(),
        },
        CalibratedHandler {
            inner: handler,
            shared,
        },
    )
}

impl<S> CalibratedSource<S> {
    /// Targets parked now (waiting for their host's calibration).
    pub fn parked(&self) -> usize {
        self.shared.borrow().parked
    }

    /// Hosts in the table now (calibrating or calibrated, not yet forgotten).
    pub fn hosts(&self) -> usize {
        self.shared.borrow().hosts()
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Source> Source for CalibratedSource<S> {
    fn next_request(&mut self) -> Option<Request> {
        let mut sh = self.shared.borrow_mut();
        loop {
            if let Some(r) = sh.to_probe.pop_front() {
                return Some(r);
            }
            if let Some(r) = sh.released.pop_front() {
                return Some(r);
            }
            if sh.parked >= sh.opts.park_cap {
                return None;
            }
            let req = self.inner.next_request()?;
            if let Some(r) = sh.admit(req) {
                return Some(r);
            }
        }
    }

    fn is_exhausted(&self) -> bool {
        let sh = self.shared.borrow();
        sh.to_probe.is_empty()
            && sh.released.is_empty()
            && sh.parked == 0
            && self.inner.is_exhausted()
    }
}

impl<H> CalibratedHandler<H> {
    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Gives back the wrapped handler.
    pub fn into_inner(self) -> H {
        self.inner
    }

    /// What calibration has done so far.
    pub fn stats(&self) -> CalibrationStats {
        self.shared.borrow().stats
    }
}

impl<H: VerdictHandler> Handler for CalibratedHandler<H> {
    fn on_head(&mut self, tag: u64, head: &ResponseHead<'_>) {
        if !self.shared.borrow_mut().head(tag) {
            self.inner.on_head(tag, head);
        }
    }

    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        if !self.shared.borrow_mut().body(tag, chunk) {
            self.inner.on_body(tag, chunk);
        }
    }

    /// The wrapped handler's say over its own targets' bodies (pause, abort) is kept;
    /// calibration probes always continue.
    fn on_body_action(&mut self, tag: u64, chunk: &[u8]) -> crate::engine::BodyAction {
        if self.shared.borrow_mut().body(tag, chunk) {
            return crate::engine::BodyAction::Continue;
        }
        self.inner.on_body_action(tag, chunk)
    }

    fn on_done(&mut self, outcome: Outcome) {
        if outcome.tag & PROBE_TAG != 0 {
            self.shared.borrow_mut().probe_done(&outcome);
            return;
        }
        let v = self.shared.borrow_mut().target_done(&outcome);
        self.inner.on_verdict(outcome.tag, v);
        self.inner.on_done(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec(Vec<(u64, Option<bool>)>);
    impl Handler for Rec {
        fn on_done(&mut self, _: Outcome) {}
    }
    impl VerdictHandler for Rec {
        fn on_verdict(&mut self, tag: u64, v: Verdict) {
            self.0.push((tag, v.soft404));
        }
    }

    fn req(tag: u64, url: &str) -> Request {
        Request {
            tag,
            url: url.into(),
            spec: Default::default(),
        }
    }

    fn outcome(tag: u64, status: Option<u16>) -> Outcome {
        let mut o =
            Outcome::new(tag, String::new()).with_urls(String::new(), "http://a.example/x".into());
        o.status = status;
        o.error = status
            .is_none()
            .then(|| crate::Error::new(crate::ErrorKind::ConnectRefused, "refused"));
        o.attempts = 1;
        o
    }

    /// Probes first, targets parked up to the cap, released when the host's probes are
    /// done; a host whose probes all fail gives `None`.
    #[test]
    fn parks_then_releases() {
        let reqs: Vec<Request> = (1..=5)
            .map(|n| req(n, &format!("http://a.example/p{n}")))
            .chain([req(6, "http://b.example/q"), req(7, "::bad")])
            .collect();
        let mut opts = Options::new(Mode::List, 1);
        opts.park_cap = 3;
        opts.seed = Some(7);
        let (mut src, mut h) = calibrated(reqs.into_iter().fuse(), Rec(Vec::new()), opts);
        let mut probes_a = Vec::new();
        for _ in 0..6 {
            let r = src.next_request().expect("a probe");
            assert_ne!(r.tag & PROBE_TAG, 0);
            assert!(r.url.starts_with("http://a.example/"));
            probes_a.push(r.tag);
        }
        // Targets 1..3 parked (the cap), nothing more.
        assert!(src.next_request().is_none());
        assert_eq!(src.parked(), 3);
        assert!(!src.is_exhausted());
        for t in probes_a {
            h.on_done(outcome(t, None));
        }
        assert_eq!(src.parked(), 0);
        let got: Vec<u64> = (0..3).map(|_| src.next_request().unwrap().tag).collect();
        assert_eq!(got, vec![1, 2, 3]);
        // 4 and 5 go straight through: a.example is known now.
        assert_eq!(src.next_request().unwrap().tag, 4);
        assert_eq!(src.next_request().unwrap().tag, 5);
        // b.example: 6 probes, then 6 is parked; the bad URL goes through.
        for _ in 0..6 {
            assert_ne!(src.next_request().unwrap().tag & PROBE_TAG, 0);
        }
        assert_eq!(src.next_request().unwrap().tag, 7);
        assert!(src.next_request().is_none() && !src.is_exhausted());
        for t in [1, 2, 3, 4, 5, 7] {
            h.on_done(outcome(t, None));
        }
        assert!(h.inner().0.iter().all(|&(_, v)| v.is_none()));
        assert_eq!(h.stats().uncalibrated, 1);
        assert_eq!(h.stats().probes, 12);
    }

    #[test]
    fn forgets_idle_hosts_past_the_cap() {
        let reqs: Vec<Request> = (1..=40)
            .map(|n| req(n, &format!("http://h{n}.example/")))
            .collect();
        let mut opts = Options::new(Mode::List, 100);
        opts.max_hosts = 8;
        opts.words = 1;
        let (mut src, mut h) = calibrated(reqs.into_iter().fuse(), Rec(Vec::new()), opts);
        while let Some(r) = src.next_request() {
            h.on_done(outcome(r.tag, None));
            assert!(src.hosts() <= 8);
        }
        assert!(src.is_exhausted());
        assert_eq!(h.inner().0.len(), 40);
    }
}
