//! Shared set-up for the fetch library's tests against the loopback mirror.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use llama_prebuilt_fetch::{Config, Fetcher, HttpSettings, Request, Target};
use llama_prebuilt_test_support::test_env::MirrorEnv;

pub const TAG: &str = "b20001";
pub const LINUX_X64: &str = "llama-b20001-bin-ubuntu-x64.tar.gz";

/// A mirror, a cache dir and a checksums file, torn down together (shared with the CLI tests).
pub type Env = MirrorEnv;

/// The mirror environment as a fetch library [`Config`] / [`Fetcher`].
pub trait FetchEnv {
    /// A configuration pointing at the mirror, with fast retries and short timeouts.
    fn config(&self) -> Config;
    fn fetcher(&self) -> Fetcher;
}

impl FetchEnv for MirrorEnv {
    fn config(&self) -> Config {
        Config {
            cache_dir: Some(self.cache_dir()),
            mirror: Some(self.download_base()),
            api_base: Some(self.api_base()),
            checksums_file: Some(self.checksums_path()),
            http: fast_http(),
            ..Config::default()
        }
    }

    fn fetcher(&self) -> Fetcher {
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
