//! Pipelining through network delay: a loopback relay that holds every byte for a
//! fixed time in each direction (this kernel has no netem), in front of a private
//! nginx; volley runs through it with `--pipeline N` for several N and the
//! throughput curve is printed, with each run's status counts (they must match).
//!
//! ```text
//! cargo build --release && cargo bench --bench pipeline   # N = 1 2 5 10 20, 25 ms
//! PIPE_N="1 10" PIPE_PATHS=5000 PIPE_DELAY_MS=25 PIPE_ARGS="--per-host 50 -c 500" \
//!   cargo bench --bench pipeline
//! ```
//!
//! The relay (`Relay`) owns one listening socket on 127.0.0.1 and, per accepted
//! connection, one upstream connection and four threads: per direction a reader that
//! stamps each chunk with `arrival + delay` and a writer that sends it at that time,
//! in order. A close is relayed (as a write shutdown) after the same delay. Every
//! thread ends when its connection does; nginx is stopped by its PID at the end.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The delay relay; see the module docs.
struct Relay {
    port: u16,
}

impl Relay {
    /// Listens on a free loopback port and relays each connection to `upstream`
    /// with `delay` each way.
    fn start(upstream: u16, delay: Duration) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = l.local_addr().unwrap().port();
        thread::spawn(move || {
            for client in l.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(client, server, delay);
                pump(s2, c2, delay);
            }
        });
        Relay { port }
    }
}

/// Bytes read from `from` are written to `to` `delay` after they arrived.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            // An empty chunk is the close.
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
                || n == 0
            {
                return;
            }
        }
    });
    thread::spawn(move || {
        for (at, chunk) in rx {
            let now = Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            if chunk.is_empty() || to.write_all(&chunk).is_err() {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A private nginx on loopback, stopped by its PID when dropped.
struct Nginx {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx serving `paths` paths (`/p0` …), every tenth of which exists.
fn start_nginx(paths: usize) -> Nginx {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("volley-pipe-{}-{port}", std::process::id()));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    for i in (0..paths).step_by(10) {
        std::fs::write(www.join(format!("p{i}")), format!("page {i}\n")).unwrap();
    }
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; worker_rlimit_nofile 65535;
error_log {d}/error.log; pid {d}/nginx.pid;
events {{ worker_connections 10000; }}
http {{
  access_log off; keepalive_requests 100000000;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  server {{ listen 127.0.0.1:{port}; root {d}/www; }}
}}
",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx is not installed");
    let child = Command::new(bin)
        .args(["-p", dir.to_str().unwrap(), "-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port, dir }
}

/// One volley run's figures.
struct Run {
    secs: f64,
    statuses: std::collections::BTreeMap<String, usize>,
    found: Vec<String>,
}

fn volley(bin: &str, list: &std::path::Path, out: &std::path::Path, n: usize, args: &str) -> Run {
    let start = Instant::now();
    let st = Command::new(bin)
        .args(args.split_whitespace())
        .args(["--pipeline", &n.to_string(), "-q", "-l"])
        .arg(list)
        .arg("-o")
        .arg(out)
        .stderr(Stdio::null())
        .status()
        .expect("run volley");
    let secs = start.elapsed().as_secs_f64();
    assert!(st.code().is_some(), "volley was killed");
    let mut statuses = std::collections::BTreeMap::new();
    let mut found = Vec::new();
    for line in std::fs::read_to_string(out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let s = match (&v["status"], &v["error"]) {
            (serde_json::Value::Number(s), _) => s.to_string(),
            (_, e) => e.as_str().unwrap_or("?").to_string(),
        };
        if s == "200" {
            found.push(v["url"].as_str().unwrap_or("").to_string());
        }
        *statuses.entry(s).or_insert(0) += 1;
    }
    found.sort();
    Run {
        secs,
        statuses,
        found,
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let depths: Vec<usize> = env_or("PIPE_N", "1 2 5 10 20")
        .split_whitespace()
        .map(|s| s.parse().expect("PIPE_N: numbers"))
        .collect();
    let paths: usize = env_or("PIPE_PATHS", "10000").parse().unwrap();
    let delay = Duration::from_millis(env_or("PIPE_DELAY_MS", "25").parse().unwrap());
    let args = env_or("PIPE_ARGS", "--per-host 50 -c 500");
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = env_or("VOLLEY", &format!("{root}/target/release/volley"));
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} is missing: cargo build --release first"
    );

    let nginx = start_nginx(paths);
    let relay = Relay::start(nginx.port, delay);
    let list = nginx.dir.join("urls.txt");
    let urls: String = (0..paths)
        .map(|i| format!("http://127.0.0.1:{}/p{i}\n", relay.port))
        .collect();
    std::fs::write(&list, urls).unwrap();
    let out = nginx.dir.join("out.jsonl");

    println!(
        "{paths} GETs through a {} ms each way relay to nginx, volley {args}",
        delay.as_millis()
    );
    println!("| --pipeline | wall s | requests/s | × N=1 | results |");
    println!("|---|---|---|---|---|");
    let mut base: Option<Run> = None;
    for n in depths {
        let r = volley(&bin, &list, &out, n, &args);
        let rate = paths as f64 / r.secs;
        let ratio = base.as_ref().map_or(1.0, |b| b.secs / r.secs);
        let same = match &base {
            None => String::new(),
            Some(b) if b.found == r.found => ", same 200s as N=1".into(),
            Some(_) => ", 200s DIFFER from N=1".into(),
        };
        println!(
            "| {n} | {:.2} | {rate:.0} | {ratio:.2} | {:?}{same} |",
            r.secs, r.statuses
        );
        if base.is_none() {
            base = Some(r);
        }
    }
    drop(nginx);
}
