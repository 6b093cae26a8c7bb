//! Re-entrancy of the engine driver: a call that runs other tasks' code at once (a
//! finished request frees its slot and the next request starts inside that call;
//! a freed connection goes to a waiter) must not leave the caller acting on a task
//! or connection index that now names something else. Each test builds on loopback
//! the order of events that reaches one such place, with servers and a handler
//! that hold each step until the one before it is done (no fixed sleeps).

mod common;
use common::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use volley::engine::{Engine, Handler, Outcome, Overrides, Request, RequestSpec, ResponseHead};

/// A handler that runs a hook (once) when the head of a given request arrives,
/// blocking the engine's turn inside that callback.
struct Hooked {
    outcomes: Vec<Outcome>,
    hooks: Vec<(u64, Box<dyn FnMut() + Send>)>,
}

impl Handler for Hooked {
    fn on_head(&mut self, tag: u64, _head: &ResponseHead<'_>) {
        if let Some(i) = self.hooks.iter().position(|(t, _)| *t == tag) {
            let (_, mut hook) = self.hooks.remove(i);
            hook();
        }
    }
    fn on_done(&mut self, outcome: Outcome) {
        self.outcomes.push(outcome);
    }
}

/// One accepted connection of a listener on loopback, served by `script`.
fn serve_one(script: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            script(s);
        }
    });
    url
}

fn wait(rx: &Receiver<()>) {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the step before did not happen");
}

/// Runs `engine` to its end (bounded); outcomes by tag.
fn drive<S: volley::engine::Source>(mut engine: Engine<S, Hooked>) -> Vec<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(Instant::now() < deadline, "engine did not finish in 60 s");
    }
    let (_, h) = engine.into_parts();
    let mut o = h.outcomes;
    o.sort_by_key(|o| o.tag);
    o
}

/// One run of the order below: requests 1 (with a `total` deadline) and 4 to one
/// server, 2 and 3 to their own; outcomes by tag.
fn deadline_read_first_once(total: Duration) -> Vec<Outcome> {
    // The servers of requests 1 and 3 say when they have them: request 2's head
    // comes after that, when the loop has nothing else to handle.
    let (got_tx, got) = channel::<()>();
    let got_x_tx = got_tx.clone();
    // Server A: request 1, then (same connection) request 4.
    let (go_a, a_go) = channel::<()>();
    let (a_sent_tx, a_sent) = channel::<()>();
    let (b_came_tx, b_came) = channel::<()>();
    let a = serve_one(move |mut s| {
        read_request(&mut s).expect("request 1");
        got_tx.send(()).unwrap();
        wait(&a_go);
        s.write_all(&ok_response("one")).unwrap();
        a_sent_tx.send(()).unwrap();
        let b = read_request(&mut s);
        let _ = b_came_tx.send(());
        if b.is_some() {
            let _ = s.write_all(&ok_response("four"));
        }
        // Keep the connection until the client is done with it.
        let _ = read_request(&mut s);
    });
    // Server Y: its head at once, its body once request 4 came (or never will).
    let (y_rest_tx, y_rest) = channel::<()>();
    let y = serve_one(move |mut s| {
        read_request(&mut s).expect("request 2");
        wait(&got);
        wait(&got);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
        wait(&y_rest);
        let _ = s.write_all(b"two");
        let _ = read_request(&mut s);
    });
    // Server X: its head when told, its body once request 4 came.
    let (go_x, x_go) = channel::<()>();
    let (x_sent_tx, x_sent) = channel::<()>();
    let (x_rest_tx, x_rest) = channel::<()>();
    let x = serve_one(move |mut s| {
        read_request(&mut s).expect("request 3");
        got_x_tx.send(()).unwrap();
        wait(&x_go);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        x_sent_tx.send(()).unwrap();
        wait(&x_rest);
        let _ = s.write_all(b"three");
        let _ = read_request(&mut s);
    });
    // Once request 4 reached server A (or its connection ended), Y and X finish.
    thread::spawn(move || {
        let _ = b_came.recv_timeout(Duration::from_secs(30));
        let _ = y_rest_tx.send(());
        let _ = x_rest_tx.send(());
    });
    let hooks: Vec<(u64, Box<dyn FnMut() + Send>)> = vec![
        (
            2,
            Box::new(move || {
                // Request 1 began before this head came: past `total` from now,
                // its deadline is due.
                let until = Instant::now() + total + Duration::from_millis(30);
                while Instant::now() < until {
                    thread::sleep(until.saturating_duration_since(Instant::now()));
                }
                go_x.send(()).unwrap();
                wait(&x_sent);
            }),
        ),
        (
            3,
            Box::new(move || {
                go_a.send(()).unwrap();
                wait(&a_sent);
            }),
        ),
    ];
    let timed = Arc::new(RequestSpec {
        overrides: Some(Arc::new(Overrides {
            total_timeout: Some(Some(total)),
            ..Overrides::default()
        })),
        ..RequestSpec::default()
    });
    let plain = Arc::new(RequestSpec::default());
    let reqs = vec![
        (1, a.clone(), timed),
        (2, y, plain.clone()),
        (3, x, plain.clone()),
        (4, a, plain),
    ];
    let source = reqs
        .into_iter()
        .map(|(tag, url, spec)| Request { tag, url, spec })
        .collect::<Vec<_>>()
        .into_iter()
        .fuse();
    let cfg = volley::engine::Config {
        concurrency: 3,
        retries: 0,
        total_timeout: None,
        ..cfg()
    };
    let handler = Hooked {
        outcomes: Vec::new(),
        hooks,
    };
    let o = drive(Engine::new(cfg, source, handler).unwrap());
    assert_eq!(o.len(), 4, "one outcome per request: {o:?}");
    o
}

