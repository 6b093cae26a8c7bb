//! The jar's rules, one test each, and its invariants as properties.

use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;

fn u(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn check_invariants(jar: &Jar) {
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    for (d, list) in &jar.by_domain {
        assert!(
            !list.is_empty() && list.len() <= jar.per_domain,
            "bucket {d}"
        );
        for c in list {
            assert_eq!(&c.domain, d);
            assert!(seen.insert((c.name.clone(), c.domain.clone(), c.path.clone())));
        }
        n += list.len();
    }
    assert_eq!(n, jar.count);
    assert!(jar.count <= jar.total);
}

#[test]
fn host_only_and_domain_cookies() {
    let mut jar = Jar::default();
    assert!(jar.store(&u("http://a.example.com/"), "h=1", NOW));
    assert!(jar.store(&u("http://a.example.com/"), "d=2; Domain=EXAMPLE.com", NOW));
    assert_eq!(
        jar.header(&u("http://a.example.com/"), NOW).unwrap(),
        "h=1; d=2"
    );
    assert_eq!(
        jar.header(&u("http://b.a.example.com/"), NOW).unwrap(),
        "d=2"
    );
    assert_eq!(jar.header(&u("http://example.com/"), NOW).unwrap(), "d=2");
    assert_eq!(jar.header(&u("http://badexample.com/"), NOW), None);
    assert_eq!(jar.header(&u("http://example.org/"), NOW), None);
}

#[test]
fn domain_must_match_the_host() {
    let mut jar = Jar::default();
    let from = u("http://a.example.com/");
    assert!(!jar.store(&from, "x=1; Domain=other.com", NOW));
    assert!(!jar.store(&from, "x=1; Domain=b.a.example.com", NOW));
    assert!(!jar.store(&from, "x=1; Domain=ample.com", NOW));
    assert!(jar.is_empty());
}

#[test]
fn public_suffixes_and_ips() {
    let mut jar = Jar::default();
    assert!(!jar.store(&u("http://a.example.co.uk/"), "x=1; Domain=co.uk", NOW));
    assert!(!jar.store(&u("http://a.example.com/"), "x=1; Domain=com", NOW));
    assert!(jar.store(
        &u("http://a.example.co.uk/"),
        "x=1; Domain=example.co.uk",
        NOW
    ));
    // A single-label host may set Domain to itself: host-only.
    assert!(jar.store(&u("http://localhost/"), "l=1; Domain=localhost", NOW));
    assert_eq!(jar.header(&u("http://sub.localhost/"), NOW), None);
    assert_eq!(jar.header(&u("http://localhost/"), NOW).unwrap(), "l=1");
    // IP hosts: Domain only when equal, and never to "parent" numbers.
    assert!(!jar.store(&u("http://10.0.0.1/"), "i=1; Domain=0.0.1", NOW));
    assert!(jar.store(&u("http://10.0.0.1/"), "i=1; Domain=10.0.0.1", NOW));
    assert!(jar.store(&u("http://[::1]:8080/"), "v6=1", NOW));
    assert_eq!(jar.header(&u("http://10.0.0.1/"), NOW).unwrap(), "i=1");
    assert_eq!(jar.header(&u("http://[::1]/"), NOW).unwrap(), "v6=1");
    assert!(!domain_match("10.0.0.1", "0.0.1"));
}

#[test]
fn paths() {
    assert_eq!(default_path(""), "/");
    assert_eq!(default_path("/"), "/");
    assert_eq!(default_path("/a"), "/");
    assert_eq!(default_path("/a/b"), "/a");
    assert_eq!(default_path("/a/b/"), "/a/b");
    assert!(path_match("/a/b", "/a") && path_match("/a/", "/a/") && path_match("/a", "/a"));
    assert!(!path_match("/ab", "/a") && !path_match("/", "/a"));
    let mut jar = Jar::default();
    assert!(jar.store(&u("http://h/docs/x"), "dir=1", NOW));
    assert!(jar.store(&u("http://h/"), "root=1; Path=/", NOW));
    assert!(jar.store(&u("http://h/"), "deep=1; Path=/docs/x", NOW));
    assert_eq!(
        jar.header(&u("http://h/docs/x"), NOW).unwrap(),
        "deep=1; dir=1; root=1"
    );
    assert_eq!(jar.header(&u("http://h/docsy"), NOW).unwrap(), "root=1");
}

#[test]
fn secure_cookies() {
    let mut jar = Jar::default();
    assert!(!jar.store(&u("http://h/"), "s=1; Secure", NOW));
    assert!(jar.store(&u("https://h/"), "s=1; Secure", NOW));
    assert_eq!(jar.header(&u("http://h/"), NOW), None);
    assert_eq!(jar.header(&u("https://h/"), NOW).unwrap(), "s=1");
}

#[test]
fn expiry_and_replacement() {
    let mut jar = Jar::default();
    let h = u("http://h/");
    assert!(jar.store(&h, "a=1; Max-Age=10", NOW));
    assert!(jar.store(&h, "b=1; Expires=Thu, 01 Jan 2099 00:00:00 GMT", NOW));
    assert!(jar.store(&h, "c=1", NOW));
    assert_eq!(jar.header(&h, NOW + 9).unwrap(), "a=1; b=1; c=1");
    assert_eq!(jar.header(&h, NOW + 10).unwrap(), "b=1; c=1");
    // Replacement keeps the creation order; Max-Age wins over Expires.
    assert!(jar.store(
        &h,
        "a=2; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:10 GMT",
        NOW
    ));
    assert_eq!(jar.len(), 3);
    assert_eq!(jar.header(&h, NOW).unwrap(), "a=2; b=1; c=1");
    // Deletion by a past date or Max-Age=0.
    assert!(!jar.store(&h, "b=; Expires=Thu, 01 Jan 1970 00:00:10 GMT", NOW));
    assert!(!jar.store(&h, "c=; Max-Age=0", NOW));
    assert_eq!(jar.header(&h, NOW).unwrap(), "a=2");
    assert_eq!(jar.len(), 1);
    jar.purge(NOW + 1000);
    assert!(jar.is_empty());
}

#[test]
fn caps_evict_least_recently_used() {
    let mut jar = Jar::with_caps(3, 5);
    let a = u("http://a/");
    for i in 0..3 {
        assert!(jar.store(&a, &format!("n{i}=v"), NOW));
    }
    jar.header(&a, NOW); // all used; now use n0 and n2 again via replacement
    assert!(jar.store(&a, "n0=w", NOW));
    assert!(jar.store(&a, "n2=w", NOW));
    assert!(jar.store(&a, "n3=v", NOW)); // evicts n1
    assert_eq!(jar.header(&a, NOW).unwrap(), "n0=w; n2=w; n3=v");
    let b = u("http://b/");
    for i in 0..3 {
        assert!(jar.store(&b, &format!("m{i}=v"), NOW));
    }
    assert_eq!(jar.len(), 5);
    check_invariants(&jar);
}

#[test]
fn pairs() {
    assert!(parse_pairs("").is_empty());
    assert_eq!(parse_pairs("a=b=c").len(), 1);
    assert_eq!(parse_pairs("a=b=c")[0].1, "b=c");
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a.example.com".to_string()),
        Just("b.a.example.com".to_string()),
        Just("example.com".to_string()),
        Just("example.co.uk".to_string()),
        Just("127.0.0.1".to_string()),
        Just("other.org".to_string()),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_and_files_round_trip(
        ops in proptest::collection::vec(
            (host(), 0u8..4, "[a-e]", "[a-z0-9]{0,4}", 0u8..3, 0u8..4, any::<bool>()),
            1..80),
        per in 1usize..6, total in 1usize..12,
    ) {
        let mut jar = Jar::with_caps(per, total);
        let mut now = NOW;
        for (h, path, name, value, dom, exp, https) in ops {
            now += 1;
            let scheme = if https { "https" } else { "http" };
            let url = u(&format!("{scheme}://{h}/p{path}/q"));
            let mut sc = format!("{name}={value}");
            match dom {
                1 => sc.push_str("; Domain=example.com"),
                2 => sc.push_str(&format!("; Domain={h}")),
                _ => {}
            }
            match exp {
                1 => sc.push_str("; Max-Age=3"),
                2 => sc.push_str("; Max-Age=0"),
                3 => sc.push_str("; Secure"),
                _ => {}
            }
            jar.store(&url, &sc, now);
            check_invariants(&jar);
            if let Some(hdr) = jar.header(&url, now) {
                // Every cookie sent applies to this URL.
                for (n, _) in parse_pairs(&hdr) {
                    prop_assert!(jar.iter().any(|c| c.name == n
                        && path_match(url.path(), &c.path)
                        && (https || !c.secure)));
                }
            }
        }
        let text = file::write(&jar, now);
        let mut back = Jar::with_caps(per, total);
        let got = file::read(&mut back, &text, now);
        prop_assert_eq!(got.malformed, 0);
        prop_assert_eq!(file::write(&back, now), text);
    }
}
