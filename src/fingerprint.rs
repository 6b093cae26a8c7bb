//! Response body fingerprints, computed incrementally as body chunks arrive: ffuf-style
//! word and line counts, SHA-256, and a 64-bit simhash (with a variant that leaves
//! given words out, for soft-404 calibration). Sans-IO: bytes in, numbers out.
//!
//! Invariants:
//! - Every result is independent of how the body was split into chunks: feeding
//!   `a` then `b` gives exactly what feeding `a ++ b` gives (property-tested).
//! - Memory per response is constant: a token that crosses a chunk boundary is carried
//!   as the running state of its hash (8 bytes), never as bytes; the simhash keeps 64
//!   counters; SHA-256 keeps ring's fixed-size context. Nothing grows with the body.
//! - Only what was asked for is computed ([`Want`]): no per-byte work otherwise.
//!
//! Definitions (see `docs/calibration.md`):
//! - `words` = number of `' '` bytes + 1 and `lines` = number of `'\n'` bytes + 1,
//!   exactly ffuf's `len(strings.Split(body, " "))` and `len(strings.Split(body, "\n"))`
//!   (so an empty body has 1 word and 1 line, and `-fw`/`-fl` numbers carry over from
//!   ffuf unchanged).
//! - simhash *tokens* are maximal runs of ASCII letters and digits and of bytes
//!   ≥ 0x80 (so UTF-8 words stay whole); everything else separates tokens. Each token,
//!   folded (ASCII letters lowercased, every ASCII digit read as `0`, so dates,
//!   counters and sizes in a page do not move its hash), is hashed with 64-bit FNV-1a followed by MurmurHash3's `fmix64`
//!   finalizer (FNV-1a alone mixes short inputs poorly into the high bits). Each
//!   occurrence adds +1 to the counters of its hash's set bits and −1 to the others
//!   (weight = count); bit `b` of the simhash is set when counter `b` is positive. An
//!   empty body (no tokens) has simhash 0.

use ring::digest;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// True for bytes that belong to a simhash token.
#[inline]
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// One FNV-1a step over `b` folded: ASCII letters lowercased, ASCII digits as `0`.
#[inline]
fn fnv_step(h: u64, b: u8) -> u64 {
    let b = if b.is_ascii_digit() {
        b'0'
    } else {
        b.to_ascii_lowercase()
    };
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// The feature hash of one token (its bytes folded: ASCII lowercase, digits as `0`),
/// as the simhash uses it.
///
/// ```
/// use volley::fingerprint::token_hash;
/// assert_eq!(token_hash(b"Admin"), token_hash(b"admin"));
/// assert_eq!(token_hash(b"2026"), token_hash(b"1999"));
/// assert_ne!(token_hash(b"admin"), token_hash(b"login"));
/// ```
pub fn token_hash(token: &[u8]) -> u64 {
    fmix64(token.iter().fold(FNV_OFFSET, |h, &b| fnv_step(h, b)))
}

/// Splits `bytes` into simhash tokens (see the module doc).
pub fn tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| !is_token_byte(b))
        .filter(|t| !t.is_empty())
}

/// Number of bits that differ between two simhashes (0..=64).
///
/// ```
/// assert_eq!(volley::fingerprint::hamming(0b1011, 0b0001), 2);
/// ```
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// A simhash as the output writes it: 16 lowercase hex digits.
///
/// ```
/// assert_eq!(volley::fingerprint::simhash_hex(0xab), "00000000000000ab");
/// ```
pub fn simhash_hex(h: u64) -> String {
    format!("{h:016x}")
}

/// Bytes as lowercase hex (for `body_sha256`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// ffuf's word and line counts, fed incrementally.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    spaces: u64,
    newlines: u64,
}

impl Counts {
    /// Counts the separators in one chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        // Branch-free sums over blocks of ≤ 255 bytes in u8 lanes: vectorizes.
        for block in chunk.chunks(255) {
            let (mut sp, mut nl) = (0u8, 0u8);
            for &b in block {
                sp += u8::from(b == b' ');
                nl += u8::from(b == b'\n');
            }
            self.spaces += u64::from(sp);
            self.newlines += u64::from(nl);
        }
    }

    /// `' '` bytes + 1, as ffuf counts words.
    pub fn words(&self) -> u64 {
        self.spaces + 1
    }

    /// `'\n'` bytes + 1, as ffuf counts lines.
    pub fn lines(&self) -> u64 {
        self.newlines + 1
    }
}