/// A total deadline that fires while the response is waiting unread (a busy turn)
/// is not declared: `look_first` reads the response, which finishes the request;
/// its slot starts the next request at once, which takes the same task index and
/// the connection just pooled. The deadline must not then be declared against that
/// new request (it failed with a `--timeout` it never had).
///
/// The order: request 1 (total 300 ms) waits for its answer; request 2's head
/// comes and its handler holds the turn past request 1's deadline; request 3's
/// head came meanwhile, so the next turn handles it, with the clock past the
/// deadline; its handler holds the turn until request 1's whole answer is in the
/// socket; the deadline fires in that turn, before the socket is polled again.
/// A run whose first turn handles one more event after request 2's (the clock is
/// read per event) declares request 1's deadline there, before its answer came:
/// runs repeat (at most 30, about 0.4 s each) until three reached the order.
#[test]
fn a_deadline_read_first_is_not_declared_against_the_request_that_took_its_index() {
    let mut reached = 0;
    for run in 0..30 {
        let o = deadline_read_first_once(Duration::from_millis(300));
        let kinds: Vec<_> = o
            .iter()
            .map(|o| (o.status, o.error.as_ref().map(|e| e.kind)))
            .collect();
        // Request 1 answered (read before its deadline was declared) or timed out
        // (the deadline came first); every other request is answered.
        let ok = (Some(200), None);
        let late = (None, Some(volley::ErrorKind::TotalTimeout));
        assert!(kinds[0] == ok || kinds[0] == late, "run {run}: {o:?}");
        for (i, k) in kinds.iter().enumerate().skip(1) {
            assert_eq!(*k, ok, "run {run}, request {}: {o:?}", i + 1);
        }
        if kinds[0] == ok {
            reached += 1;
            if reached == 3 {
                return;
            }
        }
    }
    assert!(reached > 0, "the order of events was never reached");
}

