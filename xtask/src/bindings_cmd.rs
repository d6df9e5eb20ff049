//! `cargo xtask bindings [--check]`: the committed bindings of the pinned tag, one file per
//! target under `bindings/`, which the build falls back to when libclang is missing.
//!
//! They are produced by the sys crate's own build script (with `DOCS_RS=1`, so nothing is
//! downloaded), so they cannot drift from what a build with libclang generates. `--check`
//! regenerates and fails if anything differs (CI runs it).
//!
//! Linux targets read this machine's C library headers (the host's, the aarch64 cross
//! sysroot's); macOS and Windows targets read `bindings/include-shim/` instead, since their
//! headers are not here (the sys crate's build script decides, `SystemHeaders::choose`). The
//! bindings declare `FILE` opaque themselves, so they do not depend on whose `stdio.h` was read.

use std::path::{Path, PathBuf};

use crate::prereqs;
use crate::world;

/// Targets with committed bindings: every target the release table supports but s390x.
pub(crate) const TARGETS: &[&str] = llama_prebuilt_test_support::COMMITTED_BINDINGS_TARGETS;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("bindings: usage: cargo xtask bindings [--check]".into()),
    };
    prereqs::ensure(
        &prereqs::BUILD
            .iter()
            .chain(prereqs::CROSS)
            .collect::<Vec<_>>(),
    )?;
    let root = world::workspace_root();
    let target_dir = world::fixture_cache_dir().with_file_name("bindings-target");
    let mut stale = Vec::new();
    for triple in TARGETS {
        prereqs::ensure_rust_target(triple)?;
        let fresh = generate(&root, &target_dir, triple, None)?;
        let committed = root.join("bindings").join(format!("{triple}.rs"));
        if check {
            if std::fs::read(&committed).ok().as_deref() != Some(fresh.as_slice()) {
                stale.push(committed.display().to_string());
            }
            if has_real_headers(triple) {
                // The shim stands in for the headers macOS and Windows targets lack here; where
                // real ones exist, it must give the very same bindings.
                let shimmed = generate_with(&root, &target_dir, triple, None, true)?;
                if shimmed != fresh {
                    return Err(format!(
                        "bindings for {triple} from bindings/include-shim/ differ from those of \
                         the real C library headers; the shim no longer describes them"
                    ));
                }
                eprintln!("bindings: {triple}: the shim gives the same bindings as real headers");
            }
        } else {
            std::fs::create_dir_all(committed.parent().unwrap()).map_err(|e| e.to_string())?;
            std::fs::write(&committed, &fresh)
                .map_err(|e| format!("{}: {e}", committed.display()))?;
            eprintln!("bindings: wrote {}", committed.display());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "committed bindings differ from a fresh run: {}\nhelp: run `cargo xtask bindings` and commit",
            stale.join(", ")
        ))
    }
}

/// The bindings the sys crate at `root` generates for `triple`: from its `vendor-headers/`, or
/// from `include_dir` (`LLAMA_INCLUDE_DIR`; `cargo xtask bump` reads a new tag's headers so).
pub(crate) fn generate(
    root: &Path,
    target_dir: &Path,
    triple: &str,
    include_dir: Option<&Path>,
) -> Result<Vec<u8>, String> {
    generate_with(root, target_dir, triple, include_dir, false)
}

/// Whether this machine has `triple`'s own C library headers: Linux's (the host's and the
/// aarch64 cross sysroot's, which `prereqs::CROSS` installs) and mingw-w64's when installed.
fn has_real_headers(triple: &str) -> bool {
    triple.ends_with("-linux-gnu")
        || (triple == "x86_64-pc-windows-gnu"
            && Path::new("/usr/x86_64-w64-mingw32/include/stdio.h").is_file())
}

/// [`generate`], with `shim` forcing `bindings/include-shim/` even where real headers exist.
fn generate_with(
    root: &Path,
    target_dir: &Path,
    triple: &str,
    include_dir: Option<&Path>,
    shim: bool,
) -> Result<Vec<u8>, String> {
    let mut cmd = world::cargo();
    if shim {
        cmd.env(llama_prebuilt_fetch::config::vars::BINDINGS_SHIM, "1");
    } else {
        cmd.env_remove(llama_prebuilt_fetch::config::vars::BINDINGS_SHIM);
    }
    if let Some(dir) = include_dir {
        cmd.env("LLAMA_INCLUDE_DIR", dir);
    } else {
        cmd.env_remove("LLAMA_INCLUDE_DIR");
    }
    let out = cmd
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "llama-prebuilt-sys",
            "--target",
            triple,
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("DOCS_RS", "1")
        .env_remove("LLAMA_PREBUILT_VERSION")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "building llama-prebuilt-sys for {triple} failed:\n{stderr}"
        ));
    }
    if stderr.contains("pre-generated bindings") {
        return Err(format!(
            "bindgen did not run for {triple} (libclang missing?):\n{stderr}"
        ));
    }
    let file = newest_bindings(&target_dir.join(triple).join("debug").join("build"))
        .ok_or_else(|| format!("no bindings.rs produced for {triple}"))?;
    std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))
}

/// The most recently written `llama-prebuilt-sys-*/out/bindings.rs` below `build`.
fn newest_bindings(build: &Path) -> Option<PathBuf> {
    std::fs::read_dir(build)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("llama-prebuilt-sys-")
        })
        .map(|e| e.path().join("out").join("bindings.rs"))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}
