//! A small zip writer with deterministic output (fixed timestamps).

use std::io::{self, Cursor, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

pub(crate) struct Zip<W: Write + Seek> {
    writer: ZipWriter<W>,
}

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(mode)
}

impl<W: Write + Seek> Zip<W> {
    pub(crate) fn new(out: W) -> Self {
        Zip {
            writer: ZipWriter::new(out),
        }
    }

    /// A file entry; the name is stored as given (the zip crate does not sanitise it, which
    /// the zip-slip helpers rely on).
    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.writer
            .start_file(name, options(mode))
            .map_err(io::Error::other)?;
        self.writer.write_all(data)
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.writer
            .add_symlink(name, target, options(0o777))
            .map_err(io::Error::other)
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        self.writer.finish().map_err(io::Error::other)
    }
}

/// Builds a zip in memory from `(name, mode, contents)`.
pub(crate) fn zip_bytes(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut z = Zip::new(Cursor::new(Vec::new()));
    for (name, mode, data) in entries {
        z.file(name, *mode, data).expect("writing a zip to memory");
    }
    z.finish().expect("writing a zip to memory").into_inner()
}
