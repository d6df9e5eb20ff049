//! `cargo xtask bump <tag|newest> [--allow-breaking]`: moves the pinned llama.cpp tag in one
//! command and reports what changed in the C API.
//!
//! 1. The tag is resolved through the release API (`LLAMA_PREBUILT_API_URL` for a mirror;
//!    `newest` = the newest `b<digits>` release with a CPU asset for every supported target);
//!    a tag lacking one is refused, naming each target.
//! 2. Every asset the asset table knows (any platform, any variant) is recorded with the API's
//!    `digest` and `size`.
//! 3. The tag's headers are fetched from its source tree (`LLAMA_PREBUILT_HEADERS_URL`) into a
//!    staging dir, and the sys crate's own build script generates the bindings from them for
//!    every target with committed bindings (what `cargo xtask bindings` runs).
//! 4. The report (module `report`) compares the committed bindings with the new ones,
//!    names where the safe crate uses what was removed or changed, is printed and written to
//!    `docs/bumps/<old>-<new>.md`.
//! 5. A breaking change stops here (exit 1) unless `--allow-breaking`: only the report is
//!    written. Otherwise `checksums.toml`, `vendor-headers/` (with `ORIGIN.md`; the LICENSE is
//!    replaced only if the source serves one), `bindings/`, `PINNED_TAG`, the crate version's
//!    build metadata, `Cargo.lock` and the README's pinned tag move to the new tag.
//!
//! `--repo DIR` works on another checkout (the tests use a temporary copy).

#[path = "bump/api.rs"]
mod api;
#[path = "bump/edit.rs"]
mod edit;
#[path = "bump/release.rs"]
mod release;
#[path = "bump/report.rs"]
mod report;
#[path = "bump/usage.rs"]
mod usage;

use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::Config;
use llama_prebuilt_fetch::http::Http;

use crate::{bindings_cmd, prereqs, world};

