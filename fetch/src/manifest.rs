//! `manifest.json` of a cache entry: what was extracted from which verified archive. Files on
//! disk that no longer match it mean the entry was corrupted (or edited) and must be rebuilt.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::DigestSource;
use crate::hashing::sha256_file;

/// Version of the manifest format; bump when its meaning changes.
///
/// 2: `digest_source` is the typed [`DigestSource`] (1 stored its display text and a label).
/// A manifest of another schema reads as `None`, like any unreadable one: the entry counts as
/// absent and the next `ensure` rebuilds it (from the kept, verified archive when present).
pub const SCHEMA: u32 = 2;

/// The record written beside an extracted tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub schema: u32,
    /// Release tag.
    pub tag: String,
    /// Asset file name.
    pub asset: String,
    /// sha256 of the archive the tree came from.
    pub sha256: String,
    /// Archive size in bytes.
    pub size: u64,
    /// Where the expected digest came from.
    pub digest_source: DigestSource,
    /// The library directory, relative to the entry's `files/` directory ('/'-separated).
    pub lib_dir: String,
    /// What wrote the entry.
    pub created_by: String,
    /// Every extracted path.
    pub files: Vec<ManifestFile>,
}

/// One extracted path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to `files/`, '/'-separated.
    pub path: String,
    /// What the path is.
    pub kind: FileKind,
    /// Size of a file, 0 otherwise.
    #[serde(default)]
    pub size: u64,
    /// sha256 of a file, empty otherwise.
    #[serde(default)]
    pub sha256: String,
    /// Target of a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The kind of an extracted path (`file`, `dir` or `symlink` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file (hashed).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (its target recorded).
    Symlink,
}

/// The first way the files on disk differ from their manifest.
// Field names say what they hold (path = '/'-separated, relative to `files/`).
#[allow(missing_docs)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Mismatch {
    /// The path is gone (or cannot be inspected).
    Missing {
        path: String,
        source: std::io::Error,
    },
    /// It was a directory.
    NotADir { path: String },
    /// It was a symlink.
    NotASymlink { path: String },
    /// It was a regular file.
    NotAFile { path: String },
    /// A symlink points elsewhere.
    SymlinkTarget {
        path: String,
        actual: PathBuf,
        expected: String,
    },
    /// A file changed size.
    Size {
        path: String,
        actual: u64,
        expected: u64,
    },
    /// A file changed content.
    Sha256 {
        path: String,
        actual: String,
        expected: String,
    },
    /// A path could not be read.
    Unreadable {
        path: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Missing { path, source } => write!(f, "{path} is missing ({source})"),
            Mismatch::NotADir { path } => write!(f, "{path} is no longer a directory"),
            Mismatch::NotASymlink { path } => write!(f, "{path} is no longer a symlink"),
            Mismatch::NotAFile { path } => write!(f, "{path} is no longer a regular file"),
            Mismatch::SymlinkTarget {
                path,
                actual,
                expected,
            } => write!(
                f,
                "symlink {path} points to {} instead of {expected}",
                actual.display()
            ),
            Mismatch::Size {
                path,
                actual,
                expected,
            } => write!(f, "{path} has {actual} bytes, the manifest says {expected}"),
            Mismatch::Sha256 {
                path,
                actual,
                expected,
            } => write!(
                f,
                "{path} has sha256 {actual}, the manifest says {expected}"
            ),
            Mismatch::Unreadable { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for Mismatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Mismatch::Missing { source, .. } | Mismatch::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Manifest {
    /// Reads `manifest.json`; `None` if absent or unreadable (an entry without a valid
    /// manifest is not ours or not finished, and is never trusted).
    pub fn read(path: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str::<Manifest>(&text)
            .ok()
            .filter(|m| m.schema == SCHEMA)
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises")
    }

    /// Total bytes of the extracted files.
    pub fn extracted_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks the files under `files_root` against the manifest, hashing every file.
    /// Returns the first discrepancy.
    pub fn verify(&self, files_root: &Path) -> Result<(), Mismatch> {
        for f in &self.files {
            let path = || f.path.clone();
            let p = files_root.join(&f.path);
            let meta = std::fs::symlink_metadata(&p).map_err(|source| Mismatch::Missing {
                path: path(),
                source,
            })?;
            match f.kind {
                FileKind::Dir if !meta.is_dir() => return Err(Mismatch::NotADir { path: path() }),
                FileKind::Dir => {}
                FileKind::Symlink => {
                    if meta.file_type().is_symlink() {
                        let target =
                            std::fs::read_link(&p).map_err(|source| Mismatch::Unreadable {
                                path: path(),
                                source,
                            })?;
                        let want = f.target.as_deref().unwrap_or("");
                        if target.to_string_lossy().replace('\\', "/") != want {
                            return Err(Mismatch::SymlinkTarget {
                                path: path(),
                                actual: target,
                                expected: want.to_string(),
                            });
                        }
                    } else if !cfg!(unix) && meta.is_file() {
                        // Where symlinks are not available they were extracted as copies.
                    } else {
                        return Err(Mismatch::NotASymlink { path: path() });
                    }
                }
                FileKind::File => {
                    if !meta.is_file() {
                        return Err(Mismatch::NotAFile { path: path() });
                    }
                    if meta.len() != f.size {
                        return Err(Mismatch::Size {
                            path: path(),
                            actual: meta.len(),
                            expected: f.size,
                        });
                    }
                    let (sha, _) = sha256_file(&p).map_err(|source| Mismatch::Unreadable {
                        path: path(),
                        source,
                    })?;
                    if sha != f.sha256 {
                        return Err(Mismatch::Sha256 {
                            path: path(),
                            actual: sha,
                            expected: f.sha256.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
