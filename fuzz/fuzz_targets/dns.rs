//! DNS answer parsing on arbitrary bytes: never panics, never loops; an accepted
//! answer only holds addresses of the asked type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::dns::message::{parse_answer, TYPE_A, TYPE_AAAA};

fuzz_target!(|data: &[u8]| {
    for qtype in [TYPE_A, TYPE_AAAA] {
        let id = data.first().map_or(0, |&b| u16::from(b) << 8 | u16::from(*data.get(1).unwrap_or(&0)));
        if let Ok(a) = parse_answer(data, id, "a.test", qtype) {
            assert!(a.addrs.iter().all(|x| x.is_ipv4() == (qtype == TYPE_A)));
        }
    }
});
