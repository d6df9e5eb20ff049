//! Step three: the extracted tree in the cache. A verified archive is unpacked into `.tmp/`,
//! its library directory located, a manifest of every file written beside it, and the whole
//! published with one rename. The same manifest later tells a valid entry (a cache hit) from
//! a corrupted one (rebuilt, and reported as repaired).

use std::path::{Path, PathBuf};

use crate::asset::{self, Platform};
use crate::cache::{Cache, TempPath};
use crate::config::Config;
use crate::digest::{DigestSource, Expected};
use crate::error::{Error, Result};
use crate::extract::{self, ArchiveKind, EntryKind, Limits};
use crate::files::{join_rel, slash_path};
use crate::libdir;
use crate::manifest::{FileKind, Manifest, ManifestFile, SCHEMA};
use crate::progress::{Event, Progress};
use crate::trust::TrustStore;

/// A verified, extracted asset in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Release tag.
    pub tag: String,
    /// Asset file name.
    pub asset: String,
    /// Where it was (or would be) downloaded from.
    pub url: String,
    /// sha256 of the archive.
    pub sha256: String,
    /// Where the expected digest came from (`label()` for the short form).
    pub digest_source: DigestSource,
    /// The cache entry (`manifest.json` + `files/`).
    pub entry_dir: PathBuf,
    /// The directory holding libllama and the ggml libraries.
    pub lib_dir: PathBuf,
    /// Whether bytes were transferred in this call (false for a cache hit or re-extraction).
    pub downloaded: bool,
    /// Set when a corrupted entry was rebuilt; says what was wrong.
    pub repaired: Option<Repair>,
    /// For `cuda-<ver>` variants, the CUDA runtime archive's entry (`cudart-llama-…`): its
    /// `lib_dir` holds the runtime libraries, which belong next to `lib_dir`'s when staged.
    pub runtime: Option<Box<Installed>>,
}

/// Why [`Installed::repaired`] is set: what was wrong in the cache. `Display` says it in words
/// (the build script's warning and the CLI's `repaired` field print it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repair {
    /// The extracted entry no longer matched its manifest; says which file and how.
    Entry(String),
    /// The archive kept in the cache (at this path) no longer matched its digest.
    KeptArchive(PathBuf),
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::Entry(reason) => f.write_str(reason),
            Repair::KeptArchive(path) => write!(
                f,
                "kept archive {} did not match its digest",
                path.display()
            ),
        }
    }
}

/// What the cache holds for one asset.
pub(crate) enum EntryState {
    /// A verified entry, built from the bytes trusted now.
    Valid(Box<Installed>),
    /// An entry that must be rebuilt, and why.
    Corrupt(String),
    /// No entry (or one without a readable manifest of this schema).
    Absent,
}

/// Borrows what installing needs from the fetcher.
pub(crate) struct Installer<'a> {
    pub config: &'a Config,
    pub trust: &'a TrustStore,
    pub cache: &'a Cache,
    pub progress: &'a dyn Progress,
    pub limits: &'a Limits,
}