/// Requests `(tag, url, spec)` as a source.
fn source(
    reqs: Vec<(u64, String, Arc<RequestSpec>)>,
) -> std::iter::Fuse<std::vec::IntoIter<Request>> {
    reqs.into_iter()
        .map(|(tag, url, spec)| Request { tag, url, spec })
        .collect::<Vec<_>>()
        .into_iter()
        .fuse()
}

/// A request with its own total deadline.
fn with_total(total: Duration) -> Arc<RequestSpec> {
    Arc::new(RequestSpec {
        overrides: Some(Arc::new(Overrides {
            total_timeout: Some(Some(total)),
            ..Overrides::default()
        })),
        ..RequestSpec::default()
    })
}

/// An idle connection's timer fires in the same turn as another task's deadline,
/// after it: that deadline fails its task, whose slot starts the next request at
/// once, which takes the idle connection from the pool. The idle timer, already
/// out of the wheel, must not then close the connection that request now uses (it
/// waited for an answer on a closed connection until its read timeout).
///
/// With one slot: request 1 leaves its connection idle (timer at `idle`);
/// request 2 (total 500 ms) gets a head, and its handler holds the turn past both
/// times; request 3, to request 1's server, starts when request 2 fails.
#[test]
fn an_idle_timer_fired_with_a_deadline_does_not_close_the_connection_then_reused() {
    let idle = Duration::from_millis(1500);
    let s = http(|_| ok_response("ok"));
    let z = serve_one(|mut s| {
        read_request(&mut s).expect("request 2");
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        let _ = read_request(&mut s);
    });
    let hooks: Vec<(u64, Box<dyn FnMut() + Send>)> = vec![(
        2,
        Box::new(move || {
            // Request 1's connection went idle before this head came: past `idle`
            // from now, its timer and request 2's deadline are both due.
            let until = Instant::now() + idle + Duration::from_millis(30);
            while Instant::now() < until {
                thread::sleep(until.saturating_duration_since(Instant::now()));
            }
        }),
    )];
    let plain = Arc::new(RequestSpec::default());
    let reqs = source(vec![
        (1, s.url("/1"), plain.clone()),
        (2, z, with_total(Duration::from_millis(500))),
        (3, s.url("/3"), plain),
    ]);
    let cfg = volley::engine::Config {
        concurrency: 1,
        retries: 0,
        idle_timeout: idle,
        read_timeout: Duration::from_secs(2),
        total_timeout: None,
        ..cfg()
    };
    let handler = Hooked {
        outcomes: Vec::new(),
        hooks,
    };
    let o = drive(Engine::new(cfg, reqs, handler).unwrap());
    let kinds: Vec<_> = o
        .iter()
        .map(|o| (o.tag, o.error.as_ref().map(|e| e.kind)))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, None),
            (2, Some(volley::ErrorKind::TotalTimeout)),
            (3, None)
        ],
        "{o:?}"
    );
    assert_eq!((o[0].status, o[2].status), (Some(200), Some(200)), "{o:?}");
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Reads one request head from `r`; None at EOF.
fn head_of(r: &mut impl std::io::BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Some(head);
        }
    }
}

