//! macOS, linked (not run): a downstream crate is built for `aarch64-apple-darwin` and
//! `x86_64-apple-darwin` on Linux through the normal build-script path (download from the
//! loopback mirror, verify, stage, committed bindings), linked by `zig cc` against real Mach-O
//! dylibs (the py-sync wheels' b10236 build, packed like the official archive). The produced
//! binaries' load commands must name the libraries by `@rpath` and carry the run path the
//! README tells applications to add. Nothing here can run them (no macOS).

use std::path::Path;
use std::process::Command;

use llama_prebuilt_test_support::archives::checksums_toml;
use llama_prebuilt_test_support::macos::{self, MacArch, macho};
use llama_prebuilt_test_support::mirror::Mirror;

use crate::committed_bindings::require_rust_target;

/// Calls into each of the three libraries the build links (`llama`, `ggml`, `ggml-base`), so
/// the linker must resolve a symbol in each.
const MAIN_RS: &str = r#"
use llama_prebuilt_sys as sys;

fn main() {
    unsafe {
        sys::llama_backend_init();
        sys::ggml_backend_load_all();
        println!("devices: {}", sys::ggml_backend_dev_count());
        let info = std::ffi::CStr::from_ptr(sys::llama_print_system_info());
        println!("{}", info.to_string_lossy());
        println!("ggml tensor overhead: {}", sys::ggml_tensor_overhead());
        sys::llama_backend_free();
    }
    println!("llama.cpp {} ok", sys::VERSION);
}
"#;

/// The README's line for macOS applications (beside `$ORIGIN` for Linux).
const BUILD_RS: &str = r#"fn main() {
    println!("cargo:rustc-link-arg=-Wl,-rpath,@loader_path");
}
"#;

#[test]
fn both_macos_targets_link_against_real_dylibs_by_rpath() {
    let _g = super::serial();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let mirror = Mirror::start().expect("mirror starts");
    let mut sums = Vec::new();
    for arch in MacArch::ALL {
        let release = macos::pysync_release(arch).unwrap_or_else(|e| panic!("{e}"));
        mirror.add_asset_file(release.tag, &release.asset, &release.path);
        sums.push(release);
    }
    let entries: Vec<(&str, &str, &str, u64)> = sums
        .iter()
        .map(|r| (r.tag, r.asset.as_str(), r.sha256.as_str(), r.size))
        .collect();
    let checksums = work.path().join("checksums.toml");
    std::fs::write(&checksums, checksums_toml(&entries)).unwrap();

    // The sys crate without bindgen: the committed macOS bindings, which describe the vendored
    // (b10199) headers given as LLAMA_INCLUDE_DIR. The py-sync build is b10236, whose headers
    // no package carries; the linker only needs the called symbols to exist (they do), and the
    // program is never run.
    let app = work.path().join("mac-app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"mac-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nllama-prebuilt-sys = {{ path = {:?}, default-features = false, \
             features = [\"copy-dylibs\"] }}\n\n[workspace]\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), app.join("Cargo.lock")).unwrap();
    std::fs::write(app.join("build.rs"), BUILD_RS).unwrap();
    std::fs::write(app.join("src/main.rs"), MAIN_RS).unwrap();

    for arch in MacArch::ALL {
        let triple = arch.triple();
        require_rust_target(triple);
        let linker = macos::zig_linker(arch).unwrap_or_else(|e| panic!("{e}"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--target", triple]).current_dir(&app);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LLAMA_") || k.starts_with("BINDGEN_") || k == "DOCS_RS" {
                cmd.env_remove(&*k);
            }
        }
        let linker_var = format!(
            "CARGO_TARGET_{}_LINKER",
            triple.to_uppercase().replace('-', "_")
        );
        cmd.env(linker_var, &linker)
            .env("CARGO_TARGET_DIR", work.path().join("target"))
            .env("LLAMA_PREBUILT_MIRROR", mirror.download_base())
            .env("LLAMA_PREBUILT_API_URL", mirror.api_base())
            .env("LLAMA_PREBUILT_HEADERS_URL", mirror.raw_base())
            .env("LLAMA_PREBUILT_CHECKSUMS", &checksums)
            .env("LLAMA_PREBUILT_CACHE_DIR", work.path().join("cache"))
            .env("LLAMA_PREBUILT_VERSION", macos::PYSYNC_TAG)
            .env("LLAMA_INCLUDE_DIR", repo.join("vendor-headers"));
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "cargo build --target {triple}:\n{stderr}"
        );
        assert!(!stderr.contains("Compiling bindgen"), "{stderr}");
        let asset = format!(
            "llama-{}-bin-macos-{}.tar.gz",
            macos::PYSYNC_TAG,
            arch.asset_arch()
        );
        assert_eq!(
            mirror.hits(macos::PYSYNC_TAG, &asset),
            1,
            "{asset} downloaded once"
        );

        let debug = work.path().join("target").join(triple).join("debug");
        let bin = std::fs::read(debug.join("mac-app")).unwrap();
        let links = macho::read_links(&bin).unwrap_or_else(|e| panic!("{triple}: {e}"));
        assert_eq!(links.cpu_type, arch.cpu_type(), "{triple}: {links:?}");
        for lib in [
            "libllama.0.dylib",
            "libggml.0.dylib",
            "libggml-base.0.dylib",
        ] {
            assert!(
                links.loads.contains(&format!("@rpath/{lib}")),
                "{triple}: no LC_LOAD_DYLIB @rpath/{lib}: {links:?}"
            );
        }
        // Nothing by absolute build paths or `@loader_path`: llama/ggml only through the run
        // paths, the rest from the OS.
        let by_rpath_or_system = |l: &String| {
            l.starts_with("@rpath/") || l.starts_with("/usr/lib/") || l.starts_with("/System/")
        };
        assert!(
            links.loads.iter().all(by_rpath_or_system),
            "{triple}: {links:?}"
        );
        assert!(
            links.rpaths.contains(&"@loader_path".to_string()),
            "{triple}: no LC_RPATH @loader_path: {links:?}"
        );
        // copy-dylibs: the chain the load commands name sits next to the binary.
        for lib in [
            "libllama.0.dylib",
            "libggml.0.dylib",
            "libggml-base.0.dylib",
        ] {
            assert!(
                debug.join(lib).exists(),
                "{triple}: {lib} not next to the binary"
            );
        }
    }
}