impl Installer<'_> {
    /// Checks the entry of `asset`: its manifest against the digest trusted now, and its files
    /// against the manifest. Reports a hit.
    pub fn existing(&self, tag: &str, asset: &str) -> Result<EntryState> {
        let Some(m) = self.cache.manifest(tag, asset) else {
            return Ok(EntryState::Absent);
        };
        // LLAMA_PREBUILT_SHA256 is the main archive's digest, never a runtime archive's.
        let trusted = if asset::is_runtime_asset(asset) {
            self.trust.recorded(tag, asset)
        } else {
            self.trust.local(tag, asset)?
        };
        if let Some(exp) = trusted
            && exp.sha256 != m.sha256
        {
            // Cached from other bytes than the ones now trusted: rebuild from trusted bytes.
            return Ok(EntryState::Corrupt(format!(
                "cached from an archive with sha256 {}, but {} now says {}",
                m.sha256, exp.source, exp.sha256
            )));
        }
        let dir = self.cache.entry_dir(tag, asset);
        if let Err(mismatch) = m.verify(&dir.join("files")) {
            return Ok(EntryState::Corrupt(mismatch.to_string()));
        }
        self.progress.event(&Event::CacheHit {
            asset: asset.to_string(),
            dir: dir.display().to_string(),
        });
        Ok(EntryState::Valid(Box::new(Installed {
            tag: tag.to_string(),
            asset: asset.to_string(),
            url: self.config.asset_url(tag, asset),
            sha256: m.sha256,
            digest_source: m.digest_source,
            lib_dir: join_rel(&dir.join("files"), Path::new(&m.lib_dir)),
            entry_dir: dir,
            downloaded: false,
            repaired: None,
            runtime: None,
        })))
    }

    /// Extracts the verified `archive`, writes its manifest and publishes the entry. Returns
    /// the entry directory and the library directory in it.
    pub fn unpack(
        &self,
        tag: &str,
        platform: &Platform,
        asset: &str,
        archive: &Path,
        expected: &Expected,
    ) -> Result<(PathBuf, PathBuf)> {
        self.progress.event(&Event::Extracting {
            asset: asset.to_string(),
        });
        let work = self.cache.temp_path(asset, "x");
        let (manifest, lib_rel) = self.extract(tag, platform, asset, archive, expected, &work)?;
        let manifest_path = work.path().join("manifest.json");
        std::fs::write(&manifest_path, manifest.to_json())
            .map_err(|e| Error::io("write", &manifest_path, e))?;
        let entry_dir = self.cache.entry_dir(tag, asset);
        self.cache.publish(work, &entry_dir, asset)?;
        self.progress.event(&Event::Installed {
            asset: asset.to_string(),
            dir: entry_dir.display().to_string(),
        });
        let lib_dir = join_rel(&entry_dir.join("files"), &lib_rel);
        Ok((entry_dir, lib_dir))
    }

    fn extract(
        &self,
        tag: &str,
        platform: &Platform,
        asset: &str,
        archive: &Path,
        expected: &Expected,
        work: &TempPath,
    ) -> Result<(Manifest, PathBuf)> {
        let files = work.path().join("files");
        std::fs::create_dir_all(&files).map_err(|e| Error::io("create", &files, e))?;
        let kind = ArchiveKind::from_name(asset).ok_or_else(|| Error::Extract {
            asset: asset.to_string(),
            source: extract::ExtractError::Corrupt {
                detail: "unknown archive extension".into(),
            },
        })?;
        let entries = extract::extract(archive, kind, &files, self.limits).map_err(|source| {
            Error::Extract {
                asset: asset.to_string(),
                source,
            }
        })?;
        let lib_dir = if asset::is_runtime_asset(asset) {
            runtime_lib_dir(&files, platform.lib_os(), asset)?
        } else {
            libdir::locate(&files, platform.lib_os())
                .map_err(|source| Error::Locate {
                    asset: asset.to_string(),
                    source,
                })?
                .dir
        };
        let lib_rel = lib_dir
            .strip_prefix(&files)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let size = std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
        let manifest = Manifest {
            schema: SCHEMA,
            tag: tag.to_string(),
            asset: asset.to_string(),
            sha256: expected.sha256.clone(),
            size,
            digest_source: expected.source.clone(),
            lib_dir: slash_path(&lib_rel),
            created_by: concat!("llama-prebuilt-fetch ", env!("CARGO_PKG_VERSION")).to_string(),
            files: entries
                .iter()
                .map(|e| {
                    let (kind, target) = match &e.kind {
                        EntryKind::File { .. } => (FileKind::File, None),
                        EntryKind::Dir => (FileKind::Dir, None),
                        EntryKind::Symlink { target } => {
                            (FileKind::Symlink, Some(slash_path(target)))
                        }
                    };
                    ManifestFile {
                        path: slash_path(&e.path),
                        kind,
                        size: e.size,
                        sha256: e.sha256.clone(),
                        target,
                    }
                })
                .collect(),
        };
        Ok((manifest, lib_rel))
    }
}

/// The directory of a runtime archive (no libllama in it) that holds its shared libraries: the
/// shallowest one, breadth first.
fn runtime_lib_dir(files: &Path, os: libdir::LibOs, asset: &str) -> Result<PathBuf> {
    let mut level = vec![files.to_path_buf()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for dir in &level {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| Error::io("list", dir, e))?
                .flatten()
                .collect();
            entries.sort_by_key(|e| e.file_name());
            if entries
                .iter()
                .any(|e| crate::linking::is_shared_library(&e.file_name().to_string_lossy(), os))
            {
                return Ok(dir.clone());
            }
            next.extend(
                entries
                    .iter()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        level = next;
    }
    let mut top_level: Vec<String> = std::fs::read_dir(files)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top_level.sort();
    Err(Error::RuntimeEmpty {
        asset: asset.to_string(),
        top_level,
    })
}
