//! Which results are written: `--match-status` / `--filter-status`.
//!
//! Invariant: filtering decides only what is *written*; every result is counted by
//! the summary before it is asked here. A result without a status (an error before
//! any response) never matches a status list.

use volley::engine::Outcome;

/// A status list like `200-299,301,403`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList(Vec<(u16, u16)>);

impl StatusList {
    /// Parses `LIST`; the error names what is wrong.
    pub fn parse(s: &str) -> Result<StatusList, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let p = |x: &str| {
                x.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| format!("{part:?} is not a status or a range of statuses"))
            };
            let (a, b) = (p(a)?, p(b)?);
            if a > b {
                return Err(format!("{part:?}: range is backwards"));
            }
            v.push((a, b));
        }
        if v.is_empty() {
            return Err("empty status list".into());
        }
        Ok(StatusList(v))
    }

    /// True when `status` is in the list (a result without a status never is).
    pub fn contains(&self, status: Option<u16>) -> bool {
        status.is_some_and(|s| self.0.iter().any(|&(a, b)| (a..=b).contains(&s)))
    }
}

/// The matchers and filters given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Write only results whose status is in this list.
    pub matching: Option<StatusList>,
    /// Write only results whose status is not in this list.
    pub filtering: Option<StatusList>,
}

impl Filters {
    /// True when `o` passes every matcher given and no filter given.
    pub fn passes(&self, o: &Outcome) -> bool {
        self.matching.as_ref().is_none_or(|m| m.contains(o.status))
            && !self
                .filtering
                .as_ref()
                .is_some_and(|f| f.contains(o.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists() {
        let l = StatusList::parse("200-299, 301,403").unwrap();
        assert!(l.contains(Some(204)) && l.contains(Some(301)) && l.contains(Some(403)));
        assert!(!l.contains(Some(302)) && !l.contains(None));
        for bad in ["", "abc", "300-200", "99", "200-", "1000"] {
            assert!(StatusList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn match_and_filter_combine() {
        let o = |status| crate::testutil::outcome(1, status, None);
        let f = Filters {
            matching: Some(StatusList::parse("200-399").unwrap()),
            filtering: Some(StatusList::parse("301").unwrap()),
        };
        assert!(f.passes(&o(Some(200))));
        assert!(!f.passes(&o(Some(301))));
        assert!(!f.passes(&o(Some(404))));
        assert!(!f.passes(&o(None)));
        let only_filter = Filters {
            filtering: Some(StatusList::parse("404").unwrap()),
            ..Filters::default()
        };
        assert!(only_filter.passes(&o(None)) && !only_filter.passes(&o(Some(404))));
        assert!(Filters::default().passes(&o(None)));
    }
}
