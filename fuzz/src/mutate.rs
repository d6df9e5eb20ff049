//! A small structure-blind mutator (libFuzzer-style: bit flips, interesting values, inserts,
//! deletes, duplications, truncation, splicing), stacked 1–8 times per input, for the stable
//! driver. Positions are biased towards the first `focus` bytes (the headers) when given.

/// The project's one test PRNG (SplitMix64, from test-support): deterministic from the seed,
/// so a run can be repeated.
pub use llama_prebuilt_test_support::rng::SplitMix64 as Rng;

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    32,
    64,
    100,
    127,
    128,
    255,
    256,
    511,
    512,
    1000,
    1024,
    4096,
    32767,
    32768,
    65535,
    65536,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

fn pos(rng: &mut Rng, len: usize, focus: Option<usize>) -> usize {
    match focus {
        Some(f) if f > 0 && len > 0 && !rng.chance(8) => rng.below(f.min(len)),
        _ => rng.below(len.max(1)),
    }
}

/// One mutated copy of `input`; `pool` supplies material for splicing.
pub fn mutate(rng: &mut Rng, input: &[u8], pool: &[Vec<u8>], focus: Option<usize>) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = v.len();
        match rng.below(11) {
            0 if len > 0 => {
                let p = pos(rng, len, focus);
                v[p] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let p = pos(rng, len, focus);
                v[p] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let p = pos(rng, len, focus);
                v[p] = [0u8, 1, 0x7f, 0x80, 0xff, b'/', b'.', 0x30][rng.below(8)];
            }
            3 if len >= 8 => {
                // An interesting integer, little- or big-endian, 1/2/4/8 bytes wide.
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let p = pos(rng, len - width + 1, focus);
                let val = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.chance(2) {
                    val.to_le_bytes()
                } else {
                    val.to_be_bytes()
                };
                let src = if rng.chance(2) {
                    &bytes[..width]
                } else {
                    &bytes[8 - width..]
                };
                v[p..p + width].copy_from_slice(src);
            }
            4 => {
                let p = pos(rng, len + 1, focus).min(len);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(p..p, bytes);
            }
            5 if len > 0 => {
                let p = pos(rng, len, focus);
                let n = 1 + rng.below(64.min(len - p).max(1));
                v.drain(p..(p + n).min(len));
            }
            6 if len > 0 => {
                // Duplicate a block (repeated headers, entries).
                let p = pos(rng, len, focus);
                let n = 1 + rng.below(512.min(len - p).max(1));
                let block = v[p..(p + n).min(len)].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, block);
            }
            7 if len > 0 => {
                let keep = rng.below(len);
                v.truncate(keep);
            }
            8 if !pool.is_empty() => {
                // Splice: a prefix of this input and a suffix of another.
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let cut = rng.below(len + 1);
                    let from = rng.below(other.len());
                    v.truncate(cut);
                    v.extend_from_slice(&other[from..]);
                }
            }
            9 if len > 1 => {
                // Copy a block over another place of the same input.
                let a = rng.below(len);
                let b = rng.below(len);
                let n = 1 + rng.below(32.min(len - a.max(b)).max(1));
                let block = v[a..(a + n).min(len)].to_vec();
                let end = (b + block.len()).min(len);
                v[b..end].copy_from_slice(&block[..end - b]);
            }
            _ => {
                // A path-ish or size-ish ASCII token somewhere (tar headers are ASCII octal).
                const TOKENS: &[&[u8]] = &[
                    b"../",
                    b"/",
                    b"./",
                    b"..",
                    b"/etc/passwd",
                    b"77777777777",
                    b"00000000000",
                    b"\0",
                    b"ustar\0",
                    b"ustar  \0",
                ];
                let t = TOKENS[rng.below(TOKENS.len())];
                let p = pos(rng, len + 1, focus).min(len);
                if rng.chance(2) || p + t.len() > len {
                    v.splice(p..p, t.iter().copied());
                } else {
                    v[p..p + t.len()].copy_from_slice(t);
                }
            }
        }
        if v.len() > 4 << 20 {
            v.truncate(4 << 20);
        }
    }
    v
}
