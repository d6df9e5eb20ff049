//! Build script of `llama-prebuilt-sys`: resolve -> fetch/verify/cache -> bindgen -> link.
//!
//! All the logic lives in `llama-prebuilt-fetch` (asset table, trust, download, cache, staging);
//! this file only strings it together. It prints nothing on success (but one warning saying what
//! `LLAMA_PREBUILT_VARIANT=auto` chose, and warnings about trust on first use or repaired cache
//! entries) and one `error:` with what to do next on failure. Every directive uses the `cargo::` form (MSRV 1.89); links metadata
//! is `cargo::metadata=KEY=VALUE`, which dependents read as `DEP_LLAMA_<KEY>`.

use std::env;
use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::{
    Config, DigestSource, Fetcher, PINNED_TAG, Request, Target, asset, host_probe, libdir, linking,
    vars,
};

fn main() {
    if let Err(message) = run() {
        let mut lines = message.lines();
        println!(
            "cargo::error={}",
            lines.next().unwrap_or("llama-prebuilt-sys build failed")
        );
        for line in lines {
            println!("cargo::error={line}");
        }
        std::process::exit(1);
    }
}

/// Reads a variable, declaring it so cargo reruns the script when it changes; empty = unset.
fn var(name: &str) -> Option<String> {
    println!("cargo::rerun-if-env-changed={name}");
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn run() -> Result<(), String> {
    for name in vars::ALL {
        var(name);
    }
    for path in [
        "build.rs",
        "wrapper.h",
        "vendor-headers",
        "checksums.toml",
        "bindings",
    ] {
        println!("cargo::rerun-if-changed={path}");
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let target = Target::from_cargo_env().ok_or("TARGET is not set; run through cargo")?;
    let tag = var(vars::VERSION).unwrap_or_else(|| PINNED_TAG.to_string());
    let include_dir = headers_for(&tag, &manifest_dir, &out_dir)?;

    if var(vars::DOCS_RS).is_some() {
        // docs.rs has no network and needs no libraries: bindings only.
        bindings::write(&manifest_dir, &include_dir, &target, &out_dir)?;
        emit_constants(&tag, Path::new(""));
        return Ok(());
    }

    // The libraries, plus (CUDA variants) the CUDA runtime's, staged into one directory.
    let (lib_source, runtime, os) = match var(vars::LIB_DIR) {
        Some(dir) => {
            let os = lib_os(&target)?;
            let found = libdir::locate(Path::new(&dir), os)
                .map_err(|e| format!("LLAMA_LIB_DIR={dir}: {e}"))?;
            (found.dir, None, os)
        }
        // A fetched target is in the release table, so its naming is known.
        None => {
            let (lib, runtime) = fetch(&tag, &target, &out_dir)?;
            (lib, runtime, lib_os(&target)?)
        }
    };
    let sources: Vec<&Path> = std::iter::once(lib_source.as_path())
        .chain(runtime.as_deref())
        .collect();

    let staged = out_dir.join("lib");
    for from in &sources {
        linking::stage(from, &staged, os).map_err(|e| {
            format!(
                "cannot stage the libraries from {} in {}: {e}",
                from.display(),
                staged.display()
            )
        })?;
    }
    if env::var_os("CARGO_FEATURE_COPY_DYLIBS").is_some()
        && let Some(profile) = linking::profile_dir(&out_dir)
    {
        for from in &sources {
            linking::stage(from, &profile, os).map_err(|e| {
                format!(
                    "cannot copy the libraries next to the artifacts in {}: {e}",
                    profile.display()
                )
            })?;
        }
    }

    bindings::write(&manifest_dir, &include_dir, &target, &out_dir)?;
    emit_link(&staged, &target);
    emit_constants(&tag, &staged);
    println!("cargo::metadata=include={}", include_dir.display());
    Ok(())
}

/// How the target names its libraries (the release table's platform, else the target OS).
fn lib_os(target: &Target) -> Result<libdir::LibOs, String> {
    asset::lib_os_for(target).ok_or_else(|| {
        format!(
            "llama-prebuilt does not know how shared libraries are named on target OS `{}` ({})\n\
             help: LLAMA_LIB_DIR works for linux, macos and windows targets",
            target.os, target.triple
        )
    })
}

/// Headers must match the binaries (a silent mismatch would be undefined behaviour):
/// `LLAMA_INCLUDE_DIR` when set; for a tag other than the pinned one, that tag's own headers,
/// fetched and cached; for the pinned tag, `vendor-headers/`: exactly b10199's (see
/// vendor-headers/ORIGIN.md). The safe crate's run-time ABI probe still checks the loaded
/// library against them.
fn headers_for(tag: &str, manifest_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = var(vars::INCLUDE_DIR) {
        let dir = PathBuf::from(dir);
        if !dir.join("llama.h").is_file() {
            return Err(format!(
                "LLAMA_INCLUDE_DIR={} has no llama.h\nhelp: point it at a directory holding llama.h and the ggml*.h headers of tag {tag}",
                dir.display()
            ));
        }
        return Ok(dir);
    }
    if tag != PINNED_TAG {
        // Another tag: its own headers, fetched from its source tree and cached.
        let headers = fetcher(out_dir)?
            .ensure_headers(tag)
            .map_err(|e| e.to_string())?;
        if headers.downloaded && !headers.pinned {
            println!(
                "cargo::warning=llama-prebuilt: headers of {tag} fetched from {} without a published digest \
                 (trusted on first download); pin them in a checksums file for reproducible builds",
                headers.base_url
            );
        }
        return Ok(headers.dir);
    }
    Ok(manifest_dir.join("vendor-headers"))
}

/// The fetcher, configured from the environment, with `OUT_DIR` as the fallback cache.
fn fetcher(out_dir: &Path) -> Result<Fetcher, String> {
    let mut config = Config::from_lookup(var);
    config.fallback_cache_dir = Some(out_dir.join("llama-prebuilt-cache"));
    Fetcher::new(config).map_err(|e| e.to_string())
}

/// The library directory of the release asset, and the CUDA runtime's for CUDA variants.
fn fetch(tag: &str, target: &Target, out_dir: &Path) -> Result<(PathBuf, Option<PathBuf>), String> {
    let mut variant = var(vars::VARIANT).unwrap_or_else(|| "cpu".to_string());
    let fetcher = fetcher(out_dir)?;
    if variant == "auto" {
        // The host's GPU decides; one warning line says what was chosen and why.
        for name in host_probe::VULKAN_VARS {
            var(name);
        }
        let host = env::var("HOST").map_err(|e| format!("HOST: {e}"))?;
        let choice = fetcher
            .auto_variant(tag, target, &host, host_probe::HostProbe::detect)
            .map_err(|e| e.to_string())?;
        println!("cargo::warning=llama-prebuilt: {}", choice.summary());
        variant = choice.variant;
    }
    let request = Request {
        tag: tag.to_string(),
        target: target.clone(),
        variant,
    };
    let installed = fetcher.ensure(&request).map_err(|e| e.to_string())?;
    if let Some(reason) = &installed.repaired {
        println!(
            "cargo::warning=llama-prebuilt: repaired cache entry of {} ({reason})",
            installed.asset
        );
    }
    if installed.digest_source == DigestSource::GithubApi {
        // Trust on first use is weaker than a pinned digest: say so once, when it happens.
        if installed.downloaded {
            println!(
                "cargo::warning=llama-prebuilt: {} verified against {}; pin it in a checksums file for reproducible builds",
                installed.asset, installed.digest_source
            );
        }
    }
    if let Some(rt) = &installed.runtime
        && rt.digest_source == DigestSource::GithubApi
        && rt.downloaded
    {
        println!(
            "cargo::warning=llama-prebuilt: {} verified against {}; pin it in a checksums file for reproducible builds",
            rt.asset, rt.digest_source
        );
    }
    Ok((installed.lib_dir, installed.runtime.map(|r| r.lib_dir)))
}

fn emit_link(staged: &Path, target: &Target) {
    println!("cargo::rustc-link-search=native={}", staged.display());
    for lib in ["llama", "ggml", "ggml-base"] {
        println!("cargo::rustc-link-lib=dylib={lib}");
    }
    // rpath for this package's own tests and examples; dependents use the staged dir through
    // cargo's dynamic-library path, or add `$ORIGIN` themselves (README).
    match target.os.as_str() {
        "linux" | "android" | "freebsd" => {
            println!("cargo::rustc-link-arg=-Wl,-rpath,$ORIGIN");
            println!("cargo::rustc-link-arg=-Wl,-rpath,{}", staged.display());
        }
        "macos" | "ios" => {
            println!("cargo::rustc-link-arg=-Wl,-rpath,@loader_path");
            println!("cargo::rustc-link-arg=-Wl,-rpath,{}", staged.display());
        }
        _ => {}
    }
    println!("cargo::metadata=lib_dir={}", staged.display());
}

fn emit_constants(tag: &str, lib_dir: &Path) {
    println!("cargo::metadata=version={tag}");
    println!("cargo::rustc-env=LLAMA_PREBUILT_TAG={tag}");
    println!(
        "cargo::rustc-env=LLAMA_PREBUILT_LIB_DIR={}",
        lib_dir.display()
    );
}

mod bindings {
    //! The bindgen call. What to do when it cannot run (committed bindings, or an error saying
    //! how to get libclang) is decided and tested in `llama_prebuilt_fetch::bindings`.
    use super::*;
    use llama_prebuilt_fetch::bindings::{BindingsPlan, Decision, SystemHeaders};

    /// C's `FILE`, declared by us instead of bindgen (which blocklists it): the headers use it
    /// only behind a pointer, and the C library's own layout of it (glibc's `_IO_FILE`, the
    /// macOS SDK's `__sFILE`, UCRT's `_iobuf`) would make the bindings depend on which libc
    /// headers were at hand. Opaque, `!Send`, `!Sync`, `!Unpin`, like any C-owned handle.
    const OPAQUE_FILE: &str = "/// C's `FILE` (opaque: only ever used behind a pointer).
#[repr(C)]
pub struct FILE {
    _opaque: [u8; 0],
    _not_send_sync_unpin: ::core::marker::PhantomData<(*mut u8, ::core::marker::PhantomPinned)>,
}
";

    pub fn write(
        manifest_dir: &Path,
        include_dir: &Path,
        target: &Target,
        out_dir: &Path,
    ) -> Result<(), String> {
        let plan = BindingsPlan {
            manifest_dir: manifest_dir.to_path_buf(),
            include_dir: include_dir.to_path_buf(),
            triple: target.triple.clone(),
            out_dir: out_dir.to_path_buf(),
            bindgen_feature: cfg!(feature = "bindgen"),
            system_headers: system_headers(target),
        };
        match plan.decide(generate(&plan)) {
            Decision::Generated => Ok(()),
            Decision::UseCommitted { from, warning } => {
                if let Some(warning) = warning {
                    println!("cargo::warning={warning}");
                }
                std::fs::copy(&from, plan.out_file())
                    .map(|_| ())
                    .map_err(|e| format!("cannot copy {}: {e}", from.display()))
            }
            Decision::Fail(message) => Err(message),
        }
    }

    /// Whether clang can read the target's own C library headers, or needs the shim.
    /// `LLAMA_PREBUILT_BINDINGS_SHIM` (set by `cargo xtask bindings --check` only) forces the
    /// shim, to compare its bindings with those of real headers.
    fn system_headers(target: &Target) -> SystemHeaders {
        if var(vars::BINDINGS_SHIM).is_some() {
            return SystemHeaders::Shim;
        }
        let host = env::var("HOST").map(|h| Target::from_triple(&h));
        let host = host.unwrap_or_else(|_| Target::host());
        // bindgen reads these itself; a user who sets one is pointing clang at real headers.
        let user_clang_args = [
            "BINDGEN_EXTRA_CLANG_ARGS".to_string(),
            format!("BINDGEN_EXTRA_CLANG_ARGS_{}", target.triple),
            format!(
                "BINDGEN_EXTRA_CLANG_ARGS_{}",
                target.triple.replace('-', "_")
            ),
        ]
        .iter()
        .any(|name| var(name).is_some());
        SystemHeaders::choose(target, &host, user_clang_args, Path::is_file)
    }

    /// Runs bindgen; `Err(why)` when it cannot (bindgen panics when libclang cannot be loaded).
    /// `cargo xtask bindings` goes through this same function (`DOCS_RS=1` builds), so the
    /// committed and fresh bindings can be compared byte for byte.
    #[cfg(feature = "bindgen")]
    fn generate(plan: &BindingsPlan) -> Result<(), String> {
        use llama_prebuilt_fetch::bindings::{
            ALLOW_FUNCTIONS, ALLOW_TYPES, ALLOW_VARS, libclang_failure,
        };
        let builder = bindgen::Builder::default()
            .header(plan.header().display().to_string())
            .clang_args(plan.clang_args())
            .allowlist_function(ALLOW_FUNCTIONS)
            .allowlist_type(ALLOW_TYPES)
            .allowlist_var(ALLOW_VARS)
            .blocklist_type("FILE")
            .allowlist_recursively(false)
            .raw_line(OPAQUE_FILE)
            .prepend_enum_name(false)
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(true)
            .use_core()
            .formatter(bindgen::Formatter::Prettyplease);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
        std::panic::set_hook(prev);
        let bindings = match result {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(format!("bindgen failed: {e}")),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied());
                return Err(libclang_failure(msg));
            }
        };
        let out = plan.out_file();
        bindings
            .write_to_file(&out)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))
    }

    #[cfg(not(feature = "bindgen"))]
    fn generate(_: &BindingsPlan) -> Result<(), String> {
        Err("the `bindgen` feature is off".into())
    }
}
