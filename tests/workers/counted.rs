//! `tests/common` as `tests/outcomes/hosts.rs` sees it, with one change: every
//! server it builds tracks its connections open at once, so that a test can say
//! how many connections a host saw open together (over all engines of a run).
//!
//! Counting is done on the server's side, where a client's close shows late: a
//! connection counts as open while its socket is `ESTABLISHED` (the kernel's
//! `TCP_INFO`: a client's close turns it `CLOSE_WAIT` at once on loopback, before
//! the server's thread reads the end). At each accept the tracked sockets still
//! `ESTABLISHED` are counted; a count is *confirmed* when the same sockets are
//! still `ESTABLISHED` 20 ms later, so that a FIN still on its way through a
//! loaded loopback is not taken for a connection left open. The confirmed peak is
//! what tests check: an excess that lasts under 20 ms goes unseen.

pub use crate::base::*;

use std::collections::HashMap;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How long an excess must last to be confirmed.
const CONFIRM: Duration = Duration::from_millis(20);

/// One port's connections: those open now (by id), and the peaks seen.
#[derive(Default)]
struct Port {
    next: usize,
    open: Vec<(usize, TcpStream)>,
    seen: usize,
    confirmed: Arc<AtomicUsize>,
}

fn ports() -> MutexGuard<'static, HashMap<u16, Port>> {
    static PORTS: OnceLock<Mutex<HashMap<u16, Port>>> = OnceLock::new();
    PORTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// True while the peer has not closed `st` (the kernel's TCP state is
/// `ESTABLISHED`).
pub fn established(st: &TcpStream) -> bool {
    // SAFETY: a zeroed tcp_info is a valid value of a plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt on a valid socket into a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            st.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    rc == 0 && info.tcpi_state == 1
}

/// Tracks accepted connection `st` on `port`; its id.
fn track(port: u16, st: &TcpStream) -> usize {
    let mut all = ports();
    let p = all.entry(port).or_default();
    let id = p.next;
    p.next += 1;
    if let Ok(c) = st.try_clone() {
        p.open.push((id, c));
    }
    let live: Vec<TcpStream> = p
        .open
        .iter()
        .filter(|(_, s)| established(s))
        .filter_map(|(_, s)| s.try_clone().ok())
        .collect();
    p.seen = p.seen.max(live.len());
    let confirmed = p.confirmed.clone();
    drop(all);
    if live.len() > confirmed.load(Ordering::SeqCst) {
        PENDING.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            std::thread::sleep(CONFIRM);
            let still = live.iter().filter(|s| established(s)).count();
            confirmed.fetch_max(still, Ordering::SeqCst);
            PENDING.fetch_sub(1, Ordering::SeqCst);
        });
    }
    id
}

/// Connection `id` of `port` ended on the server's side.
fn untrack(port: u16, id: usize) {
    if let Some(p) = ports().get_mut(&port) {
        p.open.retain(|(i, _)| *i != id);
    }
}

/// The most connections `port` saw open at once: (at an accept, confirmed 20 ms
/// later), once the confirmations under way have run.
pub fn peak(port: u16) -> (usize, usize) {
    settle();
    ports()
        .get(&port)
        .map_or((0, 0), |p| (p.seen, p.confirmed.load(Ordering::SeqCst)))
}

/// Confirmations not yet done.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Waits (at most 5 s) until the confirmations of accepts so far have run.
pub fn settle() {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while PENDING.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `tests/common`'s `server`, its connections tracked per port (see the module
/// docs).
pub fn server<F>(script: F) -> Server
where
    F: Fn(usize, TcpStream, &Arc<Mutex<Vec<String>>>) + Send + Sync + 'static,
{
    crate::base::server(move |i, st, reqs| {
        let Ok(port) = st.local_addr().map(|a| a.port()) else {
            return script(i, st, reqs);
        };
        let id = track(port, &st);
        script(i, st, reqs);
        untrack(port, id);
    })
}
