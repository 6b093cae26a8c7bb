//! Per-request settings: what a request may set for itself ([`Overrides`], in its
//! `RequestSpec`), falling back to the engine's `Config`.
//!
//! Pure: [`Settings::of`] merges a `Config` and an optional `Overrides` into the
//! `Copy` value a task keeps for its whole life (every attempt and hop reads it, never
//! the `Config`, for these fields). Invariant: a field left `None` in the overrides
//! is exactly the `Config`'s value.

use super::api::Config;
use std::time::Duration;

/// Settings one request may override; `None` keeps the engine's `Config` value.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use volley::engine::{Overrides, RequestSpec};
/// let spec = RequestSpec {
///     overrides: Some(Arc::new(Overrides {
///         read_timeout: Some(Duration::from_secs(60)),
///         follow: Some(true),
///         max_body: Some(10 << 20),
///         ..Overrides::default()
///     })),
///     ..RequestSpec::default()
/// };
/// # let _ = spec;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `Config::connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `Config::read_timeout`.
    pub read_timeout: Option<Duration>,
    /// `Config::total_timeout` (`Some(None)` = no total limit for this request).
    pub total_timeout: Option<Option<Duration>>,
    /// `Config::follow`.
    pub follow: Option<bool>,
    /// `Config::max_redirects`.
    pub max_redirects: Option<u32>,
    /// `Config::max_body`.
    pub max_body: Option<u64>,
}

/// The settings a task runs with: its overrides over the engine's `Config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub total_timeout: Option<Duration>,
    pub follow: bool,
    pub max_redirects: u32,
    pub max_body: u64,
}

impl Settings {
    /// `o` over `cfg`.
    pub(crate) fn of(cfg: &Config, o: Option<&Overrides>) -> Settings {
        let d = Overrides::default();
        let o = o.unwrap_or(&d);
        Settings {
            connect_timeout: o.connect_timeout.unwrap_or(cfg.connect_timeout),
            read_timeout: o.read_timeout.unwrap_or(cfg.read_timeout),
            total_timeout: o.total_timeout.unwrap_or(cfg.total_timeout),
            follow: o.follow.unwrap_or(cfg.follow),
            max_redirects: o.max_redirects.unwrap_or(cfg.max_redirects),
            max_body: o.max_body.unwrap_or(cfg.max_body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn unset_fields_fall_back(
            c in proptest::option::of(0u64..100), r in proptest::option::of(0u64..100),
            t in proptest::option::of(proptest::option::of(0u64..100)),
            f in proptest::option::of(any::<bool>()), m in proptest::option::of(0u32..20),
            b in proptest::option::of(any::<u64>()),
        ) {
            let cfg = Config::default();
            let o = Overrides {
                connect_timeout: c.map(Duration::from_secs),
                read_timeout: r.map(Duration::from_secs),
                total_timeout: t.map(|x| x.map(Duration::from_secs)),
                follow: f,
                max_redirects: m,
                max_body: b,
            };
            let s = Settings::of(&cfg, Some(&o));
            prop_assert_eq!(s.connect_timeout, o.connect_timeout.unwrap_or(cfg.connect_timeout));
            prop_assert_eq!(s.read_timeout, o.read_timeout.unwrap_or(cfg.read_timeout));
            prop_assert_eq!(s.total_timeout, o.total_timeout.unwrap_or(cfg.total_timeout));
            prop_assert_eq!(s.follow, f.unwrap_or(cfg.follow));
            prop_assert_eq!(s.max_redirects, m.unwrap_or(cfg.max_redirects));
            prop_assert_eq!(s.max_body, b.unwrap_or(cfg.max_body));
            prop_assert_eq!(Settings::of(&cfg, None), Settings::of(&cfg, Some(&Overrides::default())));
        }
    }
}
