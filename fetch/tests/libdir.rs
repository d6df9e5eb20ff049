//! Locating the library directory in the three real layouts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use llama_prebuilt_fetch::extract::{ArchiveKind, Limits, extract};
use llama_prebuilt_fetch::libdir::{LibOs, LibraryDir, LocateError, locate};
use tempfile::TempDir;

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, rel.as_bytes()).unwrap();
}

#[cfg(unix)]
fn link(root: &Path, rel: &str, target: &str) {
    std::os::unix::fs::symlink(target, root.join(rel)).unwrap();
}

fn files(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| dir.join(n)).collect()
}

#[track_caller]
fn not_found(root: &Path, os: LibOs) -> (LocateError, String) {
    let err = locate(root, os).expect_err("nothing should be found");
    let msg = err.to_string();
    assert!(matches!(err, LocateError::NotFound { .. }), "{err:?}");
    (err, msg)
}

/// The tar.gz era, extracted for real: `llama-<tag>/` with symlink chains.
#[test]
fn linux_targz_layout() {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut add = |path: &str, link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        match link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_size(0);
            }
            None => h.set_size(path.len() as u64),
        }
        h.set_path(path).unwrap();
        h.set_mode(0o755);
        h.set_cksum();
        let data: &[u8] = if link.is_some() { b"" } else { path.as_bytes() };
        b.append(&h, data).unwrap();
    };
    add("llama-b10199/LICENSE", None);
    add("llama-b10199/llama-cli", None);
    add("llama-b10199/libllama.so.0.0.10199", None);
    add("llama-b10199/libllama.so.0", Some("libllama.so.0.0.10199"));
    add("llama-b10199/libllama.so", Some("libllama.so.0"));
    add("llama-b10199/libllama-common.so", None);
    add("llama-b10199/libggml.so.0.9.4", None);
    add("llama-b10199/libggml.so.0", Some("libggml.so.0.9.4"));
    add("llama-b10199/libggml.so", Some("libggml.so.0"));
    add("llama-b10199/libggml-base.so.0.9.4", None);
    add(
        "llama-b10199/libggml-base.so.0",
        Some("libggml-base.so.0.9.4"),
    );
    add("llama-b10199/libggml-base.so", Some("libggml-base.so.0"));
    add("llama-b10199/libggml-cpu-x64.so", None);
    add("llama-b10199/libggml-cpu-haswell.so", None);
    add("llama-b10199/libggml-rpc.so", None);
    let bytes = b.into_inner().unwrap().finish().unwrap();

    let tmp = TempDir::new().unwrap();
    let archive = tmp.path().join("llama-b10199-bin-ubuntu-x64.tar.gz");
    fs::File::create(&archive)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let root = tmp.path().join("files");
    extract(&archive, ArchiveKind::TarGz, &root, &Limits::default()).unwrap();

    let found = locate(&root, LibOs::Linux).unwrap();
    let dir = root.join("llama-b10199");
    assert_eq!(
        found,
        LibraryDir {
            dir: dir.clone(),
            libllama: dir.join("libllama.so"),
            ggml: files(
                &dir,
                &[
                    "libggml.so",
                    "libggml-base.so",
                    "libggml-cpu-haswell.so",
                    "libggml-cpu-x64.so",
                    "libggml-rpc.so",
                ]
            ),
        }
    );
}

/// The zip era: `build/bin/`, plain copies.
#[test]
fn linux_zip_layout() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for f in [
        "build/bin/libllama.so",
        "build/bin/libggml.so",
        "build/bin/libggml-base.so",
        "build/bin/libggml-cpu.so",
        "build/bin/libmtmd.so",
        "build/bin/llama-cli",
        "build/bin/LICENSE",
    ] {
        touch(root, f);
    }
    let found = locate(root, LibOs::Linux).unwrap();
    let bin = root.join("build/bin");
    assert_eq!(found.dir, bin);
    assert_eq!(found.libllama, bin.join("libllama.so"));
    assert_eq!(
        found.ggml,
        files(&bin, &["libggml.so", "libggml-base.so", "libggml-cpu.so"])
    );
}

