//! Issue 10 through the engine: the stub resolver configured from a resolv.conf and a
//! hosts file (a fake DNS server on loopback; no query leaves it), Happy Eyeballs
//! past a blackholed first address and across families, the global idle cap, and the
//! bounded parking area.

mod common;
use common::*;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine};
use volley::ErrorKind;

fn kind(o: &volley::engine::Outcome) -> Option<ErrorKind> {
    o.error.as_ref().map(|e| e.kind)
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("volley-breadth-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

/// A DNS server on loopback: A queries for names under `corp.test` get 127.0.0.1,
/// AAAA queries there get no data, anything else NXDOMAIN. Records every name asked.
fn fake_dns() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a2 = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && q[i] != 0 {
                let l = q[i] as usize;
                labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + l]).into_owned());
                i += 1 + l;
            }
            let name = labels.join(".");
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            a2.lock().unwrap().push(name.clone());
            let mut r = q[..i + 5].to_vec();
            r[2] = 0x81;
            let ours = name.ends_with(".corp.test");
            r[3] = if ours { 0x80 } else { 0x83 };
            if ours && qtype == 1 {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (addr, asked)
}

#[test]
fn resolv_conf_search_list_with_dns_server_replacing_its_nameservers() {
    let (dns, asked) = fake_dns();
    let s = http(|_| ok_response("hi"));
    // The nameserver listed is never asked: --dns-server replaces it.
    let rc = temp_file(
        "resolv",
        "nameserver 127.0.0.9\nsearch corp.test\noptions ndots:1 timeout:1 attempts:1\n",
    );
    let c = Config {
        resolv_conf: Some(rc.clone()),
        dns_servers: vec![dns],
        ..cfg()
    };
    let port = s.addr.port();
    let r = run(
        c,
        &[
            format!("http://www:{port}/"),
            format!("http://nowhere.test:{port}/"),
        ],
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)), "{r:?}");
    assert!(r.outcomes[0].timings.dns.is_some());
    let asked = asked.lock().unwrap().clone();
    assert!(asked.iter().any(|n| n == "www.corp.test"), "{asked:?}");
    assert!(
        !asked.iter().any(|n| n == "www"),
        "found by the search list"
    );
    // ndots 1: a name with a dot is tried as given first (NXDOMAIN here), then with
    // the search list.
    let pos = |name: &str| asked.iter().position(|n| n == name);
    assert!(
        pos("nowhere.test") < pos("nowhere.test.corp.test"),
        "{asked:?}"
    );
    assert!(pos("nowhere.test").is_some(), "{asked:?}");
    let _ = std::fs::remove_file(rc);
}

#[test]
fn hosts_file_answers_before_any_query() {
    let (dns, asked) = fake_dns();
    let s = http(|_| ok_response("hi"));
    let hosts = temp_file("hosts", "127.0.0.1 Listed.test alias.test\n");
    let c = Config {
        hosts_file: Some(hosts.clone()),
        dns_servers: vec![dns],
        ..cfg()
    };
    let port = s.addr.port();
    let r = run(
        c,
        &[
            format!("http://listed.test:{port}/"),
            format!("http://alias.test:{port}/"),
        ],
    );
    assert!(r.outcomes.iter().all(|o| o.status == Some(200)), "{r:?}");
    assert!(asked.lock().unwrap().is_empty());
    let _ = std::fs::remove_file(hosts);
}

#[test]
fn no_nameserver_and_no_fallback_fails_the_name() {
    let rc = temp_file("resolv-empty", "# no nameserver\n");
    let c = Config {
        resolv_conf: Some(rc.clone()),
        ..cfg()
    };
    let r = run(c, &["http://name.test/".into()]);
    let o = &r.outcomes[0];
    assert_eq!(kind(o), Some(ErrorKind::Dns), "{o:?}");
    assert!(o.error.as_ref().unwrap().detail.contains("no nameserver"));
    assert_eq!(o.attempts, 1, "final: no retry");
    let _ = std::fs::remove_file(rc);
}

