//! The engine's connections: the slab slot each lives in, and moving a request over
//! them — opening what a dialer started, sending, reading (also after a failed write,
//! and before a read deadline is declared). Handing a finished connection to the
//! pool or closing it is `release.rs`.
//!
//! Part of the driver with `mod.rs`, `task.rs`, `pipeline.rs` and `release.rs`; the
//! bytes are `exchange`'s, the counting the `pool`'s.
//!
//! Invariants:
//! - a connection in the slab is registered with the poll under its slab key and
//!   counted open in the pool from its dial until `close_conn` (a socket dropped by
//!   `drop_conn_socket` alone is a failed connect whose pool slot stays with its task);
//! - a pooled connection has no task and one idle timer; a busy one has a task and
//!   no idle timer;
//! - at most `max_idle` connections are idle over all hosts (`idle::IdleOrder`
//!   knows exactly the pooled ones; the one idle longest is closed first);
//! - with `--pipeline`, `task` is the request whose response is read now and
//!   `behind` those written after it (see `pipeline.rs`).

use super::dial::{Dialer, Step};
use super::exchange::{self, Bufs, Exchange, Read, Sink, Verdict};
use super::pipeline::pipelinable;
use super::politeness::Signal;
use super::pool::Key;
use super::redirect::{self, Decision};
use super::retry::{self, AfterResponse};
use super::task::TaskState;
use super::{credentials, deadline, gate, Engine, Handler, Source, TimerRef};
use crate::codec::request::{RequestHead, DEFAULT_HEADERS};
use crate::codec::{Coding, ContentDecoder};
use crate::conn::{Conn, Phase};
use crate::error::{Error, ErrorKind};
use crate::timer::TimerKey;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) conn: Conn,
    /// Pool key: host, tls, port.
    pub(super) host: Rc<str>,
    pub(super) tls: bool,
    pub(super) port: u16,
    pub(super) content: ContentDecoder,
    pub(super) task: Option<usize>,
    pub(super) idle_timer: Option<TimerKey>,
    /// A readable event arrived while the request was still being written.
    pub(super) readable: bool,
    /// Pipelined tasks whose responses come after `task`'s, in order.
    pub(super) behind: VecDeque<usize>,
    /// On its host's room list.
    pub(super) in_room: bool,
    /// `task`'s request may have others pipelined behind it.
    pub(super) safe: bool,
    /// Lost a task from `behind`: closes after the current response.
    pub(super) doomed: bool,
    /// An event said the peer closed its side: with `--pipeline`, never pooled again
    /// (that edge will not come back for an idle connection).
    pub(super) peer_closed: bool,
}

impl Slot {
    pub(super) fn key(&self) -> Key<'_> {
        Key {
            host: &self.host,
            tls: self.tls,
            port: self.port,
        }
    }
}

impl<S: Source, H: Handler> Engine<S, H> {
    /// True when connection `c` is in the slab and read for task `t`, still the
    /// task numbered `serial`: after a call that ran other tasks' code, both indices
    /// may name new ones (a finished task's index goes to the next request admitted,
    /// a closed connection's to the next one opened).
    pub(super) fn holds(&self, c: usize, t: usize, serial: u64) -> bool {
        self.conns.get(c).is_some_and(|s| s.task == Some(t))
            && self.tasks.get(t).is_some_and(|x| x.serial == serial)
    }

    /// Registers a connection the dialer started and puts it in the slab.
    pub(super) fn open_conn(&mut self, t: usize, conn: Conn) -> Step {
        let c = self.conns.vacant_key();
        let cur = self.tasks[t].a.url(&self.tasks[t].first);
        let mut slot = Slot {
            conn,
            host: Rc::from(cur.host()),
            tls: cur.tls,
            port: cur.port,
            content: ContentDecoder::new(Coding::Identity, 0),
            task: Some(t),
            idle_timer: None,
            readable: false,
            behind: VecDeque::new(),
            in_room: false,
            safe: false,
            doomed: false,
            peer_closed: false,
        };
        let registered = self.poll.registry().register(
            &mut slot.conn.sock,
            Token(c),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            let peer = slot.conn.peer.clone();
            return self.with_dialer(t, None, |d, ctx, _, _, _| d.open_failed(&peer, &e, ctx));
        }
        self.conns.insert(slot);
        self.stats.connections += 1;
        self.tasks[t].a.conn = Some(c);
        self.with_dialer(t, Some(c), |d, ctx, timings, conn, rbuf| match conn {
            Some(conn) => d.opened(c, conn, rbuf, ctx, timings),
            None => Step::Pending,
        })
    }

