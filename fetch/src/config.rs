//! Settings, read once from the environment (or built by hand in tests and tools).
//!
//! An empty variable counts as unset, so `FOO= cargo build` switches an override off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Names of every environment variable the fetch library and the build script read.
pub mod vars {
    /// Tag to use instead of the pinned one.
    pub const VERSION: &str = "LLAMA_PREBUILT_VERSION";
    /// Use the libraries in this directory; no download at all.
    pub const LIB_DIR: &str = "LLAMA_LIB_DIR";
    /// Headers for bindgen instead of `vendor-headers/`.
    pub const INCLUDE_DIR: &str = "LLAMA_INCLUDE_DIR";
    /// `cpu` (default), `auto` (see [`crate::variant_auto`]), `vulkan`, `cuda-12.4`, ...
    pub const VARIANT: &str = "LLAMA_PREBUILT_VARIANT";
    /// A local archive to verify and use instead of downloading.
    pub const ARCHIVE: &str = "LLAMA_PREBUILT_ARCHIVE";
    /// Base URL replacing `https://github.com/ggml-org/llama.cpp/releases/download`.
    pub const MIRROR: &str = "LLAMA_PREBUILT_MIRROR";
    /// Base URL replacing `https://api.github.com/repos/ggml-org/llama.cpp` (for mirrors of the API).
    pub const API_URL: &str = "LLAMA_PREBUILT_API_URL";
    /// Base URL replacing `https://raw.githubusercontent.com/ggml-org/llama.cpp` (headers of
    /// tags other than the pinned one: `{base}/{tag}/include/llama.h`, ...).
    pub const HEADERS_URL: &str = "LLAMA_PREBUILT_HEADERS_URL";
    /// An extra checksums file.
    pub const CHECKSUMS: &str = "LLAMA_PREBUILT_CHECKSUMS";
    /// Expected digest of the one archive this build uses.
    pub const SHA256: &str = "LLAMA_PREBUILT_SHA256";
    /// Cache root.
    pub const CACHE_DIR: &str = "LLAMA_PREBUILT_CACHE_DIR";
    /// No network when `1`/`true`.
    pub const OFFLINE: &str = "LLAMA_PREBUILT_OFFLINE";
    /// Cargo's own offline switch (`--offline`, `net.offline`).
    pub const CARGO_NET_OFFLINE: &str = "CARGO_NET_OFFLINE";
    /// Token for GitHub API calls only; never printed.
    pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
    /// Set by docs.rs: no download.
    pub const DOCS_RS: &str = "DOCS_RS";
    /// Per-read stall timeout in seconds for downloads (default 30).
    pub const TIMEOUT: &str = "LLAMA_PREBUILT_TIMEOUT";
    /// Internal, for `cargo xtask bindings --check`: bindgen reads the sys crate's include
    /// shim instead of the target's C headers (to compare the two).
    pub const BINDINGS_SHIM: &str = "LLAMA_PREBUILT_BINDINGS_SHIM";

    /// Every variable above, for `rerun-if-env-changed` and `doctor` (a unit test checks that
    /// nothing the fetch library, the CLI or the build script reads is missing).
    pub const ALL: &[&str] = &[
        VERSION,
        LIB_DIR,
        INCLUDE_DIR,
        VARIANT,
        ARCHIVE,
        MIRROR,
        API_URL,
        HEADERS_URL,
        CHECKSUMS,
        SHA256,
        CACHE_DIR,
        OFFLINE,
        CARGO_NET_OFFLINE,
        GITHUB_TOKEN,
        DOCS_RS,
        TIMEOUT,
        BINDINGS_SHIM,
    ];
}

/// Official download base.
pub const GITHUB_DOWNLOAD_BASE: &str = "https://github.com/ggml-org/llama.cpp/releases/download";
/// Official API base.
pub const GITHUB_API_BASE: &str = "https://api.github.com/repos/ggml-org/llama.cpp";
/// Where source files of a tag are served (`{base}/{tag}/{path}`): the headers of tags other
/// than the pinned one.
pub const GITHUB_RAW_BASE: &str = "https://raw.githubusercontent.com/ggml-org/llama.cpp";

