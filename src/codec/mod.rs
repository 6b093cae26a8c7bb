//! The sans-IO HTTP/1.1 codec: bytes in, events out; no sockets, no clocks.
//!
//! - [`request`] encodes a request into a caller-owned buffer;
//! - [`response`] parses the response head and frames the body;
//! - [`chunked`] decodes the chunked transfer coding;
//! - [`content`] decodes gzip / deflate with a cap on decoded bytes.
//!
//! See `docs/codec.md` for the states, the framing rules and the limits.

pub mod chunked;
pub mod content;
pub mod request;
pub mod response;

pub use content::{Coding, ContentDecoder};
pub use response::{Event, Framing, Head, Limits, ResponseDecoder};

use crate::error::Error;

/// A whole response as [`decode_pieces`] decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The final head.
    pub head: Head,
    /// The header fields of the final head, as (name, value) bytes.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body after content decoding (up to the cap).
    pub body: Vec<u8>,
    /// The decoded body exceeded the cap.
    pub capped: bool,
    /// The connection could carry another request.
    pub reusable: bool,
    /// Bytes left over after the response (the start of a next one).
    pub leftover: usize,
}

/// Decodes one response fed as `pieces` (then EOF if the response needs it), the way
/// a connection drives the codec: buffer, decode until `NeedMore`, keep unconsumed
/// bytes, append the next piece. Used by tests, fuzz targets and benches, and a
/// compact example of driving [`ResponseDecoder`] and [`ContentDecoder`].
///
/// ```
/// let r = volley::codec::decode_pieces(
///     [&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]], false, 1 << 20).unwrap();
/// assert_eq!((r.head.status, &r.body[..]), (200, &b"hi"[..]));
/// ```
pub fn decode_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    head_request: bool,
    cap: u64,
) -> Result<Decoded, Error> {
    let mut dec = ResponseDecoder::new(Limits::default(), head_request);
    let mut content = ContentDecoder::new(Coding::Identity, cap);
    let mut buf: Vec<u8> = Vec::new();
    let mut scratch = vec![0u8; 16 * 1024];
    let mut head: Option<Head> = None;
    let mut fields = Vec::new();
    let mut body = Vec::new();
    let mut pieces = pieces.into_iter();
    loop {
        // Drain everything decodable from the buffer.
        loop {
            let (n, ev) = dec.decode(&buf)?;
            let done = match &ev {
                Event::NeedMore => true,
                Event::Head(h) => {
                    fields = dec
                        .fields()
                        .iter()
                        .map(|f| (buf[f.name.clone()].to_vec(), buf[f.value.clone()].to_vec()))
                        .collect();
                    content.reset(h.coding, cap);
                    head = Some(h.clone());
                    false
                }
                Event::Body(r) => {
                    let mut data = &buf[r.clone()];
                    loop {
                        let (used, made) = content.decode(data, &mut scratch)?;
                        body.extend_from_slice(&scratch[..made]);
                        data = &data[used..];
                        if used == 0 && made == 0 {
                            break;
                        }
                    }
                    false
                }
                Event::End => {
                    buf.drain(..n);
                    flush(&mut content, &mut scratch, &mut body)?;
                    content.finish()?;
                    let head = head.take().expect("End follows Head");
                    return Ok(Decoded {
                        head,
                        fields,
                        body,
                        capped: content.capped(),
                        reusable: dec.reusable(),
                        leftover: buf.len() + pieces.map(<[u8]>::len).sum::<usize>(),
                    });
                }
            };
            buf.drain(..n);
            if done {
                break;
            }
        }
        match pieces.next() {
            Some(p) => buf.extend_from_slice(p),
            None => {
                dec.eof()?;
                flush(&mut content, &mut scratch, &mut body)?;
                content.finish()?;
                let head = head.take().expect("eof succeeds only after a head");
                return Ok(Decoded {
                    head,
                    fields,
                    body,
                    capped: content.capped(),
                    reusable: false,
                    leftover: buf.len(),
                });
            }
        }
    }
}

/// Takes any output the content decoder still holds.
fn flush(
    content: &mut ContentDecoder,
    scratch: &mut [u8],
    body: &mut Vec<u8>,
) -> Result<(), Error> {
    loop {
        let (_, made) = content.decode(&[], scratch)?;
        if made == 0 {
            return Ok(());
        }
        body.extend_from_slice(&scratch[..made]);
    }
}
