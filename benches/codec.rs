//! Codec micro-benchmarks: a typical response head (beside bare httparse, the floor),
//! chunked body decoding and gzip decoding.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use volley::codec::chunked::{Chunk, ChunkedDecoder};
use volley::codec::{Coding, ContentDecoder, Event, Limits, ResponseDecoder};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Wed, 25 Nov 2026 14:00:00 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Last-Modified: Tue, 24 Nov 2026 10:00:00 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6560a1b0-4d2\"\r\n\
Cache-Control: max-age=3600\r\n\
Accept-Ranges: bytes\r\n\r\n";

fn head(c: &mut Criterion) {
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Bytes(HEAD.len() as u64));
    g.bench_function("httparse_bare", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut r = httparse::Response::new(&mut headers);
            black_box(r.parse(black_box(HEAD)).unwrap());
        })
    });
    let mut dec = ResponseDecoder::new(Limits::default(), false);
    g.bench_function("volley_head", |b| {
        b.iter(|| {
            dec.reset(false);
            match dec.decode(black_box(HEAD)).unwrap() {
                (n, Event::Head(h)) => black_box((n, h.status)),
                _ => unreachable!(),
            };
        })
    });
    g.finish();
}

fn chunked_body(size: usize, chunk: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let data = vec![b'x'; chunk];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk);
        write!(v, "{n:x}\r\n").unwrap();
        v.extend_from_slice(&data[..n]);
        v.extend_from_slice(b"\r\n");
        left -= n;
    }
    v.extend_from_slice(b"0\r\n\r\n");
    v
}

fn chunked(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunked");
    for chunk in [64usize, 4096] {
        let body = chunked_body(1 << 20, chunk);
        g.throughput(Throughput::Bytes(1 << 20));
        g.bench_function(format!("1MiB_in_{chunk}B_chunks"), |b| {
            b.iter(|| {
                let mut d = ChunkedDecoder::new();
                let mut input = &body[..];
                let mut total = 0;
                loop {
                    let (n, ev) = d.decode(input).unwrap();
                    match ev {
                        Chunk::Data(r) => total += r.len(),
                        Chunk::Done => break,
                        Chunk::NeedMore => unreachable!(),
                    }
                    input = &input[n..];
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

fn gzip(c: &mut Criterion) {
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("<li><a href=\"/p/{i}\">item {i}</a></li>\n").into_bytes())
        .collect();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&text).unwrap();
    let gz = e.finish().unwrap();
    let mut g = c.benchmark_group("gzip");
    g.throughput(Throughput::Bytes(text.len() as u64));
    let mut d = ContentDecoder::new(Coding::Gzip, u64::MAX);
    let mut out = vec![0u8; 16 * 1024];
    g.bench_function("decode_html_decoded_bytes", |b| {
        b.iter(|| {
            d.reset(Coding::Gzip, u64::MAX);
            let mut input = &gz[..];
            let mut total = 0;
            loop {
                let (used, made) = d.decode(input, &mut out).unwrap();
                total += made;
                input = &input[used..];
                if used == 0 && made == 0 {
                    break;
                }
            }
            assert_eq!(total, text.len());
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, head, chunked, gzip);
criterion_main!(benches);
