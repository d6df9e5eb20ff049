//! The one pipeline every caller uses: target + tag + variant -> asset -> verified archive in the
//! cache -> extracted tree -> library directory. Each step lives in its own module; this file
//! only strings them together and decides what may touch the network.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::asset::{self, Platform};
use crate::cache::{Cache, CacheEntry, EntryDamage, TempPath};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::extract::{self, ArchiveKind, EntryKind, Limits};
use crate::hashing::{sha256_file, HashingWriter};
use crate::http::{Downloaded, Http};
use crate::libdir;
use crate::manifest::{FileKind, Manifest, ManifestFile, SCHEMA};
use crate::progress::{Event, Progress, Silent};
use crate::release::{self, Release};
use crate::target::Target;
use crate::trust::{DigestSource, Expected, TrustStore};

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Release tag (`b10199`).
    pub tag: String,
    /// Compilation target.
    pub target: Target,
    /// Backend variant (`cpu`, `vulkan`, `cuda-12.4`, ...).
    pub variant: String,
}

impl Request {
    /// A CPU request.
    pub fn new(tag: impl Into<String>, target: Target) -> Request {
        Request {
            tag: tag.into(),
            target,
            variant: "cpu".into(),
        }
    }
}

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
    pub repaired: Option<String>,
}

/// What a build would do, found without network (for `doctor`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The platform.
    pub platform: &'static Platform,
    /// Candidate asset names, most likely first.
    pub candidates: Vec<String>,
    /// The asset that would be used (the first candidate when undecided).
    pub asset: String,
    /// Its URL.
    pub url: String,
    /// The digest from local trust sources, if any.
    pub expected: Option<Expected>,
    /// The cache entry, if one exists.
    pub cached: Option<PathBuf>,
}

/// Where the bytes of an archive come from.
enum Source {
    Url(String),
    File(PathBuf),
}

/// Resolves, downloads, verifies, extracts and caches release assets.
pub struct Fetcher {
    config: Config,
    trust: TrustStore,
    http: Http,
    cache: Cache,
    progress: Arc<dyn Progress>,
    limits: Limits,
    fallback_reason: Option<String>,
}

impl Fetcher {
    /// Opens the cache and the trust sources the configuration names.
    pub fn new(config: Config) -> Result<Fetcher> {
        let trust = TrustStore::new(config.checksums_file.clone(), config.sha256.as_deref())?;
        let opened = Cache::open(&config)?;
        let http = Http::new(&config.http, config.github_token.clone());
        Ok(Fetcher {
            config,
            trust,
            http,
            cache: opened.cache,
            progress: Arc::new(Silent),
            limits: Limits::default(),
            fallback_reason: opened.fallback_reason,
        })
    }

