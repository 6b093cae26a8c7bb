//! Result lines in the three output formats. Each formatter appends exactly one whole
//! line (ending in `\n`) for one outcome to a byte buffer; none of them writes to a
//! file or decides whether a result is written (that is `filter`'s job).

mod csv;
mod jsonl;
mod text;

pub use csv::CSV_HEADER;

use volley::engine::Outcome;

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

/// Optional per-result extras: each is `None` when its option was not given, and
/// `Some(None)` when it was but the result has no value (written as `null`).
#[derive(Debug, Default)]
pub struct Extras {
    /// `Some(title)` with --title (`None` inside: no title found).
    pub title: Option<Option<String>>,
    /// With --headers: the final response's fields (none without a response; an
    /// empty list for a response with no fields).
    pub headers: Option<Option<Vec<(String, String)>>>,
    /// With --counts: words and lines of the body read (none without a response).
    pub counts: Option<Option<(u64, u64)>>,
    /// With --hash: `body_sha256` and `simhash`, hex (none without a response).
    pub hash: Option<Option<(String, String)>>,
    /// With --ip: the final connection's peer address.
    pub ip: Option<Option<std::net::IpAddr>>,
    /// With --tls-info: the final connection's TLS details (none without TLS).
    pub tls: Option<Option<std::sync::Arc<volley::engine::api::TlsInfo>>>,
    /// With --calibrate: the verdict.
    pub soft404: Option<Option<bool>>,
    /// Words and lines when known (the text format shows them whenever they are).
    pub words_lines: Option<(u64, u64)>,
    /// Colour the text format (stdout is a terminal).
    pub color: bool,
}

impl Format {
    /// What goes before the first result (the CSV header row), if anything.
    pub fn preamble(self) -> &'static [u8] {
        match self {
            Format::Csv => CSV_HEADER.as_bytes(),
            Format::Jsonl | Format::Text => b"",
        }
    }

    /// Appends one line for `o` to `out`.
    pub fn line(self, out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
        match self {
            Format::Jsonl => jsonl::line(out, o, x),
            Format::Csv => csv::line(out, o, x),
            Format::Text => text::line(out, o, x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use volley::error::ErrorKind;

    #[test]
    fn every_format_writes_one_whole_line() {
        let base = crate::testutil::outcome(7, None, Some(ErrorKind::Connect));
        let mut o = volley::engine::Outcome::new(7, "a\nb,\"c\"\r".into());
        (o.error, o.timings, o.attempts) = (base.error, base.timings, base.attempts);
        o.error.as_mut().unwrap().detail = "x\ny".into();
        for f in [Format::Jsonl, Format::Csv, Format::Text] {
            let mut v = Vec::new();
            f.line(
                &mut v,
                &o,
                &Extras {
                    title: Some(Some("t\nt".into())),
                    headers: Some(Some(vec![("a".into(), "b\n".into())])),
                    counts: Some(Some((1, 2))),
                    hash: Some(None),
                    soft404: Some(Some(true)),
                    ..Extras::default()
                },
            );
            assert!(v.ends_with(b"\n"), "{f:?}");
            let inner = &v[..v.len() - 1];
            if f != Format::Csv {
                assert!(
                    !inner.contains(&b'\n'),
                    "{f:?}: {}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
    }
}
