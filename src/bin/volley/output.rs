//! Result lines: JSON Lines exactly as the contract's table, written whole.
//!
//! Invariant: lines are accumulated in a buffer and written with one `write_all`
//! per loop turn, so a line is never split by our own buffering; a failed write is
//! fatal (exit 1) and reported once.

use std::io::Write;
use std::time::Duration;
use volley::engine::{Handler, Outcome};

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f | 0x7f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_num(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn ms(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => {
            let _ = write!(out, "{:.3}", d.as_secs_f64() * 1000.0);
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends one JSON line for `o`.
pub fn jsonl(out: &mut Vec<u8>, o: &Outcome) {
    let _ = write!(out, "{{\"n\":{},\"input\":", o.tag);
    json_str(out, &o.input);
    out.extend_from_slice(b",\"url\":");
    json_str(out, &o.url);
    out.extend_from_slice(b",\"status\":");
    opt_num(out, o.status.map(u64::from));
    out.extend_from_slice(b",\"error\":");
    opt_str(out, o.error.as_ref().map(|e| e.kind.as_str()));
    out.extend_from_slice(b",\"detail\":");
    opt_str(out, o.error.as_ref().map(|e| e.detail.as_str()));
    out.extend_from_slice(b",\"length\":");
    opt_num(out, o.content_length);
    let _ = write!(out, ",\"bytes\":{},\"location\":", o.bytes);
    opt_str(out, o.location.as_deref());
    out.extend_from_slice(b",\"redirects\":[");
    for (i, r) in o.redirects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"url\":");
        json_str(out, &r.url);
        let _ = write!(out, ",\"status\":{}}}", r.status);
    }
    out.extend_from_slice(b"],\"final_url\":");
    json_str(out, &o.final_url);
    out.extend_from_slice(b",\"time_ms\":{\"dns\":");
    let t = &o.timings;
    ms(out, t.dns);
    out.extend_from_slice(b",\"connect\":");
    ms(out, t.connect);
    out.extend_from_slice(b",\"tls\":");
    ms(out, t.tls);
    out.extend_from_slice(b",\"ttfb\":");
    ms(out, t.ttfb);
    out.extend_from_slice(b",\"total\":");
    ms(out, t.total);
    let _ = write!(out, "}},\"attempts\":{}", o.attempts);
    if o.capped {
        out.extend_from_slice(b",\"capped\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// Counts for the end-of-run summary.
#[derive(Debug, Default)]
pub struct Summary {
    /// Results by status class (index 1..=5) and other.
    pub classes: [u64; 7],
    /// Results by error kind name.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// All results.
    pub total: u64,
}

/// The probe's handler: formats each outcome into the pending buffer.
pub struct Writer {
    out: Box<dyn Write>,
    buf: Vec<u8>,
    /// Counts for the summary.
    pub summary: Summary,
}

impl Writer {
    /// A writer to `out`.
    pub fn new(out: Box<dyn Write>) -> Writer {
        Writer {
            out,
            buf: Vec::with_capacity(64 * 1024),
            summary: Summary::default(),
        }
    }

    /// Writes the pending lines (whole) and flushes.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.out.flush()
    }
}

impl Handler for Writer {
    fn on_done(&mut self, o: Outcome) {
        self.summary.total += 1;
        match (&o.error, o.status) {
            (Some(e), _) => *self.summary.errors.entry(e.kind.as_str()).or_default() += 1,
            (None, Some(s)) => self.summary.classes[(s / 100).min(6) as usize] += 1,
            (None, None) => self.summary.classes[0] += 1,
        }
        jsonl(&mut self.buf, &o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut v = Vec::new();
        json_str(&mut v, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
