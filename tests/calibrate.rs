//! Fingerprints and soft-404 calibration at the data level: ffuf's counts, chunk-split
//! invariance, simhash near/far, word removal, and the verdicts for the server
//! behaviours of issue 12 (each server is a function from a request path to a response,
//! so every case runs the same code the engine will: probes → fingerprints →
//! signature → judge).

use proptest::prelude::*;
use volley::calibrate::{
    self, list_word, location_pattern, probes, Observation, Shape, Signature, SignatureBuilder,
};
use volley::fingerprint::{
    hamming, simhash, word_forms, Fingerprint, Fingerprinter, Removal, SimHasher, Want,
};

const ALL: Want = Want {
    counts: true,
    sha256: true,
    simhash: true,
};

fn fp_chunks(chunks: &[&[u8]], removal: Removal) -> Fingerprint {
    let mut f = Fingerprinter::with_removal(ALL, removal);
    for c in chunks {
        f.update(c);
    }
    f.finish()
}

// ---------------------------------------------------------------- fingerprints

#[test]
fn counts_are_ffufs() {
    // (body, words, lines): words = ' ' + 1, lines = '\n' + 1, as ffuf's strings.Split.
    let cases: &[(&[u8], u64, u64)] = &[
        (b"", 1, 1),
        (b"a", 1, 1),
        (b"a b", 2, 1),
        (b"a  b", 3, 1),
        (b"a\tb", 1, 1),
        (b"a\n", 1, 2),
        (b"a b\nc d\n", 3, 3),
        (b"\n\n\n", 1, 4),
    ];
    for &(body, words, lines) in cases {
        let fp = fp_chunks(&[body], Removal::none());
        assert_eq!(
            (fp.words, fp.lines, fp.length),
            (Some(words), Some(lines), body.len() as u64),
            "{body:?}"
        );
    }
}

#[test]
fn only_what_is_wanted() {
    let mut f = Fingerprinter::new(Want::default());
    f.update(b"some body");
    let fp = f.finish();
    assert_eq!((fp.words, fp.sha256, fp.simhash), (None, None, None));
    assert_eq!(fp.length, 9);
}

#[test]
fn sha256_known_answer() {
    let fp = fp_chunks(&[b"a", b"bc"], Removal::none());
    assert_eq!(
        fp.sha256_hex().unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(fp.simhash_hex().unwrap().len(), 16);
}

#[test]
fn token_across_chunk_boundary() {
    let whole = fp_chunks(&[b"<p>hello world</p>"], Removal::none());
    for i in 0..=18 {
        let b = b"<p>hello world</p>";
        assert_eq!(
            fp_chunks(&[&b[..i], &b[i..]], Removal::none()),
            whole,
            "split at {i}"
        );
    }
    // Not the same as two separate tokens.
    assert_ne!(simhash(b"hello"), simhash(b"hel lo"));
}

proptest! {
    /// Any split of the body gives the same fingerprint (with and without a removal).
    #[test]
    fn any_split_same_result(
        body in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\n'), Just(b'a'), Just(b'b'), Just(b'<'), Just(0xc3u8), any::<u8>()],
            0..600),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        word in "[ab]{1,3}",
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for &c in &at {
            chunks.push(&body[prev..c]);
            prev = c;
        }
        chunks.push(&body[prev..]);
        for removal in [Removal::none(), Removal::limited(&word, 2), Removal::anchored(&word, &word)] {
            let one = fp_chunks(&[&body], removal.clone());
            let many = fp_chunks(&chunks, removal);
            prop_assert_eq!(one, many);
        }
    }

    /// Removing a word the body does not hold changes nothing.
    #[test]
    fn absent_word_removes_nothing(body in "[a-m <>/\n]{0,300}", word in "[n-z]{1,8}") {
        let fp = fp_chunks(&[body.as_bytes()], Removal::limited(&word, 3));
        prop_assert_eq!(fp.simhash_removed.as_slice(), [fp.simhash.unwrap()]);
    }
}

