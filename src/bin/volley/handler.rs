//! The probe's engine handler: counts each outcome in the summary, keeps what
//! `--title`/`--headers`/the fingerprint keys/a regex matcher need while a request is
//! in flight, and formats the results that pass the filters into a per-worker buffer
//! of whole lines. With `--calibrate` it sits behind `volley::calibrate::adapter`,
//! which hands it each target's verdict (and body fingerprint) before `on_done`.
//!
//! Invariants: every outcome is counted (filtered or not) exactly once; the buffer
//! only ever holds whole lines; per-request state exists only when an option needs it
//! and is removed when the request is done; no byte of a body is looked at unless an
//! option asks (no per-byte work otherwise). The buffer is handed to the
//! writer thread every few milliseconds ([`Probe::hand_over`]); when it cannot be,
//! or it grows past [`HIGH_WATER`], the worker's [`Gate`] closes so no new targets
//! start until the lines are gone.

use crate::filter::{Filters, Seen};
use crate::format::{Extras, Format};
use crate::summary::Summary;
use crate::title::{html_title, TITLE_SCAN};
use crate::writer::{Gate, Queue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use volley::calibrate::adapter::{CalibratedHandler, Verdict, VerdictHandler};
use volley::engine::{Handler, Outcome, ResponseHead};
use volley::fingerprint::{Fingerprint, Fingerprinter, Want};

/// Bytes of formatted lines a worker holds before it stops pulling new targets.
pub const HIGH_WATER: usize = 1 << 20;

/// Live counters shared by all workers (for the progress line).
#[derive(Debug, Default)]
pub struct Progress {
    /// Results so far.
    pub done: AtomicU64,
    /// Of those, errors.
    pub errors: AtomicU64,
    /// Of those, soft-404s (`--calibrate`).
    pub soft404: AtomicU64,
}

/// What to write and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output format.
    pub format: Format,
    /// Which results are written.
    pub filters: Filters,
    /// Add `title`.
    pub title: bool,
    /// Add `headers`.
    pub headers: bool,
    /// Add `words` and `lines`.
    pub counts: bool,
    /// Add `body_sha256` and `simhash`.
    pub hash: bool,
    /// Add `ip`.
    pub ip: bool,
    /// Add `tls`.
    pub tls: bool,
    /// Add `soft404` (the handler runs behind the calibration adapter).
    pub calibrate: bool,
    /// Colour the text format.
    pub color: bool,
}

impl Options {
    /// The body fingerprints these options need.
    pub fn want(&self) -> Want {
        Want {
            counts: self.counts || self.filters.needs_counts() || self.format == Format::Text,
            sha256: self.hash,
            simhash: self.hash,
        }
    }
}

/// What one request in flight keeps (only the parts an option needs).
#[derive(Default)]
struct Flight {
    title: Option<Vec<u8>>,
    head: Option<Vec<(String, String)>>,
    fp: Option<Fingerprinter>,
    text: Option<Vec<u8>>,
}

/// The probe's handler.
pub struct Probe {
    opts: Options,
    want: Want,
    /// Some option needs per-request state.
    stateful: bool,
    progress: Arc<Progress>,
    gate: Gate,
    buf: Vec<u8>,
    flights: HashMap<u64, Flight>,
    /// The verdict on the request about to be done (`--calibrate`).
    verdict: Option<(u64, Verdict)>,
    /// Counts for the summary.
    pub summary: Summary,
}

impl Probe {
    /// A handler writing per `opts`, closing `gate` when its lines back up.
    pub fn new(opts: Options, progress: Arc<Progress>, gate: Gate) -> Probe {
        let want = opts.want();
        // With --calibrate the adapter fingerprints the body and hands it over.
        let stateful = opts.title
            || opts.headers
            || opts.filters.needs_text()
            || (!opts.calibrate && !want.is_empty());
        Probe {
            opts,
            want,
            stateful,
            progress,
            gate,
            buf: Vec::with_capacity(64 * 1024),
            flights: HashMap::new(),
            verdict: None,
            summary: Summary::default(),
        }
    }

    /// Hands the pending lines to the writer if it has room (never waits); the gate
    /// stays closed while lines remain. An error is the writer's (fatal).
    pub fn hand_over(&mut self, q: &Queue) -> Result<(), String> {
        let taken = q.try_push(&mut self.buf)?;
        self.gate.set_closed(!taken);
        Ok(())
    }

    /// Bytes of lines not yet handed over.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// True while the gate is closed (lines are waiting for room).
    pub fn held(&self) -> bool {
        self.gate.is_closed()
    }

    /// Hands every pending line to the writer, waiting for room (after the loop).
    pub fn finish(&mut self, q: &Queue) -> Result<(), String> {
        q.push(&mut self.buf)
    }
}

