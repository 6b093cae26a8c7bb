//! The hosts with the most errors, by the space-saving algorithm (Metwally et al.,
//! 2005): at most [`CAPACITY`] counters whatever the number of hosts. A host that
//! truly has more than total/CAPACITY errors is always kept; a count may
//! overestimate by at most the `over` it was given when it replaced another.

/// Counters kept.
pub const CAPACITY: usize = 64;
/// Longest host name kept (longer ones are cut; names are at most 253 anyway).
const MAX_NAME: usize = 255;

/// One monitored host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The host.
    pub host: String,
    /// Its count (an upper bound).
    pub count: u64,
    /// By how much `count` may overestimate.
    pub over: u64,
}

/// A bounded top-k sketch.
#[derive(Debug, Clone, Default)]
pub struct TopK {
    entries: Vec<Entry>,
}

impl TopK {
    /// Counts `n` more for `host`.
    pub fn add(&mut self, host: &str, n: u64) {
        self.add_entry(host, n, 0);
    }

    fn add_entry(&mut self, host: &str, n: u64, over: u64) {
        let host = cut(host);
        if let Some(e) = self.entries.iter_mut().find(|e| e.host == host) {
            e.count += n;
            e.over += over;
        } else if self.entries.len() < CAPACITY {
            self.entries.push(Entry {
                host: host.to_string(),
                count: n,
                over,
            });
        } else if let Some(min) = self.entries.iter_mut().min_by_key(|e| e.count) {
            *min = Entry {
                host: host.to_string(),
                count: min.count + n,
                over: min.count + over,
            };
        }
    }

    /// Adds another sketch's counters (the result is a sketch of both streams:
    /// counts stay upper bounds and `count - over` lower bounds).
    pub fn merge(&mut self, o: &TopK) {
        for e in &o.entries {
            self.add_entry(&e.host, e.count, e.over);
        }
    }

    /// The `k` hosts with the highest counts, highest first (ties by name).
    pub fn top(&self, k: usize) -> Vec<Entry> {
        let mut v = self.entries.clone();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.host.cmp(&b.host)));
        v.truncate(k);
        v
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_NAME {
        return s;
    }
    let mut i = MAX_NAME;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// The host of a URL as written in a result line (`scheme://[user@]host[:port]/…`),
/// lower-cased; `None` when there is none to be found (no `scheme://`).
pub fn host_of(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = if let Some(v6) = auth.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        auth.split(':').next()?
    };
    (!host.is_empty()).then(|| super::printable(cut(host)).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("http://A.com:80/x").as_deref(), Some("a.com"));
        assert_eq!(host_of("https://u:p@h/x?y").as_deref(), Some("h"));
        assert_eq!(host_of("http://[::1]:8080/").as_deref(), Some("::1"));
        assert_eq!(host_of("not a url"), None);
        assert_eq!(host_of("http:///x"), None);
    }

    #[test]
    fn heavy_hitters_survive_a_long_tail() {
        let mut t = TopK::default();
        for i in 0..10_000u64 {
            t.add(&format!("tail{i}"), 1);
            if i % 4 == 0 {
                t.add("heavy", 1);
            }
        }
        let top = t.top(3);
        assert_eq!(top[0].host, "heavy");
        assert!(top[0].count >= 2500 && top[0].count - top[0].over <= 2500);
        assert!(t.entries.len() <= CAPACITY);
    }

    proptest! {
        #[test]
        fn counts_bound_the_truth(hosts in proptest::collection::vec(0u8..200, 0..2000)) {
            let mut t = TopK::default();
            let mut truth = std::collections::HashMap::new();
            for h in &hosts {
                t.add(&h.to_string(), 1);
                *truth.entry(h.to_string()).or_insert(0u64) += 1;
            }
            prop_assert!(t.entries.len() <= CAPACITY);
            for e in t.top(CAPACITY) {
                let real = truth[&e.host];
                prop_assert!(e.count >= real && e.count - e.over <= real);
            }
            // Anyone above total/CAPACITY is kept.
            for (h, &c) in &truth {
                if c > hosts.len() as u64 / CAPACITY as u64 {
                    prop_assert!(t.entries.iter().any(|e| &e.host == h), "{} lost", h);
                }
            }
        }
    }
}
