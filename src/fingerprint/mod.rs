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

pub mod cert;
mod removal;
pub use removal::{word_forms, Removal, Variants, MAX_FORMS, MAX_REMOVED_TOKENS};

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

/// Per byte: 0 for a separator, else the byte folded (ASCII letters lowercased, ASCII
/// digits as `0`, bytes ≥ 0x80 as they are). One load in the hot loop.
static FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            b'0'
        } else if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else if c >= 0x80 {
            c
        } else {
            0
        };
        b += 1;
    }
    t
};

/// One FNV-1a step over `b` folded: ASCII letters lowercased, ASCII digits as `0`.
#[inline]
fn fnv_step(h: u64, b: u8) -> u64 {
    let f = FOLD[usize::from(b)];
    (h ^ u64::from(if f == 0 { b } else { f })).wrapping_mul(FNV_PRIME)
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
    /// One per form of the removed word: without that form's tokens (for
    /// calibration). Just `all` when nothing is removed.
    pub removed: Variants,
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

    fn end_token(&mut self, h: u64) {
        let f = fmix64(h);
        for (j, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((f >> (8 * j)) & 0xff) as usize];
        }
        self.pending += 1;
        if self.pending == 255 {
            self.flush();
        }
        self.n += 1;
        if !self.removal.is_empty() {
            self.removal.see(f);
        }
    }

    /// Feeds one chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        let (mut h, mut in_token) = (self.h, self.in_token);
        for &b in chunk {
            let f = FOLD[usize::from(b)];
            if f != 0 {
                h = (h ^ u64::from(f)).wrapping_mul(FNV_PRIME);
                in_token = true;
            } else if in_token {
                self.end_token(h);
                h = FNV_OFFSET;
                in_token = false;
            }
        }
        (self.h, self.in_token) = (h, in_token);
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
            self.end_token(self.h);
        }
        self.flush();
        let all = Self::bits(self.ones.iter().copied(), self.n);
        let mut removed = Variants::default();
        for drops in self.removal.variants() {
            let (mut kept, mut n) = (self.ones, self.n);
            for (h, d) in drops {
                // d ≤ occurrences seen of h, each of which added its bits: no underflow.
                for (b, c) in kept.iter_mut().enumerate() {
                    *c -= ((h >> b) & 1) * d;
                }
                n -= d;
            }
            removed.push(Self::bits(kept.into_iter(), n));
        }
        if removed.first().is_none() {
            removed.push(all);
        }
        SimHashes {
            all,
            removed,
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
    /// `removal` says (a removal computes the simhash even if not wanted).
    pub fn with_removal(want: Want, removal: Removal) -> Fingerprinter {
        let sim =
            (want.simhash || removal != Removal::none()).then(|| SimHasher::with_removal(removal));
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
            simhash_removed: sim.map(|s| s.removed).unwrap_or_default(),
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
    /// Simhashes without the removed word's tokens, one per form (empty when no
    /// simhash was computed; just the simhash when nothing was removed).
    pub simhash_removed: Variants,
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
