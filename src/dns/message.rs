//! DNS messages (RFC 1035) for a stub resolver: encode an A/AAAA query, parse the
//! answer, frame messages for TCP. Pure code over bytes.
//!
//! Invariants: parsing never panics and never loops on hostile input — every read is
//! bounds-checked, name compression pointers may only point backwards and at most 64
//! are followed per name, a name is at most 255 bytes, a CNAME chain at most
//! [`MAX_CNAME_CHAIN`] links; an answer is accepted only if it is a response (QR),
//! carries our ID and echoes our question (one question, same name, type and class).
//! Addresses are taken only from records owned by the queried name or by the end of
//! the CNAME chain that starts at it; other records in the message are ignored. A
//! truncated (TC) answer is reported as such without reading its records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type SOA.
pub const TYPE_SOA: u16 = 6;
/// Longest CNAME chain followed inside one answer.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its own structure says.
    Truncated,
    /// Not an answer to our query (ID, QR bit or question differ).
    NotOurs,
    /// A name is malformed (bad label, pointer loop, too long).
    BadName,
    /// A CNAME chain longer than [`MAX_CNAME_CHAIN`] (or a loop).
    CnameChain,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// RCODE (0 no error, 2 server failure, 3 no such name, ...).
    pub rcode: u8,
    /// The TC bit: the answer did not fit in UDP.
    pub truncated: bool,
    /// Addresses of the queried type (at the end of the CNAME chain, if any).
    pub addrs: Vec<IpAddr>,
    /// Smallest TTL among them and the chain's links, seconds (0 when no address).
    pub ttl: u32,
    /// The end of the CNAME chain, when the name is an alias.
    pub canonical: Option<String>,
    /// With no address: the negative-caching TTL from the authority section's SOA
    /// (RFC 2308: the smaller of its TTL and MINIMUM), uncapped.
    pub negative_ttl: Option<u32>,
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
                    // Bytes that would make two different names read alike (a dot
                    // inside a label) are escaped as `\\DDD`.
                    if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                        out.push(b.to_ascii_lowercase() as char);
                    } else {
                        out.push_str(&format!("\\{b:03}"));
                    }
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

