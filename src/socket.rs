//! The byte stream under a connection: TCP, or a Unix domain socket
//! (`--unix-socket`), behind one type so the connection state machine, TLS and the
//! event loop do not care which; and the process's file-descriptor limit those
//! streams consume (`raise_fd_limit`, re-exported by the engine).

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(Arc<PathBuf>),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A non-blocking stream socket.
#[derive(Debug)]
pub enum Socket {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain.
    Unix(UnixStream),
}

impl Socket {
    /// Starts a non-blocking connect.
    pub fn connect(peer: &Peer) -> io::Result<Socket> {
        Ok(match peer {
            Peer::Tcp(a) => {
                let s = TcpStream::connect(*a)?;
                let _ = s.set_nodelay(true);
                Socket::Tcp(s)
            }
            Peer::Unix(p) => Socket::Unix(UnixStream::connect(p.as_path())?),
        })
    }

    /// The pending socket error (SO_ERROR), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Socket::Tcp(s) => s.take_error(),
            Socket::Unix(s) => s.take_error(),
        }
    }

    /// `Ok` once connected; `NotConnected` while the connect is in progress.
    pub fn check_connected(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.peer_addr().map(|_| ()),
            Socket::Unix(s) => s.peer_addr().map(|_| ()),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Socket {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.register(r, t, i),
            Socket::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.reregister(r, t, i),
            Socket::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.deregister(r),
            Socket::Unix(s) => s.deregister(r),
        }
    }
}

/// Grows the process's file-descriptor table, once, to hold descriptors up to
/// `n` (at most the open-file soft limit, which is raised to the hard limit first;
/// best effort). The kernel grows the table by doubling as descriptors are opened,
/// and in a process with more than one thread each doubling waits for an RCU grace
/// period (milliseconds): a run opening thousands of sockets would stall several
/// times at its start. Called before threads start, the one growth does not wait
/// at all. [`crate::engine::Engine::new`] calls it for its concurrency.
pub fn reserve_fds(n: usize) {
    let limit = raise_fd_limit();
    // At most 4M descriptors (32 MiB of table) whatever the limit: an absurd `n`
    // under a huge hard limit must not allocate an absurd table.
    let top = (n as u64).min(limit.saturating_sub(1)).min(1 << 22) as libc::c_int;
    if top <= 64 {
        return;
    }
    // SAFETY: an eventfd we own, duplicated to the lowest free descriptor at or
    // above `top` (which grows the table), and both closed; no memory is passed.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_CLOEXEC);
        if fd < 0 {
            return;
        }
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, top);
        if high >= 0 {
            libc::close(high);
        }
        libc::close(fd);
    }
}

/// Raises the soft limit on open files to the hard limit (best effort).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    /// The table size the kernel reports for this process (`FDSize`).
    fn fd_table_size() -> usize {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn the_descriptor_table_grows_once_to_fit() {
        let limit = super::raise_fd_limit() as usize;
        let want = 6000.min(limit.saturating_sub(1));
        super::reserve_fds(want);
        assert!(fd_table_size() > want, "{} <= {want}", fd_table_size());
        // Nothing is left open: the next descriptor is a low one.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(std::os::fd::AsRawFd::as_raw_fd(&f) < 1024);
    }
}