impl Handler for Probe {
    fn on_head(&mut self, tag: u64, head: &ResponseHead<'_>) {
        if !self.stateful {
            return;
        }
        // A fresh state: a retried attempt's response starts over.
        let mut f = Flight::default();
        if self.opts.headers {
            f.head = Some(head.headers_owned());
        }
        if self.opts.title {
            f.title = Some(Vec::new());
        }
        if !self.opts.calibrate && !self.want.is_empty() {
            f.fp = Some(Fingerprinter::new(self.want));
        }
        if self.opts.filters.needs_text() {
            let mut t = Vec::new();
            t.extend_from_slice(head.status_line());
            t.extend_from_slice(b"\r\n");
            for (n, v) in head.headers() {
                t.extend_from_slice(n);
                t.extend_from_slice(b": ");
                t.extend_from_slice(v);
                t.extend_from_slice(b"\r\n");
            }
            t.extend_from_slice(b"\r\n");
            f.text = Some(t);
        }
        self.flights.insert(tag, f);
    }

    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        let Some(f) = self.flights.get_mut(&tag) else {
            return;
        };
        if let Some(b) = &mut f.title {
            let room = TITLE_SCAN.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if let Some(fp) = &mut f.fp {
            fp.update(chunk);
        }
        if let Some(t) = &mut f.text {
            t.extend_from_slice(chunk);
        }
    }

    fn on_done(&mut self, o: Outcome) {
        let verdict = match self.verdict.take() {
            Some((tag, v)) if tag == o.tag => Some(v),
            _ => None,
        };
        // A request cancelled at a stop is not a result: no line, not counted, so
        // `--resume` redoes it.
        if o.error.as_ref().map(|e| e.kind) == Some(volley::ErrorKind::Cancelled) {
            self.flights.remove(&o.tag);
            return;
        }
        let soft404 = self.opts.calibrate.then(|| verdict.and_then(|v| v.soft404));
        self.progress.done.fetch_add(1, Relaxed);
        if o.error.is_some() {
            self.progress.errors.fetch_add(1, Relaxed);
        }
        if soft404 == Some(Some(true)) {
            self.progress.soft404.fetch_add(1, Relaxed);
        }
        self.summary.add_outcome(&o, soft404);
        let mut flight = if self.stateful {
            self.flights.remove(&o.tag)
        } else {
            None
        };
        let responded = o.status.is_some();
        let fp: Option<Fingerprint> = if !responded {
            None
        } else if self.opts.calibrate {
            verdict.and_then(|v| v.fingerprint)
        } else if self.want.is_empty() {
            None
        } else {
            let f = flight.as_mut().and_then(|f| f.fp.take());
            Some(f.unwrap_or_else(|| Fingerprinter::new(self.want)).finish())
        };
        let counts = fp.and_then(|f| Some((f.words?, f.lines?)));
        let text = flight
            .as_ref()
            .and_then(|f| f.text.as_deref())
            .filter(|_| responded);
        let seen = Seen { counts, text };
        if !self.opts.filters.passes(&o, seen, soft404.flatten()) {
            return;
        }
        let x = Extras {
            // Only the final response's: none when no response arrived (a head
            // kept from an earlier attempt or hop is not this result's).
            title: self.opts.title.then(|| {
                flight
                    .as_ref()
                    .filter(|_| responded)
                    .and_then(|f| f.title.as_deref())
                    .and_then(html_title)
            }),
            headers: self.opts.headers.then(|| {
                responded.then(|| {
                    flight
                        .as_mut()
                        .and_then(|f| f.head.take())
                        .unwrap_or_default()
                })
            }),
            counts: self.opts.counts.then_some(counts),
            hash: self
                .opts
                .hash
                .then(|| fp.and_then(|f| Some((f.sha256_hex()?, f.simhash_hex()?)))),
            ip: self.opts.ip.then(|| o.peer.map(|a| a.ip())),
            tls: self.opts.tls.then(|| o.tls.clone()),
            soft404,
            words_lines: counts,
            color: self.opts.color,
        };
        self.opts.format.line(&mut self.buf, &o, &x);
        if self.buf.len() >= HIGH_WATER {
            self.gate.set_closed(true);
        }
    }
}

impl VerdictHandler for Probe {
    fn on_verdict(&mut self, tag: u64, verdict: Verdict) {
        self.verdict = Some((tag, verdict));
    }
}

/// A worker's handler: the probe, alone or behind the calibration adapter.
pub trait Worker: Handler {
    /// The probe.
    fn probe(&mut self) -> &mut Probe;
    /// The probe, and what calibration did (hosts, requests).
    fn into_probe(self) -> Probe;
}

impl Worker for Probe {
    fn probe(&mut self) -> &mut Probe {
        self
    }
    fn into_probe(self) -> Probe {
        self
    }
}

impl Worker for CalibratedHandler<Probe> {
    fn probe(&mut self) -> &mut Probe {
        self.inner_mut()
    }
    fn into_probe(self) -> Probe {
        let st = self.stats();
        let mut p = self.into_inner();
        let c = p.summary.calibration.get_or_insert_with(Default::default);
        c.hosts += st.hosts;
        c.requests += st.probes;
        p
    }
}