    /// After each call to task `t`'s dialer: closes the connections it let go
    /// (failed, or lost the race), makes its current one the attempt's, and arms the
    /// timer for the next address.
    pub(super) fn sync_race(&mut self, t: usize) {
        while let Some(c) = self
            .tasks
            .get_mut(t)
            .and_then(|x| x.a.dial.as_mut())
            .and_then(Dialer::pop_dropped)
        {
            self.drop_conn_socket(c);
        }
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        let Some(d) = task.a.dial.as_mut() else {
            return;
        };
        task.a.conn = d.current();
        if let Some(at) = d.arm() {
            let ms = self.wheel.ms(at);
            self.wheel.insert(ms, TimerRef::Race(t));
        }
    }

    /// Task `t`'s dial is given up: closes every racer but the attempt's own
    /// connection (which `fail` gives back with its pool slot).
    pub(super) fn abandon_race(&mut self, t: usize) {
        let Some(task) = self.tasks.get_mut(t) else {
            return;
        };
        let keep = task.a.conn;
        let Some(d) = task.a.dial.as_mut() else {
            return;
        };
        d.abandon();
        while let Some(c) = self
            .tasks
            .get_mut(t)
            .and_then(|x| x.a.dial.as_mut())
            .and_then(Dialer::pop_dropped)
        {
            if Some(c) != keep {
                self.drop_conn_socket(c);
            }
        }
    }

    /// Encodes the request for the task's current URL on connection `c` and writes it.
    pub(super) fn send(&mut self, t: usize, c: usize) {
        self.send_as(t, c, false);
    }

    /// [`Self::send`]; `queued`: behind the requests outstanding on `c` (pipelined).
    pub(super) fn send_as(&mut self, t: usize, c: usize, queued: bool) {
        // A pooled connection taken for this request is idle no more.
        self.idle.remove(c);
        let task = &mut self.tasks[t];
        let spec = &task.spec;
        let (method, body): (&str, &[u8]) = if task.a.as_get {
            ("GET", b"")
        } else {
            (&spec.method, &spec.body)
        };
        let cur = task.a.url(&task.first);
        let via_proxy = self.cfg.proxy.as_ref().filter(|_| !cur.tls);
        // A redirect hop carries only what curl's rules allow of the user's headers;
        // the jar's cookies and the URL's credentials join them (allocating only when
        // something is dropped or added).
        let carry = match &task.a.hop {
            Some(next) => {
                redirect::carries(&task.first, next, task.a.as_get, self.cfg.location_trusted)
            }
            None => redirect::Carry::ALL,
        };
        let mut kept = credentials::hop_headers(
            &spec.headers,
            carry,
            &task.first,
            cur,
            self.cfg.cookies.as_deref(),
        );
        let streamed = exchange::outgoing_body(spec, task.tag, task.a.as_get, &mut kept);
        let waits = streamed.as_ref().is_some_and(|b| b.waiting);
        let body = if streamed.is_some() { &[][..] } else { body };
        let started = exchange::start(
            &mut self.conns[c].conn,
            &RequestHead {
                method,
                target: &match via_proxy {
                    Some(_) => credentials::absolute_form(cur),
                    None => cur.origin_form().into(),
                },
                host: cur.host_for_header(),
                port: cur.explicit_port(),
                defaults: &DEFAULT_HEADERS,
                headers: kept.as_deref().unwrap_or(&spec.headers),
                body,
                close: !self.cfg.keepalive,
                proxy_auth: via_proxy.and_then(|p| p.auth.as_deref()),
            },
            queued,
        );
        if let Err(e) = started {
            self.settle_dial(t);
            self.fail(t, e, true);
            return;
        }
        if queued {
            self.queued(t, c);
            return;
        }
        task.state = TaskState::Exchanging;
        task.a.exchange = Exchange {
            body: streamed,
            ..Exchange::default()
        };
        if self.cfg.peer_info {
            task.a.peer = match self.conns[c].conn.peer {
                crate::socket::Peer::Tcp(a) => Some(a),
                crate::socket::Peer::Unix(_) => None,
            };
        }
        if self.cfg.tls_info {
            task.a.tls = self.conns[c].conn.tls_info();
        }
        self.set_phase(t, deadline::Phase::Read);
        if waits {
            let at = self.deadline_ms(super::api::CONTINUE_WAIT);
            self.wheel.insert(at, TimerRef::Continue(t));
        }
        if self.cfg.pipeline > 1 {
            let safe = pipelinable(&self.tasks[t]);
            let serial = self.tasks[t].serial;
            let slot = &mut self.conns[c];
            slot.safe = safe;
            slot.conn.pipelined = true;
            // Tasks that waited for this new connection's room go on it now, their
            // requests written with this one.
            self.refresh_room(c);
            self.settle_dial(t);
            // A claimant's write may already have sent this request, and met the
            // connection's end: `t` may be answered, failed or finished by now (and
            // its index and `c` taken by a new request and its dial).
            if self.holds(c, t, serial) {
                self.write(t, c);
            }
            if self.holds(c, t, serial) {
                self.offer_room(c);
            }
            return;
        }
        self.write(t, c);
    }

