//! Result lines: JSON Lines exactly as the contract's table, written whole.
//!
//! Invariant: lines are accumulated in a buffer and written with one `write_all`
//! per loop turn, so a line is never split by our own buffering; a failed write is
//! fatal (exit 1) and reported once.

use std::io::Write;
use std::time::Duration;
use volley::engine::{Handler, Outcome};

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// Appends `s` as a JSON string literal (runs without escapes are copied whole).
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = rest.iter().position(|&b| needs_escape(b)) {
        out.extend_from_slice(&rest[..i]);
        match rest[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends `n` in decimal without the formatting machinery.
fn num(out: &mut Vec<u8>, n: u64) {
    let mut d = [0u8; 20];
    out.extend_from_slice(volley::text::fmt_u64(n, &mut d));
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_num(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => num(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Milliseconds with three decimals (microsecond precision), by integer arithmetic.
fn ms(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => {
            let us = (d.as_nanos() + 500) / 1000;
            num(out, (us / 1000) as u64);
            let frac = (us % 1000) as u32;
            out.push(b'.');
            out.push(b'0' + (frac / 100) as u8);
            out.push(b'0' + (frac / 10 % 10) as u8);
            out.push(b'0' + (frac % 10) as u8);
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Optional per-result extras (`--title`, `--headers`).
#[derive(Debug, Default)]
pub struct Extras {
    /// `Some(title)` with --title (`None` inside: no title found).
    pub title: Option<Option<String>>,
    /// With --headers: the final response's fields (empty without a response).
    pub headers: Option<Vec<(String, String)>>,
}

/// Appends one JSON line for `o`.
pub fn jsonl(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    out.extend_from_slice(b"{\"n\":");
    num(out, o.tag);
    out.extend_from_slice(b",\"input\":");
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
    out.extend_from_slice(b",\"bytes\":");
    num(out, o.bytes);
    out.extend_from_slice(b",\"location\":");
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
    out.extend_from_slice(b"},\"attempts\":");
    num(out, u64::from(o.attempts));
    if let Some(t) = &x.title {
        out.extend_from_slice(b",\"title\":");
        opt_str(out, t.as_deref());
    }
    if let Some(h) = &x.headers {
        out.extend_from_slice(b",\"headers\":[");
        for (i, (n, v)) in h.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            json_str(out, n);
            out.push(b',');
            json_str(out, v);
            out.push(b']');
        }
        out.push(b']');
    }
    if o.capped {
        out.extend_from_slice(b",\"capped\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// CSV header row (written once, first).
pub const CSV_HEADER: &str =
    "n,input,url,status,error,detail,length,bytes,location,redirects,final_url,total_ms,attempts,title\n";

fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends one CSV row for `o` (RFC 4180 quoting; empty for null).
pub fn csv(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    let _ = write!(out, "{},", o.tag);
    csv_field(out, &o.input);
    out.push(b',');
    csv_field(out, &o.url);
    out.push(b',');
    if let Some(s) = o.status {
        let _ = write!(out, "{s}");
    }
    out.push(b',');
    if let Some(e) = &o.error {
        out.extend_from_slice(e.kind.as_str().as_bytes());
        out.push(b',');
        csv_field(out, &e.detail);
    } else {
        out.push(b',');
    }
    out.push(b',');
    if let Some(l) = o.content_length {
        let _ = write!(out, "{l}");
    }
    let _ = write!(out, ",{},", o.bytes);
    csv_field(out, o.location.as_deref().unwrap_or(""));
    let _ = write!(out, ",{},", o.redirects.len());
    csv_field(out, &o.final_url);
    out.push(b',');
    if let Some(t) = o.timings.total {
        let _ = write!(out, "{:.3}", t.as_secs_f64() * 1000.0);
    }
    let _ = write!(out, ",{},", o.attempts);
    if let Some(Some(t)) = &x.title {
        csv_field(out, t);
    }
    out.push(b'\n');
}

/// Appends one human-readable line: `STATUS LENGTH URL [-> LOCATION] [title] (ms)`, or
/// `ERR kind URL: detail`.
pub fn text(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    match (&o.error, o.status) {
        (Some(e), _) => {
            let _ = write!(
                out,
                "ERR {} {}: {}",
                e.kind,
                clean(&o.url),
                clean(&e.detail)
            );
        }
        (None, Some(s)) => {
            let _ = write!(out, "{s} {} {}", o.bytes, clean(&o.url));
            if let Some(l) = &o.location {
                let _ = write!(out, " -> {}", clean(l));
            }
            if !o.redirects.is_empty() {
                let _ = write!(
                    out,
                    " (via {} redirects, final {})",
                    o.redirects.len(),
                    clean(&o.final_url)
                );
            }
            if let Some(Some(t)) = &x.title {
                let _ = write!(out, " [{}]", clean(t));
            }
            if let Some(t) = o.timings.total {
                let _ = write!(out, " {:.1}ms", t.as_secs_f64() * 1000.0);
            }
        }
        (None, None) => {
            let _ = write!(out, "ERR - {}", clean(&o.url));
        }
    }
    out.push(b'\n');
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Lines (the contract's keys, in order).
    Jsonl,
    /// CSV with a header row.
    Csv,
    /// One human-readable line per result.
    Text,
}

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

/// Finds the text of the first HTML `<title>` in `body` (whitespace collapsed, the
/// common entities decoded).
pub fn html_title(body: &[u8]) -> Option<String> {
    let lower: Vec<u8> = body.iter().map(u8::to_ascii_lowercase).collect();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let open = find(&lower, b"<title", 0)?;
    let start = find(&lower, b">", open)? + 1;
    let end = find(&lower, b"</title", start).unwrap_or(body.len());
    let raw = String::from_utf8_lossy(&body[start..end]);
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    Some(text)
}

/// Counts for the end-of-run summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Results by status class (index 1..=5) and other.
    pub classes: [u64; 7],
    /// Results by error kind name.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// All results.
    pub total: u64,
}

impl Summary {
    /// Adds another worker's counts.
    pub fn merge(&mut self, o: &Summary) {
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.total += o.total;
    }
}

/// Live counters shared by all workers (for the progress line).
#[derive(Debug, Default)]
pub struct Progress {
    /// Results so far.
    pub done: std::sync::atomic::AtomicU64,
    /// Of those, errors.
    pub errors: std::sync::atomic::AtomicU64,
}

/// The output all workers write to, whole lines at a time.
pub type SharedOut = std::sync::Arc<std::sync::Mutex<Box<dyn Write + Send>>>;

/// What to write and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output format.
    pub format: Format,
    /// Write only results whose status is in this list.
    pub matching: Option<StatusList>,
    /// Write only results whose status is not in this list.
    pub filtering: Option<StatusList>,
    /// Add `title`.
    pub title: bool,
    /// Add `headers`.
    pub headers: bool,
}

/// How much of an HTML body is kept to find its title.
const TITLE_SCAN: usize = 64 * 1024;

/// The probe's handler: formats each outcome into the pending buffer.
pub struct Writer {
    out: SharedOut,
    progress: std::sync::Arc<Progress>,
    buf: Vec<u8>,
    opts: Options,
    /// Bodies kept for --title and heads for --headers, per request in flight.
    bodies: std::collections::HashMap<u64, Vec<u8>>,
    heads: std::collections::HashMap<u64, Vec<(String, String)>>,
    /// Counts for the summary.
    pub summary: Summary,
}

impl Writer {
    /// A writer to `out`; `first` writes the CSV header.
    pub fn new(
        out: SharedOut,
        opts: Options,
        progress: std::sync::Arc<Progress>,
        first: bool,
    ) -> Writer {
        let mut buf = Vec::with_capacity(64 * 1024);
        if first && opts.format == Format::Csv {
            buf.extend_from_slice(CSV_HEADER.as_bytes());
        }
        Writer {
            out,
            progress,
            buf,
            opts,
            bodies: Default::default(),
            heads: Default::default(),
            summary: Summary::default(),
        }
    }

    /// Writes the pending lines (whole, under the shared lock) and flushes.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?;
        out.write_all(&self.buf)?;
        self.buf.clear();
        out.flush()
    }
}

impl Handler for Writer {
    fn on_head(&mut self, tag: u64, head: &volley::engine::ResponseHead<'_>) {
        if self.opts.headers {
            self.heads.insert(tag, head.headers_owned());
        }
        if self.opts.title {
            self.bodies.insert(tag, Vec::new());
        }
    }

    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        if let Some(b) = self.bodies.get_mut(&tag) {
            let room = TITLE_SCAN.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }

    fn on_done(&mut self, o: Outcome) {
        use std::sync::atomic::Ordering::Relaxed;
        // Cancelled at a stop: no line and no count, so --resume redoes it.
        if o.error.as_ref().map(|e| e.kind) == Some(volley::ErrorKind::Cancelled) {
            return;
        }
        self.progress.done.fetch_add(1, Relaxed);
        if o.error.is_some() {
            self.progress.errors.fetch_add(1, Relaxed);
        }
        self.summary.total += 1;
        match (&o.error, o.status) {
            (Some(e), _) => *self.summary.errors.entry(e.kind.as_str()).or_default() += 1,
            (None, Some(s)) => self.summary.classes[(s / 100).min(6) as usize] += 1,
            (None, None) => self.summary.classes[0] += 1,
        }
        // Kept only with --title / --headers; no map work per result otherwise.
        let body = self
            .opts
            .title
            .then(|| self.bodies.remove(&o.tag))
            .flatten();
        let heads = self
            .opts
            .headers
            .then(|| self.heads.remove(&o.tag))
            .flatten();
        if self
            .opts
            .matching
            .as_ref()
            .is_some_and(|m| !m.contains(o.status))
            || self
                .opts
                .filtering
                .as_ref()
                .is_some_and(|f| f.contains(o.status))
        {
            return;
        }
        let x = Extras {
            title: self
                .opts
                .title
                .then(|| body.as_deref().and_then(html_title)),
            headers: self.opts.headers.then(|| heads.unwrap_or_default()),
        };
        match self.opts.format {
            Format::Jsonl => jsonl(&mut self.buf, &o, &x),
            Format::Csv => csv(&mut self.buf, &o, &x),
            Format::Text => text(&mut self.buf, &o, &x),
        }
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
    fn titles() {
        assert_eq!(
            html_title(b"<html><TITLE lang=en>\n A &amp; B  </title>").as_deref(),
            Some("A & B")
        );
        assert_eq!(html_title(b"<p>no title</p>"), None);
        assert_eq!(
            html_title(b"<title>unterminated").as_deref(),
            Some("unterminated")
        );
    }

    #[test]
    fn csv_quoting() {
        let mut v = Vec::new();
        csv_field(&mut v, "a,\"b\"");
        assert_eq!(v, b"\"a,\"\"b\"\"\"");
    }

    #[test]
    fn milliseconds() {
        let f = |d: Option<Duration>| {
            let mut v = Vec::new();
            ms(&mut v, d);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(f(Some(Duration::from_micros(12_345))), "12.345");
        assert_eq!(f(Some(Duration::from_nanos(1_999_600))), "2.000");
        assert_eq!(f(Some(Duration::from_micros(7))), "0.007");
        assert_eq!(f(Some(Duration::from_secs(3))), "3000.000");
        assert_eq!(f(None), "null");
    }

    #[test]
    fn escapes() {
        let mut v = Vec::new();
        json_str(&mut v, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
