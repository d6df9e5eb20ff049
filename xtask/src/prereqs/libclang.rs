//! Is there a libclang that bindgen will load? Answered with clang-sys's own search rules, so
//! "present" here means "bindgen finds it", not "some file whose name starts with libclang".
//!
//! The base image ships `libclang-cpp.so.14` (the C++ API library, Debian `libclang-cpp14`),
//! which bindgen cannot use; counting it as libclang once kept `libclang-dev` from being
//! installed and broke both README commands on a new machine. clang-sys skips any file whose
//! name contains `-cpp.` for exactly this reason, and so do we.
//!
//! The rules (clang-sys 1.x, `build/common.rs` and `build/dynamic.rs`, Linux):
//! - `LIBCLANG_PATH` set: search only there (a directory, or the library file itself);
//! - otherwise `$(llvm-config --prefix)/{bin,lib,lib64}`, then the directories of
//!   `LD_LIBRARY_PATH` and `LIBRARY_PATH`, then the glob patterns in [`SYSTEM_DIRS`];
//! - file names `libclang.so`, `libclang-*.so`, `libclang.so.*`, `libclang-*.so.*`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// clang-sys's system directory patterns for Linux; `*` matches within one path component.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/llvm*/lib*",
    "/usr/local/lib*/*/*",
    "/usr/local/lib*/*",
    "/usr/local/lib*",
    "/usr/lib*/*/*",
    "/usr/lib*/*",
    "/usr/lib*",
];

/// What the search depends on besides the file system, so tests can fake it.
pub(crate) struct SearchEnv {
    pub libclang_path: Option<OsString>,
    pub llvm_prefix: Option<PathBuf>,
    pub ld_library_path: Option<OsString>,
    pub library_path: Option<OsString>,
    /// Directory patterns searched last (normally [`SYSTEM_DIRS`]).
    pub system_dirs: Vec<String>,
}

impl SearchEnv {
    pub(crate) fn from_process() -> SearchEnv {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let llvm_prefix = Command::new("llvm-config")
            .arg("--prefix")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout);
                text.lines().next().map(|l| PathBuf::from(l.trim()))
            });
        SearchEnv {
            libclang_path: non_empty("LIBCLANG_PATH"),
            llvm_prefix,
            ld_library_path: non_empty("LD_LIBRARY_PATH"),
            library_path: non_empty("LIBRARY_PATH"),
            system_dirs: SYSTEM_DIRS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The first libclang bindgen would be able to load, if any.
pub(crate) fn find(env: &SearchEnv) -> Option<PathBuf> {
    if let Some(path) = &env.libclang_path {
        let path = Path::new(path);
        if path.is_file() {
            return path
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| is_libclang(n))
                .map(|_| path.to_path_buf());
        }
        return search_dir(path);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(prefix) = &env.llvm_prefix {
        dirs.extend(["bin", "lib", "lib64"].map(|d| prefix.join(d)));
    }
    for list in [&env.ld_library_path, &env.library_path]
        .into_iter()
        .flatten()
    {
        dirs.extend(std::env::split_paths(list));
    }
    for pattern in &env.system_dirs {
        dirs.extend(expand(pattern));
    }
    dirs.iter().find_map(|d| search_dir(d))
}

/// A file name clang-sys accepts as libclang on Linux.
pub(crate) fn is_libclang(name: &str) -> bool {
    if name.contains("-cpp.") {
        return false; // libclang-cpp.so.N: the C++ library, not the C API bindgen loads
    }
    if name == "libclang.so" || name.starts_with("libclang.so.") {
        return true;
    }
    // libclang-14.so, libclang-14.so.1, libclang-14.0.6.so.1 ...
    name.strip_prefix("libclang-")
        .and_then(|rest| rest.find(".so").map(|i| (&rest[..i], &rest[i + 3..])))
        .is_some_and(|(version, suffix)| {
            !version.is_empty() && (suffix.is_empty() || suffix.starts_with('.'))
        })
}

fn search_dir(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_libclang))
        .map(|e| e.path())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Expands a pattern whose components may contain `*` (any run of characters within one
/// component) into the existing directories it matches.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::from("/")];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &current {
            if !component.contains('*') {
                let p = base.join(component);
                if p.is_dir() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            let mut matched: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| glob_match(component, n))
                })
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            matched.sort();
            next.extend(matched);
        }
        current = next;
    }
    current
}

