//! `manifest.json` of a cache entry: what was extracted from which verified archive. Files on
//! disk that no longer match it mean the entry was corrupted (or edited) and must be rebuilt.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::digest::DigestSource;
use crate::hashing::sha256_file;

/// Version of the manifest format; bump when its meaning changes.
///
/// 2: `digest_source` is the typed [`DigestSource`] (1 stored its display text and a label).
/// A manifest of another schema reads as `None`, like any unreadable one: the entry counts as
/// absent and the next `ensure` rebuilds it (from the kept, verified archive when present).
pub const SCHEMA: u32 = 2;

/// The record written beside an extracted tree.
///
/// Its JSON form is written and read by hand ([`Manifest::to_json`], [`Manifest::read`]), not
/// derived: this crate is a build dependency of llama-prebuilt-sys, and serde's derive macros
/// would put `serde_derive` and a second `syn` into every cold build downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path relative to `files/`, '/'-separated.
    pub path: String,
    /// What the path is.
    pub kind: FileKind,
    /// Size of a file, 0 otherwise.
    pub size: u64,
    /// sha256 of a file, empty otherwise.
    pub sha256: String,
    /// Target of a symlink.
    pub target: Option<String>,
}

/// The kind of an extracted path (`file`, `dir` or `symlink` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (hashed).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (its target recorded).
    Symlink,
}

impl ManifestFile {
    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("path".into(), self.path.clone().into());
        o.insert("kind".into(), self.kind.label().into());
        o.insert("size".into(), self.size.into());
        o.insert("sha256".into(), self.sha256.clone().into());
        if let Some(t) = &self.target {
            o.insert("target".into(), t.clone().into());
        }
        Value::Object(o)
    }

    /// `size`, `sha256` and `target` may be absent (directories, symlinks).
    fn from_json(v: &Value) -> Option<ManifestFile> {
        let o = v.as_object()?;
        Some(ManifestFile {
            path: string(o, "path")?,
            kind: FileKind::from_label(o.get("kind")?.as_str()?)?,
            size: match o.get("size") {
                Some(n) => n.as_u64()?,
                None => 0,
            },
            sha256: match o.get("sha256") {
                Some(s) => s.as_str()?.to_string(),
                None => String::new(),
            },
            target: match o.get("target") {
                Some(t) => Some(t.as_str()?.to_string()),
                None => None,
            },
        })
    }
}

impl FileKind {
    /// The JSON name: `file`, `dir` or `symlink`.
    pub fn label(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
        }
    }

    fn from_label(label: &str) -> Option<FileKind> {
        match label {
            "file" => Some(FileKind::File),
            "dir" => Some(FileKind::Dir),
            "symlink" => Some(FileKind::Symlink),
            _ => None,
        }
    }
}

/// A string field of a JSON object.
fn string(o: &Map<String, Value>, key: &str) -> Option<String> {
    o.get(key)?.as_str().map(str::to_string)
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
        Manifest::parse(&text)
    }

    /// Parses the JSON form; `None` unless it is a complete manifest of this [`SCHEMA`].
    pub fn parse(text: &str) -> Option<Manifest> {
        let v: Value = serde_json::from_str(text).ok()?;
        let o = v.as_object()?;
        let schema = u32::try_from(o.get("schema")?.as_u64()?).ok()?;
        if schema != SCHEMA {
            return None;
        }
        Some(Manifest {
            schema,
            tag: string(o, "tag")?,
            asset: string(o, "asset")?,
            sha256: string(o, "sha256")?,
            size: o.get("size")?.as_u64()?,
            digest_source: DigestSource::from_json(o.get("digest_source")?)?,
            lib_dir: string(o, "lib_dir")?,
            created_by: string(o, "created_by")?,
            files: o
                .get("files")?
                .as_array()?
                .iter()
                .map(ManifestFile::from_json)
                .collect::<Option<Vec<_>>>()?,
        })
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        let v = json!({
            "schema": self.schema,
            "tag": self.tag,
            "asset": self.asset,
            "sha256": self.sha256,
            "size": self.size,
            "digest_source": self.digest_source.to_json(),
            "lib_dir": self.lib_dir,
            "created_by": self.created_by,
            "files": self.files.iter().map(ManifestFile::to_json).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&v).expect("a JSON value always serialises")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            tag: "b10199".into(),
            asset: "llama-b10199-bin-ubuntu-x64.tar.gz".into(),
            sha256: "a".repeat(64),
            size: 42,
            digest_source: DigestSource::ChecksumsFile("/x/sums.toml".into()),
            lib_dir: "llama-b10199".into(),
            created_by: "test".into(),
            files: vec![
                ManifestFile {
                    path: "llama-b10199".into(),
                    kind: FileKind::Dir,
                    size: 0,
                    sha256: String::new(),
                    target: None,
                },
                ManifestFile {
                    path: "llama-b10199/libllama.so.0.0.10199".into(),
                    kind: FileKind::File,
                    size: 7,
                    sha256: "b".repeat(64),
                    target: None,
                },
                ManifestFile {
                    path: "llama-b10199/libllama.so".into(),
                    kind: FileKind::Symlink,
                    size: 0,
                    sha256: String::new(),
                    target: Some("libllama.so.0.0.10199".into()),
                },
            ],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_json()), Some(m));
    }

    #[test]
    fn optional_fields_may_be_absent_and_other_schemas_or_shapes_are_rejected() {
        let minimal = r#"{"schema":2,"tag":"b1","asset":"a.zip","sha256":"s","size":1,
            "digest_source":{"kind":"embedded"},"lib_dir":"","created_by":"x",
            "files":[{"path":"d","kind":"dir"}]}"#;
        let m = Manifest::parse(minimal).unwrap();
        assert_eq!(m.files[0].size, 0);
        assert_eq!(m.files[0].target, None);
        assert_eq!(m.digest_source, DigestSource::Embedded);
        // Schema 1 stored the digest source as text: it reads as no manifest (rebuilt).
        let old = minimal
            .replace(r#""schema":2"#, r#""schema":1"#)
            .replace(r#"{"kind":"embedded"}"#, r#""embedded checksums.toml""#);
        assert_eq!(Manifest::parse(&old), None);
        for broken in [
            minimal.replace(r#""kind":"dir""#, r#""kind":"fifo""#),
            minimal.replace(r#""size":1,"#, ""),
            minimal.replace(r#""tag":"b1""#, r#""tag":1"#),
            "not json".to_string(),
        ] {
            assert_eq!(Manifest::parse(&broken), None, "{broken}");
        }
    }
}
