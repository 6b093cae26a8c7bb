//! "One honest answer per URL" and "`--per-host` is a total" for engines that run as
//! one — the binary's `--workers` — property-tested: 2–3 engines, each on its own
//! thread with a clone of one `Config` (so one `engine::Shared`), pull requests from
//! one shared source as the binary's workers pull from its input stream, to loopback
//! hosts of random behaviours (`tests/outcomes/hosts.rs`), under random options.
//!
//! Invariants checked for every run:
//! - every request gets exactly one `on_done`, in exactly one engine, within a hard
//!   limit (a hang fails the case), of a kind its host's behaviour allows;
//! - no host sees more than `per_host` connections open at once over all engines
//!   (counted on the server's side, see `tests/workers/counted.rs`).
//!
//! Each engine is stepped with `step(Some(100 ms))`; servers and the fake DNS server
//! run here on loopback, and every server thread's waits are bounded.

#[path = "common/mod.rs"]
mod base;
#[path = "workers/counted.rs"]
mod common;
// Not every behaviour is drawn here.
#[allow(dead_code)]
#[path = "outcomes/hosts.rs"]
mod hosts;

use common::{peak, Collect};
use hosts::Behaviour;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine, Request, RequestSpec, Source};
use volley::ErrorKind;

/// The hard limit of a run of `n` requests: 20 s, or more for long runs (one at a
/// time to a host too slow to answer, with two retries, takes 1.5 s each).
fn limit(n: usize) -> Duration {
    Duration::from_secs(20).max(Duration::from_millis(1600) * n as u32)
}

/// One source shared by the engines of a run, like the binary's input stream:
/// each engine pulls the next request when it has room for one, and the end of the
/// input is known only once `ended` is set (the reader saw the end of its input),
/// possibly after the last request was pulled. `late` counts the times the source,
/// empty, still answers "not exhausted" before it sets `ended` itself.
#[derive(Clone, Default)]
struct Stream {
    queue: Arc<Mutex<VecDeque<Request>>>,
    ended: Arc<AtomicBool>,
    late: Arc<AtomicU32>,
}

impl Source for Stream {
    fn next_request(&mut self) -> Option<Request> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    fn is_exhausted(&self) -> bool {
        if !self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            return false;
        }
        let late = self.late.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if late.is_err() {
            self.ended.store(true, SeqCst);
        }
        self.ended.load(SeqCst)
    }
}

/// Runs `urls` (tags 1..), their end known `late` (see [`Stream`]), on `workers`
/// engines built from clones of `c` (its
/// concurrency divided among them as the binary divides it), each on its own thread
/// under the hard limit; all outcomes sorted by tag, or why the run is wrong: an
/// engine hung, or a request got no outcome or more than one.
fn drive(c: &Config, workers: usize, late: u32, urls: &[String]) -> Result<Collect, String> {
    let spec = Arc::new(RequestSpec::default());
    let queue: VecDeque<Request> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| Request {
            tag: i as u64 + 1,
            url: u.clone(),
            spec: spec.clone(),
        })
        .collect();
    let source = Stream {
        queue: Arc::new(Mutex::new(queue)),
        late: Arc::new(AtomicU32::new(late)),
        ..Stream::default()
    };
    let until = Instant::now() + limit(urls.len());
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let mut c = c.clone();
            c.concurrency =
                (c.concurrency / workers + usize::from(w < c.concurrency % workers)).max(1);
            let source = source.clone();
            std::thread::spawn(move || -> Result<Collect, String> {
                let mut e =
                    Engine::new(c, source, Collect::default()).map_err(|x| x.to_string())?;
                while e
                    .step(Some(Duration::from_millis(100)))
                    .map_err(|x| x.to_string())?
                {
                    if Instant::now() > until {
                        let done: Vec<u64> = e.handler().outcomes.iter().map(|o| o.tag).collect();
                        return Err(format!(
                            "worker {w} hung: done {done:?}, stats {:?}",
                            e.stats()
                        ));
                    }
                }
                let (_, r) = e.into_parts();
                Ok(r)
            })
        })
        .collect();
    let mut all = Collect::default();
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(r)) => {
                all.outcomes.extend(r.outcomes);
                for (tag, body) in r.bodies {
                    if all.bodies.insert(tag, body).is_some() {
                        errors.push(format!("request {tag} had a body in two engines"));
                    }
                }
            }
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("an engine panicked".to_string()),
        }
    }
    all.outcomes.sort_by_key(|o| o.tag);
    let tags: Vec<u64> = all.outcomes.iter().map(|o| o.tag).collect();
    let want: Vec<u64> = (1..=urls.len() as u64).collect();
    if tags != want {
        errors.push(format!("outcomes by tag {tags:?}, want {want:?}"));
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(errors.join("; "))
    }
}

