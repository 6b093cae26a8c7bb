//! `volley report` end to end: shards of one run read together, `--expect`, damaged
//! and doubled lines, the HTML page, and its exit statuses.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

fn report(args: &[&str]) -> Output {
    volley().arg("report").args(args).output().unwrap()
}

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("volley-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs shard `k`/`n` of `list` into `out`.
fn shard(list: &str, k: u64, n: u64, out: &str) {
    let st = volley()
        .args([
            "-q",
            "--retries",
            "0",
            "--shard",
            &format!("{k}/{n}"),
            "-l",
            list,
            "-o",
            out,
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_list(dir: &Dir, s: &Server, n: usize) -> String {
    let list = dir.path("list.txt");
    let mut body = String::new();
    for i in 0..n {
        match i % 10 {
            3 => body.push_str(&s.url("/missing\n")),
            7 => body.push_str(&format!("http://{}/\n", closed_port())),
            _ => body.push_str(&s.url(&format!("/{i}\n"))),
        }
    }
    std::fs::write(&list, body).unwrap();
    list
}

#[test]
fn shards_read_together_pass_the_check() {
    let s = http(|p| {
        if p == "/missing" {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            ok_response("hello")
        }
    });
    let dir = Dir::new("ok");
    let list = write_list(&dir, &s, 60);
    let files: Vec<String> = (1..=3)
        .map(|k| dir.path(&format!("out.{k}.jsonl")))
        .collect();
    for (k, f) in files.iter().enumerate() {
        shard(&list, k as u64 + 1, 3, f);
    }
    let mut args: Vec<&str> = vec!["--expect", "60"];
    args.extend(files.iter().map(String::as_str));
    let out = report(&args);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{t}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.starts_with("60 results from 3 files, 2xx: 48, 4xx: 6, connect_refused: 6\n"),
        "{t}"
    );
    assert!(
        t.contains("n: 60 distinct in 1..60 (expected 60), 0 missing, 0 doubled"),
        "{t}"
    );
    assert!(t.contains("check: ok"), "{t}");
    // IP-literal targets: no lookup ran, so there is no dns plot (dns is null).
    for phase in ["connect", "ttfb", "total"] {
        assert!(
            t.lines().any(|l| l.starts_with(&format!("  {phase} "))),
            "{t}"
        );
    }
    assert!(t.contains("total time\n"), "{t}");
    assert!(t.contains("most errors: 127.0.0.1 6"), "{t}");

    // One shard short: the check fails and names what is missing.
    let out = report(&["--expect", "60", &files[0], &files[1]]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let want: Vec<String> = (3..=60).step_by(3).map(|n| n.to_string()).collect();
    let missing = t.lines().find(|l| l.starts_with("missing: ")).unwrap();
    assert!(
        missing.starts_with(&format!("missing: {}", want[..20].join(", "))),
        "{t}"
    );
    assert!(t.contains("20 missing, 0 doubled"), "{t}");
    assert!(t.contains("check: FAILED"), "{t}");

    // A shard read twice, plus a damaged file: doubled, and damaged lines counted.
    let damaged = dir.path("damaged.jsonl");
    let mut bytes = std::fs::read(&files[2]).unwrap();
    bytes.extend_from_slice(b"garbage\n\xff\xfe\n{\"n\":7,\"status\":200");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = report(&["--expect", "60", &files[0], &files[1], &files[2], &damaged]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("damaged lines skipped: 3"), "{t}");
    assert!(t.contains("0 missing, 20 doubled"), "{t}");
    assert!(t.contains("doubled: 3, 6, 9"), "{t}");

    // Standard input as `-`, beside files.
    let mut child = volley()
        .args(["report", "--expect", "60", "-", &files[1], &files[2]])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = std::fs::read(&files[0]).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Without --expect: a summary, exit 0 even with doubles.
    let out = report(&[&files[0], &files[0]]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).starts_with("40 results from 2 files"));
}

#[test]
fn html_page_is_self_contained() {
    let s = http(|_| ok_response("x"));
    let dir = Dir::new("html");
    let out_file = dir.path("out.jsonl");
    let st = volley()
        .args([
            "-q",
            "-o",
            &out_file,
            &s.url("/a"),
            &s.url("/b"),
            "http://<b>x</b>:0/",
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let page = dir.path("report.html");
    let out = report(&["--html", &page, &out_file]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "latency plots inline");
    // IP-literal targets: no lookup ran, so there is no dns plot (dns is null).
    for phase in ["connect", "ttfb", "total"] {
        assert!(html.contains(&format!("<h3>{phase}</h3>")), "{phase}");
    }
    assert!(html.contains("invalid_url"));
    assert!(
        !html.contains("<script") && !html.contains("<b>"),
        "input is escaped"
    );
    assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("url("));
    assert!(!html.contains("http://www") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
}

#[test]
fn usage_and_unreadable_files() {
    // No file, bad --expect, unknown option: usage (2).
    for args in [
        &[][..],
        &["--expect", "0", "x"],
        &["--expect", "many", "x"],
        &["--bogus", "x"],
    ] {
        let out = report(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = report(&["/nonexistent/volley.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/volley.jsonl"));
    // An unwritable --html: 1.
    let dir = Dir::new("usage");
    let f = dir.path("empty.jsonl");
    std::fs::write(&f, "").unwrap();
    let out = report(&["--html", "/nonexistent/dir/r.html", &f]);
    assert_eq!(out.status.code(), Some(1));
    // An empty file is an empty report; --expect then misses everything.
    let out = report(&[&f]);
    assert_eq!(out.status.code(), Some(0));
    let out = report(&["--expect", "3", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("missing: 1-3"));
    // `report` later on the line is a target, not the subcommand.
    let out = volley()
        // (pinned, so no query leaves the machine)
        .args([
            "-q",
            "--retries",
            "0",
            "--resolve",
            "report:80:127.0.0.1",
            "http://127.0.0.1:1/",
            "report",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let _ = Path::new(&f);
}

#[test]
fn a_damaged_file_never_panics_the_report() {
    let dir = Dir::new("fuzz");
    let f = dir.path("junk.jsonl");
    let mut junk = Vec::new();
    junk.extend_from_slice(b"{\"n\":18446744073709551615,\"status\":200,\"error\":null}\n");
    junk.extend_from_slice(b"{\"n\":99999999999999999999999,\"status\":200,\"error\":null}\n");
    junk.extend_from_slice(b"{\"n\":5,\"status\":-3,\"error\":null,\"time_ms\":{\"total\":-1}}\n");
    junk.extend_from_slice(
        b"{\"n\":6,\"status\":70000,\"error\":null,\"time_ms\":{\"total\":1e308}}\n",
    );
    junk.extend_from_slice(&b"[".repeat(10_000));
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(&vec![b'x'; 3 << 20]);
    junk.extend_from_slice(b"\n{\"n\":1,\"status\":null,\"error\":\"\\u0000<x>\"}\n");
    std::fs::write(&f, &junk).unwrap();
    let out = report(&["--expect", "6", "--html", &dir.path("r.html"), &f]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = text(&out);
    // u64::MAX is a result beyond N; a larger n is no integer: damaged.
    assert!(
        t.starts_with("4 results from 1 file, 2xx: 1, other: 2, ?<x>: 1\n"),
        "{t}"
    );
    assert!(t.contains("damaged lines skipped: 3"), "{t}");
    assert!(t.contains("results with n beyond 6: 1"), "{t}");
    assert!(t.contains("missing: 2-4"), "{t}");
}

#[test]
fn a_closed_stdout_or_stderr_is_an_error_not_a_panic() {
    let dir = Dir::new("pipe");
    let f = dir.path("one.jsonl");
    std::fs::write(&f, "{\"n\":1,\"status\":200,\"error\":null}\n").unwrap();
    // The report's reader went away: exit 1, said on stderr.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = volley()
        .args(["report", &f])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the report"));
    // A probe whose stderr reader went away still writes its results and exits 0.
    let s = http(|_| ok_response("x"));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = volley()
        .args(["-q", &s.url("/")])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn an_array_job_with_a_killed_task_resumes_and_reports_clean() {
    // Four "array tasks" (Slurm's environment, --shard auto), one of them stopped
    // with SIGTERM mid-run and run again with --resume on its own file, as a
    // requeued task does; the report over the four files then passes --expect.
    // Task 2 takes n = 2, 6, 10, … (paths /1, /5, /9, …): from its 11th target on,
    // answers wait until `release`, so it is surely mid-run when stopped.
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = release.clone();
    let s = http(move |p| {
        let i: usize = p[1..].parse().unwrap_or(0);
        let mut waited = 0;
        while i % 4 == 1
            && i >= 40
            && !held.load(std::sync::atomic::Ordering::SeqCst)
            && waited < 6000
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        ok_response("x")
    });
    let dir = Dir::new("array");
    let list = dir.path("list.txt");
    let total = 200;
    let urls: String = (0..total).map(|i| s.url(&format!("/{i}\n"))).collect();
    std::fs::write(&list, urls).unwrap();
    let task = |id: u32| {
        let mut c = volley();
        c.args(["-q", "-c", "1", "--shard", "auto", "-l", &list, "--resume"])
            .arg(dir.path(&format!("out.{id}.jsonl")))
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_MAX", "4")
            .env_remove("JOB_COMPLETION_INDEX")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let mut victim = task(2).spawn().unwrap();
    let others: Vec<_> = [1, 3, 4]
        .iter()
        .map(|&id| task(id).spawn().unwrap())
        .collect();
    // Wait (bounded) until the victim has written some results, then stop it.
    let out2 = dir.path("out.2.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&out2).map_or(0, |t| t.lines().count()) < 10 {
        assert!(std::time::Instant::now() < deadline, "task 2 wrote nothing");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(victim.id() as i32, libc::SIGTERM) };
    assert_eq!(victim.wait().unwrap().code(), Some(130));
    for mut o in others {
        assert_eq!(o.wait().unwrap().code(), Some(0));
    }
    let partial = std::fs::read_to_string(&out2).unwrap().lines().count();
    assert_eq!(partial, 10, "task 2 wrote what finished before the stop");
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let files: Vec<String> = (1..=4)
        .map(|k| dir.path(&format!("out.{k}.jsonl")))
        .collect();
    let mut args = vec!["--expect".to_string(), total.to_string()];
    args.extend(files.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = report(&args);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before));
    // The requeued task resumes its own file.
    assert_eq!(task(2).status().unwrap().code(), Some(0));
    let after = report(&args);
    let t = text(&after);
    assert_eq!(after.status.code(), Some(0), "{t}");
    assert!(
        t.starts_with(&format!("{total} results from 4 files, 2xx: {total}\n")),
        "{t}"
    );
    assert!(t.contains("0 missing, 0 doubled"), "{t}");
}
