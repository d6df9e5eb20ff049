//! Build script of `llama-prebuilt-sys`: resolve -> fetch/verify/cache -> bindgen -> link.
//!
//! All the logic lives in `llama-prebuilt-fetch` (asset table, trust, download, cache, staging);
//! this file only strings it together. It prints nothing on success and one `error:` with what
//! to do next on failure.

use std::env;
use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::{
    libdir, linking, vars, Config, DigestSource, Fetcher, Request, Target, PINNED_TAG,
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
    println!("cargo:rerun-if-env-changed={name}");
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
        println!("cargo:rerun-if-changed={path}");
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

    let os = llama_prebuilt_fetch::Platform::for_target(&target)
        .map(|p| p.lib_os())
        .unwrap_or(libdir::LibOs::Linux);
    let lib_source = match var(vars::LIB_DIR) {
        Some(dir) => {
            libdir::locate(Path::new(&dir), os)
                .map_err(|e| format!("LLAMA_LIB_DIR={dir}: {e}"))?
                .dir
        }
        None => fetch(&tag, &target, &out_dir)?,
    };

    let staged = out_dir.join("lib");
    linking::stage(&lib_source, &staged, os).map_err(|e| {
        format!(
            "cannot stage the libraries from {} in {}: {e}",
            lib_source.display(),
            staged.display()
        )
    })?;
    if env::var_os("CARGO_FEATURE_COPY_DYLIBS").is_some() {
        if let Some(profile) = linking::profile_dir(&out_dir) {
            linking::stage(&lib_source, &profile, os).map_err(|e| {
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
    println!("cargo:include={}", include_dir.display());
    Ok(())
}

/// Headers must match the binaries: the vendored ones are the pinned tag's; any other tag
/// needs `LLAMA_INCLUDE_DIR` (a silent mismatch would be undefined behaviour).
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
                "cargo:warning=llama-prebuilt: headers of {tag} fetched from {} without a published digest \
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

fn fetch(tag: &str, target: &Target, out_dir: &Path) -> Result<PathBuf, String> {
    let variant = var(vars::VARIANT).unwrap_or_else(|| "cpu".to_string());
    let fetcher = fetcher(out_dir)?;
    let request = Request {
        tag: tag.to_string(),
        target: target.clone(),
        variant,
    };
    let installed = fetcher.ensure(&request).map_err(|e| e.to_string())?;
    if let Some(reason) = &installed.repaired {
        println!(
            "cargo:warning=llama-prebuilt: repaired cache entry of {} ({reason})",
            installed.asset
        );
    }
    if installed.digest_source == DigestSource::GithubApi {
        // Trust on first use is weaker than a pinned digest: say so once, when it happens.
        if installed.downloaded {
            println!(
                "cargo:warning=llama-prebuilt: {} verified against {}; pin it in a checksums file for reproducible builds",
                installed.asset, installed.digest_source
            );
        }
    }
    Ok(installed.lib_dir)
}

fn emit_link(staged: &Path, target: &Target) {
    println!("cargo:rustc-link-search=native={}", staged.display());
    for lib in ["llama", "ggml", "ggml-base"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // rpath for this package's own tests and examples; dependents use the staged dir through
    // cargo's dynamic-library path, or add `$ORIGIN` themselves (README).
    match target.os.as_str() {
        "linux" | "android" | "freebsd" => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", staged.display());
        }
        "macos" | "ios" => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,@loader_path");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", staged.display());
        }
        _ => {}
    }
    println!("cargo:lib_dir={}", staged.display());
}

fn emit_constants(tag: &str, lib_dir: &Path) {
    println!("cargo:version={tag}");
    println!("cargo:rustc-env=LLAMA_PREBUILT_TAG={tag}");
    println!(
        "cargo:rustc-env=LLAMA_PREBUILT_LIB_DIR={}",
        lib_dir.display()
    );
}

mod bindings {
    //! bindgen over `wrapper.h`, falling back to the committed bindings of the pinned tag when
    //! libclang cannot be loaded (or the `bindgen` feature is off).
    use super::*;

    pub fn write(
        manifest_dir: &Path,
        include_dir: &Path,
        target: &Target,
        out_dir: &Path,
    ) -> Result<(), String> {
        let out = out_dir.join("bindings.rs");
        let committed = manifest_dir
            .join("bindings")
            .join(format!("{}.rs", target.triple));
        let vendored = include_dir == manifest_dir.join("vendor-headers");
        match generate(manifest_dir, include_dir, target, &out) {
            Ok(()) => return Ok(()),
            Err(why) if vendored && committed.is_file() => {
                if cfg!(feature = "bindgen") {
                    println!(
                        "cargo:warning=llama-prebuilt-sys: {why}; using the pre-generated bindings of {PINNED_TAG}. \
                         Install libclang (Debian/Ubuntu: apt-get install libclang-dev) or set LIBCLANG_PATH to generate them"
                    );
                }
            }
            Err(why) => {
                let help = if cfg!(feature = "bindgen") {
                    "install libclang (Debian/Ubuntu: apt-get install libclang-dev; macOS: \
                     xcode-select --install) or set LIBCLANG_PATH"
                } else {
                    "enable the `bindgen` feature (of llama-prebuilt-sys, or of llama-prebuilt) \
                     and have libclang installed"
                };
                let scope = if vendored {
                    format!(
                        "pre-generated bindings exist for {}",
                        committed_targets(manifest_dir)
                    )
                } else {
                    "pre-generated bindings exist only for the vendored headers".to_string()
                };
                return Err(format!(
                    "cannot generate bindings for {}: {why}\nhelp: {help}; {scope}",
                    target.triple
                ));
            }
        }
        std::fs::copy(&committed, &out)
            .map_err(|e| format!("cannot copy {}: {e}", committed.display()))?;
        Ok(())
    }

    /// The targets with committed bindings, for error messages.
    fn committed_targets(manifest_dir: &Path) -> String {
        let mut names: Vec<String> = std::fs::read_dir(manifest_dir.join("bindings"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".rs")
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if names.is_empty() {
            "no target".into()
        } else {
            names.join(", ")
        }
    }

    #[cfg(feature = "bindgen")]
    fn generate(
        manifest_dir: &Path,
        include_dir: &Path,
        target: &Target,
        out: &Path,
    ) -> Result<(), String> {
        let builder = configure(manifest_dir, include_dir, &target.triple);
        // bindgen panics when libclang cannot be loaded; turn that into a fallback.
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
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                return Err(format!(
                    "libclang could not be loaded ({})",
                    msg.unwrap_or_default().lines().next().unwrap_or("")
                ));
            }
        };
        bindings
            .write_to_file(out)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))
    }

    #[cfg(not(feature = "bindgen"))]
    fn generate(_: &Path, _: &Path, _: &Target, _: &Path) -> Result<(), String> {
        Err("the `bindgen` feature is off".into())
    }

    /// One configuration for build.rs and `cargo xtask bindings`, so committed and fresh
    /// bindings can be compared byte for byte.
    #[cfg(feature = "bindgen")]
    fn configure(manifest_dir: &Path, include_dir: &Path, triple: &str) -> bindgen::Builder {
        bindgen::Builder::default()
            .header(manifest_dir.join("wrapper.h").display().to_string())
            .clang_arg(format!("-I{}", include_dir.display()))
            .clang_arg(format!("--target={triple}"))
            .allowlist_function("(llama|ggml|gguf)_.*")
            .allowlist_type("(llama|ggml|gguf)_.*")
            .allowlist_var("(LLAMA|GGML|GGUF)_.*")
            .prepend_enum_name(false)
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(true)
            .use_core()
            .formatter(bindgen::Formatter::Prettyplease)
    }
}
