//! The project's one pseudo-random generator for test data, benchmarks and fuzzing: SplitMix64
//! (Steele, Lea and Flood, 2014). Tiny, fast, deterministic from its seed (a run can be repeated)
//! and its output does not compress, which is all the callers need: random GGUF weights,
//! incompressible archive filler, mutation choices. Not for anything secret.
//!
//! The sequences are pinned by the tests below: GGUF fixtures, benchmark archives and fuzz runs
//! must stay the same for the same seed.

use std::io::{self, Read};

/// SplitMix64. As a [`Read`]er it yields an endless stream of pseudo-random bytes.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Any seed works, 0 included.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next pseudo-random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n` (n > 0; the modulo bias is negligible for small `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True about once in `one_in` calls (one_in > 0).
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// Uniform in `[-1, 1)`, 24 bits of precision.
    pub fn next_symmetric(&mut self) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        2.0 * unit - 1.0
    }

    /// Fills `buf` with the little-endian bytes of successive outputs; a last partial word uses
    /// its first bytes and drops the rest.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }

    /// `len` pseudo-random bytes.
    pub fn bytes_vec(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

impl Read for SplitMix64 {
    /// Always fills `buf` whole (see [`SplitMix64::fill`]).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill(buf);
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_are_pinned() {
        // The reference SplitMix64 sequence for seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
        let mut r = SplitMix64::new(42);
        assert_eq!(r.next_u64(), 0xbdd7_3226_2feb_6e95);
        assert_eq!(r.below(1000), (0x28ef_e333_b266_f103u64 % 1000) as usize);
    }

    #[test]
    fn bytes_and_reads_are_the_little_endian_words() {
        let mut words = SplitMix64::new(7);
        let (a, b) = (words.next_u64(), words.next_u64());
        let mut expected = a.to_le_bytes().to_vec();
        expected.extend_from_slice(&b.to_le_bytes()[..3]);
        assert_eq!(SplitMix64::new(7).bytes_vec(11), expected);

        // A partial word is dropped: the next read starts on a fresh one.
        let mut r = SplitMix64::new(7);
        let mut first = [0u8; 3];
        r.read_exact(&mut first).unwrap();
        assert_eq!(first, a.to_le_bytes()[..3]);
        let mut second = [0u8; 8];
        r.read_exact(&mut second).unwrap();
        assert_eq!(second, b.to_le_bytes());
    }

    #[test]
    fn symmetric_is_in_range() {
        let mut r = SplitMix64::new(1);
        for _ in 0..10_000 {
            let x = r.next_symmetric();
            assert!((-1.0..1.0).contains(&x), "{x}");
        }
        assert_eq!(SplitMix64::new(0).next_symmetric(), {
            let unit = (0xe220_a839_7b1d_cdafu64 >> 40) as f32 / (1u64 << 24) as f32;
            2.0 * unit - 1.0
        });
    }
}
