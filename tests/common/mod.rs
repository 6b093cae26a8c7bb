//! Test helpers: an in-process engine run that collects outcomes, scripted
//! misbehaving servers on loopback, and a fake DNS server there.
#![allow(dead_code)]

pub mod drive;

pub type Headers = Vec<(String, String)>;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec, ResponseHead};

/// Collects everything the engine reports.
#[derive(Default, Debug)]
pub struct Collect {
    pub outcomes: Vec<Outcome>,
    pub heads: Vec<(u64, u16, Headers)>,
    pub bodies: std::collections::HashMap<u64, Vec<u8>>,
}

impl Handler for Collect {
    fn on_head(&mut self, tag: u64, head: &ResponseHead<'_>) {
        self.heads.push((tag, head.status, head.headers_owned()));
    }
    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        self.bodies.entry(tag).or_default().extend_from_slice(chunk);
    }
    fn on_done(&mut self, outcome: Outcome) {
        self.outcomes.push(outcome);
    }
}

/// `urls` as requests tagged 1, 2, … with one shared `spec`.
pub fn requests_with(
    spec: RequestSpec,
    urls: &[String],
) -> std::iter::Fuse<std::vec::IntoIter<Request>> {
    let spec = Arc::new(spec);
    let reqs: Vec<Request> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| Request {
            tag: i as u64 + 1,
            url: u.clone(),
            spec: spec.clone(),
        })
        .collect();
    reqs.into_iter().fuse()
}

/// `urls` as GET requests tagged 1, 2, ….
pub fn requests(urls: &[String]) -> std::iter::Fuse<std::vec::IntoIter<Request>> {
    requests_with(RequestSpec::default(), urls)
}

/// Runs `urls` through an engine with `cfg` and `spec`; outcomes sorted by tag.
pub fn run_with(cfg: Config, spec: RequestSpec, urls: &[String]) -> Collect {
    let mut engine = Engine::new(cfg, requests_with(spec, urls), Collect::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(
            Instant::now() < deadline,
            "engine did not finish within 60 s"
        );
    }
    let (_, mut c) = engine.into_parts();
    c.outcomes.sort_by_key(|o| o.tag);
    assert_eq!(c.outcomes.len(), urls.len(), "one outcome per request");
    c
}

pub fn run(cfg: Config, urls: &[String]) -> Collect {
    run_with(cfg, RequestSpec::default(), urls)
}

pub fn cfg() -> Config {
    Config {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        total_timeout: Some(Duration::from_secs(20)),
        retry_backoff: Duration::from_millis(10),
        // No query may leave loopback: no resolv.conf, no hosts file, no system
        // resolver. A test that resolves a name pins it or runs a fake DNS server.
        hosts_file: None,
        resolv_conf: None,
        system_resolver: false,
        ..Config::default()
    }
}

/// A scripted server: `script(conn_index, stream)` runs per accepted connection on
/// its own thread. Counts connections and tracks the most open at once.
pub struct Server {
    pub addr: SocketAddr,
    pub conns: Arc<AtomicUsize>,
    pub max_open: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub fn server<F>(script: F) -> Server
where
    F: Fn(usize, TcpStream, &Arc<Mutex<Vec<String>>>) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (c2, o2, m2, r2) = (
        conns.clone(),
        open.clone(),
        max_open.clone(),
        requests.clone(),
    );
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let i = c2.fetch_add(1, Ordering::SeqCst);
            let now = o2.fetch_add(1, Ordering::SeqCst) + 1;
            m2.fetch_max(now, Ordering::SeqCst);
            let (script, o3, r3) = (script.clone(), o2.clone(), r2.clone());
            thread::spawn(move || {
                script(i, s, &r3);
                o3.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Server {
        addr,
        conns,
        max_open,
        requests,
    }
}

/// Reads one request head (and a Content-Length body); None on EOF.
pub fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Content-Length: ")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

/// Serves keep-alive requests with `respond(path) -> full response bytes`.
pub fn http<F>(respond: F) -> Server
where
    F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
{
    server(move |_, mut s, reqs| {
        while let Some(req) = read_request(&mut s) {
            let path = req.split(' ').nth(1).unwrap_or("/").to_string();
            reqs.lock().unwrap().push(req);
            if s.write_all(&respond(&path)).is_err() {
                return;
            }
        }
    })
}

pub fn ok_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A port nobody listens on.
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A fake DNS server on loopback: every A question is answered 127.0.0.1 after the
/// delay `delay(name)` gives (None: never answered); AAAA gets no address.
pub fn loopback_dns(delay: impl Fn(&str) -> Option<Duration> + Send + 'static) -> SocketAddr {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && q[i] != 0 {
                let len = q[i] as usize;
                labels.push(
                    String::from_utf8_lossy(&q[(i + 1).min(n)..(i + 1 + len).min(n)]).into_owned(),
                );
                i += 1 + len;
            }
            if i + 5 > n {
                continue;
            }
            let name = labels.join(".");
            let Some(wait) = delay(&name) else {
                continue;
            };
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let mut r = q[..i + 5].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            if qtype == 1 {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 1]);
            }
            let reply = sock.try_clone().unwrap();
            // The late answer goes from its own thread: the others are not held up.
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                let _ = reply.send_to(&r, from);
            });
        }
    });
    addr
}
