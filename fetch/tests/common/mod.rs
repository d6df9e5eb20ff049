//! Shared set-up for the fetch library's tests against the loopback mirror.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use llama_prebuilt_fetch::{Config, Fetcher, HttpSettings, Request, Target};
use llama_prebuilt_test_support::archives::{checksums_toml, sha256_hex};
use llama_prebuilt_test_support::mirror::Mirror;

pub const TAG: &str = "b20001";
pub const LINUX_X64: &str = "llama-b20001-bin-ubuntu-x64.tar.gz";

/// A mirror, a cache dir and a checksums file, torn down together.
pub struct Env {
    pub mirror: Mirror,
    pub dir: tempfile::TempDir,
    entries: Vec<(String, String, String, u64)>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            mirror: Mirror::start().expect("mirror starts"),
            dir: tempfile::tempdir().unwrap(),
            entries: Vec::new(),
        }
    }

    /// Serves `bytes` as `asset` of `tag` and records its true digest in the checksums file.
    pub fn serve(&mut self, tag: &str, asset: &str, bytes: Vec<u8>) -> String {
        let sha = sha256_hex(&bytes);
        self.entries
            .push((tag.into(), asset.into(), sha.clone(), bytes.len() as u64));
        self.mirror.add_asset_bytes(tag, asset, bytes);
        self.write_checksums();
        sha
    }

    /// Records a digest without serving anything (or with other bytes).
    pub fn trust(&mut self, tag: &str, asset: &str, sha: &str, size: u64) {
        self.entries
            .push((tag.into(), asset.into(), sha.into(), size));
        self.write_checksums();
    }

    fn write_checksums(&self) {
        let rows: Vec<(&str, &str, &str, u64)> = self
            .entries
            .iter()
            .map(|(t, a, s, n)| (t.as_str(), a.as_str(), s.as_str(), *n))
            .collect();
        std::fs::write(self.checksums_path(), checksums_toml(&rows)).unwrap();
    }

    pub fn checksums_path(&self) -> PathBuf {
        self.dir.path().join("checksums.toml")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// A configuration pointing at the mirror, with fast retries and short timeouts.
    pub fn config(&self) -> Config {
        Config {
            cache_dir: Some(self.cache_dir()),
            mirror: Some(self.mirror.download_base()),
            api_base: Some(self.mirror.api_base()),
            checksums_file: Some(self.checksums_path()),
            http: fast_http(),
            ..Config::default()
        }
    }

    pub fn fetcher(&self) -> Fetcher {
        if !self.checksums_path().exists() {
            self.write_checksums();
        }
        Fetcher::new(self.config()).expect("fetcher opens")
    }
}

pub fn fast_http() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(800),
        retries: 2,
        backoff: Duration::from_millis(20),
    }
}

pub fn linux_x64(tag: &str) -> Request {
    Request::new(tag, Target::from_triple("x86_64-unknown-linux-gnu"))
}

pub use llama_prebuilt_test_support::fs_tree::tree;

/// Asserts the cache holds no entry, no archive and no temporary leftovers for `asset`.
pub fn assert_nothing_cached(cache: &Path, tag: &str, asset: &str) {
    let stem = asset.trim_end_matches(".tar.gz").trim_end_matches(".zip");
    assert!(
        !cache.join(tag).join(stem).exists(),
        "entry must not exist: {:?}",
        tree(cache)
    );
    assert!(
        !cache.join(tag).join(asset).exists(),
        "archive must not exist: {:?}",
        tree(cache)
    );
    let tmp: Vec<String> = tree(cache)
        .into_iter()
        .filter(|p| p.starts_with(".tmp/"))
        .collect();
    assert!(tmp.is_empty(), "no half-written files may remain: {tmp:?}");
}
