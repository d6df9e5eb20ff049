//! # llama-prebuilt-fetch
//!
//! Resolves, downloads, verifies, extracts and caches the official prebuilt
//! [llama.cpp](https://github.com/ggml-org/llama.cpp) release binaries. It is the single
//! implementation behind the `llama-prebuilt-sys` build script and the `llama-prebuilt` CLI
//! (the safe crate does not use it at run time: it links what the build script staged).
//!
//! The data flows one way: **target + tag + variant → asset name → trusted digest → verified
//! archive in the cache → extracted tree → library directory.**
//!
//! - Nothing unverified is ever cached: every byte is hashed while it streams and checked against
//!   a digest from the embedded `checksums.toml`, a checksums file, `LLAMA_PREBUILT_SHA256` or the
//!   GitHub API, in that order; the result says which.
//! - Concurrent builds download once (a per-asset file lock) and publish atomically (rename from
//!   a temporary directory).
//! - `LLAMA_PREBUILT_OFFLINE=1` / `CARGO_NET_OFFLINE=true` never touch the network.
//!
//! ```no_run
//! use llama_prebuilt_fetch::{Config, Fetcher, Request, Target};
//!
//! let fetcher = Fetcher::new(Config::from_env())?;
//! let installed = fetcher.ensure(&Request::new("b10199", Target::host()))?;
//! println!("libllama is in {}", installed.lib_dir.display());
//! # Ok::<_, llama_prebuilt_fetch::Error>(())
//! ```

pub mod asset;
pub mod bindings;
pub mod cache;
pub mod checksums;
pub mod config;
pub mod digest;
mod error;
pub mod extract;
mod fetcher;
pub mod files;
pub mod hashing;
pub mod headers;
pub mod host_probe;
pub mod http;
pub mod implib;
mod install;
pub mod libdir;
pub mod linking;
pub mod manifest;
mod obtain;
pub mod progress;
pub mod release;
mod resolve;
pub mod target;
pub mod trust;
pub mod variant_auto;

pub use asset::{PLATFORMS, Platform};
pub use cache::Cache;
pub use config::{Config, HttpSettings, vars};
pub use error::{Error, Result};
pub use fetcher::Fetcher;
pub use files::{file_url_path, verify_file};
pub use install::{Installed, Repair};
pub use progress::{Event, Progress};
pub use resolve::{Plan, Request};
pub use target::Target;
pub use trust::{DigestSource, Expected};
pub use variant_auto::AutoChoice;

/// The release tag this version of the crates is built and tested against.
pub const PINNED_TAG: &str = "b10199";
