//! Where the expected digest of an asset comes from, in the order DESIGN.md fixes: the embedded
//! `checksums.toml`, an extra checksums file, `LLAMA_PREBUILT_SHA256`, then the GitHub API's
//! `digest` field. Sources that disagree are an error, never a silent choice.

use std::path::PathBuf;

use crate::checksums::{Checksums, Digest};
pub use crate::digest::{DigestSource, Expected};
use crate::error::{Error, Result};

/// The local trust sources (no network): embedded table, extra file, env digest.
#[derive(Debug, Clone)]
pub struct TrustStore {
    embedded: Checksums,
    extra: Option<(PathBuf, Checksums)>,
    env_sha256: Option<String>,
}

impl TrustStore {
    /// Builds the store; `extra` is the path of a user checksums file, `env_sha256` the raw
    /// value of `LLAMA_PREBUILT_SHA256`.
    pub fn new(extra: Option<PathBuf>, env_sha256: Option<&str>) -> Result<TrustStore> {
        let extra = match extra {
            Some(path) => {
                let c = Checksums::load(&path)?;
                Some((path, c))
            }
            None => None,
        };
        let env_sha256 =
            match env_sha256 {
                Some(raw) => Some(crate::checksums::normalize_sha256(raw).ok_or_else(|| {
                    Error::BadSha256 {
                        given_by: crate::config::vars::SHA256,
                        value: raw.to_string(),
                    }
                })?),
                None => None,
            };
        Ok(TrustStore {
            embedded: Checksums::embedded(),
            extra,
            env_sha256,
        })
    }

    /// Only the embedded table (for tests and tools).
    pub fn embedded_only() -> TrustStore {
        TrustStore {
            embedded: Checksums::embedded(),
            extra: None,
            env_sha256: None,
        }
    }

    /// Whether a checksums file (embedded or extra) records this asset.
    pub fn knows(&self, tag: &str, asset: &str) -> bool {
        self.embedded.get(tag, asset).is_some()
            || self
                .extra
                .as_ref()
                .is_some_and(|(_, c)| c.get(tag, asset).is_some())
    }

    /// The digest a checksums file (embedded or extra) records for `name`, ignoring
    /// `LLAMA_PREBUILT_SHA256` (which is about the one archive of a build, not other files).
    pub fn recorded(&self, tag: &str, name: &str) -> Option<Expected> {
        let from = |d: &Digest, source: DigestSource| Expected {
            sha256: d.sha256.clone(),
            size: d.size,
            source,
        };
        if let Some(d) = self.embedded.get(tag, name) {
            return Some(from(d, DigestSource::Embedded));
        }
        let (path, c) = self.extra.as_ref()?;
        c.get(tag, name)
            .map(|d| from(d, DigestSource::ChecksumsFile(path.clone())))
    }

    /// Every asset of `tag` a checksums file (embedded or extra) records.
    pub fn recorded_assets(&self, tag: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .embedded
            .assets(tag)
            .map(|(n, _)| n.to_string())
            .collect();
        if let Some((_, c)) = &self.extra {
            names.extend(c.assets(tag).map(|(n, _)| n.to_string()));
        }
        names.sort();
        names.dedup();
        names
    }

    /// Whether `LLAMA_PREBUILT_SHA256` is set.
    pub fn has_env_digest(&self) -> bool {
        self.env_sha256.is_some()
    }

    /// The expected digest from local sources, checking that they agree. `None` when no local
    /// source knows the asset (the API may then be asked).
    pub fn local(&self, tag: &str, asset: &str) -> Result<Option<Expected>> {
        let mut found: Vec<Expected> = Vec::new();
        let from = |d: &Digest, source: DigestSource| Expected {
            sha256: d.sha256.clone(),
            size: d.size,
            source,
        };
        if let Some(d) = self.embedded.get(tag, asset) {
            found.push(from(d, DigestSource::Embedded));
        }
        if let Some((path, c)) = &self.extra
            && let Some(d) = c.get(tag, asset)
        {
            found.push(from(d, DigestSource::ChecksumsFile(path.clone())));
        }
        if let Some(sha) = &self.env_sha256 {
            found.push(Expected {
                sha256: sha.clone(),
                size: None,
                source: DigestSource::EnvSha256,
            });
        }
        agree(asset, found)
    }

