//! Leaving a requested word out of a simhash: the forms a page may echo a word in, and
//! the per-form removal of its tokens, by count, from the bag of tokens.
//!
//! Invariants:
//! - Removal never looks at positions: it counts occurrences of the word's tokens while
//!   streaming, and at the end subtracts, for each form, at most `k` × (count of the
//!   token in that form) occurrences of each token, never more than were seen. So the
//!   removed hash never depends on which occurrence was the echo.
//! - One variant per form: a form whose tokens the page does not hold cannot spoil the
//!   variant of the form it does hold (the caller takes the variant nearest to what it
//!   compares with).

use super::{hex, token_hash, tokens};

/// Most forms of a word ([`word_forms`] makes at most this many).
pub const MAX_FORMS: usize = 12;

/// At most this many distinct tokens (over all forms) are tracked: a word with more is
/// not removed (a guard on the per-token cost; no wordlist word comes near it).
pub const MAX_REMOVED_TOKENS: usize = 32;

/// What a page echoes `k` times, and how `k` is known.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Budget {
    #[default]
    Zero,
    Fixed(u64),
    /// k = occurrences seen of the token at this index of `seen`.
    Anchor(usize),
}

/// Tokens to leave out of the simhash: those of a word, in each form a page may echo it.
///
/// `k` (how many times the page echoes the word) is either given ([`Removal::limited`],
/// for a target, from its host's calibration) or measured on the page itself as the
/// number of occurrences of an *anchor* token that occurs nowhere but in the echo
/// ([`Removal::anchored`], for a calibration page and its random word).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Distinct tokens of every form: (feature hash, occurrences seen in the body).
    seen: Vec<(u64, u64)>,
    /// Each form: (index into `seen`, count in the form).
    forms: Vec<Vec<(usize, u64)>>,
    k: Budget,
}

impl Removal {
    /// Drops nothing.
    pub fn none() -> Removal {
        Removal::default()
    }

    fn of(word: &str, k: Budget) -> Removal {
        let mut r = Removal {
            k,
            ..Removal::default()
        };
        for form in word_forms(word) {
            let mut f: Vec<(usize, u64)> = Vec::new();
            for t in tokens(form.as_bytes()) {
                let i = r.slot(token_hash(t));
                match f.iter_mut().find(|e| e.0 == i) {
                    Some(e) => e.1 += 1,
                    None => f.push((i, 1)),
                }
            }
            f.sort_unstable();
            if !f.is_empty() && !r.forms.contains(&f) {
                r.forms.push(f);
            }
        }
        if r.seen.len() > MAX_REMOVED_TOKENS {
            return Removal::none();
        }
        r
    }

    /// The index of `h` in `seen`, added if new.
    fn slot(&mut self, h: u64) -> usize {
        match self.seen.iter().position(|e| e.0 == h) {
            Some(i) => i,
            None => {
                self.seen.push((h, 0));
                self.seen.len() - 1
            }
        }
    }

    /// Drops, for each form of `word` ([`word_forms`]), at most `k` times each token's
    /// count in that form: for a target's own word, with `k` = how many times its
    /// host's calibration pages echoed their random word.
    pub fn limited(word: &str, k: u64) -> Removal {
        Removal::of(word, Budget::Fixed(k))
    }

    /// As [`Removal::limited`] with `k` = the number of times the token `anchor`
    /// occurs in the body (for a calibration page: `anchor` is the random word, `text`
    /// the echoed text that holds it, such as `dir/anchor`). `anchor` must be a single
    /// token that is one of `text`'s; otherwise nothing is dropped.
    pub fn anchored(text: &str, anchor: &str) -> Removal {
        let mut t = tokens(anchor.as_bytes());
        let (Some(a), None) = (t.next(), t.next()) else {
            return Removal::none();
        };
        let h = token_hash(a);
        if !tokens(text.as_bytes()).any(|t| token_hash(t) == h) {
            return Removal::none();
        }
        let mut r = Removal::of(text, Budget::Zero);
        if r.forms.is_empty() {
            return r;
        }
        // The anchor is tracked even in forms that glue it to a neighbour (`%2Fanchor`).
        r.k = Budget::Anchor(r.slot(h));
        r
    }

