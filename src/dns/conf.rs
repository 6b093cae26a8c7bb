//! The resolver's configuration files: `/etc/resolv.conf` ([`ResolvConf`]) and
//! `/etc/hosts` ([`Hosts`]), read from a path or parsed from a string, and the list of
//! names to try for a query under the `search`/`ndots` rules ([`names_to_try`]).
//!
//! Invariants: parsing never fails and never panics — unknown keywords, malformed
//! values and garbage lines are ignored, as glibc does; limits follow glibc (at most
//! [`MAX_SERVERS`] name servers, [`MAX_SEARCH`] search domains, `ndots` ≤ 15,
//! `timeout` ≤ 30 s, `attempts` ≤ 5). Names are stored lower case without a final dot.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Name servers kept from resolv.conf (glibc's MAXNS).
pub const MAX_SERVERS: usize = 3;
/// Search domains kept (glibc's MAXDNSRCH).
pub const MAX_SEARCH: usize = 6;

/// What `/etc/resolv.conf` says (the parts a stub resolver uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, port 53 (IPv6 scope ids such as `fe80::1%eth0` are kept).
    pub servers: Vec<SocketAddr>,
    /// The search list (`search`, or the single `domain`; the last such line wins).
    pub search: Vec<String>,
    /// `options ndots:N` (default 1).
    pub ndots: u8,
    /// `options timeout:N`, when given.
    pub timeout: Option<Duration>,
    /// `options attempts:N`, when given.
    pub attempts: Option<u32>,
    /// `options rotate`.
    pub rotate: bool,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: None,
            attempts: None,
            rotate: false,
        }
    }
}

fn normalise(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    (!n.is_empty() && n.len() <= 253 && !n.split('.').any(|l| l.is_empty() || l.len() > 63))
        .then(|| n.to_ascii_lowercase())
}

fn parse_server(word: &str) -> Option<SocketAddr> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    // `fe80::1%eth0`: a link-local address with its interface.
    let (addr, scope) = word.split_once('%')?;
    let ip: std::net::Ipv6Addr = addr.parse().ok()?;
    let scope_id = scope
        .parse::<u32>()
        .ok()
        .or_else(|| interface_index(scope))?;
    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
        ip, 53, 0, scope_id,
    )))
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

impl ResolvConf {
    /// Parses resolv.conf text; see the module docs.
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(s) = words.next().and_then(parse_server) {
                        if c.servers.len() < MAX_SERVERS && !c.servers.contains(&s) {
                            c.servers.push(s);
                        }
                    }
                }
                Some("search") => {
                    c.search = words.filter_map(normalise).take(MAX_SEARCH).collect();
                }
                Some("domain") => {
                    c.search = words.next().and_then(normalise).into_iter().collect();
                }
                Some("options") => {
                    for opt in words {
                        c.option(opt);
                    }
                }
                _ => {}
            }
        }
        c
    }

    fn option(&mut self, opt: &str) {
        let (key, val) = opt.split_once(':').unwrap_or((opt, ""));
        let num = val.parse::<u32>().ok();
        match (key, num) {
            ("ndots", Some(n)) => self.ndots = n.min(15) as u8,
            ("timeout", Some(n)) => self.timeout = Some(Duration::from_secs(n.clamp(1, 30).into())),
            ("attempts", Some(n)) => self.attempts = Some(n.clamp(1, 5)),
            ("rotate", _) => self.rotate = true,
            _ => {}
        }
    }

    /// Reads and parses the file at `path` (default `/etc/resolv.conf`).
    pub fn load(path: &Path) -> io::Result<ResolvConf> {
        Ok(ResolvConf::parse(&std::fs::read_to_string(path)?))
    }
}

/// The names to query for `name`, in order, as glibc's `res_search` tries them: a name
/// with a final dot only as given; a name with at least `ndots` dots as given first,
/// then with each search domain; a shorter one with each search domain first, then as
/// given. Names that would be too long are skipped.
pub fn names_to_try(name: &str, search: &[String], ndots: u8) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_ascii_lowercase()];
    }
    let base = name.to_ascii_lowercase();
    let searched = search
        .iter()
        .map(|d| format!("{base}.{d}"))
        .filter(|n| n.len() <= 253);
    let dots = name.bytes().filter(|&b| b == b'.').count();
    if dots >= usize::from(ndots) {
        std::iter::once(base.clone()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(base.clone())).collect()
    }
}

