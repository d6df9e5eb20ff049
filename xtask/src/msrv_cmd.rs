//! `cargo xtask msrv`: the published crates still build with the workspace's `rust-version`,
//! as far as this machine (one toolchain) can tell:
//!
//! 1. no package in their normal or build dependency graph (every platform's) declares a
//!    higher `rust-version` (read from `cargo metadata`);
//! 2. nothing turns off clippy's `incompatible_msrv`, which flags uses of std APIs newer than
//!    `rust-version` and which `cargo xtask lint` (clippy -D warnings) then enforces.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde_json::Value;

use crate::metadata::{self, array, str_field};
use crate::world;

/// The crates users depend on; their dev-dependencies do not reach users and are not checked.
const PUBLISHED: &[&str] = &[
    "llama-prebuilt-sys",
    "llama-prebuilt-fetch",
    "llama-prebuilt",
    "llama-prebuilt-cli",
];

/// The lint `cargo xtask lint` relies on; no source or config may allow it.
const LINT: &str = "incompatible_msrv";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("msrv: usage: cargo xtask msrv".into());
    }
    let root = world::workspace_root();
    let meta = metadata::read(&root.join("Cargo.toml"), &[])?;
    let (msrv, offenders) = dependency_offenders(&meta)?;
    let disabled = lint_disabled_in(&root)?;
    for o in &offenders {
        eprintln!("msrv: {o}");
    }
    for d in &disabled {
        eprintln!("msrv: {d}");
    }
    if offenders.is_empty() && disabled.is_empty() {
        eprintln!(
            "xtask msrv: every dependency of the published crates supports Rust {msrv}; \
             clippy::{LINT} is on (enforced by `cargo xtask lint`)"
        );
        Ok(())
    } else {
        Err(format!(
            "msrv: {} package(s) above rust-version {msrv}, {} place(s) turning off clippy::{LINT}",
            offenders.len(),
            disabled.len()
        ))
    }
}

/// `(1, 89, 0)` from `"1.89"` or `"1.89.0"`.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split('.').map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

/// The workspace's rust-version and one line per package above it (with the path it is
/// reached by), over the normal and build dependencies of [`PUBLISHED`].
fn dependency_offenders(meta: &Value) -> Result<(String, Vec<String>), String> {
    let packages: BTreeMap<&str, &Value> = array(meta, "packages")
        .iter()
        .filter_map(|p| Some((str_field(p, "id")?, p)))
        .collect();
    let name_of = |id: &str| {
        packages
            .get(id)
            .map(|p| {
                format!(
                    "{} {}",
                    str_field(p, "name").unwrap_or("?"),
                    str_field(p, "version").unwrap_or("?")
                )
            })
            .unwrap_or_else(|| id.to_string())
    };
    let roots: Vec<&str> = packages
        .iter()
        .filter(|(_, p)| str_field(p, "name").is_some_and(|n| PUBLISHED.contains(&n)))
        .map(|(id, _)| *id)
        .collect();
    if roots.len() != PUBLISHED.len() {
        return Err(format!(
            "msrv: expected the packages {PUBLISHED:?} in cargo metadata"
        ));
    }
    let mut versions: Vec<&str> = roots
        .iter()
        .filter_map(|id| str_field(packages[id], "rust_version"))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let msrv = match versions.as_slice() {
        [v] => v.to_string(),
        _ => {
            return Err(format!(
                "msrv: the published crates must all inherit the workspace rust-version; found {versions:?}"
            ));
        }
    };
    let ours = parse_version(&msrv).ok_or_else(|| format!("msrv: bad rust-version {msrv}"))?;

    let nodes: BTreeMap<&str, &Value> = meta
        .get("resolve")
        .map(|r| array(r, "nodes"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|n| Some((str_field(n, "id")?, n)))
        .collect();
    // Breadth-first, remembering who first reached each package, for the report.
    let mut parent: BTreeMap<&str, Option<&str>> = roots.iter().map(|r| (*r, None)).collect();
    let mut queue: VecDeque<&str> = roots.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in array(node, "deps") {
            let reaches_users = array(dep, "dep_kinds")
                .iter()
                .any(|k| matches!(str_field(k, "kind"), None | Some("build")));
            let Some(pkg) = str_field(dep, "pkg") else {
                continue;
            };
            if reaches_users && !parent.contains_key(pkg) {
                parent.insert(pkg, Some(id));
                queue.push_back(pkg);
            }
        }
    }

    let mut offenders = Vec::new();
    for id in parent.keys() {
        let Some(v) = str_field(packages[id], "rust_version") else {
            continue;
        };
        if parse_version(v).is_some_and(|theirs| theirs > ours) {
            let mut chain = vec![name_of(id)];
            let mut at = *id;
            while let Some(Some(p)) = parent.get(at) {
                chain.push(name_of(p));
                at = p;
            }
            chain.reverse();
            offenders.push(format!(
                "{} needs Rust {v} (> {msrv}), via {}",
                name_of(id),
                chain.join(" -> ")
            ));
        }
    }
    Ok((msrv, offenders))
}

/// Lines that could turn the lint off: `clippy::incompatible_msrv` in Rust sources (an
/// attribute) or `.cargo/config.toml` (a `-A` flag), an `incompatible_msrv` key in a
/// `[lints]` table, and an `msrv` of its own in a clippy.toml.
fn lint_disabled_in(root: &Path) -> Result<Vec<String>, String> {
    // Workspace members are compiled with paths relative to the workspace root.
    let this_file = Path::new(file!());
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    stack.push(path);
                }
                continue;
            }
            let clippy_toml = name == "clippy.toml" || name == ".clippy.toml";
            let rust_or_flags = name.ends_with(".rs") || name == "config.toml";
            let relevant = rust_or_flags || name == "Cargo.toml" || clippy_toml;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            // This file names the lint to look for it.
            if !relevant || rel == this_file {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                let key = line.trim_start();
                let hit = if rust_or_flags {
                    line.contains(&format!("clippy::{LINT}"))
                } else if clippy_toml {
                    key.starts_with("msrv") || key.starts_with(LINT)
                } else {
                    key.starts_with(LINT)
                };
                if hit {
                    found.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("1.89"), Some((1, 89, 0)));
        assert!(parse_version("1.100").unwrap() > parse_version("1.89.1").unwrap());
        assert_eq!(parse_version("x"), None);
    }
}
