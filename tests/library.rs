//! The library's embedder features against loopback servers: the engine driven from
//! a tokio loop (examples/tokio_loop.rs), `as_raw_fd` and `next_timeout`, per-request
//! overrides, cookies, credentials from the URL, flow control and cancellation.

mod common;
#[path = "../examples/tokio_loop.rs"]
mod tokio_loop;

use common::*;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine, Overrides, Request, RequestSpec};
use volley::ErrorKind;

#[test]
fn tokio_example_fetches_through_asyncfd() {
    let srv = http(|p| ok_response(&format!("hello {p}")));
    let mut urls: Vec<String> = (0..20).map(|i| srv.url(&format!("/r{i}"))).collect();
    urls.push(format!("http://{}/", closed_port()));
    let cfg = volley::engine::Config {
        concurrency: 4,
        retries: 0,
        ..cfg()
    };
    let mut outs = tokio_loop::fetch_all(cfg, urls, Arc::default()).unwrap();
    outs.sort_by_key(|o| o.tag);
    assert_eq!(outs.len(), 21);
    for o in &outs[..20] {
        assert_eq!(o.status, Some(200), "{o:?}");
        assert_eq!(o.bytes, format!("hello /r{}", o.tag - 1).len() as u64);
    }
    assert_eq!(
        outs[20].error.as_ref().map(|e| e.kind),
        Some(volley::ErrorKind::ConnectRefused)
    );
}

#[test]
fn tokio_tasks_keep_running_while_a_request_waits() {
    // The server answers only once the tokio ticker (on the engine's loop) has ticked
    // five times while the request waits: if the engine blocked the loop, the ticker
    // could not tick and the request would time out instead.
    let ticks = Arc::new(AtomicU64::new(0));
    let seen = ticks.clone();
    let srv = server(move |_, mut s, _| {
        if read_request(&mut s).is_some() {
            let start = seen.load(Ordering::SeqCst);
            let limit = Instant::now() + Duration::from_secs(10);
            while seen.load(Ordering::SeqCst) < start + 5 && Instant::now() < limit {
                std::thread::yield_now();
            }
            let _ = s.write_all(&ok_response("late"));
        }
    });
    let outs = tokio_loop::fetch_all(cfg(), vec![srv.url("/slow")], ticks.clone()).unwrap();
    assert_eq!(outs[0].status, Some(200), "{:?}", outs[0]);
    assert!(ticks.load(Ordering::SeqCst) >= 5);
}

#[test]
fn next_timeout_and_fd() {
    // The answer waits until the test has looked at the request in flight (a fast
    // loopback answer could otherwise finish it within the first turn).
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let srv = server(move |_, mut st, _| {
        if read_request(&mut st).is_some() {
            let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(20));
            let _ = st.write_all(&ok_response("x"));
        }
    });
    let spec = Arc::new(RequestSpec::default());
    let reqs = vec![Request {
        tag: 1,
        url: srv.url("/"),
        spec,
    }];
    let mut e = Engine::new(cfg(), reqs.into_iter().fuse(), Collect::default()).unwrap();
    assert!(e.as_raw_fd() >= 0);
    // Before the first turn nothing is armed; after it, the connect deadline is.
    assert_eq!(e.next_timeout(), None);
    e.step(Some(Duration::ZERO)).unwrap();
    let t = e
        .next_timeout()
        .expect("a request in flight has a deadline");
    assert!(t <= cfg().total_timeout.unwrap());
    go.send(()).unwrap();
    while e.step(Some(Duration::from_millis(100))).unwrap() {}
    assert_eq!(e.next_timeout(), None, "finished: nothing to wait for");
    assert_eq!(e.handler().outcomes[0].status, Some(200));
}

/// Runs requests with their own specs; outcomes sorted by tag.
fn run_specs(cfg: Config, reqs: Vec<(String, RequestSpec)>) -> Collect {
    let n = reqs.len();
    let reqs: Vec<Request> = reqs
        .into_iter()
        .enumerate()
        .map(|(i, (url, spec))| Request {
            tag: i as u64 + 1,
            url,
            spec: Arc::new(spec),
        })
        .collect();
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), Collect::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(60);
    while e.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(Instant::now() < limit, "engine did not finish within 60 s");
    }
    let (_, mut c) = e.into_parts();
    c.outcomes.sort_by_key(|o| o.tag);
    assert_eq!(c.outcomes.len(), n, "one outcome per request");
    c
}

fn with(o: Overrides) -> RequestSpec {
    RequestSpec {
        overrides: Some(Arc::new(o)),
        ..RequestSpec::default()
    }
}

