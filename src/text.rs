//! Ground-level text encodings shared by every layer: decimal integers without `fmt`
//! and standard base64.
//!
//! This module uses nothing else of the crate, so the codec, TLS configuration, the
//! engine's API types and the binary can all use it without reaching sideways or up.
//! Invariants: neither function allocates more than its result (`fmt_u64` nothing at
//! all), and both are total: no input panics.

/// Formats `n` in decimal into `out` without allocating; returns the digits.
///
/// ```
/// let mut d = [0u8; 20];
/// assert_eq!(volley::text::fmt_u64(8080, &mut d), b"8080");
/// ```
pub fn fmt_u64(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

/// Standard base64 (RFC 4648 §4) with padding.
///
/// ```
/// assert_eq!(volley::text::base64(b"u:p@ss"), "dTpwQHNz");
/// ```
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        s.push(A[(n >> 18) as usize & 63] as char);
        s.push(A[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_digits() {
        let mut d = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut d), b"0");
        assert_eq!(fmt_u64(7, &mut d), b"7");
        assert_eq!(fmt_u64(10, &mut d), b"10");
        assert_eq!(fmt_u64(u64::MAX, &mut d), b"18446744073709551615");
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    proptest::proptest! {
        #[test]
        fn fmt_matches_std(n: u64) {
            let mut d = [0u8; 20];
            let want = n.to_string();
            proptest::prop_assert_eq!(fmt_u64(n, &mut d), want.as_bytes());
        }

        #[test]
        fn base64_length(data: Vec<u8>) {
            proptest::prop_assert_eq!(base64(&data).len(), data.len().div_ceil(3) * 4);
        }
    }
}
