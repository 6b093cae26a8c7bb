//! The target stream: URLs from arguments, a list file, standard input, or a base URL
//! × wordlist × extensions; numbered, sharded, and handed to the engine through a
//! bounded channel from a reader thread (so a slow stdin never blocks the event
//! loop, and memory does not grow with the number of lines).

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Arc;
use volley::engine::{Notifier, Request, RequestSpec, Source};

/// Where targets come from.
#[derive(Debug, Clone)]
pub enum Targets {
    /// URLs given as arguments.
    Args(Vec<String>),
    /// Lines of a file (`-` = stdin).
    List(String),
    /// Base URL × words of a file × extensions.
    Wordlist {
        /// Base URL (with or without FUZZ).
        base: String,
        /// Wordlist path (`-` = stdin).
        file: String,
        /// Extensions, without dots.
        exts: Vec<String>,
    },
}

/// Skips blank and comment lines; trims.
pub fn usable(line: &str) -> Option<&str> {
    let t = line.trim();
    (!t.is_empty() && !t.starts_with('#')).then_some(t)
}

/// The URL for `word` under `base`.
pub fn expand(base: &str, word: &str) -> String {
    if base.contains("FUZZ") {
        base.replace("FUZZ", word)
    } else if base.ends_with('/') {
        format!("{base}{}", word.trim_start_matches('/'))
    } else {
        format!("{base}/{}", word.trim_start_matches('/'))
    }
}

fn open(path: &str) -> std::io::Result<Box<dyn Read + Send>> {
    if path == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        Ok(Box::new(std::fs::File::open(path)?))
    }
}

/// A source fed by a reader thread.
pub struct Stream {
    rx: Receiver<Request>,
    starving: Arc<AtomicBool>,
    done: bool,
    /// Set by the reader when reading failed (fatal: exit 1).
    pub error: Arc<std::sync::Mutex<Option<String>>>,
    /// Targets read so far (for progress).
    pub total: Arc<std::sync::atomic::AtomicU64>,
    /// True once the reader has read everything.
    pub complete: Arc<AtomicBool>,
}

impl Stream {
    /// Starts the reader thread. Opening a file fails here, before anything runs.
    pub fn start(
        targets: Targets,
        shard: Option<(u64, u64)>,
        spec: Arc<RequestSpec>,
        notifier_slot: Arc<std::sync::OnceLock<Notifier>>,
    ) -> Result<Stream, String> {
        let reader: Option<Box<dyn Read + Send>> = match &targets {
            Targets::Args(_) => None,
            Targets::List(p) | Targets::Wordlist { file: p, .. } => {
                Some(open(p).map_err(|e| format!("cannot read {p}: {e}"))?)
            }
        };
        let (tx, rx) = sync_channel::<Request>(4096);
        let starving = Arc::new(AtomicBool::new(false));
        let error = Arc::new(std::sync::Mutex::new(None));
        let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let complete = Arc::new(AtomicBool::new(false));
        let (st, er, tot, comp) = (
            starving.clone(),
            error.clone(),
            total.clone(),
            complete.clone(),
        );
        std::thread::Builder::new()
            .name("volley-input".into())
            .spawn(move || {
                let mut n = 0u64;
                let wake = |st: &AtomicBool| {
                    if st.swap(false, Ordering::AcqRel) {
                        if let Some(nf) = notifier_slot.get() {
                            nf.notify();
                        }
                    }
                };
                let mut emit = |url: String| -> bool {
                    n += 1;
                    if let Some((k, m)) = shard {
                        if (n - 1) % m != k - 1 {
                            return true;
                        }
                    }
                    tot.fetch_add(1, Ordering::Relaxed);
                    let ok = tx
                        .send(Request {
                            tag: n,
                            url,
                            spec: spec.clone(),
                        })
                        .is_ok();
                    wake(&st);
                    ok
                };
                let result: std::io::Result<()> = (|| {
                    match targets {
                        Targets::Args(urls) => {
                            for u in urls {
                                if let Some(t) = usable(&u) {
                                    if !emit(t.to_string()) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                        Targets::List(_) => {
                            let r = BufReader::with_capacity(64 * 1024, reader.expect("opened"));
                            for line in r.split(b'\n') {
                                let line = line?;
                                let line = String::from_utf8_lossy(&line);
                                if let Some(t) = usable(&line) {
                                    if !emit(t.to_string()) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                        Targets::Wordlist { base, exts, .. } => {
                            let r = BufReader::with_capacity(64 * 1024, reader.expect("opened"));
                            for line in r.split(b'\n') {
                                let line = line?;
                                let line = String::from_utf8_lossy(&line);
                                let Some(word) = usable(&line) else { continue };
                                if !emit(expand(&base, word)) {
                                    return Ok(());
                                }
                                for e in &exts {
                                    if !emit(expand(&base, &format!("{word}.{e}"))) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    if let Ok(mut g) = er.lock() {
                        *g = Some(format!("reading targets: {e}"));
                    }
                }
                comp.store(true, Ordering::Release);
                st.store(true, Ordering::Release);
                wake(&st);
            })
            .map_err(|e| format!("cannot start the input thread: {e}"))?;
        Ok(Stream {
            rx,
            starving,
            done: false,
            error,
            total,
            complete,
        })
    }
}

impl Source for Stream {
    fn next_request(&mut self) -> Option<Request> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => {
                self.starving.store(true, Ordering::Release);
                // A line may have arrived between the two: look once more.
                match self.rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        self.done = true;
                        None
                    }
                }
            }
            Err(TryRecvError::Disconnected) => {
                self.done = true;
                None
            }
        }
    }

    fn is_exhausted(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        assert_eq!(expand("http://h/", "a"), "http://h/a");
        assert_eq!(expand("http://h", "a"), "http://h/a");
        assert_eq!(expand("http://h/x/", "/a"), "http://h/x/a");
        assert_eq!(
            expand("http://h/FUZZ.bak?q=FUZZ", "a"),
            "http://h/a.bak?q=a"
        );
        assert_eq!(usable("  # c"), None);
        assert_eq!(usable("  x  "), Some("x"));
        assert_eq!(usable(""), None);
    }
}
