//! Effect of TLS session resumption: new connections per second to an in-process
//! rustls server, with the shared session cache (volley's default) and without it.
//! Run: `cargo bench --bench tls_resume`. The server thread shares the machine, so
//! compare the two rates, not their absolute values.
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec};
use volley::tls::{client_config, TlsOptions};

struct Count(u64);
impl Handler for Count {
    fn on_done(&mut self, o: Outcome) {
        assert_eq!(o.status, Some(200), "{o:?}");
        self.0 += 1;
    }
}

fn main() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let resumed = Arc::new(AtomicUsize::new(0));
    let r2 = resumed.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut tcp = s.unwrap();
            let mut conn = rustls::ServerConnection::new(server.clone()).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    break;
                }
            }
            if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                r2.fetch_add(1, Ordering::Relaxed);
            }
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    let n = 1000u64;
    let mut rates = Vec::new();
    for resume in [true, false] {
        let mut cfg = (*client_config(&TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
        .unwrap())
        .clone();
        if !resume {
            cfg.resumption = rustls::client::Resumption::disabled();
        }
        let spec = Arc::new(RequestSpec::default());
        let reqs: Vec<Request> = (0..n)
            .map(|i| Request {
                tag: i,
                url: format!("https://{addr}/{i}"),
                spec: spec.clone(),
            })
            .collect();
        resumed.store(0, Ordering::Relaxed);
        let config = Config {
            concurrency: 1,
            keepalive: false,
            tls: Some(Arc::new(cfg)),
            ..Config::default()
        };
        let t = Instant::now();
        let mut e = Engine::new(config, reqs.into_iter().fuse(), Count(0)).unwrap();
        e.run().unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(e.handler().0, n);
        let rate = n as f64 / secs;
        println!(
            "resumption {}: {n} new TLS connections, {:.0}/s, {} resumed server-side",
            if resume { "on " } else { "off" },
            rate,
            resumed.load(Ordering::Relaxed)
        );
        rates.push(rate);
    }
    println!(
        "resumption speeds up new connections {:.2}x",
        rates[0] / rates[1]
    );
}