    /// Adds the API's digest as the last resort, checking it against local sources.
    pub fn with_api(
        &self,
        tag: &str,
        asset: &str,
        api_digest: Option<&str>,
    ) -> Result<Option<Expected>> {
        let local = self.local(tag, asset)?;
        let api = api_digest.and_then(crate::checksums::normalize_sha256);
        match (local, api) {
            (Some(l), Some(a)) if l.sha256 != a => Err(Error::ConflictingDigests {
                asset: asset.to_string(),
                first: (l.source, l.sha256),
                second: (DigestSource::GithubApi, a),
            }),
            (Some(l), _) => Ok(Some(l)),
            (None, Some(a)) => Ok(Some(Expected {
                sha256: a,
                size: None,
                source: DigestSource::GithubApi,
            })),
            (None, None) => Ok(None),
        }
    }
}

/// The first source wins; any later one that disagrees is a conflict.
fn agree(asset: &str, found: Vec<Expected>) -> Result<Option<Expected>> {
    let mut iter = found.into_iter();
    let Some(mut first) = iter.next() else {
        return Ok(None);
    };
    for other in iter {
        if other.sha256 != first.sha256 {
            return Err(Error::ConflictingDigests {
                asset: asset.to_string(),
                first: (first.source, first.sha256),
                second: (other.source, other.sha256),
            });
        }
        first.size = first.size.or(other.size);
    }
    Ok(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const X64: &str = "llama-b10199-bin-ubuntu-x64.tar.gz";
    const X64_SHA: &str = "16d63bfb5c7e1c1656d940de398456ed2972af16ab5a0961f88c5929bc4fe58a";

    #[test]
    fn embedded_wins_and_agreeing_env_is_fine() {
        let t = TrustStore::new(None, Some(X64_SHA)).unwrap();
        let e = t.local("b10199", X64).unwrap().unwrap();
        assert_eq!(e.source, DigestSource::Embedded);
        assert_eq!(e.size, Some(16_434_223));
    }

    #[test]
    fn disagreeing_env_digest_is_a_conflict_naming_both() {
        let other = "0".repeat(64);
        let t = TrustStore::new(None, Some(&other)).unwrap();
        let msg = t.local("b10199", X64).unwrap_err().to_string();
        assert!(
            msg.contains(X64_SHA) && msg.contains(&other) && msg.contains("LLAMA_PREBUILT_SHA256"),
            "{msg}"
        );
    }

    #[test]
    fn env_digest_serves_unknown_assets() {
        let t = TrustStore::new(None, Some(&"AB".repeat(32))).unwrap();
        let e = t
            .local("b1", "llama-b1-bin-ubuntu-x64.zip")
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.sha256.as_str(), e.source.label()),
            ("ab".repeat(32).as_str(), "env")
        );
    }

    #[test]
    fn bad_env_digest_is_rejected() {
        let msg = TrustStore::new(None, Some("xyz")).unwrap_err().to_string();
        assert!(
            msg.contains("LLAMA_PREBUILT_SHA256") && msg.contains("xyz"),
            "{msg}"
        );
    }

    #[test]
    fn api_is_last_and_checked() {
        let t = TrustStore::embedded_only();
        let api = format!("sha256:{}", "c".repeat(64));
        let e = t.with_api("b1", "x.zip", Some(&api)).unwrap().unwrap();
        assert_eq!(e.source, DigestSource::GithubApi);
        assert!(
            t.with_api("b10199", X64, Some(&api))
                .unwrap_err()
                .to_string()
                .contains("disagree")
        );
        assert!(t.with_api("b1", "x.zip", None).unwrap().is_none());
    }

    #[test]
    fn missing_extra_file_is_an_error_naming_it() {
        let msg = TrustStore::new(Some("/nonexistent/sums.toml".into()), None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/sums.toml"), "{msg}");
    }
}