/// Reads one request, then holds the connection silently until the client closes.
fn silent() -> Server {
    server(|_, mut s, _| {
        use std::io::Read;
        if read_request(&mut s).is_some() {
            let mut b = [0u8; 64];
            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
        }
    })
}

#[test]
fn per_request_timeouts_override_the_config() {
    let srv = silent();
    let cfg = Config {
        read_timeout: Duration::from_secs(30),
        total_timeout: Some(Duration::from_secs(40)),
        retries: 0,
        ..cfg()
    };
    let r = run_specs(
        cfg,
        vec![
            (
                srv.url("/read"),
                with(Overrides {
                    read_timeout: Some(Duration::from_millis(200)),
                    ..Overrides::default()
                }),
            ),
            (
                srv.url("/total"),
                with(Overrides {
                    total_timeout: Some(Some(Duration::from_millis(300))),
                    ..Overrides::default()
                }),
            ),
        ],
    );
    let e1 = r.outcomes[0].error.as_ref().unwrap();
    assert_eq!(e1.kind, ErrorKind::ReadTimeout, "{e1}");
    assert!(e1.to_string().contains("0.2s"), "{e1}");
    let e2 = r.outcomes[1].error.as_ref().unwrap();
    assert_eq!(e2.kind, ErrorKind::TotalTimeout, "{e2}");
    assert!(e2.to_string().contains("0.3s"), "{e2}");
}

#[test]
fn per_request_redirects_and_body_cap() {
    let srv = http(|p| match p {
        "/from" => b"HTTP/1.1 302 Found\r\nLocation: /to\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => ok_response(&"b".repeat(1000)),
    });
    let cfg = Config {
        follow: false,
        max_body: 1 << 20,
        ..cfg()
    };
    let r = run_specs(
        cfg,
        vec![
            (srv.url("/from"), RequestSpec::default()),
            (
                srv.url("/from"),
                with(Overrides {
                    follow: Some(true),
                    max_body: Some(10),
                    ..Overrides::default()
                }),
            ),
            (
                srv.url("/from"),
                with(Overrides {
                    follow: Some(true),
                    max_redirects: Some(0),
                    ..Overrides::default()
                }),
            ),
        ],
    );
    let [plain, followed, too_many] = &r.outcomes[..] else {
        unreachable!()
    };
    assert_eq!((plain.status, plain.redirects.len()), (Some(302), 0));
    assert_eq!((followed.status, followed.redirects.len()), (Some(200), 1));
    assert_eq!((followed.bytes, followed.capped), (10, true));
    assert_eq!(
        too_many.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::TooManyRedirects)
    );
}

/// A keep-alive server that echoes the request's `Cookie` and `Authorization` lines
/// in the body; `/set?c=COOKIE&to=URL` answers 302 to URL with `Set-Cookie: COOKIE`,
/// `/go?to=URL` a plain 302 to URL.
fn echo() -> Server {
    server(|_, mut s, reqs| {
        while let Some(req) = read_request(&mut s) {
            reqs.lock().unwrap().push(req.clone());
            let target = req.split(' ').nth(1).unwrap_or("/").to_string();
            let u = url::Url::parse(&format!("http://x{target}")).unwrap();
            let q = |k: &str| {
                u.query_pairs()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.into_owned())
            };
            let resp = match u.path() {
                "/set" => format!(
                    "HTTP/1.1 302 Found\r\nSet-Cookie: {}\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                    q("c").unwrap(),
                    q("to").unwrap()
                )
                .into_bytes(),
                "/go" => format!(
                    "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                    q("to").unwrap()
                )
                .into_bytes(),
                _ => {
                    let echoed: String = req
                        .lines()
                        .filter(|l| {
                            let l = l.to_ascii_lowercase();
                            l.starts_with("cookie:") || l.starts_with("authorization:")
                        })
                        .map(|l| format!("{l}\n"))
                        .collect();
                    ok_response(&echoed)
                }
            };
            if s.write_all(&resp).is_err() {
                return;
            }
        }
    })
}

/// `a.test` and `b.test` both pinned to the server's address.
fn two_hosts(srv: &Server) -> Config {
    let ip = srv.addr.ip();
    let port = srv.addr.port();
    Config {
        follow: true,
        resolve: vec![("a.test".into(), port, ip), ("b.test".into(), port, ip)],
        ..cfg()
    }
}

fn body_of(c: &Collect, tag: u64) -> String {
    String::from_utf8_lossy(c.bodies.get(&tag).map_or(&[][..], |b| &b[..])).into_owned()
}