    /// True when nothing can be dropped.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty() || matches!(self.k, Budget::Zero | Budget::Fixed(0))
    }

    /// Counts one occurrence of the feature hash `h` if it is one of the word's tokens.
    #[inline]
    pub(super) fn see(&mut self, h: u64) {
        if let Some(e) = self.seen.iter_mut().find(|e| e.0 == h) {
            e.1 += 1;
        }
    }

    /// The echo count `k`.
    pub(super) fn k(&self) -> u64 {
        match self.k {
            Budget::Zero => 0,
            Budget::Fixed(k) => k,
            Budget::Anchor(i) => self.seen.get(i).map_or(0, |e| e.1),
        }
    }

    /// For each form, the (feature hash, occurrences to drop) of its tokens.
    pub(super) fn variants(&self) -> impl Iterator<Item = Vec<(u64, u64)>> + '_ {
        let k = self.k();
        self.forms.iter().map(move |f| {
            f.iter()
                .map(|&(i, n)| (self.seen[i].0, self.seen[i].1.min(n.saturating_mul(k))))
                .filter(|d| d.1 > 0)
                .collect()
        })
    }
}

/// Up to [`MAX_FORMS`] simhashes of one body, one per form of the removed word (the
/// first is for the word as given). With nothing removed: one, the plain simhash.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Variants {
    hashes: [u64; MAX_FORMS],
    len: u8,
}

impl Variants {
    /// One hash.
    pub fn one(h: u64) -> Variants {
        let mut v = Variants::default();
        v.push(h);
        v
    }

    /// Adds a hash (ignored when full or already there).
    pub fn push(&mut self, h: u64) {
        if usize::from(self.len) < MAX_FORMS && !self.as_slice().contains(&h) {
            self.hashes[usize::from(self.len)] = h;
            self.len += 1;
        }
    }

    /// The hashes.
    pub fn as_slice(&self) -> &[u64] {
        &self.hashes[..usize::from(self.len)]
    }

    /// The first (the word as given), if any.
    pub fn first(&self) -> Option<u64> {
        self.as_slice().first().copied()
    }

    /// The smallest Hamming distance between a hash of `self` and one of `other`
    /// (`u32::MAX` when either is empty).
    ///
    /// ```
    /// use volley::fingerprint::Variants;
    /// let mut a = Variants::one(0b1111);
    /// a.push(0b0001);
    /// assert_eq!(a.distance(&Variants::one(0b0011)), 1);
    /// ```
    pub fn distance(&self, other: &Variants) -> u32 {
        let mut best = u32::MAX;
        for &a in self.as_slice() {
            for &b in other.as_slice() {
                best = best.min((a ^ b).count_ones());
            }
        }
        best
    }
}

/// The forms in which a page may echo `word`: as given; percent-decoded (when that
/// is UTF-8); as the `url` crate writes it in a path and in a query (the forms volley
/// sends: WHATWG's percent-encode sets); fully percent-encoded (every byte but ASCII
/// letters, digits and `-._~`); and HTML-escaped (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&#39;`) of each. Duplicates are left out; the order is that one.
///
/// ```
/// use volley::fingerprint::word_forms;
/// assert_eq!(word_forms("a%26b"), ["a%26b", "a&b", "a&amp;b"]);
/// assert_eq!(word_forms("a/b"), ["a/b", "a%2Fb"]);
/// assert_eq!(word_forms("@a>"), ["@a>", "@a%3E", "%40a%3E", "@a&gt;"]);
/// ```
pub fn word_forms(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_string()];
    let decoded = String::from_utf8(percent_decode(word.as_bytes())).ok();
    let plain = decoded.as_deref().unwrap_or(word);
    forms.extend(decoded.clone());
    if let Ok(mut u) = url::Url::parse("http://h/") {
        for w in [word, plain] {
            u.set_path(w);
            forms.push(u.path().trim_start_matches('/').to_string());
            u.set_query(Some(w));
            forms.extend(u.query().map(str::to_string));
        }
    }
    forms.push(percent_encode(plain));
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
    let hexval = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
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
