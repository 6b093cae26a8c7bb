//! The contract's fine print inside the engine (issue 9): retries after a redirect,
//! slot waits, cancellation at a stop, interim responses, discarded bodies, timings,
//! headers across hosts, the policy through a proxy, shared limits. Servers on
//! loopback; each test waits for the state it needs.

mod common;
use common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine, Request, RequestSpec, Source};
use volley::ErrorKind;

fn kind(o: &volley::engine::Outcome) -> Option<ErrorKind> {
    o.error.as_ref().map(|e| e.kind)
}

/// Reads until the peer closes (or the read fails).
fn until_eof(s: &mut std::net::TcpStream) {
    let mut b = [0u8; 4096];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

fn path_of(req: &str) -> &str {
    req.split(' ').nth(1).unwrap_or("/")
}

#[test]
fn no_retry_after_a_redirect_was_answered() {
    // POST /a answers 307 to /b; /b closes without answering: a retry would send
    // the POST to /a again.
    let s = server(|_, mut st, reqs| {
        while let Some(req) = read_request(&mut st) {
            let p = path_of(&req).to_string();
            reqs.lock().unwrap().push(req);
            if p == "/a" {
                let r = b"HTTP/1.1 307 Again\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n";
                if st.write_all(r).is_err() {
                    return;
                }
            } else {
                return;
            }
        }
    });
    let spec = RequestSpec {
        method: "POST".into(),
        body: b"once".to_vec(),
        ..RequestSpec::default()
    };
    let r = run_with(
        Config {
            follow: true,
            retries: 3,
            ..cfg()
        },
        spec,
        &[s.url("/a")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Closed), "{o:?}");
    assert_eq!(o.attempts, 1, "{o:?}");
    let posts = s
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|q| q.starts_with("POST /a "))
        .count();
    assert_eq!(posts, 1, "the POST was sent once");
}

/// Requests fed by hand: `None` until the test pushes more; finished when closed.
struct Fed(Arc<Mutex<(Vec<Request>, bool)>>);

impl Source for Fed {
    fn next_request(&mut self) -> Option<Request> {
        self.0.lock().unwrap().0.pop()
    }
    fn is_exhausted(&self) -> bool {
        let g = self.0.lock().unwrap();
        g.0.is_empty() && g.1
    }
}

fn req(tag: u64, url: String) -> Request {
    Request {
        tag,
        url,
        spec: Arc::new(RequestSpec::default()),
    }
}

