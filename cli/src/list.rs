//! `list [--version TAG]`: a release's assets, which platform (and variant) uses each, and the
//! asset every supported platform would use. From the release API; offline (or when the API is
//! unreachable) from what the checksums files record for the tag.

use llama_prebuilt_fetch::checksums::Checksums;
use llama_prebuilt_fetch::{Fetcher, PLATFORMS, Platform, Target, asset};
use serde::Serialize;

use crate::args::ListArgs;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output::{self, Table, human_bytes};
use crate::settings;

#[derive(Debug, Clone, Serialize)]
struct Asset {
    name: String,
    size: Option<u64>,
    sha256: Option<String>,
    used_by: Vec<UsedBy>,
}

#[derive(Debug, Clone, Serialize)]
struct UsedBy {
    platform: &'static str,
    target: &'static str,
    variant: String,
}

#[derive(Debug, Serialize)]
struct PlatformChoice {
    platform: &'static str,
    target: &'static str,
    this_machine: bool,
    /// The asset this platform would use, `None` if the release has none for it.
    asset: Option<String>,
    /// Why there is no asset (variant unavailable on the platform, missing from the release).
    note: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    tag: &'a str,
    variant: &'a str,
    /// `github-api`, or `checksums` when listed from the checksums files.
    source: &'a str,
    assets: &'a [Asset],
    platforms: &'a [PlatformChoice],
}

pub fn run(ctx: Ctx, args: &ListArgs) -> CmdResult {
    let config = settings::config();
    let checksums_file = config.checksums_file.clone();
    let offline = config.offline.clone();
    let variant = settings::variant(args.variant.as_deref()).value;
    let spec = settings::version(args.version.as_deref()).value;
    let fetcher = Fetcher::new(config)?;
    let host = Target::host();
    let host_platform = Platform::for_target(&host).ok();
    // `newest` for this machine's platform (or the most common one when it has none).
    let probe = Target::from_triple(host_platform.map_or("x86_64-unknown-linux-gnu", |p| p.triple));
    let tag = fetcher.resolve_tag(&spec, &probe, &variant)?;

    let (mut assets, source) = match fetcher.release(&tag) {
        Ok(rel) => (
            rel.assets
                .into_iter()
                .map(|a| Asset {
                    sha256: a
                        .digest
                        .as_deref()
                        .and_then(llama_prebuilt_fetch::checksums::normalize_sha256),
                    name: a.name,
                    size: Some(a.size),
                    used_by: Vec::new(),
                })
                .collect::<Vec<_>>(),
            "github-api",
        ),
        Err(err) => {
            let local = recorded_assets(&tag, checksums_file.as_deref())?;
            if local.is_empty() {
                return Err(err.into());
            }
            if !ctx.quiet {
                let why = match &offline {
                    Some(reason) => format!("offline ({reason})"),
                    None => format!(
                        "the release API failed: {}",
                        err.to_string().lines().next().unwrap_or_default()
                    ),
                };
                eprintln!(
                    "note: {why}; listing the assets the checksums files record for {tag}, not the whole release"
                );
            }
            (local, "checksums")
        }
    };
    for a in &mut assets {
        a.used_by = used_by(&tag, &a.name);
    }
    let platforms: Vec<PlatformChoice> = PLATFORMS
        .iter()
        .map(|p| {
            let this_machine = host_platform.is_some_and(|h| h.key == p.key);
            let (asset, note) = match asset::candidates(&tag, p, &variant) {
                Ok(c) => match c.iter().find(|n| assets.iter().any(|a| &a.name == *n)) {
                    Some(n) => (Some(n.clone()), None),
                    None => (
                        None,
                        Some(format!("not in this listing (expected {})", c[0])),
                    ),
                },
                Err(_) => (
                    None,
                    Some(format!("no `{variant}` variant for this platform")),
                ),
            };
            PlatformChoice {
                platform: p.key,
                target: p.triple,
                this_machine,
                asset,
                note,
            }
        })
        .collect();

    if ctx.json {
        return output::json(&Report {
            ok: true,
            tag: &tag,
            variant: &variant,
            source,
            assets: &assets,
            platforms: &platforms,
        });
    }
    let mut table = Table::new(&["ASSET", "SIZE", "USED BY"]);
    for a in &assets {
        let users: Vec<String> = a
            .used_by
            .iter()
            .map(|u| format!("{} ({})", u.platform, u.variant))
            .collect();
        table.row(vec![
            a.name.clone(),
            a.size.map(human_bytes).unwrap_or_else(|| "?".into()),
            if users.is_empty() {
                "-".into()
            } else {
                users.join(", ")
            },
        ]);
    }
    let mut per_platform = Table::new(&["PLATFORM", "TARGET", "ASSET"]);
    for p in &platforms {
        per_platform.row(vec![
            format!("{}{}", p.platform, if p.this_machine { " *" } else { "" }),
            p.target.to_string(),
            p.asset
                .clone()
                .or_else(|| p.note.clone())
                .unwrap_or_default(),
        ]);
    }
    let from = if source == "github-api" {
        "from the release API"
    } else {
        "recorded in the checksums files"
    };
    output::write(&format!(
        "llama.cpp {tag}: {} assets ({from})\n{}\n`{variant}` asset per platform (* = this machine):\n{}",
        assets.len(),
        table.render(),
        per_platform.render()
    ))
}

