//! A task's per-attempt state, and the one place an [`Outcome`] is assembled.
//!
//! An [`Attempt`] is built fresh when an attempt starts (the first, or a retry), so
//! nothing of a failed attempt leaks into the next; within it, each hop gets a fresh
//! [`Dialer`] (when it needs a new connection) and a fresh [`Exchange`] (when its
//! request is sent). The attempt's clock starts when it leaves the queue with a
//! connection in hand or being dialed, never while it waits for a slot.
//!
//! Invariants:
//! - `redirects` lists the hops followed in this attempt, in order; `hop` is the URL
//!   of the current one (`None`: the request's own URL);
//! - `resp` is set only by the final response's head, so a retried attempt (which
//!   needs `resp.status == None`) reports nothing of the one before;
//! - `conn` is the connection this attempt holds, dialing or exchanging.

use super::api::{Outcome, Redirect, Timings};
use super::dial::Dialer;
use super::exchange::{Exchange, Response};
use super::politeness::Signal;
use crate::error::Error;
use crate::target::Target;
use std::time::Instant;

/// One attempt's state; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// The current hop's URL when a redirect was followed.
    pub hop: Option<Target>,
    /// An earlier hop turned the request into a body-less GET.
    pub as_get: bool,
    /// Redirects followed.
    pub redirects: Vec<Redirect>,
    /// When the attempt's clock started.
    pub started: Option<Instant>,
    /// Phase timings.
    pub timings: Timings,
    /// The final response.
    pub resp: Response,
    /// The connection held (dialing or exchanging).
    pub conn: Option<usize>,
    /// The dial of the current hop, while it runs.
    pub dial: Option<Dialer>,
    /// The current hop's exchange.
    pub exchange: Exchange,
    /// What the current hop's response head tells its host (429/503 or not).
    pub signal: Option<Signal>,
    /// The current hop's peer (with `Config::peer_info`).
    pub peer: Option<std::net::SocketAddr>,
    /// The current hop's TLS details (with `Config::tls_info`).
    pub tls: Option<std::sync::Arc<super::api::TlsInfo>>,
    /// Times a pipelined request of this attempt was sent again, free of an attempt,
    /// after its connection closed unanswered (`--pipeline`; at most 3).
    pub resends: u8,
    /// Times this attempt's request, pipelined behind another, was sent again
    /// because the engine closed the connection (the request ahead failed or was
    /// cancelled): free, but after `MAX_FREE_RESENDS` of these it goes on a
    /// connection alone, so a run of failing requests ahead cannot keep it waiting.
    pub bumped: u8,
    /// The current hop's dial is on record in the pool as bringing pipeline room
    /// (`--pipeline`): settled once, when its request goes out or it fails.
    pub promised: bool,
}

impl Attempt {
    /// The current hop's URL.
    pub fn url<'a>(&'a self, first: &'a Target) -> &'a Target {
        self.hop.as_ref().unwrap_or(first)
    }

    /// A hop starts on a pooled connection or a new dial: the phases it runs (or
    /// skips) replace the previous hop's.
    pub fn new_hop(&mut self) {
        self.timings.dns = None;
        self.timings.connect = None;
        self.timings.tls = None;
    }
}

/// What identifies a request in its `Outcome`.
#[derive(Debug)]
pub(crate) struct Identity {
    /// The caller's tag.
    pub tag: u64,
    /// The input line.
    pub input: String,
    /// The URL requested, when it is not the input itself.
    pub url: Option<String>,
    /// The URL of the last hop, when it is not the first's.
    pub final_url: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// The request's outcome from its identity and its last attempt, at `now`. The
/// attempt's reported fields are taken out of it (it is about to be dropped), so the
/// large attempt state is not moved.
pub(crate) fn outcome(
    id: Identity,
    a: &mut Attempt,
    error: Option<Error>,
    now: Instant,
) -> Outcome {
    let mut timings = a.timings;
    timings.total = a.started.map(|s| now.duration_since(s));
    let mut o = Outcome::new(id.tag, id.input);
    o.set_url_texts(id.url, id.final_url);
    o.status = a.resp.status;
    o.error = error;
    o.content_length = a.resp.content_length;
    o.bytes = a.resp.bytes;
    o.capped = a.resp.capped;
    o.location = a.resp.location.take();
    o.redirects = std::mem::take(&mut a.redirects);
    o.timings = timings;
    o.attempts = id.attempts;
    o.peer = a.peer;
    o.tls = a.tls.take();
    o.headers = a.resp.headers.take();
    o
}
