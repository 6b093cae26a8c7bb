//! The engine against misbehaving servers on loopback: every error kind with its
//! phase, keep-alive and stale connections, redirects, limits.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::thread::sleep;
use std::time::Duration;
use volley::engine::{Config, RequestSpec};
use volley::ErrorKind;

fn kind(o: &volley::engine::Outcome) -> Option<ErrorKind> {
    o.error.as_ref().map(|e| e.kind)
}

#[test]
fn status_body_and_keepalive_reuse() {
    let s = http(|p| {
        if p == "/missing" {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            ok_response("hello")
        }
    });
    let mut urls: Vec<String> = (0..20).map(|i| s.url(&format!("/p{i}"))).collect();
    urls.push(s.url("/missing"));
    let r = run(
        Config {
            concurrency: 1,
            ..cfg()
        },
        &urls,
    );
    for o in &r.outcomes[..20] {
        assert_eq!(
            (o.status, o.bytes, o.content_length, o.attempts),
            (Some(200), 5, Some(5), 1),
            "{o:?}"
        );
        assert!(o.error.is_none());
    }
    assert_eq!(r.outcomes[20].status, Some(404));
    assert_eq!(
        s.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one connection reused"
    );
    // A reused connection reports no dns/connect time.
    assert!(r.outcomes[5].timings.connect.is_none() && r.outcomes[5].timings.dns.is_none());
    assert!(r.outcomes[0].timings.connect.is_some());
    assert_eq!(r.bodies[&1], b"hello");
    let req = &s.requests.lock().unwrap()[0];
    assert!(
        req.starts_with("GET /p0 HTTP/1.1\r\nHost: 127.0.0.1:"),
        "{req}"
    );
    assert!(req.contains("Accept-Encoding: gzip, deflate\r\n"));
}

#[test]
fn no_keepalive_sends_close_and_uses_new_connections() {
    let s = http(|_| ok_response("x"));
    let urls: Vec<String> = (0..5).map(|i| s.url(&format!("/{i}"))).collect();
    let r = run(
        Config {
            concurrency: 1,
            keepalive: false,
            ..cfg()
        },
        &urls,
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)));
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert!(s.requests.lock().unwrap()[0].contains("Connection: close\r\n"));
}

#[test]
fn connect_refused_is_not_retried() {
    let addr = closed_port();
    let r = run(cfg(), &[format!("http://{addr}/")]);
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::ConnectRefused));
    assert_eq!(o.attempts, 1);
    assert!(o.status.is_none());
    // The connect ran (and was refused): its time is reported; no lookup ran.
    assert!(
        o.timings.connect.is_some() && o.timings.dns.is_none(),
        "{o:?}"
    );
    assert!(
        o.timings.total.is_some() && o.timings.ttfb.is_none(),
        "{o:?}"
    );
}

#[test]
fn invalid_url_still_gets_an_outcome() {
    let r = run(cfg(), &["ftp://x/".into(), "http://".into(), "".into()]);
    assert!(r
        .outcomes
        .iter()
        .all(|o| kind(o) == Some(ErrorKind::InvalidUrl)));
    assert_eq!(r.outcomes[0].input(), "ftp://x/");
}

#[test]
fn read_timeout_waiting_for_head_is_retried_then_reported() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        sleep(Duration::from_secs(3));
    });
    let r = run(
        Config {
            read_timeout: Duration::from_millis(300),
            retries: 1,
            ..cfg()
        },
        &[s.url("/")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::ReadTimeout), "{o:?}");
    assert!(
        o.error.as_ref().unwrap().detail.contains("response head"),
        "{o:?}"
    );
    assert_eq!(o.attempts, 2);
}

#[test]
fn read_timeout_in_body_after_head_is_not_retried() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ = st.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        sleep(Duration::from_secs(3));
    });
    let r = run(
        Config {
            read_timeout: Duration::from_millis(300),
            ..cfg()
        },
        &[s.url("/")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::ReadTimeout));
    assert!(o.error.as_ref().unwrap().detail.contains("body"), "{o:?}");
    assert_eq!((o.attempts, o.status, o.bytes), (1, Some(200), 7));
}

