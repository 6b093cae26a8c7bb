//! The contract's error kinds: one enum, one name per kind, stable.
//!
//! Every failure the engine reports maps to exactly one [`ErrorKind`]; the
//! free-text detail travels beside it (see [`Error`]). The string names returned by
//! [`ErrorKind::as_str`] are the contract's and never change.

use std::fmt;

/// The stable set of error kinds a request can end with.
///
/// Non-exhaustive: the library may add kinds of its own (like [`ErrorKind::Cancelled`])
/// that the contract's output never shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The target is not a usable http/https URL.
    InvalidUrl,
    /// The name could not be resolved.
    Dns,
    /// The peer refused the TCP connection.
    ConnectRefused,
    /// Another failure to connect (unreachable, no addresses left, ...).
    Connect,
    /// The connect deadline fired (resolution, TCP connect and TLS handshake).
    ConnectTimeout,
    /// The TLS handshake failed.
    Tls,
    /// The peer went silent longer than the read timeout during the exchange.
    ReadTimeout,
    /// The attempt ran longer than the total timeout.
    TotalTimeout,
    /// The connection closed or reset before a complete response head.
    Closed,
    /// The connection ended before the body was complete by its own framing.
    Truncated,
    /// The response is not valid HTTP/1.x.
    Protocol,
    /// More redirects than allowed.
    TooManyRedirects,
    /// Every address of the target is outside the allow list or inside the deny list.
    Denied,
    /// Library only, never in the contract's output: the request was in flight when
    /// `Config::stop` turned true (or the embedder cancelled it). A caller that
    /// records results should not record it, so a resumed run redoes the request.
    Cancelled,
}

impl ErrorKind {
    /// Every kind of the contract, in its order (without the library-only
    /// [`ErrorKind::Cancelled`]).
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::InvalidUrl,
        ErrorKind::Dns,
        ErrorKind::ConnectRefused,
        ErrorKind::Connect,
        ErrorKind::ConnectTimeout,
        ErrorKind::Tls,
        ErrorKind::ReadTimeout,
        ErrorKind::TotalTimeout,
        ErrorKind::Closed,
        ErrorKind::Truncated,
        ErrorKind::Protocol,
        ErrorKind::TooManyRedirects,
        ErrorKind::Denied,
    ];

    /// The contract's name of this kind (`"connect_timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Connect => "connect",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::ReadTimeout => "read_timeout",
            ErrorKind::TotalTimeout => "total_timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Protocol => "protocol",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::Denied => "denied",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error kind with a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Which of the contract's kinds.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub detail: String,
}

impl Error {
    /// Builds an error of `kind` with `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contracts() {
        let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid_url",
                "dns",
                "connect_refused",
                "connect",
                "connect_timeout",
                "tls",
                "read_timeout",
                "total_timeout",
                "closed",
                "truncated",
                "protocol",
                "too_many_redirects",
                "denied"
            ]
        );
    }
}