/// A deadline that fires in the same turn as, and after, another's whose handling
/// ended its task (a pipelined request sent again, whose new dial failed at once):
/// the task's slot started the next request, at the same index, before the fired
/// entry was handled. That entry must not be declared against the new request (it
/// failed with a connect timeout while its request waited on a connection).
///
/// Over a Unix socket (a dial fails at once when the socket is gone): request 1 to
/// h.test gets a head, and its handler holds the turn; requests 2 and 3 to a.test
/// are pipelined on one connection, unanswered, and the socket is removed; request
/// 2's read deadline and 3's total are both due when the turn goes on. Request 2
/// fails, 3 is sent again and fails to connect, and request 4 takes 3's index.
#[test]
fn a_deadline_fired_for_a_task_ended_meanwhile_is_not_declared_against_its_successor() {
    use std::io::BufReader;
    use std::os::unix::net::UnixListener;
    let path = std::env::temp_dir().join(format!("volley-reentry-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let (both_tx, both) = channel::<()>();
    let (a_closed_tx, a_closed) = channel::<()>();
    let gone = path.clone();
    // Each connection takes the ends of its role (by its first request's host).
    type Ends = (Option<Sender<()>>, Option<Sender<()>>, Option<Receiver<()>>);
    let ends: Arc<Mutex<Ends>> = Arc::new(Mutex::new((Some(both_tx), Some(a_closed_tx), None)));
    let (h_both, h_closed) = (
        Arc::new(Mutex::new(Some(both))),
        Arc::new(Mutex::new(Some(a_closed))),
    );
    thread::spawn(move || {
        for _ in 0..2 {
            let Ok((s, _)) = l.accept() else { return };
            let (ends, h_both, h_closed) = (ends.clone(), h_both.clone(), h_closed.clone());
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let first = head_of(&mut r).expect("a request");
                if first.contains("Host: a.test") {
                    let (both_tx, a_closed_tx) = {
                        let mut e = ends.lock().unwrap();
                        (e.0.take().unwrap(), e.1.take().unwrap())
                    };
                    // Requests 2 and 3, pipelined: never answered.
                    head_of(&mut r).expect("request 3");
                    both_tx.send(()).unwrap();
                    while head_of(&mut r).is_some() {}
                    let _ = a_closed_tx.send(());
                    return;
                }
                let both = h_both.lock().unwrap().take().unwrap();
                let a_closed = h_closed.lock().unwrap().take().unwrap();
                wait(&both);
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
                    .unwrap();
                wait(&a_closed);
                w.write_all(b"hello").unwrap();
                while head_of(&mut r).is_some() {
                    let _ = w.write_all(&ok_response("four"));
                }
            });
        }
        // Both connections are in: the next dial fails at once.
        let _ = std::fs::remove_file(&gone);
    });
    let hooks: Vec<(u64, Box<dyn FnMut() + Send>)> = vec![(
        1,
        Box::new(move || {
            // Requests 2 and 3 began before this head came: past 600 ms from now
            // request 2's read deadline (300 ms) and 3's total (500 ms) are due.
            let until = Instant::now() + Duration::from_millis(600);
            while Instant::now() < until {
                thread::sleep(until.saturating_duration_since(Instant::now()));
            }
        }),
    )];
    let patient = Arc::new(RequestSpec {
        overrides: Some(Arc::new(Overrides {
            read_timeout: Some(Duration::from_secs(10)),
            ..Overrides::default()
        })),
        ..RequestSpec::default()
    });
    let plain = Arc::new(RequestSpec::default());
    let reqs = source(vec![
        (1, "http://h.test/1".into(), patient.clone()),
        (2, "http://a.test/2".into(), plain),
        (
            3,
            "http://a.test/3".into(),
            with_total(Duration::from_millis(500)),
        ),
        (4, "http://h.test/4".into(), patient),
    ]);
    let cfg = volley::engine::Config {
        unix_socket: Some(Arc::new(path.clone())),
        concurrency: 3,
        per_host: 1,
        pipeline: 2,
        adapt: false,
        retries: 0,
        read_timeout: Duration::from_millis(300),
        total_timeout: None,
        ..cfg()
    };
    let handler = Hooked {
        outcomes: Vec::new(),
        hooks,
    };
    let o = drive(Engine::new(cfg, reqs, handler).unwrap());
    let _ = std::fs::remove_file(&path);
    let kinds: Vec<_> = o
        .iter()
        .map(|o| (o.tag, o.status, o.error.as_ref().map(|e| e.kind)))
        .collect();
    use volley::ErrorKind::{Connect, ReadTimeout};
    assert_eq!(
        kinds,
        [
            (1, Some(200), None),
            (2, None, Some(ReadTimeout)),
            (3, None, Some(Connect)),
            (4, Some(200), None)
        ],
        "{o:?}"
    );
}