#[test]
fn drip_feed_is_stopped_by_total_timeout() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ = st.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        for _ in 0..50 {
            if st.write_all(b"x").is_err() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
    });
    let r = run(
        Config {
            read_timeout: Duration::from_millis(500),
            total_timeout: Some(Duration::from_millis(600)),
            ..cfg()
        },
        &[s.url("/")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::TotalTimeout), "{o:?}");
    let total = o.timings.total.unwrap();
    assert!(total >= Duration::from_millis(600), "{total:?}");
}

#[test]
fn close_before_response_is_closed_and_retried() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
    });
    let r = run(cfg(), &[s.url("/")]);
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Closed), "{o:?}");
    assert_eq!(o.attempts, 2);
}

#[test]
fn close_mid_body_is_truncated() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ = st.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    });
    let r = run(cfg(), &[s.url("/")]);
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Truncated), "{o:?}");
    assert_eq!((o.status, o.bytes, o.attempts), (Some(200), 9, 1));
}

#[test]
fn reset_mid_body_is_truncated() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ =
            st.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        sleep(Duration::from_millis(100));
        reset(st);
    });
    let r = run(cfg(), &[s.url("/")]);
    assert_eq!(
        kind(&r.outcomes[0]),
        Some(ErrorKind::Truncated),
        "{:?}",
        r.outcomes[0]
    );
}

/// Closes with RST (SO_LINGER 0).
fn reset(st: TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            st.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
    drop(st);
}

#[test]
fn reset_before_head_is_closed() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        reset(st);
    });
    let r = run(
        Config {
            retries: 0,
            ..cfg()
        },
        &[s.url("/")],
    );
    assert_eq!(
        kind(&r.outcomes[0]),
        Some(ErrorKind::Closed),
        "{:?}",
        r.outcomes[0]
    );
    assert_eq!(r.outcomes[0].attempts, 1);
}

#[test]
fn garbage_is_protocol_and_not_retried() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ = st.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
    });
    let r = run(cfg(), &[s.url("/")]);
    assert_eq!(kind(&r.outcomes[0]), Some(ErrorKind::Protocol));
    assert_eq!(r.outcomes[0].attempts, 1);
}

