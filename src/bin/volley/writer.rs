//! The writer thread: result lines leave the event loops through a bounded queue
//! and are written by one thread, so a slow disk or a blocked pipe never stalls a
//! loop (and never eats into the deadlines of requests in flight).
//!
//! Invariants:
//! - Chunks are whole lines (a worker hands over only what its handler formatted,
//!   line by line), and they are written whole, one after the other: lines from
//!   different workers never interleave within a line.
//! - Nothing handed to the queue is lost: the queue only refuses (the worker keeps
//!   its chunk and retries), and at the end every chunk is written before `finish`
//!   returns.
//! - Back-pressure instead of memory: when the queue holds [`QUEUE_BYTES`] or more,
//!   a worker that cannot hand over its chunk closes its [`Gate`], so its engine
//!   pulls no new targets (requests in flight go on, their results wait in the
//!   worker); the writer thread reopens the way by waking the engines when it has
//!   drained the queue. Memory is bounded by the queue plus, per worker, the lines
//!   of the requests it had in flight.
//! - A write error is reported once (the first), and every later hand-over fails
//!   with it, so the run ends with exit 1.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use volley::engine::{Notifier, Request, Source};

/// Bytes the queue holds before it refuses more.
pub const QUEUE_BYTES: usize = 4 << 20;

#[derive(Default)]
struct State {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    closed: bool,
    error: Option<String>,
    /// The writer thread sleeps on `data` (only then is a wake-up needed: a
    /// condvar notification is a system call even with nobody waiting).
    writer_waiting: bool,
    /// Threads sleeping on `room`.
    room_waiters: usize,
}

impl State {
    fn add(&mut self, q: &Queue, buf: &mut Vec<u8>) {
        self.bytes += buf.len();
        self.chunks.push_back(std::mem::take(buf));
        if self.writer_waiting {
            q.data.notify_one();
        }
    }
}

/// The queue between the workers and the writer thread.
pub struct Queue {
    state: Mutex<State>,
    /// Signalled when a chunk arrives or the queue closes.
    data: Condvar,
    /// Signalled when room is made (or on error).
    room: Condvar,
    cap: usize,
    /// Set by a worker refused for lack of room: wake the engines when drained.
    wanted: AtomicBool,
    notifiers: Arc<Mutex<Vec<Notifier>>>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave State inconsistent (every
        // update is a single push/pop with its byte count); carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `buf` over if there is room (an empty queue always has room); on
    /// success `buf` is left empty. `Ok(false)`: full, keep it and try later.
    pub fn try_push(&self, buf: &mut Vec<u8>) -> Result<bool, String> {
        if buf.is_empty() {
            return Ok(true);
        }
        let mut s = self.lock();
        if let Some(e) = &s.error {
            return Err(e.clone());
        }
        if s.bytes > 0 && s.bytes + buf.len() > self.cap {
            self.wanted.store(true, Ordering::Release);
            return Ok(false);
        }
        s.add(self, buf);
        Ok(true)
    }

    /// Hands `buf` over, waiting for room (never called from an event loop turn).
    pub fn push(&self, buf: &mut Vec<u8>) -> Result<(), String> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut s = self.lock();
        loop {
            if let Some(e) = &s.error {
                return Err(e.clone());
            }
            if s.bytes == 0 || s.bytes + buf.len() <= self.cap {
                break;
            }
            s.room_waiters += 1;
            s = self.room.wait(s).unwrap_or_else(|e| e.into_inner());
            s.room_waiters -= 1;
        }
        s.add(self, buf);
        Ok(())
    }

    /// Bytes waiting to be written.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.lock().bytes
    }
}

/// The writer thread and its queue.
pub struct Sink {
    queue: Arc<Queue>,
    thread: JoinHandle<()>,
}

