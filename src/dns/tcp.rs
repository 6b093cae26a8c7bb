//! One DNS query over TCP (RFC 7766), used when a UDP answer came back truncated:
//! connect, write the length-prefixed query, read one length-prefixed answer.
//!
//! Invariants: non-blocking throughout (driven by readiness); at most 2 + 65,535
//! bytes are ever buffered; the connection carries exactly one query and is closed
//! after it.

use super::message::{frame_tcp, unframe_tcp};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Where a TCP query stands after a readiness event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Still connecting, writing or reading.
    Pending,
    /// The answer message (without its length prefix).
    Answer(Vec<u8>),
    /// The connection failed or closed before a whole answer.
    Failed,
}

/// A query under way over TCP.
#[derive(Debug)]
pub(crate) struct TcpQuery {
    stream: TcpStream,
    /// The DNS ID of the query it carries.
    pub(crate) id: u16,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
}

impl TcpQuery {
    /// Connects to `server` and queues `msg`; registers with `token`.
    pub(crate) fn start(
        server: SocketAddr,
        id: u16,
        msg: &[u8],
        token: Token,
        registry: &Registry,
    ) -> io::Result<TcpQuery> {
        let mut stream = TcpStream::connect(server)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut out = Vec::with_capacity(msg.len() + 2);
        frame_tcp(msg, &mut out).map_err(|_| io::Error::other("query too long"))?;
        Ok(TcpQuery {
            stream,
            id,
            out,
            written: 0,
            input: Vec::new(),
        })
    }

    /// Writes what it can, reads what has arrived.
    pub(crate) fn on_ready(&mut self) -> Progress {
        if let Ok(Some(_)) | Err(_) = self.stream.take_error() {
            return Progress::Failed;
        }
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Progress::Failed,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            if let Some(r) = unframe_tcp(&self.input) {
                return Progress::Answer(self.input[r].to_vec());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Progress::Failed,
                Ok(n) => {
                    // Never more than one whole message: 2 + 65,535 bytes.
                    let room = (2 + usize::from(u16::MAX)).saturating_sub(self.input.len());
                    self.input.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
    }

    /// Deregisters and closes the connection.
    pub(crate) fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}
