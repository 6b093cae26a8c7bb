//! Replies: reading the UDP sockets, and the TCP retry of truncated answers.
//!
//! Invariants: a UDP reply is taken only on the socket its query went out on, from a
//! server that query was sent to, with its ID and question; anything else is dropped
//! and the query keeps waiting. A truncated answer moves its query to TCP (to the
//! server that sent it), waiting for a free connection when all are busy.

use super::settle::{Outcome, RC_INVALID, RC_TIMED_OUT};
use super::{Settled, Stub, Tokens};
use crate::dns::message::{encode_query, parse_answer};
use crate::dns::pool::BATCH;
use crate::dns::tcp::{Progress, TcpQuery};
use mio::Token;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

impl Stub {
    /// Reads every reply waiting on the sockets (all of them); uses the clock.
    pub fn on_readable(&mut self, settled: &mut Vec<Settled>) {
        self.drain(None, Instant::now(), settled);
    }

    /// Reads what is waiting on the sockets registered with `token`.
    pub fn on_ready(&mut self, token: Token, now: Instant, settled: &mut Vec<Settled>) {
        self.drain(Some(token), now, settled);
    }

    fn drain(&mut self, token: Option<Token>, now: Instant, settled: &mut Vec<Settled>) {
        for slot in 0..self.pool.len() {
            if token.is_none_or(|t| t == self.pool.token(slot)) {
                self.drain_udp(slot, now, settled);
            }
        }
        for j in 0..self.tcp.len() {
            let mine = match (token, self.tokens) {
                (None, _) | (_, Tokens::Shared(_)) => true,
                (Some(t), Tokens::Span { first, .. }) => t.0 == first - 2 * self.cfg.sockets - j,
            };
            if mine && self.tcp[j].is_some() {
                self.drive_tcp(j, now, settled);
            }
        }
        self.pump(now, settled);
    }

    fn drain_udp(&mut self, slot: usize, now: Instant, settled: &mut Vec<Settled>) {
        let mut errors = 0;
        loop {
            let got = match self.pool.recv_batch(slot, &mut self.batch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors (port unreachable) surface here once each; the
                // retransmit timer deals with them. A persistent error stops the loop.
                Err(_) if errors < 16 => {
                    errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            for k in 0..got {
                let Some((msg, from)) = self.batch.get(k) else {
                    self.stats.ignored += 1;
                    continue;
                };
                let n = msg.len();
                self.buf[..n].copy_from_slice(msg);
                self.on_datagram(slot, n, from, now, settled);
            }
            // Fewer than a batch: the socket's queue is empty (readiness is
            // edge-triggered, so a datagram arriving from now on is signalled anew).
            if got < BATCH {
                return;
            }
        }
    }

    /// One datagram (`self.buf[..n]`) from `from` on UDP slot `slot`.
    fn on_datagram(
        &mut self,
        slot: usize,
        n: usize,
        from: SocketAddr,
        now: Instant,
        settled: &mut Vec<Settled>,
    ) {
        if n < 12 {
            self.stats.ignored += 1;
            return;
        }
        let id = u16::from_be_bytes([self.buf[0], self.buf[1]]);
        let Some(q) = self.queries.get(&id) else {
            self.stats.ignored += 1;
            return;
        };
        let from_ours = self
            .cfg
            .servers
            .iter()
            .enumerate()
            .any(|(i, s)| *s == from && q.sent_to & (1 << (i % 64)) != 0);
        if q.tcp || q.slot != slot || !from_ours {
            self.stats.ignored += 1;
            return;
        }
        let Ok(a) = parse_answer(&self.buf[..n], id, &q.qname, q.qtype) else {
            self.stats.ignored += 1;
            return;
        };
        if a.truncated {
            self.stats.tcp += 1;
            self.retry_over_tcp(id, from, now, settled);
            return;
        }
        let q = self.queries.get(&id).expect("in flight");
        let n = self.cfg.servers.len();
        let more = q.sends < self.cfg.attempts * n as u32;
        let untried = (0..n.min(64)).any(|i| q.sent_to & (1 << i) == 0);
        if matches!(a.rcode, 2 | 4 | 5) && more && untried {
            // Server failure, not implemented, refused: ask a server this query has
            // not asked yet, now (the same server would most likely say the same).
            self.send(id, now, settled);
            return;
        }
        self.end_query(id, Outcome::from_answer(a), now, settled);
    }

    /// Moves a query whose UDP answer was truncated to TCP (to the same server).
    fn retry_over_tcp(
        &mut self,
        id: u16,
        server: SocketAddr,
        now: Instant,
        settled: &mut Vec<Settled>,
    ) {
        let q = self.queries.get_mut(&id).expect("in flight");
        q.tcp = true;
        self.seq += 1;
        q.seq = self.seq;
        self.timers
            .push_back((now + self.cfg.timeout, id, self.seq));
        let slot = std::mem::replace(&mut q.slot, usize::MAX);
        self.pool.release(slot, &self.registry, &mut self.rand);
        self.tcp_wait.push_back((id, server));
        self.start_tcp(now, settled);
    }

    /// Starts waiting TCP queries while connections are free.
    pub(super) fn start_tcp(&mut self, now: Instant, settled: &mut Vec<Settled>) {
        while let Some(j) = self.tcp.iter().position(Option::is_none) {
            let Some((id, server)) = self.tcp_wait.pop_front() else {
                return;
            };
            let Some(q) = self.queries.get(&id) else {
                continue;
            };
            let mut msg = Vec::with_capacity(64);
            if encode_query(id, &q.qname, q.qtype, &mut msg).is_err() {
                self.end_query(id, Outcome::fail(RC_INVALID), now, settled);
                continue;
            }
            let token = self.tcp_token(j, server);
            match TcpQuery::start(server, id, &msg, token, &self.registry) {
                Ok(t) => self.tcp[j] = Some(t),
                Err(_) => self.end_query(id, Outcome::fail(RC_TIMED_OUT), now, settled),
            }
        }
    }

    fn drive_tcp(&mut self, j: usize, now: Instant, settled: &mut Vec<Settled>) {
        let Some(t) = self.tcp[j].as_mut() else {
            return;
        };
        let id = t.id;
        let outcome = match t.on_ready() {
            Progress::Pending => return,
            Progress::Failed => Outcome::fail(RC_TIMED_OUT),
            Progress::Answer(msg) => match self.queries.get(&id) {
                Some(q) => match parse_answer(&msg, id, &q.qname, q.qtype) {
                    Ok(a) => Outcome::from_answer(a),
                    Err(_) => Outcome::fail(2),
                },
                None => Outcome::fail(RC_TIMED_OUT),
            },
        };
        self.end_query(id, outcome, now, settled);
    }
}
