//! `cargo xtask test [args for cargo test]`: the whole test suite, offline.
//!
//! Installs what is missing (cmake, libclang, the aarch64 cross tools, MinGW-w64, wine, the
//! Vulkan loader, lavapipe and glslc, the Rust targets of every committed-bindings target), builds
//! or loads the llama.cpp fixture, serves it on a loopback mirror, and runs
//! `cargo test --workspace` with the sys crate pointed at that mirror.

use crate::prereqs;
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    // Every Debian package in one `apt-get update` + `install` (a new machine pays the index
    // download once); then the Rust targets, which `rustup target add` fetches one by one.
    let tools: Vec<&prereqs::Tool> = prereqs::BUILD
        .iter()
        .chain(prereqs::CROSS)
        .chain(prereqs::WINDOWS_GNU)
        .chain(prereqs::VULKAN)
        .chain(prereqs::wine::WINE)
        .collect();
    prereqs::ensure(&tools)?;
    prereqs::ensure_rust_target("aarch64-unknown-linux-gnu")?;
    prereqs::macos::ensure()?;
    prereqs::ensure_rust_target("x86_64-pc-windows-gnu")?;
    prereqs::wine::ensure()?;

    let world = World::start()?;
    eprintln!(
        "xtask: serving llama.cpp {} (built from source) at {}",
        world.fixture.tag,
        world.mirror.download_base()
    );
    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(args);
    for (k, v) in world.env(world::fixture_cache_dir()) {
        cmd.env(k, v);
    }
    prereqs::run(&mut cmd)
}
