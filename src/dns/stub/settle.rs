//! How the stub turns the outcomes of a name's A and AAAA queries into one report:
//! the next search-list candidate, an answer (cached), or an error (negative ones
//! cached by their SOA minimum, capped).
//!
//! Invariants: a name is reported once, when both of its current candidate's queries
//! have ended; outcomes for an earlier candidate are ignored; only definitive answers
//! (NXDOMAIN, or no data) move to the next candidate or enter the cache as negative.

use super::{Settled, Stub};
use crate::dns::cache::Cached;
use crate::dns::message::{Answer, TYPE_A};
use crate::error::{Error, ErrorKind};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pseudo-rcode: no answer in time (or the connection failed).
pub(super) const RC_TIMED_OUT: u8 = 0xff;
/// Pseudo-rcode: the OS random source failed, so no query could be sent.
pub(super) const RC_NO_RANDOM: u8 = 0xfe;
/// Pseudo-rcode: the name cannot be put in a query.
pub(super) const RC_INVALID: u8 = 0xfd;

/// How one query ended.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    addrs: Vec<IpAddr>,
    ttl: u32,
    rcode: u8,
    neg_ttl: Option<u32>,
}

impl Outcome {
    /// No answer, for the reason `rcode`.
    pub(super) fn fail(rcode: u8) -> Outcome {
        Outcome {
            addrs: Vec::new(),
            ttl: 0,
            rcode,
            neg_ttl: None,
        }
    }

    /// A parsed answer.
    pub(super) fn from_answer(a: Answer) -> Outcome {
        Outcome {
            addrs: a.addrs,
            ttl: a.ttl,
            rcode: a.rcode,
            neg_ttl: a.negative_ttl,
        }
    }

    /// NXDOMAIN or an empty NOERROR: the name (or its addresses) do not exist.
    fn definitive(&self) -> bool {
        self.addrs.is_empty() && matches!(self.rcode, 0 | 3)
    }
}

impl Stub {
    /// Records `outcome` for the `qtype` query of `qname` on behalf of name `key`.
    pub(super) fn finish_type(
        &mut self,
        key: &Arc<str>,
        qname: &Arc<str>,
        qtype: u16,
        outcome: Outcome,
        now: Instant,
        settled: &mut Vec<Settled>,
    ) {
        let Some(entry) = self.names.get_mut(key) else {
            return;
        };
        if entry.candidates[entry.idx] != *qname {
            return;
        }
        if qtype == TYPE_A {
            entry.v4 = Some(outcome);
        } else {
            entry.v6 = Some(outcome);
        }
        let (Some(v4), Some(v6)) = (&entry.v4, &entry.v6) else {
            return;
        };
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        for o in [v4, v6] {
            addrs.extend_from_slice(&o.addrs);
            if !o.addrs.is_empty() {
                ttl = ttl.min(o.ttl);
            }
        }
        let both_definitive = v4.definitive() && v6.definitive();
        if addrs.is_empty() && both_definitive && entry.idx + 1 < entry.candidates.len() {
            entry.idx += 1;
            entry.v4 = None;
            entry.v6 = None;
            let next = entry.candidates[entry.idx].clone();
            self.enqueue(key, &next);
            return;
        }
        let result = if addrs.is_empty() {
            let codes = [v4.rcode, v6.rcode];
            let (detail, temporary) = if codes.contains(&RC_INVALID) {
                ("not a valid DNS name", false)
            } else if codes.contains(&RC_NO_RANDOM) {
                ("no random numbers from the operating system", true)
            } else if codes.contains(&RC_TIMED_OUT) {
                ("no answer from the DNS server in time", true)
            } else if codes.contains(&2) {
                ("DNS server failure (SERVFAIL)", true)
            } else if codes.contains(&3) {
                ("no such name (NXDOMAIN)", false)
            } else if codes == [0, 0] {
                ("the name has no addresses", false)
            } else {
                ("the DNS server refused or could not answer", true)
            };
            let detail = format!("{key}: {detail}");
            if both_definitive {
                if let (Some(a), Some(b)) = (v4.neg_ttl, v6.neg_ttl) {
                    let secs = Duration::from_secs(a.min(b).into()).min(self.cfg.max_negative_ttl);
                    if !secs.is_zero() {
                        let c = Cached::Negative(Arc::from(detail.as_str()));
                        self.cache.insert(key, c, now + secs);
                    }
                }
            }
            Err((Error::new(ErrorKind::Dns, detail), temporary))
        } else {
            let keep = Duration::from_secs(ttl.into()).min(self.cfg.max_ttl);
            if !keep.is_zero() {
                let c = Cached::Addrs(Arc::from(addrs.as_slice()));
                self.cache.insert(key, c, now + keep);
            }
            Ok((addrs, ttl))
        };
        self.names.remove(key);
        settled.push((key.to_string(), result));
    }
}