/// What `/etc/hosts` says: name → addresses, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    map: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// Parses hosts-file text: `address name [alias...]` per line, `#` comments;
    /// lines whose first word is not an address are ignored.
    pub fn parse(text: &str) -> Hosts {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words.filter_map(normalise) {
                let v = map.entry(name).or_default();
                if !v.contains(&addr) {
                    v.push(addr);
                }
            }
        }
        Hosts { map }
    }

    /// Reads and parses the file at `path` (default `/etc/hosts`).
    pub fn load(path: &Path) -> io::Result<Hosts> {
        Ok(Hosts::parse(&std::fs::read_to_string(path)?))
    }

    /// The addresses of `name` (any case, final dot or not).
    pub fn get(&self, name: &str) -> Option<&[IpAddr]> {
        let n = name.strip_suffix('.').unwrap_or(name);
        if n.bytes().any(|b| b.is_ascii_uppercase()) {
            self.map.get(&n.to_ascii_lowercase()).map(Vec::as_slice)
        } else {
            self.map.get(n).map(Vec::as_slice)
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no name is listed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_table() {
        let c = ResolvConf::parse(
            "# comment\n\
             nameserver 10.0.0.1\n\
             nameserver 2001:db8::53   # v6, port-less\n\
             nameserver not-an-address\n\
             nameserver 10.0.0.1\n\
             nameserver 10.0.0.2\n\
             nameserver 10.0.0.3\n\
             garbage line here\n\
             ; another comment\n\
             domain ignored.test\n\
             search Corp.Test. b.test ..bad\n\
             options ndots:3 timeout:2 attempts:9 rotate unknown:1 ndots:x\n\
             options\n",
        );
        assert_eq!(
            c.servers,
            [
                "10.0.0.1:53".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                "10.0.0.2:53".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(c.search, ["corp.test", "b.test"]);
        assert_eq!(c.ndots, 3);
        assert_eq!(c.timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.attempts, Some(5));
        assert!(c.rotate);
        let d = ResolvConf::parse("search a.test\ndomain only.test\nnameserver ::1\n");
        assert_eq!(d.search, ["only.test"]);
        assert_eq!(d.servers, ["[::1]:53".parse().unwrap()]);
        let e = ResolvConf::parse("options ndots:99 timeout:0\n\x00\u{fffd}\n");
        assert_eq!((e.ndots, e.timeout), (15, Some(Duration::from_secs(1))));
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
        let s = ResolvConf::parse("nameserver fe80::1%1\n");
        assert!(matches!(s.servers[0], SocketAddr::V6(a) if a.scope_id() == 1));
    }

    #[test]
    fn search_and_ndots() {
        let s = vec!["a.test".to_string(), "b.test".to_string()];
        assert_eq!(
            names_to_try("www", &s, 1),
            ["www.a.test", "www.b.test", "www"]
        );
        assert_eq!(
            names_to_try("www.x", &s, 1),
            ["www.x", "www.x.a.test", "www.x.b.test"]
        );
        assert_eq!(
            names_to_try("www.x", &s, 2),
            ["www.x.a.test", "www.x.b.test", "www.x"]
        );
        assert_eq!(names_to_try("Abs.Name.", &s, 5), ["abs.name"]);
        assert_eq!(names_to_try("www", &[], 1), ["www"]);
        let long = "x".repeat(250);
        assert_eq!(names_to_try(&long, &s, 1), vec![long]);
    }

    #[test]
    fn hosts_table() {
        let h = Hosts::parse(
            "127.0.0.1 localhost Local.Test # comment\n\
             ::1 localhost ip6-localhost\n\
             # 10.0.0.9 commented.test\n\
             bogus line.test\n\
             10.0.0.5\tmulti.test\talias.test\n\
             10.0.0.6 multi.test\n",
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(h.get("localhost").unwrap(), [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(h.get("LOCAL.test.").unwrap(), [ip("127.0.0.1")]);
        assert_eq!(
            h.get("multi.test").unwrap(),
            [ip("10.0.0.5"), ip("10.0.0.6")]
        );
        assert_eq!(h.get("alias.test").unwrap(), [ip("10.0.0.5")]);
        assert!(h.get("commented.test").is_none() && h.get("line.test").is_none());
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn load_from_paths() {
        let dir = std::env::temp_dir().join(format!("volley-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.9\n").unwrap();
        std::fs::write(dir.join("hosts"), "127.0.0.7 seven.test\n").unwrap();
        let c = ResolvConf::load(&dir.join("resolv.conf")).unwrap();
        assert_eq!(c.servers, ["127.0.0.9:53".parse().unwrap()]);
        let h = Hosts::load(&dir.join("hosts")).unwrap();
        assert!(h.get("seven.test").is_some());
        assert!(Hosts::load(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
