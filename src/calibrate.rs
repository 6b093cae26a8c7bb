//! Per-host soft-404 calibration, the pure part: which random URLs to ask a host for,
//! the [`Signature`] its answers make, and the verdict on a target's result. Sans-IO:
//! the engine sends the probes and feeds back what came back. [`adapter`] puts it in
//! front of an engine (a `Source` and a `Handler` wrapper), for the binary and
//! embedders alike.
//!
//! Invariants:
//! - Probes are shaped like the host's targets (same base, same extensions, same
//!   directory) and differ from them only in a random word of 12–16 lowercase letters
//!   and digits drawn from the caller's generator.
//! - A calibration page and a target's page are compared the same way: the simhash
//!   leaves out the requested word's tokens as often as the host echoes the word (see
//!   [`crate::fingerprint::Removal`]), and a Location has the word replaced by
//!   [`PLACEHOLDER`] after being resolved against the request URL, so relative and
//!   absolute redirects compare alike.
//! - [`Signature::judge`] is `None` exactly when every probe failed, otherwise
//!   `Some(true)` when the result matches one of the kept samples by the rule in
//!   `docs/calibration.md`, and `Some(false)` when it matches none.

use crate::fingerprint::{Fingerprint, Fingerprinter, Removal, Variants, Want};
use url::{Position, Url};

pub mod adapter;
mod table;
pub use adapter::{calibrated, CalibratedHandler, CalibratedSource, Verdict, VerdictHandler};

/// Random words per host (each also tried with every `-x` extension).
pub const DEFAULT_WORDS: usize = 3;
/// Shortest random word.
pub const WORD_MIN: usize = 12;
/// Longest random word.
pub const WORD_MAX: usize = 16;
/// A result is near a sample when their simhashes differ in at most this many bits…
pub const HAMMING_THRESHOLD: u32 = 3;
/// …or in at most as many as the host's own calibration pages differ among
/// themselves, up to this cap (see [`Signature`]).
pub const MAX_THRESHOLD: u32 = 5;
/// A result whose word and line counts equal those every sample of its group shares
/// is also a match when its simhash is within this many bits.
pub const COUNTS_THRESHOLD: u32 = 16;
/// Samples kept per host; later ones are ignored.
pub const MAX_SAMPLES: usize = 64;
/// What replaces the requested word in a Location pattern (braces never appear
/// unencoded in a URL path).
pub const PLACEHOLDER: &str = "{WORD}";

/// A random word: 12–16 characters from `a-z0-9`, drawn from `rng` (one call for the
/// length, one per character; the modulo bias of 2⁶⁴ mod 36 is below 10⁻¹⁷).
///
/// ```
/// let mut x = 0u64;
/// let mut rng = || { x = x.wrapping_add(0x9e37_79b9_7f4a_7c15); x };
/// let w = volley::calibrate::random_word(&mut rng);
/// assert!((12..=16).contains(&w.len()));
/// assert!(w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
/// ```
pub fn random_word(rng: &mut impl FnMut() -> u64) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let span = (WORD_MAX - WORD_MIN + 1) as u64;
    let len = WORD_MIN + (rng() % span) as usize;
    (0..len)
        .map(|_| char::from(ALPHABET[(rng() % 36) as usize]))
        .collect()
}

/// The URL for `word` under a wordlist base, by the contract's rule: `FUZZ` replaced,
/// else appended after one `/`.
///
/// ```
/// use volley::calibrate::expand;
/// assert_eq!(expand("http://h/FUZZ.bak", "a"), "http://h/a.bak");
/// assert_eq!(expand("http://h/dir", "a"), "http://h/dir/a");
/// assert_eq!(expand("http://h/", "a"), "http://h/a");
/// ```
pub fn expand(base: &str, word: &str) -> String {
    if base.contains("FUZZ") {
        base.replace("FUZZ", word)
    } else if base.ends_with('/') {
        format!("{base}{}", word.trim_start_matches('/'))
    } else {
        format!("{base}/{}", word.trim_start_matches('/'))
    }
}

