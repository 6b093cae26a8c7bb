//! The library's embedder features against loopback servers: the engine driven from
//! a tokio loop (examples/tokio_loop.rs), `as_raw_fd` and `next_timeout`.

mod common;
#[path = "../examples/tokio_loop.rs"]
mod tokio_loop;

use common::*;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use volley::engine::{Engine, Request, RequestSpec};

#[test]
fn tokio_example_fetches_through_asyncfd() {
    let srv = http(|p| ok_response(&format!("hello {p}")));
    let mut urls: Vec<String> = (0..20).map(|i| srv.url(&format!("/r{i}"))).collect();
    urls.push(format!("http://{}/", closed_port()));
    let cfg = volley::engine::Config {
        concurrency: 4,
        retries: 0,
        ..cfg()
    };
    let mut outs = tokio_loop::fetch_all(cfg, urls, Arc::default()).unwrap();
    outs.sort_by_key(|o| o.tag);
    assert_eq!(outs.len(), 21);
    for o in &outs[..20] {
        assert_eq!(o.status, Some(200), "{o:?}");
        assert_eq!(o.bytes, format!("hello /r{}", o.tag - 1).len() as u64);
    }
    assert_eq!(
        outs[20].error.as_ref().map(|e| e.kind),
        Some(volley::ErrorKind::ConnectRefused)
    );
}

#[test]
fn tokio_tasks_keep_running_while_a_request_waits() {
    // The server answers only once the tokio ticker (on the engine's loop) has ticked
    // five times while the request waits: if the engine blocked the loop, the ticker
    // could not tick and the request would time out instead.
    let ticks = Arc::new(AtomicU64::new(0));
    let seen = ticks.clone();
    let srv = server(move |_, mut s, _| {
        if read_request(&mut s).is_some() {
            let start = seen.load(Ordering::SeqCst);
            let limit = Instant::now() + Duration::from_secs(10);
            while seen.load(Ordering::SeqCst) < start + 5 && Instant::now() < limit {
                std::thread::yield_now();
            }
            let _ = s.write_all(&ok_response("late"));
        }
    });
    let outs = tokio_loop::fetch_all(cfg(), vec![srv.url("/slow")], ticks.clone()).unwrap();
    assert_eq!(outs[0].status, Some(200), "{:?}", outs[0]);
    assert!(ticks.load(Ordering::SeqCst) >= 5);
}

#[test]
fn next_timeout_and_fd() {
    let srv = http(|_| ok_response("x"));
    let spec = Arc::new(RequestSpec::default());
    let reqs = vec![Request {
        tag: 1,
        url: srv.url("/"),
        spec,
    }];
    let mut e = Engine::new(cfg(), reqs.into_iter().fuse(), Collect::default()).unwrap();
    assert!(e.as_raw_fd() >= 0);
    // Before the first turn nothing is armed; after it, the connect deadline is.
    assert_eq!(e.next_timeout(), None);
    e.step(Some(Duration::ZERO)).unwrap();
    let t = e
        .next_timeout()
        .expect("a request in flight has a deadline");
    assert!(t <= cfg().total_timeout.unwrap());
    while e.step(Some(Duration::from_millis(100))).unwrap() {}
    assert_eq!(e.next_timeout(), None, "finished: nothing to wait for");
    assert_eq!(e.handler().outcomes[0].status, Some(200));
}
