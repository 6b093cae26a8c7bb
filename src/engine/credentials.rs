//! What a hop sends of the request's credentials and state: the user's headers as
//! the redirect rules carry them, the cookie jar's `Cookie`, and `Authorization`
//! from the URL's `user:pass@`; and what a response head gives the jar.
//!
//! Pure apart from the jar it is handed (behind its mutex, shared by the engines of
//! a run). Rules:
//! - credentials in the request URL become `Authorization: Basic …` on hops that
//!   carry credentials (the request's own origin, or any with `location_trusted`);
//!   a redirect target's own `user:pass@` is used for that hop instead; a user
//!   `Authorization` header wins over both;
//! - the jar's cookies for the hop's URL are sent on every hop (the jar's own domain
//!   and path rules decide), joined after a user `Cookie` header that is carried;
//! - every `Set-Cookie` of every head (followed redirects included) is stored
//!   against the URL that answered.
//!
//! Invariant: with no jar and no URL credentials the user's headers are used as
//! they are, without allocating.

use super::api::ResponseHead;
use super::redirect::Carry;
use crate::cookie::Jar;
use crate::target::Target;
use std::sync::Mutex;

/// Unix seconds now (the jar's clock).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The headers to send on hop `cur` of a request to `first`: `None` means the
/// user's `headers` exactly.
pub(crate) fn hop_headers(
    headers: &[(String, String)],
    carry: Carry,
    first: &Target,
    cur: &Target,
    jar: Option<&Mutex<Jar>>,
) -> Option<Vec<(String, String)>> {
    let basic = |t: &Target| {
        t.to_url()
            .ok()
            .and_then(|u| crate::body::auth::basic_from_url(&u))
    };
    let auth = if cur.has_userinfo() {
        basic(cur)
    } else if carry.credentials && first.has_userinfo() {
        basic(first)
    } else {
        None
    };
    let cookie = jar.and_then(|j| {
        let url = cur.to_url().ok()?;
        j.lock()
            .unwrap_or_else(|p| p.into_inner())
            .header(&url, unix_now())
    });
    let drops = carry != Carry::ALL && headers.iter().any(|(n, _)| !carry.keeps(n));
    if auth.is_none() && cookie.is_none() && !drops {
        return None;
    }
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| carry.keeps(n))
        .cloned()
        .collect();
    if let Some(a) = auth {
        if !out
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            out.push(("Authorization".into(), a));
        }
    }
    if let Some(c) = cookie {
        match out
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        {
            Some((_, v)) if !v.trim().is_empty() => {
                v.push_str("; ");
                v.push_str(&c);
            }
            Some((_, v)) => *v = c,
            None => out.push(("Cookie".into(), c)),
        }
    }
    Some(out)
}

/// The absolute-form request target for a proxy: the URL without its `user:pass@`
/// (which goes in `Authorization`, never in the request line).
pub(crate) fn absolute_form(t: &Target) -> std::borrow::Cow<'_, str> {
    if !t.has_userinfo() {
        return t.as_str().into();
    }
    let Ok(mut u) = t.to_url() else {
        return t.as_str().into();
    };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    String::from(u).into()
}

/// Stores the head's `Set-Cookie` fields, answered by `url`, in the jar.
pub(crate) fn store_cookies(jar: &Mutex<Jar>, t: &Target, head: &ResponseHead<'_>) {
    let mut set = head
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
        .peekable();
    if set.peek().is_none() {
        return;
    }
    let Ok(url) = t.to_url() else {
        return;
    };
    let url = &url;
    let now = unix_now();
    let mut jar = jar.lock().unwrap_or_else(|p| p.into_inner());
    for (_, v) in set {
        if let Ok(v) = std::str::from_utf8(v) {
            jar.store(url, v, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const CROSS: Carry = Carry {
        credentials: false,
        host: false,
        body_headers: true,
    };

    #[test]
    fn nothing_to_add_borrows() {
        let u = t("http://h/");
        assert_eq!(
            hop_headers(&h(&[("X", "1")]), Carry::ALL, &u, &u, None),
            None
        );
    }

    #[test]
    fn url_credentials_follow_the_carry_rule() {
        let first = t("http://u:p%40@h/");
        let got = hop_headers(&[], Carry::ALL, &first, &first, None).unwrap();
        assert_eq!(got, h(&[("Authorization", "Basic dTpwQA==")]));
        let other = t("http://elsewhere/");
        assert_eq!(hop_headers(&[], CROSS, &first, &other, None), None);
        // A user header wins.
        let mine = h(&[("authorization", "Bearer x")]);
        assert_eq!(
            hop_headers(&mine, Carry::ALL, &first, &first, None).unwrap(),
            mine
        );
    }

    #[test]
    fn proxies_never_see_credentials_in_the_request_line() {
        let u = t("http://u:p@h:8080/a?b");
        assert_eq!(absolute_form(&u), "http://h:8080/a?b");
        let plain = t("http://h/x");
        assert!(matches!(
            absolute_form(&plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn jar_cookies_join_the_users() {
        let jar = Mutex::new(Jar::default());
        let u = t("http://h/");
        jar.lock()
            .unwrap()
            .store(&u.to_url().unwrap(), "j=1", unix_now());
        let got = hop_headers(&h(&[("Cookie", "mine=2")]), Carry::ALL, &u, &u, Some(&jar));
        assert_eq!(got.unwrap(), h(&[("Cookie", "mine=2; j=1")]));
        // Cross-origin: the user's Cookie is dropped, the jar decides for itself.
        let other = t("http://other/");
        let got = hop_headers(&h(&[("Cookie", "mine=2")]), CROSS, &u, &other, Some(&jar));
        assert_eq!(got.unwrap(), Vec::<(String, String)>::new());
    }
}
