//! Many distinct hosts through the in-loop stub resolver (issue 10): the release
//! `volley` binary probes N distinct names `n<i>.bench.test` with `-c 500` against
//!
//! - a fake DNS server on 127.0.0.1 (this file) answering every name under
//!   `bench.test` — A with a loopback address of its own, AAAA with no data — after
//!   a configurable delay, and
//! - one HTTP server (this file, one mio thread) listening on 250 loopback addresses
//!   127.0.1.1–127.0.1.250 at one port (never on a wildcard address), answering
//!   every request `200 ok` with keep-alive.
//!
//! Each run is also made with the names pinned by a hosts file (`--hosts-file`): the
//! baseline without DNS. Reported per run: targets/s, peak RSS of the volley
//! process (`wait4`'s `ru_maxrss`), and the summary line (DNS errors show there).
//!
//! `cargo bench --bench breadth -- [N...] [--delays 0,20] [--no-pinned]`
//! (default N: 100000 1000000). Every loop is bounded: the servers stop with the
//! bench, each volley run has a time limit.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "bench.test";
const ADDRS: u32 = 250;
const RUN_LIMIT: Duration = Duration::from_secs(1800);

fn addr_of(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, 1 + (i % u64::from(ADDRS)) as u8)
}

/// Datagrams read or written per system call.
const BATCH: usize = 64;

/// A reply waiting for its time: the bytes and where to (as the kernel gave it).
struct Due {
    at: Instant,
    msg: Vec<u8>,
    to: libc::sockaddr_storage,
    to_len: libc::socklen_t,
}

/// The fake DNS server: answers after `delay`; stops when `stop` is set. Reads and
/// writes in batches (`recvmmsg`/`sendmmsg`) with a 4 MiB receive buffer, so that
/// the server is not what limits a run.
fn dns_server(delay: Duration, stop: Arc<AtomicBool>) -> SocketAddr {
    use std::os::fd::AsRawFd;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let fd = sock.as_raw_fd();
    let size: libc::c_int = 4 << 20;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 1000,
    };
    // SAFETY: valid option values of the right sizes for our own socket.
    unsafe {
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, libc::SO_SNDBUF] {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    std::thread::spawn(move || {
        let _keep = sock;
        let mut bufs = vec![[0u8; 512]; BATCH];
        // SAFETY: all-zero sockaddr_storage values are valid.
        let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
        let mut due: VecDeque<Due> = VecDeque::new();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let ready = due.iter().take_while(|d| d.at <= now).count();
            if ready > 0 {
                send_batch(fd, &mut due, ready.min(BATCH));
                continue;
            }
            let mut iovs: Vec<libc::iovec> = bufs
                .iter_mut()
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            // SAFETY: an all-zero mmsghdr is valid; fields are set below.
            let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
            for (i, h) in hdrs.iter_mut().enumerate() {
                h.msg_hdr.msg_name = &mut names[i] as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the headers point into `bufs`, `iovs` and `names`, alive here.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                continue;
            }
            let at = Instant::now() + delay;
            for i in 0..n as usize {
                let len = hdrs[i].msg_len as usize;
                if let Some(msg) = answer(&bufs[i][..len]) {
                    due.push_back(Due {
                        at,
                        msg,
                        to: names[i],
                        to_len: hdrs[i].msg_hdr.msg_namelen,
                    });
                }
            }
        }
    });
    addr
}

/// Sends the first `n` replies of `due` in one `sendmmsg` (what it could not send
/// stays queued).
fn send_batch(fd: i32, due: &mut VecDeque<Due>, n: usize) {
    let mut iovs: Vec<libc::iovec> = due
        .iter_mut()
        .take(n)
        .map(|d| libc::iovec {
            iov_base: d.msg.as_mut_ptr() as *mut libc::c_void,
            iov_len: d.msg.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid; fields are set below.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; n];
    for (i, (h, d)) in hdrs.iter_mut().zip(due.iter_mut()).enumerate() {
        h.msg_hdr.msg_name = &mut d.to as *mut _ as *mut libc::c_void;
        h.msg_hdr.msg_namelen = d.to_len;
        h.msg_hdr.msg_iov = &mut iovs[i];
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the headers point into `due` and `iovs`, alive here.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    // A reply that cannot be sent is dropped, as a real server's would be.
    let gone = if sent <= 0 { 1 } else { sent as usize };
    due.drain(..gone.min(due.len()));
}

/// The answer to one query: `n<i>.bench.test` A → `addr_of(i)`, AAAA → no data;
/// anything else NXDOMAIN.
fn answer(q: &[u8]) -> Option<Vec<u8>> {
    let mut i = 12;
    let mut labels = Vec::new();
    while *q.get(i)? != 0 {
        let l = usize::from(q[i]);
        labels.push(std::str::from_utf8(q.get(i + 1..i + 1 + l)?).ok()?);
        i += 1 + l;
    }
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    let mut r = q.get(..i + 5)?.to_vec();
    r[2] = 0x81;
    let name = labels.join(".");
    let n = name
        .strip_suffix(DOMAIN)
        .and_then(|h| h.strip_suffix('.'))
        .and_then(|h| h.strip_prefix('n'))
        .and_then(|h| h.parse::<u64>().ok());
    r[3] = if n.is_some() { 0x80 } else { 0x83 };
    if let (Some(n), 1) = (n, qtype) {
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        r.extend_from_slice(&addr_of(n).octets());
    }
    Some(r)
}

/// The HTTP server on every `addr_of` address at one port; returns the port.
fn http_server(stop: Arc<AtomicBool>) -> u16 {
    let first = std::net::TcpListener::bind((addr_of(0), 0)).unwrap();
    let port = first.local_addr().unwrap().port();
    first.set_nonblocking(true).unwrap();
    let mut listeners = vec![TcpListener::from_std(first)];
    for i in 1..u64::from(ADDRS) {
        listeners.push(TcpListener::bind(SocketAddr::new(addr_of(i).into(), port)).unwrap());
    }
    std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l, Token(i), Interest::READABLE)
                .unwrap();
        }
        let base = listeners.len();
        let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
        let mut next = base;
        let mut events = Events::with_capacity(1024);
        let mut buf = [0u8; 4096];
        const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        while !stop.load(Ordering::Relaxed) {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
            for e in events.iter() {
                let t = e.token().0;
                if t < base {
                    while let Ok((mut s, _)) = listeners[t].accept() {
                        let k = next;
                        next += 1;
                        poll.registry()
                            .register(&mut s, Token(k), Interest::READABLE)
                            .unwrap();
                        conns.insert(k, (s, Vec::new()));
                    }
                    continue;
                }
                let Some((s, pending)) = conns.get_mut(&t) else {
                    continue;
                };
                let mut close = false;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            close = true;
                            break;
                        }
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            close = true;
                            break;
                        }
                    }
                }
                while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    pending.drain(..end + 4);
                    if s.write_all(RESP).is_err() {
                        close = true;
                    }
                }
                if close {
                    if let Some((mut s, _)) = conns.remove(&t) {
                        let _ = poll.registry().deregister(&mut s);
                    }
                }
            }
        }
    });
    port
}