/// The platforms and variants whose candidates include `name`, found by reading the name's
/// `<os>[-<backend>]-<arch>` part and asking the asset table whether it would pick it.
fn used_by(tag: &str, name: &str) -> Vec<UsedBy> {
    let prefix = format!("llama-{tag}-bin-");
    let Some(middle) = name.strip_prefix(&prefix).map(asset::asset_stem) else {
        return Vec::new();
    };
    PLATFORMS
        .iter()
        .filter_map(|p| {
            let rest = middle
                .strip_prefix(p.asset_os)?
                .strip_suffix(p.asset_arch)?;
            let infix = match rest {
                "-" => "",
                r => r.strip_prefix('-')?.strip_suffix('-')?,
            };
            let variant = if infix.is_empty() { "cpu" } else { infix };
            let ok = asset::candidates(tag, p, variant).is_ok_and(|c| c.iter().any(|c| c == name));
            ok.then(|| UsedBy {
                platform: p.key,
                target: p.triple,
                variant: variant.to_string(),
            })
        })
        .collect()
}

/// Assets the embedded checksums and `LLAMA_PREBUILT_CHECKSUMS` record for `tag`.
fn recorded_assets(tag: &str, extra: Option<&std::path::Path>) -> Result<Vec<Asset>, CliError> {
    let mut sources = vec![Checksums::embedded()];
    if let Some(path) = extra {
        sources.push(Checksums::load(path)?);
    }
    let mut out: Vec<Asset> = Vec::new();
    for c in &sources {
        for (name, d) in c.assets(tag) {
            if !out.iter().any(|a| a.name == name) {
                out.push(Asset {
                    name: name.to_string(),
                    size: d.size,
                    sha256: Some(d.sha256.clone()),
                    used_by: Vec::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(name: &str) -> Vec<String> {
        used_by("b10199", name)
            .iter()
            .map(|u| format!("{}/{}", u.platform, u.variant))
            .collect()
    }

    #[test]
    fn names_map_back_to_platforms_and_variants() {
        assert_eq!(
            users("llama-b10199-bin-ubuntu-x64.tar.gz"),
            ["linux-x64/cpu"]
        );
        assert_eq!(users("llama-b10199-bin-ubuntu-x64.zip"), ["linux-x64/cpu"]);
        assert_eq!(
            users("llama-b10199-bin-win-cpu-arm64.zip"),
            ["windows-arm64/cpu"]
        );
        assert_eq!(
            users("llama-b10199-bin-win-arm64.zip"),
            ["windows-arm64/cpu"]
        );
        assert_eq!(
            users("llama-b10199-bin-win-cuda-12.4-x64.zip"),
            ["windows-x64/cuda-12.4"]
        );
        assert_eq!(
            users("llama-b10199-bin-ubuntu-vulkan-arm64.tar.gz"),
            ["linux-arm64/vulkan"]
        );
        assert_eq!(
            users("llama-b10199-bin-ubuntu-s390x.tar.gz"),
            ["linux-s390x/cpu"]
        );
        assert!(users("cudart-llama-bin-win-cuda-12.4-x64.zip").is_empty());
        assert!(users("llama-b10199-xcframework.zip").is_empty());
        assert!(users("llama-b10199-bin-macos-cuda-12.4-arm64.tar.gz").is_empty());
    }

    #[test]
    fn embedded_checksums_list_the_pinned_tag() {
        let a = recorded_assets("b10199", None).unwrap();
        assert!(
            a.iter()
                .any(|a| a.name == "llama-b10199-bin-ubuntu-x64.tar.gz"
                    && a.size == Some(16_434_223))
        );
        assert!(recorded_assets("b1", None).unwrap().is_empty());
    }
}
