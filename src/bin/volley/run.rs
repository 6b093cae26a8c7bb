//! One run of the probe: W worker threads, each an engine on its own event loop
//! pulling from the shared target stream, the writer thread behind them, a progress
//! line while stderr is a terminal, and the summary at the end.
//!
//! Invariant: a worker's loop never waits on output — lines go to the writer
//! thread's queue within [`HANDOVER_EVERY`] of being formatted, or the worker
//! stops pulling targets until they can (see `writer`). Every finished result is handed over before the run ends,
//! also after a stop signal.

use crate::handler::{Options, Probe, Progress};
use crate::input;
use crate::summary::Summary;
use crate::writer::{Gate, Gated, Queue, Sink, QUEUE_BYTES};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine};

/// Everything a run needs, from the options.
pub struct Job {
    /// Engine configuration (concurrency is divided among the workers).
    pub cfg: Config,
    /// Event loops.
    pub workers: usize,
    /// The started target stream.
    pub stream: input::Stream,
    /// Engines to wake when input or output room arrives.
    pub notifiers: input::Notifiers,
    /// Where lines go.
    pub out: Box<dyn Write + Send>,
    /// What lines look like.
    pub output: Options,
    /// Show the progress line.
    pub progress: bool,
}

/// Runs `job` until the input is done or `stop` is set; prints the summary and
/// returns the exit status. Fatal errors end the process (exit 1).
pub fn run(mut job: Job, stop: &Arc<AtomicBool>) -> i32 {
    let sink = Sink::start(
        job.out,
        job.output.format.preamble(),
        QUEUE_BYTES,
        job.notifiers.clone(),
    )
    .unwrap_or_else(|e| crate::fatal(&e));
    let input_error = job.stream.error.clone();
    let (read_total, read_complete) = (job.stream.total.clone(), job.stream.complete.clone());
    job.cfg.stop = Some(stop.clone());
    let counters = Arc::new(Progress::default());
    let started = Instant::now();
    let mut threads = Vec::new();
    for w in 0..job.workers {
        let mut cfg = job.cfg.clone();
        cfg.concurrency =
            (cfg.concurrency / job.workers + usize::from(w < cfg.concurrency % job.workers)).max(1);
        // Each worker has its own stub resolver: the DNS rate, queries in flight and
        // cache are shares of the totals.
        cfg.dns_rate /= job.workers as f64;
        cfg.dns_in_flight = (512 / job.workers).max(16);
        cfg.dns_cache = (volley::dns::cache::DEFAULT_CAPACITY / job.workers).max(1024);
        let gate = Gate::default();
        let probe = Probe::new(job.output.clone(), counters.clone(), gate.clone());
        let source = Gated::new(job.stream.handle(), gate);
        let (queue, notifiers, stop) = (sink.queue(), job.notifiers.clone(), stop.clone());
        let t = std::thread::Builder::new()
            .name(format!("volley-worker-{w}"))
            .spawn(move || worker(cfg, source, probe, &queue, &notifiers, &stop))
            .unwrap_or_else(|e| crate::fatal(&format!("cannot start a worker: {e}")));
        threads.push(t);
    }
    drop(job.stream);
    // Without a progress line, join waits for the workers with no polling delay.
    while job.progress && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        let done = counters.done.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let of = if read_complete.load(Ordering::Relaxed) {
            format!("/{}", read_total.load(Ordering::Relaxed))
        } else {
            String::new()
        };
        crate::say(&format!(
            "\r\x1b[K{done}{of} done, {:.0}/s, {} errors",
            done as f64 / secs,
            counters.errors.load(Ordering::Relaxed),
        ));
    }
    let mut summary = Summary::default();
    for t in threads {
        match t.join() {
            Ok(s) => summary.merge(&s),
            Err(_) => crate::fatal("a worker panicked"),
        }
    }
    debug_assert_eq!(summary.accounted(), summary.total);
    if let Err(e) = sink.finish() {
        crate::fatal(&e);
    }
    if let Some(e) = input_error.lock().ok().and_then(|g| g.clone()) {
        crate::fatal(&e);
    }
    if job.progress {
        crate::say("\r\x1b[K");
    }
    let secs = started.elapsed().as_secs_f64();
    let head = format!(
        "{} targets in {secs:.2}s ({:.0}/s)",
        summary.total,
        summary.total as f64 / secs.max(1e-9)
    );
    crate::say(&summary.render("volley: ", &head));
    if stop.load(Ordering::Relaxed) {
        130
    } else {
        0
    }
}

/// Lines are handed to the writer at least this often (and sooner when they add up
/// to [`HANDOVER_BYTES`]): one hand-over per loop turn would cost a thread wake-up
/// per turn, some 15 % of the CPU of a fast keep-alive run.
const HANDOVER_EVERY: Duration = Duration::from_millis(10);
/// Lines handed over as soon as they add up to this much.
const HANDOVER_BYTES: usize = 64 * 1024;

/// One worker: an engine on this thread until its share of the input is done (or
/// the stop flag); hands its lines to the writer without waiting (every
/// [`HANDOVER_EVERY`] at most), and all of them at the end. Returns its counts.
fn worker(
    cfg: Config,
    source: Gated<input::Stream>,
    probe: Probe,
    queue: &Queue,
    notifiers: &Mutex<Vec<volley::engine::Notifier>>,
    stop: &AtomicBool,
) -> Summary {
    let mut engine = Engine::new(cfg, source, probe)
        .unwrap_or_else(|e| crate::fatal(&format!("cannot start the event loop: {e}")));
    if let Ok(mut n) = notifiers.lock() {
        n.push(engine.notifier());
    }
    let mut handed = Instant::now();
    loop {
        // Wake at least every 250 ms to notice a stop signal delivered elsewhere,
        // and in time to hand over lines held no longer than HANDOVER_EVERY.
        let wait = match engine.handler_mut().pending() {
            0 => Duration::from_millis(250),
            _ => HANDOVER_EVERY.saturating_sub(handed.elapsed()),
        };
        let more = match engine.step(Some(wait)) {
            Ok(m) => m,
            Err(e) => crate::fatal(&format!("event loop: {e}")),
        };
        let stopping = stop.load(Ordering::Relaxed) || !more;
        let probe = engine.handler_mut();
        if stopping
            || probe.held()
            || probe.pending() >= HANDOVER_BYTES
            || handed.elapsed() >= HANDOVER_EVERY
        {
            if let Err(e) = probe.hand_over(queue) {
                crate::fatal(&e);
            }
            handed = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let mut probe = engine.into_parts().1;
    if let Err(e) = probe.finish(queue) {
        crate::fatal(&e);
    }
    probe.summary
}
