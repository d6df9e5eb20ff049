//! `download`: one target (default: this machine), or several platforms in parallel with a
//! summary table. Any failed platform makes the exit code non-zero.

use std::path::PathBuf;
use std::sync::Arc;

use llama_prebuilt_fetch::asset::DEFAULT_PLATFORMS;
use llama_prebuilt_fetch::{Fetcher, Installed, PLATFORMS, Platform, Request, Target};
use serde::Serialize;

use crate::args::DownloadArgs;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output::{self, Table, short_sha};
use crate::progress::Reporter;
use crate::settings;

/// One platform's outcome, as the table and the JSON show it.
#[derive(Debug, Serialize)]
struct Row {
    platform: Option<String>,
    target: String,
    status: Status,
    asset: Option<String>,
    url: Option<String>,
    sha256: Option<String>,
    digest_source: Option<String>,
    digest_label: Option<String>,
    lib_dir: Option<PathBuf>,
    entry_dir: Option<PathBuf>,
    repaired: Option<String>,
    error: Option<String>,
}

/// How one platform's libraries got into the cache (lower-case in JSON and in the reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// Bytes were transferred in this run.
    Downloaded,
    /// Unpacked from a kept or local archive, nothing transferred.
    Extracted,
    /// A corrupt cache entry was rebuilt.
    Repaired,
    /// A verified cache entry was used as is.
    Cached,
    /// The platform failed (see `error`).
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Downloaded => "downloaded",
            Status::Extracted => "extracted",
            Status::Repaired => "repaired",
            Status::Cached => "cached",
            Status::Failed => "failed",
        }
    }
}

#[derive(Serialize)]
struct One<'a> {
    ok: bool,
    tag: &'a str,
    variant: &'a str,
    #[serde(flatten)]
    row: &'a Row,
}

#[derive(Serialize)]
struct Many<'a> {
    ok: bool,
    tag: &'a str,
    variant: &'a str,
    succeeded: usize,
    failed: usize,
    results: &'a [Row],
}

pub fn run(ctx: Ctx, args: &DownloadArgs) -> CmdResult {
    let mut config = settings::config();
    config.http.retries = args.retries;
    let variant = settings::variant(args.variant.as_deref()).value;
    let spec = settings::version(args.version.as_deref()).value;
    let reporter = Arc::new(Reporter::new(ctx.quiet));
    let fetcher = Fetcher::new(config)?.with_progress(reporter.clone());
    let result = if args.all || !args.platforms.is_empty() {
        let platforms = if args.all {
            DEFAULT_PLATFORMS.iter().map(|k| k.to_string()).collect()
        } else {
            args.platforms.clone()
        };
        many(
            ctx,
            &fetcher,
            &reporter,
            &spec,
            &variant,
            &platforms,
            args.jobs as usize,
        )
    } else {
        one(
            ctx,
            &fetcher,
            &reporter,
            &spec,
            &variant,
            args.target.as_deref(),
        )
    };
    reporter.finish();
    result
}

fn one(
    ctx: Ctx,
    fetcher: &Fetcher,
    reporter: &Reporter,
    spec: &str,
    variant: &str,
    target: Option<&str>,
) -> CmdResult {
    let (target, _) = settings::target(target);
    let tag = fetcher.resolve_tag(spec, &target, variant)?;
    let req = Request {
        tag: tag.clone(),
        target,
        variant: variant.to_string(),
    };
    let installed = fetcher.ensure(&req)?;
    reporter.finish();
    let row = row(fetcher, reporter, &req, Ok(installed));
    if ctx.json {
        return output::json(&One {
            ok: true,
            tag: &tag,
            variant,
            row: &row,
        });
    }
    let mut text = format!(
        "llama.cpp {tag} ({variant}) for {}: {}\n",
        req.target,
        row.status.as_str()
    );
    let mut field = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            text.push_str(&format!("  {name:<14} {v}\n"));
        }
    };
    field("asset", &row.asset);
    field("url", &row.url);
    field("sha256", &row.sha256);
    field("digest source", &row.digest_source);
    field("repaired", &row.repaired);
    field(
        "library dir",
        &row.lib_dir.as_ref().map(|p| p.display().to_string()),
    );
    output::write(&text)
}

