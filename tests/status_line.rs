//! `ResponseHead::status_line`: the final response's status line as received,
//! whatever interim (1xx) heads came before it and however many fields it has
//! (none included) — what `--match-regex` sees first.

mod common;
use common::*;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use volley::engine::{Engine, Handler, Outcome, Request, RequestSpec, ResponseHead};

#[derive(Default)]
struct Lines {
    got: Vec<(u16, Vec<u8>)>,
    done: usize,
}

impl Handler for Lines {
    fn on_head(&mut self, _tag: u64, head: &ResponseHead<'_>) {
        self.got.push((head.status, head.status_line().to_vec()));
    }
    fn on_done(&mut self, _: Outcome) {
        self.done += 1;
    }
}

/// The status lines the handler saw for one request to a server sending `wire`.
fn seen(wire: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
    let s = http(move |_| wire.clone());
    let reqs = vec![Request {
        tag: 1,
        url: s.url("/"),
        spec: Arc::new(RequestSpec::default()),
    }];
    let mut engine = Engine::new(cfg(), reqs.into_iter().fuse(), Lines::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.step(Some(Duration::from_millis(100))).unwrap() {
        assert!(Instant::now() < deadline, "engine did not finish");
    }
    let (_, h) = engine.into_parts();
    assert_eq!(h.done, 1);
    h.got
}

/// One head: a status line and its fields, ending in a blank line.
fn head(line: &str, fields: &[String], crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut h = format!("{line}{eol}");
    for f in fields {
        h.push_str(f);
        h.push_str(eol);
    }
    h.push_str(eol);
    h
}

fn field() -> impl Strategy<Value = String> {
    ("[A-Z][a-z]{0,6}", "[ -~]{0,12}").prop_map(|(n, v)| format!("X-{n}: {}", v.trim()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The final head's status line, exactly, never an interim one's.
    #[test]
    fn final_status_line_as_received(
        interim in proptest::collection::vec(
            (prop_oneof![Just(100u16), Just(102), Just(103)], "[A-Za-z][A-Za-z ]{0,10}",
             proptest::collection::vec(field(), 0..3)),
            0..3),
        code in prop_oneof![Just(200u16), Just(204), Just(304), Just(404), Just(500)],
        reason in "[A-Za-z][A-Za-z ]{0,10}",
        fields in proptest::collection::vec(field(), 0..4),
        minor in 0u8..2,
        crlf in any::<bool>(),
    ) {
        let mut wire = String::new();
        for (c, r, f) in &interim {
            wire.push_str(&head(&format!("HTTP/1.{minor} {c} {r}"), f, crlf));
        }
        let line = format!("HTTP/1.{minor} {code} {reason}");
        let mut f = fields.clone();
        if !matches!(code, 204 | 304) {
            f.push("Content-Length: 0".into());
        }
        if minor == 0 {
            f.push("Connection: keep-alive".into());
        }
        wire.push_str(&head(&line, &f, crlf));
        let got = seen(wire.into_bytes());
        prop_assert_eq!(got, vec![(code, line.into_bytes())]);
    }
}
