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
//!   being read;
//! - a streamed body (`Streamed`) is framed into the write buffer one piece at a
//!   time, only once the previous piece left, and only after `100 Continue` (or its
//!   wait) when it expects one; a body still waiting when a final head arrives is
//!   never sent;
//! - after the handler pauses, nothing more is handed on until the next `read`,
//!   which first hands on the bytes held back (`held`) and those `Conn` kept.

use super::api::{BodyAction, Handler, RequestSpec, ResponseHead, Timings};
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
    /// The final head's fields, when the engine keeps them.
    pub headers: Option<Vec<(String, String)>>,
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
    /// A streamed request body still being sent.
    pub body: Option<Streamed>,
    /// Body bytes (before content decoding) received with the chunk at which the
    /// handler paused, handed on first when it resumes.
    pub held: Vec<u8>,
    /// A final response came before the body that waited for `100 Continue` was
    /// sent: the body never goes, and the connection is not reused.
    pub unsent: bool,
}

/// A streamed request body on its way out: the source and its framing.
pub(crate) struct Streamed {
    /// Where the bytes come from.
    pub src: Box<dyn crate::body::Source>,
    /// Declared length or chunked.
    pub framer: crate::body::frame::Framer,
    /// Sent `Expect: 100-continue`: the body waits for the `100 Continue`.
    pub waiting: bool,
}

/// The body to send after the head, when it is not simply `spec.body`: a stream (a
/// fresh source for this send), or any body with `Expect: 100-continue`. Announces
/// its framing (and the expectation) in `headers`, made owned if needed.
pub(crate) fn outgoing_body(
    spec: &RequestSpec,
    tag: u64,
    as_get: bool,
    headers: &mut Option<Vec<(String, String)>>,
) -> Option<Streamed> {
    if as_get {
        return None;
    }
    let expect = spec.expect_continue && (spec.stream.is_some() || !spec.body.is_empty());
    let src: Box<dyn crate::body::Source> = match &spec.stream {
        Some(s) => s.make(tag),
        None if expect => Box::new(crate::body::Bytes::new(spec.body.clone())),
        None => return None,
    };
    let length = src.length();
    let h = headers.get_or_insert_with(|| spec.headers.clone());
    h.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("content-length")
            && !n.eq_ignore_ascii_case("transfer-encoding")
            && !n.eq_ignore_ascii_case("expect")
    });
    h.push(match length {
        Some(n) => ("Content-Length".into(), n.to_string()),
        None => ("Transfer-Encoding".into(), "chunked".into()),
    });
    if expect {
        h.push(("Expect".into(), "100-continue".into()));
    }
    Some(Streamed {
        src,
        framer: crate::body::frame::Framer::new(length),
        waiting: expect,
    })
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("framer", &self.framer)
            .finish()
    }
}

/// Body bytes framed into the write buffer per refill: small enough that one
/// connection's buffer stays small, large enough for few system calls.
const BODY_PIECE: usize = 16 * 1024;

/// What the engine decided about a response head.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Follow a redirect to this URL.
    Follow(Target),
    /// The final response; the resolved `Location` of an unfollowed redirect.
    Final(Option<String>),
    /// Give up: too many redirects; this response (with the resolved `Location`
    /// not followed) is the last.
    TooMany(Error, Option<String>),
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
    /// The handler paused the body: read nothing more until it resumes.
    Paused,
}

