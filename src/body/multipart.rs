//! `multipart/form-data` bodies (RFC 7578) with file parts streamed from disk.
//!
//! Owns a list of parts, each a head (the boundary line and part headers, built at
//! once) and a content (text in memory, or an open file read as the body is sent).
//! As a [`Source`] it yields the heads, contents and closing boundary in order,
//! never holding more than one caller-sized buffer of a file.
//!
//! Invariants: [`Multipart::length`](Source::length) is known (every file's size is taken when the part is
//! added) and the body yields exactly that many bytes or fails (a file that shrank
//! fails with `UnexpectedEof`, one that grew is cut); names and file names are quoted
//! with `"`, CR and LF percent-escaped, as the WHATWG HTML standard says.

use super::{Bytes, Reader, Source};
use std::io;
use std::path::Path;

enum Content {
    Mem(Bytes),
    File(Reader<std::fs::File>),
}

impl Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Mem(b) => b.read(buf),
            Content::File(f) => f.read(buf),
        }
    }
    fn len(&self) -> u64 {
        match self {
            Content::Mem(b) => b.length().unwrap_or(0),
            Content::File(f) => f.length().unwrap_or(0),
        }
    }
}

/// A multipart/form-data body under construction, then a [`Source`].
///
/// ```
/// use volley::body::{collect, multipart::Multipart, Source};
/// let dir = std::env::temp_dir().join(format!("mp-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), "file body").unwrap();
/// let mut m = Multipart::with_boundary("XyZ")
///     .text("title", "hi")
///     .file("up", &dir.join("a.txt"), "text/plain").unwrap();
/// assert_eq!(m.content_type(), "multipart/form-data; boundary=XyZ");
/// let len = m.length().unwrap();
/// let body = collect(&mut m).unwrap();
/// assert_eq!(body.len() as u64, len);
/// assert_eq!(String::from_utf8(body).unwrap(),
///     "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n\
///      --XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n\
///      Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Multipart {
    boundary: String,
    /// Heads and contents in sending order; the last item is the closing boundary.
    parts: Vec<Content>,
    at: usize,
    closed: bool,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

fn quote(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl Multipart {
    /// An empty body with a random boundary (128 bits from the OS, or a clock-seeded
    /// generator if the OS has none to give).
    pub fn new() -> Multipart {
        let mut b = [0u8; 16];
        if crate::rng::os_random(&mut b).is_err() {
            let mut r = crate::rng::Rng::seeded(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            );
            for x in &mut b {
                *x = r.next_u64() as u8;
            }
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Multipart::with_boundary(&format!("volley{hex}"))
    }

    /// An empty body with this boundary (1–70 characters that never occur in the
    /// parts: the caller's promise; used for reproducible tests).
    pub fn with_boundary(boundary: &str) -> Multipart {
        Multipart {
            boundary: boundary.to_string(),
            parts: Vec::new(),
            at: 0,
            closed: false,
        }
    }

    /// The `Content-Type` value to send with this body.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn head(&mut self, name: &str, filename: Option<&str>, ctype: Option<&str>) {
        let mut h = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            quote(name)
        );
        if let Some(f) = filename {
            h.push_str(&format!("; filename=\"{}\"", quote(f)));
        }
        h.push_str("\r\n");
        if let Some(c) = ctype {
            h.push_str(&format!(
                "Content-Type: {}\r\n",
                c.replace(['\r', '\n'], "")
            ));
        }
        h.push_str("\r\n");
        self.parts.push(Content::Mem(Bytes::new(h.into_bytes())));
    }

    fn tail(&mut self) {
        self.parts.push(Content::Mem(Bytes::new(b"\r\n".to_vec())));
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> Multipart {
        self.head(name, None, None);
        self.parts
            .push(Content::Mem(Bytes::new(value.as_bytes().to_vec())));
        self.tail();
        self
    }

    /// Adds a file part from memory.
    pub fn bytes(mut self, name: &str, filename: &str, ctype: &str, data: Vec<u8>) -> Multipart {
        self.head(name, Some(filename), Some(ctype));
        self.parts.push(Content::Mem(Bytes::new(data)));
        self.tail();
        self
    }

    /// Adds a file part streamed from `path` (opened now, read while sending); the
    /// file name sent is the path's last component.
    pub fn file(mut self, name: &str, path: &Path, ctype: &str) -> io::Result<Multipart> {
        let reader = Reader::file(path)?;
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.head(name, Some(&filename), Some(ctype));
        self.parts.push(Content::File(reader));
        self.tail();
        Ok(self)
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            let end = format!("--{}--\r\n", self.boundary);
            self.parts.push(Content::Mem(Bytes::new(end.into_bytes())));
        }
    }
}

impl Source for Multipart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.close();
        while self.at < self.parts.len() {
            let n = self.parts[self.at].read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.at += 1;
        }
        Ok(0)
    }

    fn length(&self) -> Option<u64> {
        let closing = if self.closed {
            0
        } else {
            self.boundary.len() as u64 + 6
        };
        Some(self.parts.iter().map(Content::len).sum::<u64>() + closing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::collect;
    use proptest::prelude::*;

    #[test]
    fn escapes_and_random_boundaries() {
        let mut m = Multipart::with_boundary("b").text("a\"b\r\nc", "v");
        let s = String::from_utf8(collect(&mut m).unwrap()).unwrap();
        assert!(s.contains("name=\"a%22b%0D%0Ac\""), "{s}");
        let (x, y) = (Multipart::new(), Multipart::new());
        assert_ne!(x.content_type(), y.content_type());
        assert_eq!(
            collect(&mut Multipart::with_boundary("q")).unwrap(),
            b"--q--\r\n"
        );
    }

    #[test]
    fn a_shrunk_file_fails_rather_than_lie() {
        let p = std::env::temp_dir().join(format!("mp-shrink-{}", std::process::id()));
        std::fs::write(&p, vec![7u8; 10_000]).unwrap();
        let mut m = Multipart::new()
            .file("f", &p, "application/octet-stream")
            .unwrap();
        std::fs::write(&p, b"short").unwrap();
        assert_eq!(
            collect(&mut m).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        std::fs::remove_file(&p).unwrap();
    }

    proptest! {
        #[test]
        fn length_is_exact_for_any_buffer_size(
            fields in proptest::collection::vec(("[a-z]{1,5}", "\\PC{0,20}"), 0..4),
            file in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..700,
        ) {
            let mut m = Multipart::with_boundary("BoUnDaRy");
            for (k, v) in &fields {
                m = m.text(k, v);
            }
            m = m.bytes("f", "f.bin", "application/octet-stream", file.clone());
            let len = m.length().unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; chunk];
            loop {
                let n = m.read(&mut buf).unwrap();
                if n == 0 { break; }
                out.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(out.len() as u64, len);
            prop_assert!(out.ends_with(b"\r\n--BoUnDaRy--\r\n"));
            let pos = out.windows(file.len().max(1)).position(|w| file.is_empty() || w == &file[..]);
            prop_assert!(pos.is_some());
        }
    }
}