/// A page of realistic size: a fixed template around `content`.
fn page(content: &str) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Acme Corp</title>\n\
         <link rel=\"stylesheet\" href=\"/static/site.css\"><script src=\"/static/app.js\"></script></head>\n<body>\n\
         <nav><ul><li><a href=\"/\">Home</a></li><li><a href=\"/products\">Products</a></li>\
         <li><a href=\"/about\">About us</a></li><li><a href=\"/contact\">Contact</a></li></ul></nav>\n",
    );
    s.push_str("<main>\n");
    s.push_str(content);
    s.push_str(
        "\n</main>\n<footer><p>Copyright Acme Corp. All rights reserved. Made with care \
         in a small town by people who like widgets.</p><p>Privacy policy, terms of use, \
         cookie settings and accessibility statement.</p></footer>\n</body></html>\n",
    );
    s
}

const ARTICLES: [&str; 4] = [
    "<h1>Widgets</h1><p>Our widgets are made from recycled aluminium and come in seven \
     colours. Each widget ships with a two year warranty and free returns.</p>\
     <table><tr><td>Small</td><td>12 EUR</td></tr><tr><td>Large</td><td>19 EUR</td></tr></table>",
    "<h1>Careers</h1><p>We are hiring engineers, designers and a friendly receptionist. \
     Send your résumé and a short letter telling us about a problem you solved.</p>\
     <ul><li>Remote friendly</li><li>Four day week</li><li>Generous leave</li></ul>",
    "<h1>Press</h1><p>Download logos, founder photos and the annual report. Journalists \
     may call the press office between nine and five on weekdays.</p><p>Latest release: \
     Acme opens a second factory near the harbour.</p>",
    "<h1>Support</h1><form action=\"/ticket\" method=\"post\"><input name=\"email\">\
     <textarea name=\"question\"></textarea><button>Ask</button></form><p>Most questions \
     are answered within a day.</p>",
];

#[test]
fn near_pages_are_near() {
    // A timestamp.
    let a = page("<p>Not found. Generated 2026-11-26 08:13:35 UTC by node web-3.</p>");
    let b = page("<p>Not found. Generated 2026-11-27 19:02:11 UTC by node web-3.</p>");
    let d = hamming(simhash(a.as_bytes()), simhash(b.as_bytes()));
    assert!(d <= calibrate::HAMMING_THRESHOLD, "timestamp: {d} bits");
    // An echoed path, removed.
    let echo = |w: &str| {
        let body = page(&format!("<p>Sorry, /{w} is not here.</p>"));
        fp_chunks(&[body.as_bytes()], Removal::limited(w, 1))
            .simhash_removed
            .first()
            .unwrap()
    };
    assert_eq!(echo("qk3v9x0mzt2a"), echo("admin"));
    assert_eq!(echo("p"), echo("a"), "a word that is also a template token");
}

#[test]
fn different_pages_are_far() {
    let hashes: Vec<u64> = ARTICLES
        .iter()
        .map(|c| simhash(page(c).as_bytes()))
        .collect();
    for i in 0..hashes.len() {
        for j in i + 1..hashes.len() {
            let d = hamming(hashes[i], hashes[j]);
            assert!(d > calibrate::MAX_THRESHOLD, "{i} vs {j}: only {d} bits");
        }
    }
    // Unrelated short bodies.
    let pairs = [
        ("hit admin.php\n", "<h1>Not found</h1>"),
        ("{\"ok\":true}", "Forbidden"),
    ];
    for (x, y) in pairs {
        let d = hamming(simhash(x.as_bytes()), simhash(y.as_bytes()));
        assert!(d > calibrate::COUNTS_THRESHOLD, "{x:?} vs {y:?}: {d} bits");
    }
}

#[test]
fn removal_is_by_bag_not_position() {
    // The echoed word "p" is also the name of six tags: one occurrence is dropped,
    // which leaves exactly the page without the echo.
    let without = "<p>a</p><p>b</p><p>c</p> not found: /";
    let with = "<p>a</p><p>b</p><p>c</p> not found: /p";
    let plain = SimHasher::new();
    let mut plain = plain;
    plain.update(without.as_bytes());
    let want = plain.finish().all;
    let fp = fp_chunks(&[with.as_bytes()], Removal::limited("p", 1));
    assert_eq!(fp.simhash_removed.as_slice(), [want]);
    // An anchored removal counts the echoes itself.
    let cal = fp_chunks(
        &[b"x /dir/zq81 y /dir/zq81"],
        Removal::anchored("dir/zq81", "zq81"),
    );
    assert_eq!(cal.echoes, 2);
    assert_eq!(cal.simhash_removed.first(), Some(simhash(b"x y")));
}

