//! What to fetch when the command line does not say: the same environment variables the build
//! script reads, then the same defaults. Empty values count as unset, as in the build script.

use std::path::PathBuf;

use llama_prebuilt_fetch::{Config, PINNED_TAG, Target, cache, vars};

use crate::error::CliError;

/// A value and where it came from (`--version`, `LLAMA_PREBUILT_VERSION`, `pinned`, ...).
#[derive(Debug, Clone)]
pub struct Chosen {
    pub value: String,
    pub source: String,
}

/// A non-empty environment variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn chosen(
    flag: Option<&str>,
    flag_name: &str,
    var: &str,
    default: &str,
    default_name: &str,
) -> Chosen {
    if let Some(v) = flag {
        Chosen {
            value: v.trim().to_string(),
            source: flag_name.into(),
        }
    } else if let Some(v) = env(var) {
        Chosen {
            value: v.trim().to_string(),
            source: var.into(),
        }
    } else {
        Chosen {
            value: default.into(),
            source: default_name.into(),
        }
    }
}

/// The release tag (or `newest`): `--version`, else `LLAMA_PREBUILT_VERSION`, else the pinned tag.
pub fn version(flag: Option<&str>) -> Chosen {
    chosen(flag, "--version", vars::VERSION, PINNED_TAG, "pinned")
}

/// The variant: `--variant`, else `LLAMA_PREBUILT_VARIANT`, else `cpu`.
pub fn variant(flag: Option<&str>) -> Chosen {
    chosen(flag, "--variant", vars::VARIANT, "cpu", "default")
}

/// The target: `--target`, else the machine this tool runs on.
pub fn target(flag: Option<&str>) -> (Target, &'static str) {
    match flag {
        Some(t) => (Target::from_triple(t.trim()), "--target"),
        None => (Target::host(), "this machine"),
    }
}

/// The fetch configuration from the environment.
pub fn config() -> Config {
    Config::from_env()
}

/// The cache root without creating or probing it (for listing and cleaning).
pub fn cache_root(config: &Config) -> Result<PathBuf, CliError> {
    config
        .cache_dir
        .clone()
        .or_else(cache::default_root)
        .ok_or_else(|| {
            CliError::new(format!(
                "no cache directory is known (no home directory)\nhelp: set {} to a directory",
                vars::CACHE_DIR
            ))
        })
}
