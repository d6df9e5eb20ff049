//! The shared cache: where it lives, its layout, the per-asset inter-process lock, temporary
//! work areas, atomic publication, listing and cleaning.
//!
//! ```text
//! <root>/<tag>/<asset>                      the verified archive (kept to repair without network)
//! <root>/<tag>/<asset-stem>/manifest.json   what was extracted, with hashes
//! <root>/<tag>/<asset-stem>/files/...       the extracted tree
//! <root>/.locks/<tag>--<asset>.lock         held while one process fetches that asset
//! <root>/.tmp/                              downloads and extractions in progress
//! ```
//! Everything appears in `<tag>/` by `rename` from `.tmp/` (same filesystem), so a reader sees
//! either nothing or a complete, verified entry.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::asset::asset_stem;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hashing::sha256_file;
use crate::manifest::{Manifest, Mismatch};

/// Name of the directory under the OS cache dir.
pub const DIR_NAME: &str = "llama-prebuilt";

/// An open cache root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Where the cache was opened, and whether that is the fallback.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The cache.
    pub cache: Cache,
    /// Set when the preferred location was not writable; says why.
    pub fallback_reason: Option<String>,
}

/// A held per-asset lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct AssetLock {
    _file: File,
}

/// A temporary path inside `.tmp/`, removed on drop unless persisted by a rename.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
}

impl TempPath {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        remove_any(&self.path);
    }
}

/// One cached asset, as `cache list` shows it.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The entry directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether the verified archive is kept beside it.
    pub has_archive: bool,
}

