//! The small programs the benchmarks build as crates of their own (so xtask itself never
//! depends on the sys crate, whose build needs the mirror xtask starts): their sources are the
//! files in `apps/`, written into a fresh directory with a generated `Cargo.toml`.

use std::path::{Path, PathBuf};

use crate::world::{self, workspace_root};

/// The downstream app on the safe crate (`generate`, `infer`, `count`).
pub(crate) const OURS: &str = include_str!("apps/ours.rs");
/// The same app on crates.io's llama-cpp-2 (`generate`).
pub(crate) const LLAMA_CPP_2: &str = include_str!("apps/llama_cpp_2.rs");
/// One `Fetcher::ensure`, then its peak RSS.
pub(crate) const FETCH_PROBE: &str = include_str!("apps/fetch_probe.rs");

/// The llama-cpp-2 release whose llama-cpp-sys-2 is 0.1.154, the from-source baseline: its
/// llama.cpp source is b10200, one commit after the b10199 source of the fixture our side links
/// (no crates.io release carries b10199).
pub(crate) const LLAMA_CPP_2_VERSION: &str = "=0.1.154";

pub(crate) struct AppCrate {
    pub dir: PathBuf,
    pub bin: String,
}

impl AppCrate {
    /// `<target_dir>/<profile>/<bin>`.
    pub(crate) fn exe(&self, target_dir: &Path, release: bool) -> PathBuf {
        target_dir
            .join(if release { "release" } else { "debug" })
            .join(&self.bin)
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string().replace('\\', "/")
}

/// Writes (or rewrites) a crate at `dir`. `lock_from_workspace` seeds its Cargo.lock with the
/// workspace's, so the path dependencies resolve offline to the versions the workspace uses.
fn write_crate(
    dir: &Path,
    bin: &str,
    deps: &str,
    main_rs: &str,
    lock_from_workspace: bool,
) -> Result<AppCrate, String> {
    let err = |e: std::io::Error| format!("writing {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("src")).map_err(err)?;
    let manifest = format!(
        "[package]\nname = \"{bin}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{deps}\n\n[workspace]\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(err)?;
    std::fs::write(dir.join("src/main.rs"), main_rs).map_err(err)?;
    if lock_from_workspace && !dir.join("Cargo.lock").exists() {
        std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).map_err(err)?;
    }
    Ok(AppCrate {
        dir: dir.to_path_buf(),
        bin: bin.to_string(),
    })
}

/// Which features of the safe crate a downstream app asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OursFeatures {
    /// `llama-prebuilt = { path }`: bindgen at build time, copy-dylibs.
    Default,
    /// `default-features = false, features = ["copy-dylibs"]`: the committed bindings, no
    /// bindgen or libclang code compiled.
    NoBindgen,
}

impl OursFeatures {
    pub(crate) fn label(self) -> &'static str {
        match self {
            OursFeatures::Default => "default features",
            OursFeatures::NoBindgen => "`default-features = false, features = [\"copy-dylibs\"]`",
        }
    }
}

pub(crate) fn ours(dir: &Path) -> Result<AppCrate, String> {
    ours_with(dir, OursFeatures::Default)
}

pub(crate) fn ours_with(dir: &Path, features: OursFeatures) -> Result<AppCrate, String> {
    let features = match features {
        OursFeatures::Default => "",
        OursFeatures::NoBindgen => ", default-features = false, features = [\"copy-dylibs\"]",
    };
    let dep = format!(
        "llama-prebuilt = {{ path = \"{}\"{features} }}",
        path_str(&workspace_root().join("llama-prebuilt"))
    );
    let app = write_crate(dir, "bench-app", &dep, OURS, true)?;
    // The one line the README tells an application to add, so its binary finds the libraries
    // that `copy-dylibs` puts next to it.
    std::fs::write(
        dir.join("build.rs"),
        "fn main() {\n    println!(\"cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN\");\n}\n",
    )
    .map_err(|e| format!("writing {}: {e}", dir.display()))?;
    Ok(app)
}

pub(crate) fn llama_cpp_2(dir: &Path) -> Result<AppCrate, String> {
    // llama-cpp-2 asks for llama-cpp-sys-2 "0.1.154" (a caret requirement); the second line
    // pins the sys crate to exactly the b10200 source.
    let dep = format!(
        "llama-cpp-2 = \"{LLAMA_CPP_2_VERSION}\"\nllama-cpp-sys-2 = \"{LLAMA_CPP_2_VERSION}\""
    );
    write_crate(dir, "bench-app-lc2", &dep, LLAMA_CPP_2, false)
}

pub(crate) fn fetch_probe(dir: &Path) -> Result<AppCrate, String> {
    let dep = format!(
        "llama-prebuilt-fetch = {{ path = \"{}\" }}",
        path_str(&workspace_root().join("fetch"))
    );
    write_crate(dir, "fetch-probe", &dep, FETCH_PROBE, true)
}

/// `cargo build` of an app crate. `env` is added to the environment (e.g. the mirror's).
pub(crate) fn build_cmd(
    app: &AppCrate,
    target_dir: &Path,
    release: bool,
    jobs: Option<usize>,
    env: &[(String, String)],
) -> std::process::Command {
    let mut cmd = world::cargo();
    cmd.current_dir(&app.dir)
        .arg("build")
        .arg("--manifest-path")
        .arg(app.dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if release {
        cmd.arg("--release");
    }
    if let Some(j) = jobs {
        cmd.arg("-j").arg(j.to_string());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Builds quietly and returns the executable.
pub(crate) fn build(
    app: &AppCrate,
    target_dir: &Path,
    release: bool,
    env: &[(String, String)],
) -> Result<PathBuf, String> {
    eprintln!("xtask bench: building {} ...", app.bin);
    let mut cmd = build_cmd(app, target_dir, release, None, env);
    cmd.arg("--quiet");
    super::run_ok(&mut cmd)?;
    Ok(app.exe(target_dir, release))
}
