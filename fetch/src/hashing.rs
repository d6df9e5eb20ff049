//! sha256 while bytes pass by, so a download is verified without reading it twice.
//!
//! Uses ring's assembly SHA-256: cargo builds a build script's dependencies without
//! optimisation, where a pure-Rust SHA-256 runs at ~30 MB/s and ring at >1 GB/s (measured in
//! BENCHMARKS.md). ring is in the tree anyway, for rustls.

use std::io::{self, Read, Write};
use std::path::Path;

/// What a finished copy or download produced: the digest and size of the bytes written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Hex sha256 of the bytes written.
    pub sha256: String,
    /// Number of bytes written.
    pub size: u64,
}

/// An incremental SHA-256.
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The lower-case hex digest.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finish().as_ref())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finish_hex(), self.written)
    }
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

/// sha256 (hex) and size of a file, read with a fixed buffer.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finish_hex(), total))
}

/// sha256 (hex) of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finish_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_bytes(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (inner, sha, n) = w.finish();
        assert_eq!(
            (inner.as_slice(), sha.as_str(), n),
            (&b"abc"[..], sha256_bytes(b"abc").as_str(), 3)
        );
    }
}
