//! Politeness that adapts (issue 11), against servers on loopback that push back:
//! 429 with and without `Retry-After` (seconds, an HTTP-date, one over the cap), a
//! throttling host beside a healthy one, a host that takes only K at once.
//!
//! The servers log when each request arrived and when its answer left; the
//! assertions are on counts and on the order of those instants (no request inside a
//! pause), never on how long anything took.

mod common;
use common::{cfg, run, run_with};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use volley::engine::{Config, RequestSpec};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// The request's path.
    path: String,
    /// When its head had arrived.
    arrived: Instant,
    /// The same, by the wall clock.
    arrived_wall: SystemTime,
    /// Just before the answer was written.
    answered: Instant,
    /// The status answered.
    status: u16,
}

/// A keep-alive server: `respond(nth request, requests in progress, path)` gives
/// the status, extra header lines (each ending in CRLF) and a delay before
/// answering.
struct Host {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
}

type Respond = dyn Fn(usize, usize, &str) -> (u16, String, Duration) + Send + Sync;

fn host(
    respond: impl Fn(usize, usize, &str) -> (u16, String, Duration) + Send + Sync + 'static,
) -> Host {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let respond: Arc<Respond> = Arc::new(respond);
    let count = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let log2 = log.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (respond, count, busy, log) =
                (respond.clone(), count.clone(), busy.clone(), log2.clone());
            thread::spawn(move || serve(s, &*respond, &count, &busy, &log));
        }
    });
    Host { addr, log }
}

fn serve(
    mut s: TcpStream,
    respond: &Respond,
    count: &AtomicUsize,
    busy: &AtomicUsize,
    log: &Mutex<Vec<Seen>>,
) {
    while let Some(path) = read_head(&mut s) {
        let (arrived, arrived_wall) = (Instant::now(), SystemTime::now());
        let nth = count.fetch_add(1, Ordering::SeqCst);
        let now_busy = busy.fetch_add(1, Ordering::SeqCst) + 1;
        let (status, extra, delay) = respond(nth, now_busy, &path);
        thread::sleep(delay);
        busy.fetch_sub(1, Ordering::SeqCst);
        let body = format!("{status} {path}");
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        // Logged before the answer leaves, so a client that has its answer finds
        // it in the log.
        log.lock().unwrap().push(Seen {
            path,
            arrived,
            arrived_wall,
            answered: Instant::now(),
            status,
        });
        if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads a request head; its path, or `None` at EOF.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf);
    Some(head.split(' ').nth(1).unwrap_or("/").to_string())
}

impl Host {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The log once it holds `n` requests (answers delayed on purpose are logged
    /// late); at most 20 s.
    fn seen_n(&self, n: usize) -> Vec<Seen> {
        let until = Instant::now() + Duration::from_secs(20);
        while self.log.lock().unwrap().len() < n && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        self.seen()
    }

    fn seen(&self) -> Vec<Seen> {
        let mut v = self.log.lock().unwrap().clone();
        v.sort_by_key(|s| s.arrived);
        v
    }
}

fn retries(n: u32) -> Config {
    Config {
        retries: n,
        ..cfg()
    }
}

/// Every answer `pushed` (a 429 or 503) was followed by no request for `pause`:
/// nothing arrived between the moment it left and `pause` after.
fn assert_paused(seen: &[Seen], pause: Duration) {
    for p in seen.iter().filter(|s| s.status == 429 || s.status == 503) {
        let during: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.arrived > p.answered && s.arrived < p.answered + pause)
            .collect();
        assert!(
            during.is_empty(),
            "requests during the pause after {p:?}: {during:?}"
        );
    }
}

