//! The TLS half of a connection: starting a rustls client session over the
//! connected socket, driving its handshake, reading plaintext through it, and
//! moving the request's bytes into it and its records to the socket.
//!
//! Part of `Conn` (one type; this file holds its TLS methods). Invariants: the
//! session is boxed in `Conn::tls` from `start_tls` on, so a plain connection pays
//! one pointer for it; whenever rustls wants to write, its records go out before
//! the connection waits; a socket error during the handshake is `closed` (the peer
//! closed or reset TCP, retryable), never `tls`, which only rustls itself reports;
//! a TLS peer closing TCP without close_notify reads as `UnexpectedEof`.

use super::{is_reset, send_error, Conn, Phase};
use crate::error::{Error, ErrorKind};
use crate::socket::Socket;
use std::io::{self, Read, Write};

impl Conn {
    /// The TLS details, read once per connection (`None` without TLS).
    pub fn tls_info(&mut self) -> Option<std::sync::Arc<crate::engine::api::TlsInfo>> {
        let tls = self.tls.as_deref()?;
        Some(
            self.tls_info
                .get_or_insert_with(|| std::sync::Arc::new(crate::engine::api::TlsInfo::of(tls)))
                .clone(),
        )
    }

    /// Starts a TLS client session over the connected socket.
    pub fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<(), Error> {
        let c = rustls::ClientConnection::new(config, name)
            .map_err(|e| Error::new(ErrorKind::Tls, crate::tls::describe(&e)))?;
        self.tls = Some(Box::new(c));
        self.phase = Phase::Handshaking;
        Ok(())
    }

    /// Drives the handshake: `Ok(true)` once complete, `Ok(false)` while it waits
    /// for the peer, `Err` when it failed: kind `tls` when TLS itself failed,
    /// `closed` when the TCP connection closed or reset under it.
    pub fn handshake(&mut self) -> Result<bool, Error> {
        let tls = self.tls.as_mut().expect("handshake without TLS");
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(handshake_io_error(e)),
                }
            }
            if !tls.is_handshaking() {
                return Ok(true);
            }
            match tls.read_tls(&mut self.sock) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Closed,
                        "connection closed during the TLS handshake",
                    ))
                }
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // Tell the peer why (the alert), best effort.
                        let _ = tls.write_tls(&mut self.sock);
                        return Err(Error::new(ErrorKind::Tls, crate::tls::describe(&e)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !tls.wants_write() {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(handshake_io_error(e)),
            }
        }
    }

    /// Reads plaintext: from the socket, or through TLS. `Ok(0)` is a clean end
    /// (TCP EOF, or TLS close_notify); a TLS peer that closes TCP without
    /// close_notify gives `UnexpectedEof`.
    pub(super) fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.sock) {
                Ok(_) => {
                    let r = tls.process_new_packets();
                    if tls.wants_write() {
                        let _ = tls.write_tls(&mut self.sock);
                    }
                    if let Err(e) = r {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("TLS: {}", crate::tls::describe(&e)),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Moves `wbuf[*wpos..]` into the TLS session and the session's records to the
/// socket; (done, moved) as [`Conn::write`].
pub(super) fn write_tls(
    tls: &mut rustls::ClientConnection,
    sock: &mut Socket,
    wbuf: &[u8],
    wpos: &mut usize,
) -> Result<(bool, bool), Error> {
    let mut moved = false;
    while *wpos < wbuf.len() {
        match tls.writer().write(&wbuf[*wpos..]) {
            Ok(0) => break, // rustls' buffer is full: flush records first
            Ok(n) => *wpos += n,
            Err(e) => return Err(Error::new(ErrorKind::Closed, format!("TLS write: {e}"))),
        }
    }
    loop {
        while tls.wants_write() {
            match tls.write_tls(sock) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Closed,
                        "connection closed while sending the request",
                    ))
                }
                Ok(_) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((false, moved)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(send_error(e)),
            }
        }
        if *wpos >= wbuf.len() {
            return Ok((true, moved));
        }
        match tls.writer().write(&wbuf[*wpos..]) {
            Ok(0) => return Ok((false, moved)),
            Ok(n) => *wpos += n,
            Err(e) => return Err(Error::new(ErrorKind::Closed, format!("TLS write: {e}"))),
        }
    }
}

/// A socket error during the TLS handshake: the peer closed or reset the TCP
/// connection (`closed`, retryable like any other close) — not a TLS failure, which
/// only the TLS layer itself reports.
fn handshake_io_error(e: io::Error) -> Error {
    let what = if is_reset(&e) {
        "connection reset"
    } else {
        "connection failed"
    };
    Error::new(
        ErrorKind::Closed,
        format!("{what} during the TLS handshake: {e}"),
    )
}
