//! The probe's engine handler: counts each outcome in the summary, keeps what
//! `--title`/`--headers` need while a request is in flight, and formats the results
//! that pass the filters into a per-worker buffer of whole lines.
//!
//! Invariants: every outcome is counted (filtered or not) exactly once; the buffer
//! only ever holds whole lines; per-request state exists only with `--title` or
//! `--headers` and is removed when the request is done. The buffer is handed to the
//! writer thread every few milliseconds ([`Probe::hand_over`]); when it cannot be,
//! or it grows past [`HIGH_WATER`], the worker's [`Gate`] closes so no new targets
//! start until the lines are gone.

use crate::filter::Filters;
use crate::format::{Extras, Format};
use crate::summary::Summary;
use crate::title::{html_title, TITLE_SCAN};
use crate::writer::{Gate, Queue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use volley::engine::{Handler, Outcome, ResponseHead};

/// Bytes of formatted lines a worker holds before it stops pulling new targets.
pub const HIGH_WATER: usize = 1 << 20;

/// Live counters shared by all workers (for the progress line).
#[derive(Debug, Default)]
pub struct Progress {
    /// Results so far.
    pub done: AtomicU64,
    /// Of those, errors.
    pub errors: AtomicU64,
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
}

/// The probe's handler.
pub struct Probe {
    opts: Options,
    progress: Arc<Progress>,
    gate: Gate,
    buf: Vec<u8>,
    /// Bodies kept for --title and heads for --headers, per request in flight.
    bodies: HashMap<u64, Vec<u8>>,
    heads: HashMap<u64, Vec<(String, String)>>,
    /// Counts for the summary.
    pub summary: Summary,
}

impl Probe {
    /// A handler writing per `opts`, closing `gate` when its lines back up.
    pub fn new(opts: Options, progress: Arc<Progress>, gate: Gate) -> Probe {
        Probe {
            opts,
            progress,
            gate,
            buf: Vec::with_capacity(64 * 1024),
            bodies: HashMap::new(),
            heads: HashMap::new(),
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
        if self.opts.headers {
            self.heads.insert(tag, head.headers_owned());
        }
        if self.opts.title {
            self.bodies.insert(tag, Vec::new());
        }
    }

    fn on_body(&mut self, tag: u64, chunk: &[u8]) {
        if let Some(b) = self.bodies.get_mut(&tag) {
            let room = TITLE_SCAN.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }

    fn on_done(&mut self, o: Outcome) {
        self.progress.done.fetch_add(1, Relaxed);
        if o.error.is_some() {
            self.progress.errors.fetch_add(1, Relaxed);
        }
        self.summary.add_outcome(&o);
        // Kept only with --title / --headers; no map work per result otherwise.
        let body = self
            .opts
            .title
            .then(|| self.bodies.remove(&o.tag))
            .flatten();
        let heads = self
            .opts
            .headers
            .then(|| self.heads.remove(&o.tag))
            .flatten();
        if !self.opts.filters.passes(&o) {
            return;
        }
        let x = Extras {
            title: self
                .opts
                .title
                .then(|| body.as_deref().and_then(html_title)),
            headers: self.opts.headers.then(|| heads.unwrap_or_default()),
        };
        self.opts.format.line(&mut self.buf, &o, &x);
        if self.buf.len() >= HIGH_WATER {
            self.gate.set_closed(true);
        }
    }
}
