//! `Set-Cookie` parsing (RFC 6265 §5.2) and the cookie date format (§5.1.1).
//!
//! Pure functions of text: nothing here knows a jar, a URL or the clock. The parser
//! is the RFC's lenient algorithm: it never fails on odd attributes (it ignores
//! them); it refuses only a string with no `=` in its name-value pair, an empty
//! name, a control character (tab included, so a cookie always fits the tab-separated
//! cookie file) in the name or value, or a name and value longer than [`MAX_PAIR`]
//! bytes together. Attribute
//! values longer than [`MAX_ATTR`] bytes are ignored, as RFC 6265bis says.

/// Longest name plus value accepted, in bytes (the RFC's minimum capability, 4096).
pub const MAX_PAIR: usize = 4096;
/// Longest attribute value honoured, in bytes.
pub const MAX_ATTR: usize = 1024;

/// One parsed `Set-Cookie` value, before the jar applies the request's URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetCookie {
    /// Cookie name (trimmed).
    pub name: String,
    /// Cookie value (trimmed; quotes kept, as the RFC says).
    pub value: String,
    /// `Expires`, as Unix seconds (`None` when absent or unparsable).
    pub expires: Option<i64>,
    /// `Max-Age` in seconds (takes precedence over `Expires`).
    pub max_age: Option<i64>,
    /// `Domain`, lowercased, without a leading dot (`None` when absent or empty).
    pub domain: Option<String>,
    /// `Path`, when it starts with `/`.
    pub path: Option<String>,
    /// `Secure` was present.
    pub secure: bool,
    /// `HttpOnly` was present.
    pub http_only: bool,
}

/// Parses one `Set-Cookie` header value; `None` when the RFC says to ignore it.
///
/// ```
/// use volley::cookie::parse::set_cookie;
/// let c = set_cookie("sid=abc; Path=/app; Domain=.Example.com; Secure; Max-Age=60").unwrap();
/// assert_eq!((c.name.as_str(), c.value.as_str()), ("sid", "abc"));
/// assert_eq!(c.domain.as_deref(), Some("example.com"));
/// assert_eq!((c.path.as_deref(), c.secure, c.max_age), (Some("/app"), true, Some(60)));
/// ```
pub fn set_cookie(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let pair = parts.next()?;
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || name.len() + value.len() > MAX_PAIR || has_ctl(name) || has_ctl(value) {
        return None;
    }
    let mut c = SetCookie {
        name: name.to_string(),
        value: value.to_string(),
        ..SetCookie::default()
    };
    for av in parts {
        let (k, v) = match av.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (av.trim(), ""),
        };
        if v.len() > MAX_ATTR {
            continue;
        }
        if k.eq_ignore_ascii_case("expires") {
            if let Some(t) = cookie_date(v) {
                c.expires = Some(t);
            }
        } else if k.eq_ignore_ascii_case("max-age") {
            let digits = v.strip_prefix('-').unwrap_or(v);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                // Overlong numbers saturate: a huge age is "far future", a huge
                // negative one "already expired".
                let n: i64 = digits.parse().unwrap_or(i64::MAX);
                c.max_age = Some(if v.starts_with('-') { -n } else { n });
            }
        } else if k.eq_ignore_ascii_case("domain") {
            let d = v.strip_prefix('.').unwrap_or(v).to_ascii_lowercase();
            c.domain = (!d.is_empty()).then_some(d);
        } else if k.eq_ignore_ascii_case("path") {
            c.path = v.starts_with('/').then(|| v.to_string());
        } else if k.eq_ignore_ascii_case("secure") {
            c.secure = true;
        } else if k.eq_ignore_ascii_case("httponly") {
            c.http_only = true;
        }
    }
    Some(c)
}