#[test]
fn stale_keepalive_connection_is_retried_transparently() {
    // Connection 0 answers one request, then reads the next and closes without a word.
    let s = server(|i, mut st, _| {
        if i == 0 {
            let _ = read_request(&mut st);
            let _ = st.write_all(&ok_response("one"));
            let _ = read_request(&mut st);
            return;
        }
        while read_request(&mut st).is_some() {
            let _ = st.write_all(&ok_response("two"));
        }
    });
    let r = run(
        Config {
            concurrency: 1,
            retries: 0,
            ..cfg()
        },
        &[s.url("/1"), s.url("/2")],
    );
    assert_eq!(r.outcomes[0].status, Some(200));
    let o = &r.outcomes[1];
    assert_eq!((o.status, o.attempts), (Some(200), 1), "{o:?}");
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn extra_bytes_after_response_prevent_reuse() {
    let s = server(|_, mut st, _| {
        while read_request(&mut st).is_some() {
            let mut r = ok_response("a");
            r.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // unasked-for pipelined junk
            let _ = st.write_all(&r);
        }
    });
    let r = run(
        Config {
            concurrency: 1,
            ..cfg()
        },
        &[s.url("/1"), s.url("/2")],
    );
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn until_close_body_completes_on_eof() {
    let s = server(|_, mut st, _| {
        let _ = read_request(&mut st);
        let _ = st.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstream until close");
    });
    let r = run(cfg(), &[s.url("/")]);
    let o = &r.outcomes[0];
    assert_eq!((o.status, o.bytes, kind(o)), (Some(200), 18, None));
}

#[test]
fn redirects_followed_and_reported() {
    let s = http(|p| match p {
        "/a" => b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        "/b" => b"HTTP/1.1 302 Found\r\nLocation: c?x=1\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => ok_response("final"),
    });
    let r = run(
        Config {
            follow: true,
            max_redirects: 3,
            ..cfg()
        },
        &[s.url("/a"), s.url("/loop")],
    );
    let o = &r.outcomes[0];
    assert_eq!(o.status, Some(200));
    assert_eq!(o.final_url(), s.url("/c?x=1"));
    assert_eq!(o.url(), s.url("/a"));
    let chain: Vec<(String, u16)> = o
        .redirects
        .iter()
        .map(|r| (r.url.clone(), r.status))
        .collect();
    assert_eq!(chain, [(s.url("/a"), 301), (s.url("/b"), 302)]);
    assert_eq!(r.bodies[&1], b"final");
    assert_eq!(
        r.heads.iter().filter(|h| h.0 == 1).count(),
        1,
        "on_head only for the final response"
    );
    // Too many: the last 3xx is the final response, its Location the one not
    // followed (as curl reports the last redirect's code).
    let o = &r.outcomes[1];
    assert_eq!(kind(o), Some(ErrorKind::TooManyRedirects));
    assert_eq!(
        (o.status, o.redirects.len(), o.attempts),
        (Some(302), 3, 1),
        "{o:?}"
    );
    assert_eq!(o.location.as_deref(), Some(s.url("/loop").as_str()));
    // Not following: location reported, resolved.
    let r = run(cfg(), &[s.url("/b")]);
    assert_eq!(r.outcomes[0].status, Some(302));
    assert_eq!(
        r.outcomes[0].location.as_deref(),
        Some(s.url("/c?x=1").as_str())
    );
}

#[test]
fn see_other_turns_post_into_get() {
    let s = http(|p| match p {
        "/form" => {
            b"HTTP/1.1 303 See Other\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
        _ => ok_response("ok"),
    });
    let spec = RequestSpec {
        method: "POST".into(),
        body: b"a=1".to_vec(),
        ..RequestSpec::default()
    };
    let r = run_with(
        Config {
            follow: true,
            ..cfg()
        },
        spec,
        &[s.url("/form")],
    );
    assert_eq!(r.outcomes[0].status, Some(200));
    let reqs = s.requests.lock().unwrap();
    assert!(reqs[0].starts_with("POST /form") && reqs[0].ends_with("a=1"));
    assert!(
        reqs[1].starts_with("GET /done") && !reqs[1].contains("Content-Length"),
        "{}",
        reqs[1]
    );
}

#[test]
fn per_host_limit_is_respected() {
    // No connection is answered until three are open at once (at most 30 s): the
    // limit must be reached, not only never exceeded.
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = server(move |_, mut st, _| {
        let mut first = true;
        while read_request(&mut st).is_some() {
            if std::mem::take(&mut first) {
                arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let until = std::time::Instant::now() + Duration::from_secs(30);
                while arrived.load(std::sync::atomic::Ordering::SeqCst) < 3
                    && std::time::Instant::now() < until
                {
                    sleep(Duration::from_millis(5));
                }
            }
            let _ = st.write_all(&ok_response("x"));
        }
    });
    let urls: Vec<String> = (0..40).map(|i| s.url(&format!("/{i}"))).collect();
    let r = run(
        Config {
            concurrency: 20,
            per_host: 3,
            ..cfg()
        },
        &urls,
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)));
    let max = s.max_open.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(max, 3, "{max} connections open at once: the limit, reached");
}

#[test]
fn gzip_body_is_decoded_and_capped() {
    use flate2::write::GzEncoder;
    let text = "volley ".repeat(10_000);
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    let s = http(move |_| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        r.extend_from_slice(&gz);
        r
    });
    let r = run(cfg(), &[s.url("/")]);
    assert_eq!(r.outcomes[0].bytes, 70_000);
    assert!(!r.outcomes[0].capped);
    let r = run(
        Config {
            max_body: 1000,
            ..cfg()
        },
        &[s.url("/"), s.url("/2")],
    );
    for o in &r.outcomes {
        assert_eq!(
            (o.bytes, o.capped, o.status),
            (1000, true, Some(200)),
            "{o:?}"
        );
    }
}