#[test]
fn cookie_jar_stores_from_redirect_hops_and_sends_by_domain() {
    let srv = echo();
    let port = srv.addr.port();
    let jar = Arc::new(std::sync::Mutex::new(volley::cookie::Jar::default()));
    let cfg = Config {
        cookies: Some(jar.clone()),
        concurrency: 1,
        ..two_hosts(&srv)
    };
    let a = |p: &str| format!("http://a.test:{port}{p}");
    let b = |p: &str| format!("http://b.test:{port}{p}");
    let set = format!(
        "/set?c={}&to={}",
        "sid%3Ds1%3B%20Path%3D%2F",
        url::form_urlencoded::byte_serialize(a("/echo").as_bytes()).collect::<String>()
    );
    let r = run_specs(
        cfg.clone(),
        vec![
            (a(&set), RequestSpec::default()),
            (b("/echo"), RequestSpec::default()),
            (
                a("/echo"),
                RequestSpec {
                    headers: vec![("Cookie".into(), "mine=1".into())],
                    ..RequestSpec::default()
                },
            ),
        ],
    );
    // The redirect hop's Set-Cookie is sent on the next hop, same host.
    assert_eq!(body_of(&r, 1), "Cookie: sid=s1\n");
    // Not to another host (host-only cookie).
    assert_eq!(body_of(&r, 2), "");
    // Joined after the user's own Cookie header.
    assert_eq!(body_of(&r, 3), "Cookie: mine=1; sid=s1\n");
    // The jar outlives the run, and another engine sharing it sends the cookie.
    assert_eq!(jar.lock().unwrap().len(), 1);
    let again = run_specs(cfg, vec![(a("/echo"), RequestSpec::default())]);
    assert_eq!(body_of(&again, 1), "Cookie: sid=s1\n");
    // Off by default: no Cookie without a jar.
    let none = run_specs(two_hosts(&srv), vec![(a(&set), RequestSpec::default())]);
    assert_eq!(body_of(&none, 1), "");
}

#[test]
fn url_credentials_are_sent_and_dropped_cross_origin() {
    let srv = echo();
    let port = srv.addr.port();
    let enc = |u: String| url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>();
    let same = format!("http://us%3Aer:p%40ss@a.test:{port}/go?to=/echo");
    let cross = format!(
        "http://user:pw@a.test:{port}/go?to={}",
        enc(format!("http://b.test:{port}/echo"))
    );
    let r = run_specs(
        two_hosts(&srv),
        vec![
            (
                format!("http://user:pw@a.test:{port}/echo"),
                RequestSpec::default(),
            ),
            (same, RequestSpec::default()),
            (cross.clone(), RequestSpec::default()),
        ],
    );
    assert_eq!(body_of(&r, 1), "Authorization: Basic dXNlcjpwdw==\n");
    // `us:er` / `p@ss`, percent-decoded, kept on a same-origin redirect.
    assert_eq!(body_of(&r, 2), "Authorization: Basic dXM6ZXI6cEBzcw==\n");
    assert_eq!(body_of(&r, 3), "", "credentials leaked to another host");
    // The first hop of the cross-origin request did carry them.
    let reqs = srv.requests.lock().unwrap();
    assert!(reqs
        .iter()
        .any(|q| q.contains("GET /go?to=http") && q.contains("Authorization: Basic dXNlcjpwdw==")));
    drop(reqs);
    // location_trusted sends them anywhere, as curl's --location-trusted.
    let trusted = Config {
        location_trusted: true,
        ..two_hosts(&srv)
    };
    let r = run_specs(trusted, vec![(cross, RequestSpec::default())]);
    assert_eq!(body_of(&r, 1), "Authorization: Basic dXNlcjpwdw==\n");
}

fn volley_bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
}

