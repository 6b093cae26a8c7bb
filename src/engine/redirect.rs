//! Redirects: what a response head means for the request, as one pure function.
//!
//! [`decide`] takes the head's status and `Location`, the current hop and the policy,
//! and answers: follow (to which URL, with which method), final (with the resolved
//! `Location` to report), or too many. The engine applies the answer; nothing here
//! touches a socket, the clock or the task.
//!
//! Rules (the contract's): any 3xx with a `Location` that resolves against the
//! current URL reports it (`Outcome::location`) unless it is followed; 301, 302, 303,
//! 307 and 308 with one are followed when `--follow` is on, up to
//! `--max-redirects` hops; 303 turns anything but HEAD into a body-less GET, and 301
//! and 302 turn POST into GET (as browsers do); 307 and 308 keep method and body.
//! Once a hop has switched to GET, later hops stay GET.
//!
//! User headers on a later hop ([`carries`], curl's rules): `Authorization` and
//! `Cookie` are sent only while the hop's scheme, host and port are the request's
//! own (`--location-trusted` sends them anywhere); the user's `Host` only while the
//! host is the request's own; `Content-Length`, `Content-Type` and
//! `Transfer-Encoding` never on a hop sent without a body.

use super::api::Redirect;
use crate::error::{Error, ErrorKind};
use crate::target::Target;

/// Where the request stands when a head arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hop<'a> {
    /// The URL of this hop.
    pub url: &'a Target,
    /// The request's own method.
    pub method: &'a str,
    /// An earlier hop already turned the request into a body-less GET.
    pub as_get: bool,
    /// Redirects followed so far.
    pub followed: usize,
}

/// The redirect options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// `--follow`.
    pub follow: bool,
    /// `--max-redirects`.
    pub max: u32,
}

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Follow: discard this body, record `record`, and request `next` (as a
    /// body-less GET when `as_get`).
    Follow {
        /// The next hop's URL.
        next: Target,
        /// The hop being left, for `Outcome::redirects`.
        record: Redirect,
        /// Send the next hop as a body-less GET.
        as_get: bool,
    },
    /// The response is the answer. `location` is the resolved `Location` of an
    /// unfollowed redirect.
    Final {
        /// The resolved redirect target, for `Outcome::location`.
        location: Option<String>,
    },
    /// Following would exceed `--max-redirects`: the error, and the resolved
    /// `Location` not followed (this response is the final one).
    TooMany(Error, Option<String>),
}

/// True for the statuses that redirect.
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Decides what a head with `status` and raw `location` means; see the module docs.
#[inline]
pub(crate) fn decide(status: u16, location: Option<&[u8]>, hop: Hop<'_>, p: Policy) -> Decision {
    if !(300..400).contains(&status) {
        return Decision::Final { location: None };
    }
    let location = location.map(|l| String::from_utf8_lossy(l).into_owned());
    let resolved = location.as_deref().and_then(|l| hop.url.join(l).ok());
    let next = match resolved {
        Some(next) if p.follow && is_redirect(status) => next,
        Some(other) => {
            return Decision::Final {
                location: Some(other.into_string()),
            }
        }
        // Not an http(s) URL (`ftp://x/`), or not a URL at all: an absolute
        // reference is reported as the url crate resolves it, never followed.
        None => {
            return Decision::Final {
                location: location.as_deref().and_then(|l| resolve_any(hop.url, l)),
            }
        }
    };
    if hop.followed as u32 >= p.max {
        let e = Error::new(
            ErrorKind::TooManyRedirects,
            format!(
                "more than {} redirects (last to {})",
                p.max,
                location.unwrap_or_default()
            ),
        );
        return Decision::TooMany(e, Some(next.into_string()));
    }
    let post_like = !hop.as_get && !hop.method.eq_ignore_ascii_case("HEAD");
    let to_get = status == 303 && post_like
        || matches!(status, 301 | 302) && hop.method.eq_ignore_ascii_case("POST");
    let record = Redirect {
        url: hop.url.as_str().to_string(),
        status,
        location: next.as_str().to_string(),
    };
    Decision::Follow {
        next,
        record,
        as_get: hop.as_get || to_get,
    }
}

/// `location` resolved against the hop's URL whatever its scheme (for the report
/// of a redirect that is not followed); `None` when it is no URL at all.
fn resolve_any(base: &Target, location: &str) -> Option<String> {
    let url = base.to_url().ok()?.join(location.trim()).ok()?;
    Some(url.into())
}

/// What a later hop may carry of the user's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Carry {
    /// `Authorization` and `Cookie`.
    pub credentials: bool,
    /// The user's `Host`.
    pub host: bool,
    /// `Content-Length`, `Content-Type`, `Transfer-Encoding`.
    pub body_headers: bool,
}

impl Carry {
    /// Everything is carried (the request's own hop).
    pub const ALL: Carry = Carry {
        credentials: true,
        host: true,
        body_headers: true,
    };

    /// True when user header `name` may be sent.
    pub fn keeps(self, name: &str) -> bool {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("authorization") || is("cookie") {
            return self.credentials;
        }
        if is("host") {
            return self.host;
        }
        if is("content-length") || is("content-type") || is("transfer-encoding") {
            return self.body_headers;
        }
        true
    }
}

