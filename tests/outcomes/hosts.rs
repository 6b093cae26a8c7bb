//! The hosts of `tests/outcomes.rs`: how a host may behave ([`Behaviour`]), what a
//! request to it may end with (`answers`, `kinds`, `other_status`), and a server
//! on loopback that behaves so ([`host`]). Every server thread's waits are bounded
//! (a read timeout of 20 s; the threads end with the test process).

use crate::common::{cfg, closed_port, loopback_dns, read_request, server};
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use volley::codec::Limits;
use volley::engine::Config;
use volley::ErrorKind;

/// The read timeout of every run; `Behaviour::Slow` answers later than this.
pub const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// How long `Behaviour::Slow` waits before each answer.
pub const SLOW: Duration = Duration::from_millis(900);

/// The largest response head the runs accept; `Behaviour::HugeHead` sends more.
pub const MAX_HEAD: usize = 4096;

/// How a host behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Keep-alive, answers every request.
    Normal,
    /// As `Normal`, its name answered after this many ms (before the connect
    /// timeout, or past it: a later attempt may find the name cached).
    DnsLate(u64),
    /// Its name is never answered.
    DnsNever,
    /// Nobody listens on its port.
    Refused,
    /// Closes each connection after this many answers (reading nothing more).
    CloseAfter(usize),
    /// Answers `Connection: close` (and closes).
    ConnClose,
    /// Answers HTTP/1.0 without keep-alive (and closes).
    Http10,
    /// Answers its first `times` requests (over all connections) with `status`
    /// (429 or 503) and `Retry-After: after`, then 200s; keep-alive.
    Throttle {
        status: u16,
        after: u8,
        times: usize,
    },
    /// Answers `/pN` with a redirect of `status` to `/x/pN` on this host (which
    /// answers 200), or with `elsewhere` to `/pN` on another host that answers
    /// normally.
    Redirect { status: u16, elsewhere: bool },
    /// Answers every request with a 302 to its own URL.
    RedirectLoop,
    /// Answers each request only after [`SLOW`] (past the read timeout).
    Slow,
    /// A head with `Content-Length: 100`, 10 body bytes, and a close.
    CutLength,
    /// A chunked head, one chunk, and a close.
    CutChunked,
    /// A head with `Content-Length: 100`, 10 body bytes, and a reset.
    ResetMidBody,
    /// A line that is no status line, and a close.
    Garbage,
    /// A head larger than [`MAX_HEAD`], and a close.
    HugeHead,
}

impl Behaviour {
    /// True when the host answers its requests (with a 200 and the path as body,
    /// once the engine follows what it must).
    pub fn answers(self) -> bool {
        matches!(
            self,
            Behaviour::Normal
                | Behaviour::DnsLate(_)
                | Behaviour::CloseAfter(_)
                | Behaviour::ConnClose
                | Behaviour::Http10
                | Behaviour::Throttle { .. }
                | Behaviour::Redirect { .. }
        )
    }

    /// The error kinds a request to this host may end with, under `c`. A host that
    /// closes or breaks connections may also leave requests sent behind another on
    /// one connection (pipelined, or on a pooled connection it closed) with `Closed`
    /// once their free re-sends are spent.
    pub fn kinds(self, c: &Config) -> Vec<ErrorKind> {
        use ErrorKind::*;
        match self {
            // Past the connect timeout (500 ms), with a margin for a loaded machine.
            Behaviour::DnsLate(ms) if ms > 300 => vec![ConnectTimeout, Dns],
            Behaviour::Normal | Behaviour::DnsLate(_) | Behaviour::Throttle { .. } => vec![],
            Behaviour::CloseAfter(_) | Behaviour::ConnClose | Behaviour::Http10 => vec![Closed],
            Behaviour::Redirect { .. } if c.follow && c.max_redirects == 0 => {
                vec![TooManyRedirects]
            }
            Behaviour::Redirect { .. } => vec![],
            Behaviour::RedirectLoop if c.follow => vec![TooManyRedirects],
            Behaviour::RedirectLoop => vec![],
            Behaviour::DnsNever => vec![Dns, ConnectTimeout],
            Behaviour::Refused => vec![ConnectRefused, Connect],
            // Pipelined behind a request that timed out, a request is sent again
            // free of charge (the engine closed the connection, not the host), and
            // ends with its own deadline: never `closed`.
            Behaviour::Slow => vec![ReadTimeout, TotalTimeout],
            Behaviour::CutLength | Behaviour::CutChunked | Behaviour::ResetMidBody => {
                vec![Truncated, Closed]
            }
            Behaviour::Garbage | Behaviour::HugeHead => vec![Protocol, Closed],
        }
    }