#[test]
fn cli_cookie_and_cookie_jar() {
    let srv = echo();
    let port = srv.addr.port();
    let dir = std::env::temp_dir().join(format!("volley-jar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jar = dir.join("jar.txt");
    // A jar from an earlier run (curl's format), with a cookie for a.test.
    std::fs::write(
        &jar,
        "# Netscape HTTP Cookie File\na.test\tFALSE\t/\tFALSE\t0\told\t1\n",
    )
    .unwrap();
    let pin = format!("a.test:{port}:127.0.0.1");
    let to = format!("http://a.test:{port}/echo");
    let set = format!(
        "http://a.test:{port}/set?c=new%3D2%3B%20Path%3D%2F&to={}",
        url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
    );
    let out = volley_bin()
        .args([
            "-q",
            "-L",
            "-c",
            "1",
            "--resolve",
            &pin,
            "--cookie",
            "cli=0; x = y",
        ])
        .arg("--cookie-jar")
        .arg(&jar)
        .arg(&set)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = srv.requests.lock().unwrap().clone();
    // First hop: the CLI's pairs and the loaded jar's; second: plus the new cookie.
    assert!(
        reqs[0].contains("Cookie: cli=0; x=y; old=1\r\n"),
        "{}",
        reqs[0]
    );
    assert!(
        reqs[1].contains("Cookie: cli=0; x=y; old=1; new=2\r\n"),
        "{}",
        reqs[1]
    );
    // Written at the end: both jar cookies (the --cookie pairs are not jar cookies).
    let saved = std::fs::read_to_string(&jar).unwrap();
    assert!(
        saved.contains("a.test\tFALSE\t/\tFALSE\t0\told\t1\n"),
        "{saved}"
    );
    assert!(
        saved.contains("a.test\tFALSE\t/\tFALSE\t0\tnew\t2\n"),
        "{saved}"
    );
    assert!(!saved.contains("cli"), "{saved}");
    // A bad --cookie is a usage error; an unreadable jar path is named.
    let bad = volley_bin()
        .args(["--cookie", "novalue", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let unreadable = volley_bin()
        .arg("--cookie-jar")
        .arg(&dir) // a directory
        .arg("http://127.0.0.1:9/")
        .output()
        .unwrap();
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreadable.stderr).contains("--cookie-jar"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn redirect_history_and_headers_on_the_outcome() {
    let srv = echo();
    let port = srv.addr.port();
    let url = format!("http://a.test:{port}/go?to=/go%3Fto%3D/echo");
    let cfg = Config {
        keep_headers: true,
        ..two_hosts(&srv)
    };
    let r = run_specs(cfg, vec![(url.clone(), RequestSpec::default())]);
    let o = &r.outcomes[0];
    assert_eq!(o.status, Some(200));
    let hops: Vec<(u16, &str)> = o
        .redirects
        .iter()
        .map(|h| (h.status, h.location.as_str()))
        .collect();
    let first = format!("http://a.test:{port}/go?to=/echo");
    let second = format!("http://a.test:{port}/echo");
    assert_eq!(hops, vec![(302, first.as_str()), (302, second.as_str())]);
    assert_eq!(o.redirects[0].url, url);
    assert_eq!(
        o.headers.as_deref(),
        Some(&[("Content-Length".to_string(), "0".to_string())][..])
    );
    // Not kept unless asked.
    let r = run_specs(two_hosts(&srv), vec![(url, RequestSpec::default())]);
    assert_eq!(r.outcomes[0].headers, None);
}

/// Aborts every body at its first chunk.
#[derive(Default)]
struct AbortAtFirst(Vec<volley::engine::Outcome>, usize);

impl volley::engine::Handler for AbortAtFirst {
    fn on_body_action(&mut self, _tag: u64, _chunk: &[u8]) -> volley::engine::BodyAction {
        self.1 += 1;
        volley::engine::BodyAction::Abort
    }
    fn on_done(&mut self, o: volley::engine::Outcome) {
        self.0.push(o);
    }
}

#[test]
fn on_body_action_aborts_a_body() {
    let big = "z".repeat(4 << 20);
    let srv = http(move |_| ok_response(&big));
    let reqs = vec![
        Request {
            tag: 1,
            url: srv.url("/a"),
            spec: Arc::default(),
        },
        Request {
            tag: 2,
            url: srv.url("/b"),
            spec: Arc::default(),
        },
    ];
    let cfg = Config {
        concurrency: 1,
        max_body: 64 << 20,
        ..cfg()
    };
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), AbortAtFirst::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    while e.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(Instant::now() < limit);
    }
    let (_, h) = e.into_parts();
    assert_eq!(h.0.len(), 2, "one on_done each");
    assert_eq!(h.1, 2, "no chunk after an abort");
    for o in &h.0 {
        assert_eq!(o.error.as_ref().map(|e| e.kind), Some(ErrorKind::Cancelled));
        assert_eq!(o.status, Some(200));
        assert!(o.bytes > 0 && o.bytes < 4 << 20, "{}", o.bytes);
    }
    // The aborted response's connection was closed, not reused.
    assert_eq!(srv.conns.load(Ordering::SeqCst), 2);
}

/// Reads one request (recording it), then holds the connection until the client
/// closes it.
fn holding() -> Server {
    server(|_, mut s, reqs| {
        use std::io::Read;
        if let Some(r) = read_request(&mut s) {
            reqs.lock().unwrap().push(r);
            let mut b = [0u8; 64];
            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
            reqs.lock().unwrap().push("closed".into());
        }
    })
}

#[test]
fn cancel_by_tag_in_flight_and_in_backoff() {
    let srv = holding();
    // Accepts and closes at once: `closed`, which is retried (after a long backoff).
    let closing = server(|_, s, _| drop(s));
    let reqs = vec![
        Request {
            tag: 10,
            url: srv.url("/one"),
            spec: Arc::default(),
        },
        Request {
            tag: 20,
            url: closing.url("/"),
            spec: Arc::default(),
        },
    ];
    let cfg = Config {
        retries: 3,
        retry_backoff: Duration::from_secs(60),
        ..cfg()
    };
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), Collect::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    // Wait until the server holds request 10 and request 20 sits in its backoff.
    while srv.requests.lock().unwrap().is_empty() || e.stats().active != 1 {
        assert!(Instant::now() < limit, "never reached the state");
        e.step(Some(Duration::from_millis(50))).unwrap();
    }
    assert!(!e.cancel(99), "no such tag");
    assert!(e.cancel(20), "in backoff");
    assert!(e.cancel(10), "in flight");
    assert!(!e.cancel(10), "already done");
    assert!(e.is_finished());
    let outs = &e.handler().outcomes;
    assert_eq!(outs.len(), 2);
    for o in outs {
        assert_eq!(
            o.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Cancelled),
            "{o:?}"
        );
    }
    assert_eq!(e.stats().active, 0);
    // The server sees its connection closed.
    while srv.requests.lock().unwrap().len() < 2 {
        assert!(Instant::now() < limit, "connection never closed");
        std::thread::yield_now();
    }
}

/// Requests held back by their host's pace (`rate_per_host`: parked, holding no
/// slot) are cancelled too, each with its one `Cancelled`, and the engine's count of
/// requests in flight stays exact (it went below zero before: a panic in debug).
#[test]
fn cancel_a_request_parked_by_its_host_pace() {
    let srv = holding();
    let reqs: Vec<Request> = [10, 20, 30]
        .into_iter()
        .map(|tag| Request {
            tag,
            url: srv.url(&format!("/{tag}")),
            spec: Arc::default(),
        })
        .collect();
    let cfg = Config {
        rate_per_host: 0.01, // one start per 100 s: the second and third wait
        ..cfg()
    };
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), Collect::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    while srv.requests.lock().unwrap().is_empty() || e.stats().parked != 2 {
        assert!(Instant::now() < limit, "never reached the state");
        e.step(Some(Duration::from_millis(50))).unwrap();
    }
    assert_eq!(e.stats().active, 1);
    assert!(e.cancel(20), "parked");
    assert!(e.cancel(30), "parked");
    assert_eq!(e.stats().active, 1, "the one in flight");
    assert!(e.cancel(10), "in flight");
    assert!(e.is_finished());
    assert_eq!(e.stats().active, 0);
    let outs = &e.handler().outcomes;
    assert_eq!(outs.len(), 3);
    for o in outs {
        assert_eq!(o.error.as_ref().map(|e| e.kind), Some(ErrorKind::Cancelled));
    }
    // Nothing was sent for the two that waited.
    let seen = srv.requests.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|r| !r.contains("/20") && !r.contains("/30")),
        "{seen:?}"
    );
}

