//! Targets: turning user input into an absolute http/https URL, and the pieces of it
//! a request needs (origin-form target, Host value, pool key).
//!
//! Invariants: a [`Target`] always has scheme http or https, a non-empty host (IDN
//! names already in punycode, IPv6 in brackets in the Host value), and a port; its
//! text is what the url crate serializes for the input (fragment removed). Anything
//! else is refused with `invalid_url` and a detail saying why, as is an input longer
//! than [`MAX_INPUT`] bytes. Only a scheme at the very start of the input (`name://`,
//! RFC 3986 scheme syntax) counts as one: `host/?next=http://x` is a host.
//!
//! Cost: an input already in that form (the common case: `http://host:port/path`)
//! is recognised by `fast` without allocating, and [`Target::parse_owned`] keeps the
//! caller's string as the target's text; anything else goes through the url crate.
//! The parsed [`Url`] is made again only where a rare feature needs it (redirects,
//! cookies, URL credentials).

mod fast;

use crate::error::{Error, ErrorKind};
use std::net::IpAddr;
use url::{Host, Url};

/// A parsed, usable http/https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL's text (fragment removed), as the url crate serializes it.
    text: String,
    /// The host's byte range in `text` (IPv6 with its brackets).
    host: (u32, u32),
    /// Where the path starts in `text` (the rest is path and query).
    path: u32,
    /// The text names the port (it is not the scheme's default).
    explicit_port: bool,
    /// The text has `user[:password]@`.
    userinfo: bool,
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

/// Offset of `part` (a slice of `whole`) in `whole`.
fn offset(whole: &str, part: &str) -> u32 {
    (part.as_ptr() as usize - whole.as_ptr() as usize) as u32
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
        Self::check_len(input)?;
        match fast::scan(input) {
            Some(s) => Ok(Self::from_scan(input, s, None)),
            None => Self::parse_slow(input),
        }
    }

    /// As [`Target::parse`], taking the input string: when the fast path sees that
    /// it already is the target's text (the common case: a lower-case absolute
    /// http(s) URL with nothing to encode) it becomes that text, without a copy, and
    /// `None` comes back beside the target; otherwise the input comes back (`Some`)
    /// and the target has text of its own (possibly equal to it, when the url crate
    /// had to decide). On error the input comes back with it.
    ///
    /// ```
    /// use volley::target::Target;
    /// let (t, input) = Target::parse_owned("http://h/a".to_string()).unwrap();
    /// assert_eq!((t.as_str(), input), ("http://h/a", None));
    /// let (t, input) = Target::parse_owned("h/a".to_string()).unwrap();
    /// assert_eq!((t.as_str(), input.as_deref()), ("http://h/a", Some("h/a")));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn parse_owned(input: String) -> Result<(Target, Option<String>), (String, Error)> {
        if let Err(e) = Self::check_len(&input) {
            return Err((input, e));
        }
        match fast::scan(&input) {
            Some(s) if !s.prefix && !s.slash => {
                let t = Self::from_scan("", s, Some(input));
                Ok((t, None))
            }
            Some(s) => Ok((Self::from_scan(&input, s, None), Some(input))),
            None => match Self::parse_slow(&input) {
                Ok(t) => Ok((t, Some(input))),
                Err(e) => Err((input, e)),
            },
        }
    }

    fn check_len(input: &str) -> Result<(), Error> {
        if input.len() > MAX_INPUT {
            return Err(bad(format!(
                "input longer than {MAX_INPUT} bytes (64 KiB); the rest of it was not read"
            )));
        }
        Ok(())
    }

    /// A target from the fast scan of `input` (or of `owned`, which becomes the
    /// text as it is: the scan then asked for neither prefix nor slash).
    fn from_scan(input: &str, s: fast::Scan, owned: Option<String>) -> Target {
        let (text, shift) = match owned {
            Some(text) => (text, 0),
            None => {
                let shift = if s.prefix { 7 } else { 0 };
                let mut text = String::with_capacity(input.len() + shift + 1);
                if s.prefix {
                    text.push_str("http://");
                }
                text.push_str(&input[..s.path]);
                if s.slash {
                    text.push('/');
                }
                text.push_str(&input[s.path..]);
                (text, shift)
            }
        };
        Target {
            text,
            host: ((s.host.0 + shift) as u32, (s.host.1 + shift) as u32),
            path: (s.path + shift) as u32,
            explicit_port: s.explicit_port,
            userinfo: false,
            tls: s.tls,
            ip: s.ip.map(IpAddr::V4),
            port: s.port,
        }
    }

    /// Everything the fast scan is unsure of: the url crate decides.
    fn parse_slow(input: &str) -> Result<Target, Error> {
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
        let whole = url.as_str();
        let h = url.host_str().unwrap_or("");
        let host = (offset(whole, h), offset(whole, h) + h.len() as u32);
        let path = offset(whole, url.path());
        let explicit_port = url.port().is_some();
        let userinfo = !url.username().is_empty() || url.password().is_some();
        Ok(Target {
            text: url.into(),
            host,
            path,
            explicit_port,
            userinfo,
            tls,
            ip,
            port,
        })
    }

    /// The URL as text (fragment removed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL's text, taken.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The URL parsed again by the url crate (for the rare features that need its
    /// API: relative references, cookies, credentials).
    pub fn to_url(&self) -> Result<Url, Error> {
        Url::parse(&self.text).map_err(|e| bad(format!("{e}")))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// True when the URL has `user[:password]@`.
    pub fn has_userinfo(&self) -> bool {
        self.userinfo
    }

    /// Resolves a Location value against this URL (relative references allowed).
    pub fn join(&self, location: &str) -> Result<Target, Error> {
        let url = self
            .to_url()?
            .join(location.trim())
            .map_err(|e| bad(format!("Location {location:?}: {e}")))?;
        Target::from_url(url)
    }

    /// The origin-form request target: path and query.
    pub fn origin_form(&self) -> &str {
        &self.text[self.path as usize..]
    }

    /// Host name (punycode, lower case) or IP literal, without brackets.
    pub fn host(&self) -> &str {
        let h = self.host_for_header();
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The host as the Host header writes it (IPv6 in brackets).
    pub fn host_for_header(&self) -> &str {
        &self.text[self.host.0 as usize..self.host.1 as usize]
    }

    /// The port, when the URL names one that is not the scheme's default.
    pub fn explicit_port(&self) -> Option<u16> {
        self.explicit_port.then_some(self.port)
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
mod tests;
