//! One human-readable line per result, in aligned columns:
//!
//! ```text
//! STATUS     SIZE  WORDS  LINES MARK URL [-> LOCATION | (via N, final URL)] [[TITLE]] MS
//! 200        1234     45     12      http://h/admin.php [Admin] 3.1ms
//! 302           0      1      1 soft http://h/x -> http://h/login?next=/x 0.8ms
//! ERR           -      -      -      http://h/y connect_refused: 127.0.0.1:80: connection refused
//! ```
//!
//! SIZE is the body bytes read; WORDS and LINES (ffuf's counts) show when they were
//! computed (`--counts`, a word or line matcher, `--calibrate`; the text format asks for
//! them), else `-`; MARK is `soft` for a soft-404, `?` when the host could not be
//! calibrated, blank otherwise. Colour (status by class, errors red, soft-404s dim) only
//! when the output is a terminal. CR, LF and other control characters inside fields
//! become spaces, so a result is always one line.

use super::Extras;
use std::io::Write;
use volley::engine::Outcome;

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

const RESET: &str = "\x1b[0m";

fn status_color(status: Option<u16>, error: bool) -> &'static str {
    match (error, status.map(|s| s / 100)) {
        (true, _) | (false, Some(5)) => "\x1b[31m",
        (false, Some(2)) => "\x1b[32m",
        (false, Some(3)) => "\x1b[36m",
        (false, Some(4)) => "\x1b[33m",
        _ => "",
    }
}

/// Appends one text line for `o`.
pub fn line(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    let soft = x.soft404.flatten() == Some(true);
    let dim = x.color && soft;
    if dim {
        out.extend_from_slice(b"\x1b[2m");
    }
    let status = match (&o.error, o.status) {
        (Some(_), _) | (None, None) => "ERR".to_string(),
        (None, Some(s)) => s.to_string(),
    };
    let color = if x.color && !dim {
        status_color(o.status, o.error.is_some())
    } else {
        ""
    };
    let reset = if color.is_empty() { "" } else { RESET };
    let _ = write!(out, "{color}{status:<4}{reset}");
    match (o.status, x.words_lines) {
        (Some(_), Some((w, l))) => {
            let _ = write!(out, " {:>9} {w:>6} {l:>6}", o.bytes);
        }
        (Some(_), None) => {
            let _ = write!(out, " {:>9} {:>6} {:>6}", o.bytes, "-", "-");
        }
        (None, _) => {
            let _ = write!(out, " {:>9} {:>6} {:>6}", "-", "-", "-");
        }
    }
    let mark = match x.soft404 {
        Some(Some(true)) => "soft",
        Some(None) => "?",
        _ => "",
    };
    let _ = write!(out, " {mark:<4} {}", clean(o.url()));
    if let Some(e) = &o.error {
        let _ = write!(out, " {}: {}", e.kind, clean(&e.detail));
    } else {
        if let Some(l) = &o.location {
            let _ = write!(out, " -> {}", clean(l));
        }
        if !o.redirects.is_empty() {
            let _ = write!(
                out,
                " (via {} redirects, final {})",
                o.redirects.len(),
                clean(o.final_url())
            );
        }
        if let Some(Some(t)) = &x.title {
            let _ = write!(out, " [{}]", clean(t));
        }
        if let Some(t) = o.timings.total {
            let _ = write!(out, " {:.1}ms", t.as_secs_f64() * 1000.0);
        }
    }
    if dim {
        out.extend_from_slice(RESET.as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use volley::error::ErrorKind;

    fn text(o: &Outcome, x: &Extras) -> String {
        let mut v = Vec::new();
        line(&mut v, o, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn columns() {
        let mut o = crate::testutil::outcome(1, Some(200), None);
        o.bytes = 1234;
        let x = Extras {
            words_lines: Some((45, 12)),
            ..Extras::default()
        };
        assert_eq!(
            text(&o, &x),
            "200       1234     45     12      http://h1.example/p 1.0ms\n"
        );
        let x = Extras {
            soft404: Some(Some(true)),
            ..x
        };
        o.status = Some(302);
        o.location = Some("http://h1.example/login".into());
        assert_eq!(
            text(&o, &x),
            "302       1234     45     12 soft http://h1.example/p -> http://h1.example/login 1.0ms\n"
        );
        let e = crate::testutil::outcome(1, None, Some(ErrorKind::Dns));
        assert_eq!(
            text(&e, &Extras::default()),
            "ERR          -      -      -      http://h1.example/p dns: detail\n"
        );
        // Every line has the URL in the same column.
        let col = |s: &str| s.find("http").unwrap();
        assert_eq!(col(&text(&o, &x)), col(&text(&e, &Extras::default())));
    }

    #[test]
    fn colour_only_when_asked() {
        let o = crate::testutil::outcome(1, Some(404), None);
        let plain = text(&o, &Extras::default());
        assert!(!plain.contains('\x1b'));
        let c = text(
            &o,
            &Extras {
                color: true,
                ..Extras::default()
            },
        );
        assert!(c.starts_with("\x1b[33m404 \x1b[0m"), "{c:?}");
    }
}
