//! The `volley` probe: options → engine configuration, targets → requests,
//! outcomes → lines. See `../shared/contract.md` (and docs/) for the contract.

mod cli;
mod input;
mod output;

use clap::Parser;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
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

    let out: Box<dyn Write> = match &opts.output {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
                .unwrap_or_else(|e| fatal(&format!("cannot write {}: {e}", p.display()))),
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let notifier = Arc::new(OnceLock::new());
    let stream = input::Stream::start(targets, opts.shard, spec, notifier.clone())
        .unwrap_or_else(|e| fatal(&e));
    let input_error = stream.error.clone();
    let (read_total, read_complete) = (stream.total.clone(), stream.complete.clone());
    // SAFETY: isatty only inspects the descriptor.
    let progress = !opts.quiet && unsafe { libc::isatty(2) } == 1;
    let mut last_progress = Instant::now();
    cfg.stop = Some(stop.clone());
    let writer = output::Writer::new(
        out,
        output::Options {
            format: opts.format,
            matching: opts.match_status.clone(),
            filtering: opts.filter_status.clone(),
            title: opts.title,
            headers: opts.show_headers,
        },
    );
    let started = Instant::now();
    let mut engine = Engine::new(cfg, stream, writer)
        .unwrap_or_else(|e| fatal(&format!("cannot start the event loop: {e}")));
    let _ = notifier.set(engine.notifier());
    loop {
        let wait = progress.then_some(std::time::Duration::from_millis(250));
        let more = match engine.step(wait) {
            Ok(m) => m,
            Err(e) => fatal(&format!("event loop: {e}")),
        };
        if let Err(e) = engine.handler_mut().flush() {
            fatal(&format!("cannot write results: {e}"));
        }
        if stop.load(Ordering::Relaxed) || !more {
            break;
        }
        if progress && last_progress.elapsed().as_millis() >= 250 {
            last_progress = Instant::now();
            let st = engine.stats();
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let total = read_total.load(Ordering::Relaxed);
            let of = if read_complete.load(Ordering::Relaxed) {
                format!("/{total}")
            } else {
                String::new()
            };
            eprint!(
                "\r\x1b[K{}{of} done, {:.0}/s, {} errors, {} in flight",
                st.done,
                st.done as f64 / secs,
                st.errors,
                st.active
            );
        }
    }
    if let Some(e) = input_error.lock().ok().and_then(|g| g.clone()) {
        let _ = engine.handler_mut().flush();
        fatal(&e);
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let elapsed = started.elapsed();
    let s = &engine.handler().summary;
    if !opts.quiet {
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
