//! One human-readable line per result: `STATUS BYTES URL [-> LOCATION] [(via N
//! redirects, final URL)] [[TITLE]] MS`, or `ERR KIND URL: DETAIL`. CR and LF inside
//! fields become spaces so a result is always one line.

use super::Extras;
use std::io::Write;
use volley::engine::Outcome;

fn clean(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Appends one text line for `o`.
pub fn line(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use volley::error::ErrorKind;

    #[test]
    fn status_first_or_err() {
        let mut v = Vec::new();
        line(
            &mut v,
            &crate::testutil::outcome(1, Some(200), None),
            &Extras::default(),
        );
        assert_eq!(v, b"200 0 http://h1.example/p 1.0ms\n");
        v.clear();
        line(
            &mut v,
            &crate::testutil::outcome(1, None, Some(ErrorKind::Dns)),
            &Extras::default(),
        );
        assert_eq!(v, b"ERR dns http://h1.example/p: detail\n");
    }
}