#[test]
fn head_request_has_no_body() {
    let s = http(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec());
    let spec = RequestSpec {
        method: "HEAD".into(),
        ..RequestSpec::default()
    };
    let r = run_with(
        Config {
            concurrency: 1,
            ..cfg()
        },
        spec,
        &[s.url("/1"), s.url("/2")],
    );
    for o in &r.outcomes {
        assert_eq!(
            (o.status, o.bytes, o.content_length),
            (Some(200), 0, Some(1234))
        );
    }
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn many_requests_every_one_answered() {
    let s = http(|p| {
        if p.ends_with('7') {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            ok_response("y")
        }
    });
    let urls: Vec<String> = (0..2000).map(|i| s.url(&format!("/{i}"))).collect();
    let r = run(
        Config {
            concurrency: 50,
            ..cfg()
        },
        &urls,
    );
    let ok = r.outcomes.iter().filter(|o| o.status == Some(200)).count();
    let nf = r.outcomes.iter().filter(|o| o.status == Some(404)).count();
    assert_eq!((ok, nf), (1800, 200));
    assert!(s.conns.load(std::sync::atomic::Ordering::SeqCst) <= 50);
}

#[test]
fn pinned_name_resolves() {
    let s = http(|_| ok_response("pinned"));
    let url = format!("http://pinned.invalid:{}/", s.addr.port());
    let r = run(
        Config {
            resolve: vec![("pinned.invalid".into(), s.addr.port(), s.addr.ip())],
            ..cfg()
        },
        &[url],
    );
    assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    assert!(s.requests.lock().unwrap()[0].contains("Host: pinned.invalid:"));
}

/// A listener whose accept queue is full, so further SYNs go unanswered.
fn blackhole() -> (std::net::SocketAddr, Vec<TcpStream>, i32) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own; the address struct is sized.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as u16;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            libc::bind(
                fd,
                &a as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        libc::getsockname(fd, &mut a as *mut _ as *mut libc::sockaddr, &mut len);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], u16::from_be(a.sin_port)));
        // Fill the accept queue until a connect goes unanswered.
        let mut held = Vec::new();
        let mut full = false;
        for _ in 0..64 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => held.push(s),
                Err(_) => {
                    full = true;
                    break;
                }
            }
        }
        assert!(
            full,
            "could not fill the accept queue of a listen(0) socket"
        );
        let _keep = std::net::TcpListener::from_raw_fd(libc::dup(fd));
        std::mem::forget(_keep);
        (addr, held, fd)
    }
}

#[test]
fn connect_timeout_names_the_phase() {
    let (addr, _held, _fd) = blackhole();
    let r = run(
        Config {
            connect_timeout: Duration::from_millis(300),
            retries: 1,
            ..cfg()
        },
        &[format!("http://{addr}/")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::ConnectTimeout), "{o:?}");
    assert!(
        o.error.as_ref().unwrap().detail.contains("connecting to"),
        "{o:?}"
    );
    assert_eq!(o.attempts, 2);
}

#[test]
fn time_waiting_for_a_slot_is_not_counted() {
    // Each answer takes 250 ms; with one slot the fifth request waits 1 s in the
    // queue, longer than --timeout, and must still succeed.
    let s = http(|_| {
        sleep(Duration::from_millis(250));
        ok_response("slow")
    });
    let urls: Vec<String> = (0..5).map(|i| s.url(&format!("/{i}"))).collect();
    let r = run(
        Config {
            concurrency: 1,
            total_timeout: Some(Duration::from_millis(800)),
            ..cfg()
        },
        &urls,
    );
    for o in &r.outcomes {
        assert_eq!((o.status, kind(o)), (Some(200), None), "{o:?}");
        assert!(o.timings.total.unwrap() < Duration::from_millis(800));
    }
}

/// A source the test feeds by hand; never exhausted until told.
struct Fed {
    queue: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<volley::engine::Request>>>,
    done: std::rc::Rc<std::cell::Cell<bool>>,
}

impl volley::engine::Source for Fed {
    fn next_request(&mut self) -> Option<volley::engine::Request> {
        self.queue.borrow_mut().pop_front()
    }
    fn is_exhausted(&self) -> bool {
        self.done.get()
    }
}

