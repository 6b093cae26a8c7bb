//! The target stream: URLs from arguments, a list file, standard input, or a base URL
//! × wordlist × extensions; numbered, sharded, and handed to the engine through a
//! bounded channel from a reader thread (so a slow stdin never blocks the event
//! loop, and memory does not grow with the number of lines).
//!
//! Memory stays flat whatever the input: a line keeps at most [`LINE_KEEP`] bytes
//! (the rest is discarded as it streams by), and a batch on the channel holds at most
//! [`BATCH`] requests and about [`BATCH_BYTES`] bytes of URLs. A line longer than
//! [`MAX_INPUT`] bytes still yields its target(s): its first `LINE_KEEP` bytes, which
//! [`volley::target::Target::parse`] refuses as `invalid_url` (too long) — unless
//! it is a comment.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Arc;
use volley::engine::{Notifier, Request, RequestSpec, Source};
use volley::target::MAX_INPUT;

/// Bytes of a line kept: one more than a target may have, so a longer line is
/// refused as too long rather than cut into a different URL.
pub const LINE_KEEP: usize = MAX_INPUT + 1;

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

/// A line as text: bytes that are not UTF-8 are percent-encoded (`%FF`), so the
/// request carries them as given rather than as U+FFFD.
pub fn as_text(line: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(line) {
        return s.into();
    }
    let mut out = String::with_capacity(line.len() + 8);
    for chunk in line.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
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

/// A batch is sent once its URLs reach this many bytes, whatever its count, so the
/// channel (16 batches) holds at most about 16 MiB however long the lines are.
const BATCH_BYTES: usize = 1 << 20;

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
                let mut bytes = 0usize;
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
                        if pending.is_empty() {
                            bytes = 0; // sent since the last push
                        }
                        bytes += url.len();
                        pending.push(Request {
                            tag: n,
                            url,
                            spec: spec.clone(),
                        });
                        if pending.len() >= BATCH || bytes >= BATCH_BYTES || !more_ready {
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
                            while let Some(read) = read_line(&mut r, &mut line, LINE_KEEP)? {
                                let more = !r.buffer().is_empty();
                                let text = as_text(&line);
                                if read.too_long(MAX_INPUT) && !text.trim().starts_with('#') {
                                    // The kept bytes are refused as too long: one
                                    // result per target the line would have made.
                                    for i in 0..=exts.len() {
                                        if !emit(
                                            text.to_string(),
                                            &mut pending,
                                            more || i < exts.len(),
                                        ) {
                                            return Ok(());
                                        }
                                    }
                                    continue;
                                }
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

/// What [`read_line`] saw of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRead {
    /// Bytes in the line, without its `\n` (kept or not).
    pub len: u64,
    /// True when the line ended with `\n` (false for a last line without one).
    pub newline: bool,
    /// The line's last byte before the `\n` (kept or not); `None` when empty.
    pub last: Option<u8>,
}

impl LineRead {
    /// True when the line, without a `\r\n` or `\n` ending, has more than `max` bytes.
    pub fn too_long(&self, max: usize) -> bool {
        self.len - u64::from(self.last == Some(b'\r')) > max as u64
    }
}

/// Reads one line into `line` (cleared first): its first `keep` bytes without the
/// `\n`; the rest of the line is read and discarded as it streams, so memory never
/// follows the line's length. `None` at the end of the input.
pub fn read_line(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    keep: usize,
) -> std::io::Result<Option<LineRead>> {
    line.clear();
    let mut read: Option<LineRead> = None;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(read);
        }
        let seen = read.get_or_insert(LineRead {
            len: 0,
            newline: false,
            last: None,
        });
        let (take, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        if take > 0 {
            seen.last = Some(buf[take - 1]);
        }
        seen.len += take as u64;
        seen.newline = newline;
        r.consume(take + usize::from(newline));
        if newline {
            return Ok(read);
        }
    }
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

    /// Polls `s` until it yields a request or says it is exhausted (at most 30 s).
    fn next_or_end(s: &mut Stream) -> Option<Request> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < until {
            if let Some(r) = s.next_request() {
                return Some(r);
            }
            if s.is_exhausted() {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("the stream neither yielded nor ended");
    }

    /// A `None` from a stream whose input is still open is "nothing yet", never
    /// "finished" (the library's default for `is_exhausted` would say finished).
    #[test]
    fn a_quiet_input_is_not_exhausted() {
        let fifo = std::env::temp_dir().join(format!("volley-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let path = fifo.clone();
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            std::io::Write::write_all(&mut w, b"http://a/\n").unwrap();
            go_rx.recv().unwrap();
            std::io::Write::write_all(&mut w, b"http://b/\n").unwrap();
        });
        let mut s = Stream::start(
            Targets::List(fifo.to_str().unwrap().to_string()),
            None,
            crate::resume::Done::default(),
            Arc::new(RequestSpec::default()),
            Notifiers::default(),
        )
        .unwrap();
        assert_eq!(next_or_end(&mut s).unwrap().url, "http://a/");
        // The writer is waiting: nothing to pull, and not the end.
        assert!(s.next_request().is_none());
        assert!(!s.is_exhausted());
        go_tx.send(()).unwrap();
        let b = next_or_end(&mut s).unwrap();
        assert_eq!((b.url.as_str(), b.tag), ("http://b/", 2));
        writer.join().unwrap();
        assert!(next_or_end(&mut s).is_none());
        assert!(s.is_exhausted());
        std::fs::remove_file(&fifo).unwrap();
    }

    /// Every line read back with at most `keep` bytes kept and its true length.
    fn all_lines(input: &[u8], keep: usize, buf: usize) -> Vec<(Vec<u8>, LineRead)> {
        let mut r = BufReader::with_capacity(buf, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(read) = read_line(&mut r, &mut line, keep).unwrap() {
            assert!(line.len() <= keep);
            out.push((line.clone(), read));
        }
        out
    }

    #[test]
    fn lines_are_capped_and_the_rest_discarded() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\r\nnext\r\nlast");
        let ls = all_lines(&input, 10, 64);
        let lens: Vec<(usize, u64, bool, bool)> = ls
            .iter()
            .map(|(l, r)| (l.len(), r.len, r.newline, r.last == Some(b'\r')))
            .collect();
        assert_eq!(
            lens,
            [
                (5, 5, true, false),
                (10, 100_001, true, true),
                (5, 5, true, true),
                (4, 4, false, false)
            ]
        );
        assert_eq!(ls[1].0, b"xxxxxxxxxx");
        assert!(ls[1].1.too_long(10) && !ls[2].1.too_long(4) && ls[2].1.too_long(3));
        assert!(all_lines(b"", 10, 64).is_empty());
        assert_eq!(all_lines(b"\n", 10, 64).len(), 1);
    }

    proptest::proptest! {
        /// Whatever the buffer size and cap, each line comes back as its first `keep`
        /// bytes with its true length, as splitting on `\n` would give.
        #[test]
        fn capped_lines_match_a_plain_split(
            input in proptest::collection::vec(proptest::sample::select(b"ab\r\n".to_vec()), 0..300),
            keep in 0usize..20,
            buf in 1usize..40,
        ) {
            let got = all_lines(&input, keep, buf);
            let mut want: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if input.is_empty() || input.ends_with(b"\n") {
                want.pop();
            }
            proptest::prop_assert_eq!(got.len(), want.len());
            for ((kept, read), w) in got.iter().zip(want) {
                proptest::prop_assert_eq!(&kept[..], &w[..w.len().min(keep)]);
                proptest::prop_assert_eq!(read.len, w.len() as u64);
                proptest::prop_assert_eq!(read.last, w.last().copied());
            }
        }
    }

    /// Bytes that are not UTF-8 go on the wire as they were, percent-encoded.
    #[test]
    fn invalid_utf8_is_percent_encoded() {
        assert_eq!(as_text(b"http://h/a\xff\xfe"), "http://h/a%FF%FE");
        assert_eq!(as_text("http://h/é".as_bytes()), "http://h/é");
        assert_eq!(as_text(b"\xc3"), "%C3");
    }
}
