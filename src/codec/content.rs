//! Incremental content decoding (gzip, deflate) with a cap on decoded bytes.
//!
//! Invariants: output goes into a caller-provided slice, so one call produces at most
//! `out.len()` bytes whatever the compression ratio, and the decoder never produces
//! more than `cap` bytes in total (a decompression bomb stops at the cap and
//! [`ContentDecoder::capped`] turns true). The gzip wrapper (RFC 1952: header, CRC-32,
//! length) is parsed here byte by byte; deflate accepts both the zlib wrapper
//! (RFC 1950, what the RFC means) and raw deflate (what many servers send), told apart
//! by the first two bytes. The inflate state is kept across [`ContentDecoder::reset`]
//! so a connection decoding many responses allocates it once.

use crate::error::{Error, ErrorKind};
use flate2::{Crc, Decompress, FlushDecompress, Status};

/// A response's content coding as far as volley decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// No coding, or one volley does not decode (bytes are passed through).
    Identity,
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped or raw).
    Deflate,
}

impl Coding {
    /// The coding named by a Content-Encoding value (the last listed coding counts
    /// when it is the only one; a stack of codings is passed through undecoded).
    pub fn from_header(value: &[u8]) -> Coding {
        let v = trim(value);
        if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
            Coding::Gzip
        } else if v.eq_ignore_ascii_case(b"deflate") {
            Coding::Deflate
        } else {
            Coding::Identity
        }
    }
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gz {
    /// Reading the fixed 10-byte header; count read.
    Fixed(u8),
    /// FEXTRA length bytes; count read.
    ExtraLen(u8),
    /// FEXTRA payload; bytes left.
    Extra(u16),
    /// Zero-terminated FNAME.
    Name,
    /// Zero-terminated FCOMMENT.
    Comment,
    /// Header CRC16; bytes left.
    Hcrc(u8),
    /// Deflate data.
    Body,
    /// CRC32 + ISIZE; bytes read.
    Trailer(u8),
    /// A member is complete; further bytes may start another member.
    Done,
    /// A member was followed by bytes that do not start one: everything from there on
    /// is ignored padding (a later `0x1f` is padding too, however the bytes arrive).
    Padding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Df {
    /// Waiting for the two bytes that tell zlib from raw; bytes seen.
    Sniff(u8),
    /// Deflate data.
    Body,
    /// The stream ended.
    Done,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// Decodes one response body's content coding; see the module docs.
pub struct ContentDecoder {
    coding: Coding,
    cap: u64,
    produced: u64,
    capped: bool,
    inflate: Option<Decompress>,
    inflate_zlib: bool,
    gz: Gz,
    flags: u8,
    hdr: [u8; 10],
    trailer: [u8; 8],
    crc: Crc,
    df: Df,
    sniff: [u8; 2],
}

impl std::fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDecoder")
            .field("coding", &self.coding)
            .field("produced", &self.produced)
            .field("capped", &self.capped)
            .finish()
    }
}

fn cerr(detail: &str) -> Error {
    Error::new(ErrorKind::Protocol, format!("content decoding: {detail}"))
}

impl ContentDecoder {
    /// A decoder for `coding` that produces at most `cap` bytes.
    pub fn new(coding: Coding, cap: u64) -> ContentDecoder {
        let mut d = ContentDecoder {
            coding,
            cap,
            produced: 0,
            capped: false,
            inflate: None,
            inflate_zlib: false,
            gz: Gz::Fixed(0),
            flags: 0,
            hdr: [0; 10],
            trailer: [0; 8],
            crc: Crc::new(),
            df: Df::Sniff(0),
            sniff: [0; 2],
        };
        d.reset(coding, cap);
        d
    }

    /// Starts a new body, keeping the inflate state's memory.
    pub fn reset(&mut self, coding: Coding, cap: u64) {
        self.coding = coding;
        self.cap = cap;
        self.produced = 0;
        self.capped = false;
        self.gz = Gz::Fixed(0);
        self.flags = 0;
        self.crc.reset();
        self.df = Df::Sniff(0);
    }

