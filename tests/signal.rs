//! Real hits from noise, end to end (issue 12): `volley --calibrate` against servers
//! on loopback that answer missing paths with the same page, a page echoing the path,
//! a redirect to a login page, or a 403; several such hosts in one list; a host that
//! is down. Also the fingerprint keys (`--counts`, `--hash`, `--ip`, `--tls-info`) and
//! the matchers. Calibration requests must never show up as result lines.

mod common;
use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the binary with `args` (targets on stdin when given); returns the JSON
/// lines, stderr and the exit status.
fn volley(args: &[&str], stdin: Option<&str>) -> (Vec<Value>, String, i32) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_volley"));
    c.args(args)
        .arg("-q")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// `soft404` of each result, by the path of its `input`.
fn verdicts(lines: &[Value]) -> HashMap<String, Value> {
    lines
        .iter()
        .map(|l| {
            let input = l["input"].as_str().unwrap();
            let path = input.splitn(4, '/').nth(3).unwrap_or("").to_string();
            let host = input.split('/').nth(2).unwrap_or("").to_string();
            (format!("{host}/{path}"), l["soft404"].clone())
        })
        .collect()
}

/// Every line is a target (n from 1 to `targets`, each once): calibration requests
/// have no line.
fn only_targets(lines: &[Value], targets: u64) {
    let mut ns: Vec<u64> = lines.iter().map(|l| l["n"].as_u64().unwrap()).collect();
    ns.sort_unstable();
    assert_eq!(ns, (1..=targets).collect::<Vec<_>>(), "{lines:?}");
}

fn page(title: &str, content: &str) -> String {
    format!(
        "<html><head><title>{title}</title></head><body><div class=\"nav\"><a href=\"/\">Home</a> \
         <a href=\"/about\">About</a> <a href=\"/blog\">Blog</a></div><h1>{title}</h1>\
         <p>{content}</p><footer>Copyright the example company, all rights reserved. \
         Contact us at any time about anything at all.</footer></body></html>"
    )
}

