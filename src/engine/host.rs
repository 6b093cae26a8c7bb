//! Per scheme/host/port bookkeeping: open connections (for `--per-host`), the idle
//! keep-alive pool, and requests waiting for a connection slot.
//!
//! Invariants: `open` counts every connection of the key that is not closed
//! (connecting, busy or idle); `idle` holds only connections in `Phase::Idle`, most
//! recently used last (reuse takes the last: the one least likely to have been
//! closed by the server); a waiter holds a concurrency slot but no deadline runs for
//! it.

use std::collections::{HashMap, VecDeque};

/// The state of one scheme/host/port.
#[derive(Debug, Default)]
pub struct HostEntry {
    /// https.
    pub tls: bool,
    /// Port.
    pub port: u16,
    /// Connections not closed.
    pub open: usize,
    /// Idle pooled connections (conn keys).
    pub idle: Vec<usize>,
    /// Tasks waiting for a connection slot.
    pub waiters: VecDeque<usize>,
}

/// All hosts, keyed by host name then (tls, port): lookups by `&str` allocate nothing.
#[derive(Debug, Default)]
pub struct Hosts {
    map: HashMap<String, Vec<HostEntry>>,
}

impl Hosts {
    /// The entry for a key, created when missing.
    pub fn entry(&mut self, host: &str, tls: bool, port: u16) -> &mut HostEntry {
        if !self.map.contains_key(host) {
            self.map.insert(host.to_string(), Vec::new());
        }
        let v = self.map.get_mut(host).expect("inserted above");
        let i = match v.iter().position(|e| e.tls == tls && e.port == port) {
            Some(i) => i,
            None => {
                v.push(HostEntry {
                    tls,
                    port,
                    ..HostEntry::default()
                });
                v.len() - 1
            }
        };
        &mut v[i]
    }

    /// Drops the entry for a key when it holds nothing (keeps memory flat over
    /// millions of distinct hosts).
    pub fn prune(&mut self, host: &str, tls: bool, port: u16) {
        if let Some(v) = self.map.get_mut(host) {
            v.retain(|e| e.tls != tls || e.port != port || e.open > 0 || !e.waiters.is_empty());
            if v.is_empty() {
                self.map.remove(host);
            }
        }
    }

    /// Any idle connection of any host (to free a file descriptor), removed from its pool.
    pub fn take_any_idle(&mut self) -> Option<usize> {
        self.map
            .values_mut()
            .flat_map(|v| v.iter_mut())
            .find_map(|e| e.idle.pop())
    }
}
