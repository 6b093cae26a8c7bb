//! The fast path of [`super::Target`]: recognises, without allocating, an input that
//! is already an absolute http(s) URL in the form the url crate would serialize it
//! (or one that only lacks `http://` and/or the `/` of an empty path), and finds its
//! pieces.
//!
//! Invariant: whenever [`scan`] answers, the url crate parsing the same input (with
//! `http://` in front when `prefix`) gives exactly the text [`Scan::text_len`]
//! describes, with the same host, port and path offsets — checked by a property test
//! against the url crate. Anything it is not sure of (upper case, bytes the url crate
//! would percent-encode or rewrite, dot segments, userinfo, IPv6, IDN, unusual IPv4
//! forms, a fragment, whitespace or non-ASCII bytes) gets `None`, and the url crate
//! decides. (`%xx` escapes already in the input are kept as they are by both.)

use std::net::Ipv4Addr;

/// What [`scan`] found, as offsets into the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scan {
    /// `http://` must be put in front (the input has no scheme).
    pub prefix: bool,
    /// https.
    pub tls: bool,
    /// The host's byte range in the input.
    pub host: (usize, usize),
    /// The port, and whether the input names it (it is then not the default).
    pub port: u16,
    pub explicit_port: bool,
    /// Where the path (or the query, when the path is empty) starts in the input.
    pub path: usize,
    /// A `/` must be put at `path` (the path is empty).
    pub slash: bool,
    /// The host as an IPv4 literal.
    pub ip: Option<Ipv4Addr>,
}

/// Bytes a host may have on the fast path: lower-case letters, digits, `-` and `.`.
const fn host_rule(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
}

/// Bytes the url crate leaves as they are in a path (printable ASCII but for the
/// ones it encodes, `\` it turns into `/`, and a few kept off the fast path).
const fn path_rule(c: u8) -> bool {
    c >= 0x21
        && c < 0x7f
        && !matches!(
            c,
            b'"' | b'<' | b'>' | b'`' | b'#' | b'?' | b'{' | b'}' | b'\\' | b'^' | b'|'
        )
}

/// Bytes the url crate leaves as they are in the query of an http(s) URL.
const fn query_rule(c: u8) -> bool {
    c >= 0x21 && c < 0x7f && !matches!(c, b'"' | b'<' | b'>' | b'\'' | b'#' | b'`')
}

/// The three rules as one table, a bit each (one load a byte in the scan loops).
const HOST: u8 = 1;
const PATH: u8 = 2;
const QUERY: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = (host_rule(b) as u8 * HOST)
            | (path_rule(b) as u8 * PATH)
            | (query_rule(b) as u8 * QUERY);
        c += 1;
    }
    t
};

fn host_byte(c: u8) -> bool {
    CLASS[usize::from(c)] & HOST != 0
}

fn path_byte(c: u8) -> bool {
    CLASS[usize::from(c)] & PATH != 0
}

fn query_byte(c: u8) -> bool {
    CLASS[usize::from(c)] & QUERY != 0
}

/// A segment the url crate would remove or fold (`.`, `..`, or either spelled with
/// `%2e`).
fn dot_segment(seg: &[u8]) -> bool {
    seg.len() <= 6
        && seg
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'e')
        || seg == b"."
        || seg == b".."
}

/// A host on the fast path: labels of `host_byte`s, none empty, none an IDN label;
/// when the last label begins with a digit, a dotted quad in canonical form (then the
/// IPv4 address). `Err(())` sends the input to the url crate.
fn host(h: &[u8]) -> Result<Option<Ipv4Addr>, ()> {
    if h.is_empty() || h[0] == b'.' || h[h.len() - 1] == b'.' {
        return Err(());
    }
    let last = h.iter().rposition(|&c| c == b'.').map_or(0, |p| p + 1);
    if h[last].is_ascii_digit() {
        return quad(h).map(Some).ok_or(());
    }
    for label in h.split(|&c| c == b'.') {
        if label.is_empty() || label.starts_with(b"xn--") || label[0] == b'-' {
            return Err(());
        }
        if label[label.len() - 1] == b'-' {
            return Err(());
        }
    }
    Ok(None)
}

