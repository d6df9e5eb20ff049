//! A GGUF header check that runs before llama.cpp sees a file.
//!
//! llama.cpp handles most malformed files gracefully, but it is C++ reading untrusted input;
//! this pure-Rust reader walks the whole header (magic, version, every metadata key/value and
//! every tensor description), with every length checked against the input, and checks that each
//! tensor's data starts inside the file. It never allocates more than the input is long and
//! never panics, so it can be fuzzed directly: [`looks_like_gguf`] and [`parse_header`] take
//! plain bytes.

use std::io::{self, Read};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Alignment of the tensor data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Key lengths beyond this are rejected (real keys are short dotted names).
const MAX_KEY_LEN: u64 = 1 << 16;
/// Value type ids of the GGUF format.
const TYPE_UINT8: u32 = 0;
const TYPE_INT8: u32 = 1;
const TYPE_UINT16: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_UINT32: u32 = 4;
const TYPE_INT32: u32 = 5;
const TYPE_FLOAT32: u32 = 6;
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
const TYPE_UINT64: u32 = 10;
const TYPE_INT64: u32 = 11;
const TYPE_FLOAT64: u32 = 12;

/// Whether `bytes` starts like a GGUF file llama.cpp can read: the magic `GGUF` followed by
/// format version 2 or 3 (little-endian). Cheap; for a full check use [`parse_header`].
pub fn looks_like_gguf(bytes: &[u8]) -> bool {
    bytes.len() >= 8
        && bytes[..4] == GGUF_MAGIC
        && matches!(
            u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            2 | 3
        )
}

/// What is wrong with a file that is not a usable GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file (starts with {found:02x?}, expected \"GGUF\")")]
    BadMagic {
        /// The first bytes of the file (fewer than 4 if it is that short).
        found: Vec<u8>,
    },
    /// A GGUF version llama.cpp does not read (it reads 2 and 3).
    #[error("unsupported GGUF version {version}")]
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },
    /// The input ends inside the header.
    #[error("truncated: the header ends at byte {offset} while reading {what}")]
    Truncated {
        /// Bytes read before the input ended.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A structurally invalid header.
    #[error("malformed header at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data starts at or beyond the end of the file.
    #[error(
        "tensor #{index} starts at byte {start}, beyond the end of the file ({file_len} bytes): the file is truncated"
    )]
    TensorOutOfBounds {
        /// Position of the tensor in the header.
        index: u64,
        /// Absolute file offset of its data.
        start: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// Reading the file failed.
    #[error("read error: {message}")]
    Read {
        /// The I/O error's text.
        message: String,
    },
}

/// A tensor as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// ggml type id of the data.
    pub ggml_type: u32,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dimensions).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The parsed header of a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Number of metadata key/value pairs.
    pub n_kv: u64,
    /// The tensors, in header order.
    pub tensors: Vec<TensorInfo>,
    /// `general.alignment`, or 32.
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
}

impl GgufHeader {
    /// Checks that every tensor with data starts inside a file of `file_len` bytes and at an
    /// aligned offset. (Whether the last bytes of each tensor are present is left to
    /// llama.cpp, which knows every type's size.)
    pub fn check_data_bounds(&self, file_len: u64) -> Result<(), GgufError> {
        for (index, t) in self.tensors.iter().enumerate() {
            if t.offset % self.alignment != 0 {
                return Err(GgufError::Malformed {
                    offset: self.data_offset,
                    reason: format!(
                        "tensor #{index} data offset {} is not a multiple of the alignment {}",
                        t.offset, self.alignment
                    ),
                });
            }
            let start = self.data_offset.saturating_add(t.offset);
            if t.n_elements() > 0 && start >= file_len {
                return Err(GgufError::TensorOutOfBounds {
                    index: index as u64,
                    start,
                    file_len,
                });
            }
        }
        Ok(())
    }
}

/// Parses a GGUF header from bytes (the whole file, or at least its header).
pub fn parse_header(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    parse_header_from(bytes)
}