    /// Sends the body that waited for `100 Continue` (which came, or took too long).
    pub(super) fn send_body(&mut self, t: usize, c: usize) {
        let Some(b) = self.tasks[t].a.exchange.body.as_mut() else {
            return;
        };
        if !b.waiting {
            return;
        }
        b.waiting = false;
        self.conns[c].conn.more_to_write();
        self.write(t, c);
    }

    /// The wait for `100 Continue` is over: send the body if it still waits.
    pub(super) fn continue_timer(&mut self, t: usize) {
        let Some(task) = self.tasks.get(t) else {
            return;
        };
        if task.state != TaskState::Exchanging || task.a.resp.status.is_some() {
            return;
        }
        if let Some(c) = task.a.conn {
            if self
                .conns
                .get(c)
                .is_some_and(|s| s.task == Some(t) && s.conn.phase == Phase::Reading)
            {
                self.send_body(t, c);
            }
        }
    }

    /// Writes what is left of the request (and of those pipelined behind it); reads
    /// at once if the response was already signalled. Bytes moving out push `t`'s
    /// read deadline forward only while its own request is being written: once it
    /// is all out (the connection reads), writing the requests behind is no sign of
    /// life from the peer.
    pub(super) fn write(&mut self, t: usize, c: usize) {
        let slot = &mut self.conns[c];
        let own = slot.conn.phase != Phase::Reading;
        match exchange::write(&mut slot.conn, &mut self.tasks[t].a.exchange, self.now) {
            Ok(w) => {
                if w.moved && own {
                    self.touch_read(t);
                }
                if w.done && std::mem::take(&mut self.conns[c].readable) {
                    self.read(t, c, true);
                }
            }
            Err(e) => {
                // The peer may have answered before closing (a 413 while the body
                // was still being sent): read what it sent first, as curl does.
                let conn = &mut self.conns[c].conn;
                conn.phase = Phase::Reading;
                self.read_turn(t, c, true, Some(e));
            }
        }
    }

    /// Reads the response on `c`, deciding redirects at its head, and acts on how
    /// the read turn ended.
    #[inline]
    pub(super) fn read(&mut self, t: usize, c: usize, drain: bool) {
        self.read_turn(t, c, drain, None);
    }

