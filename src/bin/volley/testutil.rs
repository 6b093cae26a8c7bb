//! Test helpers shared by the binary's unit tests: outcomes built in one place, so a
//! field added to `Outcome` is added here once.

use std::time::Duration;
use volley::engine::{Outcome, Timings};
use volley::error::{Error, ErrorKind};

/// An outcome for target `n` with `status` and an optional error, 1 ms of total time.
pub fn outcome(n: u64, status: Option<u16>, error: Option<ErrorKind>) -> Outcome {
    let url = format!("http://h{}.example/p", n % 3);
    Outcome {
        tag: n,
        input: url.clone(),
        url: url.clone(),
        final_url: url,
        status,
        error: error.map(|k| Error::new(k, "detail")),
        content_length: None,
        bytes: 0,
        capped: false,
        location: None,
        redirects: Vec::new(),
        timings: Timings {
            total: Some(Duration::from_millis(1)),
            ..Timings::default()
        },
        attempts: 1,
        peer: None,
        tls: None,
    }
}
