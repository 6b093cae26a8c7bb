//! Review checks: Outcome URLs after the Target fast path, and early idle close
//! against redirects and retries once the input is exhausted.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use volley::engine::Config;

fn redirecting() -> Server {
    http(|p| match p {
        "/a" => b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/busy" => {
            b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
        _ => ok_response("x"),
    })
}

#[test]
fn same_host_redirect_reuses_the_connection_at_the_end_of_the_input() {
    let s = redirecting();
    let r = run(
        Config {
            concurrency: 1,
            follow: true,
            ..cfg()
        },
        &[s.url("/a")],
    );
    let o = &r.outcomes[0];
    assert_eq!(o.status, Some(200), "{o:?}");
    assert_eq!((o.url(), o.final_url()), (s.url("/a").as_str(), s.url("/b").as_str()));
    assert_eq!(o.input, s.url("/a"));
    assert_eq!(s.conns.load(Ordering::SeqCst), 1, "redirect hop dialed again");
}

#[test]
fn retry_after_backoff_reuses_the_connection_at_the_end_of_the_input() {
    let s = redirecting();
    let r = run(
        Config {
            concurrency: 1,
            retries: 1,
            ..cfg()
        },
        &[s.url("/busy")],
    );
    let o = &r.outcomes[0];
    eprintln!("{o:?} conns {}", s.conns.load(Ordering::SeqCst));
    assert_eq!(o.attempts, 2, "{o:?}");
    assert_eq!(s.conns.load(Ordering::SeqCst), 1, "retry dialed again");
}

#[test]
fn outcome_urls_for_odd_inputs() {
    let s = redirecting();
    let bare = s.url("/a").trim_start_matches("http://").to_string();
    let inputs = vec![
        format!("  {}#frag  ", s.url("/x")),
        bare.clone(),
        s.url("/a"),
        "  ftp://x/  ".to_string(),
        format!("{}/./y", s.url("")),
    ];
    let r = run(
        Config {
            concurrency: 2,
            follow: true,
            ..cfg()
        },
        &inputs,
    );
    let got: Vec<(&str, &str, &str)> = r
        .outcomes
        .iter()
        .map(|o| (o.input.as_str(), o.url(), o.final_url()))
        .collect();
    let want = vec![
        (inputs[0].as_str(), s.url("/x"), s.url("/x")),
        (inputs[1].as_str(), s.url("/a"), s.url("/b")),
        (inputs[2].as_str(), s.url("/a"), s.url("/b")),
        ("ftp://x/", "ftp://x/".to_string(), "ftp://x/".to_string()),
        (inputs[4].as_str(), s.url("/y"), s.url("/y")),
    ];
    let want: Vec<(&str, &str, &str)> =
        want.iter().map(|(a, b, c)| (*a, b.as_str(), c.as_str())).collect();
    assert_eq!(got, want);
}
