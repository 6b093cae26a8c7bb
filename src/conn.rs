//! One connection's I/O state machine: connect → TLS handshake → write → read head →
//! read body → idle (pooled) or closed. Readiness and bytes in, events out.
//!
//! With TLS, plaintext moves through a rustls `ClientConnection` (boxed, so a plain
//! connection pays one pointer for it): `read_tls` → `process_new_packets` →
//! plaintext reader, and `write_tls` whenever rustls wants to write. A TLS peer that
//! sends close_notify ends a close-delimited body cleanly; a bare TCP EOF there is
//! reported as `truncated` (the body cannot be known complete).
//! The TLS methods and the TLS write path are in `conn/tls.rs`.
//!
//! The connection never reads the clock and knows nothing of deadlines or requests'
//! fate: the engine passes bytes in and decides. Invariants:
//! - reads and writes go until `WouldBlock` (mio readiness is edge-triggered), with
//!   `Interrupted` retried;
//! - `pending` holds only bytes not yet consumed by the decoder (a partial head, a
//!   partial chunk-size line); in steady state it is empty and unallocated, since
//!   reads go to the engine's shared scratch buffer;
//! - a connection handed to the pool has a complete response behind it and no
//!   unread bytes;
//! - with `pipelined` set (`--pipeline` above 1) the bytes after a response's end are
//!   the next responses' and are kept in `pending`, decoded first by the next `read`
//!   after [`Conn::next_response`]; without it they make the connection unusable, as
//!   before;
//! - after the engine says [`Flow::Pause`], nothing is read from the socket until the
//!   next `read`, which first decodes the bytes already received (kept in
//!   `pending`).

use crate::codec::response::{Event, FieldSpan, Head, ResponseDecoder};
use crate::codec::Limits;
use crate::error::{Error, ErrorKind};
use crate::socket::{Peer, Socket};
use std::io::{self, Write};

mod tls;
use tls::write_tls;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// A proxy CONNECT request is being written or its answer read.
    Tunneling,
    /// TLS handshake in progress.
    Handshaking,
    /// Request bytes being written.
    Writing,
    /// Waiting for / reading the response.
    Reading,
    /// In the pool, between requests.
    Idle,
}

/// What a read turn produced, for the engine to act on.
#[derive(Debug)]
pub enum ReadEvent<'a> {
    /// The final response head, its header fields, and the bytes the field spans
    /// refer to.
    Head(Head, &'a [FieldSpan], &'a [u8]),
    /// Raw (not yet content-decoded) body bytes.
    Body(&'a [u8]),
    /// The response is complete; `reusable` when the connection may be pooled.
    End {
        /// The connection may carry another request.
        reusable: bool,
    },
}

/// What the engine wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop: the engine is done with this response (cap reached, error).
    Stop,
    /// Stop after this event and read nothing more until the next `read`, which
    /// decodes the bytes already received first (the caller paused the body).
    Pause,
}

/// How a read turn ended.
#[derive(Debug)]
pub enum ReadEnd {
    /// The socket has no more bytes for now.
    WouldBlock,
    /// The response ended (an `End` event was given) or the engine said stop.
    Finished,
    /// The exchange failed: EOF or reset in a state where that is an error, or a
    /// protocol error.
    Failed(Error),
    /// The engine said pause: the bytes after that event wait in `pending`.
    Paused,
}

/// One connection; see the module docs.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub sock: Socket,
    /// The peer.
    pub peer: Peer,
    /// Current phase.
    pub phase: Phase,
    /// The request being written.
    pub wbuf: Vec<u8>,
    wpos: usize,
    pending: Vec<u8>,
    /// The response decoder.
    pub dec: ResponseDecoder,
    /// Responses completed on this connection.
    pub served: u32,
    /// Response bytes received for the current request.
    pub received: u64,
    /// The TLS session, for https.
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// Its details, read on first request (`Config::tls_info`).
    tls_info: Option<std::sync::Arc<crate::engine::api::TlsInfo>>,
    /// Requests are pipelined on this connection: bytes after a response are kept.
    pub pipelined: bool,
    /// `pending` starts the current response: decode it before reading the socket.
    carry: bool,
    /// The engine paused the response: `pending` holds its next bytes (maybe none:
    /// the decoder may only owe its `End`), decoded first by the next `read`.
    paused: bool,
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Maps a connect failure to the contract's kind.
pub fn connect_error(e: &io::Error, peer: &Peer) -> Error {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        Error::new(
            ErrorKind::ConnectRefused,
            format!("{peer}: connection refused"),
        )
    } else {
        Error::new(ErrorKind::Connect, format!("{peer}: {e}"))
    }
}

