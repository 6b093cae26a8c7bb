//! Request encoding: method, target, headers and body into a caller-owned buffer.
//!
//! Invariants: the encoder only appends to the buffer it is given (a caller that
//! clears and reuses one buffer allocates nothing once the buffer has grown to its
//! working size); header names and values are written as given after a check that
//! they contain no CR, LF or NUL (so a user value can never smuggle a second header or
//! request), and a user header replaces the default header of the same name
//! (ASCII case-insensitive).

use crate::error::{Error, ErrorKind};
use crate::text::fmt_u64;

/// The parts of one request that the encoder needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// Method token, e.g. `GET`.
    pub method: &'a str,
    /// Request target: origin-form (`/path?q`) or, to a proxy, absolute-form.
    pub target: &'a str,
    /// Host for the Host header (IPv6 in brackets).
    pub host: &'a str,
    /// Port for the Host header: only when it is not the scheme's default.
    pub port: Option<u16>,
    /// Default headers other than Host, sent unless a user header has the same name.
    pub defaults: &'a [(&'a str, &'a str)],
    /// User headers, in order; each replaces a default of the same name.
    pub headers: &'a [(String, String)],
    /// Request body; sent with a Content-Length.
    pub body: &'a [u8],
    /// Send `Connection: close`.
    pub close: bool,
    /// `Proxy-Authorization` value (e.g. `Basic dXNlcjpwYXNz`) for a request sent
    /// to a proxy.
    pub proxy_auth: Option<&'a str>,
}

/// The default headers the contract names (besides Host).
pub const DEFAULT_HEADERS: [(&str, &str); 3] = [
    ("User-Agent", concat!("volley/", env!("CARGO_PKG_VERSION"))),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
];

fn check_token(what: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || s.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b':') {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("{what} {s:?} is not a valid HTTP token"),
        ));
    }
    Ok(())
}

fn check_value(what: &str, s: &str) -> Result<(), Error> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("{what} contains CR, LF or NUL"),
        ));
    }
    Ok(())
}