/// One resource record as found in a message.
struct Record {
    owner: String,
    rtype: u16,
    ttl: u32,
    rdata: std::ops::Range<usize>,
    authority: bool,
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
    let (qd, an, ns) = (u16_at(msg, 4)?, u16_at(msg, 6)?, u16_at(msg, 8)?);
    if qd != 1 {
        return Err(ParseError::NotOurs);
    }
    let mut owner = String::new();
    let mut pos = read_name(msg, 12, &mut owner)?;
    let want = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if owner != want || u16_at(msg, pos)? != qtype || u16_at(msg, pos + 2)? != 1 {
        return Err(ParseError::NotOurs);
    }
    pos += 4;
    let mut answer = Answer {
        rcode: (flags & 0x0f) as u8,
        truncated: flags & 0x0200 != 0,
        addrs: Vec::new(),
        ttl: 0,
        canonical: None,
        negative_ttl: None,
    };
    if answer.truncated {
        // The records of a truncated answer may be cut anywhere; TCP will tell.
        return Ok(answer);
    }
    let mut records = Vec::new();
    for i in 0..u32::from(an) + u32::from(ns) {
        let mut owner = String::new();
        pos = read_name(msg, pos, &mut owner)?;
        let rtype = u16_at(msg, pos)?;
        let ttl = msg
            .get(pos + 4..pos + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(ParseError::Truncated)?;
        let rdlen = u16_at(msg, pos + 8)? as usize;
        let rdata = pos + 10..pos + 10 + rdlen;
        if rdata.end > msg.len() {
            return Err(ParseError::Truncated);
        }
        pos = rdata.end;
        // RFC 2181 §8: a TTL with the top bit set counts as 0.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let authority = i >= u32::from(an);
        records.push(Record {
            owner,
            rtype,
            ttl,
            rdata,
            authority,
        });
    }
    follow_chain(msg, &records, want, qtype, &mut answer)?;
    if answer.addrs.is_empty() {
        answer.negative_ttl = soa_negative_ttl(msg, &records);
    }
    Ok(answer)
}

/// Collects the addresses at the end of the CNAME chain starting at `name`.
fn follow_chain(
    msg: &[u8],
    records: &[Record],
    name: String,
    qtype: u16,
    answer: &mut Answer,
) -> Result<(), ParseError> {
    let mut cur = name;
    let mut ttl = u32::MAX;
    let mut links = 0;
    loop {
        for r in records.iter().filter(|r| !r.authority && r.owner == cur) {
            let d = &msg[r.rdata.clone()];
            let addr = match (r.rtype, d.len()) {
                (TYPE_A, 4) if qtype == TYPE_A => IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
                (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(d);
                    IpAddr::V6(Ipv6Addr::from(b))
                }
                _ => continue,
            };
            if !answer.addrs.contains(&addr) {
                answer.addrs.push(addr);
            }
            ttl = ttl.min(r.ttl);
        }
        if !answer.addrs.is_empty() {
            answer.ttl = ttl;
            return Ok(());
        }
        let Some(link) = records
            .iter()
            .find(|r| !r.authority && r.rtype == TYPE_CNAME && r.owner == cur)
        else {
            return Ok(());
        };
        links += 1;
        if links > MAX_CNAME_CHAIN {
            return Err(ParseError::CnameChain);
        }
        let mut next = String::new();
        read_name(msg, link.rdata.start, &mut next)?;
        ttl = ttl.min(link.ttl);
        answer.canonical = Some(next.clone());
        cur = next;
    }
}

/// RFC 2308 §5: the negative TTL is the smaller of the SOA record's TTL and its
/// MINIMUM field. The SOA must be in the authority section.
fn soa_negative_ttl(msg: &[u8], records: &[Record]) -> Option<u32> {
    let soa = records
        .iter()
        .find(|r| r.authority && r.rtype == TYPE_SOA)?;
    let mut scratch = String::new();
    let p = read_name(msg, soa.rdata.start, &mut scratch).ok()?;
    let p = read_name(msg, p, &mut scratch).ok()?;
    // serial, refresh, retry, expire, then minimum: 20 bytes inside the rdata.
    if p + 20 > soa.rdata.end {
        return None;
    }
    let b = &msg[p + 16..p + 20];
    let minimum = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(minimum.min(soa.ttl))
}

/// Appends `msg` with its two-byte length prefix (RFC 1035 §4.2.2, DNS over TCP).
pub fn frame_tcp(msg: &[u8], out: &mut Vec<u8>) -> Result<(), ParseError> {
    let len = u16::try_from(msg.len()).map_err(|_| ParseError::Truncated)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// The first length-prefixed message in `buf`: its range, or `None` while incomplete.
pub fn unframe_tcp(buf: &[u8]) -> Option<std::ops::Range<usize>> {
    let len = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]) as usize;
    (buf.len() >= 2 + len).then_some(2..2 + len)
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