/// Parses a GGUF header from a reader, reading no further than the end of the header.
pub fn parse_header_from(reader: impl Read) -> Result<GgufHeader, GgufError> {
    let mut r = Reader {
        inner: reader,
        pos: 0,
    };
    let magic = r.read_up_to_4()?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32("version")?;
    if !matches!(version, 2 | 3) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;

    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..n_kv {
        let key_len = r.u64("metadata key length")?;
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(r.malformed(format!("metadata key length {key_len}")));
        }
        let key = r.bytes(key_len, "metadata key")?;
        let value_type = r.u32("metadata value type")?;
        if key == b"general.alignment" {
            if value_type != TYPE_UINT32 {
                return Err(r.malformed("general.alignment is not a uint32".into()));
            }
            let a = u64::from(r.u32("general.alignment")?);
            if a == 0 || !a.is_power_of_two() {
                return Err(r.malformed(format!("general.alignment {a} is not a power of two")));
            }
            alignment = a;
        } else {
            r.skip_value(value_type, true)?;
        }
    }

    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name_len = r.u64("tensor name length")?;
        if name_len > MAX_KEY_LEN {
            return Err(r.malformed(format!("tensor name length {name_len}")));
        }
        r.skip(name_len, "tensor name")?;
        let n_dims = r.u32("tensor dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(r.malformed(format!("tensor with {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut n_elements: u64 = 1;
        for _ in 0..n_dims {
            let d = r.u64("tensor dimension")?;
            if d > i64::MAX as u64 {
                return Err(r.malformed(format!("tensor dimension {d}")));
            }
            n_elements = n_elements
                .checked_mul(d)
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| r.malformed("tensor element count overflows".into()))?;
            dims.push(d);
        }
        let ggml_type = r.u32("tensor type")?;
        let offset = r.u64("tensor data offset")?;
        tensors.push(TensorInfo {
            ggml_type,
            dims,
            offset,
        });
    }
    let data_offset = r.pos.div_ceil(alignment).saturating_mul(alignment);
    Ok(GgufHeader {
        version,
        n_kv,
        tensors,
        alignment,
        data_offset,
    })
}

struct Reader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Reader<R> {
    fn malformed(&self, reason: String) -> GgufError {
        GgufError::Malformed {
            offset: self.pos,
            reason,
        }
    }