/// Four decimal parts of 0–255 without leading zeros.
fn quad(h: &[u8]) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in h.split(|&c| c == b'.') {
        if n == 4 || part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(out))
}

/// Scans `s` (see the module doc). `None`: not sure; ask the url crate.
pub(super) fn scan(s: &str) -> Option<Scan> {
    let b = s.as_bytes();
    let (prefix, tls, start) = if b.starts_with(b"http://") {
        (false, false, 7)
    } else if b.starts_with(b"https://") {
        (false, true, 8)
    } else if super::has_scheme(s) || b.first() == Some(&b'/') {
        return None;
    } else {
        (true, false, 0)
    };
    let mut i = start;
    while i < b.len() && host_byte(b[i]) {
        i += 1;
    }
    let host_end = i;
    let ip = host(&b[start..host_end]).ok()?;
    let default = if tls { 443 } else { 80 };
    let (mut port, mut explicit_port) = (default, false);
    if b.get(i) == Some(&b':') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 5 || b[i] == b'0' {
            return None;
        }
        let v = b[i..i + digits]
            .iter()
            .fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        port = u16::try_from(v).ok().filter(|&p| p != default)?;
        explicit_port = true;
        i += digits;
    }
    let path = i;
    match b.get(i) {
        None | Some(b'?') | Some(b'/') => {}
        Some(_) => return None,
    }
    let slash = b.get(i) != Some(&b'/');
    let mut seg = i + 1;
    while i < b.len() && b[i] != b'?' {
        if b[i] == b'/' {
            if dot_segment(&b[seg.min(i)..i]) {
                return None;
            }
            seg = i + 1;
        } else if !path_byte(b[i]) {
            return None;
        }
        i += 1;
    }
    if !slash && dot_segment(&b[seg.min(i)..i]) {
        return None;
    }
    if i < b.len() && !b[i + 1..].iter().all(|&c| query_byte(c)) {
        return None;
    }
    Some(Scan {
        prefix,
        tls,
        host: (start, host_end),
        port,
        explicit_port,
        path,
        slash,
        ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_inputs_are_taken_as_they_are() {
        let s = scan("http://127.0.0.1:8080/p/1?x=y").unwrap();
        assert_eq!(
            (s.prefix, s.slash, s.tls, s.port),
            (false, false, false, 8080)
        );
        assert_eq!(s.ip, Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!((s.host, s.path), ((7, 16), 21));
        let s = scan("https://a-b.example/").unwrap();
        assert_eq!(
            (s.tls, s.port, s.explicit_port, s.ip),
            (true, 443, false, None)
        );
        let s = scan("host.test?q").unwrap();
        assert_eq!((s.prefix, s.slash, s.path), (true, true, 9));
    }

    /// The table answers as the rules it is built from, for every byte.
    #[test]
    fn class_table_follows_the_rules() {
        for c in 0..=255u8 {
            assert_eq!(host_byte(c), host_rule(c), "{c}");
            assert_eq!(path_byte(c), path_rule(c), "{c}");
            assert_eq!(query_byte(c), query_rule(c), "{c}");
        }
    }

    #[test]
    fn anything_unsure_goes_to_the_url_crate() {
        for s in [
            "HTTP://h/",
            "http://H/",
            "http://h:80/",
            "https://h:443/",
            "http://h:080/",
            "http://h:/",
            "http://h:65536/",
            "http://u@h/",
            "http://[::1]/",
            "http://xn--bcher-kva.example/",
            "http://bücher.example/",
            "http://h/a b",
            "http://h/a#f",
            "http://h/./a",
            "http://h/a/..",
            "http://h/%2e/a",
            "http://h/a/.%2E",
            "http://h/a\\b",
            "http://h/a?b'c",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://010.0.0.1/",
            "http://1.2.3.4./",
            "http://256.0.0.1/",
            "http://1.2.3.4.5/",
            "http://h..x/",
            "http://.h/",
            "http://-h/",
            "http://h-/",
            "http://h_x/",
            "ftp://h/",
            "//h/",
            " http://h/",
            "http://h/\t",
            "http:///h",
            "http://",
        ] {
            assert_eq!(scan(s), None, "{s}");
        }
    }
}
