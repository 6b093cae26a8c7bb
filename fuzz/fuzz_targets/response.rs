//! Response head parsing + framing + content decoding on arbitrary bytes, fed in
//! pieces whose sizes come from the first input byte. Must never panic, and the
//! decoded body never exceeds the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let piece = usize::from(ctl & 0x3f) + 1;
    let head_request = ctl & 0x40 != 0;
    let cap = if ctl & 0x80 != 0 { 64 } else { 1 << 16 };
    if let Ok(r) = volley::codec::decode_pieces(rest.chunks(piece), head_request, cap) {
        assert!(r.body.len() as u64 <= cap);
        // The same bytes whole give the same answer.
        // (A corrupt coded body may fail whole where the pieces first reached the cap.)
        match volley::codec::decode_pieces([rest], head_request, cap) {
            Ok(whole) => {
                assert_eq!(whole.body, r.body);
                assert_eq!(whole.head.status, r.head.status);
            }
            Err(_) => assert!(r.capped),
        }
    }
});
