//! Calibration in front of the engine: a [`Source`] wrapper and a [`Handler`] wrapper
//! that share one per-host table, so the engine knows nothing of calibration.
//!
//! [`calibrated`] wraps a source and a handler. For each scheme/host/port, the source
//! wrapper yields that host's calibration probes ([`super::probes`]) before any of its
//! targets and *parks* the host's targets until the probes' outcomes have arrived;
//! the handler wrapper routes probe outcomes (and their `on_head`/`on_body`, for
//! fingerprints) to the host's [`SignatureBuilder`], and hands every target's result
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

use super::{list_word, probes, Observation, Probe, Shape, Signature, SignatureBuilder};
use crate::engine::{Handler, Outcome, Request, ResponseHead, Source};
use crate::fingerprint::{Fingerprint, Fingerprinter, Want};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use url::Url;

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

enum HostState {
    /// Probes outstanding; the host's targets parked meanwhile.
    Calibrating {
        builder: SignatureBuilder,
        outstanding: usize,
        parked: Vec<Request>,
    },
    Ready(Rc<Signature>),
}

struct Host {
    state: HostState,
    /// Targets parked, queued or in flight.
    pending: usize,
    /// Last use (a counter), for forgetting idle hosts.
    used: u64,
}

struct ProbeFlight {
    host: String,
    probe: Probe,
    fp: Option<Fingerprinter>,
}

struct TargetFlight {
    host: Option<String>,
    sig: Option<Rc<Signature>>,
    word: String,
    fp: Option<Fingerprinter>,
}

struct Shared {
    opts: Options,
    /// Does `FUZZ` stand in the scheme/host part of the wordlist base?
    host_fuzz: bool,
    rng: u64,
    hosts: HashMap<String, Host>,
    probes: HashMap<u64, ProbeFlight>,
    targets: HashMap<u64, TargetFlight>,
    /// Probes to send, first.
    to_probe: VecDeque<Request>,
    /// Targets whose host is calibrated, to send next.
    released: VecDeque<Request>,
    parked: usize,
    next_probe: u64,
    clock: u64,
    stats: CalibrationStats,
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
    let host_fuzz = match &opts.mode {
        Mode::Wordlist { base, .. } => fuzz_in_authority(base),
        Mode::List => false,
    };
    let seed = opts.seed.unwrap_or_else(system_seed);
    let shared = Rc::new(RefCell::new(Shared {
        opts,
        host_fuzz,
        rng: seed,
        hosts: HashMap::new(),
        probes: HashMap::new(),
        targets: HashMap::new(),
        to_probe: VecDeque::new(),
        released: VecDeque::new(),
        parked: 0,
        next_probe: 0,
        clock: 0,
        stats: CalibrationStats::default(),
    }));
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

/// A seed from the system's CSPRNG (ring), or the clock if that fails.
fn system_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64),
    }
}

/// True when `FUZZ` occurs before the path of `base` (in its scheme or authority).
fn fuzz_in_authority(base: &str) -> bool {
    let Some(at) = base.find("FUZZ") else {
        return false;
    };
    let rest = base.find("://").map_or(0, |i| i + 3);
    let path = base[rest..].find('/').map_or(base.len(), |i| rest + i);
    at < path
}

/// `scheme://host:port` of a request URL, parsed as the engine does (`http://` in
/// front when there is no `://`); `None` for an unusable URL.
pub fn host_key(url: &str) -> Option<(String, Url)> {
    let t = crate::target::Target::parse(url).ok()?;
    let key = format!("{}://{}:{}", t.url.scheme(), t.host(), t.port);
    Some((key, t.url))
}

/// The word of a wordlist target: `url` with the base's text around `FUZZ` (or the
/// base and its `/`) taken off, and a trailing `.ext` of one of `exts` too.
pub fn wordlist_word(base: &str, exts: &[String], url: &str) -> String {
    let word = match base.split_once("FUZZ") {
        Some((pre, post)) => {
            let rest = url.strip_prefix(pre).unwrap_or(url);
            // The literal text up to the next FUZZ (or all of it) ends the word.
            let lit = post.split("FUZZ").next().unwrap_or("");
            if lit.is_empty() {
                rest
            } else if post.contains("FUZZ") {
                rest.find(lit).map_or(rest, |i| &rest[..i])
            } else {
                rest.strip_suffix(lit).unwrap_or(rest)
            }
        }
        None => {
            let pre = if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            };
            url.strip_prefix(pre.as_str()).unwrap_or(url)
        }
    };
    for e in exts {
        let e = e.trim_start_matches('.');
        if let Some(w) = word
            .strip_suffix(e)
            .and_then(|w| w.strip_suffix('.'))
            .filter(|w| !w.is_empty())
        {
            return w.to_string();
        }
    }
    word.to_string()
}