#[test]
fn a_stop_gives_every_request_in_flight_one_cancelled_outcome() {
    let got = Arc::new(AtomicUsize::new(0));
    let g2 = got.clone();
    let s = server(move |_, mut st, _| {
        let Some(req) = read_request(&mut st) else {
            return;
        };
        if path_of(&req) == "/fast" {
            let _ = st.write_all(&ok_response("ok"));
            return;
        }
        g2.fetch_add(1, Ordering::SeqCst);
        until_eof(&mut st);
    });
    let stop = Arc::new(AtomicBool::new(false));
    let queue = Arc::new(Mutex::new((Vec::new(), false)));
    {
        let mut q = queue.lock().unwrap();
        q.0.push(req(1, s.url("/fast")));
        for tag in 2..=5 {
            q.0.push(req(tag, s.url("/hang")));
        }
    }
    let cfg = Config {
        stop: Some(stop.clone()),
        retries: 2,
        ..cfg()
    };
    let mut e = Engine::new(cfg, Fed(queue.clone()), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.load(Ordering::SeqCst) < 4 || e.handler().outcomes.is_empty() {
        e.step(Some(Duration::from_millis(50))).unwrap();
        assert!(Instant::now() < deadline, "requests never arrived");
    }
    stop.store(true, Ordering::SeqCst);
    e.step(Some(Duration::from_millis(50))).unwrap();
    let mut outcomes = e.into_parts().1.outcomes;
    outcomes.sort_by_key(|o| o.tag);
    let tags: Vec<u64> = outcomes.iter().map(|o| o.tag).collect();
    assert_eq!(
        tags,
        [1, 2, 3, 4, 5],
        "exactly one on_done per request pulled"
    );
    assert_eq!(outcomes[0].status, Some(200));
    for o in &outcomes[1..] {
        assert_eq!(kind(o), Some(ErrorKind::Cancelled), "{o:?}");
    }
}

#[test]
fn a_source_that_waits_is_not_taken_as_finished() {
    let s = http(|_| ok_response("x"));
    let queue = Arc::new(Mutex::new((Vec::new(), false)));
    let mut e = Engine::new(cfg(), Fed(queue.clone()), Collect::default()).unwrap();
    // Nothing yet: the engine keeps asking.
    assert!(e.step(Some(Duration::from_millis(10))).unwrap());
    assert!(!e.is_finished());
    queue.lock().unwrap().0.push(req(1, s.url("/")));
    queue.lock().unwrap().1 = true;
    let deadline = Instant::now() + Duration::from_secs(20);
    while e.step(Some(Duration::from_millis(50))).unwrap() {
        assert!(Instant::now() < deadline);
    }
    assert_eq!(e.handler().outcomes.len(), 1);
    assert_eq!(e.handler().outcomes[0].status, Some(200));
}

#[test]
fn a_redirect_hop_waiting_for_a_host_slot_runs_no_deadline() {
    // Request 1 holds the only slot of S2 until its own --timeout ends it; request 2
    // is redirected from S1 to S2 at once and waits for that slot meanwhile. Its
    // total is paused while it waits, so it then succeeds.
    let s2 = server(|_, mut st, _| {
        while let Some(req) = read_request(&mut st) {
            if path_of(&req) == "/hold" {
                until_eof(&mut st);
                return;
            }
            if st.write_all(&ok_response("final")).is_err() {
                return;
            }
        }
    });
    let to = s2.url("/final");
    let s1 = http(move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes()
    });
    let r = run(
        Config {
            per_host: 1,
            follow: true,
            retries: 0,
            total_timeout: Some(Duration::from_millis(800)),
            ..cfg()
        },
        &[s2.url("/hold"), s1.url("/r")],
    );
    assert_eq!(kind(&r.outcomes[0]), Some(ErrorKind::TotalTimeout));
    let o = &r.outcomes[1];
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.status, o.redirects.len()), (Some(200), 1), "{o:?}");
}

/// A DNS server on loopback answering every A query with 127.0.0.1 (and AAAA with
/// no address). Counts the queries.
fn dns_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let q2 = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            q2.fetch_add(1, Ordering::SeqCst);
            let q = &buf[..n];
            // The question: labels up to the root, then type and class.
            let mut i = 12;
            while i < n && q[i] != 0 {
                i += 1 + q[i] as usize;
            }
            let end = i + 5;
            if end > n {
                continue;
            }
            let a = q[i + 1..i + 3] == [0, 1];
            let mut r = Vec::from(&q[..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            if a {
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (addr, queries)
}

#[test]
fn thousands_of_waiters_for_a_denied_name_do_not_deepen_the_stack() {
    // Every request waits for the one slot of a name whose answer is denied: each
    // waiter fails at once and wakes the next. Run on a small stack so a recursion
    // per waiter would overflow it.
    let (dns, _) = dns_server();
    let out = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let urls: Vec<String> = (0..5000)
                .map(|i| format!("http://denied.test/{i}"))
                .collect();
            run(
                Config {
                    concurrency: 5000,
                    per_host: 1,
                    dns_servers: vec![dns],
                    addresses: volley::cidr::AddressPolicy {
                        allow: vec![],
                        deny: vec![volley::cidr::Cidr::parse("127.0.0.0/8").unwrap()],
                    },
                    ..cfg()
                },
                &urls,
            )
        })
        .unwrap()
        .join()
        .expect("the engine's thread survived");
    assert!(out
        .outcomes
        .iter()
        .all(|o| kind(o) == Some(ErrorKind::Denied)));
}