/// Windows: a flat zip of DLLs.
#[test]
fn flat_windows_layout() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for f in [
        "llama.dll",
        "ggml.dll",
        "ggml-base.dll",
        "ggml-cpu-x64.dll",
        "ggml-cpu-haswell.dll",
        "ggml-rpc.dll",
        "mtmd.dll",
        "llama-common.dll",
        "libomp140.x86_64.dll",
        "llama-cli.exe",
    ] {
        touch(root, f);
    }
    let found = locate(root, LibOs::Windows).unwrap();
    assert_eq!(found.dir, root);
    assert_eq!(found.libllama, root.join("llama.dll"));
    assert_eq!(
        found.ggml,
        files(
            root,
            &[
                "ggml.dll",
                "ggml-base.dll",
                "ggml-cpu-haswell.dll",
                "ggml-cpu-x64.dll",
                "ggml-rpc.dll"
            ]
        )
    );
}

#[test]
fn windows_names_ignore_case() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for f in ["LLAMA.DLL", "GGML.dll", "ggml-base.DLL", "Ggml-Vulkan.dll"] {
        touch(root, f);
    }
    let found = locate(root, LibOs::Windows).unwrap();
    assert_eq!(found.libllama, root.join("LLAMA.DLL"));
    assert_eq!(
        found.ggml,
        files(root, &["GGML.dll", "ggml-base.DLL", "Ggml-Vulkan.dll"])
    );
}

#[cfg(unix)]
#[test]
fn macos_layout_skips_versioned_aliases() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let d = "llama-b10199";
    for f in [
        "libllama.0.0.10199.dylib",
        "libggml.0.9.4.dylib",
        "libggml-base.0.9.4.dylib",
        "libggml-cpu.dylib",
        "libggml-metal.dylib",
        "libggml-blas.dylib",
        "libggml-rpc.dylib",
    ] {
        touch(root, &format!("{d}/{f}"));
    }
    for (l, t) in [
        ("libllama.0.dylib", "libllama.0.0.10199.dylib"),
        ("libllama.dylib", "libllama.0.dylib"),
        ("libggml.0.dylib", "libggml.0.9.4.dylib"),
        ("libggml.dylib", "libggml.0.dylib"),
        ("libggml-base.0.dylib", "libggml-base.0.9.4.dylib"),
        ("libggml-base.dylib", "libggml-base.0.dylib"),
    ] {
        link(root, &format!("{d}/{l}"), t);
    }
    let found = locate(root, LibOs::MacOs).unwrap();
    let dir = root.join(d);
    assert_eq!(found.libllama, dir.join("libllama.dylib"));
    assert_eq!(
        found.ggml,
        files(
            &dir,
            &[
                "libggml.dylib",
                "libggml-base.dylib",
                "libggml-blas.dylib",
                "libggml-cpu.dylib",
                "libggml-metal.dylib",
                "libggml-rpc.dylib",
            ]
        )
    );
}

/// A tarball whose unversioned links are missing or dangling (as in b9165–b9169):
/// the shortest versioned name is used.
#[cfg(unix)]
#[test]
fn versioned_fallback_when_the_unversioned_link_is_missing_or_dangling() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let d = root.join("llama-b9165");
    touch(root, "llama-b9165/libllama.so.0.0.9165");
    link(root, "llama-b9165/libllama.so.0", "libllama.so.0.0.9165");
    link(root, "llama-b9165/libllama.so", "does-not-exist.so");
    touch(root, "llama-b9165/libggml.so.0.9.0");
    touch(root, "llama-b9165/libggml-base.so.0.9.0");
    link(
        root,
        "llama-b9165/libggml-base.so.0",
        "libggml-base.so.0.9.0",
    );
    let found = locate(root, LibOs::Linux).unwrap();
    assert_eq!(found.libllama, d.join("libllama.so.0"));
    assert_eq!(
        found.ggml,
        files(&d, &["libggml.so.0.9.0", "libggml-base.so.0"])
    );
}