/// The error of a body the handler aborted.
fn aborted() -> Error {
    Error::new(
        crate::error::ErrorKind::Cancelled,
        "the handler aborted the response body",
    )
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
    /// Keep the final head's fields on the `Response`.
    pub keep_headers: bool,
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
    mut decide: impl FnMut(&ResponseHead<'_>, Option<&[u8]>, Option<&[u8]>) -> Verdict,
) -> Read {
    let before = conn.received;
    let handler = sink.handler;
    let tag = sink.tag;
    let cbuf = bufs.decoded;
    if !ex.held.is_empty() {
        // Resumed: first the body bytes that arrived with the chunk that paused.
        let held = std::mem::take(&mut ex.held);
        match feed(content, &held, cbuf, handler, tag, resp, &mut ex.held) {
            Fed::Continue => {}
            Fed::Paused => return Read::Paused,
            Fed::Stop(r) => return r,
        }
    }
    let mut after: Option<Read> = None;
    let end = conn.read(bufs.read, drain, |ev| match ev {
        ReadEvent::Head(h, fields, buf) => {
            ex.until_close = h.framing == Framing::UntilClose;
            let location = h.location.clone().map(|r| &buf[r]);
            let head = ResponseHead {
                status: h.status,
                url: sink.url,
                content_length: h.content_length,
                fields,
                buf,
            };
            // `Retry-After` matters only for the statuses that may be retried.
            let retry_after = matches!(h.status, 429 | 503)
                .then(|| {
                    fields
                        .iter()
                        .find(|f| buf[f.name.clone()].eq_ignore_ascii_case(b"retry-after"))
                        .map(|f| &buf[f.value.clone()])
                })
                .flatten();
            match decide(&head, location, retry_after) {
                Verdict::TooMany(e, location) => {
                    resp.status = Some(h.status);
                    resp.content_length = h.content_length;
                    resp.location = location;
                    if sink.keep_headers {
                        resp.headers = Some(head.headers_owned());
                    }
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
            if sink.keep_headers {
                resp.headers = Some(head.headers_owned());
            }
            content.reset(h.coding, sink.max_body);
            handler.on_head(tag, &head);
            Flow::Continue
        }
        ReadEvent::Body(data) => {
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
            match feed(content, data, cbuf, handler, tag, resp, &mut ex.held) {
                Fed::Continue => Flow::Continue,
                Fed::Paused => Flow::Pause,
                Fed::Stop(r) => {
                    after = Some(r);
                    Flow::Stop
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
                            resp.bytes += made as u64;
                            // A pause here is moot: the body is complete.
                            if handler.on_body_action(tag, &cbuf[..made]) == BodyAction::Abort {
                                after = Some(Read::Failed(aborted()));
                                return Flow::Stop;
                            }
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
        ReadEnd::Paused => Read::Paused,
    }
}

/// What feeding body bytes to the handler came to.
enum Fed {
    /// All used; go on.
    Continue,
    /// The handler paused; the unused rest is in `held`.
    Paused,
    /// The response is over for the engine (cap, abort, decoding error).
    Stop(Read),
}

/// Decodes the (content-coded) body bytes `data` and hands the output to the
/// handler, as far as the cap and the handler's wishes allow.
fn feed<H: Handler>(
    content: &mut ContentDecoder,
    mut data: &[u8],
    cbuf: &mut [u8],
    handler: &mut H,
    tag: u64,
    resp: &mut Response,
    held: &mut Vec<u8>,
) -> Fed {
    loop {
        match content.decode(data, cbuf) {
            Ok((used, made)) => {
                data = &data[used..];
                let mut action = BodyAction::Continue;
                if made > 0 {
                    resp.bytes += made as u64;
                    action = handler.on_body_action(tag, &cbuf[..made]);
                }
                if action == BodyAction::Abort {
                    return Fed::Stop(Read::Failed(aborted()));
                }
                if content.capped() {
                    resp.capped = true;
                    return Fed::Stop(Read::Done { reusable: false });
                }
                if action == BodyAction::Pause {
                    held.extend_from_slice(data);
                    return Fed::Paused;
                }
                if used == 0 && made == 0 {
                    return Fed::Continue;
                }
            }
            Err(e) => return Fed::Stop(Read::Failed(e)),
        }
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
    let mut any = false;
    loop {
        let (done, moved) = conn.write()?;
        any |= moved;
        if moved && ex.sent_at.is_none() {
            ex.sent_at = Some(now);
        }
        if !done {
            return Ok(Written { done, moved: any });
        }
        // A streamed body: frame its next piece into the emptied buffer.
        match ex.body.as_mut() {
            Some(b) if !b.framer.is_done() && !b.waiting => {
                conn.more_to_write();
                b.framer
                    .fill(&mut *b.src, &mut conn.wbuf, BODY_PIECE)
                    .map_err(|e| {
                        Error::new(
                            crate::error::ErrorKind::Protocol,
                            format!("request body source failed: {e}"),
                        )
                    })?;
            }
            _ => return Ok(Written { done, moved: any }),
        }
    }
}
