//! The `volley` probe: options → engine configuration → run → exit status; and
//! `volley report FILE...` over the JSON Lines of earlier runs. See
//! `../shared/contract.md` (and docs/) for the contract.
//!
//! Module map: `cli` (options), `parse` (option values and their ranges), `shard` (`--shard`), `input` (the target stream),
//! `resume` (`--resume`), `run` (workers and the summary), `handler` (outcomes →
//! lines), `filter`, `title`, `format` (jsonl/csv/text), `writer` (the writer thread
//! and back-pressure), `summary` (counts, histograms, top-k), `report`, `bitset` and
//! `html`.

mod bitset;
mod cli;
mod filter;
mod format;
mod handler;
mod html;
mod input;
mod parse;
mod report;
mod resume;
mod run;
mod shard;
mod summary;
#[cfg(test)]
mod testutil;
mod title;
mod writer;

use clap::Parser;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "report") {
        std::process::exit(report::main(&args[1..]));
    }
    let opts = cli::Opts::parse_from(args);
    // Before any thread starts: the descriptor table grows once, without waiting.
    volley::engine::reserve_fds(fds_needed(opts.concurrency as usize));
    let job = job(&opts);
    let jar = job.cfg.cookies.clone();
    let stop = install_signal_handlers();
    let code = run::run(job, &stop);
    std::process::exit(save_cookies(&opts, jar, code));
}

/// Descriptors a run may hold at once: its connections (with a Happy Eyeballs
/// racer each), its resolvers' sockets, and the few of its own.
fn fds_needed(concurrency: usize) -> usize {
    concurrency.saturating_mul(2).saturating_add(1024)
}

/// `--cookie-jar FILE`: writes the jar at the end of the run (after a stop too);
/// a failure to write is exit 1.
fn save_cookies(opts: &cli::Opts, jar: Option<Arc<Mutex<volley::cookie::Jar>>>, code: i32) -> i32 {
    let (Some(path), Some(jar)) = (&opts.cookie_jar, jar) else {
        return code;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let jar = jar.lock().unwrap_or_else(|p| p.into_inner());
    match volley::cookie::file::save(&jar, path, now) {
        Ok(()) => code,
        Err(e) => {
            say(&format!("volley: --cookie-jar {}: {e}\n", path.display()));
            1
        }
    }
}

/// Writes `text` to stderr. Unlike `eprint!`, a closed or broken stderr is ignored
/// rather than a panic: no input, and no plumbing, may panic the binary.
pub fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Ends the run with exit 1 and one line on stderr.
pub fn fatal(msg: &str) -> ! {
    say(&format!("volley: {msg}\n"));
    std::process::exit(1);
}

/// Ends the run with exit 2 (bad usage) and a message naming the option.
pub fn usage(msg: &str) -> ! {
    say(&format!("volley: {msg}\n"));
    std::process::exit(2);
}

/// The run the options describe: configuration, targets, output. Exits on bad
/// usage (2) or an unreadable input or unwritable output (1).
fn job(opts: &cli::Opts) -> run::Job {
    let spec = Arc::new(opts.spec().unwrap_or_else(|e| usage(&e)));
    let cfg = opts.config().unwrap_or_else(|e| usage(&e));
    let targets = opts.targets().unwrap_or_else(|e| usage(&e));
    let shard = shard::resolve(opts.shard, opts.shards, &|k| std::env::var(k).ok())
        .unwrap_or_else(|e| usage(&e));
    let skip = resume_state(opts);
    let out = open_output(opts);
    let notifiers: input::Notifiers = Arc::new(Mutex::new(Vec::new()));
    let stream = input::Stream::start(targets, shard, skip, spec, notifiers.clone())
        .unwrap_or_else(|e| fatal(&e));
    run::Job {
        cfg,
        workers: opts.workers as usize,
        stream,
        notifiers,
        out,
        output: output_options(opts),
        calibrate: calibration(opts),
        // SAFETY: isatty only inspects the descriptor.
        progress: !opts.quiet && unsafe { libc::isatty(2) } == 1,
    }
}

/// How results are filtered and written.
fn output_options(opts: &cli::Opts) -> handler::Options {
    use filter::Conditions;
    let to_stdout = opts.resume.is_none() && opts.to_stdout();
    handler::Options {
        format: opts.format,
        filters: filter::Filters {
            matching: Conditions {
                status: opts.match_status.clone(),
                size: opts.match_size.clone(),
                words: opts.match_words.clone(),
                lines: opts.match_lines.clone(),
                regex: opts.match_regex.clone(),
            },
            filtering: Conditions {
                status: opts.filter_status.clone(),
                size: opts.filter_size.clone(),
                words: opts.filter_words.clone(),
                lines: opts.filter_lines.clone(),
                regex: opts.filter_regex.clone(),
            },
            calibrated: opts.filter_calibrated,
        },
        title: opts.title,
        headers: opts.show_headers,
        counts: opts.counts,
        hash: opts.hash,
        ip: opts.ip,
        tls: opts.tls_info,
        calibrate: opts.calibrate || opts.filter_calibrated,
        // SAFETY: isatty only inspects the descriptor.
        color: opts.format == format::Format::Text
            && to_stdout
            && std::env::var_os("NO_COLOR").is_none()
            && unsafe { libc::isatty(1) } == 1,
    }
}

/// `--calibrate`: the adapter's settings (per worker: the park cap follows the
/// worker's share of the concurrency, set in `run`).
fn calibration(opts: &cli::Opts) -> Option<volley::calibrate::adapter::Options> {
    use volley::calibrate::adapter::{Mode, Options};
    if !(opts.calibrate || opts.filter_calibrated) {
        return None;
    }
    let mode = match opts.targets() {
        Ok(input::Targets::Wordlist { base, exts, .. }) => Mode::Wordlist { base, exts },
        _ => Mode::List,
    };
    let mut o = Options::new(mode, opts.concurrency as usize);
    o.want = output_options(opts).want();
    Some(o)
}

/// `--resume FILE`: what FILE answered already (it is then appended to).
fn resume_state(opts: &cli::Opts) -> resume::Done {
    let Some(r) = &opts.resume else {
        return resume::Done::default();
    };
    if r.as_os_str() == "-" {
        usage(
            "--resume needs a file to read and append to, not `-` (write ./- for a file named -)",
        );
    }
    if opts.output.as_ref().is_some_and(|o| o != r) {
        usage("--resume FILE writes to FILE: drop -o or give it the same file");
    }
    if opts.format != format::Format::Jsonl {
        usage("--resume needs --format jsonl (the output it resumes)");
    }
    let skip = resume::load(r).unwrap_or_else(|e| fatal(&format!("--resume {}: {e}", r.display())));
    if !opts.quiet {
        say(&format!(
            "volley: resuming: {} targets already in {}\n",
            skip.len(),
            r.display()
        ));
    }
    skip
}

/// The output: `--resume FILE` (appended), `-o FILE` (truncated) or stdout (no
/// `-o`, or `-o -`). Stdout and a file fail alike: a write error (EPIPE included)
/// ends the run with exit 1 and one line on stderr (see `writer`).
fn open_output(opts: &cli::Opts) -> Box<dyn Write + Send> {
    if opts.resume.is_none() && opts.to_stdout() {
        return Box::new(std::io::stdout());
    }
    match opts.resume.as_ref().or(opts.output.as_ref()) {
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
    }
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(s) = STOP.get() {
        s.store(true, Ordering::Relaxed);
    }
}

/// SIGINT and SIGTERM set the returned flag (the run then stops starting requests).
fn install_signal_handlers() -> Arc<AtomicBool> {
    let stop = STOP
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    stop
}
