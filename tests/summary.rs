//! The end-of-run summary on stderr and `--shard auto`, through the binary.

mod common;
use common::*;
use std::process::Command;

fn volley() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_volley"));
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
    ] {
        c.env_remove(v);
    }
    c
}

fn ns(stdout: &[u8]) -> Vec<u64> {
    let mut v: Vec<u64> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            j["n"].as_u64().unwrap()
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn summary_counts_every_status_and_shows_where_time_went() {
    let s = http(|p| match p {
        "/ok" => ok_response("x"),
        "/nf" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/odd" => b"HTTP/1.1 799 Odd\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 999 Odder\r\nContent-Length: 0\r\n\r\n".to_vec(),
    });
    let refused = closed_port();
    let out = volley()
        .args([
            "-q",
            "--retries",
            "0",
            &s.url("/ok"),
            &s.url("/ok"),
            &s.url("/nf"),
            &s.url("/odd"),
            &s.url("/odder"),
            &format!("http://{refused}/"),
            "not a url",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("volley: 7 targets in "), "{err}");
    assert!(
        first.ends_with(", 2xx: 2, 4xx: 1, other: 2, connect_refused: 1, invalid_url: 1"),
        "every target counted, 7xx and 9xx as other: {err}"
    );
    // Percentiles per phase, then a histogram of total time.
    assert!(
        err.contains("p50") && err.contains("p90") && err.contains("p99"),
        "{err}"
    );
    for phase in ["dns", "connect", "tls", "ttfb", "total"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("volley:   {phase} "))),
            "{phase}: {err}"
        );
    }
    let ttfb = err
        .lines()
        .find(|l| l.starts_with("volley:   ttfb "))
        .unwrap();
    assert!(
        ttfb.trim_end().ends_with(" 5"),
        "five responses timed: {ttfb}"
    );
    assert!(err.contains("volley: total time\n"), "{err}");
    let bars: u64 = err
        .lines()
        .filter(|l| l.contains('#'))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(bars, 6, "the histogram holds every timed result: {err}");
    assert!(err.contains("most errors: 127.0.0.1 1"), "{err}");
}

#[test]
fn shard_auto_from_slurm_and_kubernetes() {
    let s = http(|_| ok_response("x"));
    let urls: Vec<String> = (0..10).map(|i| s.url(&format!("/{i}"))).collect();
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let mut c = volley();
        c.args(["-q", "--shard", "auto"]).args(extra).args(&urls);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    // --array=1-7:2, task 5 is the third of four.
    let out = run(
        &[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ns(&out.stdout), [3, 7]);
    // Kubernetes Indexed Job: index 0 of 3.
    let out = run(&[("JOB_COMPLETION_INDEX", "0")], &["--shards", "3"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(ns(&out.stdout), [1, 4, 7, 10]);
    // Neither: a usage error naming the option, and nothing probed.
    let before = s.requests.lock().unwrap().len();
    let out = run(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
    assert!(out.stdout.is_empty());
    assert_eq!(s.requests.lock().unwrap().len(), before);
    // An index without --shards, and --shards without auto.
    let out = run(&[("JOB_COMPLETION_INDEX", "0")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shards"));
    let out = volley().args(["--shards", "2", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A Slurm array given as a list cannot be numbered from the environment.
    let out = run(
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard K/N"));
}