fn has_ctl(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// Parses a cookie date (RFC 6265 §5.1.1) to Unix seconds: the RFC's token
/// algorithm, so `Wed, 21 Oct 2015 07:28:00 GMT`, `Wednesday, 21-Oct-15 07:28:00
/// GMT` and asctime's order all parse.
///
/// ```
/// use volley::cookie::parse::cookie_date;
/// assert_eq!(cookie_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
/// assert_eq!(cookie_date("Wednesday, 21-Oct-15 07:28:00 GMT"), Some(1_445_412_480));
/// assert_eq!(cookie_date("not a date"), None);
/// ```
pub fn cookie_date(s: &str) -> Option<i64> {
    let delim = |c: char| {
        let b = c as u32;
        b == 0x09
            || (0x20..=0x2f).contains(&b)
            || (0x3b..=0x40).contains(&b)
            || (0x5b..=0x60).contains(&b)
            || (0x7b..=0x7e).contains(&b)
    };
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(delim).filter(|t| !t.is_empty()) {
        if time.is_none() {
            if let Some(t) = parse_time(tok) {
                time = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = leading_digits(tok, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            if let Some(m) = parse_month(tok) {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = leading_digits(tok, 2, 4) {
                year = Some(y);
                continue;
            }
        }
    }
    let (h, mi, se) = time?;
    let (day, month, mut year) = (day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    Some(days * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}

/// `n` digits (between `min` and `max`) at the start of `tok`, any non-digit after.
fn leading_digits(tok: &str, min: usize, max: usize) -> Option<u32> {
    let n = tok.bytes().take_while(u8::is_ascii_digit).count();
    if n < min || n > max {
        return None;
    }
    tok[..n].parse().ok()
}

fn parse_time(tok: &str) -> Option<(u32, u32, u32)> {
    let mut it = tok.splitn(3, ':');
    let h = it.next()?;
    let m = it.next()?;
    let s = it.next()?;
    let field = |x: &str, trailing: bool| {
        let n = x.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=2).contains(&n) || (!trailing && n != x.len()) {
            return None;
        }
        x[..n].parse::<u32>().ok()
    };
    Some((field(h, false)?, field(m, false)?, field(s, true)?))
}

fn parse_month(tok: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let p = tok.get(..3)?;
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(p))
        .map(|i| i as u32 + 1)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_strings() {
        for s in ["noequals", "=v", " =v; Path=/", "a\x01b=c", ""] {
            assert_eq!(set_cookie(s), None, "{s:?}");
        }
        let long = format!("n={}", "x".repeat(MAX_PAIR));
        assert_eq!(set_cookie(&long), None);
    }

    #[test]
    fn attributes() {
        let c = set_cookie("a=b; path=rel; domain=; max-age=x; expires=junk; HTTPONLY").unwrap();
        assert_eq!(c.path, None);
        assert_eq!(c.domain, None);
        assert_eq!(c.max_age, None);
        assert_eq!(c.expires, None);
        assert!(c.http_only && !c.secure);
        let c = set_cookie("a=\"q\"; Max-Age=-5; Max-Age=99999999999999999999999").unwrap();
        assert_eq!(c.value, "\"q\"");
        assert_eq!(c.max_age, Some(i64::MAX));
        let c = set_cookie("a=; Max-Age=-5").unwrap();
        assert_eq!((c.value.as_str(), c.max_age), ("", Some(-5)));
    }

    #[test]
    fn dates() {
        let t = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "06 November 1994 08:49:37",
        ] {
            assert_eq!(cookie_date(s), Some(t), "{s}");
        }
        assert_eq!(cookie_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(cookie_date("Fri, 30 Feb 2024 00:00:00 GMT"), None);
        assert_eq!(
            cookie_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        assert_eq!(cookie_date("Thu, 01 Jan 1970 24:00:00 GMT"), None);
        assert_eq!(cookie_date("Thu, 01 Jan 1500 00:00:00 GMT"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = set_cookie(&s);
            let _ = cookie_date(&s);
        }

        #[test]
        fn formatted_dates_round_trip(t in 0i64..32_503_680_000) {
            // Format as IMF-fixdate with our own civil conversion's inverse.
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            const M: [&str; 12] = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"];
            let s = format!("Xyz, {d:02} {} {y} {:02}:{:02}:{:02} GMT", M[m as usize - 1], secs / 3600, secs / 60 % 60, secs % 60);
            proptest::prop_assert_eq!(cookie_date(&s), Some(t));
        }
    }

    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }
}
