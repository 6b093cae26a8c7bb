//! Politeness in real runs on loopback, for `docs/politeness.md`: the engine against
//! servers written here, watched through the embedder's view of a host
//! (`Shared::host_state`).
//!
//!     cargo run --release --example politeness -- trace   # one host's limit over time
//!     cargo run --release --example politeness -- mix     # a healthy host's rate, alone
//!                                                         # and beside a throttler
//!
//! `trace`: a host that takes 4 requests at once (more are answered 429 at once; a
//! request takes 20 ms), 1,500 targets at `-c 32`. Every 50 ms the host's limit,
//! its requests in flight and whether it is paused are sampled; printed as a table
//! and a chart.
//!
//! `mix`: 20,000 targets on a healthy host, alone, then with 200 targets of a host
//! that answers its first 5 requests 429 with `Retry-After: 1` mixed in (one in 16).
//! The healthy host's rate is read off its own log (requests over the span between
//! its first and last arrival), nine pairs of runs; the medians are printed.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec};

/// Answers per request: `respond(nth, busy)` gives status, extra header lines and a
/// delay; arrival instants are logged.
struct Server {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

type Respond = dyn Fn(usize, usize) -> (u16, &'static str, Duration) + Send + Sync;

fn server(
    respond: impl Fn(usize, usize) -> (u16, &'static str, Duration) + Send + Sync + 'static,
) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = l.local_addr().expect("a bound address");
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let respond: Arc<Respond> = Arc::new(respond);
    let (count, busy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let log = arrivals.clone();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (respond, count, busy, log) =
                (respond.clone(), count.clone(), busy.clone(), log.clone());
            thread::spawn(move || serve(s, &*respond, &count, &busy, &log));
        }
    });
    Server { addr, arrivals }
}

fn serve(
    mut s: TcpStream,
    respond: &Respond,
    count: &AtomicUsize,
    busy: &AtomicUsize,
    log: &Mutex<Vec<Instant>>,
) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    loop {
        buf.clear();
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => buf.push(b[0]),
                _ => return,
            }
        }
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
        let nth = count.fetch_add(1, Ordering::SeqCst);
        let (status, extra, delay) = respond(nth, busy.fetch_add(1, Ordering::SeqCst) + 1);
        thread::sleep(delay);
        busy.fetch_sub(1, Ordering::SeqCst);
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}\r\nok");
        if s.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Counts outcomes by status.
#[derive(Default)]
struct Count(Vec<Option<u16>>);

impl Handler for Count {
    fn on_done(&mut self, o: Outcome) {
        self.0.push(o.status);
    }
}

fn requests(urls: Vec<String>) -> impl Iterator<Item = Request> {
    let spec = Arc::new(RequestSpec::default());
    urls.into_iter().enumerate().map(move |(i, url)| Request {
        tag: i as u64,
        url,
        spec: spec.clone(),
    })
}

fn trace() {
    const K: usize = 4;
    let s = server(|_, busy| {
        if busy > K {
            (429, "", Duration::ZERO)
        } else {
            (200, "", Duration::from_millis(20))
        }
    });
    let urls = (0..1500)
        .map(|i| format!("http://{}/{i}", s.addr))
        .collect();
    let cfg = Config {
        concurrency: 32,
        retries: 20,
        retry_backoff: Duration::from_millis(50),
        hosts_file: None,
        ..Config::default()
    };
    let shared = cfg.shared.clone();
    let mut e = Engine::new(cfg, requests(urls).fuse(), Count::default()).expect("an engine");
    let t0 = Instant::now();
    let mut next = t0;
    let mut samples = Vec::new();
    let port = s.addr.port();
    while e
        .step(Some(Duration::from_millis(10)))
        .expect("a loop turn")
    {
        if Instant::now() >= next {
            next += Duration::from_millis(50);
            let v = shared.host_state("127.0.0.1", false, port);
            let (limit, in_flight, paused) = match v {
                Some(v) => (v.limit, v.in_flight, v.paused_until.is_some()),
                None => (32, 0, false),
            };
            samples.push((t0.elapsed(), limit, in_flight, paused));
        }
    }
    let done = e.handler().0.iter().filter(|s| **s == Some(200)).count();
    let pushed = shared.pushed_back(1);
    println!(
        "# trace: host taking {K} at once, -c 32, 1500 targets: {done} ended 200 in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    if let Some(p) = pushed.first() {
        println!(
            "# {} 429s, longest pause {:?}, settled at {} (limit at the end: {})",
            p.pushbacks, p.longest_pause, p.settled, p.limit
        );
    }
    chart(&samples);
}

