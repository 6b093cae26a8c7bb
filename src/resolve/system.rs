//! The system resolver as a fallback, for when no nameserver is usable: lookups
//! (`getaddrinfo`, which blocks) run on at most [`THREADS`] helper threads, never on
//! the loop's thread, and their answers come back through a channel that wakes the
//! loop with a mio `Waker`.
//!
//! Invariants: the queue in front of the threads holds at most `cap` names (a name
//! that finds it full is refused at once, as a temporary failure); a name whose
//! requests have all ended is taken out of the queue ([`System::forget`]), so no
//! lookup is made for nobody; each name queued is answered once through
//! [`System::try_answer`] unless forgotten before a thread took it. Dropping the
//! `System` ends the threads after their current lookup.

use super::{Addrs, DnsError};
use crate::error::{Error, ErrorKind};
use std::collections::VecDeque;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

/// Helper threads at most.
pub const THREADS: usize = 4;

/// A name and its answer.
pub type Answer = (String, Result<Addrs, DnsError>);

#[derive(Debug, Default)]
struct Queue {
    names: VecDeque<String>,
    closed: bool,
}

type Shared = Arc<(Mutex<Queue>, Condvar)>;

/// The fallback resolver; see the module docs.
#[derive(Debug)]
pub struct System {
    shared: Shared,
    cap: usize,
    threads: usize,
    answers: Receiver<Answer>,
    answer_tx: Sender<Answer>,
    waker: Arc<mio::Waker>,
}

impl System {
    /// A fallback whose queue holds at most `cap` names (at least one); answers wake
    /// `waker`. No thread starts before the first lookup.
    pub fn new(cap: usize, waker: Arc<mio::Waker>) -> System {
        let (answer_tx, answers) = channel();
        System {
            shared: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            cap: cap.max(1),
            threads: 0,
            answers,
            answer_tx,
            waker,
        }
    }

    /// Queues `host` for a lookup; false when the queue is full.
    pub fn ask(&mut self, host: &str) -> bool {
        let (lock, cv) = &*self.shared;
        let Ok(mut q) = lock.lock() else {
            return false;
        };
        if q.names.len() >= self.cap {
            return false;
        }
        q.names.push_back(host.to_string());
        let backlog = q.names.len();
        drop(q);
        cv.notify_one();
        if self.threads < THREADS && self.threads < backlog + 1 {
            self.spawn();
        }
        true
    }

    /// Nobody wants `host` any more: it leaves the queue if no thread took it yet.
    pub fn forget(&mut self, host: &str) {
        if let Ok(mut q) = self.shared.0.lock() {
            q.names.retain(|h| h != host);
        }
    }

    /// Names waiting for a thread.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shared.0.lock().map_or(0, |q| q.names.len())
    }

    /// A finished lookup, if any.
    pub fn try_answer(&self) -> Option<Answer> {
        self.answers.try_recv().ok()
    }

    fn spawn(&mut self) {
        let shared = self.shared.clone();
        let tx = self.answer_tx.clone();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("volley-dns".into())
            .spawn(move || {
                while let Some(host) = next_job(&shared) {
                    let answer = lookup(&host);
                    if tx.send((host, answer)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            });
        if spawned.is_ok() {
            self.threads += 1;
        }
    }
}

/// The next name to look up, waiting for one; `None` once closed.
fn next_job(shared: &Shared) -> Option<String> {
    let (lock, cv) = &**shared;
    let mut q = lock.lock().ok()?;
    loop {
        if q.closed {
            return None;
        }
        if let Some(h) = q.names.pop_front() {
            return Some(h);
        }
        q = cv.wait(q).ok()?;
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.0.lock() {
            q.closed = true;
            q.names.clear();
        }
        self.shared.1.notify_all();
    }
}

/// One blocking lookup through the system's resolver.
fn lookup(host: &str) -> Result<Addrs, DnsError> {
    match (host, 0u16).to_socket_addrs() {
        Ok(it) => {
            let mut v: Vec<IpAddr> = Vec::new();
            for a in it {
                if !v.contains(&a.ip()) {
                    v.push(a.ip());
                }
            }
            if v.is_empty() {
                Err(DnsError {
                    error: Error::new(ErrorKind::Dns, format!("{host}: no addresses")),
                    temporary: false,
                })
            } else {
                Ok(v.into())
            }
        }
        Err(e) => {
            let msg = e.to_string();
            Err(DnsError {
                temporary: msg.contains("Temporary") || msg.contains("try again"),
                error: Error::new(ErrorKind::Dns, format!("{host}: {msg}")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_and_forgotten_names_leave_it() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let mut s = System::new(2, waker);
        // Closed first, so no thread takes (and looks up) anything: the queue is
        // observed as the engine fills it.
        s.shared.0.lock().unwrap().closed = true;
        assert!(s.ask("a.invalid"));
        assert!(s.ask("b.invalid"));
        assert!(!s.ask("c.invalid"), "a full queue refuses");
        s.forget("a.invalid");
        assert_eq!(s.queued(), 1);
        assert!(s.ask("c.invalid"));
        assert_eq!(s.shared.0.lock().unwrap().names, ["b.invalid", "c.invalid"]);
    }
}