    fn fail(&self, e: io::Error, what: &'static str) -> GgufError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            GgufError::Truncated {
                offset: self.pos,
                what,
            }
        } else {
            GgufError::Read {
                message: e.to_string(),
            }
        }
    }

    fn read_up_to_4(&mut self) -> Result<Vec<u8>, GgufError> {
        let mut buf = Vec::with_capacity(4);
        (&mut self.inner)
            .take(4)
            .read_to_end(&mut buf)
            .map_err(|e| self.fail(e, "magic"))?;
        self.pos += buf.len() as u64;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        match self.inner.read_exact(&mut buf) {
            Ok(()) => {
                self.pos += N as u64;
                Ok(buf)
            }
            Err(e) => Err(self.fail(e, what)),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.array::<8>(what).map(u64::from_le_bytes)
    }

    /// Reads `n` bytes (only used for short, bounded fields).
    fn bytes(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>, GgufError> {
        let mut buf = Vec::new();
        let got = (&mut self.inner)
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| self.fail(e, what))?;
        self.pos += got as u64;
        if (got as u64) < n {
            return Err(GgufError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(buf)
    }

    /// Skips `n` bytes without buffering them.
    fn skip(&mut self, n: u64, what: &'static str) -> Result<(), GgufError> {
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| self.fail(e, what))?;
        self.pos += got;
        if got < n {
            return Err(GgufError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(())
    }

    fn skip_value(&mut self, value_type: u32, array_allowed: bool) -> Result<(), GgufError> {
        match value_type {
            TYPE_UINT8 | TYPE_INT8 | TYPE_BOOL => self.skip(1, "metadata value"),
            TYPE_UINT16 | TYPE_INT16 => self.skip(2, "metadata value"),
            TYPE_UINT32 | TYPE_INT32 | TYPE_FLOAT32 => self.skip(4, "metadata value"),
            TYPE_UINT64 | TYPE_INT64 | TYPE_FLOAT64 => self.skip(8, "metadata value"),
            TYPE_STRING => {
                let len = self.u64("metadata string length")?;
                self.skip(len, "metadata string")
            }
            TYPE_ARRAY if array_allowed => {
                let elem_type = self.u32("metadata array type")?;
                let n = self.u64("metadata array length")?;
                let fixed = match elem_type {
                    TYPE_UINT8 | TYPE_INT8 | TYPE_BOOL => Some(1u64),
                    TYPE_UINT16 | TYPE_INT16 => Some(2),
                    TYPE_UINT32 | TYPE_INT32 | TYPE_FLOAT32 => Some(4),
                    TYPE_UINT64 | TYPE_INT64 | TYPE_FLOAT64 => Some(8),
                    _ => None,
                };
                if let Some(size) = fixed {
                    let total = n
                        .checked_mul(size)
                        .ok_or_else(|| self.malformed(format!("array of {n} elements")))?;
                    return self.skip(total, "metadata array");
                }
                if elem_type == TYPE_ARRAY {
                    return Err(self.malformed("nested metadata arrays".into()));
                }
                // Strings: each costs at least 8 bytes, so the loop ends at the input's end.
                for _ in 0..n {
                    self.skip_value(elem_type, false)?;
                }
                Ok(())
            }
            other => Err(self.malformed(format!("unknown metadata value type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, n_tensors: u64, kvs: &[u8]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&n_tensors.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(kvs);
        b
    }

    fn kv_string(key: &str, value: &str) -> Vec<u8> {
        let mut b = (key.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(&TYPE_STRING.to_le_bytes());
        b.extend_from_slice(&(value.len() as u64).to_le_bytes());
        b.extend_from_slice(value.as_bytes());
        b
    }

    #[test]
    fn magic_and_version() {
        assert!(looks_like_gguf(b"GGUF\x03\0\0\0"));
        assert!(looks_like_gguf(b"GGUF\x02\0\0\0rest"));
        assert!(!looks_like_gguf(b"GGUF\x01\0\0\0"));
        assert!(!looks_like_gguf(b"GGUF"));
        assert!(!looks_like_gguf(b"\x7fELF\x02\x01\x01\0"));
        assert!(!looks_like_gguf(b""));
        assert!(
            matches!(parse_header(b"GG"), Err(GgufError::BadMagic { found }) if found == b"GG")
        );
        assert!(matches!(
            parse_header(b"GGUF\x07\0\0\0"),
            Err(GgufError::UnsupportedVersion { version: 7 })
        ));
    }

    #[test]
    fn a_small_header_parses_and_every_truncation_is_detected() {
        let bytes = header(3, 0, &kv_string("general.architecture", "llama"));
        let h = parse_header(&bytes).unwrap();
        assert_eq!((h.version, h.n_kv, h.tensors.len()), (3, 1, 0));
        assert_eq!(h.data_offset, (bytes.len() as u64).div_ceil(32) * 32);
        for cut in 0..bytes.len() {
            assert!(parse_header(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hostile_lengths_do_not_allocate_or_loop() {
        // A string claiming 2^63 bytes, an array claiming 2^62 strings, 2^64-1 tensors.
        let mut kv = 4u64.to_le_bytes().to_vec();
        kv.extend_from_slice(b"key1");
        kv.extend_from_slice(&TYPE_STRING.to_le_bytes());
        kv.extend_from_slice(&(1u64 << 63).to_le_bytes());
        assert!(matches!(
            parse_header(&header(3, 0, &kv)),
            Err(GgufError::Truncated { .. })
        ));

        let mut kv = 4u64.to_le_bytes().to_vec();
        kv.extend_from_slice(b"key2");
        kv.extend_from_slice(&TYPE_ARRAY.to_le_bytes());
        kv.extend_from_slice(&TYPE_STRING.to_le_bytes());
        kv.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(
            parse_header(&header(3, 0, &kv)),
            Err(GgufError::Truncated { .. })
        ));

        let mut kv = 4u64.to_le_bytes().to_vec();
        kv.extend_from_slice(b"key3");
        kv.extend_from_slice(&TYPE_ARRAY.to_le_bytes());
        kv.extend_from_slice(&TYPE_UINT64.to_le_bytes());
        kv.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse_header(&header(3, 0, &kv)),
            Err(GgufError::Malformed { .. })
        ));

        let kv = kv_string("a", "b");
        assert!(matches!(
            parse_header(&header(3, u64::MAX, &kv)),
            Err(GgufError::Truncated { .. })
        ));
    }

    #[test]
    fn tensor_bounds() {
        let h = GgufHeader {
            version: 3,
            n_kv: 0,
            tensors: vec![TensorInfo {
                ggml_type: 0,
                dims: vec![4],
                offset: 64,
            }],
            alignment: 32,
            data_offset: 96,
        };
        assert!(h.check_data_bounds(200).is_ok());
        assert!(matches!(
            h.check_data_bounds(160),
            Err(GgufError::TensorOutOfBounds { start: 160, .. })
        ));
        let unaligned = GgufHeader {
            tensors: vec![TensorInfo {
                offset: 3,
                ..h.tensors[0].clone()
            }],
            ..h
        };
        assert!(matches!(
            unaligned.check_data_bounds(1000),
            Err(GgufError::Malformed { .. })
        ));
    }
}
