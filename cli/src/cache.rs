//! `cache path|list|clean`. Cleaning removes only what the fetch library created (entries with
//! its manifest, the archives they name, unfinished downloads); anything else in the cache root
//! is left alone and reported as such.

use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::{Cache, Fetcher, asset};
use serde::Serialize;

use crate::args::CacheCommand;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output::{self, Table, human_bytes};
use crate::settings;
use crate::verify::{EntryReport, check_cache};

#[derive(Serialize)]
struct PathReport<'a> {
    ok: bool,
    path: &'a Path,
    exists: bool,
}

#[derive(Serialize)]
struct ListReport<'a> {
    ok: bool,
    root: &'a Path,
    total_bytes: u64,
    entries: &'a [EntryReport],
}

#[derive(Serialize)]
struct CleanReport<'a> {
    ok: bool,
    root: &'a Path,
    version: Option<&'a str>,
    removed: &'a [PathBuf],
    freed_bytes: u64,
    /// Items in the cache root this tool did not create and therefore kept (`--all` only).
    kept: &'a [String],
}

pub fn run(ctx: Ctx, cmd: &CacheCommand) -> CmdResult {
    let root = settings::cache_root(&settings::config())?;
    match cmd {
        CacheCommand::Path => {
            if ctx.json {
                output::json(&PathReport {
                    ok: true,
                    path: &root,
                    exists: root.is_dir(),
                })
            } else {
                output::line(&root.display().to_string())
            }
        }
        CacheCommand::List => list(ctx, &root),
        CacheCommand::Clean { version, all } => {
            clean(ctx, &root, if *all { None } else { version.as_deref() })
        }
    }
}

fn list(ctx: Ctx, root: &Path) -> CmdResult {
    // A cache that does not exist yet is empty; do not create it just to say so.
    let entries = if root.is_dir() {
        check_cache(&Fetcher::new(settings::config())?)
    } else {
        Vec::new()
    };
    let total: u64 = entries.iter().map(|e| e.disk_bytes).sum();
    if ctx.json {
        return output::json(&ListReport {
            ok: true,
            root,
            total_bytes: total,
            entries: &entries,
        });
    }
    if entries.is_empty() {
        return output::line(&format!("no cached assets in {}", root.display()));
    }
    let mut table = Table::new(&["TAG", "ASSET", "SIZE", "VERIFIED", "LIBRARY"]);
    for e in &entries {
        table.row(vec![
            e.tag.clone(),
            e.asset.clone(),
            human_bytes(e.disk_bytes),
            if e.ok {
                "yes".into()
            } else {
                format!("NO: {}", e.problem.as_deref().unwrap_or("?"))
            },
            e.lib_dir.display().to_string(),
        ]);
    }
    output::write(&format!(
        "{}{} assets, {} in {}\n",
        table.render(),
        entries.len(),
        human_bytes(total),
        root.display()
    ))
}

fn clean(ctx: Ctx, root: &Path, version: Option<&str>) -> CmdResult {
    if let Some(tag) = version {
        asset::build_number(tag).ok_or_else(|| {
            CliError::new(format!(
                "`{tag}` is not a llama.cpp release tag (tags look like `b10199`, or `b10199-fixture` for a non-official build)"
            ))
        })?;
    }
    let report = if root.is_dir() {
        Cache::existing(root).clean(version)?
    } else {
        Default::default()
    };
    let kept = if version.is_none() {
        foreign_items(root)
    } else {
        Vec::new()
    };
    if ctx.json {
        return output::json(&CleanReport {
            ok: true,
            root,
            version,
            removed: &report.removed,
            freed_bytes: report.freed,
            kept: &kept,
        });
    }
    let mut text = String::new();
    if report.removed.is_empty() {
        let what = version.map(|t| format!("for {t} ")).unwrap_or_default();
        text.push_str(&format!("nothing cached {what}in {}\n", root.display()));
    } else {
        for p in &report.removed {
            text.push_str(&format!("removed {}\n", p.display()));
        }
        text.push_str(&format!(
            "freed {} ({} bytes) in {}\n",
            human_bytes(report.freed),
            report.freed,
            root.display()
        ));
    }
    if !kept.is_empty() {
        text.push_str(&format!(
            "left untouched (not created by llama-prebuilt): {}\n",
            kept.join(", ")
        ));
    }
    output::write(&text)
}

/// What remains in the root after a full clean besides the tool's own `.tmp`/`.locks`.
fn foreign_items(root: &Path) -> Vec<String> {
    let Ok(items) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = items
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".tmp" && n != ".locks")
        .collect();
    names.sort();
    names
}
