//! Response decoding: head parsing (httparse) and body framing (RFC 9112 §6.3).
//!
//! The decoder is a small state machine — `Head` → `Body` → `Done` — fed with the
//! bytes the connection has buffered. It never copies body bytes: it returns ranges of
//! the input. Invariants:
//! - a head is parsed from any split of its bytes; bytes before a complete head are
//!   never consumed, so the caller keeps them and appends the next read;
//! - a head larger than `Limits::max_head` or with more than `Limits::max_headers`
//!   fields is a `protocol` error, never unbounded growth;
//! - 1xx interim responses are consumed and skipped, at most [`MAX_INTERIM`] of them
//!   per response; the first final response counts;
//! - framing is chosen in [`Framing::choose`] and nowhere else;
//! - after `End`, [`ResponseDecoder::reusable`] says whether the connection may carry
//!   another request (keep-alive, a self-delimited body, no conflicting framing).

use super::chunked::{Chunk, ChunkedDecoder};
use super::content::{trim, Coding};
use crate::error::{Error, ErrorKind};
use std::mem::MaybeUninit;
use std::ops::Range;

/// httparse as volley configures it: obs-fold and spaces before the colon are
/// tolerated in responses (as curl and browsers do). A handful of bool stores.
fn parser() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_obsolete_multiline_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true);
    c
}

/// Size and count limits on a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head accepted, in bytes (status line and fields). Default 64 KiB.
    pub max_head: usize,
    /// Most header fields accepted. Default 128; at most [`MAX_HEADERS`].
    pub max_headers: usize,
}

/// Upper bound on [`Limits::max_headers`] (the parser's fixed array).
pub const MAX_HEADERS: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or Content-Length: 0).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

/// The facts about a response head that framing depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramingInput {
    /// The request was HEAD.
    pub head_request: bool,
    /// Response status code.
    pub status: u16,
    /// Transfer-Encoding was present; `Some(true)` when its last coding is chunked.
    pub te_chunked: Option<bool>,
    /// Content-Length, if present and valid.
    pub content_length: Option<u64>,
}

impl Framing {
    /// RFC 9112 §6.3, rules in order.
    pub fn choose(f: &FramingInput) -> Framing {
        // 1. HEAD, 1xx, 204 and 304 never have a body.
        if f.head_request || (100..200).contains(&f.status) || f.status == 204 || f.status == 304 {
            return Framing::None;
        }
        // 3. Transfer-Encoding overrides Content-Length.
        match f.te_chunked {
            Some(true) => return Framing::Chunked,
            Some(false) => return Framing::UntilClose,
            None => {}
        }
        // 5. Content-Length.
        match f.content_length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            // 7. Otherwise the body runs until close.
            None => Framing::UntilClose,
        }
    }
}

/// The parts of a final response head that the engine and handlers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// HTTP minor version (0 or 1).
    pub version: u8,
    /// Body framing.
    pub framing: Framing,
    /// Content-Length as sent (even when Transfer-Encoding overrides it).
    pub content_length: Option<u64>,
    /// Content coding of the body.
    pub coding: Coding,
    /// The connection may be kept alive after this response (per version and
    /// `Connection` header; framing is taken into account by `reusable`).
    pub keep_alive: bool,
    /// Location header value range within the input, if any.
    pub location: Option<Range<usize>>,
    /// Byte range of the whole final head (status line to blank line) in the input.
    pub range: Range<usize>,
}

/// A header field as byte ranges of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpan {
    /// Name range.
    pub name: Range<usize>,
    /// Value range.
    pub value: Range<usize>,
}

/// What one call to [`ResponseDecoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// More input is needed.
    NeedMore,
    /// The final response head.
    Head(Head),
    /// Body bytes (before content decoding): this range of the input.
    Body(Range<usize>),
    /// The response is complete.
    End,
}

#[derive(Debug, Clone)]
enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// Decodes one response at a time; see the module docs.
#[derive(Debug, Clone)]
pub struct ResponseDecoder {
    limits: Limits,
    head_request: bool,
    state: State,
    fields: Vec<FieldSpan>,
    reusable: bool,
    /// Interim (1xx) heads skipped for the current response.
    interim: usize,
}