/// HTTP behaviour.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before the attempt counts as stalled.
    pub read_timeout: Duration,
    /// Retries after the first attempt, for transient failures only.
    pub retries: u32,
    /// First backoff delay; doubles each retry.
    pub backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Everything the fetcher needs to know, independent of where it came from.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Explicit cache root (`LLAMA_PREBUILT_CACHE_DIR`).
    pub cache_dir: Option<PathBuf>,
    /// Where to cache when the shared cache is not writable (a build script's `OUT_DIR`).
    pub fallback_cache_dir: Option<PathBuf>,
    /// Download base replacing GitHub's (`http(s)://` or `file://`).
    pub mirror: Option<String>,
    /// API base replacing GitHub's.
    pub api_base: Option<String>,
    /// Source-file base replacing raw.githubusercontent.com's (for headers of other tags).
    pub headers_base: Option<String>,
    /// Never touch the network; `Some(reason)` names the variable that said so.
    pub offline: Option<String>,
    /// Extra checksums file.
    pub checksums_file: Option<PathBuf>,
    /// `LLAMA_PREBUILT_SHA256`.
    pub sha256: Option<String>,
    /// `LLAMA_PREBUILT_ARCHIVE`.
    pub archive: Option<PathBuf>,
    /// `GITHUB_TOKEN`.
    pub github_token: Option<String>,
    /// HTTP behaviour.
    pub http: HttpSettings,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (a build script passes a getter that also emits
    /// `rerun-if-env-changed`). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let truthy = |v: &str| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        };
        let offline = if get(vars::OFFLINE).is_some_and(|v| truthy(&v)) {
            Some(format!("{}=1", vars::OFFLINE))
        } else if get(vars::CARGO_NET_OFFLINE).is_some_and(|v| truthy(&v)) {
            Some(format!("{}=true", vars::CARGO_NET_OFFLINE))
        } else {
            None
        };
        let mut http = HttpSettings::default();
        if let Some(secs) = get(vars::TIMEOUT)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
        {
            http.read_timeout = Duration::from_secs_f64(secs);
        }
        Config {
            cache_dir: get(vars::CACHE_DIR).map(PathBuf::from),
            fallback_cache_dir: None,
            mirror: get(vars::MIRROR).map(|m| m.trim_end_matches('/').to_string()),
            api_base: get(vars::API_URL).map(|m| m.trim_end_matches('/').to_string()),
            headers_base: get(vars::HEADERS_URL).map(|m| m.trim_end_matches('/').to_string()),
            offline,
            checksums_file: get(vars::CHECKSUMS).map(PathBuf::from),
            sha256: get(vars::SHA256),
            archive: get(vars::ARCHIVE).map(PathBuf::from),
            github_token: get(vars::GITHUB_TOKEN),
            http,
        }
    }

    /// Base URL assets are downloaded from.
    pub fn download_base(&self) -> &str {
        self.mirror.as_deref().unwrap_or(GITHUB_DOWNLOAD_BASE)
    }

    /// Base URL of the release API.
    pub fn api_base(&self) -> &str {
        self.api_base.as_deref().unwrap_or(GITHUB_API_BASE)
    }

    /// Base URL of source files (headers of other tags).
    pub fn headers_base(&self) -> &str {
        self.headers_base.as_deref().unwrap_or(GITHUB_RAW_BASE)
    }

    /// URL of one asset.
    pub fn asset_url(&self, tag: &str, asset: &str) -> String {
        format!("{}/{tag}/{asset}", self.download_base())
    }

    /// The directory assets are copied from when the mirror is a `file://` URL.
    pub fn mirror_dir(&self) -> Option<PathBuf> {
        self.mirror.as_deref().and_then(crate::files::file_url_path)
    }

    /// Offline policy for release-API calls: an error naming `what` needed `url`.
    pub fn require_api(&self, what: &str, url: &str) -> Result<()> {
        match &self.offline {
            Some(reason) => Err(Error::OfflineApi {
                what: what.to_string(),
                url: url.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Offline policy for asset downloads: an error naming the asset, its URL, the cache that
    /// misses it and the ways out.
    pub fn require_online(
        &self,
        what: &str,
        asset: &str,
        url: &str,
        cache_dir: &Path,
    ) -> Result<()> {
        match &self.offline {
            Some(reason) => Err(Error::OfflineMiss {
                asset: asset.to_string(),
                url: url.to_string(),
                cache_dir: cache_dir.to_path_buf(),
                reason: format!("{reason}; needed to {what}"),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn empty_means_unset() {
        let c = cfg(&[(vars::MIRROR, ""), (vars::OFFLINE, " ")]);
        assert!(c.mirror.is_none() && c.offline.is_none());
        assert_eq!(
            c.asset_url("b1", "a.zip"),
            format!("{GITHUB_DOWNLOAD_BASE}/b1/a.zip")
        );
    }

    #[test]
    fn offline_from_either_variable() {
        assert_eq!(
            cfg(&[(vars::OFFLINE, "1")]).offline.as_deref(),
            Some("LLAMA_PREBUILT_OFFLINE=1")
        );
        assert_eq!(
            cfg(&[(vars::CARGO_NET_OFFLINE, "true")]).offline.as_deref(),
            Some("CARGO_NET_OFFLINE=true")
        );
        assert!(cfg(&[(vars::OFFLINE, "0")]).offline.is_none());
    }

    #[test]
    fn mirror_trailing_slash_is_trimmed() {
        let c = cfg(&[
            (vars::MIRROR, "http://127.0.0.1:9/dl/"),
            (vars::TIMEOUT, "2.5"),
        ]);
        assert_eq!(c.asset_url("b1", "a.zip"), "http://127.0.0.1:9/dl/b1/a.zip");
        assert_eq!(c.http.read_timeout, Duration::from_millis(2500));
    }

    /// Set by cargo for build scripts; never user overrides, so not in `vars::ALL`.
    fn set_by_cargo(name: &str) -> bool {
        name.starts_with("CARGO_CFG_")
            || name.starts_with("CARGO_FEATURE_")
            || ["CARGO_MANIFEST_DIR", "OUT_DIR", "TARGET", "HOST"].contains(&name)
    }

    /// Every `.rs` file under `dir`.
    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(rust_files(&p));
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
        out
    }

    /// The string literals that directly follow each `opener` (e.g. `var("`), when they look
    /// like a variable name.
    fn names_after<'a>(text: &'a str, opener: &str) -> Vec<&'a str> {
        text.match_indices(opener)
            .filter_map(|(i, _)| {
                let rest = &text[i + opener.len()..];
                let name = &rest[..rest.find('"')?];
                let is_name = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                is_name.then_some(name)
            })
            .collect()
    }

    #[test]
    fn vars_all_lists_every_variable_the_code_reads() {
        let fetch = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = rust_files(&fetch.join("src"));
        // In the workspace (not in a packaged crate), the CLI and the build script too.
        let workspace = fetch.parent().expect("fetch/ has a parent");
        if workspace.join("cli").join("src").is_dir() {
            sources.extend(rust_files(&workspace.join("cli").join("src")));
            sources.push(workspace.join("build.rs"));
        }
        let mut missing = Vec::new();
        for file in &sources {
            let text = std::fs::read_to_string(file).unwrap();
            // Any whole literal in our namespace (constants, help texts naming one variable).
            let ours = names_after(&text, "\"LLAMA_")
                .into_iter()
                .map(|rest| format!("LLAMA_{rest}"));
            // Any variable read by a literal name.
            let read = ["var(\"", "var_os(\"", "env(\""]
                .iter()
                .flat_map(|opener| names_after(&text, opener))
                .filter(|name| !set_by_cargo(name))
                .map(str::to_string);
            for name in ours.chain(read) {
                if !vars::ALL.contains(&name.as_str()) {
                    missing.push(format!("{name} ({})", file.display()));
                }
            }
        }
        // And every constant of the `vars` module.
        let own = std::fs::read_to_string(fetch.join("src").join("config.rs")).unwrap();
        let module = &own[..own.find("pub const ALL").unwrap()];
        for name in names_after(module, ": &str = \"") {
            if !vars::ALL.contains(&name) {
                missing.push(format!("{name} (a constant of the vars module)"));
            }
        }
        assert!(missing.is_empty(), "read but not in vars::ALL: {missing:?}");
        assert!(vars::ALL.contains(&vars::HEADERS_URL));
    }
}
