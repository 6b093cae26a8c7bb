//! The engine against a real nginx started on loopback (installed by `.ci/run`).

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use volley::engine::{Config, RequestSpec};

struct Nginx {
    child: Child,
    port: u16,
    tls_port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_bin() -> String {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("nginx is not installed: run .ci/run (it installs Debian's nginx)");
}

fn start_nginx() -> Nginx {
    let port = closed_port().port();
    let tls_port = closed_port().port();
    let dir = std::env::temp_dir().join(format!("volley-nginx-{}-{port}", std::process::id()));
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("dir")).unwrap();
    std::fs::write(
        www.join("index.html"),
        "<html><title>volley test</title>hello</html>\n",
    )
    .unwrap();
    std::fs::write(www.join("big.txt"), "0123456789abcdef".repeat(64 * 1024)).unwrap();
    // A private CA and a leaf for "nginx.test", made now.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "volley nginx CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["nginx.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), key.serialize_pem()).unwrap();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  gzip on; gzip_types text/plain; gzip_min_length 0;
  keepalive_requests 10000;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location = /moved {{ return 301 /index.html; }}
    location = /chunked {{ chunked_transfer_encoding on; gzip off; return 200 'chunky'; }}
  }}
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {d}/leaf.pem;
    ssl_certificate_key {d}/leaf.key;
    ssl_session_cache shared:volley:1m;
    root {d}/www;
  }}
}}
",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_bin())
        .args([
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        port,
        tls_port,
        dir,
    }
}

#[test]
fn against_nginx() {
    let n = start_nginx();
    let base = format!("http://127.0.0.1:{}", n.port);
    let mut urls = vec![
        format!("{base}/index.html"),
        format!("{base}/missing"),
        format!("{base}/big.txt"),
        format!("{base}/moved"),
        format!("{base}/dir"),
    ];
    for i in 0..500 {
        urls.push(format!("{base}/nope{i}"));
    }
    let r = run(
        Config {
            concurrency: 8,
            follow: false,
            ..cfg()
        },
        &urls,
    );
    let o = &r.outcomes;
    assert_eq!((o[0].status, o[0].bytes), (Some(200), 45));
    assert_eq!(o[1].status, Some(404));
    // gzip on: big.txt arrives compressed and decodes to 1 MiB (the default cap).
    assert_eq!(
        (o[2].status, o[2].bytes, o[2].capped),
        (Some(200), 1 << 20, false),
        "{:?}",
        o[2]
    );
    assert_eq!(o[3].status, Some(301));
    assert_eq!(
        o[3].location.as_deref(),
        Some(format!("{base}/index.html").as_str())
    );
    assert_eq!(o[4].status, Some(301), "directory redirect");
    assert!(o[5..]
        .iter()
        .all(|x| x.status == Some(404) && x.error.is_none()));
    // Follow, HEAD, POST.
    let r = run(
        Config {
            follow: true,
            ..cfg()
        },
        &[format!("{base}/moved")],
    );
    assert_eq!(
        (r.outcomes[0].status, r.outcomes[0].redirects.len()),
        (Some(200), 1)
    );
    let head = RequestSpec {
        method: "HEAD".into(),
        ..RequestSpec::default()
    };
    let r = run_with(cfg(), head, &[format!("{base}/index.html")]);
    assert_eq!((r.outcomes[0].status, r.outcomes[0].bytes), (Some(200), 0));
    let r = run(cfg(), &[format!("{base}/chunked")]);
    assert_eq!((r.outcomes[0].status, r.outcomes[0].bytes), (Some(200), 6));
    // No keep-alive: a connection per request, all fine.
    let urls: Vec<String> = (0..200).map(|i| format!("{base}/index.html?{i}")).collect();
    let r = run(
        Config {
            keepalive: false,
            concurrency: 20,
            ..cfg()
        },
        &urls,
    );
    assert!(r.outcomes.iter().all(|x| x.status == Some(200)));
}

#[test]
fn against_nginx_tls() {
    let n = start_nginx();
    let opts = volley::tls::TlsOptions {
        cacert: Some(n.dir.join("ca.pem")),
        ..Default::default()
    };
    let cfg = || Config {
        tls: Some(volley::tls::client_config(&opts).unwrap()),
        resolve: vec![(
            "nginx.test".into(),
            n.tls_port,
            "127.0.0.1".parse().unwrap(),
        )],
        ..cfg()
    };
    let base = format!("https://nginx.test:{}", n.tls_port);
    let mut urls = vec![format!("{base}/index.html"), format!("{base}/big.txt")];
    for i in 0..200 {
        urls.push(format!("{base}/nope{i}"));
    }
    let r = run(
        Config {
            concurrency: 4,
            ..cfg()
        },
        &urls,
    );
    let o = &r.outcomes;
    assert_eq!((o[0].status, o[0].bytes), (Some(200), 45), "{:?}", o[0]);
    assert_eq!((o[1].status, o[1].bytes), (Some(200), 1 << 20));
    assert!(o[2..].iter().all(|x| x.status == Some(404)));
    assert!(
        o.iter().filter(|x| x.timings.tls.is_some()).count() <= 4,
        "keep-alive reuses TLS connections"
    );
    // New connection per request: handshakes resume (nginx's session cache).
    let urls: Vec<String> = (0..50).map(|i| format!("{base}/index.html?{i}")).collect();
    let r = run(
        Config {
            keepalive: false,
            concurrency: 5,
            ..cfg()
        },
        &urls,
    );
    assert!(r
        .outcomes
        .iter()
        .all(|x| x.status == Some(200) && x.timings.tls.is_some()));
    // A wrong name is refused.
    let r = run(
        Config {
            resolve: vec![(
                "other.test".into(),
                n.tls_port,
                "127.0.0.1".parse().unwrap(),
            )],
            ..cfg()
        },
        &[format!("https://other.test:{}/", n.tls_port)],
    );
    assert_eq!(
        r.outcomes[0].error.as_ref().map(|e| e.kind),
        Some(volley::ErrorKind::Tls)
    );
}