#[test]
fn shallowest_directory_wins() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for dir in ["a/b", "z"] {
        for f in ["libllama.so", "libggml.so", "libggml-base.so"] {
            touch(root, &format!("{dir}/{f}"));
        }
    }
    assert_eq!(locate(root, LibOs::Linux).unwrap().dir, root.join("z"));
}

#[test]
fn depth_limit() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for f in ["libllama.so", "libggml.so", "libggml-base.so"] {
        touch(root, &format!("1/2/3/4/{f}"));
        touch(root, &format!("a/b/c/d/e/{f}"));
    }
    assert_eq!(
        locate(root, LibOs::Linux).unwrap().dir,
        root.join("1/2/3/4")
    );
    fs::remove_dir_all(root.join("1")).unwrap();
    let (_, msg) = not_found(root, LibOs::Linux);
    assert!(msg.contains("searched 4 levels deep"), "{msg}");
}

#[test]
fn wrong_os_lists_what_was_looked_for_and_found() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    for f in ["llama.dll", "ggml.dll", "ggml-base.dll", "docs/README.md"] {
        touch(root, f);
    }
    let (err, msg) = not_found(root, LibOs::Linux);
    assert!(
        msg.contains(
            "holds the Linux llama.cpp libraries: looked for `libllama.so` (or `libllama.so.*`) \
             together with `libggml.so` (or `libggml.so.*`) and `libggml-base.so` (or \
             `libggml-base.so.*`)"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("its top-level entries are: docs/, ggml-base.dll, ggml.dll, llama.dll"),
        "{msg}"
    );
    match err {
        LocateError::NotFound {
            os,
            top_level,
            partial,
            ..
        } => {
            assert_eq!(os, LibOs::Linux);
            assert_eq!(top_level.len(), 4);
            assert!(partial.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let (_, msg) = not_found(root, LibOs::MacOs);
    assert!(
        msg.contains("`libllama.dylib` (or `libllama.*.dylib`)"),
        "{msg}"
    );
}

#[test]
fn partial_directory_says_what_is_missing() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    touch(root, "llama-b1/libllama.so");
    touch(root, "llama-b1/libggml.so");
    let (_, msg) = not_found(root, LibOs::Linux);
    let dir = root.join("llama-b1");
    assert!(
        msg.contains(&format!(
            "`{}` has some of them but lacks `libggml-base.so`",
            dir.display()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("its top-level entries are: llama-b1/"),
        "{msg}"
    );
}

#[test]
fn empty_or_missing_root() {
    let tmp = TempDir::new().unwrap();
    let (_, msg) = not_found(tmp.path(), LibOs::Windows);
    assert!(
        msg.contains("looked for `llama.dll` together with `ggml.dll` and `ggml-base.dll`"),
        "{msg}"
    );
    assert!(msg.ends_with("the directory is empty"), "{msg}");

    let missing = tmp.path().join("missing");
    let err = locate(&missing, LibOs::Linux).unwrap_err();
    assert!(
        matches!(err, LocateError::Io { ref path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().starts_with("could not list `"), "{err}");
}

#[test]
fn lib_os_from_target_os() {
    assert_eq!(LibOs::from_target_os("linux"), Some(LibOs::Linux));
    assert_eq!(LibOs::from_target_os("macos"), Some(LibOs::MacOs));
    assert_eq!(LibOs::from_target_os("windows"), Some(LibOs::Windows));
    assert_eq!(LibOs::from_target_os("android"), None);
    assert_eq!(LibOs::Linux.lib_file_name("ggml-base"), "libggml-base.so");
    assert_eq!(LibOs::Windows.lib_file_name("llama"), "llama.dll");
    assert_eq!(LibOs::MacOs.to_string(), "macOS");
}
