//! The expected digest of a download and where that belief comes from.
//!
//! A leaf module (it imports nothing from the crate) so that every stage can carry the typed
//! value: the trust store produces it, progress events and [`crate::Installed`] report it, the
//! cache manifest records it, and errors name it. Nobody ever parses its `Display` text back.

use std::path::PathBuf;

use serde_json::{Value, json};

/// The source a digest was taken from; always reported to the user.
///
/// Stored (in `manifest.json`) as `{"kind": "<label>"}`, plus `"path"` for a checksums file;
/// see [`DigestSource::to_json`]. The conversion is written by hand rather than derived: serde's
/// derive macros would add `serde_derive` and a second `syn` to every cold build of a crate
/// that depends on llama-prebuilt-sys (this crate is its build dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSource {
    /// The `checksums.toml` compiled into this crate.
    Embedded,
    /// A checksums file named with `LLAMA_PREBUILT_CHECKSUMS` (or the API's equivalent).
    ChecksumsFile(PathBuf),
    /// `LLAMA_PREBUILT_SHA256`.
    EnvSha256,
    /// The `digest` field of the GitHub release API (trust on first use, over HTTPS).
    GithubApi,
    /// No digest was published anywhere: the first download over HTTPS defined it. Only the
    /// headers of another tag are ever accepted this way (release assets never are).
    FirstUse,
}

impl std::fmt::Display for DigestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DigestSource::Embedded => write!(
                f,
                "checksums.toml embedded in llama-prebuilt-fetch {}",
                env!("CARGO_PKG_VERSION")
            ),
            DigestSource::ChecksumsFile(p) => write!(f, "checksums file {}", p.display()),
            DigestSource::EnvSha256 => f.write_str("LLAMA_PREBUILT_SHA256"),
            DigestSource::GithubApi => f.write_str("the GitHub release API digest"),
            DigestSource::FirstUse => {
                f.write_str("first download over HTTPS (no published digest)")
            }
        }
    }
}

impl DigestSource {
    /// A short machine-readable label (`embedded`, `checksums-file`, `env`, `github-api`,
    /// `first-use`), as reports and `--json` show it.
    pub fn label(&self) -> &'static str {
        match self {
            DigestSource::Embedded => "embedded",
            DigestSource::ChecksumsFile(_) => "checksums-file",
            DigestSource::EnvSha256 => "env",
            DigestSource::GithubApi => "github-api",
            DigestSource::FirstUse => "first-use",
        }
    }

    /// The JSON form: `{"kind": "<label>"}`, plus `"path"` for a checksums file.
    pub fn to_json(&self) -> Value {
        match self {
            DigestSource::ChecksumsFile(p) => {
                json!({ "kind": self.label(), "path": p.to_string_lossy() })
            }
            _ => json!({ "kind": self.label() }),
        }
    }

    /// Reads [`DigestSource::to_json`]'s form back; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<DigestSource> {
        Some(match value.get("kind")?.as_str()? {
            "embedded" => DigestSource::Embedded,
            "checksums-file" => {
                DigestSource::ChecksumsFile(PathBuf::from(value.get("path")?.as_str()?))
            }
            "env" => DigestSource::EnvSha256,
            "github-api" => DigestSource::GithubApi,
            "first-use" => DigestSource::FirstUse,
            _ => return None,
        })
    }

    /// Whether a checksums file (embedded or extra) pinned the digest before any download.
    pub fn is_pinned(&self) -> bool {
        matches!(
            self,
            DigestSource::Embedded | DigestSource::ChecksumsFile(_)
        )
    }
}

/// The digest an asset must have, and why we believe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Size in bytes, when the source records it.
    pub size: Option<u64>,
    /// Where the digest came from.
    pub source: DigestSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_kind_is_the_label() {
        for source in [
            DigestSource::Embedded,
            DigestSource::ChecksumsFile("/x/sums.toml".into()),
            DigestSource::EnvSha256,
            DigestSource::GithubApi,
            DigestSource::FirstUse,
        ] {
            let json = source.to_json();
            assert_eq!(json["kind"], source.label());
            assert_eq!(DigestSource::from_json(&json), Some(source));
        }
        assert_eq!(
            DigestSource::ChecksumsFile("/x/sums.toml".into()).to_json()["path"],
            "/x/sums.toml"
        );
        for bad in [
            json!({}),
            json!({ "kind": "nope" }),
            json!({ "kind": "checksums-file" }),
            json!("embedded"),
        ] {
            assert_eq!(DigestSource::from_json(&bad), None, "{bad}");
        }
    }
}
