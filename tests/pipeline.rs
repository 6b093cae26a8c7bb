//! HTTP/1.1 pipelining (`Config::pipeline`, `--pipeline N`) against servers written
//! here on loopback: requests really are pipelined; servers that close after K
//! responses, answer out of framing, or answer fewer requests than were sent; POST is
//! never pipelined; and the results equal those of `--pipeline 1`.

mod common;

use common::{cfg, loopback_dns, read_request, run, run_with, server, Collect};
use proptest::prelude::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use volley::engine::{Config, RequestSpec};

/// A response whose body is the request's path (empty for HEAD, which still gets the
/// framing headers): chunked for even-numbered paths, with a Content-Length for the
/// others; `extra` bytes follow it.
fn answer(req: &str, extra: &str, close: bool) -> Vec<u8> {
    let mut words = req.split(' ');
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("/");
    if let Some(to) = path.strip_prefix("/redirect") {
        let body = if method == "HEAD" { "" } else { "moved" };
        return format!("HTTP/1.1 301 Moved\r\nLocation: {to}\r\nContent-Length: 5\r\n\r\n{body}")
            .into_bytes();
    }
    let body = if method == "HEAD" { "" } else { path };
    let conn = if close { "Connection: close\r\n" } else { "" };
    let digits = path.trim_start_matches(|c: char| !c.is_ascii_digit());
    if digits.parse::<u64>().is_ok_and(|n| n % 2 == 0) {
        let chunks = match body {
            "" => String::new(),
            b => format!("{:x}\r\n{b}\r\n0\r\n\r\n", b.len()),
        };
        return format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{conn}\r\n{chunks}{extra}"
        )
        .into_bytes();
    }
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{conn}\r\n{body}{extra}",
        path.len()
    )
    .into_bytes()
}