/// A listener on `addr` whose backlog is full: further connects hang (their SYNs
/// are dropped). Returns the listener and the connections filling it.
fn blackhole(addr: SocketAddr) -> (i32, Vec<TcpStream>) {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sa` is a valid sockaddr_in of `len` bytes; `fd` is our socket.
    let rc = unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) };
    assert_eq!(rc, 0, "bind {addr}: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a bound socket.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    // Fill the queue until a connect no longer completes (bounded).
    let mut held = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            // The queue holds at least one: a first connect that hangs is not a
            // full queue but a machine too slow to tell.
            Err(e) if held.is_empty() => panic!("the first connect to {addr}: {e}"),
            Err(_) => return (fd, held),
        }
    }
    panic!("the backlog of {addr} never filled");
}

#[test]
fn blackholed_first_address_connects_through_the_second() {
    let s = http(|_| ok_response("second"));
    let port = s.addr.port();
    let hole: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let (fd, _held) = blackhole(hole);
    let c = Config {
        resolve: vec![
            ("he.test".into(), port, "127.0.0.2".parse().unwrap()),
            ("he.test".into(), port, "127.0.0.1".parse().unwrap()),
        ],
        connect_timeout: Duration::from_secs(20),
        retries: 0,
        ..cfg()
    };
    let r = run(c, &[format!("http://he.test:{port}/")]);
    let o = &r.outcomes[0];
    assert_eq!(o.status, Some(200), "{o:?}");
    assert_eq!(o.attempts, 1);
    // Only the second address (127.0.0.1) answers: the response came from it.
    assert_eq!(s.requests.lock().unwrap().len(), 1);
    assert_eq!(r.bodies[&1], b"second");
    // SAFETY: closing our own listener.
    unsafe { libc::close(fd) };
}

#[test]
fn families_interleave_past_a_blackhole_to_ipv6() {
    // IPv4 first (the first address's family), then IPv6, then IPv4 again: with the
    // first IPv4 address blackholed, the IPv6 one (second in line) answers.
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hole: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let (fd, _held) = blackhole(hole);
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            seen2.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                use std::io::Write;
                while read_request(&mut s).is_some() {
                    let _ = s.write_all(&ok_response("six"));
                }
            });
        }
    });
    let c = Config {
        resolve: vec![
            ("mixed.test".into(), port, "127.0.0.2".parse().unwrap()),
            ("mixed.test".into(), port, "127.0.0.3".parse().unwrap()),
            ("mixed.test".into(), port, "::1".parse().unwrap()),
        ],
        connect_timeout: Duration::from_secs(20),
        retries: 0,
        ..cfg()
    };
    let r = run(c, &[format!("http://mixed.test:{port}/")]);
    assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    assert_eq!(r.bodies[&1], b"six");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // SAFETY: closing our own listener.
    unsafe { libc::close(fd) };
}

#[test]
fn ipv6_first_then_ipv4_after_a_refusal() {
    let s = http(|_| ok_response("four"));
    let port = s.addr.port();
    // Nothing listens on [::1]:port: refused at once, IPv4 next.
    let c = Config {
        resolve: vec![
            ("both.test".into(), port, "::1".parse().unwrap()),
            ("both.test".into(), port, "127.0.0.1".parse().unwrap()),
        ],
        retries: 0,
        ..cfg()
    };
    let r = run(c, &[format!("http://both.test:{port}/")]);
    assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    assert_eq!(r.bodies[&1], b"four");
}

#[test]
fn idle_connections_are_capped_over_all_hosts() {
    let s = http(|_| ok_response("x"));
    let port = s.addr.port();
    let names: Vec<String> = (0..6).map(|i| format!("h{i}.test")).collect();
    let c = Config {
        concurrency: 1,
        max_idle: 2,
        resolve: names
            .iter()
            .map(|n| (n.clone(), port, "127.0.0.1".parse().unwrap()))
            .collect(),
        ..cfg()
    };
    let urls: Vec<String> = names
        .iter()
        .map(|n| format!("http://{n}:{port}/"))
        .collect();
    let mut e = Engine::new(c, requests(&urls), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    while e.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(e.stats().idle <= 2, "{:?}", e.stats());
        most = most.max(e.stats().idle);
        assert!(Instant::now() < deadline);
    }
    assert_eq!(most, 2, "the cap is reached, not passed");
    // The input is exhausted: no request can use an idle connection any more.
    assert_eq!(e.stats().idle, 0, "idle connections closed at the end");
    let (_, c) = e.into_parts();
    assert!(c.outcomes.iter().all(|o| o.status == Some(200)));
    assert_eq!(s.conns.load(Ordering::SeqCst), 6, "one connection per host");
}

#[test]
fn a_full_park_holds_back_new_requests() {
    // Every connection closes before a response: `closed`, retried after a backoff.
    let s = server(|_, s, _| drop(s));
    let urls: Vec<String> = (0..20).map(|i| s.url(&format!("/{i}"))).collect();
    let (concurrency, parked) = (2, 1);
    let c = Config {
        concurrency,
        max_parked: parked,
        retries: 1,
        retry_backoff: Duration::from_millis(100),
        ..cfg()
    };
    let mut e = Engine::new(c, requests(&urls), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    while e.step(Some(Duration::from_millis(100))).unwrap() {
        let st = e.stats();
        most = most.max(st.parked);
        // Parking is never refused, but nothing new starts while the park is full:
        // at most the tasks in flight when it filled come on top.
        assert!(st.parked <= parked + concurrency, "{st:?}");
        assert!(Instant::now() < deadline);
    }
    assert!(most >= 1, "tasks did park");
    let (_, c) = e.into_parts();
    assert_eq!(c.outcomes.len(), 20);
    assert!(c
        .outcomes
        .iter()
        .all(|o| o.attempts == 2 && kind(o) == Some(ErrorKind::Closed)));
}

#[test]
fn the_binary_reads_its_resolv_conf_and_hosts_file_options() {
    let (dns, asked) = fake_dns();
    let s = http(|_| ok_response("hi"));
    let port = s.addr.port();
    let rc = temp_file("bin-resolv", "search corp.test\noptions ndots:1\n");
    let hosts = temp_file("bin-hosts", "127.0.0.1 listed.test\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["-q", "--resolv-conf"])
        .arg(&rc)
        .arg("--hosts-file")
        .arg(&hosts)
        .args(["--dns-server", &dns.to_string(), "--dns-rate", "1000"])
        .arg(format!("http://listed.test:{port}/"))
        .arg(format!("http://www:{port}/"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\"status\":200").count(), 2, "{text}");
    // listed.test came from the hosts file; www through the search list.
    assert_eq!(*asked.lock().unwrap(), ["www.corp.test", "www.corp.test"]);
    for bad in ["-1", "nan", "1e10"] {
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["-q", "--dns-rate", bad, "http://127.0.0.1:1/"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(2), "--dns-rate {bad}");
    }
    let missing = std::env::temp_dir().join("volley-breadth-no-such-file");
    for opt in ["--resolv-conf", "--hosts-file"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["-q", opt])
            .arg(&missing)
            .arg("http://127.0.0.1:1/")
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{opt}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(opt), "{opt}");
    }
    let _ = std::fs::remove_file(rc);
    let _ = std::fs::remove_file(hosts);
}
