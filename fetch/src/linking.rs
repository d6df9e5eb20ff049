//! Making the libraries visible to the linker and at run time: the build script stages them in
//! a directory inside `OUT_DIR` (cargo puts such directories on the dynamic-library path of
//! `cargo run`/`cargo test`) and optionally next to the final artifacts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::implib;
use crate::libdir::LibOs;

/// Whether a file name is a shared library (or a link to one) for `os`.
pub fn is_shared_library(name: &str, os: LibOs) -> bool {
    match os {
        LibOs::Linux => name.ends_with(".so") || name.contains(".so."),
        LibOs::MacOs => name.ends_with(".dylib"),
        LibOs::Windows => {
            let lower = name.to_ascii_lowercase();
            lower.ends_with(".dll") || lower.ends_with(".lib")
        }
    }
}

/// Makes every shared library of `from` visible in `to`: symlinks are recreated (keeping
/// relative chains), files are hard-linked, or copied where hard links are impossible (another
/// filesystem). Files already identical in `to` are left alone, so a no-op rebuild writes
/// nothing and a running program's libraries are never rewritten underneath it.
///
/// For Windows, `to` also gets the import libraries the linker needs (`llama.lib` for
/// `llama.dll`, ...; see [`implib::write_for_dir`]), generated from the DLLs unless `from`
/// has them. Returns the staged paths, generated import libraries included.
pub fn stage(from: &Path, to: &Path, os: LibOs) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(to)?;
    let mut staged = Vec::new();
    let mut names: Vec<_> = fs::read_dir(from)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_shared_library(n, os))
        .collect();
    names.sort();
    for name in &names {
        let src = from.join(name);
        let dst = to.join(name);
        let meta = fs::symlink_metadata(&src)?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&src)?;
            if fs::read_link(&dst).ok().as_deref() != Some(target.as_path()) {
                remove_if_exists(&dst)?;
                make_symlink(&target, &dst).or_else(|_| fs::copy(&src, &dst).map(drop))?;
            }
        } else if !same_contents(&src, &dst) {
            remove_if_exists(&dst)?;
            if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst)?;
            }
        }
        staged.push(dst);
    }
    if os == LibOs::Windows {
        // The release zips carry no import libraries: make them from the DLLs' export
        // tables, except where the archive brought its own `.lib`.
        let provided: Vec<String> = names
            .iter()
            .filter(|n| n.to_ascii_lowercase().ends_with(".lib"))
            .map(|n| n.to_ascii_lowercase())
            .collect();
        for lib in implib::write_for_dir(to, &provided)? {
            if !staged.contains(&lib) {
                staged.push(lib);
            }
        }
    }
    Ok(staged)
}

/// The artifact directory (`target/<profile>` or `target/<triple>/<profile>`) of a build
/// script's `OUT_DIR` (`…/<profile>/build/<pkg>-<hash>/out`).
pub fn profile_dir(out_dir: &Path) -> Option<PathBuf> {
    let dir = out_dir.parent()?.parent()?.parent()?;
    (out_dir.parent()?.parent()?.file_name()? == "build").then(|| dir.to_path_buf())
}

