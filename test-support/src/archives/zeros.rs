//! A gzip stream of "some bytes, then N zero bytes", encoded directly instead of compressed.
//!
//! Size-cap tests need archives that *declare and contain* gigabytes of data. Compressing that
//! many zeros with zlib costs seconds in release and minutes in an unoptimised test build, so
//! the zero run is written as one fixed-Huffman deflate block of "literal 0, then repeat
//! (length 258, distance 1)" symbols: 13 bits per 258 bytes (~6.5 MiB per GiB), produced
//! mostly by copying one 13-byte pattern, and the CRC-32 of the zeros is computed in O(log N)
//! with the usual GF(2) matrix trick. Any inflater decodes it normally.

/// `prefix` (stored, uncompressed) followed by `zeros` zero bytes, as a complete gzip file.
pub(crate) fn gzip_prefix_then_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    // Header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown".
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for chunk in prefix.chunks(0xffff) {
        // Stored block, not final: 3 header bits padded to a byte, then LEN and NLEN.
        out.push(0);
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut bits = BitWriter {
        out,
        acc: 0,
        nbits: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    encode_zero_run(&mut bits, zeros);
    bits.code(0, 7); // end of block (symbol 256)
    let mut out = bits.finish();

    let crc = !extend_with_zeros(crc32_update(!0, prefix), zeros);
    out.extend_from_slice(&crc.to_le_bytes());
    let isize = (prefix.len() as u64).wrapping_add(zeros) as u32; // modulo 2^32, per RFC 1952
    out.extend_from_slice(&isize.to_le_bytes());
    out
}

/// Fixed-code symbols used here (RFC 1951 3.2.6): literal 0 = 8 bits `00110000`,
/// length 258 (symbol 285) = 8 bits `11000101`, distance 1 = 5 bits `00000`.
const LITERAL_ZERO: (u32, u32) = (0b0011_0000, 8);
const LENGTH_258: (u32, u32) = (0b1100_0101, 8);
const DISTANCE_1: (u32, u32) = (0, 5);
const RUN: u64 = 258;

fn encode_zero_run(bits: &mut BitWriter, zeros: u64) {
    if zeros == 0 {
        return;
    }
    bits.code(LITERAL_ZERO.0, LITERAL_ZERO.1);
    let mut runs = (zeros - 1) / RUN;
    let rest = (zeros - 1) % RUN;
    // Reach a byte boundary, then 8 runs (104 bits) are exactly 13 whole bytes: copy them.
    while runs > 0 && bits.nbits != 0 {
        run(bits);
        runs -= 1;
    }
    if runs >= 8 {
        let mut pattern = BitWriter {
            out: Vec::new(),
            acc: 0,
            nbits: 0,
        };
        for _ in 0..8 {
            run(&mut pattern);
        }
        let pattern = pattern.finish();
        debug_assert_eq!(pattern.len(), 13);
        let copies = runs / 8;
        bits.out.reserve((copies as usize) * pattern.len());
        for _ in 0..copies {
            bits.out.extend_from_slice(&pattern);
        }
        runs %= 8;
    }
    for _ in 0..runs {
        run(bits);
    }
    for _ in 0..rest {
        bits.code(LITERAL_ZERO.0, LITERAL_ZERO.1);
    }
}

fn run(bits: &mut BitWriter) {
    bits.code(LENGTH_258.0, LENGTH_258.1);
    bits.code(DISTANCE_1.0, DISTANCE_1.1);
}

/// Deflate's bit order: values LSB first, Huffman codes MSB first.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    /// Bits in `acc` not yet written (always < 8 between calls).
    nbits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.nbits;
        self.nbits += n;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.put(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// CRC-32 (IEEE, reflected) register update, bit by bit: only used on small prefixes.
fn crc32_update(mut reg: u32, data: &[u8]) -> u32 {
    for &b in data {
        reg ^= u32::from(b);
        for _ in 0..8 {
            reg = (reg >> 1) ^ (0xEDB8_8320 & (reg & 1).wrapping_neg());
        }
    }
    reg
}

/// The register after feeding `n` zero bytes: feeding zeros is linear, so it is a matrix power
/// over GF(2), computed by repeated squaring.
fn extend_with_zeros(reg: u32, mut n: u64) -> u32 {
    // Column i = effect of register bit i for one zero input bit.
    let mut op = [0u32; 32];
    op[0] = 0xEDB8_8320;
    for (i, col) in op.iter_mut().enumerate().skip(1) {
        *col = 1 << (i - 1);
    }
    for _ in 0..3 {
        op = square(&op); // 1 -> 2 -> 4 -> 8 bits: one zero byte
    }
    let mut reg = reg;
    while n > 0 {
        if n & 1 == 1 {
            reg = times(&op, reg);
        }
        op = square(&op);
        n >>= 1;
    }
    reg
}

fn times(m: &[u32; 32], v: u32) -> u32 {
    (0..32)
        .filter(|i| v >> i & 1 == 1)
        .fold(0, |acc, i| acc ^ m[i])
}

fn square(m: &[u32; 32]) -> [u32; 32] {
    let mut r = [0u32; 32];
    for (i, col) in r.iter_mut().enumerate() {
        *col = times(m, m[i]);
    }
    r
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn inflate(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // GzDecoder checks the CRC-32 and length trailer at the end.
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn decodes_to_prefix_and_zeros() {
        let prefix: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8 + 1).collect();
        for (p, n) in [
            (0, 0),
            (0, 1),
            (3, 2),
            (10, 258),
            (10, 259),
            (1, 260),
            (512, 258 * 8 + 1),
            (1024, 258 * 8 * 5 + 77),
            (70_000, 300_001),
        ] {
            let gz = gzip_prefix_then_zeros(&prefix[..p], n);
            let data = inflate(&gz);
            assert_eq!(data.len() as u64, p as u64 + n, "{p}+{n}");
            assert_eq!(&data[..p], &prefix[..p]);
            assert!(data[p..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn zero_extension_matches_bitwise_crc() {
        let zeros = vec![0u8; 1000];
        for n in [0usize, 1, 7, 8, 999, 1000] {
            let reg = crc32_update(!0, b"abc");
            assert_eq!(
                extend_with_zeros(reg, n as u64),
                crc32_update(reg, &zeros[..n])
            );
        }
        // Known value: CRC-32 of "123456789".
        assert_eq!(!crc32_update(!0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_gibibyte_costs_megabytes_and_no_time() {
        let t = std::time::Instant::now();
        let gz = gzip_prefix_then_zeros(b"x", 1 << 30);
        assert!(gz.len() < 8 << 20, "{}", gz.len());
        assert_eq!(&gz[gz.len() - 4..], &((1u32 << 30) + 1).to_le_bytes());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}
