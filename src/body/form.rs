//! `application/x-www-form-urlencoded` bodies and query parameters (the WHATWG URL
//! standard's form encoding, as browsers and aiohttp send it).
//!
//! Pure functions: pairs in, text out. Invariant: [`urlencoded`] output parses back
//! (with `url::form_urlencoded::parse`) to exactly the pairs given.

/// The `Content-Type` of a form body.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Encodes `pairs` as a form body (`a=1&b=x+y`).
///
/// ```
/// use volley::body::form::urlencoded;
/// assert_eq!(urlencoded(&[("q", "a b&c"), ("n", "é")]), "q=a+b%26c&n=%C3%A9");
/// ```
pub fn urlencoded<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

/// `url` with `pairs` appended to its query (after any query it has; before its
/// fragment). A URL that does not parse is returned with the pairs added textually,
/// so the engine still reports it as `invalid_url`.
///
/// ```
/// use volley::body::form::query;
/// assert_eq!(query("http://h/s?x=1#top", &[("q", "a b")]), "http://h/s?x=1&q=a+b#top");
/// assert_eq!(query("http://h", &[("k", "v")]), "http://h/?k=v");
/// ```
pub fn query<K: AsRef<str>, V: AsRef<str>>(url: &str, pairs: &[(K, V)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    match url::Url::parse(url) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k.as_ref(), v.as_ref());
                }
            }
            u.to_string()
        }
        Err(_) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}{}", urlencoded(pairs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn form_round_trips(pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..8)) {
            let enc = urlencoded(&pairs);
            let back: Vec<(String, String)> = url::form_urlencoded::parse(enc.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(back, pairs);
        }

        #[test]
        fn query_keeps_existing_pairs(pairs in proptest::collection::vec(("[a-z]{1,4}", "\\PC{0,6}"), 1..5)) {
            let u = query("http://h/p?a=1", &pairs);
            let parsed = url::Url::parse(&u).unwrap();
            let got: Vec<(String, String)> = parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            prop_assert_eq!(&got[0], &("a".to_string(), "1".to_string()));
            prop_assert_eq!(&got[1..], &pairs[..]);
        }
    }
}