/// One column per sample: `#` up to the limit (rows 1–12, `^` on top when above),
/// `p` under a paused sample; then the samples as a table (every fourth).
fn chart(samples: &[(Duration, usize, usize, bool)]) {
    const ROWS: usize = 12;
    let cols: Vec<_> = samples.iter().step_by(2).collect();
    println!("limit");
    for row in (1..=ROWS).rev() {
        let line: String = cols
            .iter()
            .map(|(_, limit, _, _)| match *limit {
                l if l > ROWS && row == ROWS => '^',
                l if l >= row => '#',
                _ => ' ',
            })
            .collect();
        println!("{row:>4} |{line}");
    }
    let paused: String = cols.iter().map(|s| if s.3 { 'p' } else { ' ' }).collect();
    println!("     +{}", "-".repeat(cols.len()));
    println!("      {paused}");
    println!("      one column per 100 ms; ^ = above {ROWS} (the ceiling, 32); p = paused");
    println!("\n  t (s)  limit  in flight  paused");
    for (t, limit, in_flight, paused) in samples.iter().step_by(4) {
        println!(
            "{:>7.2} {limit:>6} {in_flight:>10}  {paused}",
            t.as_secs_f64()
        );
    }
}

/// Targets on the healthy host in `mix`.
const HEALTHY: usize = 20_000;
/// Pairs of runs in `mix`.
const PAIRS: usize = 9;

/// The healthy host's rate in one run (requests per second over its own span).
fn healthy_rate(with_throttler: bool) -> f64 {
    let healthy = server(|_, _| (200, "", Duration::ZERO));
    let throttler = server(|nth, _| {
        if nth < 5 {
            (429, "Retry-After: 1\r\n", Duration::ZERO)
        } else {
            (200, "", Duration::ZERO)
        }
    });
    let mut urls = Vec::new();
    let mut t = 0;
    for i in 0..HEALTHY {
        urls.push(format!("http://{}/{i}", healthy.addr));
        if with_throttler && i % 15 == 0 && t < 200 {
            urls.push(format!("http://{}/{t}", throttler.addr));
            t += 1;
        }
    }
    let cfg = Config {
        concurrency: 50,
        retries: 10,
        hosts_file: None,
        ..Config::default()
    };
    let mut e = Engine::new(cfg, requests(urls).fuse(), Count::default()).expect("an engine");
    e.run().expect("a run");
    let ok = e.handler().0.iter().filter(|s| **s == Some(200)).count();
    assert_eq!(ok, HEALTHY + t, "every target ends 200");
    let a = healthy.arrivals.lock().unwrap_or_else(|e| e.into_inner());
    let span = a.iter().max().zip(a.iter().min()).map(|(l, f)| *l - *f);
    a.len() as f64 / span.map_or(1.0, |s| s.as_secs_f64().max(1e-6))
}

/// Pairs of runs, alone then beside, so that both see the same machine; the
/// median of each and of the pairs' ratios.
fn mix() {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let pairs: Vec<(f64, f64)> = (0..PAIRS)
        .map(|_| (healthy_rate(false), healthy_rate(true)))
        .collect();
    for (a, b) in &pairs {
        println!(
            "pair: alone {a:>8.0} req/s, beside {b:>8.0} req/s, ratio {:.3}",
            b / a
        );
    }
    let alone = median(pairs.iter().map(|p| p.0).collect());
    let beside = median(pairs.iter().map(|p| p.1).collect());
    let ratio = median(pairs.iter().map(|p| p.1 / p.0).collect());
    println!("healthy host alone:            {alone:>8.0} req/s (median of {PAIRS})");
    println!("beside a throttler (1 in 16):  {beside:>8.0} req/s (median of {PAIRS})");
    println!("median ratio of the pairs: {ratio:.3}");
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("trace") => trace(),
        Some("mix") => mix(),
        _ => {
            eprintln!("usage: politeness trace|mix");
            std::process::exit(2);
        }
    }
}