impl Conn {
    /// Starts a non-blocking connect to `peer`.
    pub fn connect(peer: Peer, limits: Limits) -> io::Result<Conn> {
        let sock = Socket::connect(&peer)?;
        Ok(Conn {
            sock,
            peer,
            phase: Phase::Connecting,
            wbuf: Vec::new(),
            wpos: 0,
            pending: Vec::new(),
            dec: ResponseDecoder::new(limits, false),
            served: 0,
            received: 0,
            tls: None,
            tls_info: None,
            pipelined: false,
            carry: false,
            paused: false,
        })
    }

    /// After a writable event while connecting: `Ok(true)` once connected,
    /// `Ok(false)` while still in progress, `Err` when the connect failed.
    pub fn finish_connect(&mut self) -> Result<bool, Error> {
        if let Ok(Some(e)) | Err(e) = self.sock.take_error() {
            return Err(connect_error(&e, &self.peer));
        }
        match self.sock.check_connected() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(connect_error(&e, &self.peer)),
        }
    }

    /// Prepares the connection for a new request whose encoded bytes are in `wbuf`.
    pub fn start_request(&mut self, head_request: bool) {
        self.wpos = 0;
        self.carry = false;
        self.paused = false;
        self.received = 0;
        self.dec.reset(head_request);
        self.phase = Phase::Writing;
    }

    /// Writes until done or `WouldBlock`. `Ok(true)` when the request is fully
    /// written (the connection then waits for the response, unless it is tunneling);
    /// the second value says whether any byte moved.
    pub fn write(&mut self) -> Result<(bool, bool), Error> {
        let r = self.write_bytes()?;
        if r.0 && self.phase == Phase::Writing {
            self.phase = Phase::Reading;
        }
        Ok(r)
    }

    /// Readies the buffer for one more pipelined request: encoded bytes are appended
    /// to what is still unwritten (the buffer is reset once all of it left).
    pub fn queue_request(&mut self) {
        if self.wpos >= self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
    }

    /// The response to the next pipelined request comes next: its decoder is reset
    /// and the bytes already received beyond the last response are its first ones
    /// (counted in `received` when the next `read` decodes them).
    pub fn next_response(&mut self, head_request: bool) {
        self.received = 0;
        self.carry = !self.pending.is_empty();
        self.dec.reset(head_request);
        self.phase = Phase::Reading;
    }

    /// Starts a proxy tunnel: the CONNECT request in `wbuf` is written next, and its
    /// answer read as the response to a HEAD-like request (no body on success).
    pub fn start_tunnel(&mut self) {
        self.wpos = 0;
        self.received = 0;
        self.dec.reset(true);
        self.phase = Phase::Tunneling;
    }

    /// More of the request (a streamed body's next piece) is to be written: `wbuf`
    /// is emptied for it and the connection is writing again.
    pub fn more_to_write(&mut self) {
        self.wbuf.clear();
        self.wpos = 0;
        self.phase = Phase::Writing;
    }

    /// True once everything in `wbuf` has been handed to the socket (or TLS).
    pub fn wpos_done(&self) -> bool {
        self.wpos >= self.wbuf.len()
    }

    fn write_bytes(&mut self) -> Result<(bool, bool), Error> {
        if let Some(tls) = self.tls.as_mut() {
            return write_tls(tls, &mut self.sock, &self.wbuf, &mut self.wpos);
        }
        let mut moved = false;
        while self.wpos < self.wbuf.len() {
            match self.sock.write(&self.wbuf[self.wpos..]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Closed,
                        "connection closed while sending the request",
                    ))
                }
                Ok(n) => {
                    self.wpos += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((false, moved)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(send_error(e)),
            }
        }
        Ok((true, moved))
    }

    /// True once some byte of the current response has arrived.
    pub fn got_response_bytes(&self) -> bool {
        self.received > 0
    }

    /// Reads until `WouldBlock`, the end of the response, or a failure, handing
    /// events to `on_event`. `scratch` is the engine's shared read buffer.
    ///
    /// With `drain` false, a plain-TCP read that returns less than the buffer ends
    /// the turn without the extra read that would only say `WouldBlock`: the socket
    /// was empty at that moment, and edge-triggered readiness reports any later
    /// byte. Callers pass `drain` true when the event also said the peer closed (that
    /// EOF raises no new edge) or when the read was not prompted by an event.
    pub fn read(
        &mut self,
        scratch: &mut [u8],
        drain: bool,
        mut on_event: impl FnMut(ReadEvent<'_>) -> Flow,
    ) -> ReadEnd {
        if self.carry || self.paused {
            // Carried bytes (a pipelined response's first ones, not counted yet) or
            // those received before a pause are the response's next: decode them first.
            let keep = self.carry || self.pipelined;
            let mut pending = std::mem::take(&mut self.pending);
            if self.carry {
                self.received += pending.len() as u64;
            }
            self.carry = false;
            self.paused = false;
            match decode_all(&mut self.dec, &pending, keep, &mut on_event) {
                Ok((consumed, halt)) => {
                    pending.drain(..consumed);
                    self.pending = pending;
                    match halt {
                        Halt::More => {}
                        Halt::Done => return ReadEnd::Finished,
                        Halt::Paused => {
                            self.paused = true;
                            return ReadEnd::Paused;
                        }
                    }
                }
                Err(e) => return ReadEnd::Failed(e),
            }
        }
        loop {
            let n = match self.read_plain(scratch) {
                Ok(0) => {
                    // EOF: decide with what is buffered.
                    if let Err(e) = self.dec.eof() {
                        return ReadEnd::Failed(e);
                    }
                    if self.dec.is_done() {
                        let _ = on_event(ReadEvent::End { reusable: false });
                        return ReadEnd::Finished;
                    }
                    unreachable!("eof() either completes or fails");
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.tls.is_some() => {
                    // TCP EOF without close_notify.
                    return ReadEnd::Failed(match self.dec.eof() {
                        Ok(()) => Error::new(
                            ErrorKind::Truncated,
                            "TLS peer closed without close_notify: the close-delimited body may be incomplete",
                        ),
                        Err(e) => e,
                    });
                }
                Err(e) => {
                    let kind = if self.dec.awaiting_head() {
                        ErrorKind::Closed
                    } else {
                        ErrorKind::Truncated
                    };
                    let what = if is_reset(&e) {
                        "connection reset"
                    } else {
                        "read failed"
                    };
                    return ReadEnd::Failed(Error::new(kind, format!("{what}: {e}")));
                }
            };
            self.received += n as u64;
            let keep = self.pipelined;
            let result = if self.pending.is_empty() {
                let r = decode_all(&mut self.dec, &scratch[..n], keep, &mut on_event);
                if let Ok((consumed, halt)) = r {
                    if halt != Halt::Done || (keep && consumed < n) {
                        self.pending.extend_from_slice(&scratch[consumed..n]);
                    }
                }
                r
            } else {
                self.pending.extend_from_slice(&scratch[..n]);
                let mut pending = std::mem::take(&mut self.pending);
                let r = decode_all(&mut self.dec, &pending, keep, &mut on_event);
                if let Ok((consumed, halt)) = r {
                    if halt != Halt::Done || (keep && consumed < pending.len()) {
                        pending.drain(..consumed);
                        self.pending = pending;
                    }
                }
                r
            };
            match result {
                Ok((_, Halt::More)) if !drain && self.tls.is_none() && n < scratch.len() => {
                    return ReadEnd::WouldBlock
                }
                Ok((_, Halt::More)) => continue,
                Ok((_, Halt::Done)) => return ReadEnd::Finished,
                Ok((_, Halt::Paused)) => {
                    self.paused = true;
                    return ReadEnd::Paused;
                }
                Err(e) => return ReadEnd::Failed(e),
            }
        }
    }

    /// Marks the connection idle; false (and it must be closed) if bytes beyond the
    /// response were received.
    pub fn make_idle(&mut self) -> bool {
        self.phase = Phase::Idle;
        self.pending.is_empty()
    }

    /// Checks an idle connection that became readable: any byte or EOF means it can
    /// no longer be used (the server closed it or sent something unasked).
    pub fn idle_is_dead(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.read_plain(scratch) {
                Ok(_) => return true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

/// Where [`decode_all`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// The input is used up; the response goes on.
    More,
    /// `End` was delivered, or the handler said stop.
    Done,
    /// The handler said pause; the input from the returned offset is unused.
    Paused,
}

/// Decodes `input` until it needs more, ends, or the handler stops or pauses;
/// returns (bytes consumed, where it stopped). After `End`, any bytes left make the
/// connection non-reusable (reported through `End`), unless `pipelined`: then they
/// belong to the next response.
fn decode_all(
    dec: &mut ResponseDecoder,
    input: &[u8],
    pipelined: bool,
    on_event: &mut impl FnMut(ReadEvent<'_>) -> Flow,
) -> Result<(usize, Halt), Error> {
    let mut pos = 0;
    loop {
        let (n, ev) = dec.decode(&input[pos..])?;
        let at = pos;
        pos += n;
        let flow = match ev {
            Event::NeedMore => return Ok((pos, Halt::More)),
            Event::Head(h) => on_event(ReadEvent::Head(h, dec.fields(), &input[at..])),
            Event::Body(r) => on_event(ReadEvent::Body(&input[at + r.start..at + r.end])),
            Event::End => {
                let reusable = dec.reusable() && (pipelined || pos == input.len());
                on_event(ReadEvent::End { reusable });
                return Ok((pos, Halt::Done));
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Stop => return Ok((pos, Halt::Done)),
            Flow::Pause => return Ok((pos, Halt::Paused)),
        }
    }
}

/// A failed send: the peer closed or reset the connection.
fn send_error(e: io::Error) -> Error {
    Error::new(ErrorKind::Closed, format!("sending the request: {e}"))
}
