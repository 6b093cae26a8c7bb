//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! Bytes go in, data ranges come out; the decoder never copies or buffers body bytes.
//! Invariants: it keeps only a constant amount of state (no allocation, ever);
//! chunk sizes that overflow `u64`, a missing CRLF after chunk data, a size line,
//! extension or trailer section longer than its limit are `protocol` errors; trailer
//! fields are read and dropped. A bare LF is accepted wherever CRLF is expected (as
//! most clients do).
//!
//! The size line is strict (RFC 9112 §7.1, §7.1.1): hex digits, then only
//! `*( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )` with token
//! names, then the line end. Extensions are checked and ignored. The one leniency:
//! whitespace before the line end (`25  \r\n`) is tolerated, as some servers pad the
//! size. Anything else (`2 3`, `2;`, an unbalanced quote) is `protocol`.

use crate::error::{Error, ErrorKind};
use std::ops::Range;

/// Longest chunk-size line (size + extensions) accepted, in bytes.
pub const MAX_SIZE_LINE: usize = 4096;
/// Longest trailer section accepted, in bytes.
pub const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` seen so far.
    Size { digits: u8 },
    /// After the size, an extension name or value: whitespace, `;` or the line end.
    Ws,
    /// After `;`: whitespace, then the first byte of an extension name.
    ExtName0,
    /// Inside an extension name.
    ExtName,
    /// After an extension name and whitespace: `=`, `;` or the line end.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    Val0,
    /// Inside a token value.
    ValToken,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted string.
    QuotedEsc,
    /// Saw CR at the end of the size line; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data: CR or LF expected.
    DataCr,
    /// After chunk data and CR: LF expected.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Saw CR at the start of a line: LF ends the message.
    EndLf,
    /// The message is complete.
    Done,
}

/// What one call to [`ChunkedDecoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// All input was consumed; more is needed.
    NeedMore,
    /// Body bytes: this range of the input (within the consumed part).
    Data(Range<usize>),
    /// The last chunk and trailers have been read; the body is complete.
    Done,
}

/// The chunked decoder state; see the module docs.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    remaining: u64,
    line: usize,
    trailers: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

fn perr(detail: &'static str) -> Error {
    Error::new(ErrorKind::Protocol, detail)
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            remaining: 0,
            line: 0,
            trailers: 0,
        }
    }

    /// True once the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`; returns how many bytes were consumed and what they gave.
    ///
    /// Call again with the unconsumed rest until it returns `NeedMore` or `Done`.
    /// After `Done`, bytes beyond the consumed count belong to the next message.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Chunk), Error> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let n = (self.remaining.min((input.len() - i) as u64)) as usize;
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                return Ok((i + n, Chunk::Data(i..i + n)));
            }
            let b = input[i];
            i += 1;
            match self.state {
                State::Size { digits } => {
                    self.line += 1;
                    if let Some(v) = hex(b) {
                        if self.size > (u64::MAX >> 4) {
                            return Err(perr("chunk size overflows 64 bits"));
                        }
                        self.size = (self.size << 4) | v as u64;
                        self.state = State::Size {
                            digits: digits.saturating_add(1),
                        };
                    } else if digits == 0 {
                        return Err(perr("chunk size is not hexadecimal"));
                    } else {
                        match b {
                            b'\r' => self.state = State::SizeLf,
                            b'\n' => self.end_size_line(),
                            b';' => self.state = State::ExtName0,
                            b' ' | b'\t' => self.state = State::Ws,
                            _ => return Err(perr("invalid byte after chunk size")),
                        }
                    }
                }
                State::Ws
                | State::ExtName0
                | State::ExtName
                | State::AfterName
                | State::Val0
                | State::ValToken
                | State::Quoted
                | State::QuotedEsc => {
                    self.line += 1;
                    if self.line > MAX_SIZE_LINE {
                        return Err(perr("chunk extension too long"));
                    }
                    self.extension_byte(b)?;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(perr("chunk size line not ended by CRLF"));
                    }
                    self.end_size_line();
                }
                State::DataCr => match b {
                    b'\r' => self.state = State::DataLf,
                    b'\n' => self.next_chunk(),
                    _ => return Err(perr("missing CRLF after chunk data")),
                },
                State::DataLf => {
                    if b != b'\n' {
                        return Err(perr("missing CRLF after chunk data"));
                    }
                    self.next_chunk();
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::EndLf,
                    b'\n' => {
                        self.state = State::Done;
                        return Ok((i, Chunk::Done));
                    }
                    _ => {
                        self.count_trailer()?;
                        self.state = State::Trailer;
                    }
                },
                State::Trailer => {
                    self.count_trailer()?;
                    if b == b'\n' {
                        self.state = State::TrailerStart;
                    }
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(perr("trailer section not ended by CRLF"));
                    }
                    self.state = State::Done;
                    return Ok((i, Chunk::Done));
                }
                State::Data => unreachable!("handled above"),
                State::Done => return Ok((i - 1, Chunk::Done)),
            }
        }
        if self.state == State::Done {
            return Ok((i, Chunk::Done));
        }
        Ok((i, Chunk::NeedMore))
    }

    /// One byte of the size line after the size (see the module docs' grammar).
    fn extension_byte(&mut self, b: u8) -> Result<(), Error> {
        let ws = b == b' ' || b == b'\t';
        let eol = b == b'\r' || b == b'\n';
        let next = match (self.state, b) {
            (State::Quoted, b'"') => State::Ws,
            (State::Quoted, b'\\') => State::QuotedEsc,
            (State::Quoted, _) if qdtext(b) => State::Quoted,
            (State::Quoted, _) => return Err(perr("unbalanced quote in chunk extension")),
            (State::QuotedEsc, _) if ws || (0x21..=0x7e).contains(&b) || b >= 0x80 => State::Quoted,
            (State::QuotedEsc, _) => return Err(perr("invalid escape in chunk extension")),
            (State::ExtName0 | State::Val0, _) if ws => self.state,
            (State::ExtName0, _) if tchar(b) => State::ExtName,
            (State::ExtName0, _) => return Err(perr("chunk extension without a name")),
            (State::Val0, b'"') => State::Quoted,
            (State::Val0, _) if tchar(b) => State::ValToken,
            (State::Val0, _) => return Err(perr("chunk extension without a value")),
            (State::ExtName, _) if tchar(b) => State::ExtName,
            (State::ValToken, _) if tchar(b) => State::ValToken,
            (State::ExtName | State::AfterName, b'=') => State::Val0,
            (State::ExtName | State::AfterName, _) if ws => State::AfterName,
            (_, _) if ws => State::Ws,
            (_, b';') => State::ExtName0,
            (_, _) if eol => {
                if b == b'\r' {
                    self.state = State::SizeLf;
                } else {
                    self.end_size_line();
                }
                return Ok(());
            }
            _ => return Err(perr("invalid byte in chunk size line")),
        };
        self.state = next;
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), Error> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(perr("trailer section too large"));
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.line = 0;
        if self.size == 0 {
            self.state = State::TrailerStart;
        } else {
            self.remaining = self.size;
            self.size = 0;
            self.state = State::Data;
        }
    }

    fn next_chunk(&mut self) {
        self.state = State::Size { digits: 0 };
    }
}

