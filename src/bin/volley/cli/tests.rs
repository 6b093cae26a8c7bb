//! The tests of `cli.rs`: options as parsed, and the value parsers and range
//! checks as tables and properties.

use super::*;
use proptest::prelude::*;

#[test]
fn numeric_ranges() {
    for ok in ["0.001", "1", "1e6", "1000000", " 2.5 "] {
        assert!(parse_secs(ok).is_ok(), "{ok}");
        assert!(parse_secs_or_zero(ok).is_ok(), "{ok}");
    }
    assert_eq!(parse_secs_or_zero("0"), Ok(0.0));
    assert_eq!(parse_rate("0"), Ok(0.0));
    for bad in [
        "0",
        "-0.5",
        "1e-300",
        "0.0009",
        "1000000.1",
        "1e19",
        "1e20",
        "inf",
        "-inf",
        "NaN",
        "nan",
        "",
        "x",
        "1e309",
    ] {
        assert!(parse_secs(bad).is_err(), "{bad}");
    }
    for bad in ["-1", "1e-300", "1e7", "NaN", "inf"] {
        assert!(parse_secs_or_zero(bad).is_err(), "{bad}");
    }
    for bad in ["-1", "1e-300", "1e-7", "1e10", "NaN", "inf", "1e308"] {
        assert!(parse_rate(bad).is_err(), "{bad}");
    }
    assert!(parse_rate("1e-6").is_ok() && parse_rate("1e9").is_ok());
    assert!(duration("--timeout", 1e20).is_err());
    assert!(duration("--timeout", f64::NAN).is_err());
}

proptest! {
    /// Whatever is accepted turns into deadlines that cannot overflow.
    #[test]
    fn accepted_values_make_safe_durations(
        v in prop_oneof![proptest::num::f64::ANY, 0.0f64..2e6, 0.0f64..2e-3]
    ) {
        let text = format!("{v:e}");
        let now = std::time::Instant::now();
        if let Ok(secs) = parse_secs(&text) {
            let d = duration("--read-timeout", secs).unwrap();
            prop_assert!(now.checked_add(d).is_some());
        }
        if let Ok(secs) = parse_secs_or_zero(&text) {
            prop_assert!(secs == 0.0 || duration("--timeout", secs).is_ok());
        }
        if let Ok(rate) = parse_rate(&text) {
            prop_assert!(rate == 0.0 || Duration::try_from_secs_f64(1.0 / rate).is_ok());
        }
    }
}