fn response(status: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The real files of every test host, and their pages.
fn real(path: &str) -> Option<String> {
    match path {
        "/admin" => Some(page(
            "Administration",
            "Sign in to manage users, billing, plans and audit logs of your organisation.",
        )),
        "/backup.zip" => Some("PK\u{3}\u{4} binary-ish archive data 0123456789".to_string()),
        "/docs/index.html" => Some(page(
            "Documentation",
            "Installation, configuration and the reference manual for every release.",
        )),
        _ => None,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 200 with the same page for every missing path.
fn same_page(path: &str) -> Vec<u8> {
    match real(path) {
        Some(b) => response("200 OK", "", &b),
        None => response(
            "200 OK",
            "",
            &page("Welcome", "The home page of our little site."),
        ),
    }
}

/// 200 with a constant page that echoes the path.
fn echo_page(path: &str) -> Vec<u8> {
    match real(path) {
        Some(b) => response("200 OK", "", &b),
        None => response(
            "200 OK",
            "",
            &page(
                "Not found",
                &format!(
                    "We looked everywhere, but <b>{}</b> is not here.",
                    html_escape(path)
                ),
            ),
        ),
    }
}

/// 302 to /login?next=<path> for every missing path.
fn login_redirect(path: &str) -> Vec<u8> {
    match real(path) {
        Some(b) => response("200 OK", "", &b),
        None => response(
            "302 Found",
            &format!("Location: /login?next={path}\r\n"),
            "",
        ),
    }
}

/// 403 for everything but the real files.
fn forbidden(path: &str) -> Vec<u8> {
    match real(path) {
        Some(b) => response("200 OK", "", &b),
        None => response("403 Forbidden", "", "<h1>Forbidden</h1>"),
    }
}

const WORDS: &str = "admin\nbackup.zip\ndocs/index.html\nwp-login.php\n.git/config\nold\n\
                     a&b\nserver-status\n";

/// Wordlist mode on one host: the real files are `false`, everything else `true`;
/// one line per target, and the host got exactly 3 calibration requests.
fn check_host(respond: fn(&str) -> Vec<u8>) {
    let s = http(respond);
    let wl = std::env::temp_dir().join(format!("volley-signal-{}.txt", s.addr.port()));
    std::fs::write(&wl, WORDS).unwrap();
    let (lines, err, code) = volley(
        &["-u", &s.url("/"), "-w", wl.to_str().unwrap(), "--calibrate"],
        None,
    );
    let _ = std::fs::remove_file(&wl);
    assert_eq!(code, 0, "{err}");
    only_targets(&lines, 8);
    let host = s.addr.to_string();
    for (k, v) in verdicts(&lines) {
        let is_real = real(&k[host.len()..]).is_some();
        assert_eq!(v, Value::Bool(!is_real), "{k}: {lines:?}");
    }
    assert_eq!(s.requests.lock().unwrap().len(), 8 + 3);
    assert!(err.contains("soft-404: 5 of 8 results"), "{err}");
}

#[test]
fn same_page_for_every_path() {
    check_host(same_page);
}

#[test]
fn page_echoing_the_path() {
    check_host(echo_page);
}

#[test]
fn redirect_to_login_with_the_path() {
    check_host(login_redirect);
}

#[test]
fn forbidden_for_all_but_a_few() {
    check_host(forbidden);
}

/// Wordlist mode with `-x`: each random word is tried bare and with every extension
/// (3 × 3 probes), and `admin.php`'s word is `admin` (the `.php` is in its probes too).
#[test]
fn wordlist_with_extensions() {
    let s = http(|p| match p {
        "/admin.php" | "/backup.zip" => response("200 OK", "", &real("/admin").unwrap()),
        _ => echo_page(p),
    });
    let wl = std::env::temp_dir().join(format!("volley-signal-x-{}.txt", s.addr.port()));
    std::fs::write(&wl, "admin\nbackup\nnope\n").unwrap();
    let (lines, err, code) = volley(
        &[
            "-u",
            &s.url("/"),
            "-w",
            wl.to_str().unwrap(),
            "-x",
            "php,.zip",
            "--calibrate",
        ],
        None,
    );
    let _ = std::fs::remove_file(&wl);
    assert_eq!(code, 0, "{err}");
    only_targets(&lines, 9);
    let h = s.addr.to_string();
    for (k, v) in verdicts(&lines) {
        // admin and backup.zip are real files of echo_page's host too.
        let hit = ["admin", "admin.php", "backup.zip"]
            .iter()
            .any(|p| k == format!("{h}/{p}"));
        assert_eq!(v, Value::Bool(!hit), "{k}");
    }
    let reqs = s.requests.lock().unwrap();
    assert_eq!(reqs.len(), 9 + 9);
    let probes: Vec<&String> = reqs
        .iter()
        .filter(|r| {
            !["admin", "backup", "nope"]
                .iter()
                .any(|w| r.contains(&format!("GET /{w}")))
        })
        .collect();
    assert_eq!(probes.len(), 9);
    assert_eq!(
        probes
            .iter()
            .filter(|r| r.contains(".php HTTP/1.1"))
            .count(),
        3
    );
    assert_eq!(
        probes
            .iter()
            .filter(|r| r.contains(".zip HTTP/1.1"))
            .count(),
        3
    );
}

/// One list mixing three hosts with three behaviours, interleaved, plus a host that
/// is down: each calibrated on its own (6 list-mode probes each), the down host's
/// results `null`; no line for any probe.
#[test]
fn three_hosts_at_once_and_one_down() {
    let hosts = [http(same_page), http(echo_page), http(login_redirect)];
    let down = closed_port();
    let paths = [
        "/admin",
        "/nothing-here",
        "/backup.zip",
        "/x/y.php",
        "/docs/index.html",
        "/old",
    ];
    let mut list = String::new();
    for p in paths {
        for h in &hosts {
            list.push_str(&h.url(p));
            list.push('\n');
        }
        list.push_str(&format!("http://{down}{p}\n"));
    }
    let (lines, err, code) = volley(&["--calibrate", "-c", "8"], Some(&list));
    assert_eq!(code, 0, "{err}");
    only_targets(&lines, 24);
    for l in &lines {
        let input = l["input"].as_str().unwrap();
        let path = &input[input[7..].find('/').unwrap() + 7..];
        if input.contains(&down.to_string()) {
            assert!(l["soft404"].is_null(), "{l}");
            assert_eq!(l["error"], "connect_refused");
        } else {
            assert_eq!(l["soft404"], Value::Bool(real(path).is_none()), "{l}");
        }
    }
    for h in &hosts {
        assert_eq!(h.requests.lock().unwrap().len(), 6 + 6);
    }
    assert!(err.contains("soft-404: 9 of 24 results"), "{err}");
    assert!(err.contains("6 not calibrated"), "{err}");
}

/// `--filter-calibrated` writes only the real files; the summary still counts all.
#[test]
fn filter_calibrated() {
    let s = http(echo_page);
    let list: String = ["/admin", "/nope", "/backup.zip", "/zzz/", "/a%20b"]
        .iter()
        .map(|p| s.url(p) + "\n")
        .collect();
    let (lines, err, _) = volley(&["--filter-calibrated"], Some(&list));
    let mut got: Vec<&str> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, vec![s.url("/admin"), s.url("/backup.zip")]);
    assert!(lines.iter().all(|l| l["soft404"] == false));
    assert!(err.contains("5 targets"), "{err}");
    assert!(err.contains("soft-404: 3 of 5 results"), "{err}");
}

/// With -L the signature is of the final response: every missing path ends on the
/// same login page, and that is what the probes learned.
#[test]
fn follow_redirects_judges_the_final_response() {
    let s = http(|p| {
        if p.starts_with("/login") {
            response(
                "200 OK",
                "",
                &page("Sign in", "Your user name and password."),
            )
        } else {
            login_redirect(p)
        }
    });
    let list: String = ["/admin", "/missing", "/backup.zip", "/other"]
        .iter()
        .map(|p| s.url(p) + "\n")
        .collect();
    let (lines, err, _) = volley(&["--calibrate", "-L"], Some(&list));
    only_targets(&lines, 4);
    let v = verdicts(&lines);
    let h = s.addr.to_string();
    assert_eq!(v[&format!("{h}/admin")], false, "{err}");
    assert_eq!(v[&format!("{h}/missing")], true);
    assert_eq!(v[&format!("{h}/other")], true);
    assert_eq!(v[&format!("{h}/backup.zip")], false);
}

/// The fingerprint keys: present only when asked, in the contract's order, with
/// ffuf's counts and the body's SHA-256.
#[test]
fn fingerprint_keys() {
    let s = http(|_| response("200 OK", "", "hello world\nsecond line\n"));
    let (lines, _, _) = volley(&[&s.url("/a")], None);
    for k in [
        "words",
        "lines",
        "body_sha256",
        "simhash",
        "ip",
        "tls",
        "soft404",
    ] {
        assert!(lines[0].get(k).is_none(), "{k} without its option");
    }
    let (lines, _, _) = volley(
        &[
            "--counts",
            "--hash",
            "--ip",
            "--tls-info",
            "--calibrate",
            &s.url("/a"),
        ],
        None,
    );
    let l = &lines[0];
    assert_eq!(
        (l["words"].as_u64(), l["lines"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(l["body_sha256"], volley_sha("hello world\nsecond line\n"));
    assert_eq!(l["simhash"].as_str().unwrap().len(), 16);
    assert_eq!(l["ip"], "127.0.0.1");
    assert!(l["tls"].is_null(), "plain http has no tls");
    assert_eq!(l["soft404"], true, "every path gets this page");
    let text = serde_json::to_string(l).unwrap();
    let raw = lines_raw(&s.url("/a"));
    let at = |k: &str| raw.rfind(&format!("\"{k}\":")).unwrap();
    let order = [
        "attempts",
        "words",
        "lines",
        "body_sha256",
        "simhash",
        "ip",
        "tls",
        "soft404",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{raw}");
    assert!(!text.is_empty());
    // No response: the keys are there, null.
    let (lines, _, _) = volley(
        &[
            "--counts",
            "--hash",
            "--ip",
            &format!("http://{}/x", closed_port()),
        ],
        None,
    );
    for k in ["words", "lines", "body_sha256", "simhash", "ip"] {
        assert!(lines[0][k].is_null(), "{k}: {}", lines[0]);
    }
}

fn volley_sha(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The raw line (key order) for `url` with every fingerprint option.
fn lines_raw(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args([
            "-q",
            "--counts",
            "--hash",
            "--ip",
            "--tls-info",
            "--calibrate",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Matchers: every kind given must hold, and no filter.
#[test]
fn matchers_and_filters() {
    let s = http(|p| match p {
        "/a" => response("200 OK", "", "one two three"),
        "/b" => response("200 OK", "", "one two\nthree four five\nsix"),
        "/c" => response("404 Not Found", "", "Not Found"),
        _ => response("200 OK", "X-Secret: yes\r\n", "x"),
    });
    let list: String = ["/a", "/b", "/c", "/d"]
        .iter()
        .map(|p| s.url(p) + "\n")
        .collect();
    let got = |args: &[&str]| -> Vec<String> {
        let (lines, err, code) = volley(args, Some(&list));
        assert_eq!(code, 0, "{err}");
        let mut v: Vec<String> = lines
            .iter()
            .map(|l| {
                l["input"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(got(&["--match-words", "3"]), ["a"]);
    assert_eq!(got(&["--match-lines", "2-5"]), ["b"]);
    assert_eq!(got(&["--filter-lines", "1"]), ["b"]);
    assert_eq!(got(&["--match-size", "0-9"]), ["c", "d"]);
    assert_eq!(
        got(&["--match-size", "0-9", "--match-status", "200"]),
        ["d"]
    );
    assert_eq!(got(&["--match-regex", "(?i)secret"]), ["d"]);
    assert_eq!(got(&["--filter-regex", "(?i)three|found"]), ["d"]);
    assert_eq!(
        got(&[
            "--match-status",
            "200",
            "--filter-words",
            "1",
            "--filter-size",
            "13"
        ]),
        ["b"]
    );
}

/// `--tls-info` on an https server whose certificate is made here.
#[test]
fn tls_info() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "volley signal test");
    p.not_after = rcgen::date_time_ymd(2040, 2, 29);
    let cert = p.self_signed(&key).unwrap();
    let pin = volley::text::base64(
        ring::digest::digest(&ring::digest::SHA256, &key.public_key_der()).as_ref(),
    );
    let addr = https_server(cert.der().to_vec(), key.serialize_der());
    let (lines, err, _) = volley(
        &["--tls-info", "--ip", "-k", &format!("https://{addr}/")],
        None,
    );
    let t = &lines[0]["tls"];
    assert_eq!(lines[0]["status"], 200, "{err}");
    assert!(t["version"].as_str().unwrap().starts_with("TLSv1_"), "{t}");
    assert!(t["cipher"].as_str().unwrap().starts_with("TLS"), "{t}");
    assert_eq!(t["subject"], "volley signal test");
    assert_eq!(t["sans"], serde_json::json!(["localhost", "127.0.0.1"]));
    assert_eq!(t["issuer"], "CN=volley signal test");
    assert_eq!(t["not_after"], "2040-02-29T00:00:00Z");
    assert_eq!(t["pin_sha256"], pin.as_str());
    assert_eq!(lines[0]["ip"], "127.0.0.1");
}

/// A keep-alive https server answering every request with a short 200.
fn https_server(cert: Vec<u8>, key: Vec<u8>) -> std::net::SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::Read;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let cfg = std::sync::Arc::new(cfg);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in l.incoming() {
            let Ok(tcp) = tcp else { continue };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                loop {
                    let mut req = Vec::new();
                    let mut b = [0u8; 1];
                    while !req.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut b) {
                            Ok(1) => req.push(b[0]),
                            _ => return,
                        }
                    }
                    if tls.write_all(&ok_response("secure")).is_err() {
                        return;
                    }
                    let _ = tls.flush();
                }
            });
        }
    });
    addr
}

/// The text format: aligned columns, the soft-404 mark, no colour off a terminal.
#[test]
fn text_format() {
    let s = http(echo_page);
    let list: String = ["/admin", "/nope"]
        .iter()
        .map(|p| s.url(p) + "\n")
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["-q", "--format", "text", "--calibrate", "-c", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(list.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let col = |l: &str| l.find("http://").unwrap();
    assert_eq!(col(lines[0]), col(lines[1]), "{text}");
    let nope = lines.iter().find(|l| l.contains("/nope")).unwrap();
    let admin = lines.iter().find(|l| l.contains("/admin")).unwrap();
    assert!(nope.contains(" soft http://"), "{nope}");
    assert!(
        admin.starts_with("200 ") && !admin.contains("soft"),
        "{admin}"
    );
}

/// `--help` is grouped under headings.
#[test]
fn help_is_grouped() {
    let out = Command::new(env!("CARGO_BIN_EXE_volley"))
        .arg("--help")
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&out.stdout);
    let at = |s: &str| h.find(s).unwrap_or_else(|| panic!("{s} missing:\n{h}"));
    let order = [
        "Targets:",
        "Output:",
        "Matching:",
        "Scheduling:",
        "Timeouts:",
        "Request:",
        "TLS:",
        "Network:",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{h}");
    assert!(at("--calibrate") > at("Matching:") && at("--calibrate") < at("Scheduling:"));
}
