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

/// Requests per message on the channel: batching keeps the reader thread and the
/// event loop from waking each other for every line.
const BATCH: usize = 256;

/// Engines to wake when input arrives for a starving one.
pub type Notifiers = Arc<std::sync::Mutex<Vec<Notifier>>>;

/// A source fed by a reader thread; [`Stream::handle`] gives each worker its own.
pub struct Stream {
    rx: Arc<std::sync::Mutex<Receiver<Vec<Request>>>>,
    batch: std::vec::IntoIter<Request>,
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
        skip: crate::resume::Done,
        spec: Arc<RequestSpec>,
        notifiers: Notifiers,
    ) -> Result<Stream, String> {
        let reader: Option<Box<dyn Read + Send>> = match &targets {
            Targets::Args(_) => None,
            Targets::List(p) | Targets::Wordlist { file: p, .. } => {
                Some(open(p).map_err(|e| format!("cannot read {p}: {e}"))?)
            }
        };
        let (tx, rx) = sync_channel::<Vec<Request>>(16);
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
                        if let Ok(all) = notifiers.lock() {
                            all.iter().for_each(Notifier::notify);
                        }
                    }
                };
                let mut pending: Vec<Request> = Vec::with_capacity(BATCH);
                // Sends the batch; a slow input (a pipe) flushes whatever it has so
                // the engine never waits on a half-full batch.
                let flush = |pending: &mut Vec<Request>| -> bool {
                    if pending.is_empty() {
                        return true;
                    }
                    let b = std::mem::replace(pending, Vec::with_capacity(BATCH));
                    let ok = tx.send(b).is_ok();
                    wake(&st);
                    ok
                };
                let mut emit =
                    |url: String, pending: &mut Vec<Request>, more_ready: bool| -> bool {
                        n += 1;
                        if let Some((k, m)) = shard {
                            if (n - 1) % m != k - 1 {
                                return true;
                            }
                        }
                        if skip.contains(n) {
                            return true; // answered by an earlier run (--resume)
                        }
                        tot.fetch_add(1, Ordering::Relaxed);
                        pending.push(Request {
                            tag: n,
                            url,
                            spec: spec.clone(),
                        });
                        if pending.len() >= BATCH || !more_ready {
                            return flush(pending);
                        }
                        true
                    };
                let result: std::io::Result<()> = (|| {
                    match targets {
                        Targets::Args(urls) => {
                            for u in urls {
                                if let Some(t) = usable(&u) {
                                    if !emit(t.to_string(), &mut pending, true) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                        Targets::List(_) | Targets::Wordlist { .. } => {
                            // A list line is a URL; a word expands to the bare word
                            // and then word.ext for each extension, in order.
                            let (base, exts) = match &targets {
                                Targets::Wordlist { base, exts, .. } => (Some(base), &exts[..]),
                                _ => (None, &[][..]),
                            };
                            let mut r =
                                BufReader::with_capacity(64 * 1024, reader.expect("opened"));
                            let mut line = Vec::new();
                            while read_line(&mut r, &mut line)? {
                                let more = !r.buffer().is_empty();
                                let text = String::from_utf8_lossy(&line);
                                let Some(word) = usable(&text) else {
                                    if !more && !flush(&mut pending) {
                                        return Ok(());
                                    }
                                    continue;
                                };
                                let Some(base) = base else {
                                    if !emit(word.to_string(), &mut pending, more) {
                                        return Ok(());
                                    }
                                    continue;
                                };
                                if !emit(expand(base, word), &mut pending, more || !exts.is_empty())
                                {
                                    return Ok(());
                                }
                                for (i, e) in exts.iter().enumerate() {
                                    let url = expand(base, &format!("{word}.{e}"));
                                    if !emit(url, &mut pending, more || i + 1 < exts.len()) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                    }
                    flush(&mut pending);
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
            rx: Arc::new(std::sync::Mutex::new(rx)),
            batch: Vec::new().into_iter(),
            starving,
            done: false,
            error,
            total,
            complete,
        })
    }
}

/// Reads one line (without the newline) into `line`; false at the end.
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    Ok(r.read_until(b'\n', line)? > 0)
}

impl Stream {
    /// Another source over the same input, for another worker.
    pub fn handle(&self) -> Stream {
        Stream {
            rx: self.rx.clone(),
            batch: Vec::new().into_iter(),
            starving: self.starving.clone(),
            done: false,
            error: self.error.clone(),
            total: self.total.clone(),
            complete: self.complete.clone(),
        }
    }

    fn try_recv(&self) -> Result<Vec<Request>, TryRecvError> {
        match self.rx.lock() {
            Ok(rx) => rx.try_recv(),
            Err(_) => Err(TryRecvError::Disconnected),
        }
    }
}

impl Source for Stream {
    fn next_request(&mut self) -> Option<Request> {
        if let Some(r) = self.batch.next() {
            return Some(r);
        }
        match self.try_recv() {
            Ok(b) => {
                self.batch = b.into_iter();
                self.batch.next()
            }
            Err(TryRecvError::Empty) => {
                self.starving.store(true, Ordering::Release);
                // A batch may have arrived between the two: look once more.
                match self.try_recv() {
                    Ok(b) => {
                        self.batch = b.into_iter();
                        self.batch.next()
                    }
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
