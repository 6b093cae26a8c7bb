//! https against test servers whose certificates are made at test time (rcgen):
//! valid, expired, wrong name, self-signed, unknown CA with and without --cacert,
//! --insecure, pins, close_notify, stalled handshakes, session resumption.

mod common;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ServerConnection;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use volley::engine::Config;
use volley::tls::{client_config, TlsOptions};
use volley::ErrorKind;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "volley test CA");
    Ca {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf for `names`, signed by `ca` (or self-signed), valid or expired.
fn leaf(names: &[&str], ca: Option<&Ca>, expired: bool) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    }
    let cert = match ca {
        Some(ca) => p.signed_by(&key, &ca.cert, &ca.key).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    (cert.der().to_vec(), key.serialize_der())
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    /// Content-Length response, keep-alive.
    KeepAlive,
    /// Close-delimited body, then close_notify.
    CloseNotify,
    /// Close-delimited body, then a bare TCP close.
    BareClose,
    /// Accept TCP and never speak TLS.
    Silent,
    /// Content-Length 100, 10 bytes sent, then close_notify and close.
    Short,
}

struct TlsServer {
    addr: SocketAddr,
    resumed: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

fn tls_server(cert: (Vec<u8>, Vec<u8>), end: End) -> TlsServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.0)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.1)),
        )
        .unwrap();
    let cfg = Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let resumed = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let (r2, h2) = (resumed.clone(), handshakes.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(tcp) = s else { continue };
            let (cfg, r3, h3) = (cfg.clone(), r2.clone(), h2.clone());
            std::thread::spawn(move || serve(cfg, tcp, end, &r3, &h3));
        }
    });
    TlsServer {
        addr,
        resumed,
        handshakes,
    }
}

fn serve(
    cfg: Arc<rustls::ServerConfig>,
    mut tcp: TcpStream,
    end: End,
    resumed: &AtomicUsize,
    handshakes: &AtomicUsize,
) {
    if end == End::Silent {
        std::thread::sleep(Duration::from_secs(3));
        return;
    }
    let mut conn = ServerConnection::new(cfg).unwrap();
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    handshakes.fetch_add(1, Ordering::SeqCst);
    if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        resumed.fetch_add(1, Ordering::SeqCst);
    }
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
        match end {
            End::KeepAlive => {
                if tls.write_all(&ok_response("secure")).is_err() {
                    return;
                }
                let _ = tls.flush();
            }
            End::CloseNotify | End::BareClose => {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close");
                if end == End::CloseNotify {
                    tls.conn.send_close_notify();
                }
                let _ = tls.flush();
                return;
            }
            End::Short => {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
            End::Silent => unreachable!(),
        }
    }
}

fn tls_cfg(opts: TlsOptions) -> Config {
    Config {
        tls: Some(client_config(&opts).unwrap()),
        ..cfg()
    }
}

fn pinned(name: &str, addr: SocketAddr) -> (String, Vec<(String, u16, std::net::IpAddr)>) {
    (
        format!("https://{name}:{}/", addr.port()),
        vec![(name.to_string(), addr.port(), addr.ip())],
    )
}

fn write_pem(pem: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "volley-ca-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&p, pem).unwrap();
    p
}

fn err(o: &volley::engine::Outcome) -> (Option<ErrorKind>, String) {
    (
        o.error.as_ref().map(|e| e.kind),
        o.error
            .as_ref()
            .map(|e| e.detail.clone())
            .unwrap_or_default(),
    )
}

#[test]
fn valid_certificate_via_cacert_with_sni_and_timings() {
    let ca = ca();
    let s = tls_server(leaf(&["site.test"], Some(&ca), false), End::KeepAlive);
    let (url, resolve) = pinned("site.test", s.addr);
    let pem = write_pem(&ca.cert.pem());
    let cfg = Config {
        resolve,
        concurrency: 1,
        ..tls_cfg(TlsOptions {
            cacert: Some(pem.clone()),
            ..TlsOptions::default()
        })
    };
    let r = run(cfg, &[url.clone(), format!("{url}again")]);
    for o in &r.outcomes {
        assert_eq!((o.status, o.bytes), (Some(200), 6), "{o:?}");
    }
    assert!(r.outcomes[0].timings.tls.is_some());
    assert!(
        r.outcomes[1].timings.tls.is_none(),
        "second request reused the connection"
    );
    assert_eq!(s.handshakes.load(Ordering::SeqCst), 1);
    // Without --cacert the private CA is unknown.
    let (url, resolve) = pinned("site.test", s.addr);
    let r = run(
        Config {
            resolve,
            ..tls_cfg(TlsOptions::default())
        },
        &[url],
    );
    let (k, d) = err(&r.outcomes[0]);
    assert_eq!(k, Some(ErrorKind::Tls));
    assert!(d.contains("unknown issuer"), "{d}");
    assert_eq!(r.outcomes[0].attempts, 1, "tls errors are not retried");
    let _ = std::fs::remove_file(pem);
}

