//! The chunked decoder on arbitrary bytes in arbitrary pieces: never panics, data
//! ranges stay inside the consumed input, and the split does not change the result.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::codec::chunked::{Chunk, ChunkedDecoder};

fn run(data: &[u8], piece: usize) -> Result<Vec<u8>, ()> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for p in data.chunks(piece) {
        buf.extend_from_slice(p);
        loop {
            let (n, ev) = d.decode(&buf).map_err(|_| ())?;
            assert!(n <= buf.len());
            match ev {
                Chunk::Data(r) => {
                    assert!(r.end <= n);
                    out.extend_from_slice(&buf[r]);
                    buf.drain(..n);
                }
                Chunk::NeedMore => {
                    buf.drain(..n);
                    break;
                }
                Chunk::Done => return Ok(out),
            }
        }
    }
    Err(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let a = run(rest, usize::from(ctl) + 1);
    let b = run(rest, rest.len().max(1));
    assert_eq!(a, b);
});