const USAGE: &str = "usage: cargo xtask bump <tag|newest> [--allow-breaking] [--repo DIR]";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    tag: String,
    allow_breaking: bool,
    repo: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut tag = None;
    let mut allow_breaking = false;
    let mut repo = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--allow-breaking" => allow_breaking = true,
            "--repo" => {
                repo = Some(PathBuf::from(it.next().ok_or_else(|| {
                    format!("bump: --repo needs a directory\n{USAGE}")
                })?))
            }
            flag if flag.starts_with('-') => {
                return Err(format!("bump: unknown option `{flag}`\n{USAGE}"));
            }
            t if tag.is_none() => tag = Some(t.to_string()),
            extra => return Err(format!("bump: unexpected argument `{extra}`\n{USAGE}")),
        }
    }
    let tag =
        tag.ok_or_else(|| format!("bump: which tag? (a `b<digits>` tag or `newest`)\n{USAGE}"))?;
    Ok(Args {
        tag,
        allow_breaking,
        repo,
    })
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let repo = args.repo.clone().unwrap_or_else(world::workspace_root);
    let old = pinned_tag(&repo)?;
    check_pin_sites(&repo, &old)?;
    let config = Config::from_env();
    if let Some(reason) = &config.offline {
        return Err(format!(
            "bump: needs the release API, but the network is off ({reason})"
        ));
    }
    let http = Http::new(&config.http, config.github_token.clone());

    let rel =
        release::resolve(&http, config.api_base(), &args.tag).map_err(|e| format!("bump: {e}"))?;
    let new = rel.tag.clone();
    if new == old {
        return Err(format!(
            "bump: {new} is already the pinned tag; nothing to do"
        ));
    }
    release::check_cpu_assets(&rel).map_err(|e| format!("bump: {e}"))?;
    let assets = release::assets(&rel).map_err(|e| format!("bump: {e}"))?;
    eprintln!(
        "bump: {old} -> {new}: {} asset(s) to record; fetching the headers from {}",
        assets.recorded.len(),
        config.headers_base()
    );

    let staging = tempfile::tempdir().map_err(|e| format!("bump: a temp dir: {e}"))?;
    let headers = release::fetch_headers(&http, config.headers_base(), &new, staging.path())
        .map_err(|e| format!("bump: {e}"))?;

    let tools: Vec<&prereqs::Tool> = prereqs::BUILD.iter().chain(prereqs::CROSS).collect();
    prereqs::ensure(&tools)?;
    let target_dir = world::fixture_cache_dir().with_file_name("bindings-target");
    let mut apis = Vec::new();
    let mut fresh = Vec::new();
    for triple in bindings_cmd::TARGETS {
        prereqs::ensure_rust_target(triple)?;
        eprintln!("bump: generating the bindings of {new} for {triple}");
        let bytes = bindings_cmd::generate(&repo, &target_dir, triple, Some(&headers.dir))?;
        let committed = repo.join("bindings").join(format!("{triple}.rs"));
        let before = std::fs::read_to_string(&committed)
            .map_err(|e| format!("bump: {}: {e}", committed.display()))?;
        let after = String::from_utf8(bytes.clone()).map_err(|e| format!("bump: bindings: {e}"))?;
        let d = api::diff(
            &api::parse(&before).map_err(|e| format!("bump: {}: {e}", committed.display()))?,
            &api::parse(&after).map_err(|e| format!("bump: new bindings for {triple}: {e}"))?,
        );
        apis.push((*triple, d));
        fresh.push((committed, bytes));
    }
    let (target, diff) = &apis[0];
    let same_on = apis[1..]
        .iter()
        .filter(|(_, d)| d == diff)
        .map(|(t, _)| *t)
        .collect();
    let differ_on = apis[1..]
        .iter()
        .filter(|(_, d)| d != diff)
        .map(|(t, _)| *t)
        .collect();
    let breaking = diff.breaking();
    let uses = usage::find(&repo, "llama-prebuilt", &breaking);
    let headers_changed = headers
        .files
        .iter()
        .filter(|(_, name)| {
            std::fs::read(repo.join("vendor-headers").join(name)).ok()
                != std::fs::read(headers.dir.join(name)).ok()
        })
        .map(|(path, _)| path.to_string())
        .collect();
    let declared_in = |name: &str| declared_in(&headers, &repo.join("vendor-headers"), name);
    let text = report::render(&report::Input {
        old: &old,
        new: &new,
        target,
        same_on,
        differ_on,
        diff,
        breaking: &breaking,
        uses: &uses,
        headers_changed,
        assets: &assets,
        declared_in: &declared_in,
    });
    let report_path = repo
        .join("docs")
        .join("bumps")
        .join(format!("{old}-{new}.md"));
    write(&report_path, text.as_bytes())?;
    println!("{text}");

    if !breaking.is_empty() && !args.allow_breaking {
        return Err(format!(
            "bump: {new} has {} breaking change(s) (removed or changed items; list above and in {}); \
             nothing else was changed\nhelp: run `cargo xtask bump {new} --allow-breaking` and fix the safe crate in the same change",
            breaking.len(),
            report_path.display()
        ));
    }
    apply(&repo, &old, &new, &assets, &headers, &fresh)?;
    eprintln!(
        "bump: pinned {new} (was {old}); report in {}\nbump: review `git diff`, fix what the report names, run `cargo xtask test`, and commit",
        report_path.display()
    );
    Ok(())
}

/// Writes the new tag into the repository. Required pin sites are checked before anything is
/// written, so a layout the bump does not know leaves the files as they were.
fn apply(
    repo: &Path,
    old: &str,
    new: &str,
    assets: &release::Assets,
    headers: &release::Headers,
    bindings: &[(PathBuf, Vec<u8>)],
) -> Result<(), String> {
    let mut edits: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut texts: std::collections::BTreeMap<&str, String> = Default::default();
    for site in edit::PIN_SITES {
        let current = match texts.get(site.file) {
            Some(t) => t.clone(),
            None => read(&repo.join(site.file))?,
        };
        match edit::pin(&current, site, old, new) {
            Some(t) => {
                texts.insert(site.file, t);
            }
            None if site.required => {
                return Err(format!(
                    "bump: {} no longer contains `{}`; cannot move the pin there (nothing was changed)",
                    site.file,
                    site.template.replace("{}", old)
                ));
            }
            None => eprintln!(
                "bump: note: {} has no `{}`; left as is",
                site.file,
                site.template.replace("{}", old)
            ),
        }
    }
    for (file, text) in texts {
        edits.push((repo.join(file), text.into_bytes()));
    }
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let path = repo.join(lock);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(t) = edit::lock(&text, old, new)
        {
            edits.push((path, t.into_bytes()));
        }
    }
    let sums = repo.join("checksums.toml");
    edits.push((
        sums.clone(),
        edit::checksums(&read(&sums)?, new, &assets.recorded).into_bytes(),
    ));
    let vendor = repo.join("vendor-headers");
    let mut hashes = Vec::new();
    for (_, name) in &headers.files {
        let file = headers.dir.join(name);
        let bytes = std::fs::read(&file).map_err(|e| format!("bump: {name}: {e}"))?;
        let (sha256, _) =
            llama_prebuilt_fetch::verify_file(&file, None).map_err(|e| format!("bump: {e}"))?;
        hashes.push((sha256, name.clone()));
        edits.push((vendor.join(name), bytes));
    }
    hashes.sort_by(|a, b| a.1.cmp(&b.1));
    if headers.license {
        let bytes = std::fs::read(headers.dir.join("LICENSE"))
            .map_err(|e| format!("bump: LICENSE: {e}"))?;
        edits.push((vendor.join("LICENSE"), bytes));
    }
    edits.push((
        vendor.join("ORIGIN.md"),
        edit::origin(new, old, headers, &hashes).into_bytes(),
    ));
    edits.extend(bindings.iter().cloned());
    for (path, bytes) in edits {
        write(&path, &bytes)?;
    }
    Ok(())
}

