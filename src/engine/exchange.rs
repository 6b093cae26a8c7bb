//! One request and its response on a ready connection: encoding the request into the
//! connection's buffer, writing it, and reading the response head and body through
//! the content decoder to the handler.
//!
//! These functions act on the connection and buffers they are given and report what
//! happened; the engine decides what it means for the task (deadlines, pooling,
//! retries, the next hop). What a head means (a redirect to follow, the final answer,
//! too many redirects) is asked of the engine through a `decide` callback, so this
//! module knows no redirect rule.
//!
//! Invariants:
//! - a followed redirect's body (and a 429/503's that is retried) is read and
//!   discarded, never decoded or handed on, and never more than `--max-body` bytes
//!   of it (then the connection is closed);
//! - the handler sees `on_head` once per final response, then its decoded body in
//!   order, never more than `--max-body` bytes of it (then the connection is closed);
//! - a response counts as complete only when the decoder has flushed and checked the
//!   content coding's end;
//! - a pipelined request (`start` with `queued`) is appended behind what the
//!   connection still has to write and never touches the decoder of the response
//!   being read.

use super::api::{Handler, ResponseHead, Timings};
use crate::codec::request::{encode, RequestHead};
use crate::codec::response::Framing;
use crate::codec::ContentDecoder;
use crate::conn::{Conn, Flow, ReadEnd, ReadEvent};
use crate::error::Error;
use crate::target::Target;
use std::time::{Duration, Instant};

/// The final response of an attempt, as reported in the `Outcome`.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// Status of the final response.
    pub status: Option<u16>,
    /// Its Content-Length.
    pub content_length: Option<u64>,
    /// Decoded body bytes handed to the handler.
    pub bytes: u64,
    /// The body was cut at `--max-body`.
    pub capped: bool,
    /// An unfollowed redirect's resolved target.
    pub location: Option<String>,
}

/// One hop's exchange state, fresh for every request sent.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// When the first request byte left.
    pub sent_at: Option<Instant>,
    /// The response is a redirect being followed, to this URL: its body is discarded.
    pub follow: Option<Target>,
    /// Bytes of a followed redirect's body discarded so far.
    pub discarded: u64,
    /// The response (a 429 or 503) is to be retried after this wait: its body is
    /// discarded, as a followed redirect's.
    pub retry: Option<Duration>,
    /// The request was pipelined behind another on its connection.
    pub pipelined: bool,
    /// The response's body runs until the connection closes (it cannot be framed).
    pub until_close: bool,
}

/// What the engine decided about a response head.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Follow a redirect to this URL.
    Follow(Target),
    /// The final response; the resolved `Location` of an unfollowed redirect.
    Final(Option<String>),
    /// Give up (too many redirects).
    Fail(Error),
    /// Not the final response: retry the request after this wait.
    Retry(Duration),
}

/// How a read turn ended.
#[derive(Debug)]
pub(crate) enum Read {
    /// More bytes are needed; `progressed` when some arrived.
    Pending {
        /// Bytes arrived in this turn.
        progressed: bool,
    },
    /// The response is complete; `reusable` when the connection may be pooled.
    Done {
        /// The connection may carry another request.
        reusable: bool,
    },
    /// The response cannot be used (a decoding error, too many redirects): close the
    /// connection and fail without retry.
    Failed(Error),
    /// The connection failed (EOF, reset, protocol error).
    Broken(Error),
}

/// Encodes `head` into the connection's buffer and readies it for writing;
/// `queued`: behind the requests the connection already carries (pipelining), with
/// the response being read left alone.
#[inline]
pub(crate) fn start(conn: &mut Conn, head: &RequestHead<'_>, queued: bool) -> Result<(), Error> {
    if queued {
        conn.queue_request();
        let at = conn.wbuf.len();
        return encode(&mut conn.wbuf, head).inspect_err(|_| conn.wbuf.truncate(at));
    }
    conn.wbuf.clear();
    encode(&mut conn.wbuf, head)?;
    conn.start_request(head.method.eq_ignore_ascii_case("HEAD"));
    Ok(())
}

/// The scratch buffers the engine lends for a read turn.
#[derive(Debug)]
pub(crate) struct Bufs<'a> {
    /// Socket reads land here.
    pub read: &'a mut [u8],
    /// Decoded body bytes land here.
    pub decoded: &'a mut [u8],
}

/// Who hears about the response.
#[derive(Debug)]
pub(crate) struct Sink<'a, H> {
    /// The handler.
    pub handler: &'a mut H,
    /// The request's tag.
    pub tag: u64,
    /// The URL of this hop (for `ResponseHead::url`).
    pub url: &'a str,
    /// `--max-body`.
    pub max_body: u64,
}

