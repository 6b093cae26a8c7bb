//! The contract's fine print as the `volley` binary shows it (issue 9): no line for
//! a request cancelled at a stop, `--per-host` and `--rate` as totals across
//! `--workers`, `--location-trusted`.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("volley-fineprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_request_cancelled_at_a_stop_writes_no_line() {
    let s = server(|_, mut st, _| {
        let Some(req) = read_request(&mut st) else {
            return;
        };
        if req.starts_with("GET /fast ") {
            let _ = st.write_all(&ok_response("x"));
        }
        // Anything else hangs until the client goes.
        let mut b = [0u8; 256];
        while matches!(std::io::Read::read(&mut st, &mut b), Ok(n) if n > 0) {}
    });
    let out = tmp("cancelled.jsonl");
    let _ = std::fs::remove_file(&out);
    let child = volley()
        .args([
            "-q",
            "-c",
            "4",
            "--timeout",
            "60",
            "--read-timeout",
            "60",
            "-o",
        ])
        .arg(&out)
        .args([s.url("/fast"), s.url("/hang1"), s.url("/hang2")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the fast result to be written (and both hanging requests sent).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let written = std::fs::read_to_string(&out).unwrap_or_default();
        if written.lines().count() == 1 && s.conns.load(Ordering::SeqCst) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the fast result never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130));
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), 1, "{written}");
    assert!(!written.contains("cancelled"), "{written}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("cancelled"), "{stderr}");
    assert!(stderr.contains("volley: 1 targets"), "{stderr}");
}

#[test]
fn per_host_is_a_total_across_workers() {
    let (busy, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b2, m2) = (busy.clone(), most.clone());
    let s = server(move |_, mut st, _| {
        while read_request(&mut st).is_some() {
            m2.fetch_max(b2.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
            b2.fetch_sub(1, Ordering::SeqCst);
            if st.write_all(&ok_response("x")).is_err() {
                return;
            }
        }
    });
    let urls: Vec<String> = (0..30).map(|i| s.url(&format!("/{i}"))).collect();
    let out = volley()
        .args(["-q", "-c", "10", "--per-host", "1", "--workers", "2"])
        .args(&urls)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 30);
    assert_eq!(text.matches("\"status\":200").count(), 30, "{text}");
    assert_eq!(most.load(Ordering::SeqCst), 1, "one connection in total");
}

#[test]
fn location_trusted_sends_credentials_to_another_host() {
    let there = http(|_| ok_response("there"));
    let to = there.url("/there");
    let here = http(move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes()
    });
    let first = format!("http://localhost:{}/", here.addr.port());
    let pin = format!("localhost:{}:127.0.0.1", here.addr.port());
    for trusted in [false, true] {
        let mut cmd = volley();
        cmd.args([
            "-q",
            "-L",
            "--resolve",
            &pin,
            "-H",
            "Authorization: Bearer s3",
        ]);
        if trusted {
            cmd.arg("--location-trusted");
        }
        let out = cmd.arg(&first).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let sent = there.requests.lock().unwrap().pop().unwrap();
        assert_eq!(
            sent.contains("Authorization: Bearer s3\r\n"),
            trusted,
            "{sent}"
        );
    }
}