/// The word a page echoes for a list-mode URL: its path without the leading `/`
/// (query and fragment left out), as sent (percent-encoded).
///
/// ```
/// let u = url::Url::parse("http://h/a/b.php?x=1").unwrap();
/// assert_eq!(volley::calibrate::list_word(&u), "a/b.php");
/// ```
pub fn list_word(url: &Url) -> &str {
    url.path().trim_start_matches('/')
}

/// What a host's targets look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Wordlist mode: the base URL (with or without `FUZZ`) and the `-x` extensions
    /// (a leading dot is optional).
    Wordlist {
        /// The `-u` base.
        base: String,
        /// The `-x` extensions.
        exts: Vec<String>,
    },
    /// List mode: one of the host's target URLs.
    List {
        /// A target of the host (its first).
        sample: Url,
    },
}

/// One calibration request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The URL to request.
    pub url: String,
    /// The random word in it (one token).
    pub word: String,
    /// The text a page may echo that holds the word: the word itself in wordlist mode
    /// (as for a target, whose word is the wordlist word), the path in list mode (as
    /// for a target, whose word is [`list_word`]).
    pub echo: String,
}

impl Probe {
    /// The fingerprinter for this probe's response body: counts, and the simhash
    /// without the echo.
    pub fn fingerprinter(&self) -> Fingerprinter {
        let want = Want {
            counts: true,
            sha256: false,
            simhash: true,
        };
        Fingerprinter::with_removal(want, Removal::anchored(&self.echo, &self.word))
    }

    /// The observation of this probe's response (see [`Observation::new`]).
    pub fn observe(&self, status: u16, location: Option<&str>, fp: &Fingerprint) -> Observation {
        let base = Url::parse(&self.url).ok();
        Observation::new(status, location, base.as_ref(), &self.echo, fp)
    }
}

/// The calibration probes for a host: `words` random words; in wordlist mode each bare
/// and then with every extension, in order; in list mode each as the last path segment
/// of the sample's directory, bare and with a trailing `/` (query left out).
pub fn probes(shape: &Shape, words: usize, rng: &mut impl FnMut() -> u64) -> Vec<Probe> {
    let mut out = Vec::new();
    for _ in 0..words {
        let w = random_word(rng);
        match shape {
            Shape::Wordlist { base, exts } => {
                let mut push = |url: String| {
                    out.push(Probe {
                        url,
                        word: w.clone(),
                        echo: w.clone(),
                    })
                };
                push(expand(base, &w));
                for e in exts {
                    push(expand(base, &format!("{w}.{}", e.trim_start_matches('.'))));
                }
            }
            Shape::List { sample } => {
                let path = sample.path();
                let dir = match path.trim_end_matches('/').rfind('/') {
                    Some(i) => &path[..=i],
                    None => "/",
                };
                for tail in ["", "/"] {
                    let mut u = sample.clone();
                    u.set_query(None);
                    u.set_fragment(None);
                    u.set_path(&format!("{dir}{w}{tail}"));
                    out.push(Probe {
                        echo: list_word(&u).to_string(),
                        url: u.into(),
                        word: w.clone(),
                    });
                }
            }
        }
    }
    out
}

/// True when `b` is part of a token (see [`crate::fingerprint`]).
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Replaces in `s` every occurrence of each of `word`'s forms that is not part of a
/// longer token, longest form first.
fn replace_word(s: &str, word: &str) -> String {
    let mut forms = crate::fingerprint::word_forms(word);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut s = s.to_string();
    for f in forms {
        let (fb, mut out, mut i) = (f.as_bytes(), String::with_capacity(s.len()), 0);
        let sb = s.as_bytes();
        while let Some(off) = s[i..].find(f.as_str()) {
            let at = i + off;
            let end = at + f.len();
            // A preceding percent-escape (`%2F`) ends a token too.
            let escaped = at >= 3
                && sb[at - 3] == b'%'
                && sb[at - 2].is_ascii_hexdigit()
                && sb[at - 1].is_ascii_hexdigit();
            let left_ok = !token_byte(fb[0]) || at == 0 || !token_byte(sb[at - 1]) || escaped;
            let right_ok = !token_byte(fb[fb.len() - 1]) || end == sb.len() || !token_byte(sb[end]);
            if left_ok && right_ok {
                out.push_str(&s[i..at]);
                out.push_str(PLACEHOLDER);
                i = end;
            } else {
                // Step one character past the start of this occurrence.
                let step = s[at..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&s[i..at + step]);
                i = at + step;
            }
        }
        out.push_str(&s[i..]);
        s = out;
    }
    s
}

