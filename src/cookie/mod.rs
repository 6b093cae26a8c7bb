//! An RFC 6265 cookie jar: what `Set-Cookie` stores and what `Cookie` sends.
//!
//! Owns the cookies of one run, keyed by their domain. The jar is pure: it is given
//! the request's URL and the time (Unix seconds) on every call, and reads no clock.
//!
//! The rules applied (RFC 6265 §5.3 and §5.4, with two tightenings from RFC 6265bis):
//! - **domain**: a cookie without `Domain` is *host-only* (sent back to that exact
//!   host); with `Domain`, the request host must domain-match it, and it is sent to
//!   the domain and its subdomains. An IP-address host never matches a parent domain.
//! - **public suffixes**: there is no full Public Suffix List here (it is large and
//!   changes weekly). `Domain=` naming a single label (`com`, `localhost`), or one of
//!   the embedded list of common multi-label registry suffixes ([`is_public_suffix`]:
//!   `co.uk`, `com.au`, `github.io`, …), is refused unless it equals the request host,
//!   in which case the cookie becomes host-only. A registry suffix not on the list
//!   (say `pvt.k12.ma.us`) is accepted as a cookie domain: the known gap, documented
//!   in `docs/library.md`.
//! - **path**: `Path` when it starts with `/`, else the request path's directory;
//!   sent when the request path path-matches it.
//! - **secure**: a `Secure` cookie is sent over https only, and (6265bis) an http
//!   response may not set one.
//! - **expiry**: `Max-Age` wins over `Expires`; a date in the past (or `Max-Age<=0`)
//!   deletes the cookie of the same name, domain and path. Cookies without either
//!   last for the run (session cookies); expired ones are never sent or saved.
//! - **bounds**: at most [`Jar::per_domain`] cookies per domain and [`Jar::total`] in
//!   all (defaults 50 and 3000, the RFC's minimums). A new cookie over a cap evicts the
//!   expired ones first, then the least recently used.
//!
//! Invariants: `count` equals the number of stored cookies; no domain's list is empty
//! or longer than `per_domain`; `count <= total`; no two cookies share name, domain
//! and path.
//!
//! The cookie file format (curl's and Netscape's) is in [`mod@file`]; `Set-Cookie`
//! parsing in [`parse`].

pub mod file;
pub mod parse;

use std::collections::HashMap;
use url::{Host, Url};

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// The host (host-only) or the domain it is sent to, lowercased, no leading dot.
    pub domain: String,
    /// Sent to exactly `domain`, not its subdomains.
    pub host_only: bool,
    /// Sent to request paths that path-match this.
    pub path: String,
    /// Sent over https only.
    pub secure: bool,
    /// The server marked it `HttpOnly` (kept for the cookie file).
    pub http_only: bool,
    /// Expiry in Unix seconds; `None` for a session cookie.
    pub expires: Option<i64>,
    /// Creation order (for the `Cookie` header's order).
    created: u64,
    /// Last use (for eviction).
    used: u64,
}

impl Cookie {
    /// A cookie with no creation order yet; [`Jar::insert`] gives it one.
    pub fn new(name: &str, value: &str, domain: &str, path: &str) -> Cookie {
        Cookie {
            name: name.to_string(),
            value: value.to_string(),
            domain: domain.trim_start_matches('.').to_ascii_lowercase(),
            host_only: true,
            path: path.to_string(),
            secure: false,
            http_only: false,
            expires: None,
            created: 0,
            used: 0,
        }
    }

    fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// A cookie jar; see the module docs for its rules.
///
/// ```
/// use volley::cookie::Jar;
/// let mut jar = Jar::default();
/// let now = 1_700_000_000;
/// let u = url::Url::parse("https://shop.example.com/cart/add").unwrap();
/// assert!(jar.store(&u, "sid=1; Domain=example.com; Path=/", now));
/// assert!(jar.store(&u, "step=2", now)); // host-only, path /cart
/// let other = url::Url::parse("https://www.example.com/").unwrap();
/// assert_eq!(jar.header(&other, now).as_deref(), Some("sid=1"));
/// assert_eq!(jar.header(&u, now).as_deref(), Some("step=2; sid=1"));
/// assert!(!jar.store(&u, "x=1; Domain=com", now)); // a public suffix
/// ```
#[derive(Debug, Clone)]
pub struct Jar {
    by_domain: HashMap<String, Vec<Cookie>>,
    count: usize,
    seq: u64,
    /// Most cookies kept per domain.
    pub per_domain: usize,
    /// Most cookies kept in all.
    pub total: usize,
}

impl Default for Jar {
    fn default() -> Self {
        Jar {
            by_domain: HashMap::new(),
            count: 0,
            seq: 0,
            per_domain: 50,
            total: 3000,
        }
    }
}

/// Multi-label registry suffixes refused as a cookie `Domain` (single labels are
/// always refused). Not the Public Suffix List: the commonest registries only.
const SUFFIXES: &[&str] = &[
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "me.uk",
    "net.uk",
    "ltd.uk",
    "plc.uk",
    "com.au",
    "net.au",
    "org.au",
    "edu.au",
    "gov.au",
    "co.nz",
    "org.nz",
    "net.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "go.jp",
    "co.kr",
    "or.kr",
    "com.cn",
    "net.cn",
    "org.cn",
    "gov.cn",
    "com.tw",
    "com.hk",
    "com.sg",
    "com.my",
    "co.in",
    "net.in",
    "org.in",
    "gov.in",
    "co.id",
    "co.th",
    "com.vn",
    "com.ph",
    "com.pk",
    "com.br",
    "net.br",
    "org.br",
    "gov.br",
    "com.ar",
    "com.mx",
    "com.co",
    "com.pe",
    "co.za",
    "org.za",
    "com.ng",
    "co.ke",
    "com.eg",
    "com.tr",
    "gov.tr",
    "com.ua",
    "co.il",
    "org.il",
    "ac.il",
    "com.sa",
    "co.at",
    "or.at",
    "com.pl",
    "net.pl",
    "org.pl",
    "com.es",
    "com.pt",
    "co.it",
    "com.gr",
    "com.ru",
    "gov.ru",
    "github.io",
    "gitlab.io",
    "herokuapp.com",
    "appspot.com",
    "blogspot.com",
    "cloudfront.net",
    "azurewebsites.net",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
    "web.app",
    "firebaseapp.com",
    "s3.amazonaws.com",
];

/// True for a domain no cookie may be scoped to: a single label, or one of the
/// embedded registry suffixes (not the full Public Suffix List; see the module docs).
///
/// ```
/// use volley::cookie::is_public_suffix;
/// assert!(is_public_suffix("com") && is_public_suffix("co.uk") && is_public_suffix("github.io"));
/// assert!(!is_public_suffix("example.com") && !is_public_suffix("example.co.uk"));
/// ```
pub fn is_public_suffix(domain: &str) -> bool {
    !domain.contains('.') || SUFFIXES.iter().any(|s| s.eq_ignore_ascii_case(domain))
}

/// Parses `n=v; n2=v2` (the `Cookie` header's syntax, and the CLI's `--cookie`) into
/// pairs; pieces without `=` or with an empty name are skipped.
///
/// ```
/// assert_eq!(volley::cookie::parse_pairs("a=1; b = 2;;bad; =x"),
///            vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
/// ```
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// `host` domain-matches `domain` (RFC 6265 §5.1.3); both lowercase.
pub fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            && !is_ip(host))
}

/// The request path `path` path-matches the cookie path `cpath` (RFC 6265 §5.1.4).
pub fn path_match(path: &str, cpath: &str) -> bool {
    path == cpath
        || (path.starts_with(cpath)
            && (cpath.ends_with('/') || path.as_bytes().get(cpath.len()) == Some(&b'/')))
}

/// The default cookie path of a request path (RFC 6265 §5.1.4): its directory.
pub fn default_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) if i > 0 && path.starts_with('/') => &path[..i],
        _ => "/",
    }
}

fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok()
}

/// The URL's host as the jar keys it (lowercase; IPv6 in brackets), if any.
fn url_host(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ipv4(a) => Some(a.to_string()),
        Host::Ipv6(a) => Some(format!("[{a}]")),
    }
}

impl Jar {
    /// An empty jar with these caps (each at least 1).
    pub fn with_caps(per_domain: usize, total: usize) -> Jar {
        Jar {
            per_domain: per_domain.max(1),
            total: total.max(1),
            ..Jar::default()
        }
    }

    /// Number of cookies stored (expired ones included until evicted or saved).
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every stored cookie (any order).
    pub fn iter(&self) -> impl Iterator<Item = &Cookie> {
        self.by_domain.values().flatten()
    }

