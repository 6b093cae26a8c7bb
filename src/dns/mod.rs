//! DNS: everything a stub resolver in the event loop needs, sans-IO where it can be.
//!
//! - [`conf`]: `/etc/resolv.conf` and `/etc/hosts` parsers, search/ndots expansion;
//! - [`message`]: the message codec (queries, answers, CNAME chains, SOA minimum,
//!   TCP framing), bounded against hostile input;
//! - [`cache`]: the bounded LRU cache with expiry (positive and negative entries);
//! - [`stub`]: the UDP (and TCP on truncation) stub resolver driven by a mio loop.
//!
//! See `docs/dns.md`.

pub mod cache;
pub mod conf;
pub mod message;
mod pool;
pub mod stub;
mod tcp;
