//! Which results are written: the matchers and filters (`--match-*` / `--filter-*`
//! for status, size, words, lines and a regex) and `--filter-calibrated`.
//!
//! The rule (the contract's): a result is written when it passes **every** matcher
//! given (each kind is a condition; all of them must hold — ffuf's `-mmode and`) and
//! **no** filter given (any one filter that holds drops it — ffuf's `-fmode or`). A
//! kind's list holds when the result's value is in one of its numbers or ranges.
//!
//! Invariants: filtering decides only what is *written*; every result is counted by
//! the summary before it is asked here. A value a result does not have (no status, no
//! body read because no response arrived) is in no list: such a result never passes a
//! matcher on it and is never dropped by a filter on it.

use regex::bytes::Regex;
use volley::engine::Outcome;

/// A list of numbers and ranges like `200-299,301,403` or `0-100,5000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Parses `LIST` of values in `min..=max`; the error names what is wrong.
    fn parse_in(s: &str, min: u64, max: u64, what: &str) -> Result<Ranges, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let p = |x: &str| {
                x.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|c| (min..=max).contains(c))
                    .ok_or_else(|| format!("{part:?} is not a {what} or a range of them"))
            };
            let (a, b) = (p(a)?, p(b)?);
            if a > b {
                return Err(format!("{part:?}: range is backwards"));
            }
            v.push((a, b));
        }
        if v.is_empty() {
            return Err(format!("empty {what} list"));
        }
        Ok(Ranges(v))
    }

    /// A status list (100–999).
    pub fn status(s: &str) -> Result<Ranges, String> {
        Ranges::parse_in(s, 100, 999, "status")
    }

    /// A list of counts (sizes, words, lines).
    pub fn count(s: &str) -> Result<Ranges, String> {
        Ranges::parse_in(s, 0, u64::MAX, "number")
    }

    /// True when `v` is in the list (a missing value never is).
    pub fn contains(&self, v: Option<u64>) -> bool {
        v.is_some_and(|v| self.0.iter().any(|&(a, b)| (a..=b).contains(&v)))
    }
}

/// Parses a `--match-regex`/`--filter-regex` pattern.
pub fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| e.to_string())
}

/// One kind's conditions: status, size, words, lines, regex.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Status in this list.
    pub status: Option<Ranges>,
    /// Body bytes read in this list.
    pub size: Option<Ranges>,
    /// Words (ffuf's count) in this list.
    pub words: Option<Ranges>,
    /// Lines (ffuf's count) in this list.
    pub lines: Option<Ranges>,
    /// The response head or body read matches this.
    pub regex: Option<Regex>,
}

/// What the conditions are checked against, beyond the outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen<'a> {
    /// Words and lines of the body read (when a response arrived).
    pub counts: Option<(u64, u64)>,
    /// The response head as `name: value\r\n` lines, then `\r\n` and the body read
    /// (when a response arrived and a regex is given).
    pub text: Option<&'a [u8]>,
}

impl Conditions {
    /// Each condition given, as a result of this outcome (in a fixed order).
    fn each<'s>(&'s self, o: &'s Outcome, s: Seen<'s>) -> impl Iterator<Item = bool> + 's {
        let size = o.status.map(|_| o.bytes);
        [
            self.status
                .as_ref()
                .map(|l| l.contains(o.status.map(u64::from))),
            self.size.as_ref().map(|l| l.contains(size)),
            self.words
                .as_ref()
                .map(|l| l.contains(s.counts.map(|c| c.0))),
            self.lines
                .as_ref()
                .map(|l| l.contains(s.counts.map(|c| c.1))),
            self.regex
                .as_ref()
                .map(|r| s.text.is_some_and(|t| r.is_match(t))),
        ]
        .into_iter()
        .flatten()
    }

    /// True when word or line counts are needed.
    pub fn needs_counts(&self) -> bool {
        self.words.is_some() || self.lines.is_some()
    }
}

/// The matchers and filters given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Every one given must hold.
    pub matching: Conditions,
    /// None given may hold.
    pub filtering: Conditions,
    /// `--filter-calibrated`: drop results with `soft404: true`.
    pub calibrated: bool,
}

impl Filters {
    /// True when `o` passes every matcher given and no filter given (and, with
    /// `--filter-calibrated`, is not a soft-404).
    pub fn passes(&self, o: &Outcome, s: Seen<'_>, soft404: Option<bool>) -> bool {
        !(self.calibrated && soft404 == Some(true))
            && self.matching.each(o, s).all(|x| x)
            && !self.filtering.each(o, s).any(|x| x)
    }