#[test]
fn retry_after_one_second_pauses_the_host_then_every_target_ends_200() {
    // The first two requests are answered 429 with Retry-After: 1.
    let h = host(|nth, _, _| match nth {
        0 | 1 => (429, "Retry-After: 1\r\n".into(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let urls: Vec<String> = (0..6).map(|i| h.url(&format!("/{i}"))).collect();
    let c = Config {
        concurrency: 1,
        ..retries(3)
    };
    let shared = c.shared.clone();
    let r = run(c, &urls);
    for o in &r.outcomes {
        assert_eq!((o.status, o.error.as_ref()), (Some(200), None), "{o:?}");
    }
    let extra: u32 = r.outcomes.iter().map(|o| o.attempts - 1).sum();
    assert_eq!(extra, 2, "each 429 cost one attempt");
    let seen = h.seen();
    assert_eq!(seen.len(), 8);
    assert_eq!(seen.iter().filter(|s| s.status == 429).count(), 2);
    assert_paused(&seen, Duration::from_secs(1));
    // The handler saw only final responses: no 429 head.
    assert!(r.heads.iter().all(|(_, status, _)| *status == 200));
    let report = shared.pushed_back(10);
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].origin, format!("http://{}", h.addr));
    assert_eq!(report[0].pushbacks, 2);
    assert_eq!(report[0].longest_pause, Duration::from_secs(1));
    assert_eq!((report[0].limit, report[0].settled), (1, 1));
}

#[test]
fn a_429_without_retry_after_waits_the_backoff() {
    let h = host(|nth, _, _| match nth {
        0..=2 => (429, String::new(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let urls: Vec<String> = (0..5).map(|i| h.url(&format!("/{i}"))).collect();
    let c = Config {
        concurrency: 1,
        retry_backoff: Duration::from_millis(50),
        ..retries(4)
    };
    let shared = c.shared.clone();
    let r = run(c, &urls);
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    let seen = h.seen();
    assert_eq!(seen.len(), 8);
    // Pauses of the backoff: 50 ms, then 100 and 200 as the strikes add up.
    let pushed: Vec<&Seen> = seen.iter().filter(|s| s.status == 429).collect();
    for (i, p) in pushed.iter().enumerate() {
        let pause = Duration::from_millis(50 << i);
        assert!(
            seen.iter()
                .all(|s| s.arrived <= p.answered || s.arrived >= p.answered + pause),
            "a request within {pause:?} of the 429 #{i}"
        );
    }
    assert_eq!(shared.pushed_back(10)[0].pushbacks, 3);
}

/// `t` as an IMF-fixdate.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let days = (secs / 86_400) as i64;
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m as usize - 1];
    let (hh, mm, ss) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{wd}, {d:02} {mon} {y} {hh:02}:{mm:02}:{ss:02} GMT")
}

#[test]
fn retry_after_as_a_date_is_waited_for() {
    let until = Arc::new(Mutex::new(None::<SystemTime>));
    let u2 = until.clone();
    let h = host(move |nth, _, _| match nth {
        0 => {
            // Two seconds ahead, in whole seconds: a wait of one to two seconds.
            let at = SystemTime::now() + Duration::from_secs(2);
            let whole =
                UNIX_EPOCH + Duration::from_secs(at.duration_since(UNIX_EPOCH).unwrap().as_secs());
            *u2.lock().unwrap() = Some(whole);
            (
                429,
                format!("Retry-After: {}\r\n", http_date(whole)),
                Duration::ZERO,
            )
        }
        _ => (200, String::new(), Duration::ZERO),
    });
    let r = run(
        Config {
            concurrency: 1,
            ..retries(2)
        },
        &[h.url("/a"), h.url("/b")],
    );
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    assert_eq!(r.outcomes.iter().map(|o| o.attempts).sum::<u32>(), 3);
    let until = until.lock().unwrap().unwrap();
    let seen = h.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen[1..] {
        assert!(s.arrived_wall >= until, "{s:?} before {until:?}");
    }
}

#[test]
fn retry_after_over_the_cap_is_the_result_and_the_pause_is_capped() {
    let h = host(|nth, _, _| match nth {
        0 => (429, "Retry-After: 120\r\n".into(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let c = Config {
        concurrency: 1,
        max_retry_after: Duration::from_secs(1),
        ..retries(3)
    };
    let r = run(c, &[h.url("/a"), h.url("/b")]);
    let a = &r.outcomes[0];
    assert_eq!(
        (a.status, a.attempts, a.error.as_ref()),
        (Some(429), 1, None),
        "{a:?}"
    );
    assert_eq!(r.bodies[&1], b"429 /a");
    assert_eq!(r.outcomes[1].status, Some(200));
    let seen = h.seen();
    assert_eq!(seen.len(), 2);
    // The host paused for the cap, not for 120 s.
    assert_paused(&seen, Duration::from_secs(1));
}

#[test]
fn a_503_is_retried_for_get_but_not_for_post() {
    let h = host(|_, _, path| match path {
        "/get-first" | "/post" => (503, "Retry-After: 0\r\n".into(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let r = run(retries(1), &[h.url("/get-first")]);
    assert_eq!(
        (r.outcomes[0].status, r.outcomes[0].attempts),
        (Some(503), 2)
    );
    let post = RequestSpec {
        method: "POST".into(),
        body: b"x".to_vec(),
        ..RequestSpec::default()
    };
    let r = run_with(retries(3), post, &[h.url("/post")]);
    assert_eq!(
        (r.outcomes[0].status, r.outcomes[0].attempts),
        (Some(503), 1)
    );
    assert_eq!(h.seen().len(), 3);
}

#[test]
fn a_throttling_host_does_not_hold_back_a_healthy_one() {
    let slow = host(|nth, _, _| match nth {
        0 => (429, "Retry-After: 1\r\n".into(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let healthy = host(|_, _, _| (200, String::new(), Duration::ZERO));
    let mut urls = Vec::new();
    for i in 0..20 {
        urls.push(slow.url(&format!("/{i}")));
        urls.push(healthy.url(&format!("/{i}")));
    }
    // One connection per host: the throttler sees one request at a time, so the
    // pause can be checked to the request; the others wait for its connection
    // slot, already admitted, and must still not go during the pause.
    let c = Config {
        concurrency: 4,
        per_host: 1,
        ..retries(2)
    };
    let shared = c.shared.clone();
    let r = run(c, &urls);
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    let (s, h) = (slow.seen(), healthy.seen());
    assert_eq!((s.len(), h.len()), (21, 20));
    let pushed = s.iter().find(|x| x.status == 429).unwrap();
    // Every healthy request arrived before the throttler's pause was over: none
    // waited behind it.
    let pause_end = pushed.answered + Duration::from_secs(1);
    assert!(
        h.iter().all(|x| x.arrived < pause_end),
        "healthy requests held back"
    );
    assert_paused(&s, Duration::from_secs(1));
    let report = shared.pushed_back(10);
    assert_eq!(
        report.len(),
        1,
        "only the throttler pushed back: {report:?}"
    );
    assert_eq!(report[0].origin, format!("http://{}", slow.addr));
}

#[test]
fn a_host_that_takes_k_at_once_settles_at_k_or_fewer() {
    const K: usize = 2;
    // More than K requests in progress: 429 at once; else 30 ms of work, then 200.
    let h = host(|_, busy, _| {
        if busy > K {
            (429, String::new(), Duration::ZERO)
        } else {
            (200, String::new(), Duration::from_millis(30))
        }
    });
    let urls: Vec<String> = (0..60).map(|i| h.url(&format!("/{i}"))).collect();
    let c = Config {
        concurrency: 16,
        retry_backoff: Duration::from_millis(10),
        ..retries(30)
    };
    let shared = c.shared.clone();
    let r = run(c, &urls);
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    let seen = h.seen();
    // No result lost, none doubled: each path answered 200 exactly once.
    let mut ok: Vec<&str> = seen
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.path.as_str())
        .collect();
    ok.sort_unstable();
    let mut want: Vec<String> = (0..60).map(|i| format!("/{i}")).collect();
    want.sort_unstable();
    assert_eq!(ok, want);
    let report = shared.pushed_back(10);
    assert_eq!(report.len(), 1);
    // The level learned is what the host took: it refuses only above K, so the
    // requests held at a refusal, minus one, are K or more (K in every run seen;
    // more when the host happened to take K + 1 for a while). The limit never
    // exceeds it until a probe, PROBE_WINDOW successes later.
    assert!(report[0].settled >= K, "settled at {}", report[0].settled);
    assert!(report[0].limit <= report[0].settled, "{:?}", report[0]);
    let pushed = seen.iter().filter(|s| s.status == 429).count() as u64;
    assert_eq!(report[0].pushbacks, pushed);
    // Settled: the last requests were all taken (no 429 among them). A run looks
    // like `..xxxxxxxxxxxxxxxxxxxx................x..............x..........` + 20
    // more dots: a burst at -c 16, two more cuts, then quiet (the next probe comes
    // after PROBE_WINDOW successes, past the end of the run).
    let order: String = seen
        .iter()
        .map(|s| if s.status == 429 { 'x' } else { '.' })
        .collect();
    assert!(order.ends_with(&".".repeat(15)), "not settled: {order}");
}

#[test]
fn no_adapt_retries_but_does_not_pause() {
    let h = host(|nth, _, _| match nth {
        0 => (429, "Retry-After: 0\r\n".into(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let c = Config {
        adapt: false,
        ..retries(1)
    };
    let shared = c.shared.clone();
    let r = run(c, &[h.url("/a"), h.url("/b")]);
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)));
    assert_eq!(r.outcomes.iter().map(|o| o.attempts).sum::<u32>(), 3);
    assert!(
        shared.pushed_back(10).is_empty(),
        "no table without adaptation"
    );
}

#[test]
fn rate_per_host_paces_each_host_apart() {
    let a = host(|_, _, _| (200, String::new(), Duration::ZERO));
    let b = host(|_, _, _| (200, String::new(), Duration::ZERO));
    // All of a's targets first, then b's: one pace per host lets b's start beside
    // a's; one pace for all would hold b's behind a's.
    let mut urls: Vec<String> = (0..5).map(|i| a.url(&format!("/{i}"))).collect();
    urls.extend((0..5).map(|i| b.url(&format!("/{i}"))));
    let r = run(
        Config {
            rate_per_host: 10.0,
            ..cfg()
        },
        &urls,
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)));
    let (sa, sb) = (a.seen(), b.seen());
    assert_eq!((sa.len(), sb.len()), (5, 5));
    // a's second start was paced an interval (100 ms) after its first; b's first
    // went at once, b's second beside a's second, before a's third.
    assert!(sb[0].arrived < sa[1].arrived, "b held behind a's pace");
    assert!(sb[1].arrived < sa[2].arrived, "b held behind a's pace");
    assert!(sa[1].arrived > sb[0].arrived && sa[0].arrived < sa[1].arrived);
}

/// The binary: `--max-retry-after`, `--no-adapt`, and the summary's lines for the
/// hosts that pushed back.
#[test]
fn the_binary_reports_hosts_that_pushed_back() {
    // A fresh host per run: its first two answers are 429s.
    let volley = |extra: &[&str]| {
        let h = host(|nth, _, _| match nth {
            0 | 1 => (429, "Retry-After: 0\r\n".into(), Duration::ZERO),
            _ => (200, String::new(), Duration::ZERO),
        });
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["-c", "1", "--retries", "3", "--max-retry-after", "5"])
            .args(extra)
            .args([h.url("/a"), h.url("/b")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (stdout, stderr, h.addr)
    };
    let (stdout, stderr, addr) = volley(&[]);
    assert_eq!(stdout.matches("\"status\":200").count(), 2, "{stdout}");
    assert!(stderr.contains("hosts that pushed back"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("http://{addr}")))
        .unwrap_or_else(|| panic!("no line for the host: {stderr}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[cols.len() - 3], "2", "two 429s: {line}");
    let (stdout, stderr, _) = volley(&["--no-adapt"]);
    assert_eq!(stdout.matches("\"status\":200").count(), 2, "{stdout}");
    assert!(!stderr.contains("hosts that pushed back"), "{stderr}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["--rate-per-host", "-1", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}

/// Five timeouts in a row from one host pause it too (with no 429 counted).
#[test]
fn a_run_of_timeouts_pauses_the_host() {
    // The first five requests are never answered (each ends in read_timeout);
    // then the host answers. One connection per request, so a silent one does not
    // hold up the next.
    let h = host(|nth, _, _| match nth {
        0..=4 => (200, String::new(), Duration::from_secs(3)),
        _ => (200, String::new(), Duration::ZERO),
    });
    let urls: Vec<String> = (0..8).map(|i| h.url(&format!("/{i}"))).collect();
    let c = Config {
        concurrency: 1,
        read_timeout: Duration::from_millis(200),
        retry_backoff: Duration::from_millis(300),
        ..retries(0)
    };
    let shared = c.shared.clone();
    let r = run(c, &urls);
    let timeouts = r
        .outcomes
        .iter()
        .filter(|o| o.error.as_ref().map(|e| e.kind) == Some(volley::ErrorKind::ReadTimeout))
        .count();
    assert_eq!(timeouts, 5, "{:?}", r.outcomes);
    assert!(r.outcomes[5..].iter().all(|o| o.status == Some(200)));
    let report = shared.pushed_back(10);
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].pushbacks, 0, "timeouts are not 429/503s");
    assert_eq!(report[0].longest_pause, Duration::from_millis(300));
    // The sixth request came after the pause the fifth timeout began (the
    // timeout itself, 200 ms after the fifth was sent, is the margin).
    let seen = h.seen_n(8);
    assert_eq!(seen.len(), 8);
    assert!(seen[5].arrived >= seen[4].arrived + Duration::from_millis(300));
}

/// Requests waiting for a connection slot of their host (`--per-host 2`) while a
/// run of timeouts pauses it (a name that is never answered: each dial ends in
/// `connect_timeout`, retried once): a slot freed to a waiter that the pause then
/// holds back goes on to the next waiter, and every request ends. CI's proptest
/// found this hanging: the waiter that kept the host's one place (the limit cut to
/// 1) waited for a slot that was free, and the others for that place.
#[test]
fn a_slot_freed_to_a_waiter_the_pause_holds_back_goes_to_the_next() {
    let dns = common::loopback_dns(|_| None);
    let urls: Vec<String> = (0..5)
        .map(|i| format!("http://never.polite.test:9/p{i}"))
        .collect();
    let c = Config {
        dns_servers: vec![dns],
        connect_timeout: Duration::from_millis(500),
        per_host: 2,
        concurrency: 5,
        adapt: true,
        ..retries(1)
    };
    let mut e = volley::engine::Engine::new(c, common::requests(&urls), common::Collect::default())
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while e.step(Some(Duration::from_millis(100))).unwrap() {
        let done = e.handler().outcomes.len();
        assert!(Instant::now() < until, "hung: {done} of 5 requests ended");
    }
    let (_, r) = e.into_parts();
    assert_eq!(r.outcomes.len(), 5);
    for o in &r.outcomes {
        let kind = o.error.as_ref().map(|e| e.kind);
        assert!(
            matches!(
                kind,
                Some(volley::ErrorKind::ConnectTimeout | volley::ErrorKind::Dns)
            ),
            "{o:?}"
        );
    }
}
