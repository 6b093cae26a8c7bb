//! Test helpers shared by the binary's unit tests: outcomes built in one place, so a
//! field added to `Outcome` is added here once.

use std::time::Duration;
use volley::engine::{Outcome, Timings};
use volley::error::{Error, ErrorKind};

/// An outcome for target `n` with `status` and an optional error, 1 ms of total time.
pub fn outcome(n: u64, status: Option<u16>, error: Option<ErrorKind>) -> Outcome {
    let url = format!("http://h{}.example/p", n % 3);
    let mut o = Outcome::new(n, url);
    o.status = status;
    o.error = error.map(|k| Error::new(k, "detail"));
    o.timings = Timings {
        total: Some(Duration::from_millis(1)),
        ..Timings::default()
    };
    o.attempts = 1;
    o
}
