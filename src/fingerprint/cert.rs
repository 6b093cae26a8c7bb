//! What `--tls-info` reports of a peer's leaf certificate: subject CN, SANs, issuer,
//! not-after and the SPKI pin, read from its DER by a minimal reader (X.509 v3, the
//! fields named and nothing else). Pure: bytes in, strings out.
//!
//! Invariants: any input, however damaged, gives `None` or a [`CertInfo`] (never a
//! panic: every length is checked against what is left); strings are made printable
//! (invalid UTF-8 replaced), so a hostile certificate cannot inject control bytes.

use ring::digest::{digest, SHA256};

/// The leaf certificate, as `--tls-info` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertInfo {
    /// The subject's common name (`CN`), if it has one.
    pub subject_cn: Option<String>,
    /// The subjectAltName DNS names and IP addresses, in order.
    pub sans: Vec<String>,
    /// The issuer as `CN=…, O=…` (the attributes it has of CN, O, OU, C, in order).
    pub issuer: String,
    /// notAfter as RFC 3339 (`2027-01-31T23:59:59Z`).
    pub not_after: Option<String>,
    /// SHA-256 of the SubjectPublicKeyInfo, base64 (curl's `--pinnedpubkey sha256//`).
    pub pin_sha256: Option<String>,
}

/// One DER element: (tag, its content, what follows it). The length rules are
/// `tls::der_tlv`'s, the one DER reader of the crate.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (tag, end, content) = crate::tls::der_tlv(b)?;
    Some((tag, &b[content], &b[end..]))
}

/// The elements of a constructed value's content.
fn elements(mut b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (t, c, rest) = tlv(b)?;
        b = rest;
        Some((t, c))
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// OIDs (content bytes) of the name attributes reported.
const CN: &[u8] = &[0x55, 0x04, 0x03];
const O: &[u8] = &[0x55, 0x04, 0x0a];
const OU: &[u8] = &[0x55, 0x04, 0x0b];
const C: &[u8] = &[0x55, 0x04, 0x06];
const SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// A Name's (OID, value) attributes, in order.
fn attributes(name: &[u8]) -> Vec<(&[u8], String)> {
    let mut out = Vec::new();
    for (_, set) in elements(name) {
        for (_, atv) in elements(set) {
            let mut it = elements(atv);
            if let (Some((0x06, oid)), Some((_, v))) = (it.next(), it.next()) {
                out.push((oid, text(v)));
            }
        }
    }
    out
}

/// `UTCTime` (YYMMDDHHMMSSZ) or `GeneralizedTime` (YYYYMMDDHHMMSSZ) as RFC 3339.
fn time(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let digits = s.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: u32 = digits[..2].parse().ok()?;
            format!("{}{digits}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 14) => digits.to_string(),
        _ => return None,
    };
    let f = |a: usize, b: usize| &full[a..b];
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        f(0, 4),
        f(4, 6),
        f(6, 8),
        f(8, 10),
        f(10, 12),
        f(12, 14)
    ))
}

/// The SANs in a subjectAltName extension's value (DNS names and IP addresses).
fn sans(value: &[u8]) -> Vec<String> {
    let Some((0x30, seq, _)) = tlv(value) else {
        return Vec::new();
    };
    elements(seq)
        .filter_map(|(t, v)| match (t, v.len()) {
            (0x82, _) => Some(text(v)),
            (0x87, 4) => Some(std::net::Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string()),
            (0x87, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(v);
                Some(std::net::Ipv6Addr::from(a).to_string())
            }
            _ => None,
        })
        .collect()
}

/// Reads what [`CertInfo`] holds from a DER X.509 certificate; `None` if it is not one.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    if fields.peek().is_some_and(|f| f.0 == 0xa0) {
        fields.next(); // version
    }
    let _serial = fields.next()?;
    let _sig = fields.next()?;
    let (_, issuer) = fields.next()?;
    let (_, validity) = fields.next()?;
    let (_, subject) = fields.next()?;
    let _spki = fields.next()?;
    let mut info = CertInfo::default();
    let issuer_attrs = attributes(issuer);
    let mut parts = Vec::new();
    for (label, oid) in [("CN", CN), ("O", O), ("OU", OU), ("C", C)] {
        for (o, v) in &issuer_attrs {
            if *o == oid {
                parts.push(format!("{label}={v}"));
            }
        }
    }
    info.issuer = parts.join(", ");
    info.subject_cn = attributes(subject)
        .into_iter()
        .find(|(o, _)| *o == CN)
        .map(|(_, v)| v);
    let mut times = elements(validity);
    let _not_before = times.next();
    info.not_after = times.next().and_then(|(t, v)| time(t, v));
    if let Some(spki) = crate::tls::spki_of(der) {
        info.pin_sha256 = Some(crate::text::base64(digest(&SHA256, spki).as_ref()));
    }
    for (t, v) in fields {
        if t != 0xa3 {
            continue;
        }
        let Some((0x30, exts, _)) = tlv(v) else {
            continue;
        };
        for (_, ext) in elements(exts) {
            let mut it = elements(ext);
            let Some((0x06, oid)) = it.next() else {
                continue;
            };
            if oid != SAN {
                continue;
            }
            // [critical BOOLEAN] then the OCTET STRING holding the value.
            if let Some((_, value)) = it.find(|e| e.0 == 0x04) {
                info.sans = sans(value);
            }
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["a.example".into(), "127.0.0.1".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "a.example");
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(info.subject_cn.as_deref(), Some("a.example"));
        assert_eq!(info.sans, vec!["a.example", "127.0.0.1"]);
        assert_eq!(info.issuer, "CN=a.example");
        assert_eq!(info.not_after.as_deref(), Some("2031-05-17T00:00:00Z"));
        let pin = crate::text::base64(digest(&SHA256, &key.public_key_der()).as_ref());
        assert_eq!(info.pin_sha256, Some(pin));
    }

    #[test]
    fn times() {
        assert_eq!(
            time(0x17, b"491231235959Z").as_deref(),
            Some("2049-12-31T23:59:59Z")
        );
        assert_eq!(
            time(0x17, b"700101000000Z").as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            time(0x18, b"20500101000000Z").as_deref(),
            Some("2050-01-01T00:00:00Z")
        );
        assert_eq!(time(0x17, b"49123123595Z"), None);
        assert_eq!(time(0x18, b"2050010100000aZ"), None);
    }

    proptest::proptest! {
        /// Damaged input never panics.
        #[test]
        fn any_bytes(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }
    }

    #[test]
    fn truncated_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for n in 0..der.len() {
            let _ = parse(&der[..n]);
        }
    }
}
