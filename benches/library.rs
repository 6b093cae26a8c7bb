//! The library helpers' costs: the cookie jar (a `Cookie` header and a `Set-Cookie`
//! store with 3,000 cookies held) and a streamed 256 MiB upload over loopback, with a
//! declared length and chunked.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::io::{Read, Write};
use std::sync::Arc;
use volley::body::{Reader, Stream};
use volley::cookie::Jar;
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec};

const NOW: i64 = 1_700_000_000;

fn jar(c: &mut Criterion) {
    let mut g = c.benchmark_group("cookie_jar_3000");
    let mut jar = Jar::default();
    for d in 0..100 {
        let u = url::Url::parse(&format!("https://h{d}.example.com/a/b")).unwrap();
        for i in 0..30 {
            jar.store(&u, &format!("c{i}=v{i}; Path=/"), NOW);
        }
    }
    let u = url::Url::parse("https://h7.example.com/a/b/c").unwrap();
    g.bench_function("header_30_of_3000", |b| {
        b.iter(|| black_box(jar.header(&u, NOW)))
    });
    g.bench_function("store_replace", |b| {
        b.iter(|| black_box(jar.store(&u, "c3=w; Path=/", NOW)))
    });
    g.finish();
}

struct Done(Vec<Outcome>);
impl Handler for Done {
    fn on_done(&mut self, o: Outcome) {
        self.0.push(o);
    }
}

/// One streamed PUT of `len` bytes to a loopback sink that answers at the end.
fn upload(len: u64, chunked: bool) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut tail = Vec::new();
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return;
            }
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(8);
            tail.drain(..keep);
            if (chunked && tail.ends_with(b"\r\n0\r\n\r\n")) || (!chunked && total >= len) {
                break;
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });
    let declared = (!chunked).then_some(len);
    let spec = RequestSpec {
        method: "PUT".into(),
        stream: Some(Stream::new(move |_| {
            Box::new(Reader::new(std::io::repeat(b'x').take(len), declared))
        })),
        ..RequestSpec::default()
    };
    let req = Request {
        tag: 1,
        url: format!("http://{addr}/"),
        spec: Arc::new(spec),
    };
    let cfg = Config {
        hosts_file: None,
        ..Config::default()
    };
    let mut e = Engine::new(cfg, std::iter::once(req).fuse(), Done(Vec::new())).unwrap();
    e.run().unwrap();
    assert_eq!(e.handler().0[0].status, Some(200));
    sink.join().unwrap();
}

fn uploads(c: &mut Criterion) {
    const LEN: u64 = 256 << 20;
    let mut g = c.benchmark_group("streamed_upload_256MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(LEN));
    g.bench_function("declared_length", |b| b.iter(|| upload(LEN, false)));
    g.bench_function("chunked", |b| b.iter(|| upload(LEN, true)));
    g.finish();
}

criterion_group!(benches, jar, uploads);
criterion_main!(benches);
