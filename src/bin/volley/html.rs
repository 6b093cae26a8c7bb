//! `volley report --html FILE`: one self-contained page — tables, and inline SVG
//! plots (a latency histogram per phase, the status and error breakdown). No
//! JavaScript, no external resource of any kind; every text from the input files is
//! escaped, so a hostile line cannot inject markup.

use crate::report::{ranges, Report};
use crate::summary::{coarse_bins, dur, ms, PHASES};
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:right}\
td:first-child,th:first-child{text-align:left}.bad{color:#b00}.ok{color:#070}\
svg text{font:11px sans-serif;fill:#333}h2{margin-top:1.5em}";

/// A bar chart of `bars` (label, value) as inline SVG, `title` for screen readers.
fn bar_chart(title: &str, bars: &[(String, u64)], color: &str) -> String {
    let (w, h, pad) = (640.0, 180.0, 24.0);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let slot = (w - 2.0 * pad) / bars.len().max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        h + 2.0 * pad,
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        pad + h,
        w - pad,
        pad + h
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let bh = h * (*v as f64) / max;
        let x = pad + slot * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{}: {v}</title></rect>",
            x + slot * 0.1,
            pad + h - bh,
            slot * 0.8,
            esc(label)
        );
        if *v > 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v}</text>",
                x + slot / 2.0,
                pad + h - bh - 3.0
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x + slot / 2.0,
            pad + h + 14.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn page(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>volley report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        o,
        "<h1>volley report</h1><p>{} results from {} files; {} damaged lines skipped.</p>",
        s.total,
        r.files.len(),
        r.damaged()
    );
    // Results by status class and error kind.
    let mut rows: Vec<(String, u64)> = Vec::new();
    for (i, &c) in s.classes.iter().enumerate().skip(1) {
        if c > 0 {
            rows.push((format!("{i}xx"), c));
        }
    }
    if s.classes[0] > 0 {
        rows.push(("other".into(), s.classes[0]));
    }
    rows.extend(s.errors.iter().map(|(k, &c)| (k.clone(), c)));
    o.push_str("<h2>Results</h2>");
    if !rows.is_empty() {
        o.push_str(&bar_chart(
            "results by status class and error kind",
            &rows,
            "#4a7bb7",
        ));
    }
    o.push_str("<table><tr><th>status class / error</th><th>results</th><th>share</th></tr>");
    for (k, c) in &rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{c}</td><td>{:.1} %</td></tr>",
            esc(k),
            100.0 * *c as f64 / s.total.max(1) as f64
        );
    }
    let _ = write!(
        o,
        "<tr><th>all</th><th>{}</th><th></th></tr></table>",
        s.total
    );
    // Time per phase.
    o.push_str("<h2>Time per phase (ms)</h2><table><tr><th>phase</th><th>p50</th><th>p90</th><th>p99</th><th>results</th></tr>");
    for (name, h) in PHASES.iter().zip(&s.phases) {
        let q = |p| h.quantile(p).map_or("–".to_string(), ms);
        let _ = write!(
            o,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            q(0.5),
            q(0.9),
            q(0.99),
            h.count()
        );
    }
    o.push_str("</table>");
    for (name, h) in PHASES.iter().zip(&s.phases) {
        let bins = coarse_bins(h);
        if bins.is_empty() {
            continue;
        }
        let bars: Vec<(String, u64)> = bins.iter().map(|&(lo, _, c)| (dur(lo), c)).collect();
        let _ = write!(
            o,
            "<h3>{name}</h3><p>Each bar counts the results from its label up to the next one.</p>"
        );
        o.push_str(&bar_chart(
            &format!("{name} time histogram"),
            &bars,
            "#6a9f58",
        ));
    }
    // Hosts with most errors.
    let top = s.hosts.top(10);
    if !top.is_empty() {
        o.push_str("<h2>Hosts with the most errors</h2><table><tr><th>host</th><th>errors (at most)</th></tr>");
        for e in top {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td></tr>", esc(&e.host), e.count);
        }
        o.push_str("</table>");
    }
    // The n check.
    let (upto, missing, doubled) = r.check();
    o.push_str("<h2>Targets</h2><table>");
    let _ = write!(o, "<tr><td>checked</td><td>1..{upto}</td></tr>");
    if let Some(n) = r.expect {
        let _ = write!(o, "<tr><td>expected</td><td>{n}</td></tr>");
    }
    let _ = write!(
        o,
        "<tr><td>missing</td><td>{}</td></tr><tr><td>doubled</td><td>{}</td></tr><tr><td>beyond</td><td>{}</td></tr></table>",
        missing.2, doubled.2, r.beyond
    );
    if r.expect.is_some() && !missing.0.is_empty() {
        let _ = write!(o, "<p>Missing: {}</p>", esc(&ranges(&missing.0, missing.1)));
    }
    if !doubled.0.is_empty() {
        let _ = write!(o, "<p>Doubled: {}</p>", esc(&ranges(&doubled.0, doubled.1)));
    }
    if r.expect.is_some() {
        let (class, word) = if r.failed() {
            ("bad", "FAILED")
        } else {
            ("ok", "ok")
        };
        let _ = write!(o, "<p class=\"{class}\">Check: {word}</p>");
    }
    // Files.
    o.push_str("<h2>Files</h2><table><tr><th>file</th><th>results</th><th>damaged</th></tr>");
    for f in &r.files {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            f.results,
            f.damaged
        );
    }
    o.push_str("</table></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39; "
        );
    }

    #[test]
    fn page_is_self_contained() {
        let mut r = Report::new(Some(2));
        r.read(
            "<f>",
            &b"{\"n\":1,\"url\":\"http://<script>/\",\"status\":null,\"error\":\"dns\",\"time_ms\":{\"total\":3.5}}\n"[..],
        )
        .unwrap();
        let p = page(&r);
        assert!(p.contains("<svg") && p.contains("</html>"));
        assert!(!p.contains("<script"), "input must be escaped");
        assert!(
            !p.contains("src=") && !p.contains("href="),
            "no external resource"
        );
        assert!(p.contains("&lt;f&gt;"));
        assert!(p.contains("Check: FAILED"));
    }
}
