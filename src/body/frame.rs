//! Framing a streamed request body on the wire: raw bytes up to a declared
//! `Content-Length`, or chunked transfer coding (RFC 9112 §7.1) when the length is
//! not known.
//!
//! A [`Framer`] pulls from a [`Source`] into the connection's write buffer, at most
//! a given number of payload bytes per call, so the buffer stays small however large
//! the body. Pure apart from the source it is given.
//!
//! Invariants: with a declared length exactly that many bytes are emitted (a source
//! that ends early is an `UnexpectedEof` error, never a short body); with chunked
//! coding every chunk is non-empty and the body ends with the zero-size last chunk
//! and its empty trailer, written once.

use super::Source;
use std::io;

/// What a [`Framer::fill`] call left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// More of the body remains: call again once the buffer has drained.
    More,
    /// The body is complete on the wire (as far as the buffer goes).
    Done,
}

/// Frames one body; see the module docs.
#[derive(Debug, Clone)]
pub struct Framer {
    /// Bytes still owed under a declared length; `None` for chunked.
    left: Option<u64>,
    done: bool,
}

impl Framer {
    /// A framer for a body of `length` bytes (`None`: chunked).
    pub fn new(length: Option<u64>) -> Framer {
        Framer {
            left: length,
            done: false,
        }
    }

    /// True once the whole body has been framed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends up to `max` (at least 1) payload bytes from `src`, framed, to `out`.
    ///
    /// ```
    /// use volley::body::{frame::{Fill, Framer}, Bytes};
    /// let mut src = Bytes::new(b"hello world".to_vec());
    /// let (mut f, mut out) = (Framer::new(None), Vec::new());
    /// while f.fill(&mut src, &mut out, 6).unwrap() == Fill::More {}
    /// assert_eq!(out, b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
    /// ```
    pub fn fill(
        &mut self,
        src: &mut dyn Source,
        out: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<Fill> {
        if self.done {
            return Ok(Fill::Done);
        }
        let max = max.max(1);
        let want = match self.left {
            Some(0) => {
                self.done = true;
                return Ok(Fill::Done);
            }
            Some(n) => (n.min(max as u64)) as usize,
            None => max,
        };
        let start = out.len();
        out.resize(start + want, 0);
        let n = loop {
            match src.read(&mut out[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
                Ok(n) => break n.min(want),
            }
        };
        out.truncate(start + n);
        match &mut self.left {
            Some(left) => {
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("request body ended {left} bytes short of its length"),
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    self.done = true;
                    return Ok(Fill::Done);
                }
                Ok(Fill::More)
            }
            None => {
                if n == 0 {
                    out.extend_from_slice(b"0\r\n\r\n");
                    self.done = true;
                    return Ok(Fill::Done);
                }
                let head = format!("{n:x}\r\n");
                out.splice(start..start, head.bytes());
                out.extend_from_slice(b"\r\n");
                Ok(Fill::More)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Bytes, Reader};
    use proptest::prelude::*;

    /// A reference de-chunker: (payload, bytes after the last chunk's trailer).
    fn dechunk(mut b: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        loop {
            let i = b.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap(), 16).unwrap();
            b = &b[i + 2..];
            if n == 0 {
                assert_eq!(&b[..2], b"\r\n");
                return (out, b.len() - 2);
            }
            assert!(n > 0);
            out.extend_from_slice(&b[..n]);
            assert_eq!(&b[n..n + 2], b"\r\n");
            b = &b[n + 2..];
        }
    }

    proptest! {
        #[test]
        fn chunked_round_trips(data in proptest::collection::vec(any::<u8>(), 0..3000), max in 1usize..500) {
            let mut src = Bytes::new(data.clone());
            let (mut f, mut out) = (Framer::new(None), Vec::new());
            let mut calls = 0;
            while f.fill(&mut src, &mut out, max).unwrap() == Fill::More {
                calls += 1;
                prop_assert!(calls <= data.len() + 1);
            }
            prop_assert!(f.is_done());
            prop_assert_eq!(f.fill(&mut src, &mut out, max).unwrap(), Fill::Done);
            let (payload, extra) = dechunk(&out);
            prop_assert_eq!(payload, data);
            prop_assert_eq!(extra, 0);
        }

        #[test]
        fn declared_length_is_exact(data in proptest::collection::vec(any::<u8>(), 0..3000), len in 0u64..3500, max in 1usize..500) {
            let mut src = Reader::new(&data[..], None);
            let (mut f, mut out) = (Framer::new(Some(len)), Vec::new());
            let r = loop {
                match f.fill(&mut src, &mut out, max) {
                    Ok(Fill::More) => continue,
                    r => break r,
                }
            };
            if len as usize <= data.len() {
                prop_assert_eq!(r.unwrap(), Fill::Done);
                prop_assert_eq!(&out[..], &data[..len as usize]);
            } else {
                prop_assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
                prop_assert_eq!(&out[..], &data[..]);
            }
        }
    }
}
