//! The archive file as the decoders read it, with its own I/O errors marked, so that a failing
//! disk ([`ExtractError::Io`]) is told apart from bad data ([`ExtractError::Corrupt`]). Shared
//! by the zip and tar.gz readers, which import it from here rather than from the parent module.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::ExtractError;

/// Wraps the archive file so that errors of the file itself can be told apart from
/// errors the decompressor or archive parser report about the data.
pub(crate) struct Source<R>(pub(crate) R);

/// Marker for an I/O error of the underlying archive file.
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        e
    } else {
        io::Error::new(e.kind(), SourceError(e))
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(mark)
    }
}

impl<R: Seek> Seek for Source<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos).map_err(mark)
    }
}

/// Classifies an error met while reading the archive's data: a failure of the archive
/// file itself is [`ExtractError::Io`], anything the decoders or parsers report is
/// [`ExtractError::Corrupt`], described with `context`.
pub(crate) fn read_failure(archive: &Path, err: io::Error, context: &str) -> ExtractError {
    if err.get_ref().is_some_and(|inner| inner.is::<SourceError>()) {
        let kind = err.kind();
        let source = match err
            .into_inner()
            .map(|inner| inner.downcast::<SourceError>())
        {
            Some(Ok(marked)) => marked.0,
            _ => io::Error::from(kind),
        };
        return ExtractError::Io {
            path: archive.to_path_buf(),
            source,
        };
    }
    ExtractError::Corrupt {
        detail: format!("{context}: {err}"),
    }
}