/// What the hop to `next` may carry of the user's headers, for a request to
/// `first`; `as_get`: the hop is sent as a body-less GET; `trusted`:
/// `--location-trusted`. See the module docs.
pub(crate) fn carries(first: &Target, next: &Target, as_get: bool, trusted: bool) -> Carry {
    let same_host = first.host().eq_ignore_ascii_case(next.host());
    let same_origin = same_host && first.tls == next.tls && first.port == next.port;
    Carry {
        credentials: trusted || same_origin,
        host: same_host,
        body_headers: !as_get,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    const FOLLOW: Policy = Policy {
        follow: true,
        max: 5,
    };

    fn hop<'a>(url: &'a Target, method: &'a str, as_get: bool, followed: usize) -> Hop<'a> {
        Hop {
            url,
            method,
            as_get,
            followed,
        }
    }

    #[test]
    fn method_rewriting_table() {
        let u = t("http://a.test/x/y");
        // (status, method, already GET, next as GET?)
        let table = [
            (301, "GET", false, false),
            (301, "POST", false, true),
            (302, "POST", false, true),
            (302, "PUT", false, false),
            (303, "PUT", false, true),
            (303, "POST", false, true),
            (303, "HEAD", false, false),
            (307, "POST", false, false),
            (308, "POST", false, false),
            (307, "POST", true, true),
        ];
        for (status, method, as_get, want) in table {
            match decide(status, Some(b"../z?q"), hop(&u, method, as_get, 0), FOLLOW) {
                Decision::Follow {
                    next,
                    record,
                    as_get,
                } => {
                    assert_eq!(next.as_str(), "http://a.test/z?q");
                    assert_eq!(record.url, "http://a.test/x/y");
                    assert_eq!(record.status, status);
                    assert_eq!(as_get, want, "{status} {method}");
                }
                d => panic!("{status} {method}: {d:?}"),
            }
        }
    }

    #[test]
    fn final_answers() {
        let u = t("http://a.test/x");
        let no = Policy {
            follow: false,
            max: 5,
        };
        type Row<'a> = (u16, Option<&'a [u8]>, Policy, Option<&'a str>);
        let table: [Row<'_>; 13] = [
            (200, Some(b"/elsewhere"), FOLLOW, None),
            (404, None, FOLLOW, None),
            (301, None, FOLLOW, None),
            // Any 3xx with a usable Location reports it, followed or not.
            (300, Some(b"/choice"), FOLLOW, Some("http://a.test/choice")),
            (304, Some(b"/same"), FOLLOW, Some("http://a.test/same")),
            (399, Some(b"//c.test/"), no, Some("http://c.test/")),
            (305, None, FOLLOW, None),
            (302, Some(b"http://[bad"), FOLLOW, None),
            (302, Some(b"/b"), no, Some("http://a.test/b")),
            (308, Some(b"https://b.test/"), no, Some("https://b.test/")),
            // An absolute Location that is not http(s) is reported, never followed.
            (302, Some(b"ftp://x/"), FOLLOW, Some("ftp://x/")),
            (301, Some(b"mailto:a@b.test"), no, Some("mailto:a@b.test")),
            (302, Some(b"http://"), FOLLOW, None),
        ];
        for (status, loc, p, want) in table {
            assert_eq!(
                decide(status, loc, hop(&u, "GET", false, 0), p),
                Decision::Final {
                    location: want.map(String::from)
                },
                "{status} {loc:?}"
            );
        }
    }

    #[test]
    fn too_many() {
        let u = t("http://a.test/");
        match decide(302, Some(b"/again"), hop(&u, "GET", false, 5), FOLLOW) {
            Decision::TooMany(e, location) => {
                assert_eq!(e.kind, ErrorKind::TooManyRedirects);
                assert_eq!(e.detail, "more than 5 redirects (last to /again)");
                // The redirect not followed is reported as for an unfollowed one.
                assert_eq!(location.as_deref(), Some("http://a.test/again"));
            }
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            decide(302, Some(b"/again"), hop(&u, "GET", false, 4), FOLLOW),
            Decision::Follow { .. }
        ));
    }

    #[test]
    fn headers_carried_to_a_later_hop() {
        let first = t("http://a.test/x");
        // (next, as GET, trusted, credentials, Host, body headers)
        let table = [
            ("http://a.test/y", false, false, true, true, true),
            ("http://A.TEST:80/y", true, false, true, true, false),
            ("https://a.test/y", false, false, false, true, true),
            ("http://a.test:8080/y", false, false, false, true, true),
            ("http://b.test/y", false, false, false, false, true),
            ("http://b.test/y", false, true, true, false, true),
            ("https://b.test/y", true, true, true, false, false),
        ];
        for (next, as_get, trusted, cred, host, body) in table {
            let c = carries(&first, &t(next), as_get, trusted);
            assert_eq!(
                (c.credentials, c.host, c.body_headers),
                (cred, host, body),
                "{next} as_get={as_get} trusted={trusted}"
            );
        }
        let c = carries(&first, &t("http://b.test/"), true, false);
        let kept: Vec<&str> = [
            "Authorization",
            "cookie",
            "Host",
            "Content-Length",
            "content-type",
            "Transfer-Encoding",
            "X-Other",
            "Accept",
        ]
        .into_iter()
        .filter(|n| c.keeps(n))
        .collect();
        assert_eq!(kept, ["X-Other", "Accept"]);
        assert!(["Authorization", "Host", "Content-Type"]
            .iter()
            .all(|n| Carry::ALL.keeps(n)));
    }
}