fn many(
    ctx: Ctx,
    fetcher: &Fetcher,
    reporter: &Reporter,
    spec: &str,
    variant: &str,
    keys: &[String],
    jobs: usize,
) -> CmdResult {
    let platforms = parse_platforms(keys)?;
    // One tag for all platforms; `newest` is the newest release that has the first one's asset.
    let first = Target::from_triple(platforms[0].triple);
    let tag = fetcher.resolve_tag(spec, &first, variant)?;
    let reqs: Vec<Request> = platforms
        .iter()
        .map(|p| Request {
            tag: tag.clone(),
            target: Target::from_triple(p.triple),
            variant: variant.to_string(),
        })
        .collect();
    let results = fetcher.ensure_many(&reqs, jobs);
    reporter.finish();
    let rows: Vec<Row> = reqs
        .iter()
        .zip(results)
        .map(|(req, r)| row(fetcher, reporter, req, r))
        .collect();
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.error.is_some())
        .filter_map(|r| r.platform.as_deref())
        .collect();

    if ctx.json {
        output::json(&Many {
            ok: failed.is_empty(),
            tag: &tag,
            variant,
            succeeded: rows.len() - failed.len(),
            failed: failed.len(),
            results: &rows,
        })?;
    } else {
        let mut table = Table::new(&["PLATFORM", "STATUS", "ASSET", "SHA256", "DIGEST", "LIBRARY"]);
        let dash = || "-".to_string();
        for r in &rows {
            table.row(vec![
                r.platform.clone().unwrap_or_else(dash),
                if r.error.is_some() {
                    "FAILED".into()
                } else {
                    r.status.as_str().into()
                },
                r.asset.clone().unwrap_or_else(dash),
                r.sha256.as_deref().map(short_sha).unwrap_or_else(dash),
                r.digest_label.clone().unwrap_or_else(dash),
                r.lib_dir
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(dash),
            ]);
        }
        let mut text = format!(
            "llama.cpp {tag} ({variant}): {} of {} platforms ready\n{}",
            rows.len() - failed.len(),
            rows.len(),
            table.render()
        );
        for r in rows.iter().filter(|r| r.error.is_some()) {
            text.push_str(&format!(
                "\n{} failed:\n{}\n",
                r.platform.as_deref().unwrap_or("?"),
                r.error.as_deref().unwrap_or_default()
            ));
        }
        output::write(&text)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::after_report(format!(
            "{} of {} platforms failed: {}",
            failed.len(),
            rows.len(),
            failed.join(", ")
        )))
    }
}

/// Platform keys (or their target triples) in the order given, without duplicates.
fn parse_platforms(keys: &[String]) -> Result<Vec<&'static Platform>, CliError> {
    let mut out: Vec<&'static Platform> = Vec::new();
    for key in keys.iter().map(|k| k.trim()) {
        let p = Platform::by_key(key)
            .or_else(|| PLATFORMS.iter().find(|p| p.triple == key))
            .ok_or_else(|| {
                let known: Vec<&str> = PLATFORMS.iter().map(|p| p.key).collect();
                CliError::new(format!(
                    "unknown platform `{key}`; platforms: {}",
                    known.join(", ")
                ))
            })?;
        if !out.iter().any(|q| q.key == p.key) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(CliError::new("--platforms needs at least one platform"));
    }
    Ok(out)
}

fn row(
    fetcher: &Fetcher,
    reporter: &Reporter,
    req: &Request,
    result: llama_prebuilt_fetch::Result<Installed>,
) -> Row {
    let platform = Platform::for_target(&req.target)
        .ok()
        .map(|p| p.key.to_string());
    match result {
        Ok(i) => Row {
            platform,
            target: req.target.triple.clone(),
            status: if i.repaired.is_some() {
                Status::Repaired
            } else if i.downloaded {
                Status::Downloaded
            } else if reporter.installed(&i.asset) {
                Status::Extracted
            } else {
                Status::Cached
            },
            digest_label: Some(i.digest_source.label().to_string()),
            asset: Some(i.asset),
            url: Some(i.url),
            sha256: Some(i.sha256),
            digest_source: Some(i.digest_source.to_string()),
            lib_dir: Some(output::tidy_path(&i.lib_dir)),
            entry_dir: Some(i.entry_dir),
            repaired: i.repaired.map(|r| r.to_string()),
            error: None,
        },
        Err(e) => {
            // Name the asset that was attempted, when the plan (no network) can tell.
            let plan = fetcher.plan(req).ok();
            Row {
                platform,
                target: req.target.triple.clone(),
                status: Status::Failed,
                asset: plan.as_ref().map(|p| p.asset.clone()),
                url: plan.map(|p| p.url),
                sha256: None,
                digest_source: None,
                digest_label: None,
                lib_dir: None,
                entry_dir: None,
                repaired: None,
                error: Some(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_by_key_or_triple_deduplicated() {
        let keys = ["linux-x64", "aarch64-apple-darwin", "linux-x64"].map(String::from);
        let got: Vec<&str> = parse_platforms(&keys)
            .unwrap()
            .iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(got, ["linux-x64", "macos-arm64"]);
    }

    #[test]
    fn unknown_platform_lists_the_known_ones() {
        let msg = parse_platforms(&["beos-x86".into()]).unwrap_err().message;
        assert!(
            msg.contains("beos-x86") && msg.contains("windows-arm64"),
            "{msg}"
        );
    }
}
