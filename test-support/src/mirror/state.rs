//! The mirror's shared state: what is served, which faults are queued, and what was asked for.
//!
//! Everything lives behind one mutex that is held only for bookkeeping, never while a body is
//! being sent or a digest computed, so a slow (throttled, stalled) download never blocks others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::Fault;

/// `(tag, asset name)`.
pub(crate) type Key = (String, String);

pub(crate) fn key(tag: &str, name: &str) -> Key {
    (tag.to_owned(), name.to_owned())
}

/// Where an asset's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    /// Opened per request and streamed, so multi-GiB files cost no memory.
    File(PathBuf),
}

/// One servable asset. Shared via `Arc` so a response can outlive a later replacement.
pub(crate) struct Asset {
    source: Source,
    pub(crate) size: u64,
    /// Computed on first API request: hashing a 1 GiB file at `add_asset_file` time would slow
    /// down every test that never asks for the digest.
    sha256: OnceLock<String>,
}

impl Asset {
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Asset {
        Asset {
            size: bytes.len() as u64,
            source: Source::Bytes(bytes),
            sha256: OnceLock::new(),
        }
    }

    pub(crate) fn from_file(path: PathBuf) -> io::Result<Asset> {
        let size = std::fs::metadata(&path)?.len();
        Ok(Asset {
            source: Source::File(path),
            size,
            sha256: OnceLock::new(),
        })
    }

    /// A fresh reader over the whole body.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        match &self.source {
            Source::Bytes(b) => Ok(Box::new(&b[..])),
            Source::File(p) => Ok(Box::new(File::open(p)?)),
        }
    }

    pub(crate) fn sha256_hex(&self) -> io::Result<String> {
        if let Some(d) = self.sha256.get() {
            return Ok(d.clone());
        }
        let digest = crate::archives::sha256_reader(self.open()?)?;
        Ok(self.sha256.get_or_init(|| digest).clone())
    }
}

/// A release as the API lists it.
pub(crate) struct Release {
    pub(crate) tag: String,
    pub(crate) prerelease: bool,
    /// Asset names in the order they were added (the API lists them in this order).
    pub(crate) assets: Vec<String>,
}

/// One received request, for assertions such as "the token was never sent to the download URL".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query as received, e.g. `/download/b1/x.tar.gz`.
    pub target: String,
    /// The `Authorization` header, if one was sent.
    pub authorization: Option<String>,
    /// The `User-Agent` header, if one was sent.
    pub user_agent: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    /// In creation order; the API lists them reversed (newest = most recently added first),
    /// the way GitHub orders by creation date.
    pub(crate) releases: Vec<Release>,
    pub(crate) assets: HashMap<Key, Arc<Asset>>,
    pub(crate) unpublished_digests: HashSet<Key>,
    pub(crate) faults: HashMap<Key, VecDeque<Fault>>,
    pub(crate) hits: HashMap<Key, usize>,
    pub(crate) redirect_hits: HashMap<Key, usize>,
    pub(crate) api_hits: usize,
    pub(crate) throttle: Option<u64>,
    pub(crate) log: Vec<RequestLog>,
}

impl State {
    pub(crate) fn release_mut(&mut self, tag: &str, prerelease: bool) -> &mut Release {
        let idx = match self.releases.iter().position(|r| r.tag == tag) {
            Some(i) => i,
            None => {
                self.releases.push(Release {
                    tag: tag.to_owned(),
                    prerelease,
                    assets: Vec::new(),
                });
                self.releases.len() - 1
            }
        };
        &mut self.releases[idx]
    }

    pub(crate) fn put_asset(&mut self, tag: &str, name: &str, asset: Asset) {
        // Real bNNNN releases are prereleases since 2026; an implicit release mimics them.
        let release = self.release_mut(tag, true);
        if !release.assets.iter().any(|a| a == name) {
            release.assets.push(name.to_owned());
        }
        self.assets.insert(key(tag, name), Arc::new(asset));
    }

    /// A consistent copy of one release for rendering outside the lock.
    pub(crate) fn snapshot(&self, index: usize) -> ReleaseSnapshot {
        let r = &self.releases[index];
        let assets = r
            .assets
            .iter()
            .filter_map(|name| {
                let k = key(&r.tag, name);
                let asset = self.assets.get(&k)?.clone();
                Some(AssetSnapshot {
                    name: name.clone(),
                    digest_published: !self.unpublished_digests.contains(&k),
                    asset,
                })
            })
            .collect();
        ReleaseSnapshot {
            id: index as u64 + 1,
            tag: r.tag.clone(),
            prerelease: r.prerelease,
            assets,
        }
    }
}

pub(crate) struct ReleaseSnapshot {
    pub(crate) id: u64,
    pub(crate) tag: String,
    pub(crate) prerelease: bool,
    pub(crate) assets: Vec<AssetSnapshot>,
}

pub(crate) struct AssetSnapshot {
    pub(crate) name: String,
    pub(crate) digest_published: bool,
    pub(crate) asset: Arc<Asset>,
}