/// A stop with requests parked by their host's pace: every request pulled gets its
/// one `Cancelled`, and the count of requests in flight ends at zero.
#[test]
fn stop_with_requests_parked_by_their_host_pace() {
    let srv = holding();
    let reqs: Vec<Request> = [10, 20, 30]
        .into_iter()
        .map(|tag| Request {
            tag,
            url: srv.url(&format!("/{tag}")),
            spec: Arc::default(),
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cfg = Config {
        rate_per_host: 0.01,
        stop: Some(stop.clone()),
        ..cfg()
    };
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), Collect::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    while srv.requests.lock().unwrap().is_empty() || e.stats().parked != 2 {
        assert!(Instant::now() < limit, "never reached the state");
        e.step(Some(Duration::from_millis(50))).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    e.step(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(e.stats().active, 0);
    let outs = &e.handler().outcomes;
    assert_eq!(outs.len(), 3);
    for o in outs {
        assert_eq!(o.error.as_ref().map(|e| e.kind), Some(ErrorKind::Cancelled));
    }
}

/// Reads a request head and its body (Content-Length or chunked) from `s`: (head,
/// body), or None at EOF.
fn read_full_request(s: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::{BufRead, BufReader, Read};
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(l) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        body = vec![0u8; l.trim().parse().ok()?];
        r.read_exact(&mut body).ok()?;
    }
    assert!(
        r.buffer().is_empty(),
        "the client sent bytes past the request"
    );
    Some((head, body))
}

/// Answers each request with `framing body-length fnv-hash`; `/moved` answers a 307
/// to `/here` first.
fn body_echo() -> Server {
    server(|_, mut s, reqs| {
        while let Some((head, body)) = read_full_request(&mut s) {
            reqs.lock().unwrap().push(head.clone());
            let resp = if head.starts_with("PUT /moved") || head.starts_with("POST /moved") {
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /here\r\nContent-Length: 0\r\n\r\n"
                    .to_vec()
            } else {
                let framing = if head.to_ascii_lowercase().contains("chunked") {
                    "chunked"
                } else {
                    "length"
                };
                let hash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
                });
                ok_response(&format!("{framing} {} {hash:x}", body.len()))
            };
            if s.write_all(&resp).is_err() {
                return;
            }
        }
    })
}

