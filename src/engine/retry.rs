//! Retry policy and backoff, as pure functions of data.
//!
//! The contract retries an attempt that failed with `dns` (temporary failures only:
//! callers say so), `connect`, `connect_timeout`, `closed` or `read_timeout`, before
//! any response head arrived, at most `--retries` times. The delay before attempt
//! n + 1 is `min(base × 2^(n−1), 30 s)` plus a random jitter below half of that.
//!
//! A response is never retried, except a 429 (any method) or a 503 (idempotent
//! methods, RFC 9110 §9.2.2) while attempts remain ([`after_response`]): after the
//! response's `Retry-After` when it sent one, else after the backoff; a `Retry-After`
//! longer than `--max-retry-after` is not waited for, and the result is that response.
//!
//! Invariants: nothing here reads the clock or keeps state beyond the caller's
//! [`Rng`] (seeded from the OS CSPRNG by the engine); the same seed gives the same
//! delays.

use crate::error::ErrorKind;
use std::time::Duration;

/// The longest backoff before jitter.
const MAX_BACKOFF_MS: u64 = 30_000;

/// The kinds the contract retries.
pub(crate) fn retryable(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Dns
            | ErrorKind::Connect
            | ErrorKind::ConnectTimeout
            | ErrorKind::Closed
            | ErrorKind::ReadTimeout
    )
}

/// What failed, for [`should_retry`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    /// The error's kind.
    pub kind: ErrorKind,
    /// The failure itself forbids a retry (a permanent DNS answer, a TLS or policy
    /// error, a failure after the response began).
    pub final_: bool,
    /// A response head has arrived in this attempt.
    pub got_response: bool,
    /// Attempts made so far, this one included.
    pub attempts: u32,
}

/// Whether the task gets another attempt, given `retries` allowed.
pub(crate) fn should_retry(f: Failure, retries: u32) -> bool {
    !f.final_ && retryable(f.kind) && !f.got_response && f.attempts <= retries
}

/// The delay in milliseconds before the next attempt, after `attempts` attempts,
/// with base delay `base_ms`.
pub(crate) fn backoff_ms(base_ms: u64, attempts: u32, rng: &mut Rng) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(16));
    let capped = exp.min(MAX_BACKOFF_MS);
    capped + rng.below(capped / 2 + 1)
}

/// What to do after a final response, for [`after_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterResponse {
    /// The response is the result.
    Keep,
    /// Retry after the `Retry-After` wait given.
    RetryAfter(Duration),
    /// Retry after the usual backoff ([`backoff_ms`]).
    Backoff,
}

/// The methods RFC 9110 §9.2.2 defines as idempotent.
pub(crate) fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// Whether a final response with `status` to a request (`idempotent` method) is
/// retried, after `attempts` attempts (this one included) with `retries` allowed;
/// `retry_after` is the wait its `Retry-After` asked for (`None`: absent or not
/// valid), `cap` is `--max-retry-after`.
pub(crate) fn after_response(
    status: u16,
    idempotent: bool,
    retry_after: Option<Duration>,
    attempts: u32,
    retries: u32,
    cap: Duration,
) -> AfterResponse {
    let retried = status == 429 || (status == 503 && idempotent);
    if !retried || attempts > retries {
        return AfterResponse::Keep;
    }
    match retry_after {
        Some(w) if w > cap => AfterResponse::Keep,
        Some(w) => AfterResponse::RetryAfter(w),
        None => AfterResponse::Backoff,
    }
}