    /// Reports progress to `progress`, starting with a notice if the cache fell back.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Fetcher {
        if let Some(reason) = &self.fallback_reason {
            progress.event(&Event::Notice {
                message: reason.clone(),
            });
        }
        self.progress = progress;
        self
    }

    /// Overrides the extraction limits.
    pub fn with_limits(mut self, limits: Limits) -> Fetcher {
        self.limits = limits;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cache in use.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Why the cache is not where it was asked to be, if it fell back.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The trust sources in use.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Turns `newest`/`latest` into the newest `bNNNN` tag that has an asset for `target`
    /// (API call); checks any other value is a valid tag.
    pub fn resolve_tag(&self, spec: &str, target: &Target, variant: &str) -> Result<String> {
        if !matches!(spec, "newest" | "latest") {
            asset::check_tag(spec)?;
            return Ok(spec.to_string());
        }
        self.require_api(
            "resolve the newest release",
            &format!("{}/releases", self.config.api_base()),
        )?;
        let platform = Platform::for_target(target)?;
        let r = release::newest_build_release(&self.http, self.config.api_base(), 3, |r| {
            asset::candidates(&r.tag, platform, variant)
                .is_ok_and(|c| c.iter().any(|n| r.asset(n).is_some()))
        })?;
        Ok(r.tag)
    }

    /// A release's metadata from the API.
    pub fn release(&self, tag: &str) -> Result<Release> {
        let url = format!("{}/releases/tags/{tag}", self.config.api_base());
        self.require_api("list the release's assets", &url)?;
        release::fetch_release(&self.http, self.config.api_base(), tag)
    }

    /// What `ensure` would use, decided without network.
    pub fn plan(&self, req: &Request) -> Result<Plan> {
        let platform = Platform::for_target(&req.target)?;
        let candidates = asset::candidates(&req.tag, platform, &req.variant)?;
        let known = candidates.iter().find(|c| self.trust.knows(&req.tag, c));
        let cached = candidates
            .iter()
            .find(|c| self.cache.manifest(&req.tag, c).is_some());
        let asset = known.or(cached).unwrap_or(&candidates[0]).clone();
        let expected = self.trust.local(&req.tag, &asset)?;
        let cached = self
            .cache
            .manifest(&req.tag, &asset)
            .map(|_| self.cache.entry_dir(&req.tag, &asset));
        Ok(Plan {
            platform,
            url: self.config.asset_url(&req.tag, &asset),
            candidates,
            asset,
            expected,
            cached,
        })
    }

    /// Makes sure the asset for `req` is verified and extracted in the cache.
    pub fn ensure(&self, req: &Request) -> Result<Installed> {
        let platform = Platform::for_target(&req.target)?;
        let candidates = asset::candidates(&req.tag, platform, &req.variant)?;
        let tag = req.tag.as_str();

        if let Some(path) = &self.config.archive {
            return self.ensure_local_archive(tag, platform, &candidates, path);
        }

        let mut repair = None;
        for c in &candidates {
            match self.check_entry(tag, c)? {
                EntryState::Valid(installed) => return Ok(*installed),
                EntryState::Corrupt(reason) => repair = Some((c.clone(), reason)),
                EntryState::Absent => {}
            }
        }

        let (asset, expected) = match &repair {
            Some((asset, _)) => (asset.clone(), self.expected_for(tag, asset)?),
            None => self.choose(tag, &candidates)?,
        };
        let url = self.config.asset_url(tag, &asset);
        let source = match self.config.mirror.as_deref().and_then(file_url_path) {
            Some(dir) => Source::File(dir.join(tag).join(&asset)),
            None => Source::Url(url.clone()),
        };
        self.install(
            tag,
            platform,
            &asset,
            &url,
            source,
            expected,
            repair.map(|r| r.1),
        )
    }

    /// `ensure` for several requests, at most `jobs` at a time. Results keep the input order.
    pub fn ensure_many(&self, reqs: &[Request], jobs: usize) -> Vec<Result<Installed>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Installed>>>> =
            Mutex::new(reqs.iter().map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, reqs.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(req) = reqs.get(i) else { break };
                    let r = self.ensure(req);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|r| r.expect("every job ran"))
            .collect()
    }

    /// Re-checks every cache entry (files against the manifest, and the kept archive against the
    /// manifest's digest). Returns each entry with the first problem found.
    pub fn verify_cache(&self) -> Vec<(CacheEntry, std::result::Result<(), EntryDamage>)> {
        self.cache
            .entries()
            .into_iter()
            .map(|e| {
                let r = self.cache.verify_entry(&e);
                (e, r)
            })
            .collect()
    }

    fn check_entry(&self, tag: &str, asset: &str) -> Result<EntryState> {
        let Some(m) = self.cache.manifest(tag, asset) else {
            return Ok(EntryState::Absent);
        };
        if let Some(exp) = self.trust.local(tag, asset)? {
            if exp.sha256 != m.sha256 {
                // Cached from other bytes than the ones now trusted: rebuild from trusted bytes.
                return Ok(EntryState::Corrupt(format!(
                    "cached from an archive with sha256 {}, but {} now says {}",
                    m.sha256, exp.source, exp.sha256
                )));
            }
        }
        let dir = self.cache.entry_dir(tag, asset);
        match m.verify(&dir.join("files")) {
            Ok(()) => {
                self.progress.event(&Event::CacheHit {
                    asset: asset.to_string(),
                    dir: dir.display().to_string(),
                });
                Ok(EntryState::Valid(Box::new(Installed {
                    tag: tag.to_string(),
                    asset: asset.to_string(),
                    url: self.config.asset_url(tag, asset),
                    sha256: m.sha256.clone(),
                    digest_source: m.digest_source.clone(),
                    lib_dir: join_rel(&dir.join("files"), Path::new(&m.lib_dir)),
                    entry_dir: dir,
                    downloaded: false,
                    repaired: None,
                })))
            }
            Err(mismatch) => Ok(EntryState::Corrupt(mismatch.to_string())),
        }
    }

    /// Picks the candidate and its trusted digest: local trust first, then the release API.
    fn choose(&self, tag: &str, candidates: &[String]) -> Result<(String, Expected)> {
        if let Some(c) = candidates.iter().find(|c| self.trust.knows(tag, c)) {
            let exp = self
                .trust
                .local(tag, c)?
                .expect("a known asset has a digest");
            return Ok((c.clone(), exp));
        }
        let first = &candidates[0];
        let api_url = format!("{}/releases/tags/{tag}", self.config.api_base());
        if self.config.offline.is_some()
            || self
                .config
                .mirror
                .as_deref()
                .is_some_and(|m| file_url_path(m).is_some())
        {
            // Without the API the only local digest left is LLAMA_PREBUILT_SHA256, which then
            // belongs to the most likely candidate.
            if let Some(exp) = self.trust.local(tag, first)? {
                return Ok((first.clone(), exp));
            }
            self.require_online("look up the asset's digest", first, &api_url)?;
        }
        match release::fetch_release(&self.http, self.config.api_base(), tag) {
            Ok(rel) => {
                let Some(found) = candidates.iter().find_map(|c| rel.asset(c)) else {
                    return Err(Error::AssetNotInRelease {
                        tag: tag.to_string(),
                        wanted: candidates.to_vec(),
                        available: rel.assets.iter().map(|a| a.name.clone()).collect(),
                    });
                };
                let exp = self
                    .trust
                    .with_api(tag, &found.name, found.digest.as_deref())?
                    .ok_or_else(|| Error::NoDigest {
                        asset: found.name.clone(),
                        url: self.config.asset_url(tag, &found.name),
                    })?;
                Ok((found.name.clone(), exp))
            }
            // A mirror may not serve the API; LLAMA_PREBUILT_SHA256 still pins the bytes.
            Err(api_err) => match self.trust.local(tag, first)? {
                Some(exp) => Ok((first.clone(), exp)),
                None => Err(match api_err {
                    Error::Api { .. } => Error::NoDigest {
                        asset: first.clone(),
                        url: self.config.asset_url(tag, first),
                    },
                    other => other,
                }),
            },
        }
    }

    fn expected_for(&self, tag: &str, asset: &str) -> Result<Expected> {
        if let Some(exp) = self.trust.local(tag, asset)? {
            return Ok(exp);
        }
        let (_, exp) = self.choose(tag, &[asset.to_string()])?;
        Ok(exp)
    }

    fn ensure_local_archive(
        &self,
        tag: &str,
        platform: &Platform,
        candidates: &[String],
        path: &Path,
    ) -> Result<Installed> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !candidates.contains(&name) {
            return Err(Error::LocalArchive {
                path: path.to_path_buf(),
                detail: format!(
                    "the file name must be the release asset's name for this target and tag, one of: {}",
                    candidates.join(", ")
                ),
            });
        }
        if !path.is_file() {
            return Err(Error::LocalArchive {
                path: path.to_path_buf(),
                detail: "no such file".into(),
            });
        }
        if let EntryState::Valid(installed) = self.check_entry(tag, &name)? {
            // Same trusted bytes already extracted.
            if self.trust.local(tag, &name)?.is_some() {
                return Ok(*installed);
            }
        }
        let expected = self.expected_for(tag, &name)?;
        let url = self.config.asset_url(tag, &name);
        self.install(
            tag,
            platform,
            &name,
            &url,
            Source::File(path.to_path_buf()),
            expected,
            None,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &self,
        tag: &str,
        platform: &Platform,
        asset: &str,
        url: &str,
        source: Source,
        expected: Expected,
        mut repaired: Option<String>,
    ) -> Result<Installed> {
        if let Some(reason) = &repaired {
            self.progress.event(&Event::Repairing {
                asset: asset.to_string(),
                reason: reason.clone(),
            });
        }
        self.progress.event(&Event::Resolved {
            asset: asset.to_string(),
            url: url.to_string(),
            digest_source: expected.source.clone(),
        });
        let _lock = self.cache.lock(tag, asset, || {
            self.progress.event(&Event::WaitingForLock {
                asset: asset.to_string(),
            })
        })?;
        // Another process may have published while we waited.
        if let EntryState::Valid(mut hit) = self.check_entry(tag, asset)? {
            if hit.sha256 == expected.sha256 {
                hit.repaired = None;
                return Ok(*hit);
            }
        }
        self.cache.sweep_stale(asset);

        let archive = self.cache.archive_path(tag, asset);
        let cached_ok = matches!(&source, Source::Url(_))
            && archive.is_file()
            && sha256_file(&archive).is_ok_and(|(sha, _)| sha == expected.sha256);
        let mut downloaded = false;
        if !cached_ok {
            if archive.is_file() && repaired.is_none() && matches!(&source, Source::Url(_)) {
                repaired = Some(format!(
                    "kept archive {} did not match its digest",
                    archive.display()
                ));
            }
            let tmp = self.cache.temp_path(asset, "part");
            let got = match &source {
                Source::Url(u) => {
                    self.require_online("download", asset, u)?;
                    downloaded = true;
                    self.http.download(u, tmp.path(), asset, &*self.progress)?
                }
                Source::File(p) => copy_hashing(p, tmp.path())?,
            };
            let shown_url = match &source {
                Source::Url(u) => u.clone(),
                Source::File(p) => p.display().to_string(),
            };
            if got.sha256 != expected.sha256 {
                return Err(Error::ChecksumMismatch {
                    asset: asset.to_string(),
                    url: shown_url,
                    expected: expected.sha256.clone(),
                    actual: got.sha256,
                    source: expected.source.clone(),
                });
            }
            if let Some(size) = expected.size.filter(|s| *s != got.size) {
                return Err(Error::SizeMismatch {
                    asset: asset.to_string(),
                    url: shown_url,
                    expected: size,
                    actual: got.size,
                });
            }
            self.cache.publish(tmp, &archive, asset)?;
        }
        self.progress.event(&Event::Verified {
            asset: asset.to_string(),
            sha256: expected.sha256.clone(),
            digest_source: expected.source.clone(),
        });

        self.progress.event(&Event::Extracting {
            asset: asset.to_string(),
        });
        let work = self.cache.temp_path(asset, "x");
        let (manifest, lib_rel) =
            self.extract_entry(tag, platform, asset, &archive, &expected, &work)?;
        std::fs::write(work.path().join("manifest.json"), manifest.to_json())
            .map_err(|e| Error::io("write", work.path().join("manifest.json"), e))?;
        let entry_dir = self.cache.entry_dir(tag, asset);
        self.cache.publish(work, &entry_dir, asset)?;
        self.progress.event(&Event::Installed {
            asset: asset.to_string(),
            dir: entry_dir.display().to_string(),
        });
        Ok(Installed {
            tag: tag.to_string(),
            asset: asset.to_string(),
            url: url.to_string(),
            sha256: expected.sha256.clone(),
            digest_source: expected.source.clone(),
            lib_dir: join_rel(&entry_dir.join("files"), &lib_rel),
            entry_dir,
            downloaded,
            repaired,
        })
    }

    fn extract_entry(
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
        let entries = extract::extract(archive, kind, &files, &self.limits).map_err(|source| {
            Error::Extract {
                asset: asset.to_string(),
                source,
            }
        })?;
        let lib = libdir::locate(&files, platform.lib_os()).map_err(|source| Error::Locate {
            asset: asset.to_string(),
            source,
        })?;
        let lib_rel = lib
            .dir
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

    fn require_api(&self, what: &str, url: &str) -> Result<()> {
        match &self.config.offline {
            Some(reason) => Err(Error::OfflineApi {
                what: what.to_string(),
                url: url.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn require_online(&self, what: &str, asset: &str, url: &str) -> Result<()> {
        match &self.config.offline {
            Some(reason) => Err(Error::OfflineMiss {
                asset: asset.to_string(),
                url: url.to_string(),
                cache_dir: self.cache.root().to_path_buf(),
                reason: format!("{reason}; needed to {what}"),
            }),
            None => Ok(()),
        }
    }
}

enum EntryState {
    Valid(Box<Installed>),
    Corrupt(String),
    Absent,
}

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

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

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
