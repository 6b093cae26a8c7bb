//! The `volley` binary end to end: inputs, JSON Lines, exit statuses, signals.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

fn lines(out: &[u8]) -> Vec<serde_like::Obj> {
    String::from_utf8_lossy(out)
        .lines()
        .map(serde_like::parse)
        .collect()
}

/// A tiny reader for our own flat JSON lines: enough to check keys and values.
mod serde_like {
    pub type Obj = Vec<(String, String)>;
    pub fn parse(line: &str) -> Obj {
        // Top-level keys in order, with their raw value text.
        let b = line.as_bytes();
        assert_eq!((b[0], b[b.len() - 1]), (b'{', b'}'), "{line}");
        let mut out = Vec::new();
        let mut i = 1;
        while i < b.len() - 1 {
            assert_eq!(b[i], b'"');
            let kend = line[i + 1..].find('"').unwrap() + i + 1;
            let key = line[i + 1..kend].to_string();
            i = kend + 2;
            let start = i;
            let (mut depth, mut in_str, mut esc) = (0i32, false, false);
            while i < b.len() - 1 {
                let c = b[i];
                if in_str {
                    if esc {
                        esc = false
                    } else if c == b'\\' {
                        esc = true
                    } else if c == b'"' {
                        in_str = false
                    }
                } else if c == b'"' {
                    in_str = true
                } else if c == b'{' || c == b'[' {
                    depth += 1
                } else if c == b'}' || c == b']' {
                    depth -= 1
                } else if c == b',' && depth == 0 {
                    break;
                }
                i += 1;
            }
            out.push((key, line[start..i].to_string()));
            i += 1;
        }
        out
    }
    pub fn get<'a>(o: &'a Obj, k: &str) -> &'a str {
        &o.iter()
            .find(|(x, _)| x == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .1
    }
}
use serde_like::get;