#[test]
fn idle_pooled_connection_times_out_and_is_closed() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let closed = std::sync::Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    let s = server(move |_, mut st, _| {
        while read_request(&mut st).is_some() {
            let _ = st.write_all(&ok_response("x"));
        }
        c2.fetch_add(1, SeqCst); // the client closed its side
    });
    let queue = std::rc::Rc::new(std::cell::RefCell::new(std::collections::VecDeque::new()));
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let spec = std::sync::Arc::new(RequestSpec::default());
    let req = |tag: u64| volley::engine::Request {
        tag,
        url: s.url("/"),
        spec: spec.clone(),
    };
    let cfg = Config {
        idle_timeout: Duration::from_millis(200),
        ..cfg()
    };
    let mut e = volley::engine::Engine::new(
        cfg,
        Fed {
            queue: queue.clone(),
            done: done.clone(),
        },
        Collect::default(),
    )
    .unwrap();
    queue.borrow_mut().push_back(req(1));
    while e.handler().outcomes.is_empty() {
        e.step(Some(Duration::from_millis(50))).unwrap();
    }
    assert_eq!(closed.load(SeqCst), 0, "pooled, still open");
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while closed.load(SeqCst) == 0 && std::time::Instant::now() < until {
        e.step(Some(Duration::from_millis(50))).unwrap();
    }
    assert_eq!(
        closed.load(SeqCst),
        1,
        "the idle connection was closed by its timer"
    );
    queue.borrow_mut().push_back(req(2));
    done.set(true);
    while e.step(Some(Duration::from_millis(50))).unwrap() {}
    assert_eq!(e.handler().outcomes[1].status, Some(200));
    assert_eq!(
        s.conns.load(SeqCst),
        2,
        "a new connection after the idle one closed"
    );
}

#[test]
fn half_closed_peer_before_response_is_closed() {
    // The server shuts its sending side at once, then reads the request and goes away.
    let s = server(|_, mut st, _| {
        let _ = st.shutdown(std::net::Shutdown::Write);
        let _ = read_request(&mut st);
    });
    let r = run(
        Config {
            retries: 0,
            ..cfg()
        },
        &[s.url("/")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Closed), "{o:?}");
}

#[test]
fn peer_closing_while_a_large_body_is_sent_is_closed() {
    // The server reads nothing and resets: the request body write fails.
    let s = server(|_, st, _| {
        sleep(Duration::from_millis(50));
        reset(st);
    });
    let spec = RequestSpec {
        method: "POST".into(),
        body: vec![b'x'; 8 << 20],
        ..RequestSpec::default()
    };
    let r = run_with(
        Config {
            retries: 0,
            ..cfg()
        },
        spec,
        &[s.url("/upload")],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Closed), "{o:?}");
    assert!(
        o.error
            .as_ref()
            .unwrap()
            .detail
            .contains("sending the request")
            || o.error.as_ref().unwrap().detail.contains("reset"),
        "{o:?}"
    );
}

#[test]
fn allow_and_deny_are_checked_on_every_hop() {
    use volley::cidr::{AddressPolicy, Cidr};
    let s = http(|_| ok_response("ok"));
    let port = s.addr.port();
    let policy = |allow: &[&str], deny: &[&str]| AddressPolicy {
        allow: allow.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
        deny: deny.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
    };
    let url = s.url("/");
    let r = run(
        Config {
            addresses: policy(&[], &["127.0.0.0/8"]),
            ..cfg()
        },
        std::slice::from_ref(&url),
    );
    assert_eq!(
        kind(&r.outcomes[0]),
        Some(ErrorKind::Denied),
        "{:?}",
        r.outcomes[0]
    );
    assert_eq!(r.outcomes[0].attempts, 1, "denied is not retried");
    let r = run(
        Config {
            addresses: policy(&["10.0.0.0/8"], &[]),
            ..cfg()
        },
        std::slice::from_ref(&url),
    );
    assert_eq!(kind(&r.outcomes[0]), Some(ErrorKind::Denied));
    let r = run(
        Config {
            addresses: policy(&["127.0.0.1/32"], &[]),
            ..cfg()
        },
        std::slice::from_ref(&url),
    );
    assert_eq!(r.outcomes[0].status, Some(200));
    assert_eq!(
        s.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no connection to denied addresses"
    );
    // A redirect to a denied address is denied, and nothing connects there.
    let hop = http(move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: http://inner.test:{port}/\r\nContent-Length: 0\r\n\r\n").into_bytes()
    });
    let cfg2 = Config {
        follow: true,
        addresses: policy(&[], &["127.0.0.9/32"]),
        resolve: vec![("inner.test".into(), port, "127.0.0.9".parse().unwrap())],
        ..cfg()
    };
    let r = run(cfg2, &[hop.url("/")]);
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Denied), "{o:?}");
    assert!(o.error.as_ref().unwrap().detail.contains("inner.test"));
    assert_eq!(o.redirects.len(), 1);
}

