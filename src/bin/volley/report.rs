//! `volley report FILE... [--expect N] [--html FILE]`: the summary of one job's
//! JSON Lines outputs (its shards, or a run and its resumes), read together.
//!
//! Invariants: memory is flat in the number of lines — each line is parsed, counted
//! into the shared [`Summary`] and dropped; `n` goes into a bitset (an eighth of a
//! byte per target, never beyond [`MAX_N`]), and a second bitset marks the `n` seen
//! more than once. A line longer than [`MAX_LINE`] is skipped as it streams (never
//! held whole). A line that is not one of volley's result objects is counted as
//! damaged and skipped; nothing in a file can panic the report.
//!
//! Exit status: 0 when every file was read (and, with `--expect N`, every `n` from
//! 1 to N appears exactly once and no other `n` does); 1 when a file cannot be read,
//! the HTML cannot be written, or the check fails; 2 for bad usage.

use crate::bitset::Bits;
use crate::summary::{Record, Summary, PHASES};
use clap::Parser;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

/// Longest line read (a result with many headers fits easily).
pub const MAX_LINE: usize = 1 << 20;
/// Largest `--expect` N: 2^32 (a bitset of 512 MiB at most, and only as far as the
/// `n` found).
pub const MAX_N: u64 = 1 << 32;
/// Largest `n` tracked without `--expect` (16 MiB per bitset at most), so a damaged
/// line claiming a huge `n` cannot make the report allocate much.
pub const MAX_N_UNCHECKED: u64 = 1 << 27;
/// Ranges listed for missing or doubled `n` (the counts are always complete).
const MAX_RANGES: usize = 20;

/// volley report: the summary of JSONL outputs read together.
#[derive(Debug, Parser)]
#[command(name = "volley report", bin_name = "volley report", version)]
struct ReportOpts {
    /// JSON Lines outputs of volley (one job's shards, or a run and its resumes;
    /// `-` is standard input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Check that every n from 1 to N appears exactly once (exit 1 if not).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_N))]
    expect: Option<u64>,
    /// Also write a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// Lines read from one file.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    /// The file as given.
    pub name: String,
    /// Result lines counted.
    pub results: u64,
    /// Lines skipped as damaged.
    pub damaged: u64,
}

/// Everything the report accumulates.
#[derive(Debug, Default)]
pub struct Report {
    /// The shared summary.
    pub summary: Summary,
    /// Per file.
    pub files: Vec<FileStats>,
    /// `--expect N`.
    pub expect: Option<u64>,
    seen: Bits,
    twice: Bits,
    /// Highest `n` seen (within the tracked range).
    pub max_n: u64,
    /// Result lines whose `n` is above `--expect N` (or [`MAX_N_UNCHECKED`]).
    pub beyond: u64,
}

fn us(v: Option<&serde_json::Value>) -> Option<u64> {
    let ms = v?.as_f64()?;
    (ms.is_finite() && (0.0..1e12).contains(&ms)).then(|| (ms * 1000.0).round() as u64)
}

impl Report {
    /// An empty report checking `1..=expect` when given.
    pub fn new(expect: Option<u64>) -> Report {
        Report {
            expect,
            ..Report::default()
        }
    }