/// Bounds a server thread's blocking reads, so a client that does not pipeline
/// fails the test instead of hanging it.
fn bounded(st: &TcpStream) {
    st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

/// True when bytes of another request are already waiting (the client pipelined).
fn more_waiting(st: &TcpStream) -> bool {
    st.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let more = matches!(st.peek(&mut b), Ok(1));
    st.set_nonblocking(false).unwrap();
    more
}

/// Serves each request as it comes, noting whether another was already waiting
/// before the answer went out (`pipelined` counts those).
fn serve_plain(mut st: TcpStream, pipelined: &AtomicUsize, answered: &AtomicUsize) {
    bounded(&st);
    while let Some(req) = read_request(&mut st) {
        if more_waiting(&st) {
            pipelined.fetch_add(1, Ordering::SeqCst);
        }
        answered.fetch_add(1, Ordering::SeqCst);
        if st.write_all(&answer(&req, "", false)).is_err() {
            return;
        }
    }
}

fn urls(base: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{base}/p{i}")).collect()
}

fn piped(n: usize, concurrency: usize, per_host: usize) -> Config {
    Config {
        pipeline: n,
        concurrency,
        per_host,
        ..cfg()
    }
}

/// Every request answered 200 with its own path as the body, in one attempt, with
/// its time to first byte.
fn assert_all_ok(r: &Collect, urls: &[String], head: bool) {
    for (o, u) in r.outcomes.iter().zip(urls) {
        assert_eq!((o.status, o.error.as_ref()), (Some(200), None), "{o:?}");
        assert_eq!(o.url(), u);
        assert_eq!(o.attempts, 1, "{o:?}");
        assert!(o.timings.ttfb.is_some(), "{o:?}");
        let body = r.bodies.get(&o.tag).cloned().unwrap_or_default();
        let path = &u[u.find("/p").unwrap()..];
        let want = if head { "" } else { path };
        assert_eq!(String::from_utf8_lossy(&body), want, "{o:?}");
    }
}

/// After the first response on a connection, reads `k` requests before it answers
/// any of them: only a client that pipelines gets past the first batch. Records
/// each batch's size.
fn batch_server(k: usize) -> (common::Server, Arc<Mutex<Vec<usize>>>) {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let b2 = batches.clone();
    let s = server(move |_, mut st, _| {
        bounded(&st);
        let Some(first) = read_request(&mut st) else {
            return;
        };
        let _ = st.write_all(&answer(&first, "", false));
        loop {
            let mut batch = Vec::new();
            while batch.len() < k {
                match read_request(&mut st) {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            b2.lock().unwrap().push(batch.len());
            let all: Vec<u8> = batch.iter().flat_map(|r| answer(r, "", false)).collect();
            if st.write_all(&all).is_err() {
                return;
            }
        }
    });
    (s, batches)
}

#[test]
fn requests_are_pipelined_and_matched_in_order() {
    let (s, batches) = batch_server(4);
    let list = urls(&s.url(""), 13);
    let r = run(piped(4, 4, 1), &list);
    assert_all_ok(&r, &list, false);
    assert_eq!(s.conns.load(Ordering::SeqCst), 1, "one connection");
    assert_eq!(*batches.lock().unwrap(), vec![4, 4, 4]);
}

/// A request goes onto a connection of its host with room, or onto the room a
/// connection still being dialed will have, before a new connection is opened: 8
/// requests at once with `--pipeline 4` (no `--per-host`) take 2 connections, and
/// 12 with `--pipeline 3`, 4 (each dial brings room for the 2 after it).
#[test]
fn a_new_connection_only_when_no_room_is_coming() {
    for (n, count, conns) in [(4, 8, 2), (3, 12, 4), (2, 5, 3)] {
        let (pipelined, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (p2, a2) = (pipelined.clone(), answered.clone());
        let s = server(move |_, st, _| serve_plain(st, &p2, &a2));
        let list = urls(&s.url(""), count);
        let r = run(piped(n, count, 0), &list);
        assert_all_ok(&r, &list, false);
        assert_eq!(
            s.conns.load(Ordering::SeqCst),
            conns,
            "--pipeline {n}, {count} requests"
        );
        assert_eq!(answered.load(Ordering::SeqCst), count);
    }
}

/// While the first connection's name is still being resolved, the requests after
/// it wait for the room that connection will have (they do not each dial): 8
/// requests to a name with `--pipeline 4` take 2 connections.
#[test]
fn requests_wait_for_the_room_of_a_dial_in_progress() {
    let (pipelined, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, a2) = (pipelined.clone(), answered.clone());
    let s = server(move |_, st, _| serve_plain(st, &p2, &a2));
    let base = format!("http://room.pipe.test:{}", s.addr.port());
    let list = urls(&base, 8);
    let c = Config {
        dns_servers: vec![loopback_dns(|_| Some(Duration::ZERO))],
        ..piped(4, 8, 0)
    };
    let r = run(c, &list);
    assert_all_ok(&r, &list, false);
    assert_eq!(s.conns.load(Ordering::SeqCst), 2, "{r:?}");
}

/// A host that answers `Connection: close` to the first of several pipelined
/// requests: those behind are sent again (free of an attempt) and the host is not
/// pipelined to any more, so every request is answered once, in one attempt.
#[test]
fn a_host_that_closes_after_each_answer_stops_pipelining() {
    let answered = Arc::new(AtomicUsize::new(0));
    let a2 = answered.clone();
    let s = server(move |_, mut st, _| {
        bounded(&st);
        let Some(req) = read_request(&mut st) else {
            return;
        };
        a2.fetch_add(1, Ordering::SeqCst);
        let _ = st.write_all(&answer(&req, "", true));
        let _ = st.shutdown(std::net::Shutdown::Write);
        while read_request(&mut st).is_some() {}
    });
    let list = urls(&s.url(""), 12);
    let r = run(piped(4, 12, 0), &list);
    assert_all_ok(&r, &list, false);
    assert_eq!(answered.load(Ordering::SeqCst), 12, "each answered once");
}

#[test]
fn the_binary_pipelines_with_the_option_and_rejects_zero() {
    let (s, batches) = batch_server(3);
    let list = urls(&s.url(""), 7).join("\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["-q", "-c", "3", "--per-host", "1", "--pipeline", "3"])
        .args(list.split('\n'))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(lines.matches("\"status\":200").count(), 7, "{lines}");
    assert_eq!(*batches.lock().unwrap(), vec![3, 3]);
    let zero = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["--pipeline", "0", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2), "usage error");
}

#[test]
fn head_responses_are_framed_without_a_body() {
    let (p, a) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, a2) = (p.clone(), a.clone());
    let s = server(move |_, st, _| serve_plain(st, &p2, &a2));
    let list = urls(&s.url(""), 40);
    let spec = RequestSpec {
        method: "HEAD".into(),
        ..RequestSpec::default()
    };
    let r = run_with(piped(5, 10, 2), spec, &list);
    assert_all_ok(&r, &list, true);
    assert_eq!(a.load(Ordering::SeqCst), 40);
}

#[test]
fn server_that_closes_after_k_responses() {
    for (limit, close_header) in [(3, false), (3, true), (2, false)] {
        // Each connection answers `limit` requests, then closes its side and reads
        // what is left, so nothing is reset. A request left unanswered more than
        // three times stops pipelining to the host and counts an attempt: the one
        // retry (the default) covers it.
        let answered = Arc::new(AtomicUsize::new(0));
        let a2 = answered.clone();
        let s = server(move |_, mut st, _| {
            bounded(&st);
            for k in 1..=limit {
                let Some(req) = read_request(&mut st) else {
                    return;
                };
                a2.fetch_add(1, Ordering::SeqCst);
                let close = close_header && k == limit;
                if st.write_all(&answer(&req, "", close)).is_err() {
                    return;
                }
            }
            let _ = st.shutdown(std::net::Shutdown::Write);
            while read_request(&mut st).is_some() {}
        });
        let list = urls(&s.url(""), 120);
        let r = run(piped(8, 16, 2), &list);
        for o in &r.outcomes {
            assert_eq!(o.status, Some(200), "{o:?}");
        }
        assert_eq!(answered.load(Ordering::SeqCst), 120, "each answered once");
        assert!(s.conns.load(Ordering::SeqCst) >= 120 / limit);
    }
}

#[test]
fn answer_out_of_framing_stops_pipelining_to_the_host() {
    // Connection 0 answers one request, waits for three pipelined ones and answers
    // the first with five bytes beyond its Content-Length, then the rest. Later
    // connections answer plainly and count requests that arrived pipelined.
    let (p, a) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, a2) = (p.clone(), a.clone());
    let s = server(move |i, mut st, _| {
        if i > 0 {
            return serve_plain(st, &p2, &a2);
        }
        bounded(&st);
        let Some(first) = read_request(&mut st) else {
            return;
        };
        let _ = st.write_all(&answer(&first, "", false));
        let batch: Vec<String> = (0..3).filter_map(|_| read_request(&mut st)).collect();
        let mut out = Vec::new();
        for (k, r) in batch.iter().enumerate() {
            out.extend(answer(r, if k == 0 { "EXTRA" } else { "" }, false));
        }
        let _ = st.write_all(&out);
        while read_request(&mut st).is_some() {}
    });
    let list = urls(&s.url(""), 12);
    let r = run(piped(3, 3, 1), &list);
    assert_all_ok(&r, &list, false);
    assert!(s.conns.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        p.load(Ordering::SeqCst),
        0,
        "no pipelining after the bad answer"
    );
}

#[test]
fn fewer_answers_than_requests_stops_pipelining_and_resends() {
    // Connection 0 answers one request, waits for three pipelined ones, answers
    // only the first and then stays silent.
    let (p, a) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, a2) = (p.clone(), a.clone());
    let s = server(move |i, mut st, _| {
        if i > 0 {
            return serve_plain(st, &p2, &a2);
        }
        bounded(&st);
        let Some(first) = read_request(&mut st) else {
            return;
        };
        let _ = st.write_all(&answer(&first, "", false));
        let batch: Vec<String> = (0..3).filter_map(|_| read_request(&mut st)).collect();
        if let Some(r) = batch.first() {
            let _ = st.write_all(&answer(r, "", false));
        }
        while read_request(&mut st).is_some() {}
    });
    let list = urls(&s.url(""), 8);
    let r = run(
        Config {
            read_timeout: Duration::from_millis(500),
            ..piped(3, 3, 1)
        },
        &list,
    );
    assert_all_ok(&r, &list, false);
    assert_eq!(p.load(Ordering::SeqCst), 0, "no pipelining after the stall");
    assert_eq!(
        a.load(Ordering::SeqCst),
        6,
        "the rest answered on new connections"
    );
}

#[test]
fn post_is_never_pipelined() {
    let (p, a) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, a2) = (p.clone(), a.clone());
    let s = server(move |_, st, _| serve_plain(st, &p2, &a2));
    let list = urls(&s.url(""), 20);
    let spec = RequestSpec {
        method: "POST".into(),
        body: b"x=1".to_vec(),
        ..RequestSpec::default()
    };
    let r = run_with(piped(8, 8, 1), spec, &list);
    assert_all_ok(&r, &list, false);
    assert_eq!(p.load(Ordering::SeqCst), 0, "a POST was pipelined");
    assert_eq!(
        s.conns.load(Ordering::SeqCst),
        1,
        "kept alive, one at a time"
    );
}