fn fnv(data: &[u8]) -> String {
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{h:x}")
}

#[test]
fn streamed_request_bodies_chunked_and_declared() {
    use volley::body::{Bytes, Reader, Stream};
    let srv = body_echo();
    let data: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect());
    let made = Arc::new(AtomicU64::new(0));
    let (d1, d2, m) = (data.clone(), data.clone(), made.clone());
    let chunked = RequestSpec {
        method: "POST".into(),
        stream: Some(Stream::new(move |_| {
            m.fetch_add(1, Ordering::SeqCst);
            Box::new(Reader::new(std::io::Cursor::new(d1.to_vec()), None))
        })),
        ..RequestSpec::default()
    };
    let declared = RequestSpec {
        method: "PUT".into(),
        stream: Some(Stream::new(move |_| Box::new(Bytes::new(d2.to_vec())))),
        ..RequestSpec::default()
    };
    let cfg = Config {
        follow: true,
        ..cfg()
    };
    let r = run_specs(
        cfg,
        vec![
            (srv.url("/c"), chunked.clone()),
            (srv.url("/d"), declared),
            (srv.url("/moved"), chunked),
        ],
    );
    let want = |f: &str| format!("{f} {} {}", data.len(), fnv(&data));
    assert_eq!(body_of(&r, 1), want("chunked"));
    assert_eq!(body_of(&r, 2), want("length"));
    // A 307 sends the body again, from a fresh source.
    assert_eq!(body_of(&r, 3), want("chunked"));
    assert_eq!(r.outcomes[2].redirects.len(), 1);
    assert_eq!(made.load(Ordering::SeqCst), 3);
    let heads = srv.requests.lock().unwrap();
    for h in heads.iter() {
        let l = h.to_ascii_lowercase();
        assert!(
            l.contains("content-length") != l.contains("transfer-encoding"),
            "exactly one framing header: {h}"
        );
    }
}

#[test]
fn a_failing_body_source_fails_the_request() {
    use volley::body::{Reader, Stream};
    let srv = body_echo();
    // Declares 1 MB, has 10 bytes: the framer refuses to send a short body.
    let spec = RequestSpec {
        method: "POST".into(),
        stream: Some(Stream::new(|_| {
            Box::new(Reader::new(&b"0123456789"[..], Some(1 << 20)))
        })),
        ..RequestSpec::default()
    };
    let r = run_specs(
        Config {
            retries: 0,
            ..cfg()
        },
        vec![(srv.url("/x"), spec)],
    );
    let e = r.outcomes[0].error.as_ref().expect("an error");
    assert!(e.to_string().contains("request body source failed"), "{e}");
}

/// Pauses at every body chunk it gets, keeping the bytes.
#[derive(Default)]
struct PauseEach {
    body: Vec<u8>,
    chunks: usize,
    paused: Option<u64>,
    outcomes: Vec<volley::engine::Outcome>,
}

impl volley::engine::Handler for PauseEach {
    fn on_body_action(&mut self, tag: u64, chunk: &[u8]) -> volley::engine::BodyAction {
        assert!(self.paused.is_none(), "a chunk while paused");
        self.body.extend_from_slice(chunk);
        self.chunks += 1;
        self.paused = Some(tag);
        volley::engine::BodyAction::Pause
    }
    fn on_done(&mut self, o: volley::engine::Outcome) {
        self.outcomes.push(o);
    }
}

