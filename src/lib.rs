//! volley: an HTTP/1.1 client engine on mio, built for checking huge lists of URLs.
//!
//! Layers, each using only the ones below it:
//! 1. ground: [`error`] (the contract's error kinds), [`text`] (integer and base64
//!    encodings), the timer wheel;
//! 2. pure protocol code that knows no socket and no clock: [`target`] (URLs),
//!    [`codec`] (HTTP/1.1), the DNS message codec, [`tls`] and [`cidr`] (the
//!    configuration types);
//! 3. one connection's state machine (`conn`, over `socket`), and the resolver
//!    (`resolve`, with the DNS stub);
//! 4. [`engine`]: the event loop and its seams (pool, dialer, exchange, redirects,
//!    retries, deadlines), and the `Source`/`Handler` API;
//! 5. the `volley` binary.
//!
//! Beside the layers, two pure helper modules for embedders: [`cookie`] (an RFC 6265
//! jar and curl's cookie file) and [`body`] (streamed request bodies, forms,
//! multipart, JSON behind the `json` feature, query parameters, basic auth).
//!
//! The public surface is what embedders and the binary need: [`engine`], [`codec`],
//! [`error`], [`target`], [`text`], [`cookie`], [`body`], [`fingerprint`] and [`calibrate`] (soft-404
//! signatures), the configuration of [`tls`] and [`cidr`], and
//! the DNS message codec ([`dns`], for its fuzz target). The connection, socket and
//! resolver layers are crate-internal. The timer wheel is public only for its
//! benchmark, and `dns::stub` only until the DNS work settles: neither is part of the
//! stable API.
//!
//! See `docs/architecture.md`.
#![warn(missing_docs)]

pub mod body;
pub mod calibrate;
pub mod cidr;
pub mod codec;
pub(crate) mod conn;
pub mod cookie;
pub mod dns;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub(crate) mod resolve;
pub mod rng;
pub(crate) mod socket;
pub mod target;
pub mod text;
#[doc(hidden)]
pub mod timer;
pub mod tls;

pub use error::{Error, ErrorKind};

/// `docs/library.md`, compiled and run as doctests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryDoc;
