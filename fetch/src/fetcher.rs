//! The façade every caller uses. It owns the configuration, trust sources, HTTP client and
//! cache, and strings the steps together — each step lives in its own module and borrows only
//! what it needs:
//!
//! 1. [`crate::resolve`]: tag + target + variant -> asset and expected digest (one value for
//!    both `plan` and `ensure`);
//! 2. [`crate::obtain`]: the verified archive in the cache;
//! 3. [`crate::install`]: the extracted tree, its manifest and library directory.
//!
//! Besides ordering the steps, this file decides what is done under the per-asset lock.

use std::sync::Arc;

use crate::asset::{self, Platform};
use crate::cache::{Cache, CacheEntry, EntryDamage};
use crate::config::Config;
use crate::digest::Expected;
use crate::error::{Error, Result};
use crate::extract::Limits;
use crate::host_probe::HostProbe;
use crate::http::Http;
use crate::install::{EntryState, Installed, Installer, Repair};
use crate::obtain::{Obtainer, Source};
use crate::progress::{Event, Progress, Silent};
use crate::release::Release;
use crate::resolve::{Plan, Request, Resolver};
use crate::target::Target;
use crate::trust::TrustStore;
use crate::variant_auto::{self, AutoChoice, Listing};

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
        self.resolver().tag(spec, target, variant)
    }

    /// A release's metadata from the API.
    pub fn release(&self, tag: &str) -> Result<Release> {
        self.resolver().release(tag)
    }

    /// Resolves `LLAMA_PREBUILT_VARIANT=auto` for `target` at `tag` on the build host
    /// `host_triple` (see [`crate::variant_auto`] for the rule). The host is probed only when
    /// it is the target; the release's assets are looked up only when the probe found a GPU:
    /// from the release API when the network may be used, and always from the checksums files
    /// and the cache.
    pub fn auto_variant(
        &self,
        tag: &str,
        target: &Target,
        host_triple: &str,
        probe: impl FnOnce() -> HostProbe,
    ) -> Result<AutoChoice> {
        variant_auto::select(tag, target, host_triple, probe, || self.listing(tag))
    }

    /// The asset names `tag` is known to have (for `auto`).
    fn listing(&self, tag: &str) -> Listing {
        let mut names = self.trust.recorded_assets(tag);
        names.extend(
            self.cache
                .entries()
                .into_iter()
                .filter(|e| e.manifest.tag == tag)
                .map(|e| e.manifest.asset),
        );
        let mut source = "the checksums files and the cache".to_string();
        if self.config.offline.is_none() && self.config.mirror_dir().is_none() {
            match self.resolver().release(tag) {
                Ok(rel) => {
                    names.extend(rel.assets.into_iter().map(|a| a.name));
                    source = "the release API, the checksums files and the cache".into();
                }
                Err(e) => {
                    source = format!(
                        "the checksums files and the cache; the release API failed: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                }
            }
        }
        names.sort();
        names.dedup();
        Listing { names, source }
    }

    /// `req` with the variant `auto` replaced by what [`Fetcher::auto_variant`] picks for this
    /// machine (the host this library runs on: the CLI's machine, or the build host in a build
    /// script); any other request as is.
    pub fn concrete(&self, req: &Request) -> Result<Request> {
        if req.variant != "auto" {
            return Ok(req.clone());
        }
        let choice = self.auto_variant(
            &req.tag,
            &req.target,
            &Target::host().triple,
            HostProbe::detect,
        )?;
        Ok(Request {
            variant: choice.variant,
            ..req.clone()
        })
    }

    /// What `ensure` would use, decided without network (except for the release listing an
    /// `auto` request on a machine with a GPU needs).
    pub fn plan(&self, req: &Request) -> Result<Plan> {
        self.resolver().plan(&self.concrete(req)?)
    }

    /// Makes sure the asset for `req` is verified and extracted in the cache. For a CUDA
    /// variant, the matching CUDA runtime archive too ([`Installed::runtime`]), through the same
    /// trust chain (checksums files, else the release API's digest; `LLAMA_PREBUILT_SHA256`
    /// is about the main archive only).
    ///
    /// A request for `auto` is resolved first, for this machine ([`Fetcher::concrete`]).
    pub fn ensure(&self, req: &Request) -> Result<Installed> {
        let req = &self.concrete(req)?;
        let mut main = self.ensure_main(req)?;
        if let Some(name) = asset::cudart_asset(&req.tag, &main.asset) {
            let platform = Platform::for_target(&req.target)?;
            let runtime = self
                .ensure_runtime(&req.tag, platform, &name)
                .map_err(|source| Error::Runtime {
                    asset: name.clone(),
                    variant: req.variant.clone(),
                    source: Box::new(source),
                })?;
            main.runtime = Some(Box::new(runtime));
        }
        Ok(main)
    }

    /// The runtime archive `name`: a valid cache entry, else verified and unpacked.
    fn ensure_runtime(&self, tag: &str, platform: &Platform, name: &str) -> Result<Installed> {
        let repair = match self.installer().existing(tag, name)? {
            EntryState::Valid(hit) => return Ok(*hit),
            EntryState::Corrupt(reason) => Some(Repair::Entry(reason)),
            EntryState::Absent => None,
        };
        let expected = self.resolver().runtime_digest(tag, name)?;
        let source = Source::for_asset(&self.config, tag, name);
        self.install(tag, platform, name, source, expected, repair)
    }

    /// The main archive of `req`.
    fn ensure_main(&self, req: &Request) -> Result<Installed> {
        let resolver = self.resolver();
        let installer = self.installer();
        let resolved = resolver.resolve(req)?;
        let tag = req.tag.as_str();

        if let Some(path) = &self.config.archive {
            let name = resolver.local_archive_name(&resolved, path)?;
            if let EntryState::Valid(installed) = installer.existing(tag, &name)? {
                // Same trusted bytes already extracted.
                if self.trust.local(tag, &name)?.is_some() {
                    return Ok(*installed);
                }
            }
            let expected = resolver.expected_for(tag, &name)?;
            let source = Source::File(path.to_path_buf());
            return self.install(tag, resolved.platform, &name, source, expected, None);
        }

        let mut repair = None;
        for c in &resolved.candidates {
            match installer.existing(tag, c)? {
                EntryState::Valid(installed) => return Ok(*installed),
                EntryState::Corrupt(reason) => repair = Some((c.clone(), reason)),
                EntryState::Absent => {}
            }
        }
        let (asset, expected) = match &repair {
            Some((asset, _)) => (asset.clone(), resolver.expected_for(tag, asset)?),
            None => resolver.digest(tag, &resolved)?,
        };
        let source = Source::for_asset(&self.config, tag, &asset);
        self.install(
            tag,
            resolved.platform,
            &asset,
            source,
            expected,
            repair.map(|r| Repair::Entry(r.1)),
        )
    }

    /// `ensure` for several requests, at most `jobs` at a time. Results keep the input order.
    pub fn ensure_many(&self, reqs: &[Request], jobs: usize) -> Vec<Result<Installed>> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Installed>>>> =
            Mutex::new(reqs.iter().map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, reqs.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(req) = reqs.get(i) else { break };
                        let r = self.ensure(req);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                    }
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

    /// Obtains and unpacks one asset under its lock; `repaired` says why an entry is rebuilt.
    fn install(
        &self,
        tag: &str,
        platform: &Platform,
        asset: &str,
        source: Source,
        expected: Expected,
        mut repaired: Option<Repair>,
    ) -> Result<Installed> {
        let url = self.config.asset_url(tag, asset);
        if let Some(reason) = &repaired {
            self.progress.event(&Event::Repairing {
                asset: asset.to_string(),
                reason: reason.to_string(),
            });
        }
        self.progress.event(&Event::Resolved {
            asset: asset.to_string(),
            url: url.clone(),
            digest_source: expected.source.clone(),
        });
        let _lock = self.cache.lock(tag, asset, || {
            self.progress.event(&Event::WaitingForLock {
                asset: asset.to_string(),
            })
        })?;
        // Another process may have published while we waited.
        if let EntryState::Valid(mut hit) = self.installer().existing(tag, asset)?
            && hit.sha256 == expected.sha256
        {
            hit.repaired = None;
            return Ok(*hit);
        }
        self.cache.sweep_stale(asset);

        let obtained = self.obtainer().archive(tag, asset, &source, &expected)?;
        if repaired.is_none() {
            repaired = obtained.replaced_kept;
        }
        self.progress.event(&Event::Verified {
            asset: asset.to_string(),
            sha256: expected.sha256.clone(),
            digest_source: expected.source.clone(),
        });
        let (entry_dir, lib_dir) =
            self.installer()
                .unpack(tag, platform, asset, &obtained.archive, &expected)?;
        Ok(Installed {
            tag: tag.to_string(),
            asset: asset.to_string(),
            url,
            sha256: expected.sha256,
            digest_source: expected.source,
            lib_dir,
            entry_dir,
            downloaded: obtained.downloaded,
            repaired,
            runtime: None,
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            config: &self.config,
            trust: &self.trust,
            cache: &self.cache,
            http: &self.http,
        }
    }

    fn obtainer(&self) -> Obtainer<'_> {
        Obtainer {
            config: &self.config,
            cache: &self.cache,
            http: &self.http,
            progress: &*self.progress,
        }
    }

    fn installer(&self) -> Installer<'_> {
        Installer {
            config: &self.config,
            trust: &self.trust,
            cache: &self.cache,
            progress: &*self.progress,
            limits: &self.limits,
        }
    }
}