/// The jitter's generator: xoshiro256++ seeded from the OS CSPRNG, one per engine
/// (so per worker), never from the clock or the process id.
pub(crate) use crate::rng::Rng;

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: ErrorKind, final_: bool, got_response: bool, attempts: u32) -> Failure {
        Failure {
            kind,
            final_,
            got_response,
            attempts,
        }
    }

    #[test]
    fn policy_table() {
        use ErrorKind::*;
        let table = [
            // (failure, retries, retried?)
            (f(Connect, false, false, 1), 1, true),
            (f(Connect, false, false, 2), 1, false),
            (f(ConnectTimeout, false, false, 1), 2, true),
            (f(ReadTimeout, false, false, 1), 2, true),
            (f(Closed, false, false, 3), 3, true),
            (f(Dns, false, false, 1), 1, true),
            (f(Dns, true, false, 1), 1, false),
            (f(Closed, false, true, 1), 3, false),
            (f(Tls, false, false, 1), 3, false),
            (f(TotalTimeout, false, false, 1), 3, false),
            (f(ConnectRefused, false, false, 1), 3, false),
            (f(Connect, false, false, 1), 0, false),
        ];
        for (i, (failure, retries, want)) in table.into_iter().enumerate() {
            assert_eq!(should_retry(failure, retries), want, "row {i}: {failure:?}");
        }
    }

    #[test]
    fn response_table() {
        use AfterResponse::*;
        let s = Duration::from_secs;
        let cap = s(60);
        let table = [
            // (status, idempotent, retry_after, attempts, retries, cap, answer)
            (429, true, Some(s(1)), 1, 1, cap, RetryAfter(s(1))),
            (429, false, Some(s(1)), 1, 1, cap, RetryAfter(s(1))),
            (429, true, None, 1, 1, cap, Backoff),
            (429, true, Some(s(0)), 1, 1, cap, RetryAfter(s(0))),
            (429, true, Some(s(60)), 1, 1, cap, RetryAfter(s(60))),
            (429, true, Some(s(61)), 1, 1, cap, Keep),
            (429, true, Some(s(61)), 1, 1, s(0), Keep),
            (429, true, Some(s(0)), 1, 1, s(0), RetryAfter(s(0))),
            (429, true, Some(s(1)), 2, 1, cap, Keep),
            (429, true, None, 3, 3, cap, Backoff),
            (429, true, None, 1, 0, cap, Keep),
            (503, true, Some(s(2)), 1, 1, cap, RetryAfter(s(2))),
            (503, true, None, 1, 1, cap, Backoff),
            (503, false, None, 1, 1, cap, Keep),
            (503, false, Some(s(1)), 1, 1, cap, Keep),
            (503, true, Some(s(120)), 1, 5, cap, Keep),
            (500, true, None, 1, 5, cap, Keep),
            (502, true, Some(s(1)), 1, 5, cap, Keep),
            (200, true, Some(s(1)), 1, 5, cap, Keep),
            (301, true, None, 1, 5, cap, Keep),
            (408, true, None, 1, 5, cap, Keep),
        ];
        for (i, (status, idem, ra, attempts, retries, cap, want)) in table.into_iter().enumerate() {
            let got = after_response(status, idem, ra, attempts, retries, cap);
            assert_eq!(got, want, "row {i}: {status}");
        }
    }

    #[test]
    fn idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(idempotent(m), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "PROPFIND", ""] {
            assert!(!idempotent(m), "{m}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps_with_bounded_jitter() {
        let mut rng = Rng::seeded(7);
        for (attempts, floor) in [(0, 100), (1, 100), (2, 200), (3, 400), (10, 30_000)] {
            for _ in 0..100 {
                let d = backoff_ms(100, attempts, &mut rng);
                assert!(d >= floor && d <= floor + floor / 2, "{attempts}: {d}");
            }
        }
        assert_eq!(backoff_ms(0, 5, &mut rng), 0);
        assert!(backoff_ms(u64::MAX, 40, &mut rng) <= 45_000);
    }

    #[test]
    fn same_seed_same_delays() {
        let (mut a, mut b) = (Rng::seeded(42), Rng::seeded(42));
        for n in 1..20 {
            assert_eq!(backoff_ms(50, n, &mut a), backoff_ms(50, n, &mut b));
        }
    }
}