#[test]
fn unix_socket_carries_every_connection() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    let path = std::env::temp_dir().join(format!("volley-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let seen3 = seen2.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    seen3.lock().unwrap().push(head);
                    let _ = s.write_all(&ok_response("via unix"));
                }
            });
        }
    });
    let c = Config {
        unix_socket: Some(std::sync::Arc::new(path.clone())),
        concurrency: 1,
        ..cfg()
    };
    let r = run(
        c,
        &[
            "http://anything.test/a".into(),
            "http://anything.test/b".into(),
        ],
    );
    for o in &r.outcomes {
        assert_eq!((o.status, o.bytes), (Some(200), 8), "{o:?}");
        assert!(o.timings.dns.is_none());
    }
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET /a HTTP/1.1\r\nHost: anything.test\r\n"),
        "{}",
        seen[0]
    );
    assert_eq!(seen.len(), 2);
    // A socket nobody listens on.
    let gone = std::env::temp_dir().join(format!("volley-{}-none.sock", std::process::id()));
    let r = run(
        Config {
            unix_socket: Some(std::sync::Arc::new(gone)),
            retries: 0,
            ..cfg()
        },
        &["http://x/".into()],
    );
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Connect), "{o:?}");
    assert!(o.error.as_ref().unwrap().detail.contains("unix:"), "{o:?}");
    let _ = std::fs::remove_file(&path);
}

/// A DNS server on loopback for tests: good.test → 127.0.0.1 (A only),
/// gone.test → NXDOMAIN, fail.test → SERVFAIL, slow.test → silence.
fn fake_dns() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let queries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let q2 = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            q2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let q = &buf[..n];
            // The name is at 12..; the question ends 4 bytes after the root label.
            let mut i = 12;
            let mut name = String::new();
            while q[i] != 0 {
                let l = q[i] as usize;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(std::str::from_utf8(&q[i + 1..i + 1 + l]).unwrap());
                i += 1 + l;
            }
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let qend = i + 5;
            let mut r = q[..qend].to_vec();
            r[2] = 0x81;
            let (rcode, answer) = match name.as_str() {
                "good.test" if qtype == 1 => (0u8, Some([127u8, 0, 0, 1])),
                "good.test" => (0, None),
                "gone.test" => (3, None),
                "fail.test" => (2, None),
                _ => continue, // slow.test: no answer
            };
            r[3] = 0x80 | rcode;
            if let Some(a) = answer {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                r.extend_from_slice(&a);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (addr, queries)
}

#[test]
fn dns_server_in_the_loop() {
    let (dns, queries) = fake_dns();
    let s = http(|_| ok_response("resolved"));
    let port = s.addr.port();
    let c = Config {
        dns_servers: vec![dns],
        connect_timeout: Duration::from_millis(2500),
        ..cfg()
    };
    let urls: Vec<String> = ["good", "good", "gone", "fail", "slow"]
        .iter()
        .map(|n| format!("http://{n}.test:{port}/"))
        .collect();
    let r = run(c, &urls);
    let o = &r.outcomes;
    assert_eq!(
        (o[0].status, o[1].status),
        (Some(200), Some(200)),
        "{:?}",
        o[0]
    );
    assert!(o[0].timings.dns.is_some());
    assert_eq!(kind(&o[2]), Some(ErrorKind::Dns));
    assert!(
        o[2].error.as_ref().unwrap().detail.contains("NXDOMAIN"),
        "{:?}",
        o[2]
    );
    assert_eq!(o[2].attempts, 1, "no such name is final");
    // The lookup ran (and failed): its time is reported; nothing was connected.
    assert!(
        o[2].timings.dns.is_some() && o[2].timings.connect.is_none(),
        "{:?}",
        o[2]
    );
    assert_eq!(kind(&o[3]), Some(ErrorKind::Dns));
    assert_eq!(o[3].attempts, 2, "a server failure is retried");
    // Silence: the connect deadline (which covers resolution) fires during the first
    // attempt; the retry joins the lookup still under way, which then gives up.
    let (k, d) = (kind(&o[4]), o[4].error.as_ref().unwrap().detail.clone());
    assert!(
        k == Some(ErrorKind::ConnectTimeout) && d.contains("resolving slow.test")
            || k == Some(ErrorKind::Dns) && d.contains("no answer"),
        "{:?}",
        o[4]
    );
    assert_eq!(o[4].attempts, 2);
    // good.test was asked once (A + AAAA) for both requests: coalesced and cached.
    let n = queries.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n < 2 + 2 + 2 * 2 + 2 * 3 * 2 + 2, "{n} queries");
}

