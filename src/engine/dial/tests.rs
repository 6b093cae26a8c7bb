//! The tests of `dial.rs`: the dialer driven by hand over loopback sockets —
//! resolution answers, address policy, connect, the proxy tunnel and TLS.

use super::*;
use crate::cidr::{AddressPolicy, Cidr};
use std::net::{IpAddr, TcpListener};

fn ctx<'a>(cfg: &'a Config, target: &'a Target, tls: &'a Arc<rustls::ClientConfig>) -> Ctx<'a> {
    Ctx {
        cfg,
        target,
        tls,
        now: Instant::now(),
    }
}

fn tls() -> Arc<rustls::ClientConfig> {
    crate::tls::client_config(&crate::tls::TlsOptions::default()).unwrap()
}

fn addrs(list: &[&str]) -> Addrs {
    list.iter()
        .map(|a| a.parse::<IpAddr>().unwrap())
        .collect::<Vec<_>>()
        .into()
}

#[test]
fn every_address_denied_is_final() {
    let cfg = Config {
        addresses: AddressPolicy {
            allow: vec![],
            deny: vec![Cidr::parse("127.0.0.0/8").unwrap()],
        },
        ..Config::default()
    };
    let (t, tls) = (Target::parse("http://a.test/").unwrap(), tls());
    let mut d = Dialer::new(Instant::now());
    assert!(d.resolving());
    let mut timings = Timings::default();
    match d.resolved(
        addrs(&["127.0.0.1", "127.0.0.2"]),
        ctx(&cfg, &t, &tls),
        &mut timings,
    ) {
        Step::Failed { error, final_ } => {
            assert!(final_);
            assert_eq!(error.kind, ErrorKind::Denied);
            assert_eq!(
                    error.detail,
                    "every address of a.test (127.0.0.1, 127.0.0.2) is outside --allow or inside --deny"
                );
        }
        s => panic!("{s:?}"),
    }
    assert!(timings.dns.is_none(), "a denied answer reports no dns time");
}

#[test]
fn no_address_fails_retryably() {
    let cfg = Config::default();
    let (t, tls) = (Target::parse("http://a.test/").unwrap(), tls());
    let mut d = Dialer::new(Instant::now());
    let mut timings = Timings::default();
    match d.resolved(addrs(&[]), ctx(&cfg, &t, &tls), &mut timings) {
        Step::Failed { error, final_ } => {
            assert!(!final_);
            assert_eq!(error.kind, ErrorKind::Connect);
        }
        s => panic!("{s:?}"),
    }
    assert!(timings.dns.is_some());
}

#[test]
fn addresses_in_order_then_the_last_error() {
    // A listener's port, then closed: connects there are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = Config::default();
    let (t, tls) = (
        Target::parse(&format!("http://a.test:{port}/")).unwrap(),
        tls(),
    );
    let mut d = Dialer::new(Instant::now());
    let mut timings = Timings::default();
    let mut rbuf = [0u8; 512];
    let mut step = d.resolved(
        addrs(&["127.0.0.1", "127.0.0.2"]),
        ctx(&cfg, &t, &tls),
        &mut timings,
    );
    let mut peers = Vec::new();
    let mut dropped = Vec::new();
    let end = loop {
        step = match step {
            Step::Open(mut conn) => {
                let c = peers.len();
                peers.push(conn.peer.to_string());
                let mut poll = mio::Poll::new().unwrap();
                let mut events = mio::Events::with_capacity(4);
                let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
                poll.registry()
                    .register(&mut conn.sock, mio::Token(c), interest)
                    .unwrap();
                let mut s = d.opened(c, &mut conn, &mut rbuf, ctx(&cfg, &t, &tls), &mut timings);
                // Wait for the connect to settle (bounded: a refused loopback
                // connect is reported within milliseconds).
                for _ in 0..50 {
                    if !matches!(s, Step::Pending) {
                        break;
                    }
                    let wait = Some(std::time::Duration::from_millis(100));
                    poll.poll(&mut events, wait).unwrap();
                    s = d.on_ready(
                        (c, &mut conn),
                        (true, true),
                        &mut rbuf,
                        ctx(&cfg, &t, &tls),
                        &mut timings,
                    );
                }
                dropped.extend(std::iter::from_fn(|| d.pop_dropped()));
                s
            }
            s => break s,
        };
    };
    assert_eq!(
        dropped,
        [0, 1],
        "each failed connection is handed back once"
    );
    assert_eq!(
        peers,
        [format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")]
    );
    match end {
        Step::Failed { error, final_ } => {
            assert!(!final_);
            assert_eq!(error.kind, ErrorKind::ConnectRefused);
            assert!(error.detail.starts_with("127.0.0.2:"), "{}", error.detail);
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn connect_time_covers_every_address_tried_and_literals_report_no_dns() {
    // 127.0.0.2 refuses (the listener is bound to 127.0.0.1 only); the clock is
    // made up: the first try at t0, refused at +50 ms, the second connected at
    // +80 ms.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let cfg = Config::default();
    let tls = tls();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut timings = Timings::default();
    let mut rbuf = [0u8; 512];
    for (url, dns) in [
        (format!("http://a.test:{port}/"), true),
        (format!("http://127.0.0.2:{port}/"), false),
    ] {
        let t = Target::parse(&url).unwrap();
        let c = |now| Ctx {
            cfg: &cfg,
            target: &t,
            tls: &tls,
            now,
        };
        let mut d = Dialer::new(t0);
        let mut step = d.resolved(addrs(&["127.0.0.2", "127.0.0.1"]), c(at(0)), &mut timings);
        assert_eq!(timings.dns.is_some(), dns, "{url}");
        let mut tries = 0;
        let end = loop {
            step = match step {
                Step::Open(mut conn) => {
                    tries += 1;
                    let now = at(if tries == 1 { 50 } else { 80 });
                    let mut s = d.opened(tries, &mut conn, &mut rbuf, c(now), &mut timings);
                    for _ in 0..50 {
                        if !matches!(s, Step::Pending) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        s = d.on_ready(
                            (tries, &mut conn),
                            (true, true),
                            &mut rbuf,
                            c(now),
                            &mut timings,
                        );
                    }
                    s
                }
                s => break s,
            };
        };
        assert!(matches!(end, Step::Ready), "{end:?}");
        assert_eq!(tries, 2);
        assert_eq!(timings.connect, Some(std::time::Duration::from_millis(80)));
    }
}
