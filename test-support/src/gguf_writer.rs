//! The one GGUF v3 writer behind every generated test file (the tiny llama models of
//! [`crate::gguf`], the reranker of [`crate::gguf_rerank`], the LoRA adapters and broken files of
//! [`crate::gguf_lora`]), and the write-once cache those files share.
//!
//! Layout (llama.cpp's `gguf.cpp`): magic `GGUF`, version 3, tensor count, key/value count, the
//! key/value pairs, the tensor infos (name, dims innermost first, ggml type, offset into the data
//! section), zero padding to the alignment (32), then each tensor's data padded to the
//! alignment. Tensor values are streamed, so a model of any size is written in constant memory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `general.alignment`'s default; every offset and the data section start are multiples of it.
pub const GGUF_ALIGNMENT: u64 = 32;

/// A metadata value, with the GGUF type it is written as.
#[derive(Debug, Clone, PartialEq)]
pub enum Kv {
    /// `GGUF_TYPE_UINT32`.
    U32(u32),
    /// `GGUF_TYPE_FLOAT32`.
    F32(f32),
    /// `GGUF_TYPE_BOOL`.
    Bool(bool),
    /// `GGUF_TYPE_STRING`.
    Str(String),
    /// `GGUF_TYPE_ARRAY` of `GGUF_TYPE_STRING`.
    StrArray(Vec<String>),
    /// `GGUF_TYPE_ARRAY` of `GGUF_TYPE_INT32`.
    I32Array(Vec<i32>),
}

// `enum gguf_type` values.
const UINT32: u32 = 4;
const INT32: u32 = 5;
const FLOAT32: u32 = 6;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

impl Kv {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let tag = |out: &mut dyn Write, t: u32| out.write_all(&t.to_le_bytes());
        match self {
            Kv::U32(v) => {
                tag(out, UINT32)?;
                out.write_all(&v.to_le_bytes())
            }
            Kv::F32(v) => {
                tag(out, FLOAT32)?;
                out.write_all(&v.to_le_bytes())
            }
            Kv::Bool(v) => {
                tag(out, BOOL)?;
                out.write_all(&[u8::from(*v)])
            }
            Kv::Str(s) => {
                tag(out, STRING)?;
                write_str(out, s)
            }
            Kv::StrArray(items) => {
                tag(out, ARRAY)?;
                tag(out, STRING)?;
                out.write_all(&(items.len() as u64).to_le_bytes())?;
                items.iter().try_for_each(|s| write_str(out, s))
            }
            Kv::I32Array(items) => {
                tag(out, ARRAY)?;
                tag(out, INT32)?;
                out.write_all(&(items.len() as u64).to_le_bytes())?;
                items
                    .iter()
                    .try_for_each(|v| out.write_all(&v.to_le_bytes()))
            }
        }
    }
}

fn write_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

/// How a tensor's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// `GGML_TYPE_F32`.
    F32,
    /// `GGML_TYPE_F16`, rounded to nearest, ties to even.
    F16,
}

impl TensorType {
    fn ggml_type(self) -> u32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
        }
    }

    fn size(self) -> u64 {
        match self {
            TensorType::F32 => 4,
            TensorType::F16 => 2,
        }
    }
}

/// A tensor's name, shape and storage type; its values come from the writer's `fill`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// ggml's `ne`: innermost dimension first.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: TensorType,
}

impl TensorInfo {
    /// An f32 tensor.
    pub fn f32(name: impl Into<String>, dims: Vec<u64>) -> Self {
        TensorInfo {
            name: name.into(),
            dims,
            ty: TensorType::F32,
        }
    }

    /// Number of values.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    fn n_bytes(&self) -> u64 {
        self.n_elements() * self.ty.size()
    }
}

/// Rounds `n` up to [`GGUF_ALIGNMENT`].
pub fn align(n: u64) -> u64 {
    n.div_ceil(GGUF_ALIGNMENT) * GGUF_ALIGNMENT
}

/// The size of the file [`write_gguf`] writes for these pairs and tensors.
pub fn file_size(kvs: &[(&str, Kv)], tensors: &[TensorInfo]) -> u64 {
    let mut header = CountingWriter {
        inner: io::sink(),
        written: 0,
    };
    // Writing to a sink cannot fail.
    let _ = write_header(&mut header, kvs, tensors);
    align(header.written) + tensors.iter().map(|t| align(t.n_bytes())).sum::<u64>()
}