/// Once the input is exhausted and nothing waits, a connection that goes idle is
/// closed at once rather than kept to the end of the run: the server sees the fast
/// request's connection end before it answers the slow one (it waits up to 20 s for
/// that end, then answers anyway, and the test fails).
#[test]
fn idle_connections_close_once_the_input_is_exhausted() {
    use std::sync::{Arc, Condvar, Mutex};
    let verdict = Arc::new((Mutex::new(None::<bool>), Condvar::new()));
    let v = verdict.clone();
    let s = server(move |_, mut conn, _| {
        let Some(req) = read_request(&mut conn) else {
            return;
        };
        let (lock, cv) = &*v;
        if req.starts_with("GET /fast ") {
            conn.write_all(&ok_response("f")).unwrap();
            let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
            let mut b = [0u8; 1];
            let ended = matches!(std::io::Read::read(&mut conn, &mut b), Ok(0));
            *lock.lock().unwrap() = Some(ended);
            cv.notify_all();
        } else {
            // The slow request is answered once the fast one's connection is judged.
            let g = lock.lock().unwrap();
            let _g = cv
                .wait_timeout_while(g, Duration::from_secs(30), |v| v.is_none())
                .unwrap();
            conn.write_all(&ok_response("s")).unwrap();
        }
    });
    let urls = vec![s.url("/fast"), s.url("/slow")];
    let r = run(
        Config {
            concurrency: 2,
            ..cfg()
        },
        &urls,
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)), "{r:?}");
    assert_eq!(
        *verdict.0.lock().unwrap(),
        Some(true),
        "the idle connection was kept open while the last request ran"
    );
}

fn redirecting() -> Server {
    http(|p| match p {
        "/a" => b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/busy" => b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => ok_response("x"),
    })
}

/// Once the input is exhausted, idle connections close as they go idle: a redirect
/// to the same host still reuses its connection (it starts before the turn ends).
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
    assert_eq!(
        (o.url(), o.final_url()),
        (s.url("/a").as_str(), s.url("/b").as_str())
    );
    assert_eq!(o.input(), s.url("/a"));
    assert_eq!(
        s.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "redirect hop dialed again"
    );
}

/// A retry after `Retry-After: 0` waits in the park, so the connection stays.
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
    assert_eq!(o.attempts, 2, "{o:?}");
    assert_eq!(
        s.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "retry dialed again"
    );
}

/// `input` is the line as given; `url()` the normalised first URL (trimmed, no
/// fragment, `http://` added, dot segments folded); `final_url()` after redirects.
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
        .map(|o| (o.input(), o.url(), o.final_url()))
        .collect();
    let want = [
        (inputs[0].as_str(), s.url("/x"), s.url("/x")),
        (inputs[1].as_str(), s.url("/a"), s.url("/b")),
        (inputs[2].as_str(), s.url("/a"), s.url("/b")),
        ("ftp://x/", "ftp://x/".to_string(), "ftp://x/".to_string()),
        (inputs[4].as_str(), s.url("/y"), s.url("/y")),
    ];
    let want: Vec<(&str, &str, &str)> = want
        .iter()
        .map(|(a, b, c)| (*a, b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, want);
}
