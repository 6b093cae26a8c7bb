//! Random numbers: a fast generator for jitter and sampling ([`Rng`]), and a buffered
//! reader of the operating system's CSPRNG for values an attacker must not predict
//! ([`SecureRandom`]: DNS query IDs and source ports).
//!
//! Invariants: nothing here is ever seeded from the clock or the process id. [`Rng`]
//! is xoshiro256++ seeded from the OS CSPRNG (`getrandom`), or from an explicit seed
//! in tests; [`Rng::fork`] hands out non-overlapping streams (one per worker) by the
//! generator's jump function. xoshiro is fast but not cryptographic — its state can be
//! recovered from its output — so anything an off-path attacker would like to guess
//! comes from [`SecureRandom`], which is the OS CSPRNG itself, read in blocks.

use std::io;

/// Fills `buf` from the operating system's CSPRNG.
pub fn os_random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::getrandom(buf).map_err(|e| io::Error::other(format!("OS random source: {e}")))
}

/// splitmix64: expands one 64-bit seed into well-mixed words.
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256++: a small fast generator; see the module docs for what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from the OS CSPRNG (256 bits).
    pub fn from_os() -> io::Result<Rng> {
        let mut b = [0u8; 32];
        os_random(&mut b)?;
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            *w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        }
        if s == [0; 4] {
            // The one state xoshiro cannot leave; 2^-256 likely, handled anyway.
            s[0] = 1;
        }
        Ok(Rng { s })
    }

    /// A generator with an explicit seed, for tests and reproducible runs.
    pub fn seeded(seed: u64) -> Rng {
        let mut x = seed;
        let s = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform value in `0..n` (0 when `n` is 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-and-reject.
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A new stream that never overlaps this one: returns the current state and
    /// advances `self` by 2^128 steps (xoshiro256's jump). Call once per worker.
    pub fn fork(&mut self) -> Rng {
        const JUMP: [u64; 4] = [
            0x180e_c6d3_3cfd_0aba,
            0xd5a6_1266_f0c9_392c,
            0xa958_2618_e03f_c9aa,
            0x39ab_dc45_29b1_661c,
        ];
        let child = self.clone();
        let mut acc = [0u64; 4];
        for j in JUMP {
            for b in 0..64 {
                if j & (1 << b) != 0 {
                    for (a, s) in acc.iter_mut().zip(self.s) {
                        *a ^= s;
                    }
                }
                self.next_u64();
            }
        }
        self.s = acc;
        child
    }
}

/// Bytes of OS randomness fetched per refill.
const BLOCK: usize = 512;

/// The OS CSPRNG read `BLOCK` bytes at a time: one system call per 256 DNS IDs.
#[derive(Debug, Clone)]
pub struct SecureRandom {
    buf: [u8; BLOCK],
    pos: usize,
}

impl SecureRandom {
    /// A reader with an empty buffer (the first draw fetches).
    pub fn new() -> SecureRandom {
        SecureRandom {
            buf: [0; BLOCK],
            pos: BLOCK,
        }
    }

    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        if self.pos + N > BLOCK {
            os_random(&mut self.buf)?;
            self.pos = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        // Used bytes are wiped so that a later copy of this value cannot reveal them.
        self.buf[self.pos..self.pos + N].fill(0);
        self.pos += N;
        Ok(out)
    }

    /// 16 unpredictable bits.
    pub fn u16(&mut self) -> io::Result<u16> {
        self.take::<2>().map(u16::from_le_bytes)
    }

    /// 64 unpredictable bits.
    pub fn u64(&mut self) -> io::Result<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    /// An unpredictable value in `lo..=hi` (without modulo bias).
    pub fn in_range(&mut self, lo: u16, hi: u16) -> io::Result<u16> {
        let span = u32::from(hi.max(lo) - lo) + 1;
        let zone = (1u32 << 16) - (1u32 << 16) % span;
        loop {
            let v = u32::from(self.u16()?);
            if v < zone {
                return Ok(lo + (v % span) as u16);
            }
        }
    }
}

impl Default for SecureRandom {
    fn default() -> Self {
        SecureRandom::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_os_is_not() {
        let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::seeded(8).next_u64(), xs[0]);
        let (mut o1, mut o2) = (Rng::from_os().unwrap(), Rng::from_os().unwrap());
        assert_ne!(o1.next_u64(), o2.next_u64());
    }

    #[test]
    fn reference_output() {
        // xoshiro256++ from state [1, 2, 3, 4]: the reference implementation's outputs.
        let mut r = Rng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, [41943041, 58720359, 3588806011781223]);
    }

    #[test]
    fn forks_are_distinct_streams() {
        let mut master = Rng::seeded(1);
        let mut w: Vec<Rng> = (0..4).map(|_| master.fork()).collect();
        let firsts: Vec<u64> = w.iter_mut().map(|r| r.next_u64()).collect();
        for i in 0..firsts.len() {
            for j in i + 1..firsts.len() {
                assert_ne!(firsts[i], firsts[j]);
            }
        }
    }

    #[test]
    fn below_and_unit_in_range() {
        let mut r = Rng::seeded(3);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7);
            seen[v as usize] = true;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn secure_random_values() {
        let mut s = SecureRandom::new();
        let ids: std::collections::HashSet<u16> = (0..600).map(|_| s.u16().unwrap()).collect();
        // 600 draws from 65,536: a handful of collisions at most, never a constant.
        assert!(ids.len() > 550, "{}", ids.len());
        for _ in 0..1000 {
            let p = s.in_range(1024, 65535).unwrap();
            assert!(p >= 1024);
        }
        assert_eq!(s.in_range(5, 5).unwrap(), 5);
    }
}
