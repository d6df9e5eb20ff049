//! A tar.gz writer that puts entry names into the header verbatim.
//!
//! The `tar` crate's `set_path` refuses `..` and absolute paths, which is right for producers
//! but useless for testing an extractor's defences, so names and link targets are copied into
//! the header bytes directly. Everything else (fixed mtime, uid/gid 0) is chosen so the same
//! input always yields the same bytes, hence the same sha256.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

/// 2026-01-01T00:00:00Z: a fixed, plausible mtime for every entry.
const MTIME: u64 = 1_767_225_600;

pub(crate) struct TarGz<W: Write> {
    builder: tar::Builder<GzEncoder<W>>,
}

impl<W: Write> TarGz<W> {
    pub(crate) fn new(out: W, level: Compression) -> Self {
        TarGz {
            builder: tar::Builder::new(GzEncoder::new(out, level)),
        }
    }

    pub(crate) fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = raw_header(path, EntryType::Directory, 0, 0o755, "")?;
        self.builder.append(&h, io::empty())
    }

    pub(crate) fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.file_from(path, mode, data.len() as u64, data)
    }

    /// A regular file whose `size` bytes are streamed from `data`.
    pub(crate) fn file_from(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        data: impl Read,
    ) -> io::Result<()> {
        let h = raw_header(path, EntryType::Regular, size, mode, "")?;
        self.builder.append(&h, data)
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let h = raw_header(path, EntryType::Symlink, 0, 0o777, target)?;
        self.builder.append(&h, io::empty())
    }

    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let h = raw_header(path, EntryType::Link, 0, 0o644, target)?;
        self.builder.append(&h, io::empty())
    }

    /// Writes the end-of-archive blocks and the gzip trailer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()?.finish()
    }
}

/// A directory header, for callers that write the tar stream themselves.
pub(crate) fn dir_header(path: &str) -> Header {
    raw_header(path, EntryType::Directory, 0, 0o755, "").expect("short name")
}

/// A regular-file header announcing `size` bytes of data.
pub(crate) fn file_header(path: &str, mode: u32, size: u64) -> Header {
    raw_header(path, EntryType::Regular, size, mode, "").expect("short name")
}

/// A GNU header with `name` and `link` copied byte for byte (each at most 100 bytes).
fn raw_header(name: &str, kind: EntryType, size: u64, mode: u32, link: &str) -> io::Result<Header> {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    let old = h.as_old_mut();
    copy_field(&mut old.name, name)?;
    copy_field(&mut old.linkname, link)?;
    h.set_cksum();
    Ok(h)
}

fn copy_field(field: &mut [u8; 100], value: &str) -> io::Result<()> {
    let bytes = value.as_bytes();
    if bytes.len() > field.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar name longer than 100 bytes: {value}"),
        ));
    }
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}