impl Shared {
    fn next_u64(&mut self) -> u64 {
        // splitmix64: the seed is secret, the words need only look random.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The shape of `url`'s host and the word of `url`.
    fn shape_and_word(&self, url: &Url, raw: &str) -> (Shape, String) {
        match &self.opts.mode {
            Mode::Wordlist { base, exts } if !self.host_fuzz => (
                Shape::Wordlist {
                    base: base.clone(),
                    exts: exts.clone(),
                },
                wordlist_word(base, exts, raw),
            ),
            _ => (
                Shape::List {
                    sample: url.clone(),
                },
                list_word(url).to_string(),
            ),
        }
    }

    fn word_of(&self, url: &Url, raw: &str) -> String {
        match &self.opts.mode {
            Mode::Wordlist { base, exts } if !self.host_fuzz => wordlist_word(base, exts, raw),
            _ => list_word(url).to_string(),
        }
    }

    /// Takes a target from the inner source: sends it on (returned), or parks it
    /// (and queues its host's probes when the host is new).
    fn admit(&mut self, req: Request) -> Option<Request> {
        debug_assert_eq!(
            req.tag & PROBE_TAG,
            0,
            "target tags must leave PROBE_TAG clear"
        );
        let Some((key, url)) = host_key(&req.url) else {
            self.targets.insert(
                req.tag,
                TargetFlight {
                    host: None,
                    sig: None,
                    word: String::new(),
                    fp: None,
                },
            );
            return Some(req);
        };
        self.clock += 1;
        let clock = self.clock;
        if !self.hosts.contains_key(&key) {
            self.forget_idle();
            let (shape, _) = self.shape_and_word(&url, &req.url);
            let words = self.opts.words;
            let ps = {
                let mut rng = || self.next_u64();
                probes(&shape, words, &mut rng)
            };
            self.stats.hosts += 1;
            self.stats.probes += ps.len() as u64;
            let n = ps.len();
            for p in ps {
                let tag = PROBE_TAG | self.next_probe;
                self.next_probe = (self.next_probe + 1) & !PROBE_TAG;
                self.to_probe.push_back(Request {
                    tag,
                    url: p.url.clone(),
                    spec: req.spec.clone(),
                });
                self.probes.insert(
                    tag,
                    ProbeFlight {
                        host: key.clone(),
                        probe: p,
                        fp: None,
                    },
                );
            }
            let state = if n == 0 {
                HostState::Ready(Rc::new(SignatureBuilder::new().finish()))
            } else {
                HostState::Calibrating {
                    builder: SignatureBuilder::new(),
                    outstanding: n,
                    parked: Vec::new(),
                }
            };
            self.hosts.insert(
                key.clone(),
                Host {
                    state,
                    pending: 0,
                    used: clock,
                },
            );
        }
        let word = self.word_of(&url, &req.url);
        let host = self.hosts.get_mut(&key).expect("inserted above");
        host.pending += 1;
        host.used = clock;
        match &mut host.state {
            HostState::Ready(sig) => {
                let sig = sig.clone();
                self.targets.insert(
                    req.tag,
                    TargetFlight {
                        host: Some(key),
                        sig: Some(sig),
                        word,
                        fp: None,
                    },
                );
                Some(req)
            }
            HostState::Calibrating { parked, .. } => {
                self.targets.insert(
                    req.tag,
                    TargetFlight {
                        host: Some(key),
                        sig: None,
                        word,
                        fp: None,
                    },
                );
                parked.push(req);
                self.parked += 1;
                None
            }
        }
    }

    /// Forgets the least recently used hosts with nothing pending when the table is
    /// full (a quarter of the cap at once, so the cost is amortized).
    fn forget_idle(&mut self) {
        let cap = self.opts.max_hosts.max(1);
        if self.hosts.len() < cap {
            return;
        }
        let mut idle: Vec<(u64, String)> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.pending == 0 && matches!(h.state, HostState::Ready(_)))
            .map(|(k, h)| (h.used, k.clone()))
            .collect();
        idle.sort_unstable();
        for (_, k) in idle.into_iter().take(cap / 4 + 1) {
            self.hosts.remove(&k);
        }
    }

    /// A probe finished: into its host's builder; the last one releases the host.
    fn probe_done(&mut self, o: &Outcome) {
        let Some(pf) = self.probes.remove(&o.tag) else {
            return;
        };
        let Some(host) = self.hosts.get_mut(&pf.host) else {
            return;
        };
        let HostState::Calibrating {
            builder,
            outstanding,
            parked,
        } = &mut host.state
        else {
            return;
        };
        match (o.error.is_none(), o.status, pf.fp) {
            (true, Some(status), fp) => {
                let fp = fp.unwrap_or_else(|| pf.probe.fingerprinter()).finish();
                builder.add(
                    pf.probe.observe(status, o.location.as_deref(), &fp),
                    fp.echoes,
                );
            }
            _ => builder.add_error(),
        }
        *outstanding -= 1;
        if *outstanding > 0 {
            return;
        }
        let sig = Rc::new(std::mem::take(builder).finish());
        if !sig.is_calibrated() {
            self.stats.uncalibrated += 1;
        }
        let parked = std::mem::take(parked);
        self.parked -= parked.len();
        for r in &parked {
            if let Some(t) = self.targets.get_mut(&r.tag) {
                t.sig = Some(sig.clone());
            }
        }
        self.released.extend(parked);
        host.state = HostState::Ready(sig);
    }