fn user_has(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn push_header(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Appends the encoded request (head and body) to `buf`.
///
/// Errors (kind `invalid_url`) when the method or a header name is not a token, or a
/// target or value contains CR, LF or NUL; nothing is appended then.
///
/// ```
/// use volley::codec::request::{encode, RequestHead, DEFAULT_HEADERS};
/// let mut buf = Vec::new();
/// encode(&mut buf, &RequestHead {
///     method: "GET", target: "/a", host: "example.test", port: Some(8080),
///     defaults: &DEFAULT_HEADERS, headers: &[], body: b"", close: false, proxy_auth: None,
/// }).unwrap();
/// assert!(buf.starts_with(b"GET /a HTTP/1.1\r\nHost: example.test:8080\r\n"));
/// ```
pub fn encode(buf: &mut Vec<u8>, req: &RequestHead<'_>) -> Result<(), Error> {
    check_token("method", req.method)?;
    check_value("request target", req.target)?;
    if req.target.bytes().any(|b| b == b' ') {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            "request target contains a space",
        ));
    }
    check_value("host", req.host)?;
    for (n, v) in req.headers {
        check_token("header name", n)?;
        check_value("header value", v)?;
    }
    buf.extend_from_slice(req.method.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(req.target.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    if !user_has(req.headers, "host") {
        buf.extend_from_slice(b"Host: ");
        buf.extend_from_slice(req.host.as_bytes());
        if let Some(p) = req.port {
            let mut digits = [0u8; 20];
            buf.push(b':');
            buf.extend_from_slice(fmt_u64(u64::from(p), &mut digits));
        }
        buf.extend_from_slice(b"\r\n");
    }
    for (n, v) in req.defaults {
        if !user_has(req.headers, n) {
            push_header(buf, n, v.as_bytes());
        }
    }
    // A user header with an empty value is not sent: it only removes the default
    // of that name (curl's `-H 'Accept:'`).
    for (n, v) in req.headers.iter().filter(|(_, v)| !v.is_empty()) {
        push_header(buf, n, v.as_bytes());
    }
    if let Some(a) = req.proxy_auth {
        check_value("proxy credentials", a)?;
        push_header(buf, "Proxy-Authorization", a.as_bytes());
    }
    if req.close && !user_has(req.headers, "connection") {
        push_header(buf, "Connection", b"close");
    }
    let needs_length = !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH");
    if needs_length
        && !user_has(req.headers, "content-length")
        && !user_has(req.headers, "transfer-encoding")
    {
        let mut digits = [0u8; 20];
        push_header(
            buf,
            "Content-Length",
            fmt_u64(req.body.len() as u64, &mut digits),
        );
    }
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(req.body);
    Ok(())
}

/// Appends a proxy `CONNECT` request for `authority` (`host:port`, IPv6 in brackets)
/// to `buf`: the request line, a Host header naming the same authority and, with
/// credentials, `Proxy-Authorization`. No default headers and no body.
///
/// ```
/// let mut buf = Vec::new();
/// volley::codec::request::encode_connect(&mut buf, "example.test:443", None).unwrap();
/// assert_eq!(buf, b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n");
/// ```
pub fn encode_connect(
    buf: &mut Vec<u8>,
    authority: &str,
    proxy_auth: Option<&str>,
) -> Result<(), Error> {
    check_value("CONNECT authority", authority)?;
    if authority.bytes().any(|b| b == b' ') {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            "CONNECT authority contains a space",
        ));
    }
    if let Some(a) = proxy_auth {
        check_value("proxy credentials", a)?;
    }
    buf.extend_from_slice(b"CONNECT ");
    buf.extend_from_slice(authority.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(buf, "Host", authority.as_bytes());
    if let Some(a) = proxy_auth {
        push_header(buf, "Proxy-Authorization", a.as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(req: RequestHead<'_>) -> String {
        let mut buf = Vec::new();
        encode(&mut buf, &req).unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn base<'a>() -> RequestHead<'a> {
        RequestHead {
            method: "GET",
            target: "/",
            host: "h",
            port: None,
            defaults: &DEFAULT_HEADERS,
            headers: &[],
            body: b"",
            close: false,
            proxy_auth: None,
        }
    }

    /// An empty user value removes the default of that name and sends nothing.
    #[test]
    fn empty_user_header_removes_the_default() {
        let mut buf = Vec::new();
        let headers = [
            ("accept".to_string(), String::new()),
            ("X-Empty".to_string(), String::new()),
            ("X-Kept".to_string(), "1".to_string()),
        ];
        encode(
            &mut buf,
            &RequestHead {
                method: "GET",
                target: "/",
                host: "h",
                port: None,
                defaults: &DEFAULT_HEADERS,
                headers: &headers,
                body: b"",
                close: false,
                proxy_auth: None,
            },
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(!text.to_ascii_lowercase().contains("accept:"), "{text}");
        assert!(!text.contains("X-Empty"), "{text}");
        assert!(
            text.contains("X-Kept: 1\r\n") && text.contains("User-Agent: "),
            "{text}"
        );
    }

    #[test]
    fn defaults_in_order() {
        let s = enc(base());
        assert_eq!(
            s,
            format!(
                "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: volley/{}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn user_header_replaces_default_case_insensitively() {
        let h = vec![
            ("user-agent".to_string(), "me".to_string()),
            ("X-A".to_string(), "1".to_string()),
        ];
        let s = enc(RequestHead {
            headers: &h,
            ..base()
        });
        assert!(!s.contains("volley/"));
        assert!(s.contains("\r\nuser-agent: me\r\nX-A: 1\r\n"));
    }

    #[test]
    fn user_host_replaces_host() {
        let h = vec![("HOST".to_string(), "other".to_string())];
        let s = enc(RequestHead {
            headers: &h,
            ..base()
        });
        assert!(!s.contains("Host: h\r\n"));
        assert!(s.contains("HOST: other\r\n"));
    }

    #[test]
    fn body_and_close() {
        let s = enc(RequestHead {
            method: "POST",
            body: b"abc",
            close: true,
            ..base()
        });
        assert!(s.contains("Connection: close\r\nContent-Length: 3\r\n\r\nabc"));
        let s = enc(RequestHead {
            method: "POST",
            ..base()
        });
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn rejects_injection() {
        let mut buf = Vec::new();
        let h = vec![("X".to_string(), "a\r\nEvil: 1".to_string())];
        let e = encode(
            &mut buf,
            &RequestHead {
                headers: &h,
                ..base()
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidUrl);
        assert!(buf.is_empty());
        let h = vec![("Bad Name".to_string(), "v".to_string())];
        assert!(encode(
            &mut buf,
            &RequestHead {
                headers: &h,
                ..base()
            }
        )
        .is_err());
        assert!(encode(
            &mut buf,
            &RequestHead {
                method: "G T",
                ..base()
            }
        )
        .is_err());
        assert!(encode(
            &mut buf,
            &RequestHead {
                target: "/a b",
                ..base()
            }
        )
        .is_err());
    }

    #[test]
    fn connect_request() {
        let mut buf = Vec::new();
        encode_connect(&mut buf, "[::1]:8443", Some("Basic dTpw")).unwrap();
        assert_eq!(
            buf,
            b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        let mut buf = Vec::new();
        assert!(encode_connect(&mut buf, "h:1\r\nX: y", None).is_err());
        assert!(encode_connect(&mut buf, "h:1", Some("Basic a\nb")).is_err());
        assert!(buf.is_empty());
    }
}
