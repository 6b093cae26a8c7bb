//! The `volley` binary's output contract end to end: `-o -` is standard output (and
//! fails on a closed pipe as standard output does), the regex matchers see the
//! status line, and `--headers` is `null` when no response arrived.

mod common;
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

/// A fresh empty directory for one test (the binary runs in it).
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("volley-cli-output-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The JSON lines of `out`, by `n`.
fn results(out: &[u8]) -> Vec<serde_json::Value> {
    let mut v: Vec<serde_json::Value> = String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    v.sort_by_key(|j| j["n"].as_u64());
    v
}

#[test]
fn dash_output_is_standard_output() {
    let s = http(|_| ok_response("x"));
    let dir = scratch("dash");
    let out = volley()
        .current_dir(&dir)
        .args(["-q", "-o", "-", &s.url("/a"), &s.url("/b")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let got = results(&out.stdout);
    assert_eq!(got.len(), 2, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(got[1]["url"], s.url("/b"));
    assert!(
        !dir.join("-").exists(),
        "-o - must not create a file named -"
    );
    // A file named `-` is still reachable as ./-.
    let out = volley()
        .current_dir(&dir)
        .args(["-q", "-o", "./-", &s.url("/a")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.join("-"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // --resume needs a file it can read and append to: not `-`, and no other -o.
    for args in [
        &["--resume", "-"][..],
        &["--resume", "r.jsonl", "-o", "-"],
        &["-o", "-", "--resume", "r.jsonl"],
    ] {
        let out = volley()
            .current_dir(&dir)
            .args(args)
            .arg(s.url("/a"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--resume"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!dir.join("r.jsonl").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Stdout a closed pipe: exit 1 with one line on stderr, with `-o -` as without
/// `-o`. The server answers only once the pipe's read end is closed, so the first
/// write meets EPIPE whatever the scheduling.
#[test]
fn closed_stdout_is_exit_1_with_or_without_dash() {
    for dash in [true, false] {
        let closed = Arc::new(AtomicBool::new(false));
        let c = closed.clone();
        let s = http(move |_| {
            let until = Instant::now() + Duration::from_secs(60);
            while !c.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            ok_response("x")
        });
        let dir = scratch(&format!("epipe-{dash}"));
        let mut cmd = volley();
        cmd.current_dir(&dir).arg("-q");
        if dash {
            cmd.args(["-o", "-"]);
        }
        let mut child = cmd
            .arg(s.url("/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        closed.store(true, Ordering::SeqCst);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "dash {dash}: {err}");
        assert_eq!(err.lines().count(), 1, "dash {dash}: {err}");
        assert!(err.contains("cannot write"), "dash {dash}: {err}");
        assert!(!dir.join("-").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Responses for the regex and headers tests: one after an interim 100, one with
/// no header field at all, a 404, and a redirect to a closed port.
fn responder(closed: std::net::SocketAddr) -> impl Fn(&str) -> Vec<u8> + Send + Sync {
    move |p| {
        match p {
        "/interim" => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\nhi"
            .to_vec(),
        "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        "/gone" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => format!(
            "HTTP/1.1 302 Found\r\nLocation: http://{closed}/\r\nContent-Type: text/html\r\nContent-Length: 23\r\n\r\n<title>moved</title>..."
        )
        .into_bytes(),
    }
    }
}

#[test]
fn regex_sees_the_status_line_of_the_final_response() {
    let s = http(responder(closed_port()));
    let refused = format!("http://{}/", closed_port());
    let urls = [s.url("/interim"), s.url("/empty"), s.url("/gone"), refused];
    let written = |re_args: &[&str]| -> Vec<String> {
        let out = volley()
            .args(["-q", "-c", "1", "--retries", "0"])
            .args(re_args)
            .args(&urls)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{re_args:?}");
        results(&out.stdout)
            .iter()
            .map(|j| j["url"].as_str().unwrap().to_string())
            .collect()
    };
    // The text is the status line, the fields, a blank line and the body.
    assert_eq!(
        written(&[
            "--match-regex",
            r"\AHTTP/1\.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\nhi\z"
        ]),
        [s.url("/interim")]
    );
    assert_eq!(
        written(&["--match-regex", r"\AHTTP/1\.1 204 No Content\r\n\r\n\z"]),
        [s.url("/empty")]
    );
    assert_eq!(
        written(&["--match-regex", r"HTTP/1\.1 (200|404)"]),
        [s.url("/interim"), s.url("/gone")]
    );
    // The interim head is not the response's.
    assert!(written(&["--match-regex", "Continue"]).is_empty());
    // A filter on the status line drops it; a result without a response stays.
    assert_eq!(
        written(&["--filter-regex", "Not Found|No Content"]),
        [s.url("/interim"), urls[3].clone()]
    );
}

#[test]
fn headers_are_null_without_a_response() {
    let s = http(responder(closed_port()));
    let urls = [
        s.url("/interim"),
        s.url("/empty"),
        format!("http://{}/", closed_port()),
        "http://[::1".to_string(),
        s.url("/moved"),
    ];
    for follow in [false, true] {
        let out = volley()
            .args(["-q", "-c", "1", "--retries", "0", "--headers", "--title"])
            .args(follow.then_some("-L"))
            .args(&urls)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let got = results(&out.stdout);
        assert_eq!(got.len(), urls.len());
        let h = |i: usize| got[i]["headers"].clone();
        assert_eq!(
            h(0),
            serde_json::json!([["X-A", "b"], ["Content-Length", "2"]])
        );
        assert_eq!(h(1), serde_json::json!([]), "a response with no field");
        assert_eq!(got[2]["error"], "connect_refused");
        assert!(h(2).is_null(), "{}", got[2]);
        assert_eq!(got[3]["error"], "invalid_url");
        assert!(h(3).is_null(), "{}", got[3]);
        if follow {
            // The redirect's response is not the final one: the hop after it failed.
            assert!(got[4]["status"].is_null(), "{}", got[4]);
            assert!(h(4).is_null(), "{}", got[4]);
            assert!(got[4]["title"].is_null(), "{}", got[4]);
        } else {
            assert_eq!(got[4]["status"], 302);
            assert_eq!(
                h(4)[0],
                serde_json::json!(["Location", format!("http://{}/", closed_port_of(&got[4]))])
            );
            assert_eq!(got[4]["title"], "moved");
        }
    }
}

/// The Location a `/moved` result reports, without its scheme and path.
fn closed_port_of(j: &serde_json::Value) -> String {
    j["location"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}
