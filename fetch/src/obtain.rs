//! Step two: the verified archive in the cache. Bytes come from a URL or a local file, are
//! hashed while they stream into `.tmp/`, and are published next to the entry only when they
//! have the trusted digest (and size). A kept archive that still verifies is reused, so a
//! damaged entry is rebuilt without network.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::config::Config;
use crate::digest::Expected;
use crate::error::{Error, Result};
use crate::files::copy_hashing;
use crate::hashing::sha256_file;
use crate::http::Http;
use crate::install::Repair;
use crate::progress::Progress;

/// Where the bytes of an archive come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Download (honours offline mode).
    Url(String),
    /// Copy a local file (`LLAMA_PREBUILT_ARCHIVE`, or a `file://` mirror).
    File(PathBuf),
}

impl Source {
    /// Where a request goes: the `file://` mirror's directory, else the asset URL.
    pub fn for_asset(config: &Config, tag: &str, asset: &str) -> Source {
        match config.mirror_dir() {
            Some(dir) => Source::File(dir.join(tag).join(asset)),
            None => Source::Url(config.asset_url(tag, asset)),
        }
    }

    fn shown(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// The verified archive's place in the cache, and how it got there.
#[derive(Debug)]
pub(crate) struct Obtained {
    /// `<root>/<tag>/<asset>`.
    pub archive: PathBuf,
    /// Whether bytes were transferred over the network.
    pub downloaded: bool,
    /// Set when a kept archive existed but no longer matched its digest.
    pub replaced_kept: Option<Repair>,
}

/// Borrows what obtaining needs from the fetcher.
pub(crate) struct Obtainer<'a> {
    pub config: &'a Config,
    pub cache: &'a Cache,
    pub http: &'a Http,
    pub progress: &'a dyn Progress,
}

impl Obtainer<'_> {
    /// Makes `<root>/<tag>/<asset>` hold bytes with the `expected` digest. Call with the
    /// asset's lock held.
    pub fn archive(
        &self,
        tag: &str,
        asset: &str,
        source: &Source,
        expected: &Expected,
    ) -> Result<Obtained> {
        let archive = self.cache.archive_path(tag, asset);
        let from_url = matches!(source, Source::Url(_));
        if from_url && kept_archive_verifies(&archive, expected) {
            return Ok(Obtained {
                archive,
                downloaded: false,
                replaced_kept: None,
            });
        }
        let replaced_kept =
            (from_url && archive.is_file()).then(|| Repair::KeptArchive(archive.clone()));
        let tmp = self.cache.temp_path(asset, "part");
        let got = match source {
            Source::Url(u) => {
                self.config
                    .require_online("download", asset, u, self.cache.root())?;
                self.http.download(u, tmp.path(), asset, self.progress)?
            }
            Source::File(p) => copy_hashing(p, tmp.path())?,
        };
        if got.sha256 != expected.sha256 {
            return Err(Error::ChecksumMismatch {
                asset: asset.to_string(),
                url: source.shown(),
                expected: expected.sha256.clone(),
                actual: got.sha256,
                source: expected.source.clone(),
            });
        }
        if let Some(size) = expected.size.filter(|s| *s != got.size) {
            return Err(Error::SizeMismatch {
                asset: asset.to_string(),
                url: source.shown(),
                expected: size,
                actual: got.size,
            });
        }
        self.cache.publish(tmp, &archive, asset)?;
        Ok(Obtained {
            archive,
            downloaded: from_url,
            replaced_kept,
        })
    }
}

fn kept_archive_verifies(archive: &Path, expected: &Expected) -> bool {
    archive.is_file() && sha256_file(archive).is_ok_and(|(sha, _)| sha == expected.sha256)
}