/// Writes a GGUF v3 file to `path`. `fill(i, sink)` is called once per tensor, in order, and
/// must pass exactly `tensors[i].n_elements()` values to `sink` (innermost dimension fastest);
/// a different count is an error. The file is synced before returning.
pub fn write_gguf(
    path: &Path,
    kvs: &[(&str, Kv)],
    tensors: &[TensorInfo],
    mut fill: impl FnMut(usize, &mut dyn FnMut(f32)),
) -> io::Result<()> {
    let mut out = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, File::create(path)?),
        written: 0,
    };
    write_header(&mut out, kvs, tensors)?;
    pad(&mut out)?;
    let data_start = out.written;

    // Values are encoded into a buffer flushed every CHUNK bytes; the sink cannot return an
    // error, so the first one is kept and reported after `fill` returns.
    const CHUNK: usize = 256 * 1024;
    let mut buf = Vec::with_capacity(CHUNK + 4);
    let mut offset = 0;
    for (index, t) in tensors.iter().enumerate() {
        let mut count = 0u64;
        let mut failed: Option<io::Error> = None;
        fill(index, &mut |v: f32| {
            count += 1;
            match t.ty {
                TensorType::F32 => buf.extend_from_slice(&v.to_le_bytes()),
                TensorType::F16 => buf.extend_from_slice(&f32_to_f16_bits(v).to_le_bytes()),
            }
            if buf.len() >= CHUNK && failed.is_none() {
                if let Err(e) = out.write_all(&buf) {
                    failed = Some(e);
                }
                buf.clear();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        out.write_all(&buf)?;
        buf.clear();
        if count != t.n_elements() {
            return Err(io::Error::other(format!(
                "tensor {}: {count} values for dims {:?}",
                t.name, t.dims
            )));
        }
        pad(&mut out)?;
        offset += align(t.n_bytes());
        if out.written - data_start != offset {
            return Err(io::Error::other(format!(
                "internal layout error after tensor {}",
                t.name
            )));
        }
    }
    out.inner.flush()?;
    out.inner
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

fn write_header(
    out: &mut impl Write,
    kvs: &[(&str, Kv)],
    tensors: &[TensorInfo],
) -> io::Result<()> {
    out.write_all(b"GGUF")?;
    out.write_all(&3u32.to_le_bytes())?;
    out.write_all(&(tensors.len() as u64).to_le_bytes())?;
    out.write_all(&(kvs.len() as u64).to_le_bytes())?;
    for (key, value) in kvs {
        write_str(out, key)?;
        value.write(out)?;
    }
    let mut offset = 0u64;
    for t in tensors {
        write_str(out, &t.name)?;
        out.write_all(&(t.dims.len() as u32).to_le_bytes())?;
        for d in &t.dims {
            out.write_all(&d.to_le_bytes())?;
        }
        out.write_all(&t.ty.ggml_type().to_le_bytes())?;
        out.write_all(&offset.to_le_bytes())?;
        offset += align(t.n_bytes());
    }
    Ok(())
}

struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(out: &mut CountingWriter<W>) -> io::Result<()> {
    let n = align(out.written) - out.written;
    out.write_all(&[0u8; GGUF_ALIGNMENT as usize][..n as usize])
}

/// FNV-1a, 64 bit: a stable hash for cache file names (std's hasher may change between
/// Rust releases).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The path of `<cache dir>/<name>`, written by `write` only if no complete file is there yet
/// (`size`: the expected length, when known; otherwise any existing file counts). The cache dir
/// is `$LLAMA_TEST_MODEL_DIR`, else `<temp dir>/llama-prebuilt-test-models/`. Files are written
/// under a temporary name unique per process and call, then renamed into place, so concurrent
/// processes never see a partial file.
pub fn cached_file(
    name: &str,
    size: Option<u64>,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let dir = match std::env::var_os("LLAMA_TEST_MODEL_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::temp_dir().join("llama-prebuilt-test-models"),
    };
    fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    if fs::metadata(&path).is_ok_and(|m| m.is_file() && size.is_none_or(|s| m.len() == s)) {
        return Ok(path);
    }
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write(&tmp).and_then(|()| fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// IEEE 754 binary32 -> binary16, round to nearest, ties to even.
pub(crate) fn f32_to_f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity or NaN (keep NaN a NaN).
        return sign | 0x7c00 | if man != 0 { 0x0200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal in f16 (or zero): value = m * 2^(exp - 150), unit 2^-24.
        if e < -10 {
            return sign;
        }
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let mut h = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        if rem > half || (rem == half && h & 1 == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    let mut h = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
        h += 1; // may carry into the exponent, up to infinity: both correct
    }
    sign | h as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f32_to_f16_bits(0.0), 0x0000);
        assert_eq!(f32_to_f16_bits(-0.0), 0x8000);
        assert_eq!(f32_to_f16_bits(1.0), 0x3c00);
        assert_eq!(f32_to_f16_bits(0.5), 0x3800);
        assert_eq!(f32_to_f16_bits(-2.0), 0xc000);
        assert_eq!(f32_to_f16_bits(65504.0), 0x7bff);
        assert_eq!(f32_to_f16_bits(65520.0), 0x7c00); // rounds up to infinity
        assert_eq!(f32_to_f16_bits(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16_bits(f32::NAN) & 0x7e00, 0x7e00);
        assert_eq!(f32_to_f16_bits(2f32.powi(-24)), 0x0001); // smallest subnormal
        assert_eq!(f32_to_f16_bits(2f32.powi(-14)), 0x0400); // smallest normal
        assert_eq!(f32_to_f16_bits(2f32.powi(-26)), 0x0000); // below half the smallest: zero
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3c00); // tie -> even
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02); // tie -> even
        assert_eq!(f32_to_f16_bits(0.1), 0x2e66);
    }

    #[test]
    fn a_wrong_value_count_is_an_error_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let t = [TensorInfo::f32("w", vec![2, 3])];
        let err = write_gguf(&dir.path().join("x.gguf"), &[], &t, |_, sink| sink(1.0)).unwrap_err();
        assert_eq!(err.to_string(), "tensor w: 1 values for dims [2, 3]");
    }

    #[test]
    fn the_predicted_size_is_the_written_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let kvs = [
            ("a", Kv::Str("b".into())),
            ("n", Kv::I32Array(vec![1, 2, 3])),
        ];
        let t = [
            TensorInfo::f32("w", vec![3, 5]),
            TensorInfo {
                name: "h".into(),
                dims: vec![7],
                ty: TensorType::F16,
            },
        ];
        write_gguf(&path, &kvs, &t, |i, sink| {
            (0..t[i].n_elements()).for_each(|v| sink(v as f32))
        })
        .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), file_size(&kvs, &t));
    }
}
