//! A complete library example: fetch URLs given as arguments through the engine,
//! printing each response head's status and server, the body size, and the outcome.
//!
//!     cargo run --example fetch -- http://127.0.0.1:8080/ http://127.0.0.1:8080/x
use std::sync::Arc;
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec, ResponseHead};

struct Print;

impl Handler for Print {
    fn on_head(&mut self, tag: u64, head: &ResponseHead<'_>) {
        let server = head.header("server").map(String::from_utf8_lossy);
        println!("#{tag} {} {} server={server:?}", head.status, head.url);
    }
    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        println!("#{tag} body chunk of {} bytes", chunk.len());
    }
    fn on_done(&mut self, o: Outcome) {
        match (&o.error, o.status) {
            (Some(e), _) => println!("#{} failed: {e}", o.tag),
            (None, Some(s)) => println!(
                "#{} done: {s}, {} bytes in {:?}",
                o.tag, o.bytes, o.timings.total
            ),
            (None, None) => unreachable!("an outcome has a status or an error"),
        }
    }
}

fn main() -> std::io::Result<()> {
    let spec = Arc::new(RequestSpec::default());
    // A pull-based source: any iterator of requests (here, the arguments).
    let source = std::env::args()
        .skip(1)
        .enumerate()
        .map(move |(i, url)| Request {
            tag: i as u64 + 1,
            url,
            spec: spec.clone(),
        })
        .fuse();
    let config = Config {
        follow: true,
        ..Config::default()
    };
    let mut engine = Engine::new(config, source, Print)?;
    engine.run()
}
