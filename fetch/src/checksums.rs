//! `checksums.toml`: the trust anchor. Tag -> asset -> sha256 (+ size).
//!
//! ```toml
//! [b10199]
//! "llama-b10199-bin-ubuntu-x64.tar.gz" = { sha256 = "16d6…e58a", size = 16434223 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The table shipped inside this crate (the repository's top-level `checksums.toml`).
pub const EMBEDDED: &str = include_str!("../checksums.toml");

/// A trusted digest of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Size in bytes, when recorded.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A parsed checksums file.
#[derive(Debug, Clone, Default)]
pub struct Checksums {
    tags: BTreeMap<String, BTreeMap<String, Digest>>,
}

impl Checksums {
    /// Parses the TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Checksums> {
        let bad = |detail: String| Error::Checksums {
            path: origin.to_path_buf(),
            detail,
        };
        let mut tags: BTreeMap<String, BTreeMap<String, Digest>> =
            toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (tag, assets) in &mut tags {
            if crate::asset::build_number(tag).is_none() {
                return Err(bad(format!(
                    "table `[{tag}]` is not a release tag like `[b10199]` or `[b10199-fixture]`"
                )));
            }
            for (asset, digest) in assets.iter_mut() {
                digest.sha256 = normalize_sha256(&digest.sha256).ok_or_else(|| {
                    bad(format!(
                        "`{asset}` has sha256 `{}`, not 64 hex digits",
                        digest.sha256
                    ))
                })?;
            }
        }
        Ok(Checksums { tags })
    }

    /// Reads and parses a checksums file.
    pub fn load(path: &Path) -> Result<Checksums> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Checksums {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Checksums::parse(&text, path)
    }

    /// The table embedded in this crate.
    pub fn embedded() -> Checksums {
        Checksums::parse(EMBEDDED, Path::new("checksums.toml (embedded)"))
            .expect("the embedded checksums.toml parses")
    }

    /// The digest recorded for `asset` of `tag`.
    pub fn get(&self, tag: &str, asset: &str) -> Option<&Digest> {
        self.tags.get(tag)?.get(asset)
    }

    /// Tags present in the file.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }

    /// Assets recorded for a tag.
    pub fn assets(&self, tag: &str) -> impl Iterator<Item = (&str, &Digest)> {
        self.tags
            .get(tag)
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

/// Lower-cases a hex sha256 (optionally prefixed `sha256:`) and checks its shape.
pub fn normalize_sha256(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_has_the_pinned_tag() {
        let c = Checksums::embedded();
        let d = c
            .get("b10199", "llama-b10199-bin-ubuntu-x64.tar.gz")
            .unwrap();
        assert_eq!(
            d.sha256,
            "16d63bfb5c7e1c1656d940de398456ed2972af16ab5a0961f88c5929bc4fe58a"
        );
        assert_eq!(d.size, Some(16_434_223));
        assert_eq!(c.assets("b10199").count(), 7);
    }

    #[test]
    fn rejects_bad_digests_and_tags() {
        let e = Checksums::parse(
            "[b1]\n\"a.zip\" = { sha256 = \"abc\" }\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.toml") && e.contains("not 64 hex digits"),
            "{e}"
        );
        let e = Checksums::parse("[latest]\n", Path::new("y.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a release tag"), "{e}");
        let e = Checksums::parse("[b1]\n\"a.zip\" = { sha = \"abc\" }\n", Path::new("z.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("z.toml"), "{e}");
    }

    #[test]
    fn a_suffixed_tag_table_is_its_own_tag() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let text = format!(
            "[b10199-fixture]\n\"llama-b10199-fixture-bin-ubuntu-x64.tar.gz\" = {{ sha256 = \"{a}\", size = 3 }}\n\
             [b10199]\n\"llama-b10199-bin-ubuntu-x64.tar.gz\" = {{ sha256 = \"{b}\" }}\n"
        );
        let c = Checksums::parse(&text, Path::new("f.toml")).unwrap();
        let d = c
            .get(
                "b10199-fixture",
                "llama-b10199-fixture-bin-ubuntu-x64.tar.gz",
            )
            .unwrap();
        assert_eq!((d.sha256.as_str(), d.size), (a.as_str(), Some(3)));
        // The fixture's table says nothing about the official tag's assets, and vice versa.
        assert!(c
            .get("b10199", "llama-b10199-fixture-bin-ubuntu-x64.tar.gz")
            .is_none());
        assert_eq!(c.assets("b10199-fixture").count(), 1);
        assert_eq!(c.tags().collect::<Vec<_>>(), ["b10199", "b10199-fixture"]);
        for bad in [
            "[b10199-Fixture]\n",
            "[b10199-]\n",
            "[\"b10199-fix ture\"]\n",
        ] {
            let e = Checksums::parse(bad, Path::new("g.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a release tag"), "{bad}: {e}");
        }
    }

    #[test]
    fn normalizes() {
        let up = "A".repeat(64);
        assert_eq!(
            normalize_sha256(&format!("sha256:{up}")).unwrap(),
            "a".repeat(64)
        );
        assert!(normalize_sha256("zz").is_none());
    }
}
