//! The tests of `host.rs`: the policy as tables, and its invariants as a property.

use super::*;

fn policy(ceiling: usize) -> Policy {
    Policy {
        adapt: true,
        ceiling,
        max_retry_after: Duration::from_secs(60),
        backoff: Duration::from_millis(200),
        rate_per_host: 0.0,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Starts and finishes one request sent at `sent` and ending at `end`.
fn one(h: &mut HostState, p: &Policy, sent: Instant, end: Instant, s: Signal) {
    h.started(p, sent);
    h.finished(p, end, sent, s);
}

/// A success with the host kept at its limit: topped up with requests sent at
/// `t`, then one of them succeeds.
fn success_at_limit(h: &mut HostState, p: &Policy, t: Instant) {
    while h.in_flight() < h.limit() {
        h.started(p, t);
    }
    h.finished(p, t, t, Signal::Success);
}

#[test]
fn push_back_pauses_for_retry_after_and_halves() {
    let p = policy(8);
    let t = Instant::now();
    let mut h = HostState::new(&p);
    assert_eq!(h.admit(&p, t), Admit::Go);
    for _ in 0..6 {
        h.started(&p, t);
    }
    // Seven in flight: halved to 4 (the cap is 6).
    one(&mut h, &p, t, t + ms(10), Signal::PushBack(Some(ms(1000))));
    assert_eq!(h.limit(), 4);
    assert_eq!(h.pushbacks(), 1);
    for _ in 0..6 {
        h.finished(&p, t + ms(10), t, Signal::Neutral);
    }
    assert_eq!(h.admit(&p, t + ms(500)), Admit::Until(t + ms(1010)));
    assert_eq!(h.paused_until(t + ms(500)), Some(t + ms(1010)));
    assert_eq!(h.admit(&p, t + ms(1010)), Admit::Go);
    assert_eq!(h.longest_pause(), ms(1000));
}

#[test]
fn table_of_pauses() {
    // (retry_after, strikes before, cap, expected pause)
    let table = [
        (Some(ms(1000)), 0, 60_000, ms(1000)),
        (Some(ms(90_000)), 0, 60_000, ms(60_000)),
        (None, 0, 60_000, ms(200)),
        (None, 1, 60_000, ms(400)),
        (None, 3, 60_000, ms(1600)),
        (None, 20, 60_000, MAX_BACKOFF),
        (None, 20, 5_000, ms(5000)),
        (Some(ms(0)), 0, 60_000, ms(0)),
    ];
    for (i, (ra, strikes, cap, want)) in table.into_iter().enumerate() {
        let p = Policy {
            max_retry_after: ms(cap),
            ..policy(64)
        };
        let mut h = HostState::new(&p);
        let mut t = Instant::now();
        for _ in 0..strikes {
            // Push-backs in a row, each after the previous pause, each a new event.
            one(&mut h, &p, t, t, Signal::PushBack(Some(ms(0))));
            t += ms(1);
        }
        one(&mut h, &p, t, t, Signal::PushBack(ra));
        let got = h.paused_until(t).map_or(ms(0), |u| u - t);
        assert_eq!(got, want, "row {i}");
    }
}

#[test]
fn one_event_cuts_once_but_may_lengthen_the_pause() {
    let p = policy(16);
    let t = Instant::now();
    let mut h = HostState::new(&p);
    for _ in 0..8 {
        h.started(&p, t);
    }
    // All eight were in flight when the first 429 came back.
    h.finished(&p, t + ms(10), t, Signal::PushBack(Some(ms(1000))));
    for i in 1..8 {
        h.finished(&p, t + ms(10 + i), t, Signal::PushBack(Some(ms(1000))));
    }
    // Halved to 8, and capped at the 8 held − 1; once.
    assert_eq!(h.limit(), 7, "one cut for one event");
    assert_eq!(h.pushbacks(), 8);
    assert_eq!(h.paused_until(t), Some(t + ms(1017)));
    assert_eq!(h.longest_pause(), ms(1007));
    // A request sent after the cut that is pushed back again cuts again.
    let later = t + ms(1100);
    h.started(&p, later);
    h.started(&p, later);
    one(&mut h, &p, later, later, Signal::PushBack(None));
    assert_eq!(h.limit(), 2, "7 / 2 = 3, capped at the 3 held − 1");
}

#[test]
fn grows_by_one_per_window_up_to_the_cap_then_probes_to_the_ceiling() {
    let p = policy(8);
    let mut t = Instant::now();
    let mut h = HostState::new(&p);
    // Pushed back with 5 in flight: the cap is 4, the limit 8 / 2 = 4.
    for _ in 0..5 {
        h.started(&p, t);
    }
    h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
    for _ in 0..4 {
        h.finished(&p, t, t, Signal::Neutral);
    }
    assert_eq!(h.limit(), 4);
    // Pushed back again with one in flight: the cap is 1 (at least MIN_LIMIT).
    t += ms(1);
    one(&mut h, &p, t, t, Signal::PushBack(Some(ms(0))));
    assert_eq!(h.limit(), 1);
    let mut limits = Vec::new();
    for _ in 0..1000 {
        t += ms(1);
        success_at_limit(&mut h, &p, t);
        limits.push(h.limit());
    }
    // At the cap (1): a probe after PROBE_WINDOW successes, then one per
    // window up to the new cap, and so on; never above the ceiling.
    let w = GROW_WINDOW as usize;
    let probe = PROBE_WINDOW as usize;
    assert_eq!(limits[probe - 2], 1);
    assert_eq!(limits[probe - 1], 2);
    assert_eq!(limits[2 * probe - 2], 2);
    assert_eq!(limits[2 * probe - 1], 3);
    assert!(limits.iter().all(|&l| l <= 8));
    assert_eq!(limits[999], 8, "probed up to the ceiling");
    assert!(
        limits.windows(w).all(|x| x[w - 1] <= x[0] + 1),
        "one per window"
    );
    // With a cap learned high, growth is one per window.
    let mut h = HostState::new(&p);
    for _ in 0..8 {
        h.started(&p, t);
    }
    h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
    for _ in 0..7 {
        h.finished(&p, t, t, Signal::Neutral);
    }
    assert_eq!(h.limit(), 4);
    let mut limits = Vec::new();
    for _ in 0..40 {
        t += ms(1);
        success_at_limit(&mut h, &p, t);
        limits.push(h.limit());
    }
    assert_eq!((limits[8], limits[9], limits[19], limits[29]), (4, 5, 6, 7));
    assert_eq!(limits[39], 7, "the cap: one below the level pushed back");
}

#[test]
fn successes_below_the_limit_do_not_grow_it() {
    let p = policy(8);
    let mut t = Instant::now();
    let mut h = HostState::new(&p);
    for _ in 0..4 {
        h.started(&p, t);
    }
    h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
    for _ in 0..3 {
        h.finished(&p, t, t, Signal::Neutral);
    }
    assert_eq!(h.limit(), 3);
    // One request at a time against a limit of 3: the limit is not what holds
    // the host back, so it is not evidence for more.
    for _ in 0..100 {
        t += ms(1);
        one(&mut h, &p, t, t, Signal::Success);
    }
    assert_eq!(h.limit(), 3);
    for _ in 0..GROW_WINDOW {
        t += ms(1);
        success_at_limit(&mut h, &p, t);
    }
    assert_eq!(h.limit(), 3, "at the cap (4 held − 1)");
}

#[test]
fn successes_from_before_the_cut_or_during_the_pause_do_not_grow() {
    let p = policy(8);
    let t = Instant::now();
    let mut h = HostState::new(&p);
    for _ in 0..30 {
        h.started(&p, t);
    }
    h.finished(&p, t + ms(5), t, Signal::PushBack(Some(ms(100))));
    for _ in 0..29 {
        h.finished(&p, t + ms(200), t, Signal::Success);
    }
    assert_eq!(h.limit(), 4, "old requests' successes");
    for _ in 0..GROW_WINDOW {
        one(&mut h, &p, t + ms(50), t + ms(60), Signal::Success);
    }
    assert_eq!(h.limit(), 4, "successes during the pause");
}

#[test]
fn a_run_of_troubles_is_a_push_back_and_a_response_breaks_the_run() {
    let p = policy(8);
    let mut t = Instant::now();
    let mut h = HostState::new(&p);
    for _ in 0..TROUBLE_RUN - 1 {
        one(&mut h, &p, t, t, Signal::Trouble);
    }
    one(&mut h, &p, t, t, Signal::Success);
    one(&mut h, &p, t, t, Signal::Neutral);
    for _ in 0..TROUBLE_RUN - 1 {
        one(&mut h, &p, t, t, Signal::Trouble);
    }
    assert_eq!((h.limit(), h.is_paused(t)), (8, false));
    t += ms(1);
    for _ in 0..6 {
        h.started(&p, t);
    }
    one(&mut h, &p, t, t, Signal::Trouble);
    assert_eq!(h.limit(), 4);
    assert_eq!(h.paused_until(t), Some(t + ms(200)));
    assert_eq!(h.pushbacks(), 0, "troubles are not 429/503s");
}

#[test]
fn limit_holds_requests_in_flight_below_the_ceiling() {
    let p = policy(4);
    let t = Instant::now();
    let mut h = HostState::new(&p);
    for _ in 0..6 {
        h.started(&p, t);
    }
    assert_eq!(
        h.admit(&p, t),
        Admit::Go,
        "at the ceiling, -c and --per-host hold"
    );
    h.finished(&p, t, t, Signal::PushBack(Some(ms(0))));
    assert_eq!(h.limit(), 2);
    assert_eq!(h.admit(&p, t), Admit::Full);
    for _ in 0..3 {
        h.finished(&p, t, t, Signal::Neutral);
    }
    assert_eq!(h.admit(&p, t), Admit::Full, "two in flight");
    h.finished(&p, t, t, Signal::Neutral);
    assert_eq!(h.admit(&p, t), Admit::Go);
}

#[test]
fn no_adapt_only_counts() {
    let p = Policy {
        adapt: false,
        ..policy(2)
    };
    let t = Instant::now();
    let mut h = HostState::new(&p);
    one(&mut h, &p, t, t, Signal::PushBack(Some(ms(5000))));
    for _ in 0..5 {
        h.started(&p, t);
    }
    assert_eq!(h.admit(&p, t), Admit::Go);
    assert_eq!((h.limit(), h.pushbacks(), h.is_paused(t)), (2, 1, false));
}

#[test]
fn rate_per_host_paces_without_bursts() {
    let p = Policy {
        rate_per_host: 10.0,
        ..policy(100)
    };
    let t0 = Instant::now();
    let mut h = HostState::new(&p);
    let mut now = t0;
    let mut starts = 0;
    while now < t0 + Duration::from_secs(5) {
        match h.admit(&p, now) {
            Admit::Go => {
                h.started(&p, now);
                h.finished(&p, now, now, Signal::Success);
                starts += 1;
            }
            Admit::Until(at) => now = at,
            Admit::Full => unreachable!(),
        }
    }
    assert!((50..=51).contains(&starts), "{starts}");
    // Idle for a minute: still one start, then wait an interval.
    let later = now + Duration::from_secs(60);
    assert_eq!(h.admit(&p, later), Admit::Go);
    h.started(&p, later);
    assert_eq!(h.admit(&p, later), Admit::Until(later + ms(100)));
}

#[test]
fn idle_states_may_be_dropped() {
    let p = policy(4);
    let t = Instant::now();
    let mut h = HostState::new(&p);
    assert!(h.is_idle(&p, t));
    h.started(&p, t);
    assert!(!h.is_idle(&p, t));
    h.finished(&p, t, t, Signal::Success);
    assert!(h.is_idle(&p, t));
    one(&mut h, &p, t, t, Signal::PushBack(None));
    assert!(
        !h.is_idle(&p, t + Duration::from_secs(3600)),
        "kept for the summary"
    );
}

proptest::proptest! {
    /// Whatever happens, the limit stays within [MIN_LIMIT, ceiling], a pause
    /// never shrinks, and a host is never admitted above its limit.
    #[test]
    fn limit_and_pause_invariants(
        ceiling in 1usize..20,
        adapt: bool,
        ops in proptest::collection::vec((0u8..6, 0u64..3000), 0..200),
    ) {
        let p = Policy { adapt, ..policy(ceiling) };
        let mut h = HostState::new(&p);
        let mut now = Instant::now();
        let mut sent: Vec<Instant> = Vec::new();
        for (op, n) in ops {
            now += ms(n % 50);
            let before = h.paused_until;
            match op {
                0 | 1 => {
                    if h.admit(&p, now) == Admit::Go {
                        h.started(&p, now);
                        sent.push(now);
                    }
                }
                _ if sent.is_empty() => {}
                2 => h.finished(&p, now, sent.remove(0), Signal::Success),
                3 => h.finished(&p, now, sent.remove(0), Signal::PushBack(Some(ms(n)))),
                4 => h.finished(&p, now, sent.remove(0), Signal::PushBack(None)),
                _ => h.finished(&p, now, sent.remove(0), Signal::Trouble),
            }
            proptest::prop_assert!(h.limit() >= MIN_LIMIT && h.limit() <= ceiling);
            proptest::prop_assert_eq!(h.in_flight(), sent.len());
            if adapt && h.admit(&p, now) == Admit::Go {
                proptest::prop_assert!(
                    h.in_flight() < h.limit() || h.limit() == ceiling
                );
            }
            if let (Some(b), Some(a)) = (before, h.paused_until) {
                proptest::prop_assert!(a >= b);
            }
            if let Some(u) = h.paused_until(now) {
                proptest::prop_assert!(u <= now + p.max_retry_after);
            }
        }
    }
}