/// Fails before anything is fetched if a required place of the pin is not where the bump
/// expects it (the repository changed shape: teach [`edit::PIN_SITES`] first).
fn check_pin_sites(repo: &Path, old: &str) -> Result<(), String> {
    for site in edit::PIN_SITES.iter().filter(|s| s.required) {
        let text = read(&repo.join(site.file))?;
        if edit::pin(&text, site, old, old).is_none() {
            return Err(format!(
                "bump: {} no longer contains `{}`; cannot move the pin there (nothing was changed)",
                site.file,
                site.template.replace("{}", old)
            ));
        }
    }
    Ok(())
}

/// The tag `fetch/src/lib.rs` pins in `repo`.
fn pinned_tag(repo: &Path) -> Result<String, String> {
    let path = repo.join("fetch/src/lib.rs");
    let text = read(&path)?;
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("pub const PINNED_TAG: &str = \"")?
                .strip_suffix("\";")
                .map(str::to_string)
        })
        .ok_or_else(|| {
            format!(
                "bump: {} declares no `pub const PINNED_TAG`",
                path.display()
            )
        })
}

/// The header (by its path in the source) that declares `name`, new headers first.
fn declared_in(headers: &release::Headers, old_dir: &Path, name: &str) -> Option<String> {
    for dir in [&headers.dir, &old_dir.to_path_buf()] {
        for (path, file) in &headers.files {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            let found = text.match_indices(name).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + name.len()..].chars().next();
                let ident =
                    |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                !ident(before) && !ident(after)
            });
            if found {
                return Some(path.rsplit('/').next().unwrap_or(path).to_string());
            }
        }
    }
    None
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("bump: {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("bump: {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("bump: {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_command_line() {
        assert_eq!(
            args(&["b10605", "--allow-breaking"]).unwrap(),
            Args {
                tag: "b10605".into(),
                allow_breaking: true,
                repo: None
            }
        );
        assert_eq!(
            args(&["--repo", "/r", "newest"]).unwrap().repo,
            Some(PathBuf::from("/r"))
        );
        let e = args(&[]).unwrap_err();
        assert!(
            e.starts_with("bump: which tag?") && e.contains(USAGE),
            "{e}"
        );
        let e = args(&["b1", "--force"]).unwrap_err();
        assert!(e.starts_with("bump: unknown option `--force`"), "{e}");
        let e = args(&["b1", "b2"]).unwrap_err();
        assert!(e.starts_with("bump: unexpected argument `b2`"), "{e}");
        let e = args(&["b1", "--repo"]).unwrap_err();
        assert!(e.starts_with("bump: --repo needs a directory"), "{e}");
    }

    #[test]
    fn the_pinned_tag_is_read_from_the_fetch_crate() {
        assert_eq!(
            pinned_tag(&world::workspace_root()).unwrap(),
            llama_prebuilt_fetch::PINNED_TAG
        );
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("fetch/src")).unwrap();
        std::fs::write(tmp.path().join("fetch/src/lib.rs"), "//! x\n").unwrap();
        let e = pinned_tag(tmp.path()).unwrap_err();
        assert!(e.contains("declares no `pub const PINNED_TAG`"), "{e}");
    }
}
