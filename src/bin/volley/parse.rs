//! The option values' parsers and range checks: what clap calls to turn a string
//! into a timeout, a rate, a `--resolve` pin, a DNS server, a header or a cookie
//! list, and the limits those values are held to.
//!
//! Invariant: every value accepted here is in range for the engine — no timeout or
//! rate that passes can panic or overflow a deadline later (`duration` refuses what
//! the parsers would not have let through).

use std::net::IpAddr;
use std::time::Duration;

/// Shortest timeout accepted, seconds: deadlines are kept in whole milliseconds.
pub const MIN_SECS: f64 = 0.001;
/// Longest timeout accepted, seconds (about 11.6 days): far from where adding it to
/// an `Instant` or a `Duration` could overflow, and longer than any probe needs.
pub const MAX_SECS: f64 = 1e6;
/// Slowest `--rate` other than 0 (none): one request per [`MAX_SECS`].
pub const MIN_RATE: f64 = 1.0 / MAX_SECS;
/// Fastest `--rate`: a billion requests per second, beyond any loop's reach (and the
/// interval, one nanosecond, still a whole `Duration`).
pub const MAX_RATE: f64 = 1e9;
/// Most requests in flight (`-c`) or connections per host (`--per-host`): each needs
/// a descriptor, and Linux allows a process at most 2^20 of them.
pub const MAX_CONCURRENCY: i64 = 1 << 20;
/// Most `--retries`: the backoff is capped at 30 s, so 100 retries already wait close
/// to an hour for one target.
pub const MAX_RETRIES: i64 = 100;
/// Most `--max-redirects` (curl's default is 50; every hop is kept in `redirects`).
pub const MAX_REDIRECTS: i64 = 1000;

/// A number as written on the command line: decimal or exponent form, finite.
pub fn parse_finite(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A timeout in seconds, from [`MIN_SECS`] to [`MAX_SECS`].
pub fn parse_secs(s: &str) -> Result<f64, String> {
    match parse_finite(s) {
        Some(v) if (MIN_SECS..=MAX_SECS).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds from {MIN_SECS} to {MAX_SECS}"
        )),
    }
}

/// A timeout in seconds that may be 0 (none), else as [`parse_secs`].
pub fn parse_secs_or_zero(s: &str) -> Result<f64, String> {
    match parse_finite(s) {
        Some(v) if v == 0.0 || (MIN_SECS..=MAX_SECS).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not 0 (none) or a number of seconds from {MIN_SECS} to {MAX_SECS}"
        )),
    }
}

/// Requests per second: 0 (no limit), or from [`MIN_RATE`] to [`MAX_RATE`].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match parse_finite(s) {
        Some(v) if v == 0.0 || (MIN_RATE..=MAX_RATE).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not 0 (no limit) or a rate per second from {MIN_RATE} to {MAX_RATE}"
        )),
    }
}

/// `secs` seconds as a `Duration`, refused (naming `option`) outside the range the
/// parsers allow: no option value can panic or overflow a deadline later.
pub fn duration(option: &str, secs: f64) -> Result<Duration, String> {
    if !(MIN_SECS..=MAX_SECS).contains(&secs) {
        return Err(format!(
            "{option} {secs}: not a number of seconds from {MIN_SECS} to {MAX_SECS}"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{option} {secs}: {e}"))
}

/// Parses curl's `HOST:PORT:ADDR` (ADDR may be a bracketed IPv6 address).
pub fn parse_resolve(s: &str) -> Result<(String, u16, IpAddr), String> {
    let err = || format!("{s:?} is not HOST:PORT:ADDR");
    let (host, rest) = s.split_once(':').ok_or_else(err)?;
    let (port, addr) = rest.split_once(':').ok_or_else(err)?;
    let port = port.parse::<u16>().map_err(|_| err())?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.parse::<IpAddr>().map_err(|_| err())?;
    if host.is_empty() {
        return Err(err());
    }
    Ok((host.to_ascii_lowercase(), port, addr))
}

/// Parses `--dns-rate`: 0 (no cap) or a rate from [`MIN_RATE`] to [`MAX_RATE`].
pub fn parse_dns_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r == 0.0 || (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(format!(
            "--dns-rate {s}: not 0 or a number of queries per second from {MIN_RATE} to {MAX_RATE}"
        )),
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when omitted).
pub fn parse_dns_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not IP[:PORT]"))
}

/// Parses `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (n, v) = h
        .split_once(':')
        .ok_or_else(|| format!("-H {h:?}: expected 'Name: value'"))?;
    let n = n.trim();
    if n.is_empty() || n.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("-H {h:?}: invalid header name"));
    }
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("-H {h:?}: value contains CR, LF or NUL"));
    }
    Ok((n.to_string(), v.trim().to_string()))
}

/// `--cookie 'n=v; …'`: at least one pair, nothing that would break the header.
pub fn parse_cookie_pairs(s: &str) -> Result<String, String> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("contains a control character".into());
    }
    let pairs = volley::cookie::parse_pairs(s);
    if pairs.is_empty() {
        return Err("expected 'name=value; name2=value2'".into());
    }
    Ok(pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; "))
}
