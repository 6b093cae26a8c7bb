//! CSV rows (RFC 4180 quoting; an empty cell for null) under one header row.

use super::Extras;
use std::io::Write;
use volley::engine::Outcome;

/// CSV header row (written once, first).
pub const CSV_HEADER: &str =
    "n,input,url,status,error,detail,length,bytes,location,redirects,final_url,total_ms,attempts,title\n";

fn field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends one CSV row for `o`.
pub fn line(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    let _ = write!(out, "{},", o.tag);
    field(out, o.input());
    out.push(b',');
    field(out, o.url());
    out.push(b',');
    if let Some(s) = o.status {
        let _ = write!(out, "{s}");
    }
    out.push(b',');
    if let Some(e) = &o.error {
        out.extend_from_slice(e.kind.as_str().as_bytes());
        out.push(b',');
        field(out, &e.detail);
    } else {
        out.push(b',');
    }
    out.push(b',');
    if let Some(l) = o.content_length {
        let _ = write!(out, "{l}");
    }
    let _ = write!(out, ",{},", o.bytes);
    field(out, o.location.as_deref().unwrap_or(""));
    let _ = write!(out, ",{},", o.redirects.len());
    field(out, o.final_url());
    out.push(b',');
    if let Some(t) = o.timings.total {
        let _ = write!(out, "{:.3}", t.as_secs_f64() * 1000.0);
    }
    let _ = write!(out, ",{},", o.attempts);
    if let Some(Some(t)) = &x.title {
        field(out, t);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let mut v = Vec::new();
        field(&mut v, "a,\"b\"");
        assert_eq!(v, b"\"a,\"\"b\"\"\"");
    }

    #[test]
    fn row_has_the_header_columns() {
        let o = crate::testutil::outcome(2, Some(404), None);
        let mut v = Vec::new();
        line(&mut v, &o, &Extras::default());
        let row = String::from_utf8(v).unwrap();
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
        assert!(row.starts_with("2,http://h2.example/p,http://h2.example/p,404,,,"));
    }
}
