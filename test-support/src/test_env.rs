//! The test environment shared by the fetch library's and the CLI's tests against the loopback
//! mirror: a [`Mirror`], a temporary directory (cache, `checksums.toml`, scratch files) and the
//! digests the tests trust, torn down together.
//!
//! It knows nothing of the fetch library (which depends on this crate for its tests): each test
//! suite turns [`MirrorEnv`] into what it runs, a `Config` for a `Fetcher` or the environment
//! variables of a CLI process, from [`MirrorEnv::download_base`], [`MirrorEnv::api_base`],
//! [`MirrorEnv::cache_dir`] and [`MirrorEnv::checksums_path`].

use std::path::PathBuf;

use crate::archives::{checksums_toml, sha256_hex};
use crate::mirror::Mirror;

/// A mirror, a temporary directory and a checksums file, torn down together.
pub struct MirrorEnv {
    /// The running loopback mirror.
    pub mirror: Mirror,
    /// Scratch directory holding the checksums file (and anything else the test writes).
    pub dir: tempfile::TempDir,
    /// `(tag, asset, sha256, size)` rows of the checksums file, in the order they were added.
    entries: Vec<(String, String, String, u64)>,
}

impl MirrorEnv {
    /// Starts a mirror serving nothing yet and writes an empty checksums file.
    pub fn new() -> MirrorEnv {
        let env = MirrorEnv {
            mirror: Mirror::start().expect("mirror starts"),
            dir: tempfile::tempdir().unwrap(),
            entries: Vec::new(),
        };
        env.write_checksums();
        env
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

    /// Rewrites [`MirrorEnv::checksums_path`] with every digest served or trusted so far.
    fn write_checksums(&self) {
        let rows: Vec<(&str, &str, &str, u64)> = self
            .entries
            .iter()
            .map(|(t, a, s, n)| (t.as_str(), a.as_str(), s.as_str(), *n))
            .collect();
        std::fs::write(self.checksums_path(), checksums_toml(&rows)).unwrap();
    }

    /// `checksums.toml` in the temporary directory.
    pub fn checksums_path(&self) -> PathBuf {
        self.dir.path().join("checksums.toml")
    }

    /// `cache/` in the temporary directory (not created here).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The mirror's [`Mirror::download_base`].
    pub fn download_base(&self) -> String {
        self.mirror.download_base()
    }

    /// The mirror's [`Mirror::api_base`].
    pub fn api_base(&self) -> String {
        self.mirror.api_base()
    }
}

impl Default for MirrorEnv {
    fn default() -> Self {
        MirrorEnv::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_and_trust_write_the_checksums_file() {
        let mut env = MirrorEnv::new();
        assert_eq!(std::fs::read_to_string(env.checksums_path()).unwrap(), "");
        let sha = env.serve("b1", "a.zip", b"abc".to_vec());
        assert_eq!(sha, sha256_hex(b"abc"));
        env.trust("b1", "b.zip", &"0".repeat(64), 7);
        let text = std::fs::read_to_string(env.checksums_path()).unwrap();
        assert_eq!(
            text,
            checksums_toml(&[
                ("b1", "a.zip", &sha, 3),
                ("b1", "b.zip", &"0".repeat(64), 7)
            ])
        );
        assert!(env.cache_dir().starts_with(env.dir.path()));
        assert_eq!(env.download_base(), env.mirror.download_base());
    }
}