    /// Counts one line; false when it is not one of volley's result objects.
    pub fn line(&mut self, line: &[u8]) -> bool {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            return false;
        };
        let Some(n) = v.get("n").and_then(|n| n.as_u64()).filter(|&n| n >= 1) else {
            return false;
        };
        let status = match v.get("status") {
            Some(serde_json::Value::Null) => None,
            // Any numeric status is counted; one that is not a u16 counts as "other".
            Some(s) if s.is_number() => {
                Some(s.as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0))
            }
            _ => return false,
        };
        let error = match v.get("error") {
            Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(e)) => Some(e.as_str()),
            _ => return false,
        };
        let t = v.get("time_ms");
        let times = PHASES.map(|p| us(t.and_then(|t| t.get(p))));
        let url = v.get("url").and_then(|u| u.as_str()).unwrap_or("");
        let soft404 = v.get("soft404").map(|s| s.as_bool());
        self.summary.add(&Record {
            status,
            error,
            times,
            url,
            soft404,
        });
        let cap = self.expect.unwrap_or(MAX_N_UNCHECKED);
        if n > cap {
            self.beyond += 1;
        } else {
            self.max_n = self.max_n.max(n);
            if self.seen.set(n) {
                self.twice.set(n);
            }
        }
        true
    }

    /// Reads one file's lines (streaming; over-long lines skipped as they come).
    pub fn read(&mut self, name: &str, r: impl Read) -> std::io::Result<()> {
        let mut stats = FileStats {
            name: name.to_string(),
            ..FileStats::default()
        };
        let mut r = BufReader::with_capacity(1 << 16, r);
        let mut line = Vec::new();
        loop {
            match read_bounded(&mut r, &mut line)? {
                Line::End => break,
                Line::TooLong => stats.damaged += 1,
                Line::Whole => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if self.line(&line) {
                        stats.results += 1;
                    } else {
                        stats.damaged += 1;
                    }
                }
            }
        }
        self.files.push(stats);
        Ok(())
    }

    /// Lines skipped as damaged, over all files.
    pub fn damaged(&self) -> u64 {
        self.files.iter().map(|f| f.damaged).sum()
    }

    /// The `n` check: (missing runs, total missing runs, missing count), (doubled
    /// runs, total doubled runs, doubled count), checked up to `upto`.
    #[allow(clippy::type_complexity)]
    pub fn check(
        &self,
    ) -> (
        u64,
        (Vec<(u64, u64)>, u64, u64),
        (Vec<(u64, u64)>, u64, u64),
    ) {
        let upto = self.expect.unwrap_or(self.max_n);
        (
            upto,
            self.seen.runs(upto, false, MAX_RANGES),
            self.twice.runs(upto, true, MAX_RANGES),
        )
    }

    /// True when `--expect N` was given and failed.
    pub fn failed(&self) -> bool {
        let (_, missing, doubled) = self.check();
        self.expect.is_some() && (missing.2 > 0 || doubled.2 > 0 || self.beyond > 0)
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let head = format!(
            "{} results from {} file{}",
            self.summary.total,
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" }
        );
        let mut out = self.summary.render("", &head);
        let damaged = self.damaged();
        if damaged > 0 {
            let per: Vec<String> = self
                .files
                .iter()
                .filter(|f| f.damaged > 0)
                .map(|f| format!("{} {}", f.name, f.damaged))
                .collect();
            let _ = writeln!(out, "damaged lines skipped: {damaged} ({})", per.join(", "));
        }
        let (upto, missing, doubled) = self.check();
        let _ = write!(out, "n: {} distinct in 1..{upto}", upto - missing.2);
        if let Some(n) = self.expect {
            let _ = write!(out, " (expected {n})");
        }
        let _ = writeln!(out, ", {} missing, {} doubled", missing.2, doubled.2);
        if self.beyond > 0 {
            let _ = writeln!(
                out,
                "results with n beyond {}: {}",
                self.expect.unwrap_or(MAX_N_UNCHECKED),
                self.beyond
            );
        }
        for (label, (runs, total, _)) in [("missing", &missing), ("doubled", &doubled)] {
            if !runs.is_empty() && (self.expect.is_some() || label == "doubled") {
                let _ = writeln!(out, "{label}: {}", ranges(runs, *total));
            }
        }
        if self.expect.is_some() {
            let verdict = if self.failed() { "FAILED" } else { "ok" };
            let _ = writeln!(out, "check: {verdict}");
        }
        out
    }
}

/// `1-4, 9, 12-20` (and `… (N ranges in all)` when cut).
pub fn ranges(runs: &[(u64, u64)], total: u64) -> String {
    let mut s: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    if total > runs.len() as u64 {
        s.push(format!("… ({total} ranges in all)"));
    }
    s.join(", ")
}

enum Line {
    Whole,
    TooLong,
    End,
}

/// Reads one line into `line` (without its newline), keeping at most [`MAX_LINE`]
/// bytes: a longer line is consumed to its end and reported as `TooLong`.
fn read_bounded(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Whole,
    })
}