impl Sink {
    /// Starts the writer thread on `out`, writing `preamble` first; `notifiers` are
    /// the engines to wake when room is made for a refused worker.
    pub fn start(
        mut out: Box<dyn Write + Send>,
        preamble: &[u8],
        cap: usize,
        notifiers: Arc<Mutex<Vec<Notifier>>>,
    ) -> Result<Sink, String> {
        let queue = Arc::new(Queue {
            state: Mutex::new(State::default()),
            data: Condvar::new(),
            room: Condvar::new(),
            cap,
            wanted: AtomicBool::new(false),
            notifiers,
        });
        let mut first = preamble.to_vec();
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("volley-writer".into())
            .spawn(move || {
                let result = (|| -> std::io::Result<()> {
                    if !first.is_empty() {
                        out.write_all(&first)?;
                        out.flush()?;
                        first.clear();
                    }
                    while let Some(batch) = next_batch(&q) {
                        for chunk in &batch {
                            out.write_all(chunk)?;
                        }
                        out.flush()?;
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    let mut s = q.lock();
                    s.error = Some(format!("cannot write results: {e}"));
                    s.chunks.clear();
                    s.bytes = 0;
                    q.room.notify_all();
                    drop(s);
                    wake(&q);
                }
            })
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok(Sink { queue, thread })
    }

    /// The queue, for the workers.
    pub fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }

    /// Writes everything handed over, stops the thread; the first write error, if any.
    pub fn finish(self) -> Result<(), String> {
        {
            let mut s = self.queue.lock();
            s.closed = true;
            self.queue.data.notify_all();
        }
        if self.thread.join().is_err() {
            return Err("the writer thread panicked".into());
        }
        match self.queue.lock().error.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Takes every waiting chunk (waiting for one); `None` once closed and drained.
/// Makes room before writing, so workers are refused only while a whole queue's
/// worth is being written.
fn next_batch(q: &Queue) -> Option<Vec<Vec<u8>>> {
    let mut s = q.lock();
    while s.chunks.is_empty() {
        if s.closed {
            return None;
        }
        s.writer_waiting = true;
        s = q.data.wait(s).unwrap_or_else(|e| e.into_inner());
        s.writer_waiting = false;
    }
    let batch: Vec<Vec<u8>> = s.chunks.drain(..).collect();
    s.bytes = 0;
    if s.room_waiters > 0 {
        q.room.notify_all();
    }
    drop(s);
    if q.wanted.swap(false, Ordering::AcqRel) {
        wake(q);
    }
    Some(batch)
}

fn wake(q: &Queue) {
    if let Ok(all) = q.notifiers.lock() {
        all.iter().for_each(Notifier::notify);
    }
}

/// Closed while this worker holds lines it could not hand over: its engine pulls
/// no new targets.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    /// Stops (`true`) or allows (`false`) pulling new targets.
    pub fn set_closed(&self, closed: bool) {
        self.0.store(closed, Ordering::Release);
    }

    /// True while new targets must wait.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A source that yields nothing while its gate is closed.
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S> Gated<S> {
    /// Wraps `inner` behind `gate`.
    pub fn new(inner: S, gate: Gate) -> Gated<S> {
        Gated { inner, gate }
    }
}

impl<S: Source> Source for Gated<S> {
    fn next_request(&mut self) -> Option<Request> {
        if self.gate.is_closed() {
            return None;
        }
        self.inner.next_request()
    }

    fn is_exhausted(&self) -> bool {
        !self.gate.is_closed() && self.inner.is_exhausted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that blocks until released, recording what it got.
    #[derive(Clone, Default)]
    struct Held {
        open: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
        started: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Write for Held {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            {
                let (m, c) = &*self.started;
                *m.lock().unwrap() = true;
                c.notify_all();
            }
            let (m, c) = &*self.open;
            let mut open = m.lock().unwrap();
            while !*open {
                open = c.wait(open).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_refuses_then_loses_nothing() {
        let held = Held::default();
        let sink = Sink::start(Box::new(held.clone()), b"head\n", 64, Default::default()).unwrap();
        let q = sink.queue();
        // The preamble is being written and blocks; fill the queue.
        {
            let (m, c) = &*held.started;
            let mut s = m.lock().unwrap();
            while !*s {
                s = c.wait(s).unwrap();
            }
        }
        let mut pushed = Vec::new();
        let mut refused = None;
        for i in 0..100 {
            let mut line = format!("line {i:04} .................\n").into_bytes();
            if q.try_push(&mut line).unwrap() {
                assert!(line.is_empty());
                pushed.push(i);
            } else {
                assert!(!line.is_empty(), "a refused chunk stays with the worker");
                refused = Some((i, line));
                break;
            }
        }
        let (i, mut line) = refused.expect("a blocked output must refuse at some point");
        assert!(q.pending() <= 64 + 32);
        // Release the output; the refused line goes in by the blocking path.
        {
            let (m, c) = &*held.open;
            *m.lock().unwrap() = true;
            c.notify_all();
        }
        q.push(&mut line).unwrap();
        sink.finish().unwrap();
        let got = String::from_utf8(held.got.lock().unwrap().clone()).unwrap();
        let mut want = "head\n".to_string();
        for j in pushed.iter().copied().chain([i]) {
            want.push_str(&format!("line {j:04} .................\n"));
        }
        assert_eq!(got, want);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_reported_and_sticks() {
        let sink = Sink::start(Box::new(Broken), b"", 1 << 20, Default::default()).unwrap();
        let q = sink.queue();
        q.push(&mut b"x\n".to_vec()).unwrap();
        // The error arrives when the thread has tried to write; a blocking push of
        // a too-large chunk waits for it.
        let mut big = vec![b'y'; 2 << 20];
        let mut result = q.push(&mut big);
        while result.is_ok() {
            result = q.push(&mut b"z\n".to_vec());
            std::thread::yield_now();
        }
        assert!(result.unwrap_err().contains("gone"));
        assert!(sink.finish().unwrap_err().contains("cannot write results"));
    }

    #[test]
    fn gate_hides_the_source() {
        let gate = Gate::default();
        let spec = Arc::new(volley::engine::RequestSpec::default());
        let reqs = vec![Request {
            tag: 1,
            url: "x".into(),
            spec,
        }];
        let mut g = Gated::new(reqs.into_iter().fuse(), gate.clone());
        gate.set_closed(true);
        assert!(g.next_request().is_none() && !g.is_exhausted());
        gate.set_closed(false);
        assert_eq!(g.next_request().map(|r| r.tag), Some(1));
        assert!(g.next_request().is_none() && g.is_exhausted());
    }
}
