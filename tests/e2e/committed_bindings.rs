//! Committed bindings for every supported target: without the `bindgen` feature (hence without
//! libclang), the sys crate builds for each target from `bindings/<triple>.rs`, and their layout
//! assertions hold for that target (`cargo check` evaluates them).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every target with committed bindings (the list `cargo xtask bindings` writes and `cargo xtask
/// test` installs the rust-std of).
pub const TARGETS: &[&str] = llama_prebuilt_test_support::COMMITTED_BINDINGS_TARGETS;

/// The repository root (the sys crate's manifest dir).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with how to install `triple`'s standard library when it is missing.
pub fn require_rust_target(triple: &str) {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", triple])
        .output()
        .unwrap_or_else(|e| panic!("cannot run rustc: {e}"));
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_std = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
        })
        .unwrap_or(false);
    assert!(
        has_std,
        "the Rust standard library for {triple} is not installed; run `rustup target add {triple}` \
         (`cargo xtask test` installs it)"
    );
}

/// The newest `llama-prebuilt-sys-*/out/bindings.rs` of `triple` below `target_dir`.
fn used_bindings(target_dir: &Path, triple: &str) -> PathBuf {
    let build = target_dir.join(triple).join("debug").join("build");
    std::fs::read_dir(&build)
        .unwrap_or_else(|e| panic!("{}: {e}", build.display()))
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("llama-prebuilt-sys-")
        })
        .map(|e| e.path().join("out").join("bindings.rs"))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no bindings.rs for {triple} below {}", build.display()))
}

#[test]
fn every_supported_target_builds_from_its_committed_bindings_without_bindgen() {
    let _g = super::serial();
    // The list above is the set of committed files (`cargo xtask bindings` writes one per
    // target of its own list), so neither can grow without the other.
    let mut committed: Vec<String> = std::fs::read_dir(repo().join("bindings"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    committed.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    listed.sort();
    assert_eq!(committed, listed, "bindings/*.rs and TARGETS");
    let app = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[package]\nname = \"bindings-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nllama-prebuilt-sys = {{ path = {:?}, default-features = false }}\n\n\
         [workspace]\n",
        repo().display().to_string()
    );
    std::fs::write(app.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(repo().join("Cargo.lock"), app.path().join("Cargo.lock")).unwrap();
    std::fs::create_dir_all(app.path().join("src")).unwrap();
    std::fs::write(app.path().join("src/lib.rs"), "").unwrap();
    let target_dir = app.path().join("target");
    for triple in TARGETS {
        require_rust_target(triple);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["check", "-p", "llama-prebuilt-sys", "--target", triple])
            .current_dir(app.path())
            .env("CARGO_TARGET_DIR", &target_dir)
            // docs.rs mode: bindings only, nothing downloaded or linked.
            .env("DOCS_RS", "1");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LLAMA_") || k.starts_with("BINDGEN_") {
                cmd.env_remove(&*k);
            }
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "cargo check --target {triple}:\n{stderr}"
        );
        assert!(
            !stderr.contains("Compiling bindgen") && !stderr.contains("warning: llama-prebuilt"),
            "{triple}: no bindgen, no warning:\n{stderr}"
        );
        let used = std::fs::read(used_bindings(&target_dir, triple)).unwrap();
        let committed =
            std::fs::read(repo().join("bindings").join(format!("{triple}.rs"))).unwrap();
        assert!(
            used == committed,
            "{triple}: the build did not use bindings/{triple}.rs"
        );
    }
}