/// Runs `volley report` with `args` (the first is `report`); returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let opts = match ReportOpts::try_parse_from(args) {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let mut report = Report::new(opts.expect);
    for path in &opts.files {
        let name = path.display().to_string();
        let result = if name == "-" {
            report.read(&name, std::io::stdin().lock())
        } else {
            std::fs::File::open(path).and_then(|f| report.read(&name, f))
        };
        if let Err(e) = result {
            crate::say(&format!("volley report: cannot read {name}: {e}\n"));
            return 1;
        }
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(report.text().as_bytes())
        .and_then(|()| stdout.flush())
    {
        crate::say(&format!("volley report: cannot write the report: {e}\n"));
        return 1;
    }
    if let Some(h) = &opts.html {
        if let Err(e) = std::fs::write(h, crate::html::page(&report)) {
            crate::say(&format!(
                "volley report: cannot write {}: {e}\n",
                h.display()
            ));
            return 1;
        }
    }
    i32::from(report.failed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(n: u64, status: &str, error: &str, total: &str) -> String {
        format!(
            "{{\"n\":{n},\"input\":\"x\",\"url\":\"http://h{}.test/\",\"status\":{status},\"error\":{error},\"detail\":null,\"length\":null,\"bytes\":0,\"location\":null,\"redirects\":[],\"final_url\":\"x\",\"time_ms\":{{\"dns\":null,\"connect\":0.5,\"tls\":null,\"ttfb\":1.0,\"total\":{total}}},\"attempts\":1}}\n",
            n % 2
        )
    }

    #[test]
    fn counts_checks_and_damage() {
        let mut a = String::new();
        for n in [1, 2, 3, 5, 5, 8] {
            a.push_str(&line(n, "200", "null", "2.5"));
        }
        a.push_str(&line(9, "null", "\"connect_refused\"", "null"));
        a.push_str(&line(10, "777", "null", "1e300"));
        a.push_str("not json\n{\"n\":-1}\n[1,2]\n{\"n\":4,\"status\":\"x\",\"error\":null}\n\n");
        a.push_str("{\"n\":11,\"status\":200,\"err"); // cut short
        let mut r = Report::new(Some(10));
        r.read("a", a.as_bytes()).unwrap();
        assert_eq!(r.summary.total, 8);
        assert_eq!(r.summary.classes[2], 6);
        assert_eq!(r.summary.classes[0], 1);
        assert_eq!(r.summary.errors["connect_refused"], 1);
        assert_eq!(r.damaged(), 5);
        let (upto, missing, doubled) = r.check();
        assert_eq!(upto, 10);
        assert_eq!(missing, (vec![(4, 4), (6, 7)], 2, 3));
        assert_eq!(doubled, (vec![(5, 5)], 1, 1));
        assert!(r.failed());
        let text = r.text();
        assert!(text.contains("missing: 4, 6-7"), "{text}");
        assert!(text.contains("doubled: 5"), "{text}");
        assert!(text.contains("check: FAILED"), "{text}");
        assert!(text.contains("connect_refused: 1"), "{text}");
    }

    #[test]
    fn a_complete_job_passes_and_beyond_fails() {
        let mut r = Report::new(Some(3));
        let body: String = (1..=3).map(|n| line(n, "200", "null", "1")).collect();
        r.read("a", body.as_bytes()).unwrap();
        assert!(!r.failed(), "{}", r.text());
        r.read("b", line(4, "200", "null", "1").as_bytes()).unwrap();
        assert!(r.failed());
        assert_eq!(r.beyond, 1);
    }

    #[test]
    fn over_long_lines_are_skipped_whole() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.push(b'\n');
        data.extend_from_slice(line(1, "200", "null", "1").as_bytes());
        let mut r = Report::new(Some(1));
        r.read("a", &data[..]).unwrap();
        assert_eq!(r.damaged(), 1);
        assert_eq!(r.summary.total, 1);
        assert!(!r.failed());
    }

    #[test]
    fn ranges_are_compact_and_cut() {
        assert_eq!(ranges(&[(1, 4), (9, 9)], 2), "1-4, 9");
        assert_eq!(ranges(&[(1, 1)], 30), "1, … (30 ranges in all)");
    }

    proptest! {
        #[test]
        fn no_line_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut r = Report::new(None);
            r.read("x", &bytes[..]).unwrap();
            let _ = r.text();
            let _ = crate::html::page(&r);
        }
    }
}
