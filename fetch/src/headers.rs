//! The C headers of a tag other than the pinned one, for bindgen.
//!
//! Release archives carry no headers (RELEASES.md), and binaries of one tag with headers of
//! another are undefined behaviour, so a build of another tag fetches that tag's headers from
//! the llama.cpp source tree (raw.githubusercontent.com, or `LLAMA_PREBUILT_HEADERS_URL`) and
//! caches them like an asset, under `<root>/<tag>/headers/`. A digest recorded for a header in a
//! checksums file (key = its path in the source, e.g. `"include/llama.h"`) is enforced; GitHub
//! publishes none, so otherwise the first download over HTTPS is trusted and the result says so.

use std::path::{Path, PathBuf};

use crate::digest::DigestSource;
use crate::error::{Error, Result};
use crate::fetcher::Fetcher;
use crate::files::{copy_hashing, file_url_path, join_rel};
use crate::manifest::{FileKind, Manifest, ManifestFile, SCHEMA};

/// The headers `wrapper.h` includes, by their path in the llama.cpp source tree.
pub const SOURCE_HEADERS: &[&str] = &[
    "include/llama.h",
    "ggml/include/ggml.h",
    "ggml/include/ggml-alloc.h",
    "ggml/include/ggml-backend.h",
    "ggml/include/ggml-cpu.h",
    "ggml/include/ggml-opt.h",
    "ggml/include/ggml-rpc.h",
    "ggml/include/gguf.h",
];

/// The cache entry name of a tag's headers.
pub const ENTRY: &str = "headers";

/// A tag's headers, flat in one directory (they include each other by bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// Directory holding `llama.h`, `ggml*.h`, `gguf.h`.
    pub dir: PathBuf,
    /// Whether they were downloaded by this call.
    pub downloaded: bool,
    /// Whether every file matched a digest recorded in a checksums file (otherwise they were
    /// trusted on first download).
    pub pinned: bool,
    /// Where they came from.
    pub base_url: String,
}

impl Fetcher {
    /// Makes sure the headers of `tag` are in the cache, downloading them if needed.
    pub fn ensure_headers(&self, tag: &str) -> Result<Headers> {
        crate::asset::check_tag(tag)?;
        let base = self.config().headers_base().to_string();
        if let Some(hit) = self.headers_hit(tag, &base) {
            return Ok(hit);
        }
        let cache = self.cache();
        let _lock = cache.lock(tag, ENTRY, || {})?;
        if let Some(hit) = self.headers_hit(tag, &base) {
            return Ok(hit);
        }
        if let Some(reason) = &self.config().offline {
            return Err(unavailable(
                tag,
                &format!(
                    "offline ({reason}) and they are not in the cache at {}",
                    cache.root().display()
                ),
            ));
        }
        cache.sweep_stale(ENTRY);
        let work = cache.temp_path(ENTRY, "x");
        let files_dir = work.path().join("files");
        std::fs::create_dir_all(&files_dir).map_err(|e| Error::io("create", &files_dir, e))?;
        let mut files = Vec::new();
        // The source that pinned every file so far; `FirstUse` once one file had no digest.
        let mut trusted: Option<DigestSource> = None;
        for path in SOURCE_HEADERS {
            let name = Path::new(path)
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let dest = files_dir.join(&name);
            let url = format!("{base}/{tag}/{path}");
            let got = match file_url_path(&base) {
                Some(dir) => copy_hashing(&dir.join(tag).join(path), &dest),
                None => self
                    .http()
                    .download(&url, &dest, path, &crate::progress::Silent),
            }
            .map_err(|e| match e {
                Error::HttpStatus { status: 404, .. } => unavailable(
                    tag,
                    &format!("{url} does not exist (older tags lay their headers out differently)"),
                ),
                other => unavailable(tag, &other.to_string()),
            })?;
            match self.trust().recorded(tag, path) {
                Some(want) if want.sha256 != got.sha256 => {
                    return Err(Error::ChecksumMismatch {
                        asset: path.to_string(),
                        url,
                        expected: want.sha256,
                        actual: got.sha256,
                        source: want.source,
                    });
                }
                Some(want) => {
                    trusted.get_or_insert(want.source);
                }
                None => trusted = Some(DigestSource::FirstUse),
            }
            files.push(ManifestFile {
                path: name,
                kind: FileKind::File,
                size: got.size,
                sha256: got.sha256,
                target: None,
            });
        }
        let manifest = Manifest {
            schema: SCHEMA,
            tag: tag.to_string(),
            asset: ENTRY.to_string(),
            sha256: String::new(),
            size: 0,
            digest_source: trusted.clone().unwrap_or(DigestSource::FirstUse),
            lib_dir: String::new(),
            created_by: format!(
                "llama-prebuilt-fetch {} from {base}",
                env!("CARGO_PKG_VERSION")
            ),
            files,
        };
        let manifest_path = work.path().join("manifest.json");
        std::fs::write(&manifest_path, manifest.to_json())
            .map_err(|e| Error::io("write", &manifest_path, e))?;
        let entry = cache.entry_dir(tag, ENTRY);
        cache.publish(work, &entry, ENTRY)?;
        Ok(Headers {
            dir: join_rel(&entry, Path::new("files")),
            downloaded: true,
            pinned: trusted.is_some_and(|t| t.is_pinned()),
            base_url: base,
        })
    }

    fn headers_hit(&self, tag: &str, base: &str) -> Option<Headers> {
        let m = self.cache().manifest(tag, ENTRY)?;
        let dir = self.cache().entry_dir(tag, ENTRY).join("files");
        m.verify(&dir).ok()?;
        // A digest pinned since the headers were cached must hold for them too.
        let agrees = m.files.iter().all(|f| {
            let path = SOURCE_HEADERS
                .iter()
                .find(|p| p.ends_with(&format!("/{}", f.path)));
            path.and_then(|p| self.trust().recorded(tag, p))
                .is_none_or(|want| want.sha256 == f.sha256)
        });
        agrees.then(|| Headers {
            dir,
            downloaded: false,
            pinned: m.digest_source.is_pinned(),
            base_url: base.to_string(),
        })
    }
}

fn unavailable(tag: &str, reason: &str) -> Error {
    Error::HeadersUnavailable {
        tag: tag.to_string(),
        reason: reason.to_string(),
    }
}
