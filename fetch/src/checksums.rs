//! `checksums.toml`: the trust anchor. Tag -> asset -> sha256 (+ size).
//!
//! ```toml
//! [b10199]
//! "llama-b10199-bin-ubuntu-x64.tar.gz" = { sha256 = "16d6…e58a", size = 16434223 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The table shipped inside this crate (the repository's top-level `checksums.toml`).
pub const EMBEDDED: &str = include_str!("../checksums.toml");

/// A trusted digest of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Size in bytes, when recorded.
    pub size: Option<u64>,
}

/// A parsed checksums file.
#[derive(Debug, Clone, Default)]
pub struct Checksums {
    tags: BTreeMap<String, BTreeMap<String, Digest>>,
}

impl Checksums {
    /// Parses the TOML text; `origin` names it in errors.
    ///
    /// The shape is checked by hand on a parsed `toml::Table` (no serde derive: this crate is a
    /// build dependency, and `serde_derive` would lengthen every cold build downstream).
    pub fn parse(text: &str, origin: &Path) -> Result<Checksums> {
        let bad = |detail: String| Error::Checksums {
            path: origin.to_path_buf(),
            detail,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let mut tags = BTreeMap::new();
        for (tag, assets) in table {
            if crate::asset::build_number(&tag).is_none() {
                return Err(bad(format!(
                    "table `[{tag}]` is not a release tag like `[b10199]` or `[b10199-fixture]`"
                )));
            }
            let assets = assets.as_table().ok_or_else(|| {
                bad(format!(
                    "`{tag}` must be a table of `\"<asset>\" = {{ sha256 = \"…\", size = N }}`"
                ))
            })?;
            let mut digests = BTreeMap::new();
            for (asset, entry) in assets {
                digests.insert(asset.clone(), Digest::from_toml(asset, entry).map_err(bad)?);
            }
            tags.insert(tag, digests);
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
    pub fn assets(&self, tag: &str) -> impl Iterator<Item = (&str, &Digest)> + use<'_> {
        self.tags
            .get(tag)
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

impl Digest {
    /// `{ sha256 = "<64 hex>", size = N }`; `size` is optional, other keys are errors.
    fn from_toml(asset: &str, entry: &toml::Value) -> std::result::Result<Digest, String> {
        let fields = entry
            .as_table()
            .ok_or_else(|| format!("`{asset}` must be `{{ sha256 = \"…\", size = N }}`"))?;
        if let Some(unknown) = fields.keys().find(|k| *k != "sha256" && *k != "size") {
            return Err(format!(
                "`{asset}` has an unknown field `{unknown}` (expected `sha256` and `size`)"
            ));
        }
        let given = fields
            .get("sha256")
            .ok_or_else(|| format!("`{asset}` has no `sha256`"))?;
        let text = given.as_str().unwrap_or_default();
        let sha256 = normalize_sha256(text)
            .ok_or_else(|| format!("`{asset}` has sha256 `{}`, not 64 hex digits", shown(given)))?;
        let size = match fields.get("size") {
            None => None,
            Some(v) => Some(
                v.as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        format!("`{asset}` has size `{}`, not a byte count", shown(v))
                    })?,
            ),
        };
        Ok(Digest { sha256, size })
    }
}

/// A TOML value as an error message shows it (this crate does not enable toml's printer).
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("<{}>", other.type_str()),
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
        assert!(
            e.contains("z.toml") && e.contains("unknown field `sha`"),
            "{e}"
        );
        for (text, wanted) in [
            ("[b1]\n\"a.zip\" = { size = 3 }\n", "has no `sha256`"),
            ("[b1]\n\"a.zip\" = \"abc\"\n", "must be `{ sha256"),
            ("b1 = 3\n", "must be a table of"),
            ("[b1\n", "TOML parse error"),
        ] {
            let e = Checksums::parse(text, Path::new("w.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("w.toml") && e.contains(wanted), "{text:?}: {e}");
        }
        let sha = "c".repeat(64);
        for size in ["-1", "1.5", "\"3\""] {
            let text = format!("[b1]\n\"a.zip\" = {{ sha256 = \"{sha}\", size = {size} }}\n");
            let e = Checksums::parse(&text, Path::new("s.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a byte count"), "{size}: {e}");
        }
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
        assert!(
            c.get("b10199", "llama-b10199-fixture-bin-ubuntu-x64.tar.gz")
                .is_none()
        );
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
