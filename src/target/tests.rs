//! Tests of [`super::Target`]: the forms it takes, what it refuses, and its fast
//! path held to the url crate's answer.

use super::*;

#[test]
fn forms() {
    let t = Target::parse("  example.test  ").unwrap();
    assert_eq!(t.as_str(), "http://example.test/");
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
        assert_eq!(t.as_str(), url, "{input}");
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
            proptest::prop_assert_eq!(t.scheme(), "http");
            proptest::prop_assert_eq!(t.host(), "host");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// The fast path agrees with the url crate on every input it takes: the same
    /// text, host, port, path offset and IP literal (`Target` equality).
    #[test]
    fn fast_path_agrees_with_the_url_crate(
        scheme in proptest::sample::select(vec!["http://", "http://", "https://", "", "HTTP://", "//"]),
        host in proptest::collection::vec(proptest::sample::select(vec![
            "a", "a", "a", "b-c", "b-c", "q", "1", "1", "0", "255", "255", "12",
            "-", "xn--", "00", "256", "0x7f", "Ab", "_", "@", "%41", "1a",
        ]), 1..5),
        dots in proptest::collection::vec(proptest::bool::weighted(0.8), 5),
        port in proptest::option::of(proptest::sample::select(vec![
            "", "0", "80", "443", "8080", "080", "65535", "65536", "123456", "x",
        ])),
        path in proptest::option::of(proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(vec![
                "a", "a", "a", "b.c", "b.c", "x", "-", "_", ".", ".", "..", "..", "%2e", "%2E",
                "%20", "~", ":", "@", "!$&()*+,;=", "'", " ", "`", "{", "}", "^", "|",
                "\\", "\"", "<", ">", "#", "\t", "é", "/",
            ]), 0..3), 0..4)),
        query in proptest::option::of(proptest::collection::vec(proptest::sample::select(vec![
            "a=1", "a=1", "b", "&", "&", ".", "/", "?", "%zz", "'", "\"", "<", ">", "`", "{}",
            "#f", " ", "^|\\",
        ]), 0..4)),
    ) {
        let mut s = scheme.to_string();
        for (k, h) in host.iter().enumerate() {
            if k > 0 {
                s += if dots[k] { "." } else { "" };
            }
            s += h;
        }
        if let Some(p) = port {
            s += &format!(":{p}");
        }
        for seg in path.iter().flatten() {
            s.push('/');
            s += &seg.concat();
        }
        if let Some(q) = query {
            s += &format!("?{}", q.concat());
        }
        agrees(&s)?;
    }

    /// The same on inputs made of what the fast path takes (and dot segments).
    #[test]
    fn fast_path_agrees_on_clean_inputs(
        tls in proptest::bool::ANY,
        labels in proptest::collection::vec("[a-z0-9-]{1,4}", 1..4),
        quad in proptest::option::of(proptest::collection::vec(0u16..300, 3..6)),
        port in proptest::option::of(0u32..70000),
        path in proptest::collection::vec(proptest::sample::select(vec![
            "a", "b.c", ".", "..", "%2e", "x%2E", "-_~", "!$&()*+,;=:@", "%41",
        ]), 0..5),
        query in proptest::option::of("[a-z0-9=&/?.%-]{0,6}"),
    ) {
        let mut s = if tls { "https://".to_string() } else { String::new() };
        s += &match quad {
            Some(q) => q.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("."),
            None => labels.join("."),
        };
        if let Some(p) = port {
            s += &format!(":{p}");
        }
        for seg in path {
            s.push('/');
            s += seg;
        }
        if let Some(q) = query {
            s += &format!("?{q}");
        }
        agrees(&s)?;
    }
}

/// Target equality between the fast path and the url crate for `s`, and what
/// `parse_owned` gives back.
fn agrees(s: &str) -> Result<(), proptest::test_runner::TestCaseError> {
    let slow = Target::parse_slow(s);
    if fast::scan(s).is_some() {
        let fast = Target::parse(s);
        proptest::prop_assert_eq!(&fast, &slow, "{}", s);
        let (owned, input) = Target::parse_owned(s.to_string()).unwrap();
        proptest::prop_assert_eq!(Ok(owned), slow);
        proptest::prop_assert!(input.is_none() || input.as_deref() == Some(s));
    } else {
        proptest::prop_assert_eq!(Target::parse(s), slow);
    }
    Ok(())
}

/// The fast path takes the inputs it is for, and keeps the string it was given.
#[test]
fn owned_input_is_kept_without_a_copy() {
    let input = "http://127.0.0.1:8080/p/1?x=y".to_string();
    let at = input.as_ptr();
    let (t, rest) = Target::parse_owned(input).unwrap();
    assert_eq!((t.as_str().as_ptr(), rest), (at, None));
    assert_eq!(
        (t.host(), t.port, t.origin_form()),
        ("127.0.0.1", 8080, "/p/1?x=y")
    );
    assert_eq!(t.ip, Some("127.0.0.1".parse().unwrap()));
    let (t, rest) = Target::parse_owned("Host.test".to_string()).unwrap();
    assert_eq!(
        (t.as_str(), rest.as_deref()),
        ("http://host.test/", Some("Host.test"))
    );
    let (rest, e) = Target::parse_owned("http://h:0/".to_string()).unwrap_err();
    assert_eq!(
        (rest.as_str(), e.kind),
        ("http://h:0/", ErrorKind::InvalidUrl)
    );
    let t = Target::parse("https://u:p@h.test:8443/a#f").unwrap();
    assert!(t.has_userinfo());
    assert_eq!(
        (t.as_str(), t.host_header().as_str()),
        ("https://u:p@h.test:8443/a", "h.test:8443")
    );
    assert_eq!(t.to_url().unwrap().username(), "u");
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
    assert_eq!(t.join("c").unwrap().as_str(), "http://h/a/c");
    assert_eq!(t.join("/x?y").unwrap().as_str(), "http://h/x?y");
    assert_eq!(t.join("//other:8/").unwrap().as_str(), "http://other:8/");
    assert_eq!(t.join("https://s/").unwrap().as_str(), "https://s/");
    assert!(t.join("ftp://s/").is_err());
}
