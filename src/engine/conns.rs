//! The engine's connections: the slab slot each lives in, and moving a request over
//! them — opening what a dialer started, sending, reading, and handing a finished
//! connection to the pool or closing it.
//!
//! Part of the driver with `mod.rs` and `task.rs`; the bytes themselves are
//! `exchange`'s, the counting the `pool`'s.
//!
//! Invariants:
//! - a connection in the slab is registered with the poll under its slab key and
//!   counted open in the pool from its dial until `close_conn` (a socket dropped by
//!   `drop_conn_socket` alone is a failed connect whose pool slot stays with its task);
//! - a pooled connection has no task and one idle timer; a busy one has a task and
//!   no idle timer.
//!
//! Pipelining (`Config::pipeline` above 1): a busy connection's `task` is the one
//! whose response is read now, `behind` the tasks whose requests were written after
//! it, in order; responses are matched in that order. Further invariants:
//! - only GET, HEAD and OPTIONS without a body join `behind`, only on a connection
//!   that has served a response, whose current request is one of those, whose host
//!   has not stopped pipelining, and while `1 + behind.len() < pipeline`; such a
//!   connection is on its host's room list (`in_room`) and nowhere else;
//! - a task behind has no phase deadline (its total runs): its read deadline starts
//!   when it becomes the connection's `task`;
//! - a connection closing with tasks behind sends them again elsewhere, free of an
//!   attempt up to [`MAX_FREE_RESENDS`] times each; a connection that lost a task
//!   from `behind` (`doomed`) takes no more and closes after its current response;
//! - a response that cannot be framed while pipelining (a protocol error, a body
//!   until close, an answer that never comes) stops pipelining to its host.

use super::dial::Step;
use super::exchange::{self, Bufs, Exchange, Read, Sink, Verdict};
use super::pool::Key;
use super::redirect::{self, Decision};
use super::task::{key_of, still_waiting, Task, TaskState};
use super::{deadline, Config, Engine, Handler, Source, TimerRef};
use crate::codec::request::{RequestHead, DEFAULT_HEADERS};
use crate::codec::{Coding, ContentDecoder};
use crate::conn::{Conn, Phase};
use crate::error::{Error, ErrorKind};
use crate::timer::TimerKey;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::rc::Rc;

/// Free re-sends of one pipelined request (per attempt) before a re-send counts as
/// an attempt.
pub(super) const MAX_FREE_RESENDS: u8 = 3;

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
    /// An event said the peer closed its side: never pooled again (that edge will
    /// not come back for an idle connection).
    pub(super) peer_closed: bool,
}

