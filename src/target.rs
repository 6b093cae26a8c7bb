//! Targets: turning user input into an absolute http/https URL, and the pieces of it
//! a request needs (origin-form target, Host value, pool key).
//!
//! Invariants: a [`Target`] always has scheme http or https, a non-empty host (IDN
//! names already in punycode, IPv6 in brackets in the Host value), and a port.
//! Anything else is refused with `invalid_url` and a detail saying why, as is an
//! input longer than [`MAX_INPUT`] bytes. Only a scheme at the very start of the input
//! (`name://`, RFC 3986 scheme syntax) counts as one: `host/?next=http://x` is a host.

use crate::error::{Error, ErrorKind};
use std::net::IpAddr;
use url::{Host, Url};

/// A parsed, usable http/https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL (fragment removed).
    pub url: Url,
    /// True for https.
    pub tls: bool,
    /// The host as an IP address, when it is a literal.
    pub ip: Option<IpAddr>,
    /// Port (explicit or the scheme default).
    pub port: u16,
}

/// The longest input [`Target::parse`] accepts, in bytes (64 KiB): the binary's input
/// reader keeps at most one byte more of a longer line, so that line is refused here.
pub const MAX_INPUT: usize = 64 * 1024;

fn bad(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidUrl, detail)
}

/// True when `s` begins with `scheme://`, the scheme being a letter followed by
/// letters, digits, `+`, `-` or `.` (RFC 3986 §3.1).
fn has_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    let name = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        .count();
    name > 0 && b[0].is_ascii_alphabetic() && b[name..].starts_with(b"://")
}

