//! `cargo xtask lint`: `cargo fmt --check` and `cargo clippy --all-targets -D warnings` over the
//! whole workspace. Clippy compiles the sys crate, whose build script needs the libraries, so
//! it runs against the fixture mirror like the tests.

use crate::prereqs;
use crate::world::{self, World};

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    prereqs::run(
        world::cargo()
            .current_dir(world::workspace_root())
            .args(["fmt", "--all", "--", "--check"]),
    )
    .map_err(|e| format!("{e}\nhelp: run `cargo fmt --all`"))?;
    prereqs::ensure(&prereqs::BUILD.iter().collect::<Vec<_>>())?;
    let world = World::start()?;
    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    for (k, v) in world.env(world::fixture_cache_dir()) {
        cmd.env(k, v);
    }
    prereqs::run(&mut cmd)
}
