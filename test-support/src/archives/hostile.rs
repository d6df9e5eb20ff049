//! Archives an extractor must refuse or cap: path traversal, absolute paths, escaping links,
//! entry-count and size bombs. Names are written verbatim (see `tarball`), so anything a
//! malicious release could contain can be produced.

use std::io::Cursor;

use flate2::Compression;

use super::tarball::{self, TarGz};
use super::zeros::gzip_prefix_then_zeros;
use super::zipfile::Zip;

/// Top directory of the hostile archives that need one.
const TOP: &str = "llama-b1";

/// One tar entry, written exactly as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawEntry {
    /// A directory entry.
    Dir {
        /// Entry name, unchecked (may be absolute or contain `..`).
        path: String,
    },
    /// A regular file.
    File {
        /// Entry name, unchecked.
        path: String,
        /// Unix permission bits, e.g. `0o755`.
        mode: u32,
        /// The file's contents.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Entry name, unchecked.
        path: String,
        /// Link target, unchecked (may point outside the archive).
        target: String,
    },
    /// A hard link to an earlier entry.
    Hardlink {
        /// Entry name, unchecked.
        path: String,
        /// Name of the entry linked to, unchecked.
        target: String,
    },
}

/// A tar.gz of exactly these entries, in order (e.g. a link to `/tmp` followed by a file
/// written "through" it).
pub fn tar_gz_raw(entries: &[RawEntry]) -> Vec<u8> {
    let mut t = TarGz::new(Vec::new(), Compression::default());
    for e in entries {
        match e {
            RawEntry::Dir { path } => t.dir(path),
            RawEntry::File { path, mode, data } => t.file(path, *mode, data),
            RawEntry::Symlink { path, target } => t.symlink(path, target),
            RawEntry::Hardlink { path, target } => t.hardlink(path, target),
        }
        .expect("in-memory tar (names must be at most 100 bytes)");
    }
    t.finish().expect("in-memory tar")
}

/// One regular file at `path`, verbatim: `../evil`, `/etc/evil`, `llama-b1/../../evil`.
pub fn tar_gz_with_entry_path(path: &str) -> Vec<u8> {
    tar_gz_raw(&[RawEntry::File {
        path: path.to_owned(),
        mode: 0o644,
        data: b"evil\n".to_vec(),
    }])
}

/// `llama-b1/` with a regular `libllama.so` and a symlink `name -> target`
/// (e.g. `llama-b1/libggml.so` -> `../../outside` or `/etc/passwd`).
pub fn tar_gz_with_symlink(name: &str, target: &str) -> Vec<u8> {
    tar_gz_raw(&[
        RawEntry::Dir {
            path: format!("{TOP}/"),
        },
        RawEntry::File {
            path: format!("{TOP}/libllama.so"),
            mode: 0o755,
            data: b"dummy libllama\n".to_vec(),
        },
        RawEntry::Symlink {
            path: name.to_owned(),
            target: target.to_owned(),
        },
    ])
}

/// A zip with one file entry named exactly `path` (zip-slip `../evil`, absolute `/evil`).
pub fn zip_with_entry_path(path: &str) -> Vec<u8> {
    let mut z = Zip::new(Cursor::new(Vec::new()));
    z.file(path, 0o644, b"evil\n").expect("in-memory zip");
    z.finish().expect("in-memory zip").into_inner()
}

/// A zip with `build/bin/libllama.so` and a unix symlink entry `name -> target`.
pub fn zip_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut z = Zip::new(Cursor::new(Vec::new()));
    z.file("build/bin/libllama.so", 0o755, b"dummy libllama\n")
        .expect("in-memory zip");
    z.symlink(name, target).expect("in-memory zip");
    z.finish().expect("in-memory zip").into_inner()
}

/// `llama-b1/` plus `n` empty files, for entry-count caps. Stored without compression (512
/// bytes per entry) because that is fastest to make and to read, even in debug builds.
pub fn tar_gz_many_entries(n: usize) -> Vec<u8> {
    let mut t = TarGz::new(Vec::new(), Compression::none());
    t.dir(&format!("{TOP}/")).expect("in-memory tar");
    for i in 0..n {
        t.file(&format!("{TOP}/f{i:08}"), 0o644, b"")
            .expect("in-memory tar");
    }
    t.finish().expect("in-memory tar")
}

/// `llama-b1/` plus `llama-b1/big.bin` of `bytes` zeros, for size caps. The zeros are
/// encoded directly (see `zeros`), so even 1 GiB takes milliseconds and ~7 MiB; inflating it
/// is the reader's cost.
pub fn tar_gz_large_entry(bytes: u64) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(1024);
    prefix.extend_from_slice(tarball::dir_header(&format!("{TOP}/")).as_bytes());
    let file = tarball::file_header(&format!("{TOP}/big.bin"), 0o644, bytes);
    prefix.extend_from_slice(file.as_bytes());
    // The entry's data, its padding to a 512-byte block, and the two end-of-archive blocks.
    let padding = (512 - bytes % 512) % 512;
    gzip_prefix_then_zeros(&prefix, bytes + padding + 1024)
}
