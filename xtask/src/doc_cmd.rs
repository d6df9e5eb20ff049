//! `cargo xtask doc`: `cargo doc --no-deps --workspace` with `RUSTDOCFLAGS="-D warnings"`
//! (broken intra-doc links, bad code-block attributes, ...). Documenting the sys crate runs its
//! build script, which needs the libraries, so like `lint` it runs against the fixture mirror.

use crate::prereqs;
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("doc: usage: cargo xtask doc".into());
    }
    prereqs::ensure(&prereqs::BUILD.iter().collect::<Vec<_>>())?;
    let world = World::start()?;
    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root())
        .args(["doc", "--no-deps", "--workspace"])
        .env("RUSTDOCFLAGS", "-D warnings");
    for (k, v) in world.env(world::fixture_cache_dir()) {
        cmd.env(k, v);
    }
    prereqs::run(&mut cmd)
}