#[test]
fn a_read_deadline_does_not_fire_for_bytes_already_waiting() {
    // 1,100 idle pooled connections close at once, then request /b's answer
    // arrives, then the loop stalls (as behind a slow disk) past /b's read deadline.
    // The next turn's poll returns at most 1,024 events: /b's bytes wait behind the
    // closes, and its deadline must not be declared while they do.
    const IDLE: usize = 1100;
    let close = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let closed = Arc::new(AtomicUsize::new(0));
    let (answer_tx, answer_rx) = mpsc::channel::<()>();
    let (written_tx, written_rx) = mpsc::channel::<()>();
    let answer_rx = Mutex::new(answer_rx);
    let b_arrived = Arc::new(AtomicBool::new(false));
    let (c2, d2, b2) = (close.clone(), closed.clone(), b_arrived.clone());
    let written_tx = Mutex::new(written_tx);
    let sb = server(move |_, mut st, _| {
        if read_request(&mut st).is_none() {
            return;
        }
        b2.store(true, Ordering::SeqCst);
        let _ = answer_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        let _ = st.write_all(&ok_response("b"));
        let _ = written_tx.lock().unwrap().send(());
        until_eof(&mut st);
    });
    let s = server(move |_, mut st, _| {
        if read_request(&mut st).is_none() {
            return;
        }
        let _ = st.write_all(&ok_response("x"));
        let (m, cv) = &*c2;
        let g = m.lock().unwrap();
        let _g = cv
            .wait_timeout_while(g, Duration::from_secs(20), |c| !*c)
            .unwrap();
        drop(st);
        d2.fetch_add(1, Ordering::SeqCst);
    });
    let queue = Arc::new(Mutex::new((Vec::new(), false)));
    for tag in 0..IDLE as u64 {
        queue.lock().unwrap().0.push(req(tag + 10, s.url("/x")));
    }
    let read_timeout = Duration::from_secs(2);
    let cfg = Config {
        concurrency: IDLE + 10,
        connect_timeout: Duration::from_secs(20),
        read_timeout,
        retries: 0,
        ..cfg()
    };
    let mut e = Engine::new(cfg, Fed(queue.clone()), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let step = |e: &mut Engine<Fed, Collect>| {
        e.step(Some(Duration::from_millis(20))).unwrap();
        assert!(
            Instant::now() < deadline,
            "took too long: {} {:?}",
            e.handler().outcomes.len(),
            e.stats()
        );
    };
    while e.handler().outcomes.len() < IDLE {
        step(&mut e);
    }
    for o in &e.handler().outcomes {
        assert_eq!(o.status, Some(200), "{o:?}");
    }
    queue.lock().unwrap().0.push(req(1, sb.url("/b")));
    while !b_arrived.load(Ordering::SeqCst) {
        step(&mut e);
    }
    // The idle connections close, then /b is answered; the loop is not stepped.
    {
        let (m, cv) = &*close;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    while closed.load(Ordering::SeqCst) < IDLE {
        std::thread::yield_now();
        assert!(Instant::now() < deadline, "closes");
    }
    answer_tx.send(()).unwrap();
    written_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("/b answered");
    // The stall itself (the condition under test, not a wait for a state).
    std::thread::sleep(read_timeout * 2);
    queue.lock().unwrap().1 = true;
    while e.handler().outcomes.len() < IDLE + 1 {
        step(&mut e);
    }
    let o = e.handler().outcomes.iter().find(|o| o.tag == 1).unwrap();
    assert!(o.error.is_none(), "answered in time, seen late: {o:?}");
    assert_eq!((o.status, o.bytes), (Some(200), 1));
}

#[test]
fn ttfb_is_stamped_at_the_first_byte_and_no_lookup_reports_no_dns() {
    // The server sends one byte of the head, then the rest only after the test saw
    // the engine take that byte and let 300 ms pass: the first byte's stamp and the
    // end lie at least 300 ms apart on the engine's own clock.
    const GAP: Duration = Duration::from_millis(300);
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (rest_tx, rest_rx) = mpsc::channel::<()>();
    let (first_tx, rest_rx) = (Mutex::new(first_tx), Mutex::new(rest_rx));
    let s = server(move |_, mut st, _| {
        if read_request(&mut st).is_none() {
            return;
        }
        let _ = st.write_all(b"H");
        let _ = st.flush();
        let _ = first_tx.lock().unwrap().send(());
        let _ = rest_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        let _ = st.write_all(&ok_response("body")[1..]);
        until_eof(&mut st);
    });
    let url = s.url("/");
    let cfg = cfg();
    let reqs = vec![req(1, url)];
    let mut e = Engine::new(cfg.clone(), reqs.into_iter().fuse(), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The first byte is sent once the engine has written the request.
    while first_rx.try_recv().is_err() {
        e.step(Some(Duration::from_millis(20))).unwrap();
        assert!(Instant::now() < deadline);
    }
    // The byte is in the socket: one turn takes it (its readiness is pending).
    e.step(Some(Duration::from_millis(100))).unwrap();
    let took = Instant::now();
    while took.elapsed() < GAP {
        std::thread::sleep(GAP - took.elapsed());
    }
    rest_tx.send(()).unwrap();
    while e.step(Some(Duration::from_millis(50))).unwrap() {
        assert!(Instant::now() < deadline);
    }
    let o = &e.handler().outcomes[0];
    assert_eq!(o.status, Some(200), "{o:?}");
    let (ttfb, total) = (o.timings.ttfb.unwrap(), o.timings.total.unwrap());
    assert!(total - ttfb >= GAP, "ttfb {ttfb:?} total {total:?}");
    assert_eq!(o.timings.dns, None, "an IP literal is not looked up");
    // A pinned name is not looked up either.
    let p = http(|_| ok_response("p"));
    let cfg = Config {
        resolve: vec![("pinned.test".into(), p.addr.port(), p.addr.ip())],
        ..cfg
    };
    let r = run(cfg, &[format!("http://pinned.test:{}/", p.addr.port())]);
    assert_eq!(r.outcomes[0].status, Some(200));
    assert_eq!(r.outcomes[0].timings.dns, None);
    assert!(r.outcomes[0].timings.connect.is_some());
}

#[test]
fn credentials_and_body_headers_do_not_follow_to_another_host() {
    // POST to S1 (as "localhost" pinned, so S2 at 127.0.0.1 is another host),
    // answered 303 to S2: the GET there carries no Authorization, Cookie, Host or
    // body headers; with location_trusted the credentials go along.
    let s2 = http(|_| ok_response("there"));
    let to = s2.url("/there");
    let s1 = http(move |p| {
        if p == "/back" {
            return ok_response("back");
        }
        format!("HTTP/1.1 303 See Other\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    });
    let spec = RequestSpec {
        method: "POST".into(),
        headers: vec![
            ("Authorization".into(), "Bearer secret".into()),
            ("Cookie".into(), "sid=secret".into()),
            ("Host".into(), "own.test".into()),
            ("Content-Type".into(), "text/plain".into()),
            ("X-Other".into(), "kept".into()),
        ],
        body: b"data".to_vec(),
    };
    let first = format!("http://localhost:{}/a", s1.addr.port());
    for trusted in [false, true] {
        let cfg = Config {
            follow: true,
            location_trusted: trusted,
            resolve: vec![("localhost".into(), s1.addr.port(), s1.addr.ip())],
            ..cfg()
        };
        let r = run_with(cfg, spec.clone(), std::slice::from_ref(&first));
        assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
        let sent = s2.requests.lock().unwrap().pop().unwrap();
        assert!(sent.starts_with("GET /there HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains(&format!("Host: {}\r\n", s2.addr)), "{sent}");
        assert!(sent.contains("X-Other: kept\r\n"), "{sent}");
        let lower = sent.to_ascii_lowercase();
        for h in [
            "content-type:",
            "content-length:",
            "transfer-encoding:",
            "own.test",
        ] {
            assert!(!lower.contains(h), "{h} carried: {sent}");
        }
        assert_eq!(
            lower.contains("authorization: bearer secret"),
            trusted,
            "{sent}"
        );
        assert_eq!(lower.contains("cookie: sid=secret"), trusted, "{sent}");
        // The first hop had them all.
        let own = s1.requests.lock().unwrap().pop().unwrap();
        assert!(
            own.contains("Authorization: Bearer secret\r\n") && own.contains("Host: own.test\r\n")
        );
    }
}

#[test]
fn interim_responses_are_capped() {
    let s = server(|_, mut st, _| {
        let Some(req) = read_request(&mut st) else {
            return;
        };
        let n: usize = path_of(&req)[1..].parse().unwrap();
        let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(n);
        r.extend_from_slice(&ok_response("x"));
        let _ = st.write_all(&r);
        until_eof(&mut st);
    });
    let r = run(
        Config {
            retries: 0,
            ..cfg()
        },
        &[s.url("/16"), s.url("/17")],
    );
    assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    let o = &r.outcomes[1];
    assert_eq!(kind(o), Some(ErrorKind::Protocol), "{o:?}");
    assert!(
        o.error.as_ref().unwrap().detail.contains("interim"),
        "{o:?}"
    );
}

#[test]
fn a_followed_redirects_endless_body_stops_at_max_body() {
    // The redirect's body never ends; past --max-body the redirect is still
    // followed, on a new connection.
    let s = server(|_, mut st, _| {
        while let Some(req) = read_request(&mut st) {
            if path_of(&req) == "/to" {
                let _ = st.write_all(&ok_response("there"));
                continue;
            }
            let head = b"HTTP/1.1 302 Found\r\nLocation: /to\r\nTransfer-Encoding: chunked\r\n\r\n";
            if st.write_all(head).is_err() {
                return;
            }
            let chunk = format!("1000\r\n{}\r\n", "z".repeat(0x1000));
            // Bounded: 64 MiB at most, far past the cap.
            for _ in 0..16 * 1024 {
                if st.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
            return;
        }
    });
    let r = run(
        Config {
            follow: true,
            max_body: 64 * 1024,
            total_timeout: None,
            ..cfg()
        },
        &[s.url("/from")],
    );
    let o = &r.outcomes[0];
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(
        (o.status, o.redirects.len(), o.bytes),
        (Some(200), 1, 5),
        "{o:?}"
    );
    assert_eq!(
        s.conns.load(Ordering::SeqCst),
        2,
        "the capped connection was not reused"
    );
}

#[test]
fn a_tcp_close_during_the_tls_handshake_is_closed_and_retried() {
    // A server that reads the ClientHello and closes.
    let s = server(|_, mut st, _| {
        let mut b = [0u8; 64];
        let _ = st.read(&mut b);
    });
    let r = run(
        Config {
            retries: 1,
            ..cfg()
        },
        &[format!("https://{}/", s.addr)],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Closed), "{o:?}");
    assert_eq!(o.attempts, 2, "{o:?}");
}

#[test]
fn an_answer_sent_before_closing_on_a_body_being_sent_is_read() {
    // The server answers 413 after the head and closes with the body unread (a
    // reset): the answer is reported, not the failed write.
    let s = server(|_, mut st, _| {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match st.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return,
            }
        }
        let _ = st.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbig!",
        );
        // Let the answer leave before the reset: shut down our sending side, then
        // drop the socket with the body unread.
        let _ = st.shutdown(std::net::Shutdown::Write);
    });
    let spec = RequestSpec {
        method: "POST".into(),
        body: vec![b'x'; 32 << 20],
        ..RequestSpec::default()
    };
    let r = run_with(cfg(), spec, &[s.url("/upload")]);
    let o = &r.outcomes[0];
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.status, o.bytes), (Some(413), 4), "{o:?}");
}

#[test]
fn through_a_proxy_the_policy_judges_the_target() {
    // The proxy sits on 127.0.0.1 and answers every request itself.
    let proxy = http(|_| ok_response("via proxy"));
    let policy = |deny: &str| volley::cidr::AddressPolicy {
        allow: vec![],
        deny: vec![volley::cidr::Cidr::parse(deny).unwrap()],
    };
    let cfg = |deny: &str| Config {
        proxy: Some(volley::engine::Proxy {
            host: proxy.addr.ip().to_string(),
            port: proxy.addr.port(),
            auth: None,
        }),
        addresses: policy(deny),
        resolve: vec![
            ("inside.test".into(), 80, "10.1.2.3".parse().unwrap()),
            ("outside.test".into(), 80, "192.0.2.7".parse().unwrap()),
        ],
        retries: 0,
        ..cfg()
    };
    // Denied targets (a literal, a name) send nothing to the proxy.
    let r = run(
        cfg("10.0.0.0/8"),
        &["http://10.9.9.9/".into(), "http://inside.test/".into()],
    );
    for o in &r.outcomes {
        assert_eq!(kind(o), Some(ErrorKind::Denied), "{o:?}");
    }
    assert_eq!(
        proxy.conns.load(Ordering::SeqCst),
        0,
        "nothing went to the proxy"
    );
    // A permitted target goes through, though the proxy's own address is denied.
    let r = run(
        cfg("127.0.0.0/8"),
        &["http://outside.test/".into(), "http://10.9.9.9/x".into()],
    );
    for o in &r.outcomes {
        assert_eq!(o.status, Some(200), "{o:?}");
    }
    let sent = proxy.requests.lock().unwrap().clone();
    assert!(
        sent.iter()
            .any(|q| q.starts_with("GET http://outside.test/ HTTP/1.1\r\n")),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 2);
}

/// Runs `urls` split over `workers` engines on their own threads, all built from
/// clones of `cfg` (as the binary's workers are). Outcomes of all, and the time.
fn run_workers(
    cfg: Config,
    urls: &[String],
    workers: usize,
) -> (Vec<volley::engine::Outcome>, Duration) {
    let started = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let cfg = cfg.clone();
            let mine: Vec<Request> = urls
                .iter()
                .enumerate()
                .filter(|(i, _)| i % workers == w)
                .map(|(i, u)| req(i as u64, u.clone()))
                .collect();
            std::thread::spawn(move || {
                let mut e = Engine::new(cfg, mine.into_iter().fuse(), Collect::default()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(60);
                while e.step(Some(Duration::from_millis(50))).unwrap() {
                    assert!(Instant::now() < deadline, "a worker did not finish");
                }
                e.into_parts().1.outcomes
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    (all, started.elapsed())
}

#[test]
fn per_host_is_a_total_across_engines_sharing_a_config() {
    // Each response takes a moment, so both engines want the host at once. The
    // server counts requests in progress at once (a connection's close reaches
    // it late, so open connections would overcount).
    let (busy, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b2, m2) = (busy.clone(), most.clone());
    let s = server(move |_, mut st, _| {
        while read_request(&mut st).is_some() {
            m2.fetch_max(b2.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            b2.fetch_sub(1, Ordering::SeqCst);
            if st.write_all(&ok_response("x")).is_err() {
                return;
            }
        }
    });
    let urls: Vec<String> = (0..40).map(|i| s.url(&format!("/{i}"))).collect();
    let cfg = Config {
        per_host: 1,
        concurrency: 10,
        ..cfg()
    };
    let (outcomes, _) = run_workers(cfg, &urls, 2);
    assert_eq!(outcomes.len(), 40);
    assert!(
        outcomes.iter().all(|o| o.status == Some(200)),
        "{outcomes:?}"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "one connection in total");
    assert!(
        s.conns.load(Ordering::SeqCst) >= 2,
        "both engines had their turn"
    );
}

#[test]
fn rate_is_a_total_across_engines_sharing_a_config() {
    let s = http(|_| ok_response("x"));
    let urls: Vec<String> = (0..20).map(|i| s.url(&format!("/{i}"))).collect();
    let cfg = Config {
        rate: 10.0,
        ..cfg()
    };
    // 20 starts at 10/s in total need at least 1.8 s (the pacer lets at most
    // rate × T + 2 start in T); two unshared pacers would take 0.9 s.
    let (outcomes, took) = run_workers(cfg, &urls, 2);
    assert!(outcomes.iter().all(|o| o.status == Some(200)));
    assert!(took >= Duration::from_millis(1700), "{took:?}");
}

#[test]
fn a_flood_with_bytes_always_waiting_still_ends_at_the_total() {
    // The look before declaring a deadline must not let a peer that always has
    // bytes waiting outrun --timeout. The server floods for at most 10 s.
    let s = server(|_, mut st, _| {
        if read_request(&mut st).is_none() {
            return;
        }
        let _ = st.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("4000\r\n{}\r\n", "f".repeat(0x4000));
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if st.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    let r = run(
        Config {
            total_timeout: Some(Duration::from_millis(300)),
            max_body: u64::MAX,
            ..cfg()
        },
        &[s.url("/flood")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::TotalTimeout), "{o:?}");
}