impl Target {
    /// Parses a line of input: trimmed; `http://` is put in front unless it begins
    /// with a scheme (`name://`). Inputs longer than [`MAX_INPUT`] bytes (before
    /// trimming) are refused.
    ///
    /// ```
    /// let t = volley::target::Target::parse("[::1]:8080/x").unwrap();
    /// assert_eq!((t.host(), t.port, t.host_header().as_str()), ("::1", 8080, "[::1]:8080"));
    /// ```
    pub fn parse(input: &str) -> Result<Target, Error> {
        if input.len() > MAX_INPUT {
            return Err(bad(format!(
                "input longer than {MAX_INPUT} bytes (64 KiB); the rest of it was not read"
            )));
        }
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty URL"));
        }
        let url = if has_scheme(s) {
            Url::parse(s)
        } else {
            Url::parse(&format!("http://{s}"))
        }
        .map_err(|e| bad(format!("{e}")))?;
        Target::from_url(url)
    }

    /// Checks an already parsed URL.
    pub fn from_url(mut url: Url) -> Result<Target, Error> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("scheme {other:?} is not http or https"))),
        };
        url.set_fragment(None);
        let ip = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => None,
            Some(Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => return Err(bad("URL has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("URL has no port"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Target { url, tls, ip, port })
    }

    /// Resolves a Location value against this URL (relative references allowed).
    pub fn join(&self, location: &str) -> Result<Target, Error> {
        let url = self
            .url
            .join(location.trim())
            .map_err(|e| bad(format!("Location {location:?}: {e}")))?;
        Target::from_url(url)
    }

    /// The origin-form request target: path and query.
    pub fn origin_form(&self) -> &str {
        let u = &self.url;
        let start = u.path().as_ptr() as usize - u.as_str().as_ptr() as usize;
        let end = u.query().map_or(start + u.path().len(), |q| {
            q.as_ptr() as usize - u.as_str().as_ptr() as usize + q.len()
        });
        &u.as_str()[start..end]
    }

    /// Host name (punycode, lower case) or IP literal, without brackets.
    pub fn host(&self) -> &str {
        let h = self.url.host_str().unwrap_or("");
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The host as the Host header writes it (IPv6 in brackets).
    pub fn host_for_header(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// The port, when the URL names one that is not the scheme's default.
    pub fn explicit_port(&self) -> Option<u16> {
        self.url.port()
    }

    /// The Host header value: host (IPv6 in brackets) and `:port` when not default.
    pub fn host_header(&self) -> String {
        match self.explicit_port() {
            Some(p) => format!("{}:{p}", self.host_for_header()),
            None => self.host_for_header().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = Target::parse("  example.test  ").unwrap();
        assert_eq!(t.url.as_str(), "http://example.test/");
        assert_eq!((t.port, t.tls, t.origin_form()), (80, false, "/"));
        let t = Target::parse("https://Example.TEST:8443/a/b?x=1&y#frag").unwrap();
        assert_eq!(t.host(), "example.test");
        assert_eq!(t.origin_form(), "/a/b?x=1&y");
        assert_eq!(t.host_header(), "example.test:8443");
        assert!(t.tls);
        let t = Target::parse("host:81").unwrap();
        assert_eq!((t.host(), t.port), ("host", 81));
        let t = Target::parse("http://127.0.0.1:80/").unwrap();
        assert_eq!(t.host_header(), "127.0.0.1"); // default port dropped
        let t = Target::parse("bücher.example/").unwrap();
        assert_eq!(t.host(), "xn--bcher-kva.example");
        let t = Target::parse("http://h/a b").unwrap();
        assert_eq!(t.origin_form(), "/a%20b");
    }

    /// Only a scheme at the start counts; anything else gets `http://` in front.
    #[test]
    fn scheme_only_at_the_start() {
        for (input, url) in [
            ("host/?next=http://x", "http://host/?next=http://x"),
            ("host/a?u=https://y/z#f", "http://host/a?u=https://y/z"),
            ("host:8080/r=ftp://q", "http://host:8080/r=ftp://q"),
            ("host/path://x", "http://host/path://x"),
            ("HTTP://Host/", "http://host/"),
            ("HtTpS://host/", "https://host/"),
            ("  http://h/  ", "http://h/"),
            ("[::1]:8080/?u=http://x", "http://[::1]:8080/?u=http://x"),
            ("//host/x", "http://host/x"),
            ("host", "http://host/"),
        ] {
            let t = Target::parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(t.url.as_str(), url, "{input}");
        }
        for (input, scheme) in [
            ("ftp://x/", true),
            ("a+b-c.d://x", true),
            ("x://y", true),
            ("1ttp://x", false),
            ("+a://x", false),
            ("a b://x", false),
            ("://x", false),
            ("http:/x", false),
            ("http//x", false),
            ("h/x://y", false),
            ("", false),
        ] {
            assert_eq!(has_scheme(input), scheme, "{input}");
        }
        // A scheme that is not http/https is refused, named in the detail.
        let e = Target::parse("gopher://x/").unwrap_err();
        assert!(e.detail.contains("gopher"), "{e:?}");
    }

    #[test]
    fn input_length_is_capped() {
        let path = "a".repeat(MAX_INPUT - "http://h/".len());
        let ok = format!("http://h/{path}");
        assert_eq!(ok.len(), MAX_INPUT);
        assert!(Target::parse(&ok).is_ok());
        let long = format!("{ok}a");
        let e = Target::parse(&long).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidUrl);
        assert!(e.detail.contains("65536"), "{e:?}");
        // Whitespace counts: the cap is on the input as read.
        assert!(Target::parse(&format!("{}http://h/", " ".repeat(MAX_INPUT))).is_err());
    }

    proptest::proptest! {
        /// Whatever follows the host never turns it into a scheme.
        #[test]
        fn anything_after_a_host_keeps_http(rest in "[ -~]{0,40}") {
            let input = format!("host/{rest}");
            if let Ok(t) = Target::parse(&input) {
                proptest::prop_assert_eq!(t.url.scheme(), "http");
                proptest::prop_assert_eq!(t.host(), "host");
            }
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "",
            "ftp://x/",
            "http://",
            "http://h:99999/",
            "http://[::1/",
            "http://h:0/",
            "http://a b/",
        ] {
            let e = Target::parse(s).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidUrl, "{s}");
        }
    }

    #[test]
    fn join() {
        let t = Target::parse("http://h/a/b").unwrap();
        assert_eq!(t.join("c").unwrap().url.as_str(), "http://h/a/c");
        assert_eq!(t.join("/x?y").unwrap().url.as_str(), "http://h/x?y");
        assert_eq!(
            t.join("//other:8/").unwrap().url.as_str(),
            "http://other:8/"
        );
        assert_eq!(t.join("https://s/").unwrap().url.as_str(), "https://s/");
        assert!(t.join("ftp://s/").is_err());
    }
}
