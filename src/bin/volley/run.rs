//! One run of the probe: W worker threads, each an engine on its own event loop
//! pulling from the shared target stream, the writer thread behind them, a progress
//! line while stderr is a terminal, and the summary at the end.
//!
//! Invariant: a worker's loop never waits on output — lines go to the writer
//! thread's queue within [`HANDOVER_EVERY`] of being formatted, or the worker
//! stops pulling targets until they can (see `writer`). Every finished result is handed over before the run ends,
//! also after a stop signal.

use crate::handler::{Options, Probe, Progress, Worker};
use crate::input;
use crate::summary::Summary;
use crate::writer::{Gate, Gated, Queue, Sink, QUEUE_BYTES};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use volley::calibrate::adapter::calibrated;
use volley::engine::{Config, Engine, Source};

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
    /// `--calibrate`: the calibration adapter's settings.
    pub calibrate: Option<volley::calibrate::adapter::Options>,
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
        // Each worker has its own stub resolver: the DNS rate and cache are shares
        // of the totals (queries in flight follow the worker's share of -c).
        cfg.dns_rate /= job.workers as f64;
        cfg.dns_cache = (volley::dns::cache::DEFAULT_CAPACITY / job.workers).max(1024);
        let gate = Gate::default();
        let probe = Probe::new(job.output.clone(), counters.clone(), gate.clone());
        let source = Gated::new(job.stream.handle(), gate);
        let (queue, notifiers, stop) = (sink.queue(), job.notifiers.clone(), stop.clone());
        let calib = job.calibrate.clone().map(|mut c| {
            c.park_cap = cfg.concurrency.saturating_mul(10);
            c
        });
        let t = std::thread::Builder::new()
            .name(format!("volley-worker-{w}"))
            .spawn(move || {
                // Engines (and the adapter's shared state) are built on their thread.
                let fatal = |e: std::io::Error| -> ! {
                    crate::fatal(&format!("cannot start the event loop: {e}"))
                };
                match calib {
                    None => {
                        let e = Engine::new(cfg, source, probe).unwrap_or_else(|e| fatal(e));
                        worker(e, &queue, &notifiers, &stop)
                    }
                    Some(c) => {
                        let (source, probe) = calibrated(source, probe, c);
                        let e = Engine::new(cfg, source, probe).unwrap_or_else(|e| fatal(e));
                        worker(e, &queue, &notifiers, &stop)
                    }
                }
            })
            .unwrap_or_else(|e| crate::fatal(&format!("cannot start a worker: {e}")));
        threads.push(t);
    }
    drop(job.stream);
    // Without a progress line, join waits for the workers with no polling delay.
    while job.progress && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        let total = read_complete
            .load(Ordering::Relaxed)
            .then(|| read_total.load(Ordering::Relaxed));
        crate::say(&format!(
            "\r\x1b[K{}",
            progress_line(&counters, total, started.elapsed().as_secs_f64())
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
    let pushed = job
        .cfg
        .shared
        .pushed_back(crate::summary::pushback::TOP_PUSHERS);
    crate::say(&crate::summary::pushback::render("volley: ", &pushed));
    if stop.load(Ordering::Relaxed) {
        130
    } else {
        0
    }
}

/// The progress line: a bar when the total is known, done/total, rate, errors,
/// soft-404s (when any) and the time left at the current rate.
///
/// `[########............]  1400/3000  47%  933/s  0 errors  12 soft-404  ETA 0:02`
pub fn progress_line(c: &Progress, total: Option<u64>, secs: f64) -> String {
    const WIDTH: u64 = 20;
    let done = c.done.load(Ordering::Relaxed);
    let rate = done as f64 / secs.max(1e-9);
    let mut s = String::new();
    match total {
        Some(t) if t > 0 => {
            let filled = (done.min(t) * WIDTH / t) as usize;
            s.push_str(&format!(
                "[{}{}] {done}/{t} {:>3}%",
                "#".repeat(filled),
                ".".repeat(WIDTH as usize - filled),
                done.min(t) * 100 / t
            ));
        }
        _ => s.push_str(&format!("{done} done")),
    }
    s.push_str(&format!(
        "  {rate:.0}/s  {} errors",
        c.errors.load(Ordering::Relaxed)
    ));
    let soft = c.soft404.load(Ordering::Relaxed);
    if soft > 0 {
        s.push_str(&format!("  {soft} soft-404"));
    }
    if let Some(t) = total.filter(|&t| t > done && rate > 0.0) {
        let left = ((t - done) as f64 / rate).ceil() as u64;
        s.push_str(&format!("  ETA {}:{:02}", left / 60, left % 60));
    }
    s
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
fn worker<S: Source, H: Worker>(
    mut engine: Engine<S, H>,
    queue: &Queue,
    notifiers: &Mutex<Vec<volley::engine::Notifier>>,
    stop: &AtomicBool,
) -> Summary {
    if let Ok(mut n) = notifiers.lock() {
        n.push(engine.notifier());
    }
    let mut handed = Instant::now();
    loop {
        // Wake at least every 250 ms to notice a stop signal delivered elsewhere,
        // and in time to hand over lines held no longer than HANDOVER_EVERY.
        let wait = match engine.handler_mut().probe().pending() {
            0 => Duration::from_millis(250),
            _ => HANDOVER_EVERY.saturating_sub(handed.elapsed()),
        };
        let more = match engine.step(Some(wait)) {
            Ok(m) => m,
            Err(e) => crate::fatal(&format!("event loop: {e}")),
        };
        let stopping = stop.load(Ordering::Relaxed) || !more;
        let probe = engine.handler_mut().probe();
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
    let mut probe = engine.into_parts().1.into_probe();
    if let Err(e) = probe.finish(queue) {
        crate::fatal(&e);
    }
    probe.summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar() {
        let c = Progress::default();
        c.done.store(1400, Ordering::Relaxed);
        c.errors.store(3, Ordering::Relaxed);
        assert_eq!(
            progress_line(&c, Some(3000), 2.0),
            "[#########...........] 1400/3000  46%  700/s  3 errors  ETA 0:03"
        );
        c.soft404.store(12, Ordering::Relaxed);
        assert_eq!(
            progress_line(&c, None, 2.0),
            "1400 done  700/s  3 errors  12 soft-404"
        );
        c.done.store(3000, Ordering::Relaxed);
        assert!(
            progress_line(&c, Some(3000), 1.0).starts_with("[####################] 3000/3000 100%")
        );
        assert!(!progress_line(&c, Some(3000), 1.0).contains("ETA"));
        // Nothing done yet, or an empty input: no division by zero.
        c.done.store(0, Ordering::Relaxed);
        assert!(progress_line(&c, Some(0), 0.0).starts_with("0 done"));
        assert!(!progress_line(&c, Some(10), 0.0).contains("ETA"));
    }
}
