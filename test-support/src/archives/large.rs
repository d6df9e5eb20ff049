//! A multi-GiB release-shaped tar.gz written straight to disk, for peak-memory benchmarks.
//!
//! The bulk is pseudo-random (incompressible), gzip runs at level 0 (stored blocks), so the
//! file is about the requested size and costs little CPU; the digest is computed while
//! writing, so the caller needs no second read.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::Compression;
use sha2::{Digest, Sha256};

use super::release::{dummy_contents, tag_number};
use super::tarball::TarGz;
use crate::rng::SplitMix64;

/// Digest and size of a written file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Writes `llama-<tag>/` with LICENSE, the libllama symlink chain (small dummy library) and a
/// `llama-server` tool of ~`approx_bytes` random bytes, so the whole `.tar.gz` is about
/// `approx_bytes` long. Memory use is a few buffers, whatever the size.
pub fn write_large_tar_gz(path: &Path, tag: &str, approx_bytes: u64) -> io::Result<FileDigest> {
    let out = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, File::create(path)?),
        hasher: Sha256::new(),
        written: 0,
    };
    let top = format!("llama-{tag}");
    let real = format!("libllama.so.0.0.{}", tag_number(tag));
    let mut t = TarGz::new(out, Compression::none());
    t.dir(&format!("{top}/"))?;
    t.file(
        &format!("{top}/LICENSE"),
        0o644,
        &dummy_contents(tag, "LICENSE"),
    )?;
    t.file(&format!("{top}/{real}"), 0o755, &dummy_contents(tag, &real))?;
    t.symlink(&format!("{top}/libllama.so.0"), &real)?;
    t.symlink(&format!("{top}/libllama.so"), "libllama.so.0")?;
    // Headers, padding and gzip framing add a few KiB; not worth subtracting.
    let bulk = approx_bytes.saturating_sub(8 * 1024);
    let random = Read::take(SplitMix64::new(0x9E37_79B9_7F4A_7C15 ^ approx_bytes), bulk);
    t.file_from(&format!("{top}/llama-server"), 0o755, bulk, random)?;
    let mut out = t.finish()?;
    out.inner.flush()?;
    Ok(FileDigest {
        sha256: hex::encode(out.hasher.finalize()),
        size: out.written,
    })
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
