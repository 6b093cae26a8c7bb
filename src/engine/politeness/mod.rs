//! Politeness that adapts, per host (scheme/host/port): pauses after a 429 or 503
//! (or a run of timeouts), a concurrency limit that halves on push-back and grows
//! back with successes (AIMD), and `--rate-per-host` pacing.
//!
//! A seam in the engine's sense: pure types fed events and the time, answering
//! decisions; they read no clock and call no other seam.
//!
//! - [`retry_after`]: the `Retry-After` field (delta-seconds or any of the three
//!   HTTP-date forms) as the wait it asks for, relative to a given `SystemTime`;
//! - [`host`]: one host's [`host::HostState`] under a [`Policy`] — the constants of
//!   the policy ([`host::GROW_WINDOW`], [`host::TROUBLE_RUN`], [`host::MIN_LIMIT`],
//!   [`host::MAX_BACKOFF`]) are documented there;
//! - [`table`]: all hosts' states, the embedder's view ([`HostView`]) and the
//!   summary's list ([`HostReport`]).
//!
//! The retry of the request itself (whether a 429/503 is retried, and after how
//! long) is `engine::retry`'s decision; this module decides only for the host.
//! See `docs/politeness.md`.

pub mod host;
pub mod retry_after;
pub mod table;

pub use host::{Admit, Policy, Signal};
pub use table::{HostReport, HostView, Table};
