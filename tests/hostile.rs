//! Hostile input to the `volley` binary: numeric options at and past their limits,
//! input lines of many megabytes, damaged `--resume` files, URLs that only look like
//! they have a scheme. Nothing may panic, abort or make memory follow the input.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

/// The raw text of top-level `key`'s value in one of our JSON lines.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = if line.starts_with(&format!("{{{pat}")) {
        1
    } else {
        line.find(&format!(",{pat}"))
            .unwrap_or_else(|| panic!("no {key} in {:.200}", line))
            + 1
    };
    let v = &line[at + pat.len()..];
    if let Some(s) = v.strip_prefix('"') {
        let mut esc = false;
        for (i, c) in s.char_indices() {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => return &v[..i + 2],
                _ => {}
            }
        }
        panic!("unterminated string for {key}");
    }
    let end = v.find([',', '}']).unwrap_or(v.len());
    &v[..end]
}

/// What a finished child did, with its peak resident memory.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_kib: i64,
}

/// Runs `cmd`, lets `feed` write its standard input (closed afterwards), and reaps it
/// with `wait4` to learn its peak resident set size.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std cannot see
fn run_measured(mut cmd: Command, feed: impl FnOnce(&mut std::process::ChildStdin)) -> Ran {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    {
        let mut stdin = child.stdin.take().unwrap();
        feed(&mut stdin);
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 on our own child's PID.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ran {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// Every numeric option refuses hostile values: exit 2, a message naming the option,
/// no panic.
#[test]
fn numeric_options_refuse_hostile_values() {
    let options = [
        "--concurrency",
        "--workers",
        "--per-host",
        "--rate",
        "--connect-timeout",
        "--read-timeout",
        "--timeout",
        "--retries",
        "--max-redirects",
        "--max-body",
    ];
    let values = [
        "1e20",
        "1e19",
        "1e-300",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "-1",
        "99999999999999999999999",
        "18446744073709551616",
        "1e309",
        "",
        "x",
    ];
    let port = closed_port();
    let target = format!("http://{port}/");
    for opt in options {
        for v in values {
            let out = volley()
                .args(["-q", &format!("{opt}={v}"), &target])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{opt}={v}: {err}");
            assert!(
                err.contains(opt),
                "{opt}={v}: message names the option: {err}"
            );
            assert!(!err.contains("panicked"), "{opt}={v}: {err}");
        }
        // The value as a separate argument: `-1` must not be taken for a flag either.
        let out = volley().args(["-q", opt, "-1", &target]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{opt} -1");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(opt),
            "{opt} -1"
        );
    }
    // Just past each limit.
    for (opt, v) in [
        ("--timeout", "1000001"),
        ("--timeout", "0.0005"),
        ("--connect-timeout", "0"),
        ("--read-timeout", "0"),
        ("--rate", "1000000001"),
        ("--rate", "0.0000009"),
        ("--concurrency", "0"),
        ("--concurrency", "1048577"),
        ("--per-host", "1048577"),
        ("--workers", "257"),
        ("--retries", "101"),
        ("--max-redirects", "1001"),
    ] {
        let out = volley()
            .args(["-q", &format!("{opt}={v}"), &target])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{opt}={v}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(opt));
    }
}

/// At their limits every numeric option is accepted and the run works.
#[test]
fn numeric_options_at_their_limits_work() {
    let s = http(|_| ok_response("x"));
    for args in [
        &[
            "--timeout=1e6",
            "--connect-timeout=1000000",
            "--read-timeout=1e6",
            "--concurrency=1048576",
            "--per-host=1048576",
            "--workers=256",
            "--retries=100",
            "--max-redirects=1000",
            "--max-body=18446744073709551615",
        ][..],
        &[
            "--timeout=0",
            "--connect-timeout=0.001",
            "--read-timeout=1",
            "--rate=1e9",
            "--concurrency=1",
            "--per-host=0",
            "--retries=0",
            "--max-redirects=0",
            "--max-body=0",
        ][..],
    ] {
        let out = volley()
            .arg("-q")
            .args(args)
            .arg(s.url("/"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(field(stdout.trim(), "status"), "200", "{args:?}: {stdout}");
    }
}

/// The slowest rate is accepted, starts the first request at once, and the run ends
/// as soon as the input is over (the engine pulls the next request before it asks
/// the rate, so it sees the end at once — not one interval, here 11.6 days, later).
#[test]
fn slowest_rate_is_accepted_and_the_run_ends_with_the_input() {
    let s = http(|_| ok_response("x"));
    let mut child = volley()
        .args(["-q", "--rate=1e-6", &s.url("/")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(field(line.trim(), "status"), "200", "{line}");
    // Wait for the exit (bounded: a run that waits for the rate never exits).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end after its only target was answered");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

/// A multi-megabyte line gives one `invalid_url` result (never a URL cut short) and
/// costs no memory; the lines around it work; a long comment is still a comment.
#[test]
fn enormous_input_line_is_refused_with_flat_memory() {
    let s = http(|_| ok_response("x"));
    let good = s.url("/good");
    let long_start = s.url("/aaaa");
    const LONG: usize = 64 << 20;
    let ran = run_measured(
        {
            let mut c = volley();
            c.args(["-q", "-c", "4"]);
            c
        },
        |stdin| {
            let chunk = vec![b'a'; 1 << 20];
            writeln!(stdin, "{good}").unwrap();
            stdin.write_all(long_start.as_bytes()).unwrap();
            let mut written = long_start.len();
            while written < LONG {
                stdin.write_all(&chunk).unwrap();
                written += chunk.len();
            }
            stdin.write_all(b"\n#").unwrap();
            for _ in 0..4 {
                stdin.write_all(&chunk).unwrap();
            }
            writeln!(stdin, "\n{good}").unwrap();
        },
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let mut lines: Vec<&str> = ran.stdout.lines().collect();
    lines.sort_by_key(|l| field(l, "n").parse::<u64>().unwrap());
    assert_eq!(lines.len(), 3, "{:.300}", ran.stdout);
    let ns: Vec<&str> = lines.iter().map(|l| field(l, "n")).collect();
    assert_eq!(ns, ["1", "2", "3"]);
    assert_eq!(field(lines[0], "status"), "200");
    assert_eq!(field(lines[2], "status"), "200");
    let long = lines[1];
    assert_eq!(field(long, "error"), "\"invalid_url\"");
    assert!(field(long, "detail").contains("65536"), "{:.300}", long);
    assert_eq!(field(long, "status"), "null");
    // The input is what was kept: 64 KiB and one byte, from the line's start.
    let input = field(long, "input");
    assert_eq!(input.len(), 64 * 1024 + 1 + 2);
    assert!(input.starts_with(&format!("\"{long_start}")));
    assert_eq!(
        s.requests.lock().unwrap().len(),
        2,
        "the long line sent nothing"
    );
    // 64 MiB went through; the process never held more than a small part of it.
    assert!(
        ran.max_rss_kib < 48 * 1024,
        "peak RSS {} KiB for a {} MiB line",
        ran.max_rss_kib,
        LONG >> 20
    );
}

/// In wordlist mode a too-long word still yields one result per target it makes, so
/// the numbering of the words after it does not move.
#[test]
fn enormous_word_keeps_the_numbering() {
    let s = http(|_| ok_response("x"));
    let dir = std::env::temp_dir().join(format!("volley-hostile-words-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let words = dir.join("words.txt");
    let mut text = "/".repeat(200_000);
    text.push_str("\nadmin\n");
    std::fs::write(&words, text).unwrap();
    let out = volley()
        .args([
            "-q",
            "-u",
            &s.url("/"),
            "-w",
            words.to_str().unwrap(),
            "-x",
            "php",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_by_key(|l| field(l, "n").parse::<u64>().unwrap());
    assert_eq!(lines.len(), 4);
    for l in &lines[..2] {
        assert_eq!(field(l, "error"), "\"invalid_url\"");
    }
    assert_eq!(field(lines[2], "url"), format!("\"{}\"", s.url("/admin")));
    assert_eq!(
        field(lines[3], "url"),
        format!("\"{}\"", s.url("/admin.php"))
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--resume` with claims far beyond the input, negative or overflowing `n`, garbage
/// and a huge line: nothing allocated from them, only real `n` skipped, the file's
/// whole lines kept and the partial last one cut.
#[test]
fn resume_survives_hostile_files() {
    let s = http(|_| ok_response("x"));
    let dir = std::env::temp_dir().join(format!("volley-hostile-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("urls.txt");
    let out = dir.join("out.jsonl");
    let urls: String = (1..=4)
        .map(|i| format!("{}\n", s.url(&format!("/{i}"))))
        .collect();
    std::fs::write(&list, urls).unwrap();
    let mut old = Vec::new();
    for line in [
        "{\"n\":9999999999999999999,\"input\":\"x\"}",
        "{\"n\":18446744073709551615,\"input\":\"x\"}",
        "{\"n\":1099511627776,\"input\":\"x\"}",
        "{\"n\":99999999999999999999999999,\"input\":\"x\"}",
        "{\"n\":-3,\"input\":\"x\"}",
        "{\"n\":2,\"input\":\"done\",\"status\":200}",
        "{\"n\":3,\"input\":\"damaged",
        "not json at all",
    ] {
        old.extend_from_slice(line.as_bytes());
        old.push(b'\n');
    }
    old.extend_from_slice(&[0, 0xff, 0xfe, b'{', b'\n']);
    old.extend_from_slice(b"{\"n\":4,\"input\":\"");
    old.extend(std::iter::repeat_n(b'z', 4 << 20));
    old.extend_from_slice(b"\"}\n");
    let whole = old.len();
    old.extend_from_slice(b"{\"n\":1,\"input\":\"cut short by a crash");
    std::fs::write(&out, &old).unwrap();
    let ran = run_measured(
        {
            let mut c = volley();
            c.args([
                "-q",
                "-l",
                list.to_str().unwrap(),
                "--resume",
                out.to_str().unwrap(),
            ]);
            c
        },
        |_| {},
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let after = std::fs::read(&out).unwrap();
    assert_eq!(
        &after[..whole],
        &old[..whole],
        "whole lines kept as they were"
    );
    let new = String::from_utf8(after[whole..].to_vec()).unwrap();
    let mut ns: Vec<u64> = new
        .lines()
        .map(|l| field(l, "n").parse().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [1, 3], "n 2 and 4 were done; 1 was cut; 3 was damaged");
    assert!(
        ran.max_rss_kib < 48 * 1024,
        "peak RSS {} KiB",
        ran.max_rss_kib
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Only a scheme at the start counts: a query naming another URL is still a host.
#[test]
fn scheme_inside_the_url_is_not_a_scheme() {
    let s = http(|_| ok_response("x"));
    let out = volley()
        .args(["-q", &format!("{}/?next=http://x/", s.addr)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(field(stdout.trim(), "status"), "200", "{stdout}");
    let reqs = s.requests.lock().unwrap();
    assert!(
        reqs[0].starts_with("GET /?next=http://x/ HTTP/1.1\r\n"),
        "{}",
        reqs[0]
    );
}