/// A scenario's hosts (named `h<h>.w.test`), their servers and fake DNS; the
/// config (timeouts small), the URLs of its run, and each host's port.
fn setup(hosts: &[Behaviour], picks: &[usize]) -> (Config, Vec<String>, Vec<u16>) {
    hosts::setup(hosts, picks, "w.test")
}

/// Every outcome is of a kind its host allows under `c`: a 200 with the request's
/// path as the body, another status the host may end with, or one of the host's
/// error kinds (never `Cancelled`: nothing is cancelled here).
fn check_kinds(
    r: &Collect,
    c: &Config,
    hosts: &[Behaviour],
    picks: &[usize],
) -> Result<(), String> {
    for o in &r.outcomes {
        let b = hosts[picks[o.tag as usize - 1] % hosts.len()];
        match o.error.as_ref().map(|e| e.kind) {
            None if o.status.is_some_and(|s| b.other_status(c, s)) => {}
            None if b.answers() => {
                let body = r.bodies.get(&o.tag).cloned().unwrap_or_default();
                if o.status != Some(200) || body != format!("/p{}", o.tag).as_bytes() {
                    return Err(format!(
                        "{b:?}: wrong answer {o:?} (body {:?})",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Some(k) if k != ErrorKind::Cancelled && b.kinds(c).contains(&k) => {}
            _ => return Err(format!("{b:?}: unexpected outcome {o:?}")),
        }
    }
    Ok(())
}

/// No host's port saw more than `c.per_host` connections open at once (confirmed;
/// see `tests/workers/counted.rs`).
fn check_open(c: &Config, hosts: &[Behaviour], ports: &[u16]) -> Result<(), String> {
    for (b, &port) in hosts.iter().zip(ports) {
        let (seen, confirmed) = peak(port);
        if seen > c.per_host && std::env::var_os("WORKERS_SEEN").is_some() {
            eprintln!(
                "{b:?} (port {port}): seen {seen} open at once, per_host {}",
                c.per_host
            );
        }
        if confirmed > c.per_host {
            return Err(format!(
                "{b:?} (port {port}): {confirmed} connections open at once (seen {seen}), \
                 per_host {}",
                c.per_host
            ));
        }
    }
    Ok(())
}

/// The options a case draws.
#[derive(Debug, Clone, Copy)]
struct Knobs {
    workers: usize,
    pipeline: usize,
    per_host: usize,
    concurrency: usize,
    retries: u32,
    keepalive: bool,
    adapt: bool,
    rate_per_host: f64,
    /// The input's end is known this late (see [`Stream`]): 0 as from a file.
    late: u32,
}

impl Knobs {
    /// `c` with these options.
    fn apply(self, c: Config) -> Config {
        Config {
            pipeline: self.pipeline,
            per_host: self.per_host,
            concurrency: self.concurrency,
            retries: self.retries,
            keepalive: self.keepalive,
            adapt: self.adapt,
            rate_per_host: self.rate_per_host,
            ..c
        }
    }
}

/// One scenario, run and checked: `Err` says what went wrong.
fn scenario(hosts: &[Behaviour], picks: &[usize], k: Knobs) -> Result<(), String> {
    let (c, urls, ports) = setup(hosts, picks);
    let c = k.apply(c);
    let r = drive(&c, k.workers, k.late, &urls)?;
    check_kinds(&r, &c, hosts, picks)?;
    check_open(&c, hosts, &ports)
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        4 => Just(Behaviour::Normal),
        2 => Just(Behaviour::Slow),
        2 => (1usize..3).prop_map(Behaviour::CloseAfter),
        1 => Just(Behaviour::ConnClose),
        3 => (prop_oneof![Just(429u16), Just(503u16)], 0u8..=1, 1usize..=3)
            .prop_map(|(status, after, times)| Behaviour::Throttle { status, after, times }),
        1 => Just(Behaviour::Refused),
        2 => (prop_oneof![Just(301u16), Just(302u16), Just(307u16)], any::<bool>())
            .prop_map(|(status, elsewhere)| Behaviour::Redirect { status, elsewhere }),
        1 => Just(Behaviour::RedirectLoop),
        1 => (50u64..250).prop_map(Behaviour::DnsLate),
        1 => Just(Behaviour::Http10),
        1 => prop_oneof![
            Just(Behaviour::CutLength),
            Just(Behaviour::ResetMidBody),
            Just(Behaviour::Garbage),
        ],
    ]
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (2usize..=3, 1usize..=3, 1usize..=3, 1usize..=6),
        (
            0u32..=2,
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.4),
            prop::bool::weighted(0.3),
        ),
    )
        .prop_map(
            |((workers, pipeline, per_host, concurrency), (retries, keepalive, adapt, paced))| {
                Knobs {
                    workers,
                    pipeline,
                    per_host,
                    concurrency,
                    retries,
                    keepalive,
                    adapt,
                    rate_per_host: if paced { 40.0 } else { 0.0 },
                    late: 0,
                }
            },
        )
}

proptest! {
    // A hung case costs its limit a try: shrinking stops after 2 minutes.
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 32,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    /// 2–3 engines sharing one `Shared` and one source, up to 12 requests to 1–3
    /// hosts of random behaviours, under random options: every request gets exactly
    /// one outcome, in bounded time, of a kind its host allows, and no host sees
    /// more than `per_host` connections open at once.
    #[test]
    fn engines_sharing_state_give_one_allowed_outcome_each_within_per_host(
        hosts in prop::collection::vec(behaviour(), 1..=3),
        picks in prop::collection::vec(0usize..3, 2..=12),
        k in knobs(),
    ) {
        if let Err(e) = scenario(&hosts, &picks, k) {
            return Err(TestCaseError::fail(e));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        max_shrink_iters: 32,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    /// Denser runs: 8–24 requests to one or two hosts, so that the engines queue
    /// for the same hosts' slots and hand them to each other (`Note::Freed`,
    /// `Note::Wanted`) often.
    #[test]
    fn engines_contending_for_few_hosts_give_one_allowed_outcome_each_within_per_host(
        hosts in prop::collection::vec(behaviour(), 1..=2),
        picks in prop::collection::vec(0usize..2, 8..=24),
        k in knobs(),
    ) {
        if let Err(e) = scenario(&hosts, &picks, k) {
            return Err(TestCaseError::fail(e));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 32,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    /// As the first proptest, with the input's end known late, as from a pipe: an
    /// engine may pull its last request, finish it and keep its connections idle
    /// before it learns that no more will come.
    ///
    /// A case could hang on the engine bug `an_engine_that_ends_frees_its_idle_slots_for_the_others`
    /// shows (fixed).
    #[test]
    fn engines_with_a_streaming_input_give_one_allowed_outcome_each_within_per_host(
        hosts in prop::collection::vec(behaviour(), 1..=3),
        picks in prop::collection::vec(0usize..3, 2..=12),
        k in knobs(),
        late in 1u32..=6,
    ) {
        if let Err(e) = scenario(&hosts, &picks, Knobs { late, ..k }) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// The checkers can fail: two connections held open at once to a host are seen
/// (so `per_host 1` is caught exceeded), and a host that never answers does not
/// pass as one that answers 200.
#[test]
fn the_checkers_reject_what_a_run_must_not_do() {
    let hosts = [Behaviour::Normal];
    let (c, urls, ports) = setup(&hosts, &[0]);
    let c = Config { per_host: 1, ..c };
    let a = std::net::TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
    let b = std::net::TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
    // Both accepted and tracked: the second accept counted two.
    let until = Instant::now() + Duration::from_secs(5);
    while peak(ports[0]).0 < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(peak(ports[0]), (2, 2));
    assert!(check_open(&c, &hosts, &ports).is_err());
    assert!(check_open(
        &Config {
            per_host: 2,
            ..c.clone()
        },
        &hosts,
        &ports
    )
    .is_ok());
    drop((a, b));
    let r = drive(&c, 2, 0, &urls).unwrap();
    check_kinds(&r, &c, &hosts, &[0]).unwrap();
    assert!(check_kinds(&r, &c, &[Behaviour::Slow], &[0]).is_err());
    assert!(check_kinds(&r, &c, &[Behaviour::Refused], &[0]).is_err());
}

/// Shrunk from the streaming case: `--per-host 1`, two engines, a streaming input
/// whose end is seen after its last request was pulled. Engine A's request to N
/// finishes while the input may still grow: its connection to N stays idle
/// (counted in `Shared`). The input then ends; A's next `step` sees it in `fill`
/// and returns `false` at once (`is_finished`), before `close_unneeded_idle`: A is
/// dropped with N's slot still counted. Engine B's request to S is redirected to N:
/// `try_open` is refused forever (nobody is left to free the slot, no deadline
/// runs while waiting for a slot) and B hangs. Engines stepped in turn on this
/// thread, so the order is exact; fails in every run on main.
#[test]
fn an_engine_that_ends_frees_its_idle_slots_for_the_others() {
    let (c, _, _) = setup(&[Behaviour::Normal], &[0]);
    let n = hosts::keepalive(|p| Some(hosts::answer(p, "", "1.1")));
    let to = format!("http://h0.w.test:{n}");
    let s = hosts::keepalive(move |p| {
        Some(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}{p}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes(),
        )
    });
    let c = Config {
        per_host: 1,
        concurrency: 1,
        ..c
    };
    let spec = Arc::new(RequestSpec::default());
    let req = |tag: u64, url: String| Request {
        tag,
        url,
        spec: spec.clone(),
    };
    for run in 0..3 {
        // Inputs whose end is set by the test, not by the source.
        let stream = || Stream {
            late: Arc::new(AtomicU32::new(u32::MAX)),
            ..Stream::default()
        };
        let (sa, sb) = (stream(), stream());
        sa.queue
            .lock()
            .unwrap()
            .push_back(req(1, format!("http://h0.w.test:{n}/p1")));
        let mut a = Engine::new(c.clone(), sa.clone(), Collect::default()).unwrap();
        let mut b = Engine::new(c.clone(), sb.clone(), Collect::default()).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        // A answers its request; the input may still grow: its connection stays idle.
        while a.handler().outcomes.is_empty() {
            assert!(a.step(Some(Duration::from_millis(50))).unwrap());
            assert!(Instant::now() < until, "run {run}: A did not finish");
        }
        assert_eq!(a.stats().idle, 1, "run {run}: A keeps its connection to N");
        // The input ends: A ends.
        sa.ended.store(true, SeqCst);
        while a.step(Some(Duration::from_millis(50))).unwrap() {
            assert!(Instant::now() < until, "run {run}: A did not end");
        }
        drop(a);
        // B's request is redirected to N: it must get N's slot.
        sb.queue
            .lock()
            .unwrap()
            .push_back(req(2, format!("http://h1.w.test:{s}/p2")));
        sb.ended.store(true, SeqCst);
        let until = Instant::now() + Duration::from_secs(5);
        while b.step(Some(Duration::from_millis(50))).unwrap() {
            assert!(
                Instant::now() < until,
                "run {run}: B hung waiting for N's slot: {:?}",
                b.stats()
            );
        }
        let o = &b.handler().outcomes;
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].status, o[0].error.is_none()),
            (Some(200), true),
            "run {run}"
        );
    }
}