/// True when the task's request may be pipelined: GET, HEAD or OPTIONS, no body.
fn pipelinable(task: &Task) -> bool {
    let m = task.spec.method.as_str();
    task.a.as_get
        || (task.spec.body.is_empty()
            && ["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|s| m.eq_ignore_ascii_case(s)))
}

/// The request head for the task's current URL.
#[inline]
fn request_head<'a>(cfg: &'a Config, task: &'a Task) -> RequestHead<'a> {
    let spec = &task.spec;
    let (method, body): (&str, &[u8]) = if task.a.as_get {
        ("GET", b"")
    } else {
        (&spec.method, &spec.body)
    };
    let cur = task.a.url(&task.first);
    let via_proxy = cfg.proxy.as_ref().filter(|_| !cur.tls);
    RequestHead {
        method,
        target: match via_proxy {
            Some(_) => cur.url.as_str(),
            None => cur.origin_form(),
        },
        host: cur.host_for_header(),
        port: cur.explicit_port(),
        defaults: &DEFAULT_HEADERS,
        headers: &spec.headers,
        body,
        close: !cfg.keepalive,
        proxy_auth: via_proxy.and_then(|p| p.auth.as_deref()),
    }
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
            Some(conn) => d.opened(conn, rbuf, ctx, timings),
            None => Step::Retry,
        })
    }

    /// Encodes the request for the task's current URL on connection `c` and writes it.
    pub(super) fn send(&mut self, t: usize, c: usize) {
        let task = &mut self.tasks[t];
        let started = exchange::start(&mut self.conns[c].conn, &request_head(&self.cfg, task));
        if let Err(e) = started {
            self.fail(t, e, true);
            return;
        }
        task.state = TaskState::Exchanging;
        task.a.exchange = Exchange::default();
        self.set_phase(t, deadline::Phase::Read);
        if self.cfg.pipeline > 1 {
            let safe = pipelinable(&self.tasks[t]);
            let slot = &mut self.conns[c];
            slot.safe = safe;
            slot.conn.pipelined = true;
            self.write(t, c);
            if self.conns.get(c).is_some_and(|s| s.task == Some(t)) {
                self.offer_room(c);
            }
            return;
        }
        self.write(t, c);
    }

    /// With `--pipeline`: puts task `t` onto an open connection of its host with room
    /// (when none is idle). False when it must take the usual way.
    pub(super) fn pipe_onto_room(&mut self, t: usize) -> bool {
        let task = &self.tasks[t];
        if !pipelinable(task) {
            return false;
        }
        let key = key_of(task.a.url(&task.first));
        if self.pool.has_idle(key) {
            return false;
        }
        let Some(c) = self.pool.take_room(key) else {
            return false;
        };
        self.conns[c].in_room = false;
        self.enqueue(t, c);
        true
    }

    /// Writes task `t`'s request behind those outstanding on `c`.
    fn enqueue(&mut self, t: usize, c: usize) {
        self.begin_clock(t);
        let task = &mut self.tasks[t];
        task.a.new_hop();
        let queued = exchange::queue(&mut self.conns[c].conn, &request_head(&self.cfg, task));
        if let Err(e) = queued {
            self.refresh_room(c);
            self.fail(t, e, true);
            return;
        }
        task.state = TaskState::Exchanging;
        task.a.exchange = Exchange {
            sent_at: Some(self.now),
            pipelined: true,
            ..Exchange::default()
        };
        task.a.conn = Some(c);
        task.deadlines.suspend(&mut self.wheel, TimerRef::Task(t));
        let slot = &mut self.conns[c];
        slot.behind.push_back(t);
        let head = slot.task.expect("a connection with room has a task");
        self.refresh_room(c);
        self.write(head, c);
    }

    /// Puts `c` on its host's room list, or takes it off, as it can take another
    /// pipelined request or not; answers whether it can.
    fn refresh_room(&mut self, c: usize) -> bool {
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        let room = slot.task.is_some()
            && slot.safe
            && !slot.doomed
            && slot.conn.served > 0
            && matches!(slot.conn.phase, Phase::Writing | Phase::Reading)
            && 1 + slot.behind.len() < self.cfg.pipeline
            && self.cfg.keepalive
            && self.pool.pipelining(slot.key());
        if room != slot.in_room {
            slot.in_room = room;
            if room {
                self.pool.add_room(slot.key(), c);
            } else {
                self.pool.remove_room(slot.key(), c);
            }
        }
        room
    }

    /// Gives `c`'s room to tasks waiting for a connection of its host.
    fn offer_room(&mut self, c: usize) {
        while self.refresh_room(c) {
            let tasks = &self.tasks;
            let key = self.conns[c].key();
            let Some(w) = self.pool.next_waiter(key, |w| still_waiting(tasks, w)) else {
                return;
            };
            self.start_hop(w);
            if still_waiting(&self.tasks, w) {
                return; // it may not be pipelined: it waits for a connection of its own
            }
        }
    }

    /// Writes what is left of the request; reads at once if the response was
    /// already signalled.
    pub(super) fn write(&mut self, t: usize, c: usize) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        match exchange::write(&mut slot.conn, &mut self.tasks[t].a.exchange, self.now) {
            Ok(w) => {
                if w.moved {
                    self.touch_read(t);
                }
                if w.done && std::mem::take(&mut self.conns[c].readable) {
                    self.read(t, c, true);
                }
            }
            Err(e) => self.exchange_failed(t, c, e, reused),
        }
    }

    /// Reads the response on `c`, deciding redirects at its head, and acts on how
    /// the read turn ended.
    pub(super) fn read(&mut self, t: usize, c: usize, drain: bool) {
        let slot = &mut self.conns[c];
        let reused = slot.conn.served > 0;
        let task = &mut self.tasks[t];
        let a = &mut task.a;
        let cur = a.hop.as_ref().unwrap_or(&task.first);
        let (redirects, as_get) = (&mut a.redirects, &mut a.as_get);
        let method = task.spec.method.as_str();
        let policy = redirect::Policy {
            follow: self.cfg.follow,
            max: self.cfg.max_redirects,
        };
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
                url: cur.url.as_str(),
                max_body: self.cfg.max_body,
            },
            |status, location| {
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
                    Decision::TooMany(e) => Verdict::Fail(e),
                }
            },
        );
        match read {
            Read::Pending { progressed } => {
                if progressed {
                    self.touch_read(t);
                }
            }
            Read::Done { reusable } => self.response_done(t, c, reusable),
            Read::Failed(e) => {
                self.release_conn(c, true);
                self.fail(t, e, true);
            }
            Read::Broken(e) => self.exchange_failed(t, c, e, reused),
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
        let slot = &mut self.conns[c];
        slot.conn.served += 1;
        let keep = reusable && self.cfg.keepalive;
        if !slot.behind.is_empty() || slot.doomed {
            self.pipelined_done(t, c, keep);
            return;
        }
        let close = !keep || slot.peer_closed;
        self.release_conn(c, close);
        self.hop_done(t);
    }

    /// The response to `t` on `c` ended with requests pipelined behind it: the next
    /// one's response is read at once (its bytes may be here already), or the
    /// connection closes and they are sent again.
    fn pipelined_done(&mut self, t: usize, c: usize, keep: bool) {
        let slot = &mut self.conns[c];
        if !keep || slot.doomed {
            if self.tasks[t].a.exchange.until_close {
                self.pool.stop_pipelining(slot.key());
            }
            self.release_conn(c, true);
            self.hop_done(t);
            return;
        }
        let next = slot.behind.pop_front().expect("a task behind");
        slot.task = Some(next);
        let n = &self.tasks[next];
        let head_request = !n.a.as_get && n.spec.method.eq_ignore_ascii_case("HEAD");
        slot.conn.next_response(head_request);
        self.set_phase(next, deadline::Phase::Read);
        self.refresh_room(c);
        self.hop_done(t);
        let still = |s: &Slot| s.task == Some(next) && s.conn.phase == Phase::Reading;
        if self.conns.get(c).is_some_and(still) {
            self.offer_room(c);
        }
        if self.conns.get(c).is_some_and(still) {
            self.read(next, c, true);
        }
    }

    /// Task `t`'s hop is over: the next hop of a followed redirect, or its outcome.
    fn hop_done(&mut self, t: usize) {
        let a = &mut self.tasks[t].a;
        a.conn = None;
        if let Some(next) = a.exchange.follow.take() {
            a.hop = Some(next);
            self.start_hop(t);
            return;
        }
        self.finish(t, None);
    }

    /// Detaches `c` from its task and pools it, or closes it.
    /// Tasks pipelined behind are sent again elsewhere (the connection closes).
    pub(super) fn release_conn(&mut self, c: usize, close: bool) {
        let Some(slot) = self.conns.get_mut(c) else {
            return;
        };
        slot.task = None;
        if slot.in_room {
            slot.in_room = false;
            self.pool.remove_room(slot.key(), c);
        }
        if !slot.behind.is_empty() {
            let behind = std::mem::take(&mut slot.behind);
            self.close_conn(c);
            for w in behind {
                let Some(task) = self.tasks.get_mut(w) else {
                    continue;
                };
                if task.a.conn == Some(c) && task.state == TaskState::Exchanging {
                    task.a.conn = None;
                    let e = Error::new(
                        ErrorKind::Closed,
                        "the connection closed before answering the pipelined request",
                    );
                    self.resend(w, e);
                }
            }
            return;
        }
        if close || !slot.conn.make_idle() {
            self.close_conn(c);
            return;
        }
        // Pool it: hand to a waiter of the same key first.
        let tasks = &self.tasks;
        if let Some(w) = self
            .pool
            .put_idle(slot.key(), c, |w| still_waiting(tasks, w))
        {
            self.reuse_for(w, c);
            return;
        }
        let at = self.deadline_ms(self.cfg.idle_timeout);
        self.conns[c].idle_timer = Some(self.wheel.insert(at, TimerRef::Idle(c)));
    }

    /// Sends task `t` (holding no connection) again, free of an attempt; with
    /// `--pipeline`, only [`MAX_FREE_RESENDS`] times, then it fails with `e` (which
    /// counts an attempt and may be retried).
    fn resend(&mut self, t: usize, e: Error) {
        if self.cfg.pipeline > 1 {
            let a = &mut self.tasks[t].a;
            if a.resends >= MAX_FREE_RESENDS {
                self.fail(t, e, false);
                return;
            }
            a.resends += 1;
        }
        self.start_hop(t);
    }

    /// A deadline of task `t` fired (`--pipeline` above 1). A task behind others
    /// leaves its connection, which then closes after its current response; a
    /// pipelined request whose answer never began (the host answered fewer than
    /// were sent) stops pipelining to the host and is sent again: true when so
    /// handled, and the deadline is not an error.
    pub(super) fn pipeline_deadline(&mut self, t: usize, fired: deadline::Fired) -> bool {
        let Some(c) = self.tasks[t].a.conn else {
            return false;
        };
        let Some(slot) = self.conns.get_mut(c) else {
            return false;
        };
        if let Some(i) = slot.behind.iter().position(|&w| w == t) {
            slot.behind.remove(i);
            slot.doomed = true;
            self.refresh_room(c);
            self.tasks[t].a.conn = None;
            return false;
        }
        let stalled = slot.task == Some(t)
            && fired == deadline::Fired::Phase(deadline::Phase::Read)
            && !slot.conn.got_response_bytes()
            && self.tasks[t].a.exchange.pipelined;
        if !stalled {
            return false;
        }
        self.pool.stop_pipelining(slot.key());
        self.tasks[t].a.conn = None;
        self.release_conn(c, true);
        let e = Error::new(ErrorKind::ReadTimeout, "no answer to the pipelined request");
        self.resend(t, e);
        true
    }

    /// Takes `c` out of the pool's idle list (it is about to close).
    pub(super) fn remove_idle(&mut self, c: usize) {
        if let Some(s) = self.conns.get(c) {
            self.pool.remove_idle(s.key(), c);
        }
    }

    /// Closes a connection that is registered and counted in the pool.
    pub(super) fn close_conn(&mut self, c: usize) {
        let Some(slot) = self.drop_conn_socket(c) else {
            return;
        };
        let tasks = &self.tasks;
        if let Some(w) = self.pool.closed(slot.key(), |w| still_waiting(tasks, w)) {
            self.start_hop(w);
        }
    }

    /// Deregisters and drops the socket without touching the pool's counts (a
    /// connect attempt that failed: the pool slot stays with the task).
    pub(super) fn drop_conn_socket(&mut self, c: usize) -> Option<Slot> {
        let mut slot = self.conns.try_remove(c)?;
        if let Some(k) = slot.idle_timer.take() {
            self.wheel.cancel(k);
        }
        let _ = self.poll.registry().deregister(&mut slot.conn.sock);
        Some(slot)
    }
}