/// Why a cache entry no longer verifies.
#[derive(Debug)]
#[non_exhaustive]
pub enum EntryDamage {
    /// The extracted files differ from the manifest.
    Files(Mismatch),
    /// The kept archive does not have the manifest's digest.
    Archive {
        /// The kept archive.
        path: PathBuf,
        /// Its sha256 now.
        actual: String,
        /// The manifest's sha256.
        expected: String,
    },
    /// The kept archive could not be read.
    ArchiveUnreadable {
        /// The kept archive.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl std::fmt::Display for EntryDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryDamage::Files(m) => m.fmt(f),
            EntryDamage::Archive {
                path,
                actual,
                expected,
            } => write!(
                f,
                "archive {} has sha256 {actual}, expected {expected}",
                path.display()
            ),
            EntryDamage::ArchiveUnreadable { path, source } => {
                write!(f, "archive {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for EntryDamage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EntryDamage::Files(m) => Some(m),
            EntryDamage::ArchiveUnreadable { source, .. } => Some(source),
            EntryDamage::Archive { .. } => None,
        }
    }
}

/// What `clean` removed.
#[derive(Debug, Clone, Default)]
pub struct CleanReport {
    /// Paths removed.
    pub removed: Vec<PathBuf>,
    /// Bytes freed.
    pub freed: u64,
}

/// The OS cache directory + `llama-prebuilt`: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows.
pub fn default_root() -> Option<PathBuf> {
    let env_dir = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(windows) {
        env_dir("LOCALAPPDATA")
            .or_else(|| std::env::home_dir().map(|h| h.join("AppData").join("Local")))
    } else if cfg!(target_os = "macos") {
        std::env::home_dir().map(|h| h.join("Library").join("Caches"))
    } else {
        env_dir("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::home_dir().map(|h| h.join(".cache")))
    };
    base.map(|b| b.join(DIR_NAME))
}

impl Cache {
    /// Opens the cache the configuration names, falling back to `fallback_cache_dir` when the
    /// preferred root is not writable.
    pub fn open(config: &Config) -> Result<Opened> {
        let mut tried = Vec::new();
        let preferred = config.cache_dir.clone().or_else(default_root);
        if let Some(root) = preferred {
            match Cache::at(&root) {
                Ok(cache) => {
                    return Ok(Opened {
                        cache,
                        fallback_reason: None,
                    });
                }
                Err(e) => tried.push((root, e.to_string())),
            }
        } else {
            tried.push((
                PathBuf::from("<OS cache dir>"),
                "no home or cache directory is known".into(),
            ));
        }
        if let Some(fallback) = &config.fallback_cache_dir {
            match Cache::at(fallback) {
                Ok(cache) => {
                    let (path, why) = &tried[0];
                    let reason = format!(
                        "cache {} is not writable ({why}); using {} instead",
                        path.display(),
                        fallback.display()
                    );
                    return Ok(Opened {
                        cache,
                        fallback_reason: Some(reason),
                    });
                }
                Err(e) => tried.push((fallback.clone(), e.to_string())),
            }
        }
        Err(Error::CacheUnavailable { tried })
    }

    /// Opens (creating) a cache at `root`, checking it is writable.
    pub fn at(root: &Path) -> std::io::Result<Cache> {
        fs::create_dir_all(root.join(".tmp"))?;
        fs::create_dir_all(root.join(".locks"))?;
        // Creating a directory can succeed on a read-only bind mount's existing tree; a file
        // write is the real test.
        let probe = root
            .join(".tmp")
            .join(format!(".probe.{}", std::process::id()));
        fs::write(&probe, b"ok")?;
        fs::remove_file(&probe)?;
        Ok(Cache {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing cache root without writing (for listing).
    pub fn existing(root: &Path) -> Cache {
        Cache {
            root: root.to_path_buf(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of an asset's extracted entry.
    pub fn entry_dir(&self, tag: &str, asset: &str) -> PathBuf {
        self.root.join(tag).join(asset_stem(asset))
    }

    /// Path of an asset's verified archive.
    pub fn archive_path(&self, tag: &str, asset: &str) -> PathBuf {
        self.root.join(tag).join(asset)
    }

    /// Reads the entry's manifest, if the entry exists.
    pub fn manifest(&self, tag: &str, asset: &str) -> Option<Manifest> {
        Manifest::read(&self.entry_dir(tag, asset).join("manifest.json"))
            .filter(|m| m.tag == tag && m.asset == asset)
    }

    /// Blocks until this process holds the asset's lock. `waiting` is called once if another
    /// process holds it.
    pub fn lock(&self, tag: &str, asset: &str, waiting: impl FnOnce()) -> Result<AssetLock> {
        let path = self
            .root
            .join(".locks")
            .join(format!("{tag}--{asset}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("create lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(|e| Error::io("lock", &path, e))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        Ok(AssetLock { _file: file })
    }

    /// A fresh temporary path for work on `asset`. Its name starts with the asset name so
    /// leftovers of a killed process can be recognised by the next lock holder.
    pub fn temp_path(&self, asset: &str, suffix: &str) -> TempPath {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{asset}.{}.{n}.{suffix}", std::process::id());
        TempPath {
            path: self.root.join(".tmp").join(name),
        }
    }

    /// Removes leftovers of earlier, killed attempts at `asset`. Call only while holding its
    /// lock: then no live process is working on it.
    pub fn sweep_stale(&self, asset: &str) {
        let Ok(dir) = fs::read_dir(self.root.join(".tmp")) else {
            return;
        };
        // The lock is taken per open file (not per process), so while it is held no thread of
        // any process works on this asset: everything with its prefix is a leftover.
        let prefix = format!("{asset}.");
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                remove_any(&e.path());
            }
        }
    }

    /// Moves a finished file or directory from `.tmp/` to its place, replacing what is there.
    pub fn publish(&self, temp: TempPath, dest: &Path, asset: &str) -> Result<()> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        if fs::symlink_metadata(dest).is_ok() {
            // Replace a corrupt entry: move it aside first so the rename below is atomic.
            let old = self.temp_path(asset, "old");
            fs::rename(dest, old.path()).map_err(|e| Error::io("move aside", dest, e))?;
        }
        fs::rename(temp.path(), dest).map_err(|e| Error::io("publish", dest, e))?;
        std::mem::forget(temp);
        Ok(())
    }

    /// Every entry with a valid manifest.
    pub fn entries(&self) -> Vec<CacheEntry> {
        let mut out = Vec::new();
        let Ok(tags) = fs::read_dir(&self.root) else {
            return out;
        };
        for tag in tags.flatten() {
            let tag_name = tag.file_name().to_string_lossy().into_owned();
            if crate::asset::build_number(&tag_name).is_none() || !tag.path().is_dir() {
                continue;
            }
            let Ok(items) = fs::read_dir(tag.path()) else {
                continue;
            };
            for item in items.flatten() {
                if let Some(manifest) = Manifest::read(&item.path().join("manifest.json"))
                    && manifest.tag == tag_name
                {
                    let has_archive = self.archive_path(&tag_name, &manifest.asset).is_file();
                    out.push(CacheEntry {
                        dir: item.path(),
                        manifest,
                        has_archive,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.manifest.tag, &a.manifest.asset).cmp(&(&b.manifest.tag, &b.manifest.asset))
        });
        out
    }

    /// Re-checks one entry: its files against the manifest, then the kept archive (if any)
    /// against the manifest's digest.
    pub fn verify_entry(&self, entry: &CacheEntry) -> std::result::Result<(), EntryDamage> {
        entry
            .manifest
            .verify(&entry.dir.join("files"))
            .map_err(EntryDamage::Files)?;
        if !entry.has_archive {
            return Ok(());
        }
        let path = self.archive_path(&entry.manifest.tag, &entry.manifest.asset);
        match sha256_file(&path) {
            Ok((sha, _)) if sha == entry.manifest.sha256 => Ok(()),
            Ok((actual, _)) => Err(EntryDamage::Archive {
                path,
                actual,
                expected: entry.manifest.sha256.clone(),
            }),
            Err(source) => Err(EntryDamage::ArchiveUnreadable { path, source }),
        }
    }

    /// Removes entries (all, or of one tag) and their archives, plus temporary leftovers.
    /// Only paths this library created are touched: directories with our manifest, the
    /// archives those manifests name, and `.tmp/`. Anything else in the root stays.
    pub fn clean(&self, tag: Option<&str>) -> Result<CleanReport> {
        let mut report = CleanReport::default();
        for entry in self.entries() {
            if tag.is_some_and(|t| t != entry.manifest.tag) {
                continue;
            }
            // Take the lock so a concurrent build is not robbed mid-use of its archive.
            let _lock = self.lock(&entry.manifest.tag, &entry.manifest.asset, || {})?;
            let archive = self.archive_path(&entry.manifest.tag, &entry.manifest.asset);
            for path in [entry.dir.clone(), archive] {
                if fs::symlink_metadata(&path).is_ok() {
                    report.freed += disk_usage(&path);
                    remove_any(&path);
                    report.removed.push(path);
                }
            }
            let tag_dir = self.root.join(&entry.manifest.tag);
            let _ = fs::remove_dir(&tag_dir); // only if now empty
        }
        if tag.is_none()
            && let Ok(items) = fs::read_dir(self.root.join(".tmp"))
        {
            for item in items.flatten() {
                report.freed += disk_usage(&item.path());
                remove_any(&item.path());
                report.removed.push(item.path());
            }
        }
        Ok(report)
    }
}

/// Bytes used by a file or tree (symlinks count as zero).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|d| d.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}
