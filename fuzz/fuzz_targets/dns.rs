//! The resolver's parsers on arbitrary bytes: DNS answers (CNAME chains, SOA negative
//! TTLs, compression), TCP framing, resolv.conf and hosts files. Never panics, never
//! loops; an accepted answer only holds addresses of the asked type, a negative TTL
//! only without addresses; a TCP frame is always within the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::dns::conf::{names_to_try, Hosts, ResolvConf};
use volley::dns::message::{parse_answer, unframe_tcp, TYPE_A, TYPE_AAAA};

fuzz_target!(|data: &[u8]| {
    let id = data.first().map_or(0, |&b| u16::from(b) << 8 | u16::from(*data.get(1).unwrap_or(&0)));
    for qtype in [TYPE_A, TYPE_AAAA] {
        for name in ["a.test", "www.a.test"] {
            if let Ok(a) = parse_answer(data, id, name, qtype) {
                assert!(a.addrs.iter().all(|x| x.is_ipv4() == (qtype == TYPE_A)));
                assert!(a.negative_ttl.is_none() || a.addrs.is_empty());
                assert!(!a.truncated || a.addrs.is_empty());
            }
        }
    }
    // The same bytes after a two-byte length prefix (DNS over TCP).
    if let Some(r) = unframe_tcp(data) {
        assert!(r.end <= data.len());
        let _ = parse_answer(&data[r], id, "a.test", TYPE_A);
    }
    let text = String::from_utf8_lossy(data);
    let c = ResolvConf::parse(&text);
    assert!(c.servers.len() <= 3 && c.search.len() <= 6 && c.ndots <= 15);
    // The name itself is always tried; search names only when short enough.
    let n = names_to_try("x.y", &c.search, c.ndots);
    assert!(n.contains(&"x.y".to_string()) && n.len() <= c.search.len() + 1);
    assert!(n.iter().all(|x| x.len() <= 253));
    let _ = Hosts::parse(&text).get("localhost");
});