    /// A target finished: its verdict.
    fn target_done(&mut self, o: &Outcome) -> Verdict {
        let Some(t) = self.targets.remove(&o.tag) else {
            return Verdict {
                soft404: None,
                fingerprint: None,
            };
        };
        if let Some(h) = t.host.as_ref().and_then(|k| self.hosts.get_mut(k)) {
            h.pending = h.pending.saturating_sub(1);
        }
        let fingerprint = match (o.status, t.fp) {
            (Some(_), Some(f)) => Some(f.finish()),
            (Some(_), None) => Some(self.target_fingerprinter(&t.sig, &t.word).finish()),
            (None, _) => None,
        };
        let soft404 = match (&t.sig, o.status, &fingerprint) {
            (None, _, _) => None,
            (Some(sig), Some(status), Some(fp)) if o.error.is_none() => {
                let base = Url::parse(&o.final_url).ok();
                sig.judge(&Observation::new(
                    status,
                    o.location.as_deref(),
                    base.as_ref(),
                    &t.word,
                    fp,
                ))
            }
            (Some(sig), _, _) => sig.judge_error(),
        };
        Verdict {
            soft404,
            fingerprint,
        }
    }

    fn target_fingerprinter(&self, sig: &Option<Rc<Signature>>, word: &str) -> Fingerprinter {
        match sig {
            Some(s) => s.fingerprinter(self.opts.want, word),
            None => Fingerprinter::new(self.opts.want),
        }
    }
}

impl<S> CalibratedSource<S> {
    /// Targets parked now (waiting for their host's calibration).
    pub fn parked(&self) -> usize {
        self.shared.borrow().parked
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
        {
            let mut guard = self.shared.borrow_mut();
            let sh = &mut *guard;
            if tag & PROBE_TAG != 0 {
                if let Some(p) = sh.probes.get_mut(&tag) {
                    // A fresh one: a retried attempt starts its body again.
                    p.fp = Some(p.probe.fingerprinter());
                }
                return;
            }
            if let Some(t) = sh.targets.get_mut(&tag) {
                let f = match &t.sig {
                    Some(s) => s.fingerprinter(sh.opts.want, &t.word),
                    None => Fingerprinter::new(sh.opts.want),
                };
                t.fp = Some(f);
            }
        }
        self.inner.on_head(tag, head);
    }

    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        {
            let mut sh = self.shared.borrow_mut();
            if tag & PROBE_TAG != 0 {
                if let Some(f) = sh.probes.get_mut(&tag).and_then(|p| p.fp.as_mut()) {
                    f.update(chunk);
                }
                return;
            }
            if let Some(f) = sh.targets.get_mut(&tag).and_then(|t| t.fp.as_mut()) {
                f.update(chunk);
            }
        }
        self.inner.on_body(tag, chunk);
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

    #[test]
    fn fuzz_position() {
        assert!(fuzz_in_authority("http://FUZZ.example/"));
        assert!(fuzz_in_authority("FUZZ://h/"));
        assert!(!fuzz_in_authority("http://h/FUZZ"));
        assert!(!fuzz_in_authority("http://h/"));
        assert!(fuzz_in_authority("FUZZ.example"));
    }

    #[test]
    fn words_of_wordlist_targets() {
        let exts = vec!["php".to_string(), ".html".to_string()];
        let w = |base: &str, url: &str| wordlist_word(base, &exts, url);
        assert_eq!(w("http://h/", "http://h/admin"), "admin");
        assert_eq!(w("http://h", "http://h/admin.php"), "admin");
        assert_eq!(w("http://h/d/", "http://h/d/a.b.html"), "a.b");
        assert_eq!(w("http://h/FUZZ.bak", "http://h/x.bak"), "x");
        assert_eq!(w("http://h/FUZZ/FUZZ", "http://h/x/x"), "x");
        assert_eq!(w("http://h/?q=FUZZ", "http://h/?q=x.php"), "x");
        assert_eq!(w("http://h/", "http://h/.php"), ".php");
    }

    #[test]
    fn host_keys() {
        let k = |u: &str| host_key(u).map(|x| x.0);
        assert_eq!(k("h.example/a"), Some("http://h.example:80".into()));
        assert_eq!(
            k("https://H.example:8443/x"),
            Some("https://h.example:8443".into())
        );
        assert_eq!(k("[::1]:8080/x"), Some("http://::1:8080".into()));
        assert_eq!(k("ftp://h/"), None);
    }

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
        Outcome {
            tag,
            input: String::new(),
            url: String::new(),
            final_url: "http://a.example/x".into(),
            status,
            error: status
                .is_none()
                .then(|| crate::Error::new(crate::ErrorKind::ConnectRefused, "refused")),
            content_length: None,
            bytes: 0,
            capped: false,
            location: None,
            redirects: Vec::new(),
            timings: Default::default(),
            attempts: 1,
            peer: None,
            tls: None,
        }
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
            assert!(src.shared.borrow().hosts.len() <= 8);
        }
        assert!(src.is_exhausted());
        assert_eq!(h.inner().0.len(), 40);
    }
}
