//! `verify FILE [--sha256 HEX]` and `verify --cache`.

use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::cache::disk_usage;

use llama_prebuilt_fetch::checksums::normalize_sha256;
use llama_prebuilt_fetch::trust::TrustStore;
use llama_prebuilt_fetch::{Fetcher, verify_file};
use serde::Serialize;

use crate::args::VerifyArgs;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output::{self, Table};
use crate::settings;

#[derive(Serialize)]
struct FileReport<'a> {
    ok: bool,
    file: &'a Path,
    size: u64,
    sha256: &'a str,
    /// The digest compared against, if any.
    expected: Option<&'a str>,
    /// Where `expected` came from (`--sha256`, or the checksums file that records the asset).
    expected_source: Option<&'a str>,
    /// `None` when there was nothing to compare with.
    matches: Option<bool>,
}

/// One cache entry, re-checked.
#[derive(Serialize)]
pub struct EntryReport {
    pub tag: String,
    pub asset: String,
    pub sha256: String,
    pub digest_source: String,
    /// Size of the archive the entry was extracted from.
    pub archive_size: u64,
    /// Bytes the entry (and its kept archive) take on disk.
    pub disk_bytes: u64,
    pub has_archive: bool,
    pub dir: PathBuf,
    pub lib_dir: PathBuf,
    /// Whether the files (and the kept archive) still match the manifest.
    pub ok: bool,
    pub problem: Option<String>,
}

#[derive(Serialize)]
struct CacheReport<'a> {
    ok: bool,
    root: &'a Path,
    entries: &'a [EntryReport],
}

pub fn run(ctx: Ctx, args: &VerifyArgs) -> CmdResult {
    match &args.file {
        Some(file) if !args.cache => verify_one(ctx, file, args.sha256.as_deref()),
        _ => verify_cache(ctx),
    }
}

fn verify_one(ctx: Ctx, file: &Path, given: Option<&str>) -> CmdResult {
    if !file.is_file() {
        return Err(CliError::new(format!("{} is not a file", file.display())));
    }
    let expected: Option<(String, String)> = match given {
        Some(raw) => Some((
            normalize_sha256(raw).ok_or_else(|| {
                CliError::new(format!("--sha256 `{raw}` is not a 64-digit hex sha256"))
            })?,
            "--sha256".to_string(),
        )),
        None => recorded_digest(file)?,
    };
    let (sha, size) = verify_file(file, None)?;
    let matches = expected.as_ref().map(|(want, _)| *want == sha);
    if ctx.json {
        output::json(&FileReport {
            ok: matches != Some(false),
            file,
            size,
            sha256: &sha,
            expected: expected.as_ref().map(|e| e.0.as_str()),
            expected_source: expected.as_ref().map(|e| e.1.as_str()),
            matches,
        })?;
    } else {
        let verdict = match (&expected, matches) {
            (Some((_, source)), Some(true)) => format!("OK: matches the sha256 from {source}"),
            (Some((_, source)), _) => format!("MISMATCH: differs from the sha256 from {source}"),
            (None, _) => {
                "no expected digest is known for this file; pass --sha256 <hex> to compare".into()
            }
        };
        output::write(&format!(
            "{sha}  {}\n{size} bytes\n{verdict}\n",
            file.display()
        ))?;
    }
    match (expected, matches) {
        (Some((want, source)), Some(false)) => Err(CliError::after_report(format!(
            "sha256 mismatch for {}\n  expected {want} (from {source})\n  actual   {sha}",
            file.display()
        ))),
        _ => Ok(()),
    }
}

/// The digest a checksums file (the embedded one, or `LLAMA_PREBUILT_CHECKSUMS`) records for a
/// file named like a release asset (`llama-<tag>-bin-...`). `LLAMA_PREBUILT_SHA256` is not used:
/// it names the digest of one build's archive, not of whatever file is checked here.
fn recorded_digest(file: &Path) -> Result<Option<(String, String)>, CliError> {
    let Some(name) = file.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(None);
    };
    let bare = name.strip_prefix("cudart-").unwrap_or(&name);
    let Some(tag) = bare
        .strip_prefix("llama-")
        .and_then(|r| r.split_once("-bin-"))
        .map(|(t, _)| t.to_string())
    else {
        return Ok(None);
    };
    let trust = TrustStore::new(settings::config().checksums_file, None)?;
    if !trust.knows(&tag, &name) {
        return Ok(None);
    }
    Ok(trust
        .local(&tag, &name)?
        .map(|e| (e.sha256, e.source.to_string())))
}

/// Every cache entry re-checked against its manifest (and its kept archive against its digest).
pub fn check_cache(fetcher: &Fetcher) -> Vec<EntryReport> {
    let cache = fetcher.cache();
    fetcher
        .verify_cache()
        .into_iter()
        .map(|(e, r)| {
            let archive = cache.archive_path(&e.manifest.tag, &e.manifest.asset);
            EntryReport {
                disk_bytes: disk_usage(&e.dir)
                    + if e.has_archive {
                        disk_usage(&archive)
                    } else {
                        0
                    },
                lib_dir: output::tidy_path(&e.dir.join("files").join(&e.manifest.lib_dir)),
                tag: e.manifest.tag,
                asset: e.manifest.asset,
                sha256: e.manifest.sha256,
                digest_source: e.manifest.digest_source.to_string(),
                archive_size: e.manifest.size,
                has_archive: e.has_archive,
                dir: e.dir,
                ok: r.is_ok(),
                problem: r.err().map(|damage| damage.to_string()),
            }
        })
        .collect()
}

fn verify_cache(ctx: Ctx) -> CmdResult {
    let fetcher = Fetcher::new(settings::config())?;
    let entries = check_cache(&fetcher);
    let root = fetcher.cache().root();
    let bad: Vec<&EntryReport> = entries.iter().filter(|e| !e.ok).collect();
    if ctx.json {
        output::json(&CacheReport {
            ok: bad.is_empty(),
            root,
            entries: &entries,
        })?;
    } else if entries.is_empty() {
        output::line(&format!("the cache at {} holds no assets", root.display()))?;
    } else {
        let mut table = Table::new(&["TAG", "ASSET", "STATUS", "PROBLEM"]);
        for e in &entries {
            table.row(vec![
                e.tag.clone(),
                e.asset.clone(),
                if e.ok { "ok".into() } else { "CORRUPT".into() },
                e.problem.clone().unwrap_or_default(),
            ]);
        }
        output::write(&format!(
            "{}{} of {} cached assets in {} verify\n",
            table.render(),
            entries.len() - bad.len(),
            entries.len(),
            root.display()
        ))?;
    }
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = bad
        .iter()
        .map(|e| format!("{}/{}", e.tag, e.asset))
        .collect();
    Err(CliError::after_report(format!(
        "{} of {} cached assets do not match their manifest: {}\n\
         help: `llama-prebuilt download` (or the next build) repairs them; \
         `llama-prebuilt cache clean --version <tag>` removes them",
        bad.len(),
        entries.len(),
        names.join(", ")
    )))
}
