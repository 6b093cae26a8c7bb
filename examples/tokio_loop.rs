//! Driving volley's engine from a tokio event loop (issue 15's "your loop or ours").
//!
//! The engine exposes its poll descriptor (`AsRawFd`) and the time it next needs a
//! turn (`Engine::next_timeout`); here tokio's `AsyncFd` watches the descriptor on a
//! current-thread runtime, beside a tokio timer task that shares the same loop, and
//! `step(Some(ZERO))` runs a non-blocking turn whenever the descriptor is readable or
//! the timeout has passed. tokio is a dev-dependency only: the library never needs it.
//!
//!     cargo run --example tokio_loop -- http://127.0.0.1:8080/ http://127.0.0.1:8080/x
//!
//! `tests/library.rs` runs `fetch_all` against a loopback server, so `cargo test`
//! exercises this example.
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use volley::engine::{Config, Engine, Handler, Outcome, Request, RequestSpec, Source};

/// The engine's descriptor, borrowed for `AsyncFd` (which wants an owner of one; the
/// engine keeps the descriptor itself and outlives this).
struct PollFd(RawFd);

impl AsRawFd for PollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Runs `engine` to completion inside the current tokio runtime.
pub async fn drive<S: Source, H: Handler>(engine: &mut Engine<S, H>) -> io::Result<()> {
    // SAFETY: the engine owns the descriptor and is borrowed (so neither dropped nor
    // moved) for as long as `fd` lives; `fd` is dropped before this function returns.
    let fd =
        unsafe { AsyncFd::register_with_interest(PollFd(engine.as_raw_fd()), Interest::READABLE)? };
    loop {
        // A non-blocking turn: start what may start, handle what is ready.
        engine.step(Some(Duration::ZERO))?;
        if engine.is_finished() {
            return Ok(());
        }
        let wait = engine.next_timeout().unwrap_or(Duration::from_secs(3600));
        if let Ok(guard) = tokio::time::timeout(wait, fd.readable()).await {
            // Clear before the step that consumes the events, so one arriving during
            // that step marks the descriptor readable again.
            guard?.clear_ready();
        }
    }
}

/// Collects outcomes.
#[derive(Default)]
pub struct Outcomes(pub Vec<Outcome>);

impl Handler for Outcomes {
    fn on_done(&mut self, o: Outcome) {
        self.0.push(o);
    }
}

/// Fetches `urls` with `config` on a current-thread tokio runtime and returns the
/// outcomes (in completion order). Meanwhile a tokio task on the same loop counts
/// milliseconds in `ticks`: the engine shares the loop, never blocks it.
pub fn fetch_all(
    config: Config,
    urls: Vec<String>,
    ticks: Arc<AtomicU64>,
) -> io::Result<Vec<Outcome>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let spec = Arc::new(RequestSpec::default());
    let source = urls
        .into_iter()
        .enumerate()
        .map(move |(i, url)| Request {
            tag: i as u64 + 1,
            url,
            spec: spec.clone(),
        })
        .fuse();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let ticker = tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut engine = Engine::new(config, source, Outcomes::default())?;
        drive(&mut engine).await?;
        ticker.abort();
        let (_, out) = engine.into_parts();
        Ok(out.0)
    })
}

#[allow(dead_code)] // `tests/library.rs` includes this file for `fetch_all`.
fn main() -> io::Result<()> {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    let outcomes = fetch_all(Config::default(), urls, Arc::default())?;
    for o in outcomes {
        match (&o.error, o.status) {
            (Some(e), _) => println!("#{} {} failed: {e}", o.tag, o.url()),
            (_, status) => println!("#{} {} {status:?}, {} bytes", o.tag, o.url(), o.bytes),
        }
    }
    Ok(())
}
