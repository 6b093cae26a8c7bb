//! Output off the event loops: a blocked stdout stops volley pulling new targets
//! (bounded memory) while the requests in flight finish untouched by their
//! deadlines; nothing is lost and every line is whole once the reader comes back.

mod common;
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of padding per response header, so each result line (with --headers) is
/// about 4 KiB and a few MiB of output take only about a thousand requests.
const PAD: usize = 4000;
const TARGETS: usize = 3000;

#[test]
fn blocked_stdout_applies_back_pressure_and_loses_nothing() {
    let pad = "a".repeat(PAD);
    let s = http(move |_| {
        format!("HTTP/1.1 200 OK\r\nX-Pad: {pad}\r\nContent-Length: 1\r\n\r\nx").into_bytes()
    });
    let dir = std::env::temp_dir().join(format!("volley-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("urls.txt");
    let urls: String = (0..TARGETS)
        .map(|i| format!("{}\n", s.url(&format!("/{i}"))))
        .collect();
    std::fs::write(&list, urls).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["-q", "-c", "50", "--headers", "--read-timeout", "0.5", "-l"])
        .arg(&list)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Nobody reads stdout. Wait until volley stops asking the server for more: the
    // count of requests served has not moved for a second (well past the read
    // timeout, so a loop stalled on output would have fired deadlines).
    let served = || s.requests.lock().unwrap().len();
    let give_up = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (served(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < give_up,
            "volley never settled: {}",
            served()
        );
        std::thread::sleep(Duration::from_millis(50));
        let now = served();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    // The loops went on past the pipe's 64 KiB (about 16 lines): the results of
    // hundreds of requests waited in the writer's queue, not in a stalled loop...
    assert!(
        last >= 500,
        "only {last} requests before stalling: output blocks the event loop"
    );
    // ... and stopped well before the end: memory is bounded by back-pressure.
    assert!(
        last < TARGETS - 500,
        "{last} of {TARGETS} requests with nobody reading: no back-pressure"
    );
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let text = String::from_utf8(out).unwrap();
    let mut seen = vec![false; TARGETS + 1];
    for line in text.lines() {
        let j: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines");
        assert_eq!(j["error"], serde_json::Value::Null, "{}", &line[..200]);
        assert_eq!(j["status"], 200);
        let n = j["n"].as_u64().unwrap() as usize;
        assert!(!seen[n], "n {n} twice");
        seen[n] = true;
    }
    assert!(seen[1..].iter().all(|&x| x), "every target has its line");
    let _ = std::fs::remove_dir_all(dir);
}
