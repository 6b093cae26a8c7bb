//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, as the wait it
//! asks for, relative to a "now" the caller passes in.
//!
//! All three HTTP-date forms of RFC 9110 §5.6.7 are read: IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
//! (`Sunday, 06-Nov-94 08:49:37 GMT`) and C's asctime form
//! (`Sun Nov  6 08:49:37 1994`). Names of days and months are matched without
//! regard to case (recipients are lenient); everything else is exact.
//!
//! Invariants: no clock is read; the answer is `None` for anything that is not one of
//! these forms (an impossible date such as 31 Feb included), so garbage never turns
//! into a wait; a date in the past is a wait of zero; delta-seconds too large for the
//! calendar saturate at [`MAX_DELTA_SECS`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest delta-seconds kept (2³¹, as RFC 9111 §1.2.2 asks of caches); more
/// than that reads as this. Any real cap (`--max-retry-after`) is far below it.
pub const MAX_DELTA_SECS: u64 = 1 << 31;

/// The wait a `Retry-After` field value asks for at `now`, or `None` when the value
/// is not a delta-seconds nor an HTTP-date. At 06 Nov 1994 08:49:37 UTC, `120` and
/// `Sun, 06 Nov 1994 08:51:37 GMT` both ask for 120 s.
pub fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let v = trim(value);
    if v.is_empty() {
        return None;
    }
    if v.iter().all(u8::is_ascii_digit) {
        return Some(Duration::from_secs(delta_seconds(v)));
    }
    let secs = http_date(std::str::from_utf8(v).ok()?, now)?;
    let Ok(secs) = u64::try_from(secs) else {
        return Some(Duration::ZERO); // before 1970: long past
    };
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Optional whitespace (SP, HTAB) on both sides removed.
fn trim(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// Digits as a number of seconds, saturating at [`MAX_DELTA_SECS`].
fn delta_seconds(digits: &[u8]) -> u64 {
    digits
        .iter()
        .try_fold(0u64, |n, d| {
            let n = n * 10 + u64::from(d - b'0');
            (n <= MAX_DELTA_SECS).then_some(n)
        })
        .unwrap_or(MAX_DELTA_SECS)
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_LONG: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date as seconds since the Unix epoch (negative before it). `now` decides
/// the century of an RFC 850 two-digit year.
fn http_date(s: &str, now: SystemTime) -> Option<i64> {
    let (day, rest) = s.split_once(' ')?;
    if let Some(name) = day.strip_suffix(',') {
        if is_name(name, &DAYS) {
            imf_fixdate(rest)
        } else if is_name(name, &DAYS_LONG) {
            rfc850(rest, now)
        } else {
            None
        }
    } else if is_name(day, &DAYS) {
        asctime(rest)
    } else {
        None
    }
}

fn is_name(s: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(s))
}

/// `06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[2] != b' ' || b[6] != b' ' || b[11] != b' ' || &s[20..] != " GMT" {
        return None;
    }
    let day = digits(&s[..2])?;
    let month = month(&s[3..6])?;
    let year = digits(&s[7..11])?;
    timestamp(year, month, day, &s[12..20])
}

/// `06-Nov-94 08:49:37 GMT`
fn rfc850(s: &str, now: SystemTime) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 22 || b[2] != b'-' || b[6] != b'-' || b[9] != b' ' || &s[18..] != " GMT" {
        return None;
    }
    let day = digits(&s[..2])?;
    let month = month(&s[3..6])?;
    let yy = digits(&s[7..9])?;
    timestamp(full_year(yy, now), month, day, &s[10..18])
}

/// `Nov  6 08:49:37 1994` (the day is space-padded)
fn asctime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[3] != b' ' || b[6] != b' ' || b[15] != b' ' {
        return None;
    }
    let month = month(&s[..3])?;
    let day = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => i64::from(d - b'0'),
        _ => digits(&s[4..6])?,
    };
    let year = digits(&s[16..20])?;
    timestamp(year, month, day, &s[7..15])
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the most
/// recent past year with those last two digits.
fn full_year(yy: i64, now: SystemTime) -> i64 {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let this_year = civil_from_days(now_secs.div_euclid(86_400)).0;
    let century = this_year - this_year.rem_euclid(100);
    let y = century + yy;
    if y > this_year + 50 {
        y - 100
    } else if y + 100 <= this_year + 50 {
        y + 100
    } else {
        y
    }
}

/// Exactly the ASCII digits of `s` as a number.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A month name as 1..=12.
fn month(s: &str) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .map(|i| i as i64 + 1)
}