#[test]
fn pause_stops_reading_and_resume_hands_on_everything() {
    const LEN: usize = 8 << 20;
    let body: Arc<Vec<u8>> = Arc::new((0..LEN).map(|i| (i % 253) as u8).collect());
    let written = Arc::new(AtomicU64::new(0));
    let (b2, w2) = (body.clone(), written.clone());
    let srv = server(move |_, mut s, _| {
        if read_request(&mut s).is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            for piece in b2.chunks(64 << 10) {
                if s.write_all(piece).is_err() {
                    return;
                }
                w2.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        }
    });
    let read_timeout = Duration::from_millis(100);
    let cfg = Config {
        read_timeout,
        max_body: 64 << 20,
        ..cfg()
    };
    let reqs = vec![Request {
        tag: 7,
        url: srv.url("/big"),
        spec: Arc::default(),
    }];
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), PauseEach::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    while e.handler().paused.is_none() {
        assert!(Instant::now() < limit, "no first chunk");
        e.step(Some(Duration::from_millis(20))).unwrap();
    }
    assert!(!e.resume(8), "not a paused tag");
    // Held paused for three read timeouts: no chunk, no deadline, no outcome, and
    // the server cannot finish (the kernel's window is full).
    let held_from = Instant::now();
    while held_from.elapsed() < read_timeout * 3 {
        e.step(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(e.handler().chunks, 1);
    assert!(
        e.handler().outcomes.is_empty(),
        "{:?}",
        e.handler().outcomes
    );
    assert!(
        (written.load(Ordering::SeqCst) as usize) < LEN,
        "the server sent it all"
    );
    // Resume at every pause until the body is done.
    let mut resumes = 0;
    while e.handler().outcomes.is_empty() {
        assert!(Instant::now() < limit, "never finished");
        if let Some(tag) = e.handler_mut().paused.take() {
            assert!(e.resume(tag));
            resumes += 1;
        } else {
            e.step(Some(Duration::from_millis(20))).unwrap();
        }
    }
    let h = e.handler();
    assert_eq!(h.outcomes.len(), 1);
    let o = &h.outcomes[0];
    assert_eq!(
        (o.status, o.error.as_ref(), o.bytes),
        (Some(200), None, LEN as u64)
    );
    assert!(h.body == *body, "the body arrived whole and in order");
    // Every pause but perhaps the last (if the end came with it) was resumed.
    assert!(
        resumes + 1 == h.chunks || resumes == h.chunks,
        "{resumes} {}",
        h.chunks
    );
    assert!(h.chunks > 2);
    assert!(e.is_finished() || !e.step(Some(Duration::ZERO)).unwrap());
}

/// Reads a head; per path: `/go` answers `100 Continue`, then reads the body and
/// echoes its length; `/slow` sends no 100 and reads the body; `/no` answers 401 at
/// once and then counts the body bytes that still arrive before EOF (recorded as
/// `late N`).
fn continue_server() -> Server {
    server(|_, s, reqs| {
        use std::io::{BufRead, BufReader, Read};
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
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
        reqs.lock().unwrap().push(head.clone());
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        if head.starts_with("POST /no") {
            let _ = w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
            reqs.lock().unwrap().push(format!("late {}", rest.len()));
            return;
        }
        if head.starts_with("POST /go") {
            let _ = w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_ok() {
            let _ = w.write_all(&ok_response(&format!("got {}", body.len())));
        }
    })
}

#[test]
fn expect_100_continue() {
    let srv = continue_server();
    let spec = RequestSpec {
        method: "POST".into(),
        body: vec![b'q'; 100_000],
        expect_continue: true,
        ..RequestSpec::default()
    };
    let r = run_specs(
        Config {
            retries: 0,
            ..cfg()
        },
        vec![
            (srv.url("/go"), spec.clone()),
            (srv.url("/slow"), spec.clone()),
            (srv.url("/no"), spec),
        ],
    );
    assert_eq!(body_of(&r, 1), "got 100000");
    // No 100 at all: the body goes after the wait anyway.
    assert_eq!(body_of(&r, 2), "got 100000");
    // A final answer instead of 100: the body is never sent, the connection closed.
    assert_eq!(r.outcomes[2].status, Some(401));
    let reqs = srv.requests.lock().unwrap().clone();
    for h in reqs.iter().filter(|h| h.starts_with("POST")) {
        assert!(h.contains("Expect: 100-continue\r\n"), "{h}");
        assert!(h.contains("Content-Length: 100000\r\n"), "{h}");
    }
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = srv
            .requests
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with("late"))
        {
            assert_eq!(l, "late 0");
            break;
        }
        assert!(Instant::now() < limit, "the connection was never closed");
        std::thread::yield_now();
    }
}