    /// The coding being decoded.
    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// Decoded bytes produced so far (never more than the cap).
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// True when the body would have decoded to more than the cap.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// True when the coded stream is complete (always true for identity).
    pub fn is_complete(&self) -> bool {
        match self.coding {
            Coding::Identity => true,
            Coding::Gzip => matches!(self.gz, Gz::Done | Gz::Padding),
            Coding::Deflate => self.df == Df::Done,
        }
    }

    /// Checks, at the end of the body, that the coded stream was complete.
    pub fn finish(&self) -> Result<(), Error> {
        if self.capped || self.is_complete() {
            Ok(())
        } else {
            Err(cerr(match self.coding {
                Coding::Gzip => "gzip stream truncated",
                _ => "deflate stream truncated",
            }))
        }
    }

    /// Decodes from `input` into `out`; returns (bytes consumed, bytes produced).
    ///
    /// For identity, bytes are copied. Call repeatedly, with the unconsumed rest, until
    /// a call consumes nothing and produces nothing (the inflater may hold output
    /// back when `out` fills, and gives it on a later call even with no input).
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
        if self.capped {
            return Ok((input.len(), 0));
        }
        let left = self.cap - self.produced;
        if left == 0 {
            // At the cap: one more decoded byte means the body is larger than the cap;
            // anything else (a gzip trailer, the end of the stream) is consumed.
            // Past the cap nothing is worth an error: a decode error there also
            // means "capped" (reading stops either way).
            let mut probe = [0u8; 1];
            return match self.decode_raw(input, &mut probe) {
                Ok((used, 0)) => Ok((used, 0)),
                _ => {
                    self.capped = true;
                    Ok((input.len(), 0))
                }
            };
        }
        let room = left.min(out.len() as u64) as usize;
        let (used, made) = self.decode_raw(input, &mut out[..room])?;
        self.produced += made as u64;
        Ok((used, made))
    }

    fn decode_raw(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
        match self.coding {
            Coding::Identity => {
                let n = input.len().min(out.len());
                out[..n].copy_from_slice(&input[..n]);
                Ok((n, n))
            }
            Coding::Gzip => self.gzip(input, out),
            Coding::Deflate => self.deflate(input, out),
        }
    }

    fn run_inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), Error> {
        let z = self.inflate.as_mut().expect("inflate started");
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z
            .decompress(input, out, FlushDecompress::None)
            .map_err(|e| cerr(&e.to_string()))?;
        let used = (z.total_in() - in0) as usize;
        let made = (z.total_out() - out0) as usize;
        Ok((used, made, status == Status::StreamEnd))
    }

    fn start_inflate(&mut self, zlib: bool) {
        match &mut self.inflate {
            Some(z) => z.reset(zlib),
            None => self.inflate = Some(Decompress::new(zlib)),
        }
        self.inflate_zlib = zlib;
    }

    fn gzip(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
        let mut i = 0;
        let mut made = 0;
        loop {
            match self.gz {
                Gz::Body => {
                    if made == out.len() {
                        return Ok((i, made));
                    }
                    let (u, m, end) = self.run_inflate(&input[i..], &mut out[made..])?;
                    self.crc.update(&out[made..made + m]);
                    i += u;
                    made += m;
                    if end {
                        self.gz = Gz::Trailer(0);
                    } else if u == 0 && m == 0 {
                        return Ok((i, made));
                    }
                    continue;
                }
                Gz::Done if i == input.len() => return Ok((i, made)),
                Gz::Done => {
                    // Another member may follow; anything else starts ignored padding,
                    // and the state remembers it so that the result never depends on
                    // where the input was split (issue 9 item 20).
                    if input[i] == 0x1f {
                        self.gz = Gz::Fixed(0);
                        self.crc.reset();
                        continue;
                    }
                    self.gz = Gz::Padding;
                    return Ok((input.len(), made));
                }
                Gz::Padding => return Ok((input.len(), made)),
                _ if i == input.len() => return Ok((i, made)),
                _ => {}
            }
            let b = input[i];
            i += 1;
            self.gz = match self.gz {
                Gz::Fixed(n) => {
                    self.hdr[n as usize] = b;
                    if n == 0 && b != 0x1f || n == 1 && b != 0x8b {
                        return Err(cerr("not a gzip stream"));
                    }
                    if n == 2 && b != 8 {
                        return Err(cerr("unknown gzip compression method"));
                    }
                    if n < 9 {
                        Gz::Fixed(n + 1)
                    } else {
                        self.flags = self.hdr[3];
                        self.after_fixed(0)
                    }
                }
                Gz::ExtraLen(0) => {
                    self.hdr[0] = b;
                    Gz::ExtraLen(1)
                }
                Gz::ExtraLen(_) => {
                    let len = u16::from_le_bytes([self.hdr[0], b]);
                    if len == 0 {
                        self.after_fixed(1)
                    } else {
                        Gz::Extra(len)
                    }
                }
                Gz::Extra(left) => {
                    if left == 1 {
                        self.after_fixed(1)
                    } else {
                        Gz::Extra(left - 1)
                    }
                }
                Gz::Name => {
                    if b == 0 {
                        self.after_fixed(2)
                    } else {
                        Gz::Name
                    }
                }
                Gz::Comment => {
                    if b == 0 {
                        self.after_fixed(3)
                    } else {
                        Gz::Comment
                    }
                }
                Gz::Hcrc(left) => {
                    if left == 1 {
                        self.start_inflate(false);
                        Gz::Body
                    } else {
                        Gz::Hcrc(left - 1)
                    }
                }
                Gz::Trailer(n) => {
                    self.trailer[n as usize] = b;
                    if n < 7 {
                        Gz::Trailer(n + 1)
                    } else {
                        let crc = u32::from_le_bytes(self.trailer[0..4].try_into().expect("4"));
                        let len = u32::from_le_bytes(self.trailer[4..8].try_into().expect("4"));
                        if crc != self.crc.sum() || len != self.crc.amount() {
                            return Err(cerr("gzip checksum mismatch"));
                        }
                        Gz::Done
                    }
                }
                Gz::Body | Gz::Done | Gz::Padding => unreachable!("handled above"),
            };
        }
    }

    /// The header state after the fixed part; `stage` = optional fields already done.
    fn after_fixed(&mut self, stage: u8) -> Gz {
        if stage < 1 && self.flags & FEXTRA != 0 {
            return Gz::ExtraLen(0);
        }
        if stage < 2 && self.flags & FNAME != 0 {
            return Gz::Name;
        }
        if stage < 3 && self.flags & FCOMMENT != 0 {
            return Gz::Comment;
        }
        if self.flags & FHCRC != 0 {
            return Gz::Hcrc(2);
        }
        self.start_inflate(false);
        Gz::Body
    }

    fn deflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
        let mut i = 0;
        let mut made = 0;
        loop {
            match self.df {
                Df::Sniff(_) if i == input.len() => return Ok((i, made)),
                Df::Sniff(n) => {
                    self.sniff[n as usize] = input[i];
                    i += 1;
                    if n == 0 {
                        self.df = Df::Sniff(1);
                        continue;
                    }
                    let [b0, b1] = self.sniff;
                    let zlib = b0 & 0x0f == 8 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0;
                    self.start_inflate(zlib);
                    self.df = Df::Body;
                    // Feed the two sniffed bytes first.
                    let sniff = self.sniff;
                    let mut fed = 0;
                    while fed < 2 {
                        let (u, m, end) = self.run_inflate(&sniff[fed..], &mut out[made..])?;
                        fed += u;
                        made += m;
                        if end {
                            self.df = Df::Done;
                            return Ok((input.len(), made));
                        }
                        if u == 0 {
                            return Err(cerr("deflate stream stalled"));
                        }
                    }
                }
                Df::Body => {
                    if made == out.len() {
                        break;
                    }
                    let (u, m, end) = self.run_inflate(&input[i..], &mut out[made..])?;
                    i += u;
                    made += m;
                    if end {
                        self.df = Df::Done;
                        return Ok((input.len(), made));
                    } else if u == 0 && m == 0 {
                        break;
                    }
                }
                Df::Done => return Ok((input.len(), made)),
            }
        }
        Ok((i, made))
    }
}
