//! Request bodies beyond a `Vec<u8>`, and the helpers for the common ones.
//!
//! Owns the [`Source`] trait — a pull source of body bytes that the engine asks
//! for more only when the socket can take it, so a body of any size costs one
//! buffer — and its makers: [`Bytes`] (in memory), [`Reader`] (any `io::Read`, say a
//! file), [`multipart::Multipart`] (form-data with files streamed from disk); and the
//! [`frame::Framer`] that puts a source on the wire (declared length or chunked); the
//! encoders that produce a whole body at once: [`form::urlencoded`], [`form::query`]
//! (query parameters appended to a URL), `json` (cargo feature `json`), and
//! [`auth::basic_from_url`] (the `Authorization` value of a URL's `user:pass@`).
//!
//! Invariants: a source whose [`Source::length`] is `Some(n)` yields exactly `n` bytes
//! or fails with `UnexpectedEof` (it never yields more: the extra is cut), so a
//! declared `Content-Length` is never a lie on the wire.

pub mod auth;
pub mod form;
pub mod frame;
pub mod multipart;

use std::io;

/// A pull source of request-body bytes.
pub trait Source {
    /// Fills `buf` (never empty when the engine calls) with the next bytes and says
    /// how many; `Ok(0)` is the end. It runs on the engine's thread, so it should
    /// answer promptly (a local file read is fine; a network wait is not).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// The total length when known up front (sent as `Content-Length`); `None` sends
    /// the body with chunked transfer coding.
    fn length(&self) -> Option<u64>;
}

/// A body held in memory.
#[derive(Debug, Clone, Default)]
pub struct Bytes {
    data: Vec<u8>,
    at: usize,
}

impl Bytes {
    /// A source over `data`.
    pub fn new(data: Vec<u8>) -> Bytes {
        Bytes { data, at: 0 }
    }
}

impl Source for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
    fn length(&self) -> Option<u64> {
        Some(self.data.len() as u64)
    }
}

/// A body read from any [`io::Read`], with a declared length or chunked.
///
/// ```
/// use volley::body::{Reader, Source};
/// let mut r = Reader::new(&b"hello world"[..], Some(5));
/// let mut buf = [0u8; 16];
/// assert_eq!(r.read(&mut buf).unwrap(), 5); // cut at the declared length
/// assert_eq!(r.read(&mut buf).unwrap(), 0);
/// let mut short = Reader::new(&b"abc"[..], Some(5));
/// assert_eq!(short.read(&mut buf).unwrap(), 3);
/// assert_eq!(short.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    len: Option<u64>,
    left: u64,
}

impl<R: io::Read> Reader<R> {
    /// Reads `inner`; `len` (if given) is sent as `Content-Length` and enforced.
    pub fn new(inner: R, len: Option<u64>) -> Reader<R> {
        Reader {
            inner,
            len,
            left: len.unwrap_or(u64::MAX),
        }
    }
}

impl Reader<std::fs::File> {
    /// A file, with its current size as the declared length.
    pub fn file(path: &std::path::Path) -> io::Result<Self> {
        let f = std::fs::File::open(path)?;
        let n = f.metadata()?.len();
        Ok(Reader::new(f, Some(n)))
    }
}

impl<R: io::Read> Source for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 && self.len.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "body ended {} bytes short of its declared length",
                    self.left
                ),
            ));
        }
        if self.len.is_some() {
            self.left -= n as u64;
        }
        Ok(n)
    }
    fn length(&self) -> Option<u64> {
        self.len
    }
}

/// A streamed request body, as a recipe: the engine calls it with the request's tag
/// for each attempt and each hop that sends a body (a retry, a 307/308 redirect), so
/// every send starts from a fresh source. Shared by all the requests of a
/// `RequestSpec` (the tag tells them apart).
///
/// ```
/// use volley::body::{Reader, Stream};
/// use volley::engine::RequestSpec;
/// let spec = RequestSpec {
///     method: "PUT".into(),
///     stream: Some(Stream::new(|_tag| Box::new(Reader::new(std::io::repeat(b'x'), Some(1 << 30))))),
///     ..RequestSpec::default()
/// };
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct Stream(std::sync::Arc<dyn Fn(u64) -> Box<dyn Source> + Send + Sync>);

impl Stream {
    /// A stream made by `make(tag)`.
    pub fn new(make: impl Fn(u64) -> Box<dyn Source> + Send + Sync + 'static) -> Stream {
        Stream(std::sync::Arc::new(make))
    }

    /// A fresh source for the request with `tag`.
    pub fn make(&self, tag: u64) -> Box<dyn Source> {
        (self.0)(tag)
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream(..)")
    }
}

/// Two streams are equal when they are the same recipe (clones of one `Stream`).
impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Stream {}

/// Reads a whole source into memory (for tests and small bodies).
pub fn collect(src: &mut dyn Source) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match src.read(&mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A JSON body: the `Content-Type` value and the bytes (cargo feature `json`).
///
/// ```
/// # #[cfg(feature = "json")] {
/// let (ct, body) = volley::body::json(&serde_json::json!({"a": [1, 2]}));
/// assert_eq!((ct, body.as_slice()), ("application/json", &br#"{"a":[1,2]}"#[..]));
/// # }
/// ```
#[cfg(feature = "json")]
pub fn json(value: &serde_json::Value) -> (&'static str, Vec<u8>) {
    ("application/json", value.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Returns at most 3 bytes a call, to exercise partial reads.
    struct Trickle<'a>(&'a [u8]);
    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    proptest! {
        #[test]
        fn declared_length_is_exact(data in proptest::collection::vec(any::<u8>(), 0..200), len in 0u64..250) {
            let mut r = Reader::new(Trickle(&data), Some(len));
            let got = collect(&mut r);
            if len as usize <= data.len() {
                prop_assert_eq!(got.unwrap(), data[..len as usize].to_vec());
            } else {
                prop_assert_eq!(got.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
            }
            let mut c = Reader::new(Trickle(&data), None);
            prop_assert_eq!(collect(&mut c).unwrap(), data.clone());
            prop_assert_eq!(collect(&mut Bytes::new(data.clone())).unwrap(), data);
        }
    }
}