/// `HH:MM:SS` and a date as seconds since the epoch; `None` for impossible values.
fn timestamp(year: i64, month: i64, day: i64, hms: &str) -> Option<i64> {
    let b = hms.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&hms[..2])?, digits(&hms[3..5])?, digits(&hms[6..])?);
    // Second 60 is a leap second (RFC 9110 allows it).
    if h > 23 || m > 59 || sec > 60 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01 (inverse of the above).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, the RFC's example instant.
    const RFC_EXAMPLE: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn table() {
        let now = at(RFC_EXAMPLE);
        let s = |n| Some(Duration::from_secs(n));
        let table: &[(&str, Option<Duration>)] = &[
            // delta-seconds
            ("0", s(0)),
            ("1", s(1)),
            ("120", s(120)),
            (" \t 30 ", s(30)),
            ("007", s(7)),
            ("99999999999999999999999", s(MAX_DELTA_SECS)),
            ("2147483649", s(MAX_DELTA_SECS)),
            // the three date forms, all naming the same instant + 10 s
            ("Sun, 06 Nov 1994 08:49:47 GMT", s(10)),
            ("Sunday, 06-Nov-94 08:49:47 GMT", s(10)),
            ("Sun Nov  6 08:49:47 1994", s(10)),
            ("sun, 06 NOV 1994 08:49:47 GMT", s(10)),
            // in the past: no wait
            ("Sun, 06 Nov 1994 08:49:36 GMT", s(0)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", s(0)),
            ("Mon, 01 Jan 1900 00:00:00 GMT", s(0)),
            // a day later, a leap day, a leap second
            ("Mon, 07 Nov 1994 08:49:37 GMT", s(86_400)),
            (
                "Tue, 29 Feb 1996 00:00:00 GMT",
                s(825_552_000 - RFC_EXAMPLE),
            ),
            ("Sun, 06 Nov 1994 08:49:60 GMT", s(23)),
            // garbage
            ("", None),
            ("   ", None),
            ("-1", None),
            ("+5", None),
            ("1.5", None),
            ("1 2", None),
            ("0x10", None),
            ("soon", None),
            ("Sun, 06 Nov 1994 08:49:47", None),
            ("Sun, 06 Nov 1994 08:49:47 UTC", None),
            ("Sun, 6 Nov 1994 08:49:47 GMT", None),
            ("Sun, 06 Nov 94 08:49:47 GMT", None),
            ("Sun, 06 Foo 1994 08:49:47 GMT", None),
            ("Sun, 31 Feb 1994 08:49:47 GMT", None),
            ("Sun, 29 Feb 1900 08:49:47 GMT", None),
            ("Sun, 00 Nov 1994 08:49:47 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:60:00 GMT", None),
            ("Sun, 06 Nov 1994 08:49:61 GMT", None),
            ("Sun, 06 Nov 1994 8:49:47 GMT", None),
            ("Sun, 06 Nov 1994 08:49:4x GMT", None),
            ("Xyz, 06 Nov 1994 08:49:47 GMT", None),
            ("Sun 06 Nov 1994 08:49:47 GMT", None),
            ("Sunday, 06 Nov 1994 08:49:47 GMT", None),
            ("Sun, 06-Nov-94 08:49:47 GMT", None),
            ("Sunday, 06-Nov-1994 08:49:47 GMT", None),
            ("Sun Nov 6 08:49:47 1994", None),
            ("Sun Nov  6 08:49:47 94", None),
            ("Sun, 06 Nov 1994 08:49:47 GMT junk", None),
            ("Sun, 06 Nov 1994 08:49:47 GMT\u{e9}", None),
        ];
        for (v, want) in table {
            assert_eq!(parse(v.as_bytes(), now), *want, "{v:?}");
        }
        assert_eq!(parse(b"\xff\xfe", now), None);
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:47 GMT\xff", now), None);
    }

    #[test]
    fn sub_second_now_rounds_the_wait_down() {
        let now = at(RFC_EXAMPLE) + Duration::from_millis(250);
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:49:38 GMT", now),
            Some(Duration::from_millis(750))
        );
    }

    #[test]
    fn rfc850_years_take_the_century_within_fifty_years() {
        // Now: 2026-11-26. "76" is 2076 (50 years ahead), "77" is 1977.
        let now = at(1_795_651_200);
        assert_eq!(civil_from_days(1_795_651_200 / 86_400), (2026, 11, 26));
        let y76 = parse(b"Thursday, 01-Jan-76 00:00:00 GMT", now).unwrap();
        assert!(y76 > Duration::from_secs(49 * 365 * 86_400), "{y76:?}");
        assert_eq!(
            parse(b"Saturday, 01-Jan-77 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let y30 = parse(b"Tuesday, 01-Jan-30 00:00:00 GMT", now).unwrap();
        assert!(y30 > Duration::from_secs(3 * 365 * 86_400), "{y30:?}");
        // Now: 1999-12-31. "01" is 2001, in the next century.
        let now = at(946_598_400);
        assert_eq!(
            parse(b"Monday, 01-Jan-01 00:00:00 GMT", now),
            Some(Duration::from_secs(978_307_200 - 946_598_400))
        );
    }

    proptest::proptest! {
        /// Every instant, written in each of the three forms, reads back as itself.
        #[test]
        fn dates_round_trip(secs in 0u64..253_402_300_799, ahead in 0u64..1_000_000) {
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
            // 1970-01-01 was a Thursday.
            let wd = ((secs / 86_400 + 3) % 7) as usize;
            let mon = MONTHS[m as usize - 1];
            let hms = format!("{h:02}:{mi:02}:{s:02}");
            let now = at(secs.saturating_sub(ahead));
            let want = Some(Duration::from_secs(secs - secs.saturating_sub(ahead)));
            let fix = format!("{}, {d:02} {mon} {y:04} {hms} GMT", DAYS[wd]);
            proptest::prop_assert_eq!(parse(fix.as_bytes(), now), want, "{}", fix);
            let asc = format!("{} {mon} {d:>2} {hms} {y:04}", DAYS[wd]);
            proptest::prop_assert_eq!(parse(asc.as_bytes(), now), want, "{}", asc);
            if ahead < 40 * 365 * 86_400 {
                let r850 = format!("{}, {d:02}-{mon}-{:02} {hms} GMT", DAYS_LONG[wd], y % 100);
                proptest::prop_assert_eq!(parse(r850.as_bytes(), now), want, "{}", r850);
            }
        }

        /// No input panics.
        #[test]
        fn never_panics(v in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = parse(&v, at(RFC_EXAMPLE));
        }
    }
}
