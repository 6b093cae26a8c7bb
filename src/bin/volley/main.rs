//! The `volley` probe: options → engine configuration, targets → requests,
//! outcomes → lines. See `../shared/contract.md` (and docs/) for the contract.

mod cli;
mod input;
mod output;
mod resume;

use clap::Parser;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use volley::engine::Engine;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(s) = STOP.get() {
        s.store(true, Ordering::Relaxed);
    }
}

fn fatal(msg: &str) -> ! {
    eprintln!("volley: {msg}");
    std::process::exit(1);
}

fn usage(msg: &str) -> ! {
    eprintln!("volley: {msg}");
    std::process::exit(2);
}

fn main() {
    let opts = cli::Opts::parse();
    let spec = Arc::new(opts.spec().unwrap_or_else(|e| usage(&e)));
    let mut cfg = opts.config().unwrap_or_else(|e| usage(&e));
    let targets = if let (Some(base), Some(file)) = (&opts.base, &opts.wordlist) {
        if !opts.urls.is_empty() || opts.list.is_some() {
            usage("--url/--wordlist cannot be combined with URL arguments or --list");
        }
        let exts = opts
            .ext
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|e| e.trim().trim_start_matches('.').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        input::Targets::Wordlist {
            base: base.clone(),
            file: file.clone(),
            exts,
        }
    } else if let Some(l) = &opts.list {
        if !opts.urls.is_empty() {
            usage("--list cannot be combined with URL arguments");
        }
        input::Targets::List(l.clone())
    } else if !opts.urls.is_empty() {
        input::Targets::Args(opts.urls.clone())
    } else {
        input::Targets::List("-".into())
    };

    let stop = Arc::new(AtomicBool::new(false));
    let _ = STOP.set(stop.clone());
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    // --resume FILE: skip what FILE answered already, and append to it.
    let mut skip = resume::Done::default();
    if let Some(r) = &opts.resume {
        if opts.output.as_ref().is_some_and(|o| o != r) {
            usage("--resume FILE writes to FILE: drop -o or give it the same file");
        }
        if opts.format != output::Format::Jsonl {
            usage("--resume needs --format jsonl (the output it resumes)");
        }
        skip = resume::load(r).unwrap_or_else(|e| fatal(&format!("--resume {}: {e}", r.display())));
        if !opts.quiet {
            eprintln!(
                "volley: resuming: {} targets already in {}",
                skip.len(),
                r.display()
            );
        }
    }
    let out: Box<dyn Write + Send> = match opts.resume.as_ref().or(opts.output.as_ref()) {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(opts.resume.is_some())
                .write(true)
                .truncate(opts.resume.is_none())
                .open(p)
                .unwrap_or_else(|e| fatal(&format!("cannot write {}: {e}", p.display()))),
        ),
        None => Box::new(std::io::stdout()),
    };
    let out: output::SharedOut = Arc::new(Mutex::new(out));
    let notifiers: input::Notifiers = Arc::new(Mutex::new(Vec::new()));
    let stream = input::Stream::start(targets, opts.shard, skip, spec, notifiers.clone())
        .unwrap_or_else(|e| fatal(&e));
    let input_error = stream.error.clone();
    let (read_total, read_complete) = (stream.total.clone(), stream.complete.clone());
    // SAFETY: isatty only inspects the descriptor.
    let progress = !opts.quiet && unsafe { libc::isatty(2) } == 1;
    cfg.stop = Some(stop.clone());
    // Each worker's engine divides the concurrency; they share input and output.
    let workers = opts.workers as usize;
    let counters = Arc::new(output::Progress::default());
    let started = Instant::now();
    let mut threads = Vec::new();
    for w in 0..workers {
        let mut cfg = cfg.clone();
        cfg.concurrency =
            (cfg.concurrency / workers + usize::from(w < cfg.concurrency % workers)).max(1);
        let writer = output::Writer::new(
            out.clone(),
            output::Options {
                format: opts.format,
                matching: opts.match_status.clone(),
                filtering: opts.filter_status.clone(),
                title: opts.title,
                headers: opts.show_headers,
            },
            counters.clone(),
            w == 0,
        );
        let (source, notifiers, stop) = (stream.handle(), notifiers.clone(), stop.clone());
        let t = std::thread::Builder::new()
            .name(format!("volley-worker-{w}"))
            .spawn(move || run_worker(cfg, source, writer, &notifiers, &stop))
            .unwrap_or_else(|e| fatal(&format!("cannot start a worker: {e}")));
        threads.push(t);
    }
    drop(stream);
    // Without a progress line, join waits for the workers with no polling delay.
    while progress && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        {
            let done = counters.done.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let total = read_total.load(Ordering::Relaxed);
            let of = if read_complete.load(Ordering::Relaxed) {
                format!("/{total}")
            } else {
                String::new()
            };
            eprint!(
                "\r\x1b[K{done}{of} done, {:.0}/s, {} errors",
                done as f64 / secs,
                counters.errors.load(Ordering::Relaxed),
            );
        }
    }
    let mut summary = output::Summary::default();
    for t in threads {
        match t.join() {
            Ok(s) => summary.merge(&s),
            Err(_) => fatal("a worker panicked"),
        }
    }
    if let Some(e) = input_error.lock().ok().and_then(|g| g.clone()) {
        fatal(&e);
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let elapsed = started.elapsed();
    let s = &summary;
    {
        let mut line = format!(
            "volley: {} targets in {:.2}s ({:.0}/s)",
            s.total,
            elapsed.as_secs_f64(),
            s.total as f64 / elapsed.as_secs_f64().max(1e-9)
        );
        for (i, c) in s.classes.iter().enumerate() {
            if *c > 0 && (1..=5).contains(&i) {
                line.push_str(&format!(", {i}xx: {c}"));
            }
        }
        for (k, c) in &s.errors {
            line.push_str(&format!(", {k}: {c}"));
        }
        eprintln!("{line}");
    }
    if stop.load(Ordering::Relaxed) {
        std::process::exit(130);
    }
}

/// One worker: an engine on this thread until its share of the input is done (or
/// the stop flag); flushes whole lines after every loop turn. Returns its counts.
fn run_worker(
    cfg: volley::engine::Config,
    source: input::Stream,
    writer: output::Writer,
    notifiers: &input::Notifiers,
    stop: &AtomicBool,
) -> output::Summary {
    let mut engine = Engine::new(cfg, source, writer)
        .unwrap_or_else(|e| fatal(&format!("cannot start the event loop: {e}")));
    if let Ok(mut n) = notifiers.lock() {
        n.push(engine.notifier());
    }
    loop {
        // Wake at least every 250 ms to notice a stop signal delivered elsewhere.
        let more = match engine.step(Some(std::time::Duration::from_millis(250))) {
            Ok(m) => m,
            Err(e) => fatal(&format!("event loop: {e}")),
        };
        if let Err(e) = engine.handler_mut().flush() {
            fatal(&format!("cannot write results: {e}"));
        }
        if stop.load(Ordering::Relaxed) || !more {
            break;
        }
    }
    engine.into_parts().1.summary
}