    /// A status without error this host may end a request with besides a 200: the
    /// throttle's once retries are spent, a redirect's when not followed.
    pub fn other_status(self, c: &Config, status: u16) -> bool {
        match self {
            Behaviour::Throttle { status: s, .. } => status == s,
            Behaviour::Redirect { status: s, .. } => !c.follow && status == s,
            Behaviour::RedirectLoop => !c.follow && status == 302,
            _ => false,
        }
    }
}

/// The response to a request for `path` with `path` as the body.
pub fn answer(path: &str, tail: &str, version: &str) -> Vec<u8> {
    format!(
        "HTTP/{version} 200 OK\r\nContent-Length: {}\r\n{tail}\r\n{path}",
        path.len()
    )
    .into_bytes()
}

/// The path of request head `req`.
pub fn path_of(req: &str) -> String {
    req.split(' ').nth(1).unwrap_or("/").to_string()
}

/// Bounds a server thread's reads: its threads end when the test process does.
pub fn bounded(st: &TcpStream) {
    let _ = st.set_read_timeout(Some(Duration::from_secs(20)));
}

/// Closes with RST (SO_LINGER 0).
pub fn reset(st: TcpStream) {
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

/// A keep-alive server answering each request with `respond(path)` (the bytes to
/// write, `None` to close).
pub fn keepalive<F>(respond: F) -> u16
where
    F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    server(move |_, mut st, _| {
        bounded(&st);
        while let Some(req) = read_request(&mut st) {
            let Some(bytes) = respond(&path_of(&req)) else {
                return;
            };
            if st.write_all(&bytes).is_err() {
                return;
            }
        }
    })
    .addr
    .port()
}

/// A server that reads one request, writes `bytes`, and closes (with a reset when
/// `rst`).
pub fn one_shot(bytes: Vec<u8>, rst: bool) -> u16 {
    server(move |_, mut st, _| {
        bounded(&st);
        if read_request(&mut st).is_some() {
            let _ = st.write_all(&bytes);
            let _ = st.flush();
        }
        if rst {
            reset(st);
        }
    })
    .addr
    .port()
}