#[test]
fn jsonl_keys_in_contract_order() {
    let s = http(|p| {
        if p == "/" {
            ok_response("hello")
        } else {
            b"HTTP/1.1 301 Moved\r\nLocation: /\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    let refused = format!("http://{}/", closed_port());
    let out = volley()
        .args([
            "-q",
            "--retries",
            "0",
            &s.url("/"),
            &s.url("/r"),
            "not a url",
            &refused,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut ls = lines(&out.stdout);
    ls.sort_by_key(|o| get(o, "n").parse::<u64>().unwrap());
    assert_eq!(ls.len(), 4);
    // Every line, success or error, has the contract's keys in order, and time_ms
    // its five phases in order.
    for l in &ls {
        let keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "n",
                "input",
                "url",
                "status",
                "error",
                "detail",
                "length",
                "bytes",
                "location",
                "redirects",
                "final_url",
                "time_ms",
                "attempts"
            ],
            "{l:?}"
        );
        let time = serde_like::parse(get(l, "time_ms"));
        let phases: Vec<&str> = time.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(phases, ["dns", "connect", "tls", "ttfb", "total"], "{l:?}");
    }
    assert_eq!(get(&ls[0], "status"), "200");
    assert_eq!(get(&ls[0], "error"), "null");
    assert_eq!(get(&ls[0], "bytes"), "5");
    assert!(get(&ls[0], "time_ms").starts_with("{\"dns\":"));
    assert_eq!(get(&ls[1], "location"), format!("\"{}\"", s.url("/")));
    assert_eq!(get(&ls[2], "error"), "\"invalid_url\"");
    assert_eq!(get(&ls[2], "input"), "\"not a url\"");
    assert_eq!(get(&ls[2], "status"), "null");
    assert_eq!(get(&ls[3], "error"), "\"connect_refused\"");
    assert_eq!(get(&ls[3], "status"), "null");
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 4);
}

#[test]
fn stdin_list_skips_blank_and_comments_and_numbers_in_order() {
    let s = http(|_| ok_response("x"));
    let mut child = volley()
        .args(["-q", "-c", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "# comment\n\n  {}  \n{}\n   \n127.0.0.1:{}/c\n",
        s.url("/a"),
        s.url("/b"),
        s.addr.port()
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut ls = lines(&out.stdout);
    ls.sort_by_key(|o| get(o, "n").parse::<u64>().unwrap());
    let got: Vec<(&str, &str)> = ls.iter().map(|o| (get(o, "n"), get(o, "input"))).collect();
    assert_eq!(
        got,
        [
            ("1", &*format!("\"{}\"", s.url("/a"))),
            ("2", &*format!("\"{}\"", s.url("/b"))),
            ("3", &*format!("\"127.0.0.1:{}/c\"", s.addr.port()))
        ]
    );
    assert_eq!(get(&ls[2], "url"), format!("\"{}\"", s.url("/c")));
}

#[test]
fn wordlist_with_extensions_and_shard() {
    let s = http(|p| {
        if p == "/admin.php" {
            ok_response("a")
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    let dir = std::env::temp_dir().join(format!("volley-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wl = dir.join("words.txt");
    std::fs::write(&wl, "admin\n#skip\nlogin\n").unwrap();
    let out = volley()
        .args([
            "-q",
            "-u",
            &s.url("/"),
            "-w",
            wl.to_str().unwrap(),
            "-x",
            ".php,html",
        ])
        .output()
        .unwrap();
    let mut ls = lines(&out.stdout);
    ls.sort_by_key(|o| get(o, "n").parse::<u64>().unwrap());
    let inputs: Vec<&str> = ls.iter().map(|o| get(o, "input")).collect();
    let want: Vec<String> = [
        "admin",
        "admin.php",
        "admin.html",
        "login",
        "login.php",
        "login.html",
    ]
    .iter()
    .map(|w| format!("\"{}\"", s.url(&format!("/{w}"))))
    .collect();
    assert_eq!(inputs, want);
    assert_eq!(get(&ls[1], "status"), "200");
    // Shard 2/3 takes n = 2, 5.
    let out = volley()
        .args([
            "-q",
            "--shard",
            "2/3",
            "-u",
            &format!("{}FUZZ", s.url("/")),
            "-w",
            wl.to_str().unwrap(),
            "-x",
            "php,html",
        ])
        .output()
        .unwrap();
    let mut ns: Vec<u64> = lines(&out.stdout)
        .iter()
        .map(|o| get(o, "n").parse().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [2, 5]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn output_file_and_exit_statuses() {
    let s = http(|_| ok_response("x"));
    let dir = std::env::temp_dir().join(format!("volley-cli-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = dir.join("out.jsonl");
    let st = volley()
        .args(["-q", "-o", o.to_str().unwrap(), &s.url("/")])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&o).unwrap().lines().count(), 1);
    // Bad usage: 2, naming the option.
    for args in [
        &["-c", "0", "x"][..],
        &["--shard", "3/2", "x"],
        &["--timeout", "-1", "x"],
        &["-H", "NoColon", "x"],
        &["--bogus"],
    ] {
        let out = volley().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    // Unreadable input or output: 1, one line on stderr.
    let out = volley().args(["-l", "/nonexistent/list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    let out = volley()
        .args(["-o", "/nonexistent/dir/out", &s.url("/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(dir);
}

/// Blocks until `flag` is set (at most 60 s, so a failing test still ends).
fn wait_for(flag: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !flag.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sets a flag when dropped: releases a held server handler whatever the test does.
struct Release(Arc<AtomicBool>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until `path` holds `want` whole lines (at most 60 s); returns how many.
fn wait_for_lines(path: &std::path::Path, want: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let have = std::fs::read(path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if have >= want || Instant::now() >= until {
            return have;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_writes_finished_results_and_exits_130() {
    // /slow is answered only after the test has signalled volley.
    let release = Release(Arc::new(AtomicBool::new(false)));
    let held = release.0.clone();
    let s = http(move |p| {
        if p.starts_with("/slow") {
            wait_for(&held);
        }
        ok_response("x")
    });
    let urls = format!(
        "{}\n{}\n{}\n",
        s.url("/fast1"),
        s.url("/fast2"),
        s.url("/slow")
    );
    let mut child = volley()
        .args(["-q", "-c", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(urls.as_bytes())
        .unwrap();
    // Wait for the two fast results on stdout, then interrupt.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => got.push(l),
            Err(e) => panic!("waiting for two results: {e:?} after {got:?}"),
        }
    }
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    reader.join().unwrap();
    got.extend(rx.try_iter());
    drop(release);
    let ls: Vec<_> = got.iter().map(|l| serde_like::parse(l)).collect();
    assert_eq!(ls.len(), 2, "the two finished results, whole: {got:?}");
    let mut inputs: Vec<&str> = ls.iter().map(|o| get(o, "input")).collect();
    inputs.sort();
    assert_eq!(
        inputs,
        [
            format!("\"{}\"", s.url("/fast1")),
            format!("\"{}\"", s.url("/fast2"))
        ]
    );
}

#[test]
fn out_of_file_descriptors_never_crashes_or_drops() {
    // With only 48 descriptors and 300 requests in flight wanted, connects hit EMFILE:
    // volley waits and retries; every target still gets its result.
    let s = http(|_| {
        std::thread::sleep(Duration::from_millis(20));
        ok_response("x")
    });
    let dir = std::env::temp_dir().join(format!("volley-cli-fd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("urls.txt");
    let urls: String = (0..600)
        .map(|i| format!("{}\n", s.url(&format!("/{i}"))))
        .collect();
    std::fs::write(&list, urls).unwrap();
    let cmd = format!(
        "ulimit -Sn 48; ulimit -Hn 48; exec {} -q -c 300 -l {}",
        env!("CARGO_BIN_EXE_volley"),
        list.display()
    );
    let out = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = lines(&out.stdout);
    assert_eq!(ls.len(), 600);
    let ok = ls.iter().filter(|o| get(o, "status") == "200").count();
    assert_eq!(
        ok,
        600,
        "every request answered: {:?}",
        ls.iter().find(|o| get(o, "status") != "200")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn formats_filters_title_and_headers() {
    let s = http(|p| {
        match p {
        "/" => b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Test: yes\r\nContent-Length: 38\r\n\r\n<html><title> Hi, there </title></html>".to_vec(),
        "/gone" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n".to_vec(),
    }
    });
    let urls = [s.url("/"), s.url("/gone"), s.url("/r")];
    let run = |extra: &[&str]| {
        let out = volley()
            .args(["-q", "-c", "1"])
            .args(extra)
            .args(&urls)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    // JSON with --title and --headers: optional keys after the contract's.
    let j = run(&["--title", "--headers", "--match-status", "200"]);
    let ls = lines(j.as_bytes());
    assert_eq!(ls.len(), 1);
    let keys: Vec<&str> = ls[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&keys[13..], ["title", "headers"]);
    assert_eq!(get(&ls[0], "title"), "\"Hi, there\"");
    assert!(get(&ls[0], "headers").contains("[\"X-Test\",\"yes\"]"));
    // --filter-status drops 2xx and 3xx.
    let j = run(&["--filter-status", "200-399"]);
    assert_eq!(lines(j.as_bytes()).len(), 1);
    assert!(j.contains("\"status\":404"));
    // CSV: header plus one row per result.
    let c = run(&["--format", "csv"]);
    let rows: Vec<&str> = c.lines().collect();
    assert_eq!(rows.len(), 4);
    assert!(rows[0].starts_with("n,input,url,status,error,detail,"));
    assert!(rows
        .iter()
        .any(|r| r.contains(",302,") && r.contains(&s.url("/"))));
    // Text: lines start with the status, then the size (aligned columns).
    let t = run(&["--format", "text", "--title"]);
    let starts = |l: &str, a: &str, b: &str| {
        let mut f = l.split_whitespace();
        f.next() == Some(a) && f.next() == Some(b)
    };
    assert!(
        t.lines()
            .any(|l| starts(l, "200", "38") && l.contains("[Hi, there]")),
        "{t}"
    );
    assert!(
        t.lines()
            .any(|l| starts(l, "302", "0") && l.contains(&format!("-> {}", s.url("/")))),
        "{t}"
    );
    // A bad list is a usage error naming the option.
    let out = volley()
        .args(["--match-status", "2xx", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--match-status"));
}

#[test]
fn workers_share_input_and_output_exactly_once() {
    let s = http(|p| {
        if p.ends_with('3') {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            ok_response("w")
        }
    });
    let list: String = (1..=3000)
        .map(|i| format!("{}\n", s.url(&format!("/{i}"))))
        .collect();
    let mut child = volley()
        .args(["-q", "-c", "40", "--workers", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut ns: Vec<u64> = lines(&out.stdout)
        .iter()
        .map(|o| get(o, "n").parse().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, (1..=3000).collect::<Vec<u64>>(), "every target once");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\"status\":404").count(), 300);
}

#[test]
fn deny_and_bad_cidr() {
    let s = http(|_| ok_response("x"));
    let out = volley()
        .args(["-q", "--deny", "127.0.0.0/8", &s.url("/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ls = lines(&out.stdout);
    assert_eq!(get(&ls[0], "error"), "\"denied\"");
    let out = volley()
        .args(["--allow", "10.0.0.0/99", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow"));
}

#[test]
fn resume_finishes_an_interrupted_run_with_nothing_lost_or_doubled() {
    let first = Arc::new(AtomicBool::new(true));
    // /slow hangs the first time only, until the first run has been stopped.
    let release = Release(Arc::new(AtomicBool::new(false)));
    let held = release.0.clone();
    let s = http(move |p| {
        if p == "/slow" && first.swap(false, Ordering::SeqCst) {
            wait_for(&held);
        }
        ok_response("x")
    });
    let dir = std::env::temp_dir().join(format!("volley-cli-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("urls.txt");
    let out = dir.join("out.jsonl");
    let urls: String = (1..=6)
        .map(|i| {
            if i == 3 {
                format!("{}\n", s.url("/slow"))
            } else {
                format!("{}\n", s.url(&format!("/{i}")))
            }
        })
        .collect();
    std::fs::write(&list, urls).unwrap();
    let mut child = volley()
        .args([
            "-q",
            "-c",
            "6",
            "-l",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    // Stop it once the five fast results are on disk.
    assert_eq!(wait_for_lines(&out, 5), 5);
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    drop(release);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 5);
    let st = volley()
        .args([
            "-q",
            "-c",
            "6",
            "-l",
            list.to_str().unwrap(),
            "--resume",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let mut ns: Vec<u64> = lines(std::fs::read(&out).unwrap().as_slice())
        .iter()
        .map(|o| get(o, "n").parse().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [1, 2, 3, 4, 5, 6]);
    // Resume with a different -o is a usage error.
    let bad = volley()
        .args(["--resume", out.to_str().unwrap(), "-o", "/tmp/other", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn request_options_reach_the_wire() {
    let s = http(|_| ok_response("x"));
    let dir = std::env::temp_dir().join(format!("volley-cli-req-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body.txt");
    std::fs::write(&body, "a=1&b=2").unwrap();
    // -A sets User-Agent; -H replaces a default (Accept); -d @FILE sends the file and
    // makes the method POST.
    let out = volley()
        .args(["-q", "-A", "probe/9", "-H", "Accept: text/html", "-d"])
        .arg(format!("@{}", body.display()))
        .arg(s.url("/form"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let req = s.requests.lock().unwrap()[0].clone();
    assert!(req.starts_with("POST /form HTTP/1.1\r\n"), "{req}");
    assert!(
        req.contains("User-Agent: probe/9\r\n") && !req.contains("volley/"),
        "{req}"
    );
    assert!(
        req.contains("Accept: text/html\r\n") && !req.contains("Accept: */*"),
        "{req}"
    );
    assert!(
        req.contains("Content-Length: 7\r\n") && req.ends_with("a=1&b=2"),
        "{req}"
    );
    // -d sends a form unless told otherwise (as curl).
    assert!(
        req.contains("Content-Type: application/x-www-form-urlencoded\r\n"),
        "{req}"
    );
    // -X with -d: the method given wins; a -H Content-Type replaces the form's;
    // 'Name:' with no value removes a default header (as curl).
    let out = volley()
        .args([
            "-q",
            "-X",
            "PUT",
            "-d",
            "z",
            "-H",
            "Content-Type: text/plain",
        ])
        .args(["-H", "Accept:", &s.url("/put")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let req = s.requests.lock().unwrap()[1].clone();
    assert!(req.starts_with("PUT /put HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("Content-Type: text/plain\r\n"), "{req}");
    assert!(
        !req.contains("x-www-form") && !req.contains("Accept:"),
        "{req}"
    );
    // An unreadable -d @FILE is a usage error naming the option.
    let out = volley()
        .args(["-d", "@/nonexistent/body", &s.url("/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-d @"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idn_names_go_out_as_punycode() {
    let s = http(|_| ok_response("x"));
    let port = s.addr.port();
    let out = volley()
        .args([
            "-q",
            "--resolve",
            &format!("xn--bcher-kva.test:{port}:127.0.0.1"),
        ])
        .arg(format!("bücher.test:{port}/p"))
        .output()
        .unwrap();
    let ls = lines(&out.stdout);
    assert_eq!(get(&ls[0], "status"), "200", "{:?}", ls[0]);
    assert_eq!(
        get(&ls[0], "url"),
        format!("\"http://xn--bcher-kva.test:{port}/p\"")
    );
    assert!(s.requests.lock().unwrap()[0].contains(&format!("Host: xn--bcher-kva.test:{port}\r\n")));
}

#[test]
fn ipv6_loopback_target() {
    // Skip only when this machine has no IPv6 loopback at all (the bind fails).
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here");
        return;
    };
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut st in l.incoming().flatten() {
            if let Some(req) = read_request(&mut st) {
                let body = req.lines().nth(1).unwrap_or("").to_string();
                let _ = st.write_all(&ok_response(&body));
            }
        }
    });
    let out = volley()
        .args(["-q", &format!("[::1]:{port}/x")])
        .output()
        .unwrap();
    let ls = lines(&out.stdout);
    assert_eq!(get(&ls[0], "status"), "200", "{:?}", ls[0]);
    assert_eq!(get(&ls[0], "url"), format!("\"http://[::1]:{port}/x\""));
    // The Host header carries the bracketed address (echoed as the body's length).
    assert_eq!(
        get(&ls[0], "bytes"),
        format!("{}", format!("Host: [::1]:{port}").len())
    );
}