struct Run {
    secs: f64,
    cpu: f64,
    rss_kib: i64,
    summary: String,
}

/// One volley run over `n` names (a writer thread feeds stdin).
fn run_volley(n: u64, port: u16, extra: &[String]) -> Run {
    let bin = env!("CARGO_MANIFEST_DIR").to_string() + "/target/release/volley";
    let mut child = Command::new(&bin)
        .args(["-c", "500", "-q", "--retries", "0", "-o", "/dev/null"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (cargo build --release first)"));
    let mut stdin = child.stdin.take().unwrap();
    let started = Instant::now();
    let feeder = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut stdin);
        for i in 0..n {
            if writeln!(w, "http://n{i}.{DOMAIN}:{port}/").is_err() {
                return;
            }
        }
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let killer = {
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while t0.elapsed() < RUN_LIMIT {
                std::thread::sleep(Duration::from_millis(200));
                // SAFETY: signal 0 only probes whether our child still exists.
                if unsafe { libc::kill(pid, 0) } != 0 {
                    return;
                }
            }
            // SAFETY: ends our own child, by its pid, past the time limit.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        })
    };
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // SAFETY: waits for our own child and reads its resource usage.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    // Already reaped by wait4 (this only releases the handle's pipes).
    let _ = child.wait();
    let secs = started.elapsed().as_secs_f64();
    let _ = feeder.join();
    let _ = killer.join();
    let summary = reader.join().unwrap_or_default();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Run {
        secs,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        rss_kib: ru.ru_maxrss,
        summary: summary.lines().next().unwrap_or("").to_string(),
    }
}

fn main() {
    let mut sizes: Vec<u64> = Vec::new();
    let mut delays: Vec<u64> = vec![0, 20];
    let mut pinned = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delays" => {
                delays = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|d| d.parse().ok())
                    .collect()
            }
            "--no-pinned" => pinned = false,
            "--bench" => {}
            s => sizes.extend(s.parse::<u64>().ok()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port = http_server(stop.clone());
    println!("| names | DNS delay | resolver targets/s | pinned targets/s | ratio | peak RSS (resolver) | volley CPU s (resolver / pinned) | summary |");
    println!("|---|---|---|---|---|---|---|---|");
    for &delay in &delays {
        let dns = dns_server(Duration::from_millis(delay), stop.clone());
        for &n in &sizes {
            let empty = std::env::temp_dir().join("volley-bench-resolv.conf");
            std::fs::write(&empty, "options timeout:2 attempts:2\n").unwrap();
            let r = run_volley(
                n,
                port,
                &[
                    "--resolv-conf".into(),
                    empty.display().to_string(),
                    "--hosts-file".into(),
                    "/dev/null".into(),
                    "--dns-server".into(),
                    dns.to_string(),
                ],
            );
            let p = if pinned {
                let hosts = std::env::temp_dir().join("volley-bench-hosts");
                let mut f = std::io::BufWriter::new(std::fs::File::create(&hosts).unwrap());
                for i in 0..n {
                    writeln!(f, "{} n{i}.{DOMAIN}", addr_of(i)).unwrap();
                }
                drop(f);
                let p = run_volley(
                    n,
                    port,
                    &[
                        "--resolv-conf".into(),
                        empty.display().to_string(),
                        "--hosts-file".into(),
                        hosts.display().to_string(),
                    ],
                );
                let _ = std::fs::remove_file(&hosts);
                Some(p)
            } else {
                None
            };
            let rate = n as f64 / r.secs;
            let prate = p.as_ref().map(|p| n as f64 / p.secs);
            println!(
                "| {n} | {delay} ms | {rate:.0} | {} | {} | {:.1} MiB | {:.1} / {} | {} |",
                prate.map_or("-".into(), |p| format!("{p:.0}")),
                prate.map_or("-".into(), |p| format!("{:.2}", rate / p)),
                r.rss_kib as f64 / 1024.0,
                r.cpu,
                p.as_ref().map_or("-".into(), |p| format!("{:.1}", p.cpu)),
                r.summary.trim_start_matches("volley: "),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
}