/// Tokens to leave out of the simhash: the feature hashes of a word's tokens (in the
/// forms a page may echo it), each dropped at most `k` times its count in the word.
///
/// Dropping works on the *bag* of tokens, so dropping one occurrence of `p` from a page
/// that echoes the word `p` once among six `<p>` tags leaves exactly the page without
/// the echo, whichever occurrence was the echoed one. `k` (how many times the page
/// echoes the word) is either given ([`Removal::limited`], for a target, from its
/// host's calibration) or measured on the page itself as the number of occurrences of
/// an *anchor* token that occurs nowhere but in the echo ([`Removal::anchored`], for a
/// calibration page and its random word). Occurrences are counted while streaming and
/// subtracted at the end, so which occurrence is the echo never matters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    /// (feature hash, count in the word, occurrences seen in the body).
    entries: Vec<(u64, u64, u64)>,
    k: Budget,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Budget {
    #[default]
    Zero,
    Fixed(u64),
    /// k = occurrences seen of this token.
    Anchor(u64),
}

/// At most this many distinct tokens are dropped: a word with more drops nothing
/// (a guard on the per-token cost; no wordlist word comes near it).
pub const MAX_REMOVED_TOKENS: usize = 16;

impl Removal {
    /// Drops nothing.
    pub fn none() -> Removal {
        Removal::default()
    }

    fn of(word: &str, k: Budget) -> Removal {
        let mut entries: Vec<(u64, u64, u64)> = Vec::new();
        for form in word_forms(word) {
            let mut in_form: Vec<(u64, u64)> = Vec::new();
            for t in tokens(form.as_bytes()) {
                let h = token_hash(t);
                match in_form.iter_mut().find(|e| e.0 == h) {
                    Some(e) => e.1 += 1,
                    None => in_form.push((h, 1)),
                }
            }
            for (h, n) in in_form {
                match entries.iter_mut().find(|e| e.0 == h) {
                    Some(e) => e.1 = e.1.max(n),
                    None => entries.push((h, n, 0)),
                }
            }
        }
        if entries.len() > MAX_REMOVED_TOKENS {
            entries.clear();
        }
        Removal { entries, k }
    }

    /// Drops, of each token of `word`'s forms ([`word_forms`]), at most `k` times its
    /// count in the form that holds it most: for a target's own word, with `k` = how
    /// many times its host's calibration pages echoed their random word.
    pub fn limited(word: &str, k: u64) -> Removal {
        Removal::of(word, Budget::Fixed(k))
    }

    /// As [`Removal::limited`] with `k` = the number of times the token `anchor`
    /// occurs in the body (for a calibration page: `anchor` is the random word, `text`
    /// the whole echoed text that holds it, such as `dir/anchor`). `anchor` must be one
    /// token and one of `text`'s; otherwise nothing is dropped.
    pub fn anchored(text: &str, anchor: &str) -> Removal {
        let mut t = tokens(anchor.as_bytes());
        let (Some(a), None) = (t.next(), t.next()) else {
            return Removal::none();
        };
        let h = token_hash(a);
        let r = Removal::of(text, Budget::Anchor(h));
        if r.entries.iter().any(|e| e.0 == h) {
            r
        } else {
            Removal::none()
        }
    }

    /// True when nothing is dropped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() || self.k == Budget::Zero || self.k == Budget::Fixed(0)
    }

    /// Counts one occurrence of `h` if it is one of the word's tokens.
    #[inline]
    fn see(&mut self, h: u64) {
        for e in &mut self.entries {
            if e.0 == h {
                e.2 += 1;
                return;
            }
        }
    }

    /// The echo count `k`.
    fn k(&self) -> u64 {
        match self.k {
            Budget::Zero => 0,
            Budget::Fixed(k) => k,
            Budget::Anchor(h) => self.entries.iter().find(|e| e.0 == h).map_or(0, |e| e.2),
        }
    }

    /// (feature hash, occurrences to drop) for each token seen.
    fn drops(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let k = self.k();
        self.entries
            .iter()
            .map(move |e| (e.0, e.2.min(e.1.saturating_mul(k))))
            .filter(|d| d.1 > 0)
    }
}