fn same_contents(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {
            same_file(&ma, &mb)
                || fs::read(a)
                    .ok()
                    .zip(fs::read(b).ok())
                    .is_some_and(|(x, y)| x == y)
        }
        _ => false,
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    false
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn make_symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no symlinks here",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert!(is_shared_library("libllama.so.0.0.10200", LibOs::Linux));
        assert!(is_shared_library("libggml.so", LibOs::Linux));
        assert!(!is_shared_library("llama-cli", LibOs::Linux));
        assert!(!is_shared_library("LICENSE", LibOs::Linux));
        assert!(is_shared_library("libllama.0.dylib", LibOs::MacOs));
        assert!(is_shared_library("GGML.DLL", LibOs::Windows));
    }

    #[test]
    fn staging_windows_dlls_generates_their_import_libraries() {
        use crate::implib::tests::synthetic_dll;
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        fs::create_dir_all(&from).unwrap();
        fs::write(
            from.join("llama.dll"),
            synthetic_dll("llama.dll", &["llama_init"]),
        )
        .unwrap();
        fs::write(
            from.join("ggml.dll"),
            synthetic_dll("ggml.dll", &["ggml_init"]),
        )
        .unwrap();
        fs::write(
            from.join("ggml-base.dll"),
            synthetic_dll("ggml-base.dll", &["x"]),
        )
        .unwrap();
        fs::write(from.join("ggml-base.lib"), b"the archive's own").unwrap();
        fs::write(from.join("llama-cli.exe"), b"tool").unwrap();
        let staged = stage(&from, &to, LibOs::Windows).unwrap();
        let names: Vec<_> = staged
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ggml-base.dll",
                "ggml-base.lib",
                "ggml.dll",
                "llama.dll",
                "llama.lib",
                "ggml.lib"
            ]
        );
        assert_eq!(
            fs::read(to.join("ggml-base.lib")).unwrap(),
            b"the archive's own"
        );
        let lib = fs::read(to.join("llama.lib")).unwrap();
        assert!(lib.starts_with(b"!<arch>\n"));
        assert!(lib.windows(16).any(|w| w == b"__imp_llama_init"));
        assert!(
            !from.join("llama.lib").exists(),
            "the source directory is not written"
        );
        // Staging again rewrites nothing.
        let before = fs::metadata(to.join("llama.lib"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(stage(&from, &to, LibOs::Windows).unwrap(), staged);
        let after = fs::metadata(to.join("llama.lib"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // Other OSes get nothing of the kind.
        let linux = tmp.path().join("linux");
        stage(&from, &linux, LibOs::Linux).unwrap();
        assert!(!linux.join("llama.lib").exists());
    }

    #[test]
    fn profile_dir_of_out_dir() {
        let p = profile_dir(Path::new(
            "/t/target/debug/build/llama-prebuilt-sys-abc/out",
        ))
        .unwrap();
        assert_eq!(p, Path::new("/t/target/debug"));
        let p = profile_dir(Path::new(
            "/t/target/aarch64-unknown-linux-gnu/release/build/x-1/out",
        ))
        .unwrap();
        assert_eq!(p, Path::new("/t/target/aarch64-unknown-linux-gnu/release"));
        assert!(profile_dir(Path::new("/a/b")).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn stages_chains_and_files_idempotently() {
        let tmp = std::env::temp_dir().join(format!("llp-stage-{}", std::process::id()));
        let (from, to) = (tmp.join("from"), tmp.join("to"));
        fs::create_dir_all(&from).unwrap();
        fs::write(from.join("libllama.so.0.0.1"), b"lib").unwrap();
        std::os::unix::fs::symlink("libllama.so.0.0.1", from.join("libllama.so.0")).unwrap();
        std::os::unix::fs::symlink("libllama.so.0", from.join("libllama.so")).unwrap();
        fs::write(from.join("llama-cli"), b"tool").unwrap();
        let staged = stage(&from, &to, LibOs::Linux).unwrap();
        assert_eq!(staged.len(), 3);
        assert_eq!(
            fs::read_link(to.join("libllama.so")).unwrap(),
            Path::new("libllama.so.0")
        );
        assert_eq!(fs::read(to.join("libllama.so")).unwrap(), b"lib");
        assert!(!to.join("llama-cli").exists());
        // Second run changes nothing (same inode stays).
        use std::os::unix::fs::MetadataExt;
        let ino = fs::metadata(to.join("libllama.so.0.0.1")).unwrap().ino();
        stage(&from, &to, LibOs::Linux).unwrap();
        assert_eq!(
            fs::metadata(to.join("libllama.so.0.0.1")).unwrap().ino(),
            ino
        );
        fs::remove_dir_all(&tmp).unwrap();
    }
}