/// Interim (1xx) responses accepted before the final one; more is `protocol` (a
/// peer sending 1xx heads forever would otherwise never end, even under no
/// timeout).
pub const MAX_INTERIM: usize = 16;

fn perr(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, detail)
}

fn offset(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    // A list of identical values ("5, 5") is allowed by RFC 9110 §8.6.
    let mut out = None;
    for part in v.split(|&b| b == b',') {
        let p = trim(part);
        if p.is_empty() || p.len() > 19 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = p.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
        match out {
            Some(prev) if prev != n => return None,
            _ => out = Some(n),
        }
    }
    out
}

impl ResponseDecoder {
    /// A decoder waiting for the head of a response to a request (`head_request`:
    /// the request was HEAD, so the response has no body).
    pub fn new(limits: Limits, head_request: bool) -> ResponseDecoder {
        ResponseDecoder {
            limits: Limits {
                max_headers: limits.max_headers.min(MAX_HEADERS),
                ..limits
            },
            head_request,
            state: State::Head,
            fields: Vec::new(),
            reusable: false,
            interim: 0,
        }
    }

    /// Prepares for the response to the next request on the same connection.
    pub fn reset(&mut self, head_request: bool) {
        self.head_request = head_request;
        self.state = State::Head;
        self.fields.clear();
        self.reusable = false;
        self.interim = 0;
    }

    /// The header fields of the last head, as ranges of the input that held it.
    pub fn fields(&self) -> &[FieldSpan] {
        &self.fields
    }

    /// True once the response is complete and the connection may carry another request.
    pub fn reusable(&self) -> bool {
        matches!(self.state, State::Done) && self.reusable
    }