/// The forms in which a page may echo `word`: as given, percent-decoded (when that
/// is UTF-8), percent-encoded (every byte but ASCII letters, digits and `-._~`), and
/// HTML-escaped (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`) of each. Duplicates are
/// left out; the order is that one.
///
/// ```
/// let f = volley::fingerprint::word_forms("a%26b");
/// assert_eq!(f, ["a%26b", "a&b", "a&amp;b"]);
/// assert_eq!(volley::fingerprint::word_forms("a/b"), ["a/b", "a%2Fb"]);
/// ```
pub fn word_forms(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_string()];
    if let Ok(d) = String::from_utf8(percent_decode(word.as_bytes())) {
        forms.push(d);
    }
    let encoded = percent_encode(forms.last().map_or(word, |f| f.as_str()));
    forms.push(encoded);
    let escaped: Vec<String> = forms.iter().map(|f| html_escape(f)).collect();
    forms.extend(escaped);
    let mut out: Vec<String> = Vec::new();
    for f in forms {
        if !f.is_empty() && !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hexval = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hexval(s[i + 1]), hexval(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex(&[b]).to_ascii_uppercase());
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `SPREAD[x]` has byte `k` = bit `k` of `x`: adds a byte's 8 bits to 8 byte counters.
static SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut x = 0;
    while x < 256 {
        let mut k = 0;
        while k < 8 {
            if (x >> k) & 1 == 1 {
                t[x] |= 1 << (8 * k);
            }
            k += 1;
        }
        x += 1;
    }
    t
};

/// The simhashes of a body: of every token, and without the dropped ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimHashes {
    /// Over every token (the `simhash` output key).
    pub all: u64,
    /// Without the tokens the [`Removal`] dropped (for calibration).
    pub removed: u64,
    /// How many times the page echoed the removed word (`k` of the [`Removal`]).
    pub echoes: u64,
}

/// An incremental 64-bit simhash (see the module doc for the definition).
///
/// ```
/// use volley::fingerprint::{hamming, SimHasher};
/// let page = |t: &str| {
///     let mut s = SimHasher::new();
///     s.update(format!("<html><body><h1>Welcome</h1><p>Today is {t}. Enjoy \
///         the news, the weather and the sports pages of our little site.</p> \
///         <footer>contact us about anything at all</footer></body></html>").as_bytes());
///     s.finish().all
/// };
/// assert!(hamming(page("Monday"), page("Tuesday")) <= 12);
/// ```
#[derive(Debug, Clone)]
pub struct SimHasher {
    /// Per bit: how many token occurrences had it set (up to the last flush).
    ones: [u64; 64],
    /// The same since the last flush, as 64 byte-wide counters: byte `k` of `lanes[j]`
    /// counts bit `8j + k`. One token costs 8 table lookups and adds, not 64.
    lanes: [u64; 8],
    /// Tokens added to `lanes` since the last flush (flushed at 255: no byte overflows).
    pending: u32,
    /// Token occurrences counted.
    n: u64,
    /// FNV-1a state of the token in progress (carried across chunks).
    h: u64,
    in_token: bool,
    removal: Removal,
}

impl Default for SimHasher {
    fn default() -> Self {
        SimHasher::new()
    }
}

impl SimHasher {
    /// A hasher that drops nothing.
    pub fn new() -> SimHasher {
        SimHasher::with_removal(Removal::none())
    }

    /// A hasher whose `removed` hash leaves out what `removal` says.
    pub fn with_removal(removal: Removal) -> SimHasher {
        SimHasher {
            ones: [0; 64],
            lanes: [0; 8],
            pending: 0,
            n: 0,
            h: FNV_OFFSET,
            in_token: false,
            removal,
        }
    }

    fn flush(&mut self) {
        for (j, lane) in self.lanes.iter_mut().enumerate() {
            for k in 0..8 {
                self.ones[8 * j + k] += (*lane >> (8 * k)) & 0xff;
            }
            *lane = 0;
        }
        self.pending = 0;
    }

    fn end_token(&mut self) {
        let f = fmix64(self.h);
        for (j, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((f >> (8 * j)) & 0xff) as usize];
        }
        self.pending += 1;
        if self.pending == 255 {
            self.flush();
        }
        self.n += 1;
        if !self.removal.entries.is_empty() {
            self.removal.see(f);
        }
        self.h = FNV_OFFSET;
        self.in_token = false;
    }

    /// Feeds one chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if is_token_byte(b) {
                self.h = fnv_step(self.h, b);
                self.in_token = true;
            } else if self.in_token {
                self.end_token();
            }
        }
    }

    fn bits(ones: impl Iterator<Item = u64>, n: u64) -> u64 {
        let mut out = 0u64;
        for (b, c) in ones.enumerate() {
            // Counter = ones − (n − ones) > 0.
            if c.saturating_mul(2) > n {
                out |= 1 << b;
            }
        }
        out
    }

    /// Ends the body (a token running to the end counts) and returns the hashes.
    pub fn finish(mut self) -> SimHashes {
        if self.in_token {
            self.end_token();
        }
        self.flush();
        let all = Self::bits(self.ones.iter().copied(), self.n);
        let (mut kept, mut n) = (self.ones, self.n);
        for (h, d) in self.removal.drops() {
            // d ≤ occurrences seen of h, each of which added its bits: no underflow.
            for (b, c) in kept.iter_mut().enumerate() {
                *c -= ((h >> b) & 1) * d;
            }
            n -= d;
        }
        SimHashes {
            all,
            removed: Self::bits(kept.into_iter(), n),
            echoes: self.removal.k(),
        }
    }
}