/// One outcome without its timings: tag, status, bytes, attempts, body.
type Reported = (u64, Option<u16>, u64, u32, Vec<u8>);

/// What a run reports, without timings.
fn results(r: &Collect) -> Vec<Reported> {
    r.outcomes
        .iter()
        .map(|o| {
            let body = r.bodies.get(&o.tag).cloned().unwrap_or_default();
            (o.tag, o.status, o.bytes, o.attempts, body)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the depth, concurrency and per-host limit, a pipelined run reports
    /// exactly what `--pipeline 1` reports, and every request is answered once.
    #[test]
    fn results_identical_to_pipeline_1(
        n in 2usize..12,
        concurrency in 1usize..24,
        per_host in 0usize..4,
        count in 1usize..60,
        head in any::<bool>(),
        follow in any::<bool>(),
    ) {
        let (p, a) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (p2, a2) = (p.clone(), a.clone());
        let s = server(move |_, st, _| serve_plain(st, &p2, &a2));
        // With `follow`, every third request is a redirect to its own path (a
        // second hop, pipelined too).
        let mut list = urls(&s.url(""), count);
        if follow {
            for (i, u) in list.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
                *u = s.url(&format!("/redirect/p{}", i + 1));
            }
        }
        let spec = RequestSpec {
            method: if head { "HEAD" } else { "GET" }.into(),
            ..RequestSpec::default()
        };
        let cfg = |n| Config {
            follow,
            ..piped(n, concurrency, per_host)
        };
        let one = run_with(cfg(1), spec.clone(), &list);
        let many = run_with(cfg(n), spec, &list);
        prop_assert_eq!(results(&one), results(&many));
        let hops = if follow { count.div_ceil(3) } else { 0 };
        prop_assert_eq!(a.load(Ordering::SeqCst), 2 * (count + hops));
        if !follow {
            assert_all_ok(&many, &list, head);
        }
        for o in &many.outcomes {
            prop_assert_eq!(o.redirects.len(), usize::from(follow && o.url().contains("/redirect/")));
            prop_assert!(o.final_url().ends_with(&format!("/p{}", o.tag)), "{:?}", o);
        }
    }
}

/// A host that never answers within `--read-timeout` (200 ms), eight requests at
/// `--pipeline 8 --per-host 1`, no retry. Each request ahead fails its deadline and
/// the engine closes its connection, sending those behind again without spending
/// their free re-sends; after three such bumps a request goes on a connection
/// alone, so a run of failing requests ahead cannot keep it waiting. Requests sent:
/// 8 + 7 + 6 on the first three connections, then one on each of five: 26 (unbounded, each
/// request behind waits out every one ahead: 8 + 7 + … + 1 = 36). Every request
/// ends `read_timeout` (its own deadline, never `closed`), in one attempt.
#[test]
fn requests_bumped_from_behind_three_times_go_alone() {
    let counted = Arc::new(AtomicUsize::new(0));
    let done = counted.clone();
    let s = server(move |i, mut st, seen| {
        // Never answers: reads until the client closes, then records each request
        // (with its connection's number).
        bounded(&st);
        let mut all = Vec::new();
        let mut b = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut st, &mut b) {
            all.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8_lossy(&all);
        let mut seen = seen.lock().unwrap();
        for line in text.lines().filter(|l| l.starts_with("GET ")) {
            seen.push(format!("{i} {line}"));
        }
        drop(seen);
        done.fetch_add(1, Ordering::SeqCst);
    });
    let urls = urls(&s.url(""), 8);
    let c = Config {
        read_timeout: Duration::from_millis(200),
        retries: 0,
        ..piped(8, 8, 1)
    };
    let r = run(c, &urls);
    assert_eq!(r.outcomes.len(), 8);
    for o in &r.outcomes {
        let kind = o.error.as_ref().map(|e| e.kind);
        assert_eq!(kind, Some(volley::ErrorKind::ReadTimeout), "{o:?}");
        assert_eq!(o.attempts, 1, "{o:?}");
    }
    // Each connection's requests are counted when the server sees it close.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while counted.load(Ordering::SeqCst) < s.conns.load(Ordering::SeqCst)
        && std::time::Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(s.conns.load(Ordering::SeqCst), 8);
    let seen = s.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 26, "{seen:?}");
}
