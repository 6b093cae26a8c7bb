//! gzip / deflate decoding of arbitrary bytes with a small output buffer and cap:
//! never panics, never exceeds the cap, and pieces do not change the output. (An
//! inflater that fails loses the output of that call, so a corrupt stream may fail
//! fed whole where fed in pieces it first reached the cap: then the Ok side must be
//! capped.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::codec::{Coding, ContentDecoder};

fn run(coding: Coding, data: &[u8], piece: usize, cap: u64) -> Result<(Vec<u8>, bool), ()> {
    let mut d = ContentDecoder::new(coding, cap);
    let mut out = Vec::new();
    let mut scratch = [0u8; 512];
    for mut p in data.chunks(piece) {
        loop {
            let (used, made) = d.decode(p, &mut scratch).map_err(|_| ())?;
            out.extend_from_slice(&scratch[..made]);
            p = &p[used..];
            if used == 0 && made == 0 {
                break;
            }
        }
    }
    loop {
        let (_, made) = d.decode(&[], &mut scratch).map_err(|_| ())?;
        if made == 0 {
            break;
        }
        out.extend_from_slice(&scratch[..made]);
    }
    assert!(out.len() as u64 <= cap);
    Ok((out, d.capped()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let coding = if ctl & 1 == 0 { Coding::Gzip } else { Coding::Deflate };
    let piece = usize::from(ctl >> 1) + 1;
    let cap = 4096;
    let a = run(coding, rest, piece, cap);
    let b = run(coding, rest, rest.len().max(1), cap);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y),
        (Ok((_, capped)), Err(())) | (Err(()), Ok((_, capped))) => assert!(*capped),
        (Err(()), Err(())) => {}
    }
});