/// A Location as a pattern: resolved against the request URL (when there is one and
/// it resolves), then `word` (in any of its forms, where it stands as a whole token)
/// replaced by [`PLACEHOLDER`] after the authority (so a word that is also part of the
/// host name leaves the host alone).
///
/// ```
/// use volley::calibrate::location_pattern;
/// let req = url::Url::parse("http://h/admin").unwrap();
/// assert_eq!(location_pattern("/login?next=/admin", Some(&req), "admin"),
///            "http://h/login?next=/{WORD}");
/// assert_eq!(location_pattern("http://h/account/admin/", Some(&req), "admin"),
///            "http://h/account/{WORD}/");
/// ```
pub fn location_pattern(location: &str, request_url: Option<&Url>, word: &str) -> String {
    let resolved = request_url.and_then(|u| u.join(location.trim()).ok());
    match resolved {
        Some(u) => {
            let (head, tail) = (&u[..Position::BeforePath], &u[Position::BeforePath..]);
            format!("{head}{}", replace_word(tail, word))
        }
        None => replace_word(location.trim(), word),
    }
}

/// What calibration compares of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Status code.
    pub status: u16,
    /// For a 3xx with a Location: its pattern ([`location_pattern`]).
    pub location: Option<String>,
    /// Body bytes read.
    pub length: u64,
    /// ffuf's word count of the body.
    pub words: u64,
    /// ffuf's line count of the body.
    pub lines: u64,
    /// Simhashes of the body without the requested word, one per form of the word
    /// (compared by their nearest pair).
    pub simhash: Variants,
}

impl Observation {
    /// The observation of a response to a request for `request_url` (the URL of the
    /// request that got this response) whose word was `word` (for a target: its
    /// wordlist word, or [`list_word`] in list mode), from a fingerprint made with
    /// counts and a removal ([`Probe::fingerprinter`], [`Signature::fingerprinter`]).
    /// A Location counts only on a 3xx.
    pub fn new(
        status: u16,
        location: Option<&str>,
        request_url: Option<&Url>,
        word: &str,
        fp: &Fingerprint,
    ) -> Observation {
        let location = location
            .filter(|_| (300..400).contains(&status))
            .map(|l| location_pattern(l, request_url, word));
        Observation {
            status,
            location,
            length: fp.length,
            words: fp.words.unwrap_or(0),
            lines: fp.lines.unwrap_or(0),
            simhash: match fp.simhash_removed.first() {
                Some(_) => fp.simhash_removed,
                None => Variants::one(fp.simhash.unwrap_or(0)),
            },
        }
    }
}

/// Collects a host's calibration answers.
#[derive(Debug, Default, Clone)]
pub struct SignatureBuilder {
    samples: Vec<Observation>,
    echoes: u64,
    failed: usize,
}

impl SignatureBuilder {
    /// An empty builder.
    pub fn new() -> SignatureBuilder {
        SignatureBuilder::default()
    }

    /// A probe's response; `echoes` = [`Fingerprint::echoes`] of its body.
    pub fn add(&mut self, obs: Observation, echoes: u64) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(obs);
            self.echoes = self.echoes.max(echoes);
        }
    }

    /// A probe that got no response (any error kind).
    pub fn add_error(&mut self) {
        self.failed += 1;
    }

    /// The host's signature.
    pub fn finish(self) -> Signature {
        let mut groups: Vec<Group> = Vec::new();
        for s in &self.samples {
            match groups
                .iter_mut()
                .find(|g| g.status == s.status && g.location == s.location)
            {
                Some(g) => g.members.push(s.clone()),
                None => groups.push(Group {
                    status: s.status,
                    location: s.location.clone(),
                    members: vec![s.clone()],
                    threshold: HAMMING_THRESHOLD,
                    counts: None,
                }),
            }
        }
        for g in &mut groups {
            g.settle();
        }
        Signature {
            calibrated: !self.samples.is_empty(),
            groups,
            echoes: self.echoes,
            failed: self.failed,
        }
    }
}