/// A server on loopback behaving as `b` for host number `h` (its port; a closed
/// one for `Refused`).
pub fn host(b: Behaviour, h: usize) -> u16 {
    let normal = || keepalive(|p| Some(answer(p, "", "1.1")));
    match b {
        Behaviour::Refused => closed_port().port(),
        Behaviour::Normal | Behaviour::DnsLate(_) | Behaviour::DnsNever => normal(),
        Behaviour::CloseAfter(k) => server(move |_, mut st, _| {
            bounded(&st);
            for _ in 0..k {
                let Some(req) = read_request(&mut st) else {
                    return;
                };
                if st.write_all(&answer(&path_of(&req), "", "1.1")).is_err() {
                    return;
                }
            }
        })
        .addr
        .port(),
        Behaviour::ConnClose => server(move |_, mut st, _| {
            bounded(&st);
            if let Some(req) = read_request(&mut st) {
                let _ = st.write_all(&answer(&path_of(&req), "Connection: close\r\n", "1.1"));
            }
        })
        .addr
        .port(),
        Behaviour::Http10 => server(move |_, mut st, _| {
            bounded(&st);
            if let Some(req) = read_request(&mut st) {
                let _ = st.write_all(&answer(&path_of(&req), "", "1.0"));
            }
        })
        .addr
        .port(),
        Behaviour::Throttle {
            status,
            after,
            times,
        } => {
            let seen = AtomicUsize::new(0);
            keepalive(move |p| {
                Some(if seen.fetch_add(1, Ordering::SeqCst) < times {
                    format!(
                        "HTTP/1.1 {status} Busy\r\nRetry-After: {after}\r\nContent-Length: 4\r\n\r\nbusy"
                    )
                    .into_bytes()
                } else {
                    answer(p, "", "1.1")
                })
            })
        }
        Behaviour::Redirect { status, elsewhere } => {
            // The other host answers `/pN` itself; this one answers `/x/pN`.
            let to = if elsewhere {
                format!("http://t{h}.out.test:{}", normal())
            } else {
                "/x".to_string()
            };
            keepalive(move |p| {
                Some(match p.strip_prefix("/x") {
                    Some(rest) => answer(rest, "", "1.1"),
                    None => format!(
                        "HTTP/1.1 {status} Moved\r\nLocation: {to}{p}\r\nContent-Length: 0\r\n\r\n"
                    )
                    .into_bytes(),
                })
            })
        }
        Behaviour::RedirectLoop => keepalive(|p| {
            Some(
                format!("HTTP/1.1 302 Found\r\nLocation: {p}\r\nContent-Length: 0\r\n\r\n")
                    .into_bytes(),
            )
        }),
        Behaviour::Slow => keepalive(|p| {
            std::thread::sleep(SLOW);
            Some(answer(p, "", "1.1"))
        }),
        Behaviour::CutLength => one_shot(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec(),
            false,
        ),
        Behaviour::CutChunked => one_shot(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec(),
            false,
        ),
        Behaviour::ResetMidBody => one_shot(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec(),
            true,
        ),
        Behaviour::Garbage => one_shot(b"this is not http at all\r\n\r\n".to_vec(), false),
        Behaviour::HugeHead => {
            let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
            head.resize(head.len() + 2 * MAX_HEAD, b'a');
            head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
            one_shot(head, false)
        }
    }
}

/// A scenario's hosts (named `h<h>.<domain>`), their servers and fake DNS; the
/// config (timeouts small), the URLs of its run, and each host's port.
pub fn setup(
    hosts: &[Behaviour],
    picks: &[usize],
    domain: &str,
) -> (Config, Vec<String>, Vec<u16>) {
    let ports: Vec<u16> = hosts.iter().enumerate().map(|(h, &b)| host(b, h)).collect();
    let delays: HashMap<String, Option<Duration>> = hosts
        .iter()
        .enumerate()
        .map(|(h, b)| {
            let d = match b {
                Behaviour::DnsLate(ms) => Some(Duration::from_millis(*ms)),
                Behaviour::DnsNever => None,
                _ => Some(Duration::ZERO),
            };
            (format!("h{h}.{domain}"), d)
        })
        .collect();
    let dns = loopback_dns(move |name| delays.get(name).copied().unwrap_or(Some(Duration::ZERO)));
    let urls = picks
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let h = p % hosts.len();
            format!("http://h{h}.{domain}:{}/p{}", ports[h], i + 1)
        })
        .collect();
    let c = Config {
        dns_servers: vec![dns],
        connect_timeout: Duration::from_millis(500),
        read_timeout: READ_TIMEOUT,
        total_timeout: Some(Duration::from_secs(5)),
        retry_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
        follow: true,
        max_redirects: 2,
        limits: Limits {
            max_head: MAX_HEAD,
            ..Limits::default()
        },
        ..cfg()
    };
    (c, urls, ports)
}
