//! The offline "GitHub" the tests and the demo build against: the fixture release on a
//! loopback mirror, and the environment variables that point a build at it.

use std::path::PathBuf;

use llama_prebuilt_test_support::fixture::{self, Fixture};
use llama_prebuilt_test_support::mirror::Mirror;

/// A running mirror with the fixture release; dropping it stops the server.
pub(crate) struct World {
    pub mirror: Mirror,
    pub fixture: &'static Fixture,
}

impl World {
    pub(crate) fn start() -> Result<World, String> {
        let fixture = fixture::fixture()?;
        let mirror = Mirror::start().map_err(|e| format!("starting the mirror: {e}"))?;
        fixture.serve(&mirror);
        Ok(World { mirror, fixture })
    }

    /// Variables that make `llama-prebuilt-sys` build against this mirror: the fixture's tag
    /// (`b10199-fixture`: b10199's source, not the official bytes), its headers, its checksums, and a cache dir of its own
    /// so the user's cache is not mixed with fixture builds.
    pub(crate) fn env(&self, cache_dir: PathBuf) -> Vec<(String, String)> {
        vec![
            ("LLAMA_PREBUILT_MIRROR".into(), self.mirror.download_base()),
            ("LLAMA_PREBUILT_API_URL".into(), self.mirror.api_base()),
            ("LLAMA_PREBUILT_HEADERS_URL".into(), self.mirror.raw_base()),
            (
                "LLAMA_PREBUILT_CHECKSUMS".into(),
                self.fixture.checksums_path.display().to_string(),
            ),
            ("LLAMA_PREBUILT_VERSION".into(), self.fixture.tag.clone()),
            (
                "LLAMA_INCLUDE_DIR".into(),
                self.fixture.include_dir.display().to_string(),
            ),
            (
                "LLAMA_PREBUILT_CACHE_DIR".into(),
                cache_dir.display().to_string(),
            ),
        ]
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// A cache dir for fixture builds, under the workspace's target dir (kept between runs).
pub(crate) fn fixture_cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("xtask").join("llama-prebuilt-cache")
}

/// `cargo`, as cargo itself names it for subprocesses.
pub(crate) fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}
