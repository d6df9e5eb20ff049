//! `manifest.json` of a cache entry: what was extracted from which verified archive. Files on
//! disk that no longer match it mean the entry was corrupted (or edited) and must be rebuilt.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hashing::sha256_file;

/// Version of the manifest format; bump when its meaning changes.
pub const SCHEMA: u32 = 1;

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
    /// Where the expected digest came from (human-readable).
    pub digest_source: String,
    /// The same as a short label (`embedded`, `checksums-file`, `env`, `github-api`).
    #[serde(default)]
    pub digest_label: String,
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
    /// `file`, `dir` or `symlink`.
    pub kind: String,
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
    /// Returns the first discrepancy as a sentence.
    pub fn verify(&self, files_root: &Path) -> Result<(), String> {
        for f in &self.files {
            let p = files_root.join(&f.path);
            let meta = std::fs::symlink_metadata(&p)
                .map_err(|e| format!("{} is missing ({e})", f.path))?;
            match f.kind.as_str() {
                "dir" if !meta.is_dir() => {
                    return Err(format!("{} is no longer a directory", f.path))
                }
                "symlink" => {
                    if meta.file_type().is_symlink() {
                        let target =
                            std::fs::read_link(&p).map_err(|e| format!("{}: {e}", f.path))?;
                        let want = f.target.as_deref().unwrap_or("");
                        if target.to_string_lossy().replace('\\', "/") != want {
                            return Err(format!(
                                "symlink {} points to {} instead of {want}",
                                f.path,
                                target.display()
                            ));
                        }
                    } else if !cfg!(unix) && meta.is_file() {
                        // Where symlinks are not available they were extracted as copies.
                    } else {
                        return Err(format!("{} is no longer a symlink", f.path));
                    }
                }
                "file" => {
                    if !meta.is_file() {
                        return Err(format!("{} is no longer a regular file", f.path));
                    }
                    if meta.len() != f.size {
                        return Err(format!(
                            "{} has {} bytes, the manifest says {}",
                            f.path,
                            meta.len(),
                            f.size
                        ));
                    }
                    let (sha, _) = sha256_file(&p).map_err(|e| format!("{}: {e}", f.path))?;
                    if sha != f.sha256 {
                        return Err(format!(
                            "{} has sha256 {sha}, the manifest says {}",
                            f.path, f.sha256
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
