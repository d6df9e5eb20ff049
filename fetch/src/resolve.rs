//! Step one of the pipeline: tag + target + variant -> the asset and the digest it must have.
//!
//! [`Resolver::resolve`] decides, without network, which candidate a build uses and what the
//! local trust sources say about it; `Fetcher::plan` (doctor) and `Fetcher::ensure` (build)
//! both start from that one [`Resolved`] value, so they cannot disagree about the asset. Only
//! when no checksums file records the asset does [`Resolver::digest`] ask the release API.

use std::path::{Path, PathBuf};

use crate::asset::{self, Platform};
use crate::cache::Cache;
use crate::config::Config;
use crate::digest::Expected;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::release::{self, Release};
use crate::target::Target;
use crate::trust::TrustStore;

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
    /// The CUDA runtime archive fetched with it (`cuda-<ver>` variants).
    pub runtime: Option<String>,
}

/// How far the local trust sources (no network) decide the digest.
#[derive(Debug, Clone)]
pub(crate) enum LocalTrust {
    /// A checksums file (embedded or extra) records the asset: asset and digest are final.
    Recorded(Expected),
    /// Only `LLAMA_PREBUILT_SHA256` speaks. The API, when it can be asked, still decides which
    /// candidate the release has, and must agree with it.
    EnvOnly(Expected),
    /// Nothing local; the API's digest is needed.
    Unknown,
}

/// The network-free resolution of a request.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub platform: &'static Platform,
    /// Candidate asset names, most likely first.
    pub candidates: Vec<String>,
    /// The candidate a checksums file records, else the one already in the cache, else the
    /// most likely one.
    pub asset: String,
    /// What local trust sources say about `asset`.
    pub local: LocalTrust,
}

impl Resolved {
    /// The digest local sources give for `asset`, if any.
    pub fn expected(&self) -> Option<&Expected> {
        match &self.local {
            LocalTrust::Recorded(e) | LocalTrust::EnvOnly(e) => Some(e),
            LocalTrust::Unknown => None,
        }
    }
}

/// Borrows what resolution needs from the fetcher.
pub(crate) struct Resolver<'a> {
    pub config: &'a Config,
    pub trust: &'a TrustStore,
    pub cache: &'a Cache,
    pub http: &'a Http,
}

