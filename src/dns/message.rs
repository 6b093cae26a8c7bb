//! DNS messages (RFC 1035) for a stub resolver: encode an A/AAAA query, parse the
//! answer. Pure code over bytes.
//!
//! Invariants: parsing never panics and never loops on hostile input — every read is
//! bounds-checked, name compression pointers may only point backwards and at most 64
//! are followed per name; an answer is accepted only if it is a response (QR), carries
//! our ID and echoes our question. Addresses are taken from A/AAAA records in the
//! answer section (CNAME chains are followed implicitly: the records of the chain's
//! end are in the same section).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its own structure says.
    Truncated,
    /// Not an answer to our query (ID, QR bit or question differ).
    NotOurs,
    /// A name is malformed (bad label, pointer loop, too long).
    BadName,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// RCODE (0 no error, 2 server failure, 3 no such name, ...).
    pub rcode: u8,
    /// The TC bit: the answer did not fit in UDP.
    pub truncated: bool,
    /// Addresses of the queried type.
    pub addrs: Vec<IpAddr>,
    /// Smallest TTL among them, seconds.
    pub ttl: u32,
}

/// Appends a query for `name` (type A or AAAA, recursion desired) with `id`.
/// Errors when `name` is not a valid DNS name (empty label, label over 63 bytes, name
/// over 253).
pub fn encode_query(id: u16, name: &str, qtype: u16, buf: &mut Vec<u8>) -> Result<(), ParseError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(ParseError::BadName);
    }
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&[0x01, 0x00]); // RD
    buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(ParseError::BadName);
        }
        buf.push(label.len() as u8);
        buf.extend_from_slice(label.as_bytes());
    }
    buf.push(0);
    buf.extend_from_slice(&qtype.to_be_bytes());
    buf.extend_from_slice(&[0, 1]); // IN
    Ok(())
}

fn u16_at(m: &[u8], i: usize) -> Result<u16, ParseError> {
    m.get(i..i + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(ParseError::Truncated)
}

/// Reads the name at `pos`; returns it (lower case, dotted) and the position after it.
fn read_name(m: &[u8], mut pos: usize, out: &mut String) -> Result<usize, ParseError> {
    out.clear();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *m.get(pos).ok_or(ParseError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end.unwrap_or(pos + 1));
                }
                let label = m.get(pos + 1..pos + 1 + len).ok_or(ParseError::Truncated)?;
                if !out.is_empty() {
                    out.push('.');
                }
                for &b in label {
                    out.push(b.to_ascii_lowercase() as char);
                }
                if out.len() > 255 {
                    return Err(ParseError::BadName);
                }
                pos += 1 + len;
            }
            0xc0 => {
                let target = (u16_at(m, pos)? & 0x3fff) as usize;
                jumps += 1;
                if target >= pos || jumps > 64 {
                    return Err(ParseError::BadName);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(ParseError::BadName),
        }
    }
}

