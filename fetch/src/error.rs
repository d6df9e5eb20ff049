//! The one error type of the fetch library.
//!
//! Every variant carries the facts a user needs (asset, URL, path, both digests) as named fields,
//! and its `Display` ends with what to do next, because these messages surface verbatim as
//! build-script errors.

use std::path::PathBuf;

use crate::digest::DigestSource;
use crate::extract::ExtractError;
use crate::libdir::LocateError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while resolving, downloading, verifying or caching an asset.
// Field names say what they hold; documenting each would repeat them.
#[allow(missing_docs)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The target triple has no prebuilt llama.cpp asset.
    UnsupportedTarget {
        triple: String,
        supported: Vec<String>,
    },
    /// The variant does not exist for this platform.
    UnsupportedVariant {
        variant: String,
        platform: String,
        supported: Vec<String>,
    },
    /// A tag that is not of the `bNNNN` form.
    BadTag { tag: String },
    /// A tag known to be broken upstream.
    BrokenTag { tag: String, why: &'static str },
    /// A checksums file could not be read or parsed.
    Checksums { path: PathBuf, detail: String },
    /// A digest given on the command line or in the environment is not a sha256;
    /// `given_by` names the flag or variable.
    BadSha256 {
        given_by: &'static str,
        value: String,
    },
    /// Two trust sources disagree about one asset: (source, sha256) of each.
    ConflictingDigests {
        asset: String,
        first: (DigestSource, String),
        second: (DigestSource, String),
    },
    /// No trusted digest is known for the asset.
    NoDigest { asset: String, url: String },
    /// The bytes received do not have the expected digest.
    ChecksumMismatch {
        asset: String,
        url: String,
        expected: String,
        actual: String,
        source: DigestSource,
    },
    /// A local file does not have the digest it was checked against.
    FileMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The size received differs from the one the trust anchor records.
    SizeMismatch {
        asset: String,
        url: String,
        expected: u64,
        actual: u64,
    },
    /// HTTP status that is final (404, 403, ...).
    HttpStatus {
        url: String,
        status: u16,
        hint: Option<String>,
    },
    /// Network failure that survived all retries.
    Network {
        url: String,
        attempts: u32,
        detail: String,
    },
    /// Offline mode and the asset is not cached.
    OfflineMiss {
        asset: String,
        url: String,
        cache_dir: PathBuf,
        reason: String,
    },
    /// The headers of a tag could not be obtained.
    HeadersUnavailable { tag: String, reason: String },
    /// Offline, and a release API call (not an asset) was needed.
    OfflineApi {
        what: String,
        url: String,
        reason: String,
    },
    /// The GitHub API answered something unusable.
    Api { url: String, detail: String },
    /// A release was found but not the asset.
    AssetNotInRelease {
        tag: String,
        wanted: Vec<String>,
        available: Vec<String>,
    },
    /// Extraction rejected the archive.
    Extract { asset: String, source: ExtractError },
    /// The extracted tree has no llama library.
    Locate { asset: String, source: LocateError },
    /// No usable cache directory.
    CacheUnavailable { tried: Vec<(PathBuf, String)> },
    /// Filesystem error with the path it happened on.
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A local archive named by the user does not fit the target.
    LocalArchive { path: PathBuf, detail: String },
    /// The CUDA runtime archive (`cudart-llama-…`) a `cuda-<ver>` variant needs could not be
    /// obtained, verified or unpacked; `source` says why.
    Runtime {
        asset: String,
        variant: String,
        source: Box<Error>,
    },
    /// A runtime archive holds no shared library.
    RuntimeEmpty {
        asset: String,
        top_level: Vec<String>,
    },
}

