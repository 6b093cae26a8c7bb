//! The calibration adapter's shared state: the per-host table (calibrating, with its
//! parked targets, or ready with its [`Signature`]), the probes and targets in
//! flight with their body fingerprinters, and the queues the source wrapper yields
//! from. See [`super::adapter`] for the invariants it keeps.

use super::adapter::{CalibrationStats, Mode, Options, Verdict, PROBE_TAG};
use super::{list_word, probes, Observation, Probe, Shape, Signature, SignatureBuilder};
use crate::engine::{Outcome, Request};
use crate::fingerprint::Fingerprinter;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use url::Url;

/// Where a host is in its calibration.
enum HostState {
    /// Probes outstanding; the host's targets parked meanwhile.
    Calibrating {
        builder: SignatureBuilder,
        outstanding: usize,
        parked: Vec<Request>,
    },
    /// Calibrated (or every probe failed): the signature its targets are judged by.
    Ready(Rc<Signature>),
}

/// One scheme/host/port.
struct Host {
    state: HostState,
    /// Targets parked, queued or in flight.
    pending: usize,
    /// Last use (a counter), for forgetting idle hosts.
    used: u64,
}

/// A probe in flight: its host and its body's fingerprinter (from its head on).
struct ProbeFlight {
    host: String,
    probe: Probe,
    fp: Option<Fingerprinter>,
}

/// A target parked or in flight: its host's signature (once known), its word, and
/// its body's fingerprinter (from its head on).
struct TargetFlight {
    host: Option<String>,
    sig: Option<Rc<Signature>>,
    word: String,
    fp: Option<Fingerprinter>,
}

/// The state both wrappers share (see the module doc).
pub(super) struct Shared {
    pub(super) opts: Options,
    /// Does `FUZZ` stand in the scheme/host part of the wordlist base?
    host_fuzz: bool,
    rng: u64,
    hosts: HashMap<String, Host>,
    probes: HashMap<u64, ProbeFlight>,
    targets: HashMap<u64, TargetFlight>,
    /// Probes to send, first.
    pub(super) to_probe: VecDeque<Request>,
    /// Targets whose host is calibrated, to send next.
    pub(super) released: VecDeque<Request>,
    pub(super) parked: usize,
    next_probe: u64,
    clock: u64,
    pub(super) stats: CalibrationStats,
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
    let key = format!("{}://{}:{}", t.scheme(), t.host(), t.port);
    Some((key, t.to_url().ok()?))
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
    /// The state for `opts`.
    pub(super) fn new(opts: Options) -> Shared {
        let host_fuzz = match &opts.mode {
            Mode::Wordlist { base, .. } => fuzz_in_authority(base),
            Mode::List => false,
        };
        let seed = opts.seed.unwrap_or_else(system_seed);
        Shared {
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
        }
    }

    /// Hosts in the table now.
    pub(super) fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// A response head for `tag`: a fresh fingerprinter for its body (a retried
    /// attempt starts over). True when `tag` is a probe's.
    pub(super) fn head(&mut self, tag: u64) -> bool {
        if tag & PROBE_TAG != 0 {
            if let Some(p) = self.probes.get_mut(&tag) {
                p.fp = Some(p.probe.fingerprinter());
            }
            return true;
        }
        if let Some(t) = self.targets.get_mut(&tag) {
            t.fp = Some(match &t.sig {
                Some(s) => s.fingerprinter(self.opts.want, &t.word),
                None => Fingerprinter::new(self.opts.want),
            });
        }
        false
    }

    /// A body chunk for `tag`. True when `tag` is a probe's.
    pub(super) fn body(&mut self, tag: u64, chunk: &[u8]) -> bool {
        if tag & PROBE_TAG != 0 {
            if let Some(f) = self.probes.get_mut(&tag).and_then(|p| p.fp.as_mut()) {
                f.update(chunk);
            }
            return true;
        }
        if let Some(f) = self.targets.get_mut(&tag).and_then(|t| t.fp.as_mut()) {
            f.update(chunk);
        }
        false
    }

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
    pub(super) fn admit(&mut self, req: Request) -> Option<Request> {
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
    pub(super) fn probe_done(&mut self, o: &Outcome) {
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
    pub(super) fn target_done(&mut self, o: &Outcome) -> Verdict {
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
                let base = Url::parse(o.final_url()).ok();
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
}