/// `*`-only glob matching of one path component.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty(); // no `*` at all: exact match
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_system_dir(dir: &Path) -> SearchEnv {
        SearchEnv {
            libclang_path: None,
            llvm_prefix: None,
            ld_library_path: None,
            library_path: None,
            system_dirs: vec![dir.join("usr/lib*/*").display().to_string()],
        }
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn only_libclang_cpp_counts_as_missing() {
        // The base image's situation: the C++ library and nothing bindgen can load.
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("usr/lib/llvm-14/libclang-cpp.so.14"));
        touch(&root.path().join("usr/lib/llvm-14/libclang-cpp.so"));
        touch(&root.path().join("usr/lib/llvm-14/libclangBasic.a"));
        assert_eq!(find(&env_with_system_dir(root.path())), None);
    }

    #[test]
    fn the_c_library_is_found_beside_libclang_cpp() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("usr/lib/llvm-14/libclang-cpp.so.14"));
        let real = root.path().join("usr/lib/llvm-14/libclang-14.so.1");
        touch(&real);
        assert_eq!(find(&env_with_system_dir(root.path())), Some(real));
    }

    #[test]
    fn libclang_path_is_the_only_place_searched_when_set() {
        let root = tempfile::tempdir().unwrap();
        touch(
            &root
                .path()
                .join("usr/lib/x86_64-linux-gnu/libclang-14.so.1"),
        );
        let elsewhere = root.path().join("opt/llvm");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let mut env = env_with_system_dir(root.path());
        env.libclang_path = Some(elsewhere.clone().into_os_string());
        assert_eq!(find(&env), None, "an empty LIBCLANG_PATH dir means missing");
        touch(&elsewhere.join("libclang.so"));
        assert_eq!(find(&env), Some(elsewhere.join("libclang.so")));
        // LIBCLANG_PATH naming the file itself.
        env.libclang_path = Some(elsewhere.join("libclang.so").into_os_string());
        assert_eq!(find(&env), Some(elsewhere.join("libclang.so")));
    }

    #[test]
    fn ld_library_path_and_llvm_prefix_are_searched() {
        let root = tempfile::tempdir().unwrap();
        let mut env = env_with_system_dir(&root.path().join("nothing-here"));
        let ld = root.path().join("ld");
        touch(&ld.join("libclang.so.18"));
        env.ld_library_path = Some(ld.clone().into_os_string());
        assert_eq!(find(&env), Some(ld.join("libclang.so.18")));
        env.ld_library_path = None;
        let prefix = root.path().join("llvm");
        touch(&prefix.join("lib/libclang.so"));
        env.llvm_prefix = Some(prefix.clone());
        assert_eq!(find(&env), Some(prefix.join("lib/libclang.so")));
    }

    #[test]
    fn file_names_follow_clang_sys() {
        for ok in [
            "libclang.so",
            "libclang.so.1",
            "libclang-14.so",
            "libclang-14.so.1",
            "libclang-14.0.6.so.14",
        ] {
            assert!(is_libclang(ok), "{ok}");
        }
        for no in [
            "libclang-cpp.so.14",
            "libclang-cpp.so",
            "libclangBasic.a",
            "libclang.a",
            "libclang-.so",
            "libclang-14.sox",
            "libclang_rt.asan.so",
        ] {
            assert!(!is_libclang(no), "{no}");
        }
    }

    #[test]
    fn globs_match_within_one_component() {
        assert!(glob_match("lib*", "lib64"));
        assert!(glob_match("lib*", "lib"));
        assert!(glob_match("llvm*", "llvm-14"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("lib*", "usr"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXcYYb"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
