//! JSON Lines exactly as the contract's table: the fixed keys in order, then the
//! optional ones. Written by hand (no serializer) because it runs once per result on
//! the event loop; strings are escaped so a line never contains a raw newline.

use super::Extras;
use std::io::Write;
use std::time::Duration;
use volley::engine::Outcome;

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// True when one of the 8 bytes of `x` needs an escape (word-at-a-time tests: a
/// byte below 0x20, or equal to `"`, `\\` or DEL; exact as a yes/no).
fn word_needs_escape(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI != 0;
    x.wrapping_sub(LO * 0x20) & !x & HI != 0
        || zero(x ^ (LO * u64::from(b'"')))
        || zero(x ^ (LO * u64::from(b'\\')))
        || zero(x ^ (LO * 0x7f))
}

/// The first byte of `b` that needs an escape: 8 bytes at a time, then bytewise.
fn first_escape(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        if word_needs_escape(u64::from_le_bytes(a)) {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| needs_escape(c)).map(|p| p + i)
}

/// Appends `s` as a JSON string literal (runs without escapes are copied whole).
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = first_escape(rest) {
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

/// Appends `s` as a JSON string literal, copying the literal already written at
/// `done` when `s` is the same string as `prev` (the common case: one URL serves as
/// input, url and final_url). Answers where the literal is.
fn same_or_escaped(
    out: &mut Vec<u8>,
    s: &str,
    prev: &str,
    done: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    let at = out.len();
    if std::ptr::eq(s, prev) {
        out.extend_from_within(done);
    } else {
        json_str(out, s);
    }
    at..out.len()
}

/// Appends `n` in decimal without the formatting machinery.
fn num(out: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
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

/// Appends one JSON line for `o`.
pub fn line(out: &mut Vec<u8>, o: &Outcome, x: &Extras) {
    out.extend_from_slice(b"{\"n\":");
    num(out, o.tag);
    out.extend_from_slice(b",\"input\":");
    let input = out.len()..{
        json_str(out, o.input());
        out.len()
    };
    out.extend_from_slice(b",\"url\":");
    let url = same_or_escaped(out, o.url(), o.input(), input);
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
        out.extend_from_slice(b",\"status\":");
        num(out, u64::from(r.status));
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"final_url\":");
    same_or_escaped(out, o.final_url(), o.url(), url);
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
    match &x.headers {
        None => {}
        Some(None) => out.extend_from_slice(b",\"headers\":null"),
        Some(Some(h)) => headers(out, h),
    }
    if o.capped {
        out.extend_from_slice(b",\"capped\":true");
    }
    if let Some(c) = &x.counts {
        out.extend_from_slice(b",\"words\":");
        opt_num(out, c.map(|c| c.0));
        out.extend_from_slice(b",\"lines\":");
        opt_num(out, c.map(|c| c.1));
    }
    if let Some(h) = &x.hash {
        out.extend_from_slice(b",\"body_sha256\":");
        opt_str(out, h.as_ref().map(|h| h.0.as_str()));
        out.extend_from_slice(b",\"simhash\":");
        opt_str(out, h.as_ref().map(|h| h.1.as_str()));
    }
    if let Some(ip) = &x.ip {
        out.extend_from_slice(b",\"ip\":");
        opt_str(out, ip.map(|a| a.to_string()).as_deref());
    }
    if let Some(t) = &x.tls {
        out.extend_from_slice(b",\"tls\":");
        match t {
            Some(t) => tls(out, t),
            None => out.extend_from_slice(b"null"),
        }
    }
    if let Some(s) = &x.soft404 {
        out.extend_from_slice(match s {
            Some(true) => b",\"soft404\":true",
            Some(false) => b",\"soft404\":false",
            None => b",\"soft404\":null",
        });
    }
    out.extend_from_slice(b"}\n");
}

/// The `tls` object: version, cipher, and the leaf certificate's subject CN, SANs,
/// issuer, not-after and SPKI pin (`null` for what the peer did not send).
/// `,"headers":[[name,value],…]`.
fn headers(out: &mut Vec<u8>, h: &[(String, String)]) {
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

fn tls(out: &mut Vec<u8>, t: &volley::engine::api::TlsInfo) {
    let cert = t.certificate();
    let c = cert.as_ref();
    out.extend_from_slice(b"{\"version\":");
    json_str(out, &t.version);
    out.extend_from_slice(b",\"cipher\":");
    json_str(out, &t.cipher);
    out.extend_from_slice(b",\"subject\":");
    opt_str(out, c.and_then(|c| c.subject_cn.as_deref()));
    out.extend_from_slice(b",\"sans\":");
    match c {
        Some(c) => {
            out.push(b'[');
            for (i, s) in c.sans.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, s);
            }
            out.push(b']');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"issuer\":");
    opt_str(out, c.map(|c| c.issuer.as_str()));
    out.extend_from_slice(b",\"not_after\":");
    opt_str(out, c.and_then(|c| c.not_after.as_deref()));
    out.extend_from_slice(b",\"pin_sha256\":");
    opt_str(out, c.and_then(|c| c.pin_sha256.as_deref()));
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

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

    proptest::proptest! {
        /// Whatever the text, the literal reads back as it (serde_json), and only the
        /// bytes that must be are escaped.
        #[test]
        fn string_literals_read_back(
            s in proptest::collection::vec(proptest::sample::select(vec![
                "a", "bcdefgh", "\"", "\\", "\n", "\u{1}", "\u{1f}", "\u{7f}", " ", "~", "é", "\u{80}",
            ]), 0..40)
        ) {
            let s = s.concat();
            let mut v = Vec::new();
            json_str(&mut v, &s);
            let back: String = serde_json::from_slice(&v).unwrap();
            proptest::prop_assert_eq!(&back, &s);
            // One `\\` per escape, two for an escaped `\\`.
            let escapes = s.bytes().filter(|&b| needs_escape(b)).count()
                + s.bytes().filter(|&b| b == b'\\').count();
            proptest::prop_assert_eq!(v.iter().filter(|&&b| b == b'\\').count(), escapes);
            for (k, w) in s.as_bytes().windows(8).enumerate() {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                let want = w.iter().any(|&b| needs_escape(b));
                proptest::prop_assert_eq!(word_needs_escape(u64::from_le_bytes(a)), want, "{} at {}", s, k);
            }
        }
    }

    #[test]
    fn numbers() {
        for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut v = Vec::new();
            num(&mut v, n);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }

    #[test]
    fn a_line_is_valid_json_in_contract_order() {
        let o = crate::testutil::outcome(3, Some(200), None);
        let mut v = Vec::new();
        line(&mut v, &o, &Extras::default());
        let s = String::from_utf8(v).unwrap();
        let j: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(j["n"], 3);
        assert_eq!(j["time_ms"]["total"], 1.0);
        assert!(s.starts_with("{\"n\":3,\"input\":"));
    }

    #[test]
    fn optional_keys_in_contract_order() {
        let mut o = crate::testutil::outcome(4, Some(200), None);
        o.capped = true;
        let x = Extras {
            title: Some(None),
            headers: Some(Some(Vec::new())),
            counts: Some(Some((3, 2))),
            hash: Some(Some(("ab".into(), "00000000000000ff".into()))),
            ip: Some(Some("127.0.0.1".parse().unwrap())),
            tls: Some(Some(std::sync::Arc::new(volley::engine::api::TlsInfo {
                version: "TLSv1_3".into(),
                cipher: "TLS13_AES_128_GCM_SHA256".into(),
                leaf: None,
            }))),
            soft404: Some(Some(true)),
            ..Extras::default()
        };
        let mut v = Vec::new();
        line(&mut v, &o, &x);
        let s = String::from_utf8(v).unwrap();
        let j: serde_json::Value = serde_json::from_str(&s).unwrap();
        let tail = [
            "attempts",
            "title",
            "headers",
            "capped",
            "words",
            "lines",
            "body_sha256",
            "simhash",
            "ip",
            "tls",
            "soft404",
        ];
        let at: Vec<usize> = tail
            .iter()
            .map(|k| s.rfind(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert_eq!(j["words"], 3);
        assert_eq!(j["ip"], "127.0.0.1");
        assert_eq!(j["tls"]["version"], "TLSv1_3");
        assert!(j["tls"]["subject"].is_null());
        assert_eq!(j["soft404"], true);
        // Asked for, but nothing to say: null, never missing.
        let x = Extras {
            headers: Some(None),
            counts: Some(None),
            hash: Some(None),
            ip: Some(None),
            tls: Some(None),
            soft404: Some(None),
            ..Extras::default()
        };
        let mut v = Vec::new();
        line(&mut v, &crate::testutil::outcome(5, None, None), &x);
        let j: serde_json::Value = serde_json::from_slice(&v).unwrap();
        for k in [
            "headers",
            "words",
            "lines",
            "body_sha256",
            "simhash",
            "ip",
            "tls",
            "soft404",
        ] {
            assert!(j[k].is_null(), "{k}");
        }
    }

    /// The word test is exact for every pair of byte values at every
    /// pair of positions (the rest of the word one filler byte).
    #[test]
    fn word_test_exact_on_byte_pairs() {
        for filler in [b'a', 0x80, 0xff, 0x20, 0x21, 0x5b, 0x7e] {
            for i in 0..8 {
                for j in 0..8 {
                    for x in 0..=255u8 {
                        for y in 0..=255u8 {
                            let mut w = [filler; 8];
                            w[i] = x;
                            w[j] = y;
                            let want = w.iter().any(|&b| needs_escape(b));
                            assert_eq!(word_needs_escape(u64::from_le_bytes(w)), want, "{w:?}");
                        }
                    }
                }
            }
        }
        for n in 0..40 {
            let s: String = (0..n).map(|k| if k % 9 == 5 { '"' } else { 'a' }).collect();
            assert_eq!(first_escape(s.as_bytes()), s.bytes().position(needs_escape));
        }
    }

    /// The three URLs of a line read back as the outcome's, whether the literal is
    /// copied (one string serves all three) or escaped again (they differ).
    #[test]
    fn urls_copied_or_escaped_read_back() {
        let same = Outcome::new(1, "http://h/a\"b\\".into());
        let moved = Outcome::new(2, "h/\"x".into())
            .with_urls("http://h/%22x".into(), "http://h/\"y".into());
        for o in [same, moved] {
            let mut v = Vec::new();
            line(&mut v, &o, &Extras::default());
            let j: serde_json::Value = serde_json::from_slice(&v).unwrap();
            assert_eq!(j["input"], o.input(), "{o:?}");
            assert_eq!(j["url"], o.url(), "{o:?}");
            assert_eq!(j["final_url"], o.final_url(), "{o:?}");
        }
    }
}
