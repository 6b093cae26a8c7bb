//! The summary's "hosts that pushed back" lines: per host (top 10, most 429/503s
//! first) how many 429/503 it sent, the longest pause volley gave it, and the
//! concurrency it settled at (`docs/politeness.md`).
//!
//! Invariant: nothing is printed when no host pushed back, and at most
//! [`TOP_PUSHERS`] hosts are listed, whatever the run.

use std::fmt::Write;
use volley::engine::HostReport;

/// Hosts listed.
pub const TOP_PUSHERS: usize = 10;

/// The lines for `hosts` (as `Shared::pushed_back` gives them), each starting with
/// `prefix`; empty when the list is.
pub fn render(prefix: &str, hosts: &[HostReport]) -> String {
    let mut out = String::new();
    if hosts.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{prefix}hosts that pushed back    429/503  longest pause  settled at"
    );
    for h in hosts.iter().take(TOP_PUSHERS) {
        let _ = writeln!(
            out,
            "{prefix}  {:<24} {:>8} {:>13.1}s {:>11}",
            h.origin,
            h.pushbacks,
            h.longest_pause.as_secs_f64(),
            h.settled
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(origin: &str, pushbacks: u64, pause_ms: u64, settled: usize) -> HostReport {
        HostReport {
            origin: origin.into(),
            pushbacks,
            longest_pause: Duration::from_millis(pause_ms),
            settled,
            limit: settled + 1,
        }
    }

    #[test]
    fn lines_and_top_ten() {
        assert_eq!(render("volley: ", &[]), "");
        let one = render("volley: ", &[report("http://a.test:80", 12, 1500, 3)]);
        assert_eq!(
            one,
            "volley: hosts that pushed back    429/503  longest pause  settled at\n\
             volley:   http://a.test:80               12           1.5s           3\n"
        );
        let many: Vec<HostReport> = (0..15)
            .map(|i| report(&format!("http://h{i}.test:80"), 20 - i, 100, 1))
            .collect();
        let out = render("", &many);
        assert_eq!(out.lines().count(), 1 + TOP_PUSHERS);
        assert!(out.contains("h9.test") && !out.contains("h10.test"));
    }
}