#[test]
fn expired_wrong_name_and_self_signed() {
    let ca = ca();
    let pem = write_pem(&ca.cert.pem());
    let with_ca = TlsOptions {
        cacert: Some(pem.clone()),
        ..TlsOptions::default()
    };
    let expired = tls_server(leaf(&["site.test"], Some(&ca), true), End::KeepAlive);
    let wrong = tls_server(leaf(&["other.test"], Some(&ca), false), End::KeepAlive);
    let selfs = tls_server(leaf(&["site.test"], None, false), End::KeepAlive);
    for (s, want) in [
        (&expired, "expired"),
        (&wrong, "not valid for this host name"),
        (&selfs, "unknown issuer"),
    ] {
        let (url, resolve) = pinned("site.test", s.addr);
        let r = run(
            Config {
                resolve,
                ..tls_cfg(with_ca.clone())
            },
            &[url],
        );
        let (k, d) = err(&r.outcomes[0]);
        assert_eq!(k, Some(ErrorKind::Tls), "{want}");
        assert!(d.contains(want), "{d} should say {want}");
    }
    // --insecure accepts all three.
    for s in [&expired, &wrong, &selfs] {
        let (url, resolve) = pinned("site.test", s.addr);
        let r = run(
            Config {
                resolve,
                ..tls_cfg(TlsOptions {
                    insecure: true,
                    ..TlsOptions::default()
                })
            },
            &[url],
        );
        assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    }
    let _ = std::fs::remove_file(pem);
}

#[test]
fn ip_literal_and_public_key_pins() {
    let (cert, key) = leaf(&["127.0.0.1"], None, false);
    let spki = volley::tls::spki_of(&cert).unwrap().to_vec();
    let good = volley::text::base64(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
    let s = tls_server((cert, key), End::KeepAlive);
    let url = format!("https://127.0.0.1:{}/", s.addr.port());
    let insecure_pinned = |pins: Vec<String>| {
        tls_cfg(TlsOptions {
            insecure: true,
            pins,
            ..TlsOptions::default()
        })
    };
    let r = run(
        insecure_pinned(vec![format!("sha256//{good}")]),
        std::slice::from_ref(&url),
    );
    assert_eq!(r.outcomes[0].status, Some(200), "{:?}", r.outcomes[0]);
    let r = run(
        insecure_pinned(vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()]),
        &[url],
    );
    let (k, d) = err(&r.outcomes[0]);
    assert_eq!(k, Some(ErrorKind::Tls));
    assert!(d.contains("pin mismatch") && d.contains(&good), "{d}");
    assert!(client_config(&TlsOptions {
        pins: vec!["short".into()],
        ..TlsOptions::default()
    })
    .is_err());
}

#[test]
fn close_notify_ends_body_bare_close_is_truncated() {
    let opts = TlsOptions {
        insecure: true,
        ..TlsOptions::default()
    };
    let s = tls_server(leaf(&["127.0.0.1"], None, false), End::CloseNotify);
    let r = run(
        tls_cfg(opts.clone()),
        &[format!("https://127.0.0.1:{}/", s.addr.port())],
    );
    let o = &r.outcomes[0];
    assert_eq!(
        (o.status, o.bytes, err(o).0),
        (Some(200), 11, None),
        "{o:?}"
    );
    let s = tls_server(leaf(&["127.0.0.1"], None, false), End::BareClose);
    let r = run(
        tls_cfg(opts),
        &[format!("https://127.0.0.1:{}/", s.addr.port())],
    );
    let (k, d) = err(&r.outcomes[0]);
    assert_eq!(k, Some(ErrorKind::Truncated));
    assert!(d.contains("close_notify"), "{d}");
}

#[test]
fn mid_body_loss_over_tls_is_truncated() {
    let s = tls_server(leaf(&["127.0.0.1"], None, false), End::Short);
    let r = run(
        tls_cfg(TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        }),
        &[format!("https://127.0.0.1:{}/", s.addr.port())],
    );
    let o = &r.outcomes[0];
    assert_eq!(
        (err(o).0, o.status, o.bytes),
        (Some(ErrorKind::Truncated), Some(200), 10),
        "{o:?}"
    );
}

