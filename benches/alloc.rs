//! Heap allocations per request in steady keep-alive, counted by a counting global
//! allocator on the engine's thread only (the in-process server thread is not
//! counted). Run: `cargo bench --bench alloc`.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local!(static COUNT: Cell<bool> = const { Cell::new(false) });

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNT.with(|c| c.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNT.with(|c| c.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

struct Count(u64);
impl Handler for Count {
    fn on_done(&mut self, o: Outcome) {
        assert_eq!(o.status, Some(200));
        self.0 += 1;
    }
}

fn main() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut have = Vec::new();
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have.extend_from_slice(&buf[..n]);
                    while let Some(p) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                        have.drain(..p + 4);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\nhello",
                        );
                    }
                }
            });
        }
    });
    let spec = Arc::new(RequestSpec::default());
    let n = 20_000u64;
    let urls: Vec<Request> = (0..n)
        .map(|i| Request {
            tag: i,
            url: format!("http://{addr}/p/{i}"),
            spec: spec.clone(),
        })
        .collect();
    let mut engine = Engine::new(
        Config {
            concurrency: 4,
            ..Config::default()
        },
        urls.into_iter().fuse(),
        Count(0),
    )
    .unwrap();
    // Warm up: connections open, buffers and slabs grown.
    while engine.handler().0 < 2_000 {
        engine.step(None).unwrap();
    }
    let done0 = engine.handler().0;
    COUNT.with(|c| c.set(true));
    let a0 = ALLOCS.load(Ordering::Relaxed);
    while engine.step(None).unwrap() {}
    let a1 = ALLOCS.load(Ordering::Relaxed);
    COUNT.with(|c| c.set(false));
    let done = engine.handler().0 - done0;
    println!(
        "steady keep-alive: {done} requests, {} heap allocations on the engine thread = {:.2} per request",
        a1 - a0,
        (a1 - a0) as f64 / done as f64
    );
}