#[test]
fn forms_of_a_word() {
    assert_eq!(word_forms("admin"), ["admin"]);
    assert_eq!(word_forms("a b"), ["a b", "a%20b"]);
    assert_eq!(word_forms("a&b"), ["a&b", "a%26b", "a&amp;b"]);
}

// ---------------------------------------------------------------- probes

fn counter_rng() -> impl FnMut() -> u64 {
    let mut x = 7u64;
    move || {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[test]
fn wordlist_probes() {
    let shape = Shape::Wordlist {
        base: "http://h:8080/dir/FUZZ".into(),
        exts: vec!["html".into(), ".php".into()],
    };
    let p = probes(&shape, calibrate::DEFAULT_WORDS, &mut counter_rng());
    assert_eq!(p.len(), 9);
    for (i, probe) in p.iter().enumerate() {
        let w = &probe.word;
        assert!((calibrate::WORD_MIN..=calibrate::WORD_MAX).contains(&w.len()));
        assert_eq!(&probe.echo, w);
        let want = ["", ".html", ".php"][i % 3];
        assert_eq!(probe.url, format!("http://h:8080/dir/{w}{want}"));
    }
    assert!(p[0].word != p[3].word && p[3].word != p[6].word);
    // Without FUZZ: appended after one slash.
    let shape = Shape::Wordlist {
        base: "http://h/dir/".into(),
        exts: vec![],
    };
    let p = probes(&shape, 1, &mut counter_rng());
    assert_eq!(p[0].url, format!("http://h/dir/{}", p[0].word));
}

#[test]
fn list_probes() {
    let cases = [
        ("http://h:8080/a/b.php?q=1#f", "http://h:8080/a/"),
        ("http://h/a/b/", "http://h/a/"),
        ("http://h", "http://h/"),
        ("https://[::1]/x", "https://[::1]/"),
    ];
    for (sample, dir) in cases {
        let shape = Shape::List {
            sample: url::Url::parse(sample).unwrap(),
        };
        let p = probes(&shape, 2, &mut counter_rng());
        assert_eq!(p.len(), 4, "{sample}");
        for pair in p.chunks(2) {
            let w = &pair[0].word;
            assert_eq!(pair[0].url, format!("{dir}{w}"));
            assert_eq!(pair[1].url, format!("{dir}{w}/"));
            let u = url::Url::parse(&pair[0].url).unwrap();
            assert_eq!(pair[0].echo, list_word(&u));
        }
    }
}

#[test]
fn location_patterns() {
    let req = url::Url::parse("http://h/x/abc").unwrap();
    let cases = [
        ("/login?next=/x/abc", "http://h/login?next=/{WORD}"),
        ("http://h/login?next=/x/abc", "http://h/login?next=/{WORD}"),
        ("login?next=%2Fx%2Fabc", "http://h/x/login?next=%2F{WORD}"),
        ("/abcd?next=x/abc", "http://h/abcd?next={WORD}"),
    ];
    for (loc, want) in cases {
        assert_eq!(location_pattern(loc, Some(&req), "x/abc"), want, "{loc}");
    }
    // The host is left alone even when it holds the word.
    let req = url::Url::parse("http://admin/admin").unwrap();
    assert_eq!(
        location_pattern("/admin/", Some(&req), "admin"),
        "http://admin/{WORD}/"
    );
}

// ---------------------------------------------------------------- verdicts

/// A response as a server function gives it: status, Location, body.
type Resp = Option<(u16, Option<String>, String)>;

/// Calibrates `server` for `shape` and judges each target (its URL and its word).
fn run(
    server: &dyn Fn(&str) -> Resp,
    shape: &Shape,
    targets: &[(&str, &str)],
) -> Vec<Option<bool>> {
    let sig = calibrate_host(server, shape);
    targets
        .iter()
        .map(|&(u, word)| {
            let url = url::Url::parse(u).unwrap();
            match server(url.path()) {
                None => sig.judge_error(),
                Some((status, loc, body)) => {
                    let mut f = sig.fingerprinter(Want::default(), word);
                    // Fed in small chunks, as the network would.
                    for c in body.as_bytes().chunks(7) {
                        f.update(c);
                    }
                    let fp = f.finish();
                    sig.judge(&Observation::new(
                        status,
                        loc.as_deref(),
                        Some(&url),
                        word,
                        &fp,
                    ))
                }
            }
        })
        .collect()
}

fn calibrate_host(server: &dyn Fn(&str) -> Resp, shape: &Shape) -> Signature {
    let mut b = SignatureBuilder::new();
    for p in probes(shape, calibrate::DEFAULT_WORDS, &mut counter_rng()) {
        let path = url::Url::parse(&p.url).unwrap().path().to_string();
        match server(&path) {
            None => b.add_error(),
            Some((status, loc, body)) => {
                let mut f = p.fingerprinter();
                f.update(body.as_bytes());
                let fp = f.finish();
                b.add(p.observe(status, loc.as_deref(), &fp), fp.echoes);
            }
        }
    }
    b.finish()
}

const REAL: [&str; 4] = ["index.html", "admin.php", "robots.txt", "p"];

fn real(path: &str) -> Option<String> {
    let p = path.trim_start_matches('/');
    REAL.contains(&p).then(|| format!("hit {p}\n"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The benchmark's soft-404 host: nginx's SSI page echoing the request URI.
fn echo_host(path: &str) -> Resp {
    Some(match real(path) {
        Some(b) => (200, None, b),
        None => (
            200,
            None,
            format!(
                "<html><head><title>Not found</title></head><body><h1>Sorry!</h1>\n<p>We looked \
                 everywhere, but <b>{}</b> is not on this site.</p>\n<p>Try the <a href=\"/\">home \
                 page</a>.</p></body></html>\n",
                html_escape(path)
            ),
        ),
    })
}

/// Wordlist targets for `words` on `base` (a word per URL, the word itself).
fn wordlist_targets<'a>(base: &str, words: &'a [&'a str]) -> Vec<(String, &'a str)> {
    words
        .iter()
        .map(|w| (calibrate::expand(base, w), *w))
        .collect()
}

const MISSING: [&str; 10] = [
    "nothere", "a", "b", "not", "sorry", "html", "a&b", "~admin", "x%20y", "qq.php",
];

fn check(server: &dyn Fn(&str) -> Resp, real_verdict: bool) {
    // Wordlist mode: real files are not soft-404, missing ones are.
    let shape = Shape::Wordlist {
        base: "http://h/FUZZ".into(),
        exts: vec!["php".into()],
    };
    let words: Vec<&str> = REAL.iter().chain(MISSING.iter()).copied().collect();
    let t = wordlist_targets("http://h/FUZZ", &words);
    let t: Vec<(&str, &str)> = t.iter().map(|(u, w)| (u.as_str(), *w)).collect();
    let got = run(server, &shape, &t);
    for ((u, _), v) in t.iter().zip(&got) {
        let is_real = real(url::Url::parse(u).unwrap().path()).is_some();
        let want = if is_real { real_verdict } else { true };
        assert_eq!(*v, Some(want), "wordlist {u}");
    }
    // List mode, sample with a directory, targets in it and at the top.
    let shape = Shape::List {
        sample: url::Url::parse("http://h/index.html").unwrap(),
    };
    let urls: Vec<String> = words.iter().map(|w| format!("http://h/{w}")).collect();
    let words_list: Vec<String> = urls
        .iter()
        .map(|u| list_word(&url::Url::parse(u).unwrap()).to_string())
        .collect();
    let t: Vec<(&str, &str)> = urls
        .iter()
        .zip(&words_list)
        .map(|(u, w)| (u.as_str(), w.as_str()))
        .collect();
    let got = run(server, &shape, &t);
    for ((u, _), v) in t.iter().zip(&got) {
        let is_real = real(url::Url::parse(u).unwrap().path()).is_some();
        let want = if is_real { real_verdict } else { true };
        assert_eq!(*v, Some(want), "list {u}");
    }
}

#[test]
fn same_page_for_every_path() {
    check(
        &|p| {
            Some(match real(p) {
                Some(b) => (200, None, b),
                None => (
                    200,
                    None,
                    page("<h1>Welcome to Acme</h1><p>Browse our catalogue.</p>"),
                ),
            })
        },
        false,
    );
}

#[test]
fn page_echoing_the_path() {
    check(&echo_host, false);
}

#[test]
fn redirect_to_login_with_the_path() {
    check(
        &|p| {
            Some(match real(p) {
                Some(b) => (200, None, b),
                None => (302, Some(format!("/login?next={p}")), String::new()),
            })
        },
        false,
    );
    // Absolute and relative Locations give the same pattern.
    check(
        &|p| {
            Some(match real(p) {
                Some(b) => (200, None, b),
                None if p.len() % 2 == 0 => {
                    (302, Some(format!("http://h/login?next={p}")), String::new())
                }
                None => (302, Some(format!("login?next={p}")), String::new()),
            })
        },
        false,
    );
}

#[test]
fn a_different_redirect_is_not_soft() {
    let server = |p: &str| -> Resp {
        Some(match p {
            "/admin.php" => (302, Some("/admin.php/dashboard".into()), String::new()),
            _ => (302, Some(format!("/login?next={p}")), String::new()),
        })
    };
    let shape = Shape::Wordlist {
        base: "http://h/FUZZ".into(),
        exts: vec![],
    };
    let got = run(
        &server,
        &shape,
        &[("http://h/admin.php", "admin.php"), ("http://h/zz", "zz")],
    );
    assert_eq!(got, [Some(false), Some(true)]);
}

#[test]
fn forbidden_for_everything_but_a_few() {
    check(
        &|p| {
            Some(match real(p) {
                Some(b) => (200, None, b),
                None => (
                    403,
                    None,
                    "<html><body><h1>403 Forbidden</h1></body></html>\n".into(),
                ),
            })
        },
        false,
    );
}

#[test]
fn a_plain_404_host() {
    // Real 404s: a missing path matches (soft404 true is harmless on a 404), a real
    // file does not.
    check(
        &|p| {
            Some(match real(p) {
                Some(b) => (200, None, b),
                None => (
                    404,
                    None,
                    "<html><body><h1>404 Not Found</h1></body></html>\n".into(),
                ),
            })
        },
        false,
    );
}

#[test]
fn every_probe_failed() {
    let down = |_: &str| -> Resp { None };
    let shape = Shape::Wordlist {
        base: "http://h/".into(),
        exts: vec!["php".into()],
    };
    let sig = calibrate_host(&down, &shape);
    assert!(!sig.is_calibrated());
    assert_eq!(sig.failed(), 6);
    assert_eq!(run(&down, &shape, &[("http://h/x", "x")]), [None]);
    // Even a response to the target is not judged.
    let fp = sig.fingerprinter(Want::default(), "x").finish();
    assert_eq!(
        sig.judge(&Observation::new(200, None, None, "x", &fp)),
        None
    );
}

#[test]
fn some_probes_failed() {
    // Every other request fails: the ones that answered make the signature.
    let n = std::cell::Cell::new(0);
    let flaky = |p: &str| -> Resp {
        n.set(n.get() + 1);
        if n.get() % 2 == 0 {
            None
        } else {
            echo_host(p)
        }
    };
    let shape = Shape::Wordlist {
        base: "http://h/".into(),
        exts: vec![],
    };
    let sig = calibrate_host(&flaky, &shape);
    assert!(sig.is_calibrated());
    assert_eq!(sig.failed(), 1);
    let got = run(
        &echo_host,
        &shape,
        &[("http://h/admin.php", "admin.php"), ("http://h/zzz", "zzz")],
    );
    assert_eq!(got, [Some(false), Some(true)]);
    assert_eq!(sig.judge_error(), Some(false));
}

#[test]
fn friendly_not_found_in_the_site_template() {
    // The common real-world case: a 200 "not found" page in the same template as the
    // real pages. The template makes them similar, but not within the threshold.
    let server = |p: &str| -> Resp {
        Some(match p {
            "/widgets" => (200, None, page(ARTICLES[0])),
            "/careers" => (200, None, page(ARTICLES[1])),
            "/press" => (200, None, page(ARTICLES[2])),
            "/support" => (200, None, page(ARTICLES[3])),
            _ => (
                200,
                None,
                page("<h1>Page not found</h1><p>The page you asked for has moved or never existed.</p>"),
            ),
        })
    };
    let shape = Shape::Wordlist {
        base: "http://h/".into(),
        exts: vec![],
    };
    let words = ["widgets", "careers", "press", "support", "zzz", "old"];
    let t = wordlist_targets("http://h/", &words);
    let t: Vec<(&str, &str)> = t.iter().map(|(u, w)| (u.as_str(), *w)).collect();
    let got = run(&server, &shape, &t);
    assert_eq!(
        got,
        [
            Some(false),
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(true)
        ]
    );
}

#[test]
fn probes_that_disagree() {
    // Bare words get a 404; anything ending in .php gets a 200 page from a catch-all
    // handler. Both are kept; a result matching either is soft.
    let server = |p: &str| -> Resp {
        Some(match real(p) {
            Some(b) => (200, None, b),
            None if p.ends_with(".php") => (200, None, page(ARTICLES[3])),
            None => (404, None, "not found".into()),
        })
    };
    let shape = Shape::Wordlist {
        base: "http://h/FUZZ".into(),
        exts: vec!["php".into()],
    };
    let sig = calibrate_host(&server, &shape);
    assert_eq!(sig.groups().len(), 2);
    let got = run(
        &server,
        &shape,
        &[
            ("http://h/zz", "zz"),
            ("http://h/zz.php", "zz"),
            ("http://h/admin.php", "admin"),
            ("http://h/robots.txt", "robots.txt"),
        ],
    );
    assert_eq!(got, [Some(true), Some(true), Some(false), Some(false)]);
}

#[test]
fn dynamic_short_page() {
    // A short not-found page with a changing request id: too few tokens for a stable
    // simhash, but its word and line counts never change.
    let n = std::cell::Cell::new(0u64);
    let server = |p: &str| -> Resp {
        n.set(n.get() + 1);
        Some(match real(p) {
            Some(b) => (200, None, b),
            None => (
                200,
                None,
                format!(
                    "Not found. Request id {:x}.\n",
                    n.get().wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ),
            ),
        })
    };
    let shape = Shape::Wordlist {
        base: "http://h/".into(),
        exts: vec![],
    };
    let got = run(
        &server,
        &shape,
        &[("http://h/zz", "zz"), ("http://h/robots.txt", "robots.txt")],
    );
    assert_eq!(got, [Some(true), Some(false)]);
}

#[test]
fn an_error_result_is_not_soft() {
    let shape = Shape::Wordlist {
        base: "http://h/".into(),
        exts: vec![],
    };
    let sig = calibrate_host(&echo_host, &shape);
    assert_eq!(sig.judge_error(), Some(false));
    assert_eq!(sig.echoes(), 1);
}

/// The observation of `server`'s answer to a target, fingerprinted for `sig`.
fn observe(
    sig: &Signature,
    server: &dyn Fn(&str) -> Resp,
    url: &url::Url,
    word: &str,
) -> Observation {
    let (status, loc, body) = server(url.path()).expect("an answer");
    let mut f = sig.fingerprinter(Want::default(), word);
    f.update(body.as_bytes());
    Observation::new(status, loc.as_deref(), Some(url), word, &f.finish())
}

proptest! {
    /// On the benchmark's echoing host, any missing path is a soft-404, in both modes,
    /// whatever characters the word holds: its page, without the word, is exactly the
    /// calibration pages without theirs (distance 0, not merely within a threshold).
    #[test]
    fn echo_host_any_missing_word_is_soft(word in "[a-z0-9~!$&'()*+,;=:@<>%. _-]{1,12}") {
        let Ok(url) = url::Url::parse(&calibrate::expand("http://h/", &word)) else {
            return Ok(());
        };
        // (Parsing trims: `p ` is the real file `/p`.)
        prop_assume!(real(url.path()).is_none());
        let lw = list_word(&url).to_string();
        let modes = [
            (Shape::Wordlist { base: "http://h/".into(), exts: vec![] }, word.as_str()),
            (Shape::List { sample: url::Url::parse("http://h/x").unwrap() }, lw.as_str()),
        ];
        for (shape, w) in modes {
            let sig = calibrate_host(&echo_host, &shape);
            let obs = observe(&sig, &echo_host, &url, w);
            let nearest = sig.groups()[0].members.iter().map(|m| m.simhash.distance(&obs.simhash)).min();
            prop_assert_eq!(nearest, Some(0), "{:?} {}", shape, w);
            prop_assert_eq!(sig.judge(&obs), Some(true));
        }
    }
}

proptest! {
    /// Nothing a server or a wordlist can send panics: any Location, any word, any body.
    #[test]
    fn no_input_panics(
        location in "\\PC{0,40}",
        word in "\\PC{0,12}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
        status in 0u16..1000,
    ) {
        let req = url::Url::parse("http://h/dir/x").unwrap();
        let _ = location_pattern(&location, Some(&req), &word);
        let _ = location_pattern(&location, None, &word);
        let _ = word_forms(&word);
        let anchored = Removal::anchored(&word, &word);
        let fp = fp_chunks(&[&body], anchored);
        let mut b = SignatureBuilder::new();
        b.add(Observation::new(status, Some(&location), Some(&req), &word, &fp), fp.echoes);
        let sig = b.finish();
        let mut f = sig.fingerprinter(ALL, &word);
        f.update(&body);
        let fp = f.finish();
        prop_assert!(sig.judge(&Observation::new(status, Some(&location), Some(&req), &word, &fp)).is_some());
    }
}

/// The worked example of docs/calibration.md, number for number.
#[test]
fn worked_example_of_the_docs() {
    let shape = Shape::List {
        sample: url::Url::parse("http://127.0.0.1:18531/admin.php").unwrap(),
    };
    let ps = probes(&shape, 3, &mut counter_rng());
    let urls: Vec<&str> = ps.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(urls[0], "http://127.0.0.1:18531/ysp8v84rftq4es");
    assert_eq!(urls[1], "http://127.0.0.1:18531/ysp8v84rftq4es/");
    let mut b = SignatureBuilder::new();
    let mut all = Vec::new();
    for p in &ps {
        let path = url::Url::parse(&p.url).unwrap().path().to_string();
        let (st, loc, body) = echo_host(&path).unwrap();
        let mut f = p.fingerprinter();
        f.update(body.as_bytes());
        let fp = f.finish();
        assert_eq!((fp.words, fp.lines, fp.echoes), (Some(15), Some(4), 1));
        assert_eq!(fp.simhash_removed.as_slice(), [0x1e27ab64bcefc453]);
        all.push(fp.simhash.unwrap());
        b.add(p.observe(st, loc.as_deref(), &fp), fp.echoes);
    }
    assert_eq!(all[0], 0x1827ab64bccfc443);
    assert_eq!(all[2], 0x1a27ab64bcebc413);
    assert_eq!(all[4], 0x1827ab64bccfc413);
    let sig = b.finish();
    let g = &sig.groups()[0];
    assert_eq!(
        (sig.groups().len(), g.status, g.threshold, g.counts),
        (1, 200, 3, Some((15, 4)))
    );
    let cases: [(&str, &[u64], bool); 3] = [
        ("/admin.php", &[0x26429770dc5a6144], false),
        ("/backup.zip", &[0x1e27ab64bcefc453], true),
        (
            "/a&b",
            &[0x1a27ab64bccfc412, 0x7e27ab64becfc452, 0x1e27ab64bcefc453],
            true,
        ),
    ];
    for (path, hashes, soft) in cases {
        let url = url::Url::parse(&format!("http://127.0.0.1:18531{path}")).unwrap();
        let obs = observe(&sig, &echo_host, &url, list_word(&url));
        assert_eq!(obs.simhash.as_slice(), hashes, "{path}");
        assert_eq!(sig.judge(&obs), Some(soft), "{path}");
    }
}
