//! Small file and URL helpers shared by the download, install and headers steps. A leaf of the
//! module graph (only `error` and `hashing` below it), so any step can use them without
//! importing another step.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hashing::{Downloaded, HashingWriter, sha256_file};

/// `file:///some/dir` -> `/some/dir` (also `file:///C:/dir` -> `C:/dir`).
pub fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let rest = if bytes.len() > 3 && bytes[0] == b'/' && bytes[2] == b':' {
        &rest[1..]
    } else {
        rest
    };
    Some(PathBuf::from(rest))
}

/// `base/rel`, without the trailing separator `Path::join("")` would add.
pub(crate) fn join_rel(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// A relative path with '/' separators on every OS (as manifests store them).
pub(crate) fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Copies `from` to `to`, hashing on the way (the local-file twin of an HTTP download).
pub(crate) fn copy_hashing(from: &Path, to: &Path) -> Result<Downloaded> {
    let mut src = std::fs::File::open(from).map_err(|e| Error::io("open", from, e))?;
    let dst = std::fs::File::create(to).map_err(|e| Error::io("create", to, e))?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(256 * 1024, dst));
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf).map_err(|e| Error::io("read", from, e))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .map_err(|e| Error::io("write", to, e))?;
    }
    let (inner, sha256, size) = w.finish();
    let file = inner
        .into_inner()
        .map_err(|e| Error::io("write", to, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io("sync", to, e))?;
    Ok(Downloaded { sha256, size })
}

/// Computes a file's sha256; with `expected`, fails unless it matches.
pub fn verify_file(path: &Path, expected: Option<&str>) -> Result<(String, u64)> {
    let (sha, size) = sha256_file(path).map_err(|e| Error::io("read", path, e))?;
    if let Some(raw) = expected {
        let want = crate::checksums::normalize_sha256(raw).ok_or_else(|| Error::BadSha256 {
            given_by: "--sha256",
            value: raw.to_string(),
        })?;
        if want != sha {
            return Err(Error::FileMismatch {
                path: path.to_path_buf(),
                expected: want,
                actual: sha,
            });
        }
    }
    Ok((sha, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_become_paths() {
        assert_eq!(
            file_url_path("file:///srv/m"),
            Some(PathBuf::from("/srv/m"))
        );
        assert_eq!(file_url_path("file:///C:/m"), Some(PathBuf::from("C:/m")));
        assert_eq!(file_url_path("https://x/y"), None);
    }

    #[test]
    fn empty_relative_paths_add_no_separator() {
        assert_eq!(join_rel(Path::new("/a"), Path::new("")), Path::new("/a"));
        assert_eq!(join_rel(Path::new("/a"), Path::new("b")), Path::new("/a/b"));
        assert_eq!(slash_path(Path::new("x").join("y").as_path()), "x/y");
    }
}
