//! `cargo xtask unused-deps`: every `[dependencies]`, `[dev-dependencies]` and
//! `[build-dependencies]` entry of every workspace member is used by that member's sources.
//!
//! A textual scan (no compiler, no extra tool, well under a second): the sources are `src/`,
//! `tests/`, `examples/`, `benches/` and the build script; a dependency counts as used when its
//! crate name (`-` as `_`, or its `package =` rename) appears as `name::`, `use name`,
//! `extern crate name` or `name!`. Comments count too (a doc test may be the only user). A
//! dependency only forwarded by a feature (`x = ["dep/feature"]`) is not a use: such entries
//! go in [`ALLOWED`] with the reason.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::metadata::{self, array, str_field};
use crate::world;

/// `(member, dependency, why)`: entries that are needed although no source names them.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Directories of a member that hold its sources (besides the build script).
const SOURCE_DIRS: &[&str] = &["src", "tests", "examples", "benches"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("unused-deps: usage: cargo xtask unused-deps".into());
    }
    let root = world::workspace_root();
    let meta = metadata::read(&root.join("Cargo.toml"), &["--no-deps"])?;
    let unused = unused_deps(&meta, ALLOWED)?;
    if unused.is_empty() {
        eprintln!("xtask unused-deps: every dependency of every workspace member is used");
        return Ok(());
    }
    for u in &unused {
        eprintln!("unused-deps: {u}");
    }
    Err(format!(
        "unused-deps: {} unused dependency entr{} (remove them, or add them to ALLOWED in \
         xtask/src/unused_deps_cmd.rs with the reason)",
        unused.len(),
        if unused.len() == 1 { "y" } else { "ies" }
    ))
}

/// One line per dependency entry that no source of its package names, over the packages of a
/// `cargo metadata --no-deps` (the workspace members), e.g. `fetch: [dev-dependencies] sha2`.
fn unused_deps(meta: &Value, allowed: &[(&str, &str, &str)]) -> Result<Vec<String>, String> {
    let mut unused = Vec::new();
    for package in array(meta, "packages") {
        let name = str_field(package, "name").unwrap_or("?");
        let manifest = str_field(package, "manifest_path")
            .ok_or_else(|| format!("{name}: no manifest_path in cargo metadata"))?;
        let dir = Path::new(manifest)
            .parent()
            .ok_or_else(|| format!("{name}: bad manifest path {manifest}"))?;
        let mut text = String::new();
        for file in source_files(dir, package)? {
            let body = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            text.push_str(&body);
            text.push('\n');
        }
        for dep in array(package, "dependencies") {
            let Some(dep_name) = str_field(dep, "name") else {
                continue;
            };
            let crate_name = str_field(dep, "rename")
                .unwrap_or(dep_name)
                .replace('-', "_");
            if referenced(&text, &crate_name)
                || allowed.iter().any(|(m, d, _)| *m == name && *d == dep_name)
            {
                continue;
            }
            let table = match str_field(dep, "kind") {
                Some("dev") => "[dev-dependencies]",
                Some("build") => "[build-dependencies]",
                _ => "[dependencies]",
            };
            let line = format!("{name}: {table} {dep_name}");
            if !unused.contains(&line) {
                unused.push(line);
            }
        }
    }
    Ok(unused)
}

/// The `.rs` files of a package: everything under [`SOURCE_DIRS`] and each target's own file
/// (the build script, or a target declared elsewhere).
fn source_files(dir: &Path, package: &Value) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = array(package, "targets")
        .iter()
        .filter_map(|t| str_field(t, "src_path").map(PathBuf::from))
        .collect();
    let mut stack: Vec<PathBuf> = SOURCE_DIRS.iter().map(|d| dir.join(d)).collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue; // a member without tests/ or examples/
        };
        for entry in entries {
            let path = entry
                .map_err(|e| format!("reading {}: {e}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `text` names the crate `name` as `name::`, `name!`, `use name` or
/// `extern crate name` (whole identifiers only: `my_name::` is not `name::`).
fn referenced(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = &text[..at];
        let after = &text[at + name.len()..];
        if before.chars().next_back().is_some_and(is_ident_char) {
            return false;
        }
        if after.starts_with("::") || after.starts_with('!') {
            return true;
        }
        if after.chars().next().is_some_and(is_ident_char) {
            return false;
        }
        let before = before.trim_end();
        ["use", "extern crate"].iter().any(|kw| {
            before
                .strip_suffix(kw)
                .is_some_and(|rest| !rest.chars().next_back().is_some_and(is_ident_char))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_only_as_whole_crate_paths() {
        assert!(referenced("use serde_json::Value;", "serde_json"));
        assert!(referenced("pub use tempfile;", "tempfile"));
        assert!(referenced("extern crate libc;", "libc"));
        assert!(referenced("let x = tar::Archive::new(r);", "tar"));
        assert!(referenced("    log!(x)", "log"));
        assert!(!referenced("let avatar::x = 1; fn tar() {}", "tar"));
        assert!(!referenced("use tarball::X;", "tar"));
        assert!(!referenced("reuse tar;", "tar"));
        assert!(!referenced("the hex digest", "hex"));
    }

    /// A throwaway crate whose manifest declares `deps` and whose sources are `files`.
    fn fake_crate(deps: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"fake\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n{deps}"
            ),
        )
        .expect("writing Cargo.toml");
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, body).expect("writing a source");
        }
        dir
    }

    fn scan(dir: &Path, allowed: &[(&str, &str, &str)]) -> Vec<String> {
        let meta = metadata::read(&dir.join("Cargo.toml"), &["--no-deps"]).expect("metadata");
        unused_deps(&meta, allowed).expect("scan")
    }

    #[test]
    fn finds_the_one_unused_dependency() {
        let dir = fake_crate(
            "[dependencies]\nused-by-use = \"1\"\nused-by-path = \"1\"\nnever-used = \"1\"\n\n\
             [dev-dependencies]\nonly-in-tests = \"1\"\n\n[build-dependencies]\nbuild-helper = \"1\"\n",
            &[
                (
                    "src/lib.rs",
                    "use used_by_use::Thing;\npub fn f() { used_by_path::x::y(); }\n\
                     // never_used_either: a different name\n",
                ),
                (
                    "tests/t.rs",
                    "#[test]\nfn t() { only_in_tests::check!(); }\n",
                ),
                ("build.rs", "fn main() { build_helper::run(); }\n"),
            ],
        );
        assert_eq!(scan(dir.path(), &[]), ["fake: [dependencies] never-used"]);
        assert!(scan(dir.path(), &[("fake", "never-used", "test")]).is_empty());
    }

    #[test]
    fn a_forwarded_feature_is_not_a_use() {
        let dir = fake_crate(
            "[features]\nextra = [\"forwarded/extra\"]\n\n[dependencies]\nforwarded = \"1\"\n",
            &[("src/lib.rs", "pub fn f() {}\n")],
        );
        assert_eq!(scan(dir.path(), &[]), ["fake: [dependencies] forwarded"]);
    }
}
