//! Address ranges for `--allow` / `--deny` (CIDR notation).
//!
//! Invariant: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is judged as the IPv4
//! address it carries, so a deny of `10.0.0.0/8` cannot be dodged by a name that
//! resolves to `::ffff:10.0.0.1`.

use std::fmt;
use std::net::IpAddr;

/// An address range: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// Parses `ADDR/LEN` or a bare address (a single host).
    ///
    /// ```
    /// let c = volley::cidr::Cidr::parse("10.0.0.0/8").unwrap();
    /// assert!(c.contains("10.1.2.3".parse().unwrap()));
    /// assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()));
    /// ```
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let err = || format!("{s:?} is not an address or CIDR range (like 10.0.0.0/8 or fd00::/8)");
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let net = canonical(
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| err())?,
        );
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(err)?,
        };
        Ok(Cidr { net, prefix })
    }

    /// True when `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `--allow` / `--deny` together: an address is permitted when it is inside some
/// allowed range (or none is given) and inside no denied range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Ranges to allow (empty = all).
    pub allow: Vec<Cidr>,
    /// Ranges to deny.
    pub deny: Vec<Cidr>,
}

impl AddressPolicy {
    /// True when `ip` may be connected to.
    pub fn permits(&self, ip: IpAddr) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip)))
            && !self.deny.iter().any(|c| c.contains(ip))
    }

    /// True when there is nothing to check.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c = Cidr::parse("192.168.0.0/16").unwrap();
        assert!(c.contains(ip("192.168.255.1")) && !c.contains(ip("192.169.0.1")));
        assert!(!c.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        let h = Cidr::parse("127.0.0.1").unwrap();
        assert!(h.contains(ip("127.0.0.1")) && !h.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fdab::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("[::1]").unwrap().contains(ip("::1")));
        // IPv4-mapped IPv6 is judged as IPv4, both ways.
        assert!(Cidr::parse("10.0.0.0/8")
            .unwrap()
            .contains(ip("::ffff:10.0.0.1")));
        for bad in ["", "10.0.0.0/33", "::/129", "host", "10.0.0/8", "1.2.3.4/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy() {
        let p = AddressPolicy {
            allow: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            deny: vec![Cidr::parse("10.0.0.5").unwrap()],
        };
        assert!(p.permits(ip("10.1.1.1")));
        assert!(!p.permits(ip("10.0.0.5")));
        assert!(!p.permits(ip("127.0.0.1")));
        assert!(AddressPolicy::default().permits(ip("127.0.0.1")));
    }
}