    /// A read turn; after a failed write (`write_error`), a response that is not
    /// complete in what the peer sent is the write's failure.
    fn read_turn(&mut self, t: usize, c: usize, drain: bool, write_error: Option<Error>) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        let task = &mut self.tasks[t];
        let a = &mut task.a;
        let cur = a.hop.as_ref().unwrap_or(&task.first);
        let (redirects, as_get, signal) = (&mut a.redirects, &mut a.as_get, &mut a.signal);
        let method = task.spec.method.as_str();
        let cookies = self.cfg.cookies.as_deref();
        let policy = redirect::Policy {
            follow: task.settings.follow,
            max: task.settings.max_redirects,
        };
        let (attempts, retries, cap) = (task.attempts, self.cfg.retries, self.cfg.max_retry_after);
        let (rng, base) = (&mut self.rng, self.cfg.retry_backoff.as_millis() as u64);
        let read = exchange::read(
            &mut slot.conn,
            &mut slot.content,
            Bufs {
                read: &mut self.rbuf,
                decoded: &mut self.cbuf,
            },
            drain,
            self.now,
            &mut a.exchange,
            &mut a.resp,
            &mut a.timings,
            Sink {
                handler: &mut self.handler,
                tag: task.tag,
                url: cur.as_str(),
                max_body: task.settings.max_body,
                keep_headers: self.cfg.keep_headers,
            },
            |head, location, retry_after_field| {
                let status = head.status;
                if let Some(jar) = cookies {
                    credentials::store_cookies(jar, cur, head);
                }
                // What the host is told, and whether a 429/503 is retried.
                let wait = retry_after_field.and_then(gate::retry_after);
                *signal = Some(match status {
                    429 | 503 => Signal::PushBack(wait),
                    _ => Signal::Success,
                });
                let idempotent = retry::idempotent(if *as_get { "GET" } else { method });
                match retry::after_response(status, idempotent, wait, attempts, retries, cap) {
                    AfterResponse::Keep => {}
                    AfterResponse::RetryAfter(w) => return Verdict::Retry(w),
                    AfterResponse::Backoff => {
                        let ms = retry::backoff_ms(base, attempts, rng);
                        return Verdict::Retry(Duration::from_millis(ms));
                    }
                }
                let hop = redirect::Hop {
                    url: cur,
                    method,
                    as_get: *as_get,
                    followed: redirects.len(),
                };
                match redirect::decide(status, location, hop, policy) {
                    Decision::Final { location } => Verdict::Final(location),
                    Decision::Follow {
                        next,
                        record,
                        as_get: get,
                    } => {
                        redirects.push(record);
                        *as_get = get;
                        Verdict::Follow(next)
                    }
                    Decision::TooMany(e, location) => Verdict::TooMany(e, location),
                }
            },
        );
        let read = match (read, write_error) {
            (Read::Pending { .. } | Read::Paused, Some(e)) => Read::Broken(e),
            (Read::Broken(_), Some(e)) if !self.conns[c].conn.got_response_bytes() => {
                Read::Broken(e)
            }
            // The request never went out whole: the connection is not reused.
            (Read::Done { .. }, Some(_)) => Read::Done { reusable: false },
            (read, _) => read,
        };
        // A body waiting for `100 Continue`: sent once it came; never once a final
        // (redirect, or retried 429/503) head came instead, and then the connection
        // is not reused.
        let a = &mut self.tasks[t].a;
        let mut send_now = false;
        if a.exchange.body.as_ref().is_some_and(|b| b.waiting) {
            if a.resp.status.is_some() || a.exchange.follow.is_some() || a.exchange.retry.is_some()
            {
                a.exchange.body = None;
                a.exchange.unsent = true;
            } else if self.conns[c].conn.dec.interim_seen() {
                send_now = true;
            }
        }
        let unsent_body = a.exchange.unsent;
        match read {
            Read::Pending { progressed } => {
                if progressed {
                    self.touch_read(t);
                }
                if send_now {
                    self.send_body(t, c);
                }
            }
            Read::Done { reusable } => self.response_done(t, c, reusable && !unsent_body),
            Read::Failed(e) => {
                self.close_by_choice(c);
                self.fail(t, e, true);
            }
            Read::Broken(e) => self.exchange_failed(t, c, e, reused),
            Read::Paused => {
                // The handler holds the body: no read, and no read deadline, until
                // `Engine::resume` (the total deadline still runs).
                let task = &mut self.tasks[t];
                task.paused = true;
                task.deadlines.set_phase(
                    deadline::Phase::Read,
                    u64::MAX,
                    &mut self.wheel,
                    TimerRef::Task(t),
                );
            }
        }
    }

    /// The exchange on `c` failed. A reused connection that died before any response
    /// byte was stale: retry on a fresh one without counting an attempt.
    /// A pipelined request answered with bytes that cannot be framed stops
    /// pipelining to the host and is sent again.
    pub(super) fn exchange_failed(&mut self, t: usize, c: usize, e: Error, reused: bool) {
        let slot = &self.conns[c];
        let stale = reused && !slot.conn.got_response_bytes() && e.kind == ErrorKind::Closed;
        let unframed = e.kind == ErrorKind::Protocol && self.tasks[t].a.exchange.pipelined;
        if unframed {
            self.pool.stop_pipelining(slot.key());
        }
        // `t` outlives the release: detached from `c`, nothing else reaches it.
        self.release_conn(c, true);
        if stale || unframed {
            self.tasks[t].a.conn = None;
            self.resend(t, e);
            return;
        }
        let after_response = self.tasks[t].a.resp.status.is_some();
        self.fail(t, e, after_response);
    }

    pub(super) fn response_done(&mut self, t: usize, c: usize, reusable: bool) {
        // The host hears first, so that a pause holds back a waiter that takes
        // this connection.
        self.host_done(t, None);
        let slot = &mut self.conns[c];
        slot.conn.served += 1;
        let keep = reusable && self.cfg.keepalive;
        if !slot.behind.is_empty() || slot.doomed {
            self.pipelined_done(t, c, keep);
            return;
        }
        // At `--pipeline 1` as before: such a connection is pooled (and a request
        // that finds it dead is re-sent as stale).
        let close = !keep || (slot.peer_closed && self.cfg.pipeline > 1);
        self.release_conn(c, close);
        self.hop_done(t);
    }

    /// Task `t`'s hop is over: the next hop of a followed redirect, or its outcome.
    pub(super) fn hop_done(&mut self, t: usize) {
        let a = &mut self.tasks[t].a;
        a.conn = None;
        if let Some(wait) = a.exchange.retry.take() {
            // A 429 or 503 to retry: the next attempt after its wait, no slot held.
            self.backoff(t, wait);
            return;
        }
        if let Some(next) = a.exchange.follow.take() {
            a.hop = Some(next);
            self.start_hop(t);
            return;
        }
        self.finish(t, None);
    }

    /// Before a read (or total) deadline is declared: bytes may be waiting that the
    /// loop has not handled yet (a turn with more ready connections than one poll
    /// returns, or a handler that stalled the loop). Reads (or writes) what is
    /// there; true when the task moved on — finished or failed, or (a read
    /// deadline only) progressed and re-armed it — so the deadline is not declared.
    /// The total is declared unless the response completed: a peer that always has
    /// a few bytes waiting must not outrun `--timeout`.
    pub(super) fn look_first(&mut self, t: usize, total: bool) -> bool {
        let task = &self.tasks[t];
        let serial = task.serial;
        // A paused body is not read: its total is declared as it stands.
        let Some(c) = task
            .a
            .conn
            .filter(|_| task.state == TaskState::Exchanging && !task.paused)
        else {
            return false;
        };
        match self.conns.get(c).map(|s| s.conn.phase) {
            Some(Phase::Reading) => self.read(t, c, true),
            Some(Phase::Writing) => self.write(t, c),
            _ => return false,
        }
        // A response completed finishes `t`, and its slot may start the next
        // request at once, at the same index (on the connection just pooled).
        self.tasks.get(t).is_none_or(|task| {
            task.serial != serial
                || !total && task.deadlines.is_armed()
                || task.state != TaskState::Exchanging
                || task.a.conn != Some(c)
        })
    }
}