/// RFC 9110 §5.6.2 tchar.
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.6.4 qdtext (HTAB, SP, visible ASCII but `"` and `\\`, obs-text).
fn qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces split at `splits`; returns body and leftover count.
    pub(crate) fn decode_split(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), Error> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut pending: Vec<u8> = Vec::new();
        while pos < input.len() || !pending.is_empty() {
            let end = (pos + piece).min(input.len());
            pending.extend_from_slice(&input[pos..end]);
            pos = end;
            loop {
                let (n, ev) = d.decode(&pending)?;
                if let Chunk::Data(r) = &ev {
                    out.extend_from_slice(&pending[r.clone()]);
                }
                pending.drain(..n);
                match ev {
                    Chunk::Done => return Ok((out, pending.len() + input.len() - pos)),
                    Chunk::NeedMore => break,
                    Chunk::Data(_) => {}
                }
            }
            if pos == input.len() {
                break;
            }
        }
        Err(Error::new(ErrorKind::Truncated, "incomplete"))
    }

    const OK: &[(&[u8], &[u8])] = &[
        (b"0\r\n\r\n", b""),
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"5;name=val\r\nhello\r\n0;x\r\n\r\n", b"hello"),
        (b"5 ; ext\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            b"5\r\nhello\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
            b"hello",
        ),
        (b"5\nhello\n0\n\n", b"hello"),
        (b"000005\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5;a=\"q \\\" ;\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5 ;a = b ; c\t\r\nhello\r\n0\r\n\r\n", b"hello"),
        // Tolerated (documented): whitespace before the line end.
        (b"5  \r\nhello\r\n0\r\n\r\n", b"hello"),
    ];

    #[test]
    fn valid_bodies_every_split() {
        for (input, want) in OK {
            for piece in 1..=input.len() {
                let (got, left) = decode_split(input, piece).unwrap();
                assert_eq!(
                    &got[..],
                    *want,
                    "{:?} piece {piece}",
                    String::from_utf8_lossy(input)
                );
                assert_eq!(left, 0);
            }
        }
    }

    #[test]
    fn leaves_next_message() {
        let input = b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200";
        let (got, left) = decode_split(input, input.len()).unwrap();
        assert_eq!(got, b"abc");
        assert_eq!(left, 12);
    }

    const BAD: &[&[u8]] = &[
        b"x\r\n",
        b"\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\rX",
        b"5\rX",
        b"fffffffffffffffff\r\n",
        b"5\r\nhello\r\n0\r\n\rX",
        b"5;a\x00\r\n",
        b"5x\r\n",
        b"2 3\r\nab\r\n0\r\n\r\n",
        b"2;\r\nab\r\n0\r\n\r\n",
        b"2;a=\"b\r\nab\r\n0\r\n\r\n",
        b"2;a=\r\nab\r\n0\r\n\r\n",
        b"2;a b\r\nab\r\n0\r\n\r\n",
        b"2;a=b c\r\nab\r\n0\r\n\r\n",
        b"2;a@\r\nab\r\n0\r\n\r\n",
        b"2;a=\"\x7f\"\r\nab\r\n0\r\n\r\n",
    ];

    #[test]
    fn malformed_every_split() {
        for input in BAD {
            for piece in 1..=input.len() {
                let e = decode_split(input, piece).unwrap_err();
                assert_eq!(
                    e.kind,
                    ErrorKind::Protocol,
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn huge_but_valid_size_needs_data() {
        let (n, ev) = ChunkedDecoder::new()
            .decode(b"ffffffffffffffff\r\n")
            .unwrap();
        assert_eq!((n, ev), (18, Chunk::NeedMore));
    }

    #[test]
    fn long_extension_rejected() {
        let mut v = b"1;".to_vec();
        v.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE + 1));
        assert!(ChunkedDecoder::new().decode(&v).is_err());
    }

    #[test]
    fn huge_trailers_rejected() {
        let mut v = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILERS / 10 + 2) {
            v.extend_from_slice(b"X-A: 1234\r\n");
        }
        assert!(ChunkedDecoder::new().decode(&v).is_err());
    }
}