    /// True when word or line counts are needed.
    pub fn needs_counts(&self) -> bool {
        self.matching.needs_counts() || self.filtering.needs_counts()
    }

    /// True when the head and body text are needed (a regex is given).
    pub fn needs_text(&self) -> bool {
        self.matching.regex.is_some() || self.filtering.regex.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists() {
        let l = Ranges::status("200-299, 301,403").unwrap();
        assert!(l.contains(Some(204)) && l.contains(Some(301)) && l.contains(Some(403)));
        assert!(!l.contains(Some(302)) && !l.contains(None));
        for bad in ["", "abc", "300-200", "99", "200-", "1000"] {
            assert!(Ranges::status(bad).is_err(), "{bad}");
        }
        let c = Ranges::count("0,10-20").unwrap();
        assert!(c.contains(Some(0)) && c.contains(Some(15)) && !c.contains(Some(9)));
        assert!(Ranges::count("-1").is_err() && Ranges::count("x").is_err());
    }

    fn o(status: Option<u16>, bytes: u64) -> Outcome {
        let mut o = crate::testutil::outcome(1, status, None);
        o.bytes = bytes;
        o
    }

    #[test]
    fn match_and_filter_combine() {
        let f = Filters {
            matching: Conditions {
                status: Some(Ranges::status("200-399").unwrap()),
                ..Conditions::default()
            },
            filtering: Conditions {
                status: Some(Ranges::status("301").unwrap()),
                ..Conditions::default()
            },
            calibrated: false,
        };
        let s = Seen::default();
        assert!(f.passes(&o(Some(200), 0), s, None));
        assert!(!f.passes(&o(Some(301), 0), s, None));
        assert!(!f.passes(&o(Some(404), 0), s, None));
        assert!(!f.passes(&o(None, 0), s, None));
        let only_filter = Filters {
            filtering: Conditions {
                status: Some(Ranges::status("404").unwrap()),
                ..Conditions::default()
            },
            ..Filters::default()
        };
        assert!(only_filter.passes(&o(None, 0), s, None));
        assert!(!only_filter.passes(&o(Some(404), 0), s, None));
        assert!(Filters::default().passes(&o(None, 0), s, None));
    }

    /// Every matcher kind must hold; any filter kind drops.
    #[test]
    fn every_matcher_and_no_filter() {
        let m = Filters {
            matching: Conditions {
                status: Some(Ranges::status("200").unwrap()),
                size: Some(Ranges::count("10-20").unwrap()),
                words: Some(Ranges::count("3").unwrap()),
                regex: Some(parse_regex("admin").unwrap()),
                ..Conditions::default()
            },
            ..Filters::default()
        };
        let text: &[u8] = b"server: x\r\n\r\nthe admin page";
        let good = Seen {
            counts: Some((3, 1)),
            text: Some(text),
        };
        assert!(m.passes(&o(Some(200), 15), good, None));
        assert!(!m.passes(&o(Some(200), 25), good, None));
        assert!(!m.passes(&o(Some(201), 15), good, None));
        let few = Seen {
            counts: Some((2, 1)),
            ..good
        };
        assert!(!m.passes(&o(Some(200), 15), few, None));
        let other = Seen {
            text: Some(b"login"),
            ..good
        };
        assert!(!m.passes(&o(Some(200), 15), other, None));
        let f = Filters {
            filtering: Conditions {
                lines: Some(Ranges::count("1").unwrap()),
                regex: Some(parse_regex("(?i)not found").unwrap()),
                ..Conditions::default()
            },
            calibrated: true,
            ..Filters::default()
        };
        assert!(!f.passes(&o(Some(200), 15), good, None), "lines 1");
        let two = Seen {
            counts: Some((3, 2)),
            text: Some(b"hello"),
        };
        assert!(f.passes(&o(Some(200), 15), two, None));
        assert!(f.passes(&o(Some(200), 15), two, Some(false)));
        assert!(f.passes(&o(Some(200), 15), two, None));
        assert!(!f.passes(&o(Some(200), 15), two, Some(true)));
        let nf = Seen {
            text: Some(b"Page Not Found"),
            ..two
        };
        assert!(!f.passes(&o(Some(200), 15), nf, None));
        // No response: no counts, no text: filters cannot drop it.
        assert!(f.passes(&o(None, 0), Seen::default(), None));
    }
}