    fn wire(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    /// A response to `q` with answer records and authority records (owner, type, ttl,
    /// rdata), names uncompressed.
    pub(crate) fn respond_full(
        q: &[u8],
        rcode: u8,
        answers: &[(&str, u16, u32, Vec<u8>)],
        authority: &[(&str, u16, u32, Vec<u8>)],
    ) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        r[8..10].copy_from_slice(&(authority.len() as u16).to_be_bytes());
        for (owner, t, ttl, data) in answers.iter().chain(authority) {
            r.extend(wire(owner));
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&[0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        r
    }

    pub(crate) fn soa(minimum: u32) -> Vec<u8> {
        let mut v = wire("ns.test");
        v.extend(wire("admin.test"));
        for x in [1u32, 2, 3, 4, minimum] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    #[test]
    fn cname_chains() {
        let mut q = Vec::new();
        encode_query(9, "www.a.test", TYPE_A, &mut q).unwrap();
        let r = respond_full(
            &q,
            0,
            &[
                ("www.a.test", TYPE_CNAME, 300, wire("b.test")),
                ("evil.test", TYPE_A, 300, vec![6, 6, 6, 6]),
                ("b.test", TYPE_CNAME, 100, wire("c.test")),
                ("c.test", TYPE_A, 200, vec![10, 0, 0, 3]),
                ("www.a.test", TYPE_AAAA, 200, vec![0; 16]),
            ],
            &[],
        );
        let a = parse_answer(&r, 9, "www.a.test", TYPE_A).unwrap();
        assert_eq!(a.addrs, ["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.ttl, 100);
        assert_eq!(a.canonical.as_deref(), Some("c.test"));
        // A loop and an over-long chain are errors; a chain to nowhere is empty.
        let lp = respond_full(
            &q,
            0,
            &[
                ("www.a.test", TYPE_CNAME, 1, wire("b.test")),
                ("b.test", TYPE_CNAME, 1, wire("www.a.test")),
            ],
            &[],
        );
        assert_eq!(
            parse_answer(&lp, 9, "www.a.test", TYPE_A),
            Err(ParseError::CnameChain)
        );
        let names: Vec<String> = (0..=MAX_CNAME_CHAIN + 1)
            .map(|i| format!("n{i}.test"))
            .collect();
        let mut recs = vec![("www.a.test", TYPE_CNAME, 1, wire(&names[0]))];
        for w in names.windows(2) {
            recs.push((w[0].as_str(), TYPE_CNAME, 1, wire(&w[1])));
        }
        recs.push((names.last().unwrap(), TYPE_A, 1, vec![1, 1, 1, 1]));
        let long = respond_full(&q, 0, &recs, &[]);
        assert_eq!(
            parse_answer(&long, 9, "www.a.test", TYPE_A),
            Err(ParseError::CnameChain)
        );
        let short = respond_full(&q, 0, &recs[recs.len() - 3..], &[]);
        assert!(parse_answer(&short, 9, "www.a.test", TYPE_A)
            .unwrap()
            .addrs
            .is_empty());
    }

    #[test]
    fn negative_answers_and_truncation() {
        let mut q = Vec::new();
        encode_query(5, "nx.test", TYPE_AAAA, &mut q).unwrap();
        let nx = respond_full(&q, 3, &[], &[("test", TYPE_SOA, 900, soa(120))]);
        let a = parse_answer(&nx, 5, "nx.test", TYPE_AAAA).unwrap();
        assert_eq!((a.rcode, a.negative_ttl), (3, Some(120)));
        let nx = respond_full(&q, 3, &[], &[("test", TYPE_SOA, 30, soa(120))]);
        assert_eq!(
            parse_answer(&nx, 5, "nx.test", TYPE_AAAA)
                .unwrap()
                .negative_ttl,
            Some(30)
        );
        // An SOA in the answer section does not count; a cut SOA gives no TTL.
        let odd = respond_full(&q, 0, &[("test", TYPE_SOA, 30, soa(120))], &[]);
        assert_eq!(
            parse_answer(&odd, 5, "nx.test", TYPE_AAAA)
                .unwrap()
                .negative_ttl,
            None
        );
        let cut = respond_full(&q, 3, &[], &[("test", TYPE_SOA, 30, soa(1)[..20].to_vec())]);
        assert_eq!(
            parse_answer(&cut, 5, "nx.test", TYPE_AAAA)
                .unwrap()
                .negative_ttl,
            None
        );
        // TC: reported without reading the (cut) records.
        let mut tc = respond(&q, 0, &[(TYPE_AAAA, &[0; 16])]);
        tc[2] |= 0x02;
        tc.truncate(tc.len() - 5);
        let a = parse_answer(&tc, 5, "nx.test", TYPE_AAAA).unwrap();
        assert!(a.truncated && a.addrs.is_empty());
    }

    #[test]
    fn tcp_framing() {
        let mut out = Vec::new();
        frame_tcp(b"abc", &mut out).unwrap();
        assert_eq!(out, b"\x00\x03abc");
        for i in 0..out.len() {
            assert_eq!(unframe_tcp(&out[..i]), None);
        }
        out.extend_from_slice(b"\x00");
        assert_eq!(unframe_tcp(&out), Some(2..5));
        assert!(frame_tcp(&vec![0; 70_000], &mut Vec::new()).is_err());
    }

    #[test]
    fn question_must_match_exactly() {
        let mut q = Vec::new();
        encode_query(3, "a.b.test", TYPE_A, &mut q).unwrap();
        // A single label "a.b" must not pass for two labels.
        let mut forged = q[..12].to_vec();
        forged.extend_from_slice(b"\x03a.b\x04test\x00\x00\x01\x00\x01");
        let r = respond(&forged, 0, &[(TYPE_A, &[1, 2, 3, 4])]);
        assert_eq!(
            parse_answer(&r, 3, "a.b.test", TYPE_A),
            Err(ParseError::NotOurs)
        );
        // Class other than IN.
        let mut r = respond(&q, 0, &[(TYPE_A, &[1, 2, 3, 4])]);
        r[q.len() - 1] = 3;
        assert_eq!(
            parse_answer(&r, 3, "a.b.test", TYPE_A),
            Err(ParseError::NotOurs)
        );
        // Case differences are the same name.
        let r = respond(&q, 0, &[(TYPE_A, &[1, 2, 3, 4])]);
        assert!(parse_answer(&r, 3, "A.B.Test.", TYPE_A).is_ok());
    }
}