    /// Applies one `Set-Cookie` value received in answer to `url` at `now`. Returns
    /// whether a cookie was stored (a deletion, or a refusal, returns false).
    pub fn store(&mut self, url: &Url, set_cookie: &str, now: i64) -> bool {
        let Some(sc) = parse::set_cookie(set_cookie) else {
            return false;
        };
        let Some(host) = url_host(url) else {
            return false;
        };
        let https = url.scheme() == "https";
        if sc.secure && !https {
            return false;
        }
        let (domain, host_only) = match sc.domain {
            None => (host.clone(), true),
            Some(d) if is_public_suffix(&d) || is_ip(&host) => {
                if d != host {
                    return false;
                }
                (d, true)
            }
            Some(d) => {
                if !domain_match(&host, &d) {
                    return false;
                }
                (d, false)
            }
        };
        let expires = match (sc.max_age, sc.expires) {
            (Some(a), _) if a <= 0 => Some(i64::MIN),
            (Some(a), _) => Some(now.saturating_add(a)),
            (None, e) => e,
        };
        let path = sc
            .path
            .unwrap_or_else(|| default_path(url.path()).to_string());
        let c = Cookie {
            name: sc.name,
            value: sc.value,
            domain,
            host_only,
            path,
            secure: sc.secure,
            http_only: sc.http_only,
            expires,
            created: 0,
            used: 0,
        };
        self.insert(c, now)
    }

    /// Stores a cookie as given (replacing one of the same name, domain and path,
    /// whose creation order it keeps); an expired one only deletes. Returns whether
    /// it was stored.
    pub fn insert(&mut self, mut c: Cookie, now: i64) -> bool {
        self.seq += 1;
        c.used = self.seq;
        c.created = self.seq;
        let expired = c.expired(now);
        if let Some(list) = self.by_domain.get_mut(&c.domain) {
            if let Some(i) = list
                .iter()
                .position(|o| o.name == c.name && o.path == c.path)
            {
                if expired {
                    list.swap_remove(i);
                    self.count -= 1;
                    if list.is_empty() {
                        self.by_domain.remove(&c.domain);
                    }
                    return false;
                }
                c.created = list[i].created;
                list[i] = c;
                return true;
            }
        }
        if expired {
            return false;
        }
        self.make_room(&c.domain, now);
        self.count += 1;
        self.by_domain.entry(c.domain.clone()).or_default().push(c);
        true
    }

    /// Evicts so that one more cookie fits in `domain` and in the jar.
    fn make_room(&mut self, domain: &str, now: i64) {
        if let Some(list) = self.by_domain.get_mut(domain) {
            if list.len() >= self.per_domain {
                let before = list.len();
                list.retain(|c| !c.expired(now));
                if list.len() >= self.per_domain {
                    if let Some(i) = (0..list.len()).min_by_key(|&i| list[i].used) {
                        list.swap_remove(i);
                    }
                }
                self.count -= before - list.len();
            }
        }
        if self.count >= self.total {
            self.purge(now);
        }
        if self.count >= self.total {
            let lru = self
                .by_domain
                .iter()
                .flat_map(|(d, l)| l.iter().enumerate().map(move |(i, c)| (c.used, d, i)))
                .min()
                .map(|(_, d, i)| (d.clone(), i));
            if let Some((d, i)) = lru {
                let list = self.by_domain.get_mut(&d).expect("just seen");
                list.swap_remove(i);
                self.count -= 1;
                if list.is_empty() {
                    self.by_domain.remove(&d);
                }
            }
        }
    }

    /// Drops every expired cookie.
    pub fn purge(&mut self, now: i64) {
        let mut count = 0;
        self.by_domain.retain(|_, l| {
            l.retain(|c| !c.expired(now));
            count += l.len();
            !l.is_empty()
        });
        self.count = count;
    }

    /// The `Cookie` header value for a request to `url` at `now` (`None` when no
    /// cookie applies): longer paths first, then older cookies first (RFC 6265 §5.4).
    pub fn header(&mut self, url: &Url, now: i64) -> Option<String> {
        let host = url_host(url)?;
        let https = url.scheme() == "https";
        let path = url.path();
        self.seq += 1;
        let seq = self.seq;
        // The host's own bucket, then each parent domain's (none for an IP host).
        let mut keys = vec![host.clone()];
        if !is_ip(&host) {
            let mut d: &str = &host;
            while let Some((_, rest)) = d.split_once('.') {
                keys.push(rest.to_string());
                d = rest;
            }
        }
        // (path length, creation, bucket, index): sorted longest path, oldest first.
        let mut hits: Vec<(usize, u64, usize, usize)> = Vec::new();
        for (b, k) in keys.iter().enumerate() {
            let Some(list) = self.by_domain.get(k) else {
                continue;
            };
            for (i, c) in list.iter().enumerate() {
                if (c.host_only && c.domain != host)
                    || (c.secure && !https)
                    || c.expired(now)
                    || !path_match(path, &c.path)
                {
                    continue;
                }
                hits.push((c.path.len(), c.created, b, i));
            }
        }
        if hits.is_empty() {
            return None;
        }
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out = String::new();
        for (_, _, b, i) in hits {
            let c = &mut self.by_domain.get_mut(&keys[b]).expect("just seen")[i];
            c.used = seq;
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&c.name);
            out.push('=');
            out.push_str(&c.value);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests;