#[test]
fn stalled_handshake_is_connect_timeout() {
    let s = tls_server(leaf(&["127.0.0.1"], None, false), End::Silent);
    let cfg = Config {
        connect_timeout: Duration::from_millis(300),
        retries: 0,
        ..tls_cfg(TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
    };
    let r = run(cfg, &[format!("https://127.0.0.1:{}/", s.addr.port())]);
    let (k, d) = err(&r.outcomes[0]);
    assert_eq!(k, Some(ErrorKind::ConnectTimeout));
    assert!(d.contains("TLS handshake"), "{d}");
}

#[test]
fn plain_http_server_on_https_url_is_tls_error() {
    // Like nginx on a plain port: reads what arrives, answers 400 in plain text.
    let s = server(|_, mut st, _| {
        let mut b = [0u8; 512];
        let _ = st.read(&mut b);
        let _ = st.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let r = run(
        tls_cfg(TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        }),
        &[format!("https://127.0.0.1:{}/", s.addr.port())],
    );
    assert_eq!(
        err(&r.outcomes[0]).0,
        Some(ErrorKind::Tls),
        "{:?}",
        r.outcomes[0]
    );
}

#[test]
fn sessions_resume_across_connections() {
    let s = tls_server(leaf(&["127.0.0.1"], None, false), End::KeepAlive);
    let urls: Vec<String> = (0..5)
        .map(|i| format!("https://127.0.0.1:{}/{i}", s.addr.port()))
        .collect();
    let cfg = Config {
        keepalive: false,
        concurrency: 1,
        ..tls_cfg(TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
    };
    let r = run(cfg, &urls);
    assert!(
        r.outcomes.iter().all(|o| o.status == Some(200)),
        "{:?}",
        r.outcomes
    );
    assert_eq!(s.handshakes.load(Ordering::SeqCst), 5);
    assert!(
        s.resumed.load(Ordering::SeqCst) >= 4,
        "{} of 5 resumed",
        s.resumed.load(Ordering::SeqCst)
    );
}

/// A forward proxy for tests: CONNECT is tunnelled to the named port on 127.0.0.1;
/// a plain request is answered by the proxy itself with its request line as the body.
/// Credentials u:p are required when `auth` is true.
fn proxy(auth: bool) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut c) = s else { return };
            let seen = seen2.clone();
            std::thread::spawn(move || loop {
                let Some(head) = read_request(&mut c) else {
                    return;
                };
                seen.lock().unwrap().push(head.clone());
                if auth && !head.contains("Proxy-Authorization: Basic dTpw\r\n") {
                    let _ = c.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    );
                    continue;
                }
                let line = head.lines().next().unwrap_or("").to_string();
                if let Some(target) = line
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                {
                    let port: u16 = target.rsplit(':').next().unwrap().parse().unwrap();
                    let up = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let _ = c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let (mut a, mut b) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                    let mut up2 = up;
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut b, &mut a);
                        let _ = a.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut c, &mut up2);
                    return;
                }
                let _ = c.write_all(&ok_response(&line));
            });
        }
    });
    (addr, seen)
}

#[test]
fn through_a_proxy_plain_and_connect() {
    let (paddr, seen) = proxy(true);
    let s = tls_server(leaf(&["site.test"], None, false), End::KeepAlive);
    let p = volley::engine::Proxy::parse(&format!("http://u:p@{paddr}")).unwrap();
    let c = Config {
        proxy: Some(p),
        ..tls_cfg(TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
    };
    // The target names resolve only at the proxy: nothing is resolved here.
    let r = run(
        c.clone(),
        &[
            "http://nowhere.test/x?y=1".into(),
            format!("https://site.test:{}/", s.addr.port()),
        ],
    );
    let o = &r.outcomes[0];
    assert_eq!(o.status, Some(200), "{o:?}");
    assert_eq!(r.bodies[&1], b"GET http://nowhere.test/x?y=1 HTTP/1.1");
    let o = &r.outcomes[1];
    assert_eq!((o.status, o.bytes), (Some(200), 6), "{o:?}");
    assert!(o.timings.tls.is_some());
    let seen = seen.lock().unwrap();
    assert!(seen.iter().any(|h| h.starts_with(&format!(
        "CONNECT site.test:{} HTTP/1.1\r\nHost: site.test:",
        s.addr.port()
    ))));
    assert!(seen
        .iter()
        .all(|h| h.contains("Proxy-Authorization: Basic dTpw")));
    drop(seen);
    // Without credentials: the plain request gets the proxy's 407 as its answer; the
    // tunnel is refused, which is a connect error naming the proxy's answer.
    let (paddr, _) = proxy(true);
    let p = volley::engine::Proxy::parse(&format!("http://{paddr}")).unwrap();
    let r = run(
        Config {
            proxy: Some(p),
            ..c
        },
        &[
            "http://nowhere.test/".into(),
            format!("https://site.test:{}/", s.addr.port()),
        ],
    );
    assert_eq!(r.outcomes[0].status, Some(407));
    let (k, d) = err(&r.outcomes[1]);
    assert_eq!(k, Some(ErrorKind::Connect));
    assert!(d.contains("407"), "{d}");
    assert_eq!(r.outcomes[1].attempts, 1);
}