#[test]
fn pause_and_resume_on_a_pipelined_connection() {
    let srv = http(|p| ok_response(&p.repeat(20_000)));
    let cfg = Config {
        pipeline: 4,
        per_host: 1,
        concurrency: 4,
        ..cfg()
    };
    let reqs: Vec<Request> = ["/a", "/b", "/c"]
        .iter()
        .enumerate()
        .map(|(i, p)| Request {
            tag: i as u64 + 1,
            url: srv.url(p),
            spec: Arc::default(),
        })
        .collect();
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), PauseEach::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    while e.handler().outcomes.len() < 3 {
        assert!(Instant::now() < limit, "never finished");
        if let Some(tag) = e.handler_mut().paused.take() {
            assert!(e.resume(tag));
        } else {
            e.step(Some(Duration::from_millis(20))).unwrap();
        }
    }
    let h = e.handler();
    let want = format!(
        "{}{}{}",
        "/a".repeat(20_000),
        "/b".repeat(20_000),
        "/c".repeat(20_000)
    );
    assert!(h.body == want.as_bytes(), "bodies whole and in order");
    assert!(h
        .outcomes
        .iter()
        .all(|o| o.status == Some(200) && o.error.is_none()));
    assert_eq!(
        srv.conns.load(Ordering::SeqCst),
        1,
        "one pipelined connection"
    );
}

#[test]
fn cancel_a_request_pipelined_behind_another() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let srv = server(move |_, mut s, reqs| {
        use std::io::Read;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered_a = false;
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            if !answered_a && text.contains("GET /a ") {
                answered_a = true;
                let _ = s.write_all(&ok_response("a"));
            }
            if text.contains("GET /hold ") && text.contains("GET /c ") {
                reqs.lock().unwrap().push("both".into());
                let _ = rx.lock().unwrap().recv();
                let _ = s.write_all(&ok_response("held"));
                let _ = s.write_all(&ok_response("c"));
                // Then wait for the client to close.
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                return;
            }
        }
    });
    let cfg = Config {
        pipeline: 4,
        per_host: 1,
        concurrency: 3,
        retries: 0,
        ..cfg()
    };
    let reqs: Vec<Request> = ["/a", "/hold", "/c"]
        .iter()
        .enumerate()
        .map(|(i, p)| Request {
            tag: i as u64 + 1,
            url: srv.url(p),
            spec: Arc::default(),
        })
        .collect();
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), Collect::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    while srv.requests.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < limit,
            "/c was never pipelined behind /hold"
        );
        e.step(Some(Duration::from_millis(20))).unwrap();
    }
    assert!(e.cancel(3));
    assert_eq!(
        e.handler()
            .outcomes
            .last()
            .and_then(|o| o.error.as_ref())
            .map(|e| e.kind),
        Some(ErrorKind::Cancelled)
    );
    tx.send(()).unwrap();
    while e.step(Some(Duration::from_millis(20))).unwrap() {
        assert!(Instant::now() < limit, "never finished");
    }
    let mut outs = e.into_parts().1.outcomes;
    outs.sort_by_key(|o| o.tag);
    assert_eq!(outs.len(), 3, "one on_done each");
    assert_eq!((outs[0].status, outs[1].status), (Some(200), Some(200)));
    assert_eq!(outs[1].bytes, 4, "the held response is /hold's, not /c's");
    assert_eq!(
        outs[2].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Cancelled)
    );
}

#[test]
fn a_paused_body_still_meets_its_total_deadline() {
    let srv = http(|_| ok_response(&"p".repeat(4 << 20)));
    let cfg = Config {
        total_timeout: Some(Duration::from_millis(300)),
        read_timeout: Duration::from_millis(100),
        max_body: 64 << 20,
        retries: 0,
        ..cfg()
    };
    let reqs = vec![Request {
        tag: 1,
        url: srv.url("/"),
        spec: Arc::default(),
    }];
    let mut e = Engine::new(cfg, reqs.into_iter().fuse(), PauseEach::default()).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    // Never resumed: the total deadline ends it, without reading on (the handler
    // panics on a chunk while paused) and with no read timeout first.
    while e.step(Some(Duration::from_millis(20))).unwrap() {
        assert!(Instant::now() < limit, "never ended");
    }
    let h = e.handler();
    assert_eq!(h.chunks, 1);
    assert_eq!(h.outcomes.len(), 1);
    let err = h.outcomes[0].error.as_ref().expect("an error");
    assert_eq!(err.kind, ErrorKind::TotalTimeout, "{err}");
}