/// Parses `msg` as the answer to query `id` for `name`/`qtype`.
pub fn parse_answer(msg: &[u8], id: u16, name: &str, qtype: u16) -> Result<Answer, ParseError> {
    if msg.len() < 12 {
        return Err(ParseError::Truncated);
    }
    let flags = u16_at(msg, 2)?;
    if u16_at(msg, 0)? != id || flags & 0x8000 == 0 {
        return Err(ParseError::NotOurs);
    }
    let (qd, an) = (u16_at(msg, 4)?, u16_at(msg, 6)?);
    if qd != 1 {
        return Err(ParseError::NotOurs);
    }
    let mut owner = String::new();
    let mut pos = read_name(msg, 12, &mut owner)?;
    let want = name.strip_suffix('.').unwrap_or(name);
    if !owner.eq_ignore_ascii_case(want) || u16_at(msg, pos)? != qtype || u16_at(msg, pos + 2)? != 1
    {
        return Err(ParseError::NotOurs);
    }
    pos += 4;
    let mut answer = Answer {
        rcode: (flags & 0x0f) as u8,
        truncated: flags & 0x0200 != 0,
        addrs: Vec::new(),
        ttl: u32::MAX,
    };
    for _ in 0..an {
        pos = read_name(msg, pos, &mut owner)?;
        let rtype = u16_at(msg, pos)?;
        let ttl = msg
            .get(pos + 4..pos + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(ParseError::Truncated)?;
        let rdlen = u16_at(msg, pos + 8)? as usize;
        let rdata = msg
            .get(pos + 10..pos + 10 + rdlen)
            .ok_or(ParseError::Truncated)?;
        pos += 10 + rdlen;
        let addr = match (rtype, rdlen) {
            (TYPE_A, 4) if qtype == TYPE_A => Some(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        };
        if let Some(a) = addr {
            if !answer.addrs.contains(&a) {
                answer.addrs.push(a);
            }
            answer.ttl = answer.ttl.min(ttl);
        }
    }
    if answer.addrs.is_empty() {
        answer.ttl = 0;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a response to `q` with the given records (name pointer to the question).
    pub(crate) fn respond(q: &[u8], rcode: u8, records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, data) in records {
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        r
    }

    #[test]
    fn query_and_answer() {
        let mut q = Vec::new();
        encode_query(0xbeef, "Example.Test.", TYPE_A, &mut q).unwrap();
        assert_eq!(&q[..4], &[0xbe, 0xef, 1, 0]);
        assert_eq!(&q[12..], b"\x07Example\x04Test\x00\x00\x01\x00\x01");
        let r = respond(
            &q,
            0,
            &[
                (TYPE_A, &[10, 0, 0, 1]),
                (5, b"\x01x\x00"),
                (TYPE_A, &[10, 0, 0, 2]),
            ],
        );
        let a = parse_answer(&r, 0xbeef, "example.test", TYPE_A).unwrap();
        assert_eq!(
            a.addrs,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert_eq!((a.rcode, a.ttl, a.truncated), (0, 60, false));
        // Not ours: other id, other name, other type, a query.
        assert_eq!(
            parse_answer(&r, 1, "example.test", TYPE_A),
            Err(ParseError::NotOurs)
        );
        assert_eq!(
            parse_answer(&r, 0xbeef, "other.test", TYPE_A),
            Err(ParseError::NotOurs)
        );
        assert_eq!(
            parse_answer(&r, 0xbeef, "example.test", TYPE_AAAA),
            Err(ParseError::NotOurs)
        );
        assert_eq!(
            parse_answer(&q, 0xbeef, "example.test", TYPE_A),
            Err(ParseError::NotOurs)
        );
        let nx = respond(&q, 3, &[]);
        assert_eq!(
            parse_answer(&nx, 0xbeef, "example.test", TYPE_A)
                .unwrap()
                .rcode,
            3
        );
    }

    #[test]
    fn hostile_messages() {
        let mut q = Vec::new();
        encode_query(7, "a.test", TYPE_A, &mut q).unwrap();
        let good = respond(&q, 0, &[(TYPE_A, &[1, 2, 3, 4])]);
        // Every truncation is an error, never a panic.
        for i in 0..good.len() {
            assert!(
                parse_answer(&good[..i], 7, "a.test", TYPE_A).is_err(),
                "{i}"
            );
        }
        // A pointer to itself or forwards.
        let mut lp = good.clone();
        let at = q.len();
        lp[at] = 0xc0;
        lp[at + 1] = at as u8;
        assert_eq!(
            parse_answer(&lp, 7, "a.test", TYPE_A),
            Err(ParseError::BadName)
        );
        assert!(encode_query(1, "", TYPE_A, &mut Vec::new()).is_err());
        assert!(encode_query(1, "a..b", TYPE_A, &mut Vec::new()).is_err());
        assert!(encode_query(1, &"x".repeat(64), TYPE_A, &mut Vec::new()).is_err());
    }
}
