//! volley: an HTTP/1.1 client engine on mio, built for checking huge lists of URLs.
//!
//! Layers, each using only the ones below it:
//! 1. [`error`] (the contract's error kinds) and [`timer`] (the hierarchical wheel);
//! 2. [`codec`]: the sans-IO HTTP/1.1 codec;
//! 3. the connection state machine; 4. the engine; 5. the `volley` binary.
//!
//! See `docs/architecture.md`.
#![warn(missing_docs)]

pub mod cidr;
pub mod codec;
pub mod conn;
pub mod dns;
pub mod engine;
pub mod error;
pub mod resolve;
pub mod rng;
pub mod socket;
pub mod target;
pub mod timer;
pub mod tls;

pub use error::{Error, ErrorKind};