/// The samples of one status (and, for a redirect, one Location pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Their status.
    pub status: u16,
    /// Their Location pattern (3xx with a Location only).
    pub location: Option<String>,
    /// The samples.
    pub members: Vec<Observation>,
    /// The Hamming threshold for this group.
    pub threshold: u32,
    /// (words, lines) when at least two samples share them all.
    pub counts: Option<(u64, u64)>,
}

impl Group {
    /// Sets the threshold from the samples' spread and the shared counts.
    fn settle(&mut self) {
        let m = &self.members;
        // For each sample, the distance to its nearest other sample: how far a fresh
        // random path lands from the nearest known one on this host.
        let spread = (0..m.len())
            .filter_map(|i| {
                (0..m.len())
                    .filter(|&j| j != i)
                    .map(|j| m[i].simhash.distance(&m[j].simhash))
                    .min()
            })
            .filter(|&d| d <= MAX_THRESHOLD)
            .max()
            .unwrap_or(0);
        self.threshold = spread.max(HAMMING_THRESHOLD);
        let first = (m[0].words, m[0].lines);
        self.counts =
            (m.len() >= 2 && m.iter().all(|s| (s.words, s.lines) == first)).then_some(first);
    }

    /// True when `obs` matches this group.
    pub fn matches(&self, obs: &Observation) -> bool {
        if obs.status != self.status {
            return false;
        }
        match (&self.location, &obs.location) {
            (Some(p), Some(l)) => return p == l,
            (None, None) => {}
            _ => return false,
        }
        let nearest = self
            .members
            .iter()
            .map(|s| s.simhash.distance(&obs.simhash))
            .min()
            .unwrap_or(u32::MAX);
        nearest <= self.threshold
            || (self.counts == Some((obs.words, obs.lines)) && nearest <= COUNTS_THRESHOLD)
    }
}

/// What a host answers for paths that do not exist.
///
/// Samples are grouped by status and, for a 3xx with a Location, by Location pattern;
/// a host whose probes disagree (a 404 for bare words but a 200 page for `.php`, or
/// two alternating pages) simply has several groups, and a result matching any group
/// is a soft-404. See `docs/calibration.md` for the rule and its thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    calibrated: bool,
    groups: Vec<Group>,
    echoes: u64,
    failed: usize,
}

impl Signature {
    /// The verdict on a target's result: `None` when every probe failed, else whether
    /// it matches one of the groups.
    pub fn judge(&self, obs: &Observation) -> Option<bool> {
        self.calibrated
            .then(|| self.groups.iter().any(|g| g.matches(obs)))
    }

    /// The verdict on a target that got no response: `None` when every probe failed,
    /// else `false` (an error is never a soft-404).
    pub fn judge_error(&self) -> Option<bool> {
        self.calibrated.then_some(false)
    }

    /// The fingerprinter for a target's body whose word is `word` (see
    /// [`Observation::new`]); `want` adds what the output asks for.
    pub fn fingerprinter(&self, want: Want, word: &str) -> Fingerprinter {
        let want = Want {
            counts: true,
            simhash: true,
            ..want
        };
        Fingerprinter::with_removal(want, Removal::limited(word, self.echoes))
    }

    /// False when every probe failed.
    pub fn is_calibrated(&self) -> bool {
        self.calibrated
    }

    /// How many times the host's pages echo the requested word (the most seen).
    pub fn echoes(&self) -> u64 {
        self.echoes
    }

    /// Probes that failed.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// The groups (for diagnostics and docs).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
}
