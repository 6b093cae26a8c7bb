//! HTTP Basic credentials from a URL's `user:pass@` (RFC 7617).
//!
//! Pure: a URL in, an `Authorization` value out. The user and password are
//! percent-decoded to bytes (not necessarily UTF-8) before base64, as curl does.

/// The `Authorization` value (`Basic …`) for the credentials in `url`, if it has a
/// user name; a missing password is empty.
///
/// ```
/// use volley::body::auth::basic_from_url;
/// let u = url::Url::parse("http://al%40ce:p%3Ass@h/").unwrap();
/// assert_eq!(basic_from_url(&u).as_deref(), Some("Basic YWxAY2U6cDpzcw=="));
/// assert_eq!(basic_from_url(&url::Url::parse("http://h/").unwrap()), None);
/// ```
pub fn basic_from_url(url: &url::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut creds = percent_decode(url.username());
    creds.push(b':');
    creds.extend(percent_decode(url.password().unwrap_or("")));
    Some(format!("Basic {}", crate::text::base64(&creds)))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), b"a b%zz%4");
        assert_eq!(percent_decode("%C3%A9%"), "é%".as_bytes());
        let u = url::Url::parse("https://user@h/").unwrap();
        assert_eq!(basic_from_url(&u).as_deref(), Some("Basic dXNlcjo="));
    }

    proptest! {
        // No `%` in the inputs: the url crate keeps a typed `%` as is, so `%Aa`
        // would (rightly) be decoded.
        #[test]
        fn credentials_round_trip(user in "[^\\x00-\\x1f%]{1,10}", pass in "[^\\x00-\\x1f%]{0,10}") {
            let mut u = url::Url::parse("http://h/").unwrap();
            u.set_username(&user).unwrap();
            u.set_password(Some(&pass)).unwrap();
            let v = basic_from_url(&u).unwrap();
            let want = format!("Basic {}", crate::text::base64(format!("{user}:{pass}").as_bytes()));
            prop_assert_eq!(v, want);
        }
    }
}