    /// True while no byte of the final head has been accepted yet.
    pub fn awaiting_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// True when the response is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Decodes from `input`; returns how many bytes were consumed and the event.
    ///
    /// Loop until `NeedMore` or `End`, passing the unconsumed rest each time (with
    /// new bytes appended). While waiting for a head nothing is consumed until the
    /// head is complete.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Event), Error> {
        match &mut self.state {
            State::Head => self.parse_head(input),
            State::Length(left) => {
                if *left == 0 {
                    self.state = State::Done;
                    return Ok((0, Event::End));
                }
                if input.is_empty() {
                    return Ok((0, Event::NeedMore));
                }
                let n = (*left).min(input.len() as u64) as usize;
                *left -= n as u64;
                Ok((n, Event::Body(0..n)))
            }
            State::Chunked(c) => {
                let (n, ev) = c.decode(input)?;
                Ok(match ev {
                    Chunk::Data(r) => (n, Event::Body(r)),
                    Chunk::NeedMore => (n, Event::NeedMore),
                    Chunk::Done => {
                        self.state = State::Done;
                        (n, Event::End)
                    }
                })
            }
            State::UntilClose => {
                if input.is_empty() {
                    Ok((0, Event::NeedMore))
                } else {
                    Ok((input.len(), Event::Body(0..input.len())))
                }
            }
            State::Done => Ok((0, Event::End)),
        }
    }

    /// The peer closed the connection: the response ends here. Returns `Ok(())` when
    /// this completes the response (a close-delimited body, or already done), or the
    /// error kind the close means: `closed` before a complete head, `truncated` in a
    /// body with its own framing.
    pub fn eof(&mut self) -> Result<(), Error> {
        match &self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                self.reusable = false;
                Ok(())
            }
            State::Head => Err(Error::new(
                ErrorKind::Closed,
                "connection closed before a complete response head",
            )),
            State::Length(left) => Err(Error::new(
                ErrorKind::Truncated,
                format!("connection closed with {left} body bytes outstanding"),
            )),
            State::Chunked(_) => Err(Error::new(
                ErrorKind::Truncated,
                "connection closed inside a chunked body",
            )),
        }
    }

    fn parse_head(&mut self, input: &[u8]) -> Result<(usize, Event), Error> {
        let mut start = 0;
        loop {
            let rest = &input[start..];
            // Uninitialised storage: no per-parse cost for unused slots.
            let mut storage =
                [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let status = parser().parse_response_with_uninit_headers(
                &mut resp,
                rest,
                &mut storage[..self.limits.max_headers],
            );
            let len = match status {
                Ok(httparse::Status::Partial) => {
                    if rest.len() >= self.limits.max_head {
                        return Err(perr(format!(
                            "response head larger than {} bytes",
                            self.limits.max_head
                        )));
                    }
                    // Interim heads already seen are consumed; the rest waits.
                    return Ok((start, Event::NeedMore));
                }
                Ok(httparse::Status::Complete(len)) => len,
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(perr(format!(
                        "more than {} header fields",
                        self.limits.max_headers
                    )))
                }
                Err(e) => return Err(perr(format!("invalid response head: {e}"))),
            };
            if len > self.limits.max_head {
                return Err(perr(format!(
                    "response head larger than {} bytes",
                    self.limits.max_head
                )));
            }
            let code = resp.code.unwrap_or(0);
            if (100..200).contains(&code) && code != 101 {
                self.interim += 1;
                if self.interim > MAX_INTERIM {
                    return Err(perr(format!(
                        "more than {MAX_INTERIM} interim (1xx) responses"
                    )));
                }
                start += len;
                continue;
            }
            if !(100..=999).contains(&code) {
                return Err(perr(format!("invalid status code {code}")));
            }
            let version = resp.version.unwrap_or(1);
            let mut fi = FramingInput {
                head_request: self.head_request,
                status: code,
                ..FramingInput::default()
            };
            let mut coding = Coding::Identity;
            let mut conn_close = false;
            let mut conn_keep = false;
            let mut location = None;
            let mut cl_seen = false;
            self.fields.clear();
            for h in resp.headers.iter() {
                let name = h.name.as_bytes();
                let v = h.value;
                self.fields.push(FieldSpan {
                    name: offset(input, name),
                    value: offset(input, v),
                });
                if name.eq_ignore_ascii_case(b"content-length") {
                    let n = parse_length(v).ok_or_else(|| perr("invalid Content-Length value"))?;
                    if cl_seen && fi.content_length != Some(n) {
                        return Err(perr("conflicting Content-Length values"));
                    }
                    cl_seen = true;
                    fi.content_length = Some(n);
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    // The last coding of all Transfer-Encoding fields decides.
                    if let Some(last) = v.split(|&b| b == b',').map(trim).rfind(|t| !t.is_empty()) {
                        fi.te_chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
                    } else if fi.te_chunked.is_none() {
                        fi.te_chunked = Some(false);
                    }
                } else if name.eq_ignore_ascii_case(b"connection") {
                    conn_close |= has_token(v, b"close");
                    conn_keep |= has_token(v, b"keep-alive");
                } else if name.eq_ignore_ascii_case(b"content-encoding") {
                    coding = Coding::from_header(v);
                } else if name.eq_ignore_ascii_case(b"location") {
                    location = Some(offset(input, trim(v)));
                }
            }
            let framing = Framing::choose(&fi);
            let keep_alive = if version == 0 {
                conn_keep && !conn_close
            } else {
                !conn_close
            };
            // Content-Length beside Transfer-Encoding: obey TE, never reuse (§6.3 rule 3).
            self.reusable = keep_alive
                && framing != Framing::UntilClose
                && !(fi.te_chunked.is_some() && cl_seen)
                && code != 101;
            self.state = match framing {
                Framing::None => State::Done,
                Framing::Length(n) => State::Length(n),
                Framing::Chunked => State::Chunked(ChunkedDecoder::new()),
                Framing::UntilClose => State::UntilClose,
            };
            let head = Head {
                status: code,
                version,
                framing,
                content_length: fi.content_length,
                coding,
                keep_alive,
                location,
                range: start..start + len,
            };
            return Ok((start + len, Event::Head(head)));
        }
    }
}
