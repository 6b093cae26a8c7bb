//! `--resume FILE`: which targets an earlier run already answered.
//!
//! FILE is the JSON Lines output of an earlier run with the same input and options.
//! Every whole line that starts like one of ours (`{"n":N,"input":`, ending in `}`)
//! adds its `n` to a set of ranges; other lines (damaged, foreign, garbage) are
//! skipped, and a last line cut short by a crash is cut off, so appending starts on a
//! fresh line.
//!
//! Invariants: nothing is allocated from what a line claims. The set holds runs of
//! consecutive `n` (a run's output, nearly in order, is a few runs however long it
//! is), so its memory follows the number of lines in FILE, never the size of an `n`;
//! an `n` beyond the input is simply never asked about. A line is read with at most
//! [`KEEP`] bytes kept, so a huge line costs no memory either.

use crate::input::read_line;
use std::collections::BTreeMap;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

/// Bytes of a line kept to find its `n`: `{"n":` + 20 digits + `,"input":`.
const KEEP: usize = 64;

/// The set of `n` already done, as runs `start..=end` keyed by start; runs never
/// touch or overlap.
#[derive(Debug, Default, Clone)]
pub struct Done(BTreeMap<u64, u64>);

impl Done {
    /// True when target `n` has a result already.
    pub fn contains(&self, n: u64) -> bool {
        self.0.range(..=n).next_back().is_some_and(|(_, &e)| e >= n)
    }

    fn insert(&mut self, n: u64) {
        let below = self.0.range(..=n).next_back().map(|(&s, &e)| (s, e));
        if below.is_some_and(|(_, e)| e >= n) {
            return;
        }
        let next_start = n.checked_add(1);
        let above = next_start.and_then(|s| self.0.remove(&s).map(|e| (s, e)));
        let end = above.map_or(n, |(_, e)| e);
        match below {
            Some((s, e)) if e.checked_add(1) == Some(n) => {
                self.0.insert(s, end);
            }
            _ => {
                self.0.insert(n, end);
            }
        }
    }

    /// How many targets are done.
    pub fn len(&self) -> u64 {
        self.0.iter().fold(0u64, |acc, (&s, &e)| {
            acc.saturating_add(e - s).saturating_add(1)
        })
    }

    /// Runs held (for tests of the memory bound).
    #[cfg(test)]
    fn runs(&self) -> usize {
        self.0.len()
    }
}

/// The `n` of one of our JSON lines, from its first bytes (`{"n":123,"input":`).
fn n_of(head: &[u8]) -> Option<u64> {
    let rest = head.strip_prefix(b"{\"n\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || !rest[digits..].starts_with(b",\"input\":") {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Reads FILE (a missing file is an empty one) and cuts a partial last line.
pub fn load(path: &Path) -> std::io::Result<Done> {
    let mut done = Done::default();
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    let mut whole = 0u64;
    {
        let mut r = BufReader::with_capacity(1 << 16, &mut f);
        let mut head = Vec::with_capacity(KEEP);
        while let Some(read) = read_line(&mut r, &mut head, KEEP)? {
            if !read.newline {
                break;
            }
            whole += read.len + 1;
            if read.last == Some(b'}') {
                if let Some(x) = n_of(&head) {
                    done.insert(x);
                }
            }
        }
    }
    if f.seek(SeekFrom::End(0))? != whole {
        f.set_len(whole)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("volley-resume-{name}-{}", std::process::id()))
    }

    #[test]
    fn parses_and_cuts_partial_line() {
        let p = temp("partial");
        std::fs::write(
            &p,
            "{\"n\":3,\"input\":1}\nnot json\n{\"n\":70,\"input\":2}\n{\"n\":9,\"x\"",
        )
        .unwrap();
        let d = load(&p).unwrap();
        assert!(d.contains(3) && d.contains(70) && !d.contains(9) && !d.contains(4));
        assert_eq!(d.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"n\":3,\"input\":1}\nnot json\n{\"n\":70,\"input\":2}\n"
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(load(&p).unwrap().len(), 0);
    }

    #[test]
    fn hostile_claims_cost_nothing() {
        let p = temp("hostile");
        let mut text = String::new();
        for line in [
            "{\"n\":9999999999999999999,\"input\":\"x\"}",
            "{\"n\":18446744073709551615,\"input\":\"x\"}",
            "{\"n\":18446744073709551616,\"input\":\"x\"}",
            "{\"n\":99999999999999999999999,\"input\":\"x\"}",
            "{\"n\":-1,\"input\":\"x\"}",
            "{\"n\":5,\"input\":\"x\"",
            "{\"n\":6}",
            "{\"n\":,\"input\":\"x\"}",
            "\u{0}\u{1}garbage{\"n\":7,\"input\":\"x\"}",
            "{\"n\":2,\"input\":\"ok\"}",
        ] {
            text.push_str(line);
            text.push('\n');
        }
        // A long line of ours (its end far past what is kept) still counts.
        text.push_str(&format!(
            "{{\"n\":4,\"input\":\"{}\"}}\n",
            "a".repeat(1 << 20)
        ));
        std::fs::write(&p, &text).unwrap();
        let d = load(&p).unwrap();
        assert!(d.contains(2) && d.contains(4) && d.contains(9999999999999999999));
        assert!(d.contains(u64::MAX));
        for n in [0, 1, 3, 5, 6, 7, 8, 1 << 40] {
            assert!(!d.contains(n), "{n}");
        }
        assert_eq!((d.len(), d.runs()), (4, 4));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            text,
            "whole lines kept"
        );
        std::fs::remove_file(&p).unwrap();
    }

    proptest! {
        /// The runs answer exactly as a plain set of the inserted numbers, and stay
        /// disjoint and non-adjacent.
        #[test]
        fn runs_match_a_set(ns in proptest::collection::vec(
            prop_oneof![0u64..200, Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()], 0..300)
        ) {
            let mut d = Done::default();
            let mut model = std::collections::BTreeSet::new();
            for &n in &ns {
                d.insert(n);
                model.insert(n);
            }
            for probe in (0u64..205).chain([u64::MAX, u64::MAX - 1, u64::MAX - 2]).chain(ns.iter().copied()) {
                prop_assert_eq!(d.contains(probe), model.contains(&probe), "{}", probe);
            }
            prop_assert_eq!(d.len(), model.len() as u64);
            let runs: Vec<(u64, u64)> = d.0.iter().map(|(&s, &e)| (s, e)).collect();
            for w in runs.windows(2) {
                prop_assert!(w[0].1.checked_add(1).is_some_and(|x| x < w[1].0));
            }
            prop_assert!(runs.iter().all(|&(s, e)| s <= e));
        }

        /// Lines of a run in nearly any order become one run.
        #[test]
        fn a_whole_run_is_one_run(ns in Just((1u64..=500).collect::<Vec<u64>>()).prop_shuffle()) {
            let mut d = Done::default();
            for &n in &ns {
                d.insert(n);
            }
            prop_assert_eq!(d.runs(), 1);
            prop_assert_eq!(d.len(), 500);
        }
    }
}