/// Reads what the connection has, feeding the handler; see the module docs.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn read<H: Handler>(
    conn: &mut Conn,
    content: &mut ContentDecoder,
    bufs: Bufs<'_>,
    drain: bool,
    now: Instant,
    ex: &mut Exchange,
    resp: &mut Response,
    timings: &mut Timings,
    sink: Sink<'_, H>,
    mut decide: impl FnMut(u16, Option<&[u8]>, Option<&[u8]>) -> Verdict,
) -> Read {
    let before = conn.received;
    let handler = sink.handler;
    let tag = sink.tag;
    let cbuf = bufs.decoded;
    let mut after: Option<Read> = None;
    let end = conn.read(bufs.read, drain, |ev| match ev {
        ReadEvent::Head(h, fields, buf) => {
            ex.until_close = h.framing == Framing::UntilClose;
            let location = h.location.clone().map(|r| &buf[r]);
            // `Retry-After` matters only for the statuses that may be retried.
            let retry_after = matches!(h.status, 429 | 503)
                .then(|| {
                    fields
                        .iter()
                        .find(|f| buf[f.name.clone()].eq_ignore_ascii_case(b"retry-after"))
                        .map(|f| &buf[f.value.clone()])
                })
                .flatten();
            match decide(h.status, location, retry_after) {
                Verdict::Fail(e) => {
                    after = Some(Read::Failed(e));
                    return Flow::Stop;
                }
                Verdict::Follow(next) => {
                    ex.follow = Some(next);
                    return Flow::Continue;
                }
                Verdict::Retry(wait) => {
                    ex.retry = Some(wait);
                    return Flow::Continue;
                }
                Verdict::Final(location) => resp.location = location,
            }
            resp.status = Some(h.status);
            resp.content_length = h.content_length;
            resp.bytes = 0;
            resp.capped = false;
            content.reset(h.coding, sink.max_body);
            handler.on_head(
                tag,
                &ResponseHead {
                    status: h.status,
                    url: sink.url,
                    content_length: h.content_length,
                    fields,
                    buf,
                },
            );
            Flow::Continue
        }
        ReadEvent::Body(mut data) => {
            if ex.follow.is_some() || ex.retry.is_some() {
                // A followed redirect's (or a retried 429's) body is discarded, up to `--max-body`: past
                // it the redirect is still followed and this connection closed.
                ex.discarded += data.len() as u64;
                if ex.discarded > sink.max_body {
                    after = Some(Read::Done { reusable: false });
                    return Flow::Stop;
                }
                return Flow::Continue;
            }
            loop {
                match content.decode(data, cbuf) {
                    Ok((used, made)) => {
                        if made > 0 {
                            handler.on_body(tag, &cbuf[..made]);
                            resp.bytes += made as u64;
                        }
                        data = &data[used..];
                        if content.capped() {
                            resp.capped = true;
                            after = Some(Read::Done { reusable: false });
                            return Flow::Stop;
                        }
                        if used == 0 && made == 0 {
                            return Flow::Continue;
                        }
                    }
                    Err(e) => {
                        after = Some(Read::Failed(e));
                        return Flow::Stop;
                    }
                }
            }
        }
        ReadEvent::End { reusable } => {
            if ex.follow.is_none() && ex.retry.is_none() {
                // Take output the inflater still holds, then check completeness.
                loop {
                    match content.decode(&[], cbuf) {
                        Ok((_, 0)) => break,
                        Ok((_, made)) => {
                            handler.on_body(tag, &cbuf[..made]);
                            resp.bytes += made as u64;
                        }
                        Err(e) => {
                            after = Some(Read::Failed(e));
                            return Flow::Stop;
                        }
                    }
                }
                resp.capped |= content.capped();
                if let Err(e) = content.finish() {
                    after = Some(Read::Failed(e));
                    return Flow::Stop;
                }
            }
            after = Some(Read::Done { reusable });
            Flow::Stop
        }
    });
    if before == 0 && conn.received > 0 {
        // The response's first byte arrived in this turn, read at `now`.
        timings.ttfb = ex.sent_at.map(|s| now.duration_since(s));
    }
    match end {
        ReadEnd::WouldBlock => Read::Pending {
            progressed: conn.received > before,
        },
        ReadEnd::Finished => after.unwrap_or(Read::Pending { progressed: false }),
        ReadEnd::Failed(e) => Read::Broken(e),
    }
}

/// What a write turn did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// The whole request has been handed to the socket.
    pub done: bool,
    /// Some byte moved in this turn.
    pub moved: bool,
}

/// Writes the request until done or `WouldBlock`, noting when the first byte left.
#[inline]
pub(crate) fn write(conn: &mut Conn, ex: &mut Exchange, now: Instant) -> Result<Written, Error> {
    let (done, moved) = conn.write()?;
    if moved && ex.sent_at.is_none() {
        ex.sent_at = Some(now);
    }
    Ok(Written { done, moved })
}