impl Error {
    #[cold]
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

const LIB_DIR_HINT: &str =
    "or build llama.cpp yourself and point LLAMA_LIB_DIR at the directory holding libllama";

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::UnsupportedTarget { triple, supported } => write!(
                f,
                "no prebuilt llama.cpp release asset exists for target `{triple}`; supported targets: {}\n\
                 help: build for one of those targets, {LIB_DIR_HINT}",
                supported.join(", ")
            ),
            Error::UnsupportedVariant {
                variant,
                platform,
                supported,
            } => write!(
                f,
                "variant `{variant}` has no release asset for {platform}; variants for {platform}: {}\n\
                 help: set LLAMA_PREBUILT_VARIANT to one of those, {LIB_DIR_HINT}",
                supported.join(", ")
            ),
            Error::BadTag { tag } => write!(
                f,
                "`{tag}` is not a llama.cpp release tag; tags look like `b10199` (or `b10199-<suffix>` for a non-official build of its source; or use `newest`)"
            ),
            Error::BrokenTag { tag, why } => write!(
                f,
                "llama.cpp release {tag} is known to be broken upstream ({why})\n\
                 help: pick a neighbouring tag with LLAMA_PREBUILT_VERSION, {LIB_DIR_HINT}"
            ),
            Error::Checksums { path, detail } => write!(
                f,
                "cannot use checksums file {}: {detail}\n\
                 help: the format is `[bNNNN]` tables of `\"<asset>\" = {{ sha256 = \"<64 hex>\", size = <bytes> }}`",
                path.display()
            ),
            Error::BadSha256 { given_by, value } => {
                write!(f, "{given_by}: `{value}` is not a 64-digit hex sha256")
            }
            Error::ConflictingDigests {
                asset,
                first,
                second,
            } => write!(
                f,
                "two trusted sources disagree about `{asset}`:\n  {} says {}\n  {} says {}\n\
                 help: remove the wrong entry; nothing was downloaded or cached",
                first.0, first.1, second.0, second.1
            ),
            Error::NoDigest { asset, url } => write!(
                f,
                "no trusted sha256 is known for `{asset}` ({url}), and llama-prebuilt never uses an unverified download\n\
                 help: set LLAMA_PREBUILT_SHA256=<hex>, name a checksums file with LLAMA_PREBUILT_CHECKSUMS, \
                 or allow the GitHub API lookup (unset LLAMA_PREBUILT_OFFLINE; set GITHUB_TOKEN if rate-limited)"
            ),
            Error::ChecksumMismatch {
                asset,
                url,
                expected,
                actual,
                source,
            } => write!(
                f,
                "checksum mismatch for `{asset}` from {url}\n  expected sha256 {expected} (from {source})\n  \
                 actual   sha256 {actual}\nThe download was discarded; nothing was cached.\n\
                 help: if you use a mirror, it serves different bytes than the official release; \
                 otherwise retry, and report the mismatch if it persists"
            ),
            Error::FileMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "{} does not have the expected sha256\n  expected {expected}\n  actual   {actual}",
                path.display()
            ),
            Error::SizeMismatch {
                asset,
                url,
                expected,
                actual,
            } => write!(
                f,
                "`{asset}` from {url} has {actual} bytes, the trusted record says {expected}; the download was discarded"
            ),
            Error::HttpStatus { url, status, hint } => {
                write!(f, "HTTP {status} for {url}")?;
                if let Some(hint) = hint {
                    write!(f, "\nhelp: {hint}")?;
                }
                Ok(())
            }
            Error::Network {
                url,
                attempts,
                detail,
            } => write!(
                f,
                "download of {url} failed after {attempts} attempt(s): {detail}\n\
                 help: check the network or proxy (HTTPS_PROXY/NO_PROXY), use a mirror with \
                 LLAMA_PREBUILT_MIRROR, or a local file with LLAMA_PREBUILT_ARCHIVE"
            ),
            Error::OfflineMiss {
                asset,
                url,
                cache_dir,
                reason,
            } => write!(
                f,
                "offline ({reason}) and llama.cpp asset `{asset}` is not in the cache at {}\n\
                 It would be downloaded from {url}\nWays out:\n  \
                 - LLAMA_LIB_DIR=<dir with libllama> to use libraries you already have\n  \
                 - LLAMA_PREBUILT_ARCHIVE=<path to {asset}> to verify and use a local copy\n  \
                 - LLAMA_PREBUILT_MIRROR=<url or file:// dir> to fetch from a mirror you can reach",
                cache_dir.display()
            ),
            Error::HeadersUnavailable { tag, reason } => write!(
                f,
                "the C headers of llama.cpp {tag} are needed (the vendored ones belong to another tag), \
                 but cannot be fetched: {reason}\n\
                 help: set LLAMA_INCLUDE_DIR to a directory holding llama.h, ggml*.h and gguf.h of {tag} \
                 (include/ and ggml/include/ of its source), or set LLAMA_PREBUILT_HEADERS_URL to a mirror of the source tree"
            ),
            Error::OfflineApi { what, url, reason } => write!(
                f,
                "offline ({reason}): cannot {what}, which needs the release API ({url})\n\
                 help: name an exact tag (one listed in checksums.toml needs no API call), or go online"
            ),
            Error::Api { url, detail } => write!(
                f,
                "GitHub API request {url} failed: {detail}\n\
                 help: set GITHUB_TOKEN if rate-limited, or pin a tag listed in checksums.toml"
            ),
            Error::Runtime {
                asset,
                variant,
                source,
            } => write!(
                f,
                "the CUDA runtime archive {asset}, which variant {variant} needs next to its libraries: {source}"
            ),
            Error::RuntimeEmpty { asset, top_level } => write!(
                f,
                "the CUDA runtime archive {asset} holds no shared library (top level: {})\n\
                 help: check the mirror serves the official archive, {LIB_DIR_HINT}",
                top_level.join(", ")
            ),
            Error::AssetNotInRelease {
                tag,
                wanted,
                available,
            } => write!(
                f,
                "release {tag} has none of {}; it has: {}\n\
                 help: choose another tag or variant, {LIB_DIR_HINT}",
                wanted.join(", "),
                if available.is_empty() {
                    "no assets".to_string()
                } else {
                    available.join(", ")
                }
            ),
            Error::Extract { asset, source } => {
                write!(
                    f,
                    "archive `{asset}` was rejected during extraction: {source}"
                )
            }
            Error::Locate { asset, source } => write!(f, "archive `{asset}`: {source}"),
            Error::CacheUnavailable { tried } => {
                write!(f, "no writable cache directory for llama-prebuilt:")?;
                for (path, why) in tried {
                    write!(f, "\n  {}: {why}", path.display())?;
                }
                write!(
                    f,
                    "\nhelp: set LLAMA_PREBUILT_CACHE_DIR to a writable directory"
                )
            }
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
            Error::LocalArchive { path, detail } => {
                write!(f, "LLAMA_PREBUILT_ARCHIVE={}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Extract { source, .. } => Some(source),
            Error::Locate { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            Error::Runtime { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