impl Resolver<'_> {
    /// Platform, candidates, chosen asset and local digest; no network.
    pub fn resolve(&self, req: &Request) -> Result<Resolved> {
        let platform = Platform::for_target(&req.target)?;
        let candidates = asset::candidates(&req.tag, platform, &req.variant)?;
        let tag = req.tag.as_str();
        if let Some(known) = candidates.iter().find(|c| self.trust.knows(tag, c)) {
            let expected = self
                .trust
                .local(tag, known)?
                .expect("a recorded asset has a digest");
            return Ok(Resolved {
                platform,
                asset: known.clone(),
                candidates,
                local: LocalTrust::Recorded(expected),
            });
        }
        let asset = candidates
            .iter()
            .find(|c| self.cache.manifest(tag, c).is_some())
            .unwrap_or(&candidates[0])
            .clone();
        let local = match self.trust.local(tag, &asset)? {
            Some(e) => LocalTrust::EnvOnly(e),
            None => LocalTrust::Unknown,
        };
        Ok(Resolved {
            platform,
            candidates,
            asset,
            local,
        })
    }

    /// The resolution as doctor shows it, with the cache entry if there is one.
    pub fn plan(&self, req: &Request) -> Result<Plan> {
        let r = self.resolve(req)?;
        let cached = self
            .cache
            .manifest(&req.tag, &r.asset)
            .map(|_| self.cache.entry_dir(&req.tag, &r.asset));
        Ok(Plan {
            platform: r.platform,
            url: self.config.asset_url(&req.tag, &r.asset),
            expected: r.expected().cloned(),
            runtime: asset::cudart_asset(&req.tag, &r.asset),
            candidates: r.candidates,
            asset: r.asset,
            cached,
        })
    }

    /// The asset to download and its trusted digest: the recorded one as is, otherwise the
    /// release API's (checked against `LLAMA_PREBUILT_SHA256`), or the env digest alone when
    /// the API cannot be asked.
    pub fn digest(&self, tag: &str, resolved: &Resolved) -> Result<(String, Expected)> {
        match &resolved.local {
            LocalTrust::Recorded(e) => Ok((resolved.asset.clone(), e.clone())),
            LocalTrust::EnvOnly(_) | LocalTrust::Unknown => {
                self.digest_online(tag, &resolved.candidates)
            }
        }
    }

    /// The trusted digest of one named asset (a repair, or a local archive).
    pub fn expected_for(&self, tag: &str, asset: &str) -> Result<Expected> {
        if let Some(exp) = self.trust.local(tag, asset)? {
            return Ok(exp);
        }
        let (_, exp) = self.digest_online(tag, &[asset.to_string()])?;
        Ok(exp)
    }

    /// The trusted digest of a CUDA runtime archive: a checksums file's, else the release
    /// API's. Never `LLAMA_PREBUILT_SHA256`, which names the main archive's digest.
    pub fn runtime_digest(&self, tag: &str, name: &str) -> Result<Expected> {
        if let Some(exp) = self.trust.recorded(tag, name) {
            return Ok(exp);
        }
        let api_url = format!("{}/releases/tags/{tag}", self.config.api_base());
        self.config.require_online(
            "look up the asset's digest",
            name,
            &api_url,
            self.cache.root(),
        )?;
        let no_digest = || Error::NoDigest {
            asset: name.to_string(),
            url: self.config.asset_url(tag, name),
        };
        let rel = match release::fetch_release(self.http, self.config.api_base(), tag) {
            Ok(rel) => rel,
            Err(Error::Api { .. }) => return Err(no_digest()),
            Err(e) => return Err(e),
        };
        let Some(found) = rel.asset(name) else {
            return Err(Error::AssetNotInRelease {
                tag: tag.to_string(),
                wanted: vec![name.to_string()],
                available: rel.assets.iter().map(|a| a.name.clone()).collect(),
            });
        };
        let sha256 = found
            .digest
            .as_deref()
            .and_then(crate::checksums::normalize_sha256)
            .ok_or_else(no_digest)?;
        Ok(Expected {
            sha256,
            size: Some(found.size).filter(|s| *s > 0),
            source: crate::digest::DigestSource::GithubApi,
        })
    }

    /// Asks the release API which candidate exists and what its digest is.
    fn digest_online(&self, tag: &str, candidates: &[String]) -> Result<(String, Expected)> {
        let first = &candidates[0];
        let api_url = format!("{}/releases/tags/{tag}", self.config.api_base());
        if self.config.offline.is_some() || self.config.mirror_dir().is_some() {
            // Without the API the only local digest left is LLAMA_PREBUILT_SHA256, which then
            // belongs to the most likely candidate.
            if let Some(exp) = self.trust.local(tag, first)? {
                return Ok((first.clone(), exp));
            }
            self.config.require_online(
                "look up the asset's digest",
                first,
                &api_url,
                self.cache.root(),
            )?;
        }
        match release::fetch_release(self.http, self.config.api_base(), tag) {
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

    /// `newest`/`latest` -> the newest `bNNNN` tag with an asset for `target` (API call); any
    /// other value must be a valid tag.
    pub fn tag(&self, spec: &str, target: &Target, variant: &str) -> Result<String> {
        if !matches!(spec, "newest" | "latest") {
            asset::check_tag(spec)?;
            return Ok(spec.to_string());
        }
        self.config.require_api(
            "resolve the newest release",
            &format!("{}/releases", self.config.api_base()),
        )?;
        let platform = Platform::for_target(target)?;
        // `auto` is decided per release later; every release has the CPU asset.
        let variant = if variant == "auto" { "cpu" } else { variant };
        let r = release::newest_build_release(self.http, self.config.api_base(), 3, |r| {
            asset::candidates(&r.tag, platform, variant)
                .is_ok_and(|c| c.iter().any(|n| r.asset(n).is_some()))
        })?;
        Ok(r.tag)
    }

    /// A release's metadata from the API.
    pub fn release(&self, tag: &str) -> Result<Release> {
        let url = format!("{}/releases/tags/{tag}", self.config.api_base());
        self.config.require_api("list the release's assets", &url)?;
        release::fetch_release(self.http, self.config.api_base(), tag)
    }

    /// The name a local archive must have: one of the candidates for the target and tag.
    pub fn local_archive_name(&self, resolved: &Resolved, path: &Path) -> Result<String> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !resolved.candidates.contains(&name) {
            return Err(Error::LocalArchive {
                path: path.to_path_buf(),
                detail: format!(
                    "the file name must be the release asset's name for this target and tag, one of: {}",
                    resolved.candidates.join(", ")
                ),
            });
        }
        if !path.is_file() {
            return Err(Error::LocalArchive {
                path: path.to_path_buf(),
                detail: "no such file".into(),
            });
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpSettings;

    const X64: &str = "llama-b10199-bin-ubuntu-x64.tar.gz";

    struct Parts {
        _dir: tempfile::TempDir,
        config: Config,
        trust: TrustStore,
        cache: Cache,
        http: Http,
    }

    impl Parts {
        fn new(trust: TrustStore) -> Parts {
            let dir = tempfile::tempdir().unwrap();
            let cache = Cache::at(dir.path()).unwrap();
            Parts {
                _dir: dir,
                config: Config::default(),
                trust,
                cache,
                http: Http::new(&HttpSettings::default(), None),
            }
        }

        fn resolver(&self) -> Resolver<'_> {
            Resolver {
                config: &self.config,
                trust: &self.trust,
                cache: &self.cache,
                http: &self.http,
            }
        }
    }

    fn linux_x64(tag: &str) -> Request {
        Request::new(tag, Target::from_triple("x86_64-unknown-linux-gnu"))
    }

    #[test]
    fn a_recorded_asset_is_final_and_plan_agrees() {
        let parts = Parts::new(TrustStore::embedded_only());
        let r = parts.resolver().resolve(&linux_x64("b10199")).unwrap();
        assert_eq!(r.asset, X64);
        assert!(matches!(&r.local, LocalTrust::Recorded(e) if e.size.is_some()));
        // No network: the recorded digest is used as is.
        let (asset, exp) = parts.resolver().digest("b10199", &r).unwrap();
        assert_eq!((asset.as_str(), Some(&exp)), (X64, r.expected()));
        let plan = parts.resolver().plan(&linux_x64("b10199")).unwrap();
        assert_eq!(
            (plan.asset.as_str(), plan.expected.as_ref()),
            (X64, r.expected())
        );
        assert!(plan.cached.is_none());
    }

    #[test]
    fn unrecorded_assets_fall_back_to_the_first_candidate_and_the_env_digest() {
        let parts = Parts::new(TrustStore::embedded_only());
        let r = parts.resolver().resolve(&linux_x64("b1")).unwrap();
        assert_eq!(r.asset, r.candidates[0]);
        assert!(matches!(r.local, LocalTrust::Unknown));

        let parts = Parts::new(TrustStore::new(None, Some(&"ab".repeat(32))).unwrap());
        let r = parts.resolver().resolve(&linux_x64("b1")).unwrap();
        assert!(matches!(&r.local, LocalTrust::EnvOnly(e) if e.sha256 == "ab".repeat(32)));
    }

    #[test]
    fn runtime_digests_come_from_checksums_files_not_the_env_digest() {
        // The b11194 pair is recorded in the embedded checksums.toml: no network needed.
        let mut parts = Parts::new(TrustStore::new(None, Some(&"ab".repeat(32))).unwrap());
        parts.config.offline = Some("LLAMA_PREBUILT_OFFLINE=1".into());
        let name = "cudart-llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz";
        let exp = parts.resolver().runtime_digest("b11194", name).unwrap();
        assert_eq!(exp.source, crate::digest::DigestSource::Embedded);
        assert_eq!(exp.size, Some(440_236_666));
        // Unrecorded and offline: an error naming the runtime archive, not the env digest.
        let other = "cudart-llama-bin-win-cuda-12.4-x64.zip";
        let err = parts
            .resolver()
            .runtime_digest("b10199", other)
            .unwrap_err();
        assert!(
            matches!(err, Error::OfflineMiss { ref asset, .. } if asset == other),
            "{err}"
        );
    }

    #[test]
    fn offline_without_any_digest_names_the_asset() {
        let mut parts = Parts::new(TrustStore::embedded_only());
        parts.config.offline = Some("LLAMA_PREBUILT_OFFLINE=1".into());
        let r = parts.resolver().resolve(&linux_x64("b1")).unwrap();
        let err = parts.resolver().digest("b1", &r).unwrap_err();
        assert!(
            matches!(err, Error::OfflineMiss { ref asset, .. } if *asset == r.asset),
            "{err}"
        );
    }
}
