//! Byte-level tests of the response codec: every case fed whole and split at every
//! offset (and one byte at a time), plus property tests on body chunking.

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;
use volley::codec::{decode_pieces, Decoded, Framing};
use volley::ErrorKind;

const CAP: u64 = 1 << 20;

/// Feeds `input` whole, at every two-way split, and one byte at a time; all must agree.
fn all_splits(input: &[u8], head_request: bool) -> Result<Decoded, volley::Error> {
    // The head's range depends on how much was consumed before it; compare the rest.
    let norm = |mut r: Result<Decoded, volley::Error>| {
        if let Ok(d) = &mut r {
            d.head.range = 0..0;
        }
        r
    };
    let whole = norm(decode_pieces([input], head_request, CAP));
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        let r = norm(decode_pieces([a, b], head_request, CAP));
        assert_eq!(
            r,
            whole,
            "split at {i} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    let bytes = norm(decode_pieces(input.chunks(1), head_request, CAP));
    assert_eq!(bytes, whole, "byte at a time");
    whole
}

struct Ok_ {
    name: &'static str,
    input: &'static [u8],
    head: bool,
    status: u16,
    body: &'static [u8],
    framing: Framing,
    reusable: bool,
    leftover: usize,
}

const OK_CASES: &[Ok_] = &[
    Ok_ { name: "content-length", input: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", head: false, status: 200, body: b"hello", framing: Framing::Length(5), reusable: true, leftover: 0 },
    Ok_ { name: "zero length", input: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", head: false, status: 200, body: b"", framing: Framing::None, reusable: true, leftover: 0 },
    Ok_ { name: "identical lengths", input: b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab", head: false, status: 200, body: b"ab", framing: Framing::Length(2), reusable: true, leftover: 0 },
    Ok_ { name: "chunked", input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", head: false, status: 200, body: b"abcde", framing: Framing::Chunked, reusable: true, leftover: 0 },
    Ok_ { name: "chunk size with trailing spaces (tolerated)", input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2  \r\nab\r\n0\r\n\r\n", head: false, status: 200, body: b"ab", framing: Framing::Chunked, reusable: true, leftover: 0 },
    Ok_ { name: "chunk extensions with BWS and quoted value", input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 ; a = \"x;\\\"y\" ;b\r\nab\r\n0\r\n\r\n", head: false, status: 200, body: b"ab", framing: Framing::Chunked, reusable: true, leftover: 0 },
    Ok_ { name: "chunked beats length, not reusable", input: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", head: false, status: 200, body: b"abc", framing: Framing::Chunked, reusable: false, leftover: 0 },
    Ok_ { name: "gzip, chunked TE list", input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", head: false, status: 200, body: b"abc", framing: Framing::Chunked, reusable: true, leftover: 0 },
    Ok_ { name: "other TE reads until close", input: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nrawbytes", head: false, status: 200, body: b"rawbytes", framing: Framing::UntilClose, reusable: false, leftover: 0 },
    Ok_ { name: "no length: until close", input: b"HTTP/1.1 200 OK\r\n\r\nall of it", head: false, status: 200, body: b"all of it", framing: Framing::UntilClose, reusable: false, leftover: 0 },
    Ok_ { name: "HEAD has no body", input: b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", head: true, status: 200, body: b"", framing: Framing::None, reusable: true, leftover: 0 },
    Ok_ { name: "204 no body", input: b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", head: false, status: 204, body: b"", framing: Framing::None, reusable: true, leftover: 0 },
    Ok_ { name: "304 no body", input: b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", head: false, status: 304, body: b"", framing: Framing::None, reusable: true, leftover: 0 },
    Ok_ { name: "100 and 103 skipped", input: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", head: false, status: 201, body: b"x", framing: Framing::Length(1), reusable: true, leftover: 0 },
    Ok_ { name: "connection close", input: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", head: false, status: 200, body: b"x", framing: Framing::Length(1), reusable: false, leftover: 0 },
    Ok_ { name: "http/1.0 default close", input: b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", head: false, status: 200, body: b"x", framing: Framing::Length(1), reusable: false, leftover: 0 },
    Ok_ { name: "http/1.0 keep-alive", input: b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", head: false, status: 200, body: b"x", framing: Framing::Length(1), reusable: true, leftover: 0 },
    Ok_ { name: "pipelined leftover", input: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n", head: false, status: 200, body: b"x", framing: Framing::Length(1), reusable: true, leftover: 17 },
    Ok_ { name: "bare LF line endings", input: b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", head: false, status: 200, body: b"ok", framing: Framing::Length(2), reusable: true, leftover: 0 },
    Ok_ { name: "obs-fold tolerated", input: b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 2\r\n\r\nok", head: false, status: 200, body: b"ok", framing: Framing::Length(2), reusable: true, leftover: 0 },
    Ok_ { name: "empty reason", input: b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", head: false, status: 404, body: b"", framing: Framing::None, reusable: true, leftover: 0 },
];

#[test]
fn ok_cases_every_split() {
    for c in OK_CASES {
        let r = all_splits(c.input, c.head).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(r.head.status, c.status, "{}", c.name);
        assert_eq!(r.body, c.body, "{}", c.name);
        assert_eq!(r.head.framing, c.framing, "{}", c.name);
        assert_eq!(r.reusable, c.reusable, "{}", c.name);
        assert_eq!(r.leftover, c.leftover, "{}", c.name);
    }
}

const BAD_CASES: &[(&str, &[u8], ErrorKind)] = &[
    (
        "garbage status line",
        b"HTTP/1.1 OK\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "not http",
        b"SSH-2.0-OpenSSH_9.0\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "header without colon",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "NUL in header value",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "NUL in status line",
        b"HTTP/1.1 2\x0000 OK\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "differing lengths",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        ErrorKind::Protocol,
    ),
    (
        "differing list",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        ErrorKind::Protocol,
    ),
    (
        "invalid length",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "huge length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "huge chunk size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
        ErrorKind::Protocol,
    ),
    (
        "chunk without CRLF",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "chunk size not hex",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ErrorKind::Protocol,
    ),
    (
        "chunk size then another number",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 3\r\nab\r\n0\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "chunk extension without a name",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n0\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "chunk extension with an unbalanced quote",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"b\r\nab\r\n0\r\n\r\n",
        ErrorKind::Protocol,
    ),
    (
        "closed before head",
        b"HTTP/1.1 200 OK\r\nContent-Len",
        ErrorKind::Closed,
    ),
    ("closed with nothing", b"", ErrorKind::Closed),
    (
        "closed after interim",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        ErrorKind::Closed,
    ),
    (
        "truncated length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ErrorKind::Truncated,
    ),
    (
        "truncated chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ErrorKind::Truncated,
    ),
    (
        "truncated before last chunk",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
        ErrorKind::Truncated,
    ),
];

#[test]
fn bad_cases_every_split() {
    for (name, input, kind) in BAD_CASES {
        let e = all_splits(input, false).expect_err(name);
        assert_eq!(e.kind, *kind, "{name}: {e}");
    }
}

#[test]
fn head_size_limit() {
    let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
    while v.len() < 70 * 1024 {
        v.extend_from_slice(b"X-Pad: ");
        v.extend_from_slice(&[b'a'; 2000]);
        v.extend_from_slice(b"\r\n");
    }
    // Never completed: must stop at the limit, not grow.
    for piece in [1usize, 7, 4096, v.len()] {
        let e = decode_pieces(v.chunks(piece), false, CAP).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.detail.contains("larger than"), "{e}");
    }
}

#[test]
fn header_count_limit() {
    let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..129 {
        v.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    let e = decode_pieces([&v[..]], false, CAP).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.detail.contains("header fields"));
    // 128 is fine.
    let mut ok = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..127 {
        ok.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    ok.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    assert_eq!(
        decode_pieces([&ok[..]], false, CAP).unwrap().fields.len(),
        128
    );
}

#[test]
fn fields_and_location() {
    let input = b"HTTP/1.1 301 Moved\r\nLocation:  /next \r\nX-A: 1\r\nContent-Length: 0\r\n\r\n";
    let r = all_splits(input, false).unwrap();
    assert_eq!(r.fields[0], (b"Location".to_vec(), b"/next".to_vec()));
    assert_eq!(r.fields.len(), 3);
    let loc = r.head.location.clone().unwrap();
    assert_eq!(&input[loc], b"/next");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn response(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn sample() -> Vec<u8> {
    (0..5000u32)
        .flat_map(|i| format!("line {i} of the body\n").into_bytes())
        .collect()
}

#[test]
fn gzip_and_deflate_every_split() {
    let data = sample();
    for (coding, enc) in [
        ("gzip", gzip(&data)),
        ("deflate", zlib(&data)),
        ("deflate", raw_deflate(&data)),
        ("x-gzip", gzip(&data)),
    ] {
        let input = response(coding, &enc);
        // every split of a long body is slow; split the coded body at many points.
        let whole = decode_pieces([&input[..]], false, CAP).unwrap();
        assert_eq!(whole.body, data, "{coding}");
        for i in (0..input.len()).step_by(97) {
            let (a, b) = input.split_at(i);
            assert_eq!(decode_pieces([a, b], false, CAP).unwrap().body, data);
        }
        assert_eq!(
            decode_pieces(input.chunks(1), false, CAP).unwrap().body,
            data
        );
    }
}

#[test]
fn gzip_header_options() {
    // FEXTRA, FNAME, FCOMMENT and FHCRC set by hand around a raw deflate stream.
    let data = b"hello gzip options";
    let deflated = raw_deflate(data);
    let mut v = vec![0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3];
    v.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
    v.extend_from_slice(b"name\0comment\0");
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&deflated);
    let mut crc = flate2::Crc::new();
    crc.update(data);
    v.extend_from_slice(&crc.sum().to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let r = all_splits(&response("gzip", &v), false).unwrap();
    assert_eq!(r.body, data);
}

#[test]
fn truncated_and_corrupt_gzip() {
    let data = sample();
    let enc = gzip(&data);
    let cut = response("gzip", &enc[..enc.len() / 2]);
    let e = decode_pieces([&cut[..]], false, CAP).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    let no_trailer = response("gzip", &enc[..enc.len() - 4]);
    assert_eq!(
        decode_pieces([&no_trailer[..]], false, CAP)
            .unwrap_err()
            .kind,
        ErrorKind::Protocol
    );
    let mut bad_crc = enc.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    assert!(decode_pieces([&response("gzip", &bad_crc)[..]], false, CAP)
        .unwrap_err()
        .detail
        .contains("checksum"));
    let garbage = response("gzip", b"this is not gzip at all");
    assert_eq!(
        decode_pieces([&garbage[..]], false, CAP).unwrap_err().kind,
        ErrorKind::Protocol
    );
    let bad_deflate = response("deflate", b"\xff\xff\xff\xff\xff\xff");
    assert_eq!(
        decode_pieces([&bad_deflate[..]], false, CAP)
            .unwrap_err()
            .kind,
        ErrorKind::Protocol
    );
}

/// Issue 9 item 20: an empty gzip member followed by padding that holds a `0x1f` later
/// on decoded to `Ok` fed whole and to `protocol` fed one byte at a time.
const GZIP_SPLIT_REGRESSION: &str =
    "1f8b08009b9b9b9bf3030300000000000000000000000000000000000000000000000000000000\
00000000000000000000000500000000000000000000000000000000000000000300000011030303\
078787873b83d52b8787878800831f83000987878787878787ffffffffff00ff9bff9b9b";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn gzip_padding_same_result_at_every_split() {
    let body = unhex(GZIP_SPLIT_REGRESSION);
    assert_eq!(body.len(), 115);
    let r = all_splits(&response("gzip", &body), false).unwrap();
    assert_eq!((r.body.len(), r.capped), (0, false));
    // Padding after a member, then a real second member's magic: still padding.
    let mut two = gzip(b"abc");
    two.extend_from_slice(b"\x00\x1f\x8b");
    let r = all_splits(&response("gzip", &two), false).unwrap();
    assert_eq!(r.body, b"abc");
    // Two members back to back are both decoded.
    let mut two = gzip(b"abc");
    two.extend(gzip(b"def"));
    let r = all_splits(&response("gzip", &two), false).unwrap();
    assert_eq!(r.body, b"abcdef");
}

#[test]
fn decompression_bomb_stops_at_cap() {
    let zeros = vec![0u8; 64 << 20];
    let enc = gzip(&zeros);
    assert!(enc.len() < 100_000);
    let input = response("gzip", &enc);
    let r = decode_pieces(input.chunks(8192), false, 1 << 20).unwrap();
    assert_eq!(r.body.len(), 1 << 20);
    assert!(r.capped);
    // Exactly at the cap is not capped.
    let exact = response("gzip", &gzip(&zeros[..1000]));
    let r = decode_pieces([&exact[..]], false, 1000).unwrap();
    assert_eq!((r.body.len(), r.capped), (1000, false));
    let r = decode_pieces([&exact[..]], false, 999).unwrap();
    assert_eq!((r.body.len(), r.capped), (999, true));
    // Identity is capped likewise.
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    let r = decode_pieces([&plain[..]], false, 4).unwrap();
    assert_eq!((&r.body[..], r.capped), (&b"0123"[..], true));
}

fn chunk_encode(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        v.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        v.extend_from_slice(&rest[..n]);
        v.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    v.extend_from_slice(b"0\r\n\r\n");
    v
}

fn split_at_points(input: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(input[last..c].to_vec());
        last = c;
    }
    out.push(input[last..].to_vec());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_chunking_any_split_same_body(
        body in proptest::collection::vec(any::<u8>(), 1..3000),
        sizes in proptest::collection::vec(1usize..500, 1..8),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input = chunk_encode(&body, &sizes);
        let pieces = split_at_points(&input, &points);
        let r = decode_pieces(pieces.iter().map(|p| &p[..]), false, CAP).unwrap();
        prop_assert_eq!(r.body, body);
        prop_assert!(r.reusable);
    }

    /// RFC 9112 chunk extensions (token names; token or quoted values; BWS) never
    /// change the body, whatever the split; one stray byte after the size does.
    #[test]
    fn chunk_extensions_are_skipped_and_checked(
        body in proptest::collection::vec(any::<u8>(), 1..200),
        exts in proptest::collection::vec(
            ("[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,8}", proptest::option::of("[a-z0-9]{1,5}|\"[ a-z;=,]{0,6}\""), "[ \t]{0,2}"),
            0..4,
        ),
        points in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut line = format!("{:x}", body.len());
        for (name, val, ws) in &exts {
            line.push_str(ws);
            line.push(';');
            line.push_str(ws);
            line.push_str(name);
            if let Some(v) = val {
                line.push_str(ws);
                line.push('=');
                line.push_str(ws);
                line.push_str(v);
            }
        }
        let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(line.as_bytes());
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&body);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let pieces = split_at_points(&input, &points);
        let r = decode_pieces(pieces.iter().map(|p| &p[..]), false, CAP).unwrap();
        prop_assert_eq!(r.body, body.clone());
        // A second number after the size is never accepted.
        let bad = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x} 1\r\n", body.len());
        let e = decode_pieces([bad.as_bytes()], false, CAP).unwrap_err();
        prop_assert_eq!(e.kind, ErrorKind::Protocol);
    }

    #[test]
    fn gzip_any_split_same_body(
        body in proptest::collection::vec(any::<u8>(), 0..5000),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input = response("gzip", &gzip(&body));
        let pieces = split_at_points(&input, &points);
        let r = decode_pieces(pieces.iter().map(|p| &p[..]), false, CAP).unwrap();
        prop_assert_eq!(r.body, body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        points in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend_from_slice(&bytes);
        let pieces = split_at_points(&input, &points);
        let _ = decode_pieces(pieces.iter().map(|p| &p[..]), false, CAP);
    }
}