/// The simhash of a whole body in one call.
///
/// ```
/// use volley::fingerprint::simhash;
/// assert_eq!(simhash(b""), 0);
/// assert_eq!(simhash(b"Not Found"), simhash(b"not   found\n"));
/// ```
pub fn simhash(body: &[u8]) -> u64 {
    let mut s = SimHasher::new();
    s.update(body);
    s.finish().all
}

/// Which fingerprints to compute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// `words` and `lines` (`--counts`).
    pub counts: bool,
    /// `body_sha256` (`--hash`).
    pub sha256: bool,
    /// `simhash` (`--hash`, and calibration).
    pub simhash: bool,
}

impl Want {
    /// True when nothing is asked for: the caller need not feed the body at all.
    pub fn is_empty(&self) -> bool {
        !(self.counts || self.sha256 || self.simhash)
    }
}

/// Everything about one body, fed chunk by chunk.
///
/// ```
/// use volley::fingerprint::{Fingerprinter, Want};
/// let mut f = Fingerprinter::new(Want { counts: true, sha256: true, simhash: true });
/// f.update(b"hello wo");
/// f.update(b"rld\n");
/// let fp = f.finish();
/// assert_eq!((fp.length, fp.words, fp.lines), (12, Some(2), Some(2)));
/// assert_eq!(fp.sha256_hex().unwrap().len(), 64);
/// ```
pub struct Fingerprinter {
    length: u64,
    counts: Option<Counts>,
    sha: Option<digest::Context>,
    sim: Option<SimHasher>,
}

impl Fingerprinter {
    /// Computes what `want` asks for; the simhash drops nothing.
    pub fn new(want: Want) -> Fingerprinter {
        Fingerprinter::with_removal(want, Removal::none())
    }

    /// As [`Fingerprinter::new`], and [`Fingerprint::simhash_removed`] leaves out what
    /// `removal` says (a non-empty removal computes the simhash even if not wanted).
    pub fn with_removal(want: Want, removal: Removal) -> Fingerprinter {
        let sim = (want.simhash || !removal.is_empty()).then(|| SimHasher::with_removal(removal));
        Fingerprinter {
            length: 0,
            counts: want.counts.then(Counts::default),
            sha: want.sha256.then(|| digest::Context::new(&digest::SHA256)),
            sim,
        }
    }

    /// Feeds one chunk of the (decoded) body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.length += chunk.len() as u64;
        if let Some(c) = &mut self.counts {
            c.update(chunk);
        }
        if let Some(s) = &mut self.sha {
            s.update(chunk);
        }
        if let Some(s) = &mut self.sim {
            s.update(chunk);
        }
    }

    /// Ends the body.
    pub fn finish(self) -> Fingerprint {
        let sim = self.sim.map(SimHasher::finish);
        Fingerprint {
            length: self.length,
            words: self.counts.map(|c| c.words()),
            lines: self.counts.map(|c| c.lines()),
            sha256: self.sha.map(|s| {
                let mut out = [0u8; 32];
                out.copy_from_slice(s.finish().as_ref());
                out
            }),
            simhash: sim.map(|s| s.all),
            simhash_removed: sim.map(|s| s.removed),
            echoes: sim.map_or(0, |s| s.echoes),
        }
    }
}

/// The fingerprints of one body; `None` for what was not asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Body bytes fed.
    pub length: u64,
    /// ffuf's word count.
    pub words: Option<u64>,
    /// ffuf's line count.
    pub lines: Option<u64>,
    /// SHA-256 of the body.
    pub sha256: Option<[u8; 32]>,
    /// Simhash over every token.
    pub simhash: Option<u64>,
    /// Simhash without the removed word's tokens.
    pub simhash_removed: Option<u64>,
    /// How many times the page echoed the removed word (0 without a removal).
    pub echoes: u64,
}

impl Fingerprint {
    /// `body_sha256` as the output writes it.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.as_ref().map(|d| hex(d))
    }

    /// `simhash` as the output writes it.
    pub fn simhash_hex(&self) -> Option<String> {
        self.simhash.map(simhash_hex)
    }
}
