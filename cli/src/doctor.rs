//! `doctor`: what a build on this machine would do, and why — without downloading anything.
//! Problems that would break a build are listed and make the exit code non-zero; the report is
//! printed either way.

use std::collections::BTreeMap;
use std::path::PathBuf;

use llama_prebuilt_fetch::host_probe::HostProbe;
use llama_prebuilt_fetch::{Fetcher, Platform, Request, Target, asset, vars};
use serde::Serialize;

use crate::args::DoctorArgs;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output::{self, human_bytes};
use crate::settings::{self, Chosen};
use crate::verify::check_cache;

#[derive(Debug, Default, Serialize)]
struct Report {
    ok: bool,
    target: String,
    target_source: String,
    platform: Option<String>,
    /// The resolved tag (`None` when it could not be resolved).
    tag: Option<String>,
    /// The tag as asked for (`b10199`, `newest`).
    tag_requested: String,
    tag_source: String,
    variant: String,
    variant_source: String,
    /// What `auto` resolved to, when the variant is `auto`.
    variant_resolved: Option<String>,
    /// What the GPU probe found on this machine and what `auto` would pick.
    gpu: Gpu,
    asset: Option<String>,
    /// The CUDA runtime archive a CUDA variant also fetches.
    runtime_asset: Option<String>,
    candidates: Vec<String>,
    url: Option<String>,
    mirror: Option<String>,
    api_base: String,
    digest: Option<Digest>,
    cache: CacheState,
    offline: bool,
    offline_reason: Option<String>,
    /// Every variable the build script reads that is set; `GITHUB_TOKEN` only as `set`.
    overrides: BTreeMap<String, String>,
    /// What a build would do, in a sentence.
    action: String,
    problems: Vec<String>,
}

/// The host GPU probe and the `auto` decision.
#[derive(Debug, Default, Serialize)]
struct Gpu {
    /// The probe's findings in words (NVIDIA line, Vulkan line).
    found: Vec<String>,
    nvidia_driver: Option<String>,
    nvidia_evidence: Option<PathBuf>,
    vulkan_loader: Option<PathBuf>,
    vulkan_icds: Vec<PathBuf>,
    software_icds: Vec<PathBuf>,
    icd_source: String,
    /// The variant `LLAMA_PREBUILT_VARIANT=auto` would pick for the target (`None` when the
    /// tag or target could not be resolved).
    auto_variant: Option<String>,
    /// Why.
    auto_reasons: Vec<String>,
}

impl Gpu {
    fn from_probe(p: &HostProbe) -> Gpu {
        Gpu {
            found: p.describe(),
            nvidia_driver: p.nvidia.as_ref().map(|n| {
                n.version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "unknown version".into())
            }),
            nvidia_evidence: p.nvidia.as_ref().map(|n| n.evidence.clone()),
            vulkan_loader: p.vulkan_loader.clone(),
            vulkan_icds: p.vulkan_icds.clone(),
            software_icds: p.software_icds.clone(),
            icd_source: p.icd_source.clone(),
            auto_variant: None,
            auto_reasons: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Digest {
    sha256: String,
    size: Option<u64>,
    source: String,
    label: String,
}

#[derive(Debug, Default, Serialize)]
struct CacheState {
    root: Option<PathBuf>,
    state: EntryState,
    entry_dir: Option<PathBuf>,
    lib_dir: Option<PathBuf>,
    problem: Option<String>,
}

/// The cache entry a build would use, as far as doctor could tell (`cached`, `corrupt`,
/// `absent` or `unknown` in JSON).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum EntryState {
    /// Present and every file verifies.
    Cached,
    /// Present but damaged; a build repairs it.
    Corrupt,
    /// Not in the cache; a build fetches it.
    Absent,
    /// Not looked at (no asset could be resolved).
    #[default]
    Unknown,
}

pub fn run(ctx: Ctx, args: &DoctorArgs) -> CmdResult {
    let report = diagnose(args);
    if ctx.json {
        output::json(&report)?;
    } else {
        output::write(&render(&report))?;
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::after_report(format!(
            "doctor found {} problem(s) that would stop a build:\n  - {}",
            report.problems.len(),
            report.problems.join("\n  - ")
        )))
    }
}

fn diagnose(args: &DoctorArgs) -> Report {
    let config = settings::config();
    let (target, target_source) = settings::target(args.target.as_deref());
    let Chosen {
        value: spec,
        source: tag_source,
    } = settings::version(None);
    let Chosen {
        value: variant,
        source: variant_source,
    } = settings::variant(None);
    let probe = HostProbe::detect();
    let mut r = Report {
        target: target.triple.clone(),
        target_source: target_source.into(),
        tag_requested: spec.clone(),
        tag_source,
        variant: variant.clone(),
        variant_source,
        mirror: config.mirror.clone(),
        api_base: config.api_base().to_string(),
        offline: config.offline.is_some(),
        offline_reason: config.offline.clone(),
        overrides: overrides(),
        gpu: Gpu::from_probe(&probe),
        cache: CacheState::default(),
        ..Report::default()
    };
    let lib_dir = settings::env(vars::LIB_DIR);
    let docs_rs = settings::env(vars::DOCS_RS).is_some();
    r.action = if docs_rs {
        "nothing to download: a docs.rs build uses the vendored headers only".into()
    } else if let Some(dir) = &lib_dir {
        format!("link the libraries in {dir} (LLAMA_LIB_DIR); no download")
    } else {
        String::new()
    };
    let needs_fetch = r.action.is_empty();

    match Platform::for_target(&target) {
        Ok(p) => r.platform = Some(p.key.into()),
        Err(e) if needs_fetch => r.problems.push(e.to_string()),
        Err(_) => {}
    }
    let fetcher = match Fetcher::new(config.clone()) {
        Ok(f) => f,
        Err(e) => {
            r.problems.push(e.to_string());
            r.cache.root = settings::cache_root(&config).ok();
            return finish(r);
        }
    };
    r.cache.root = Some(fetcher.cache().root().to_path_buf());
    if let Some(reason) = fetcher.fallback_reason() {
        r.problems.push(reason.to_string());
    }
    let newest = matches!(spec.as_str(), "newest" | "latest");
    let tag = if newest && !needs_fetch {
        None
    } else if newest && config.offline.is_some() {
        r.problems.push(format!(
            "`{spec}` ({}) needs the GitHub release API, but the network is off ({}); pin a tag instead",
            r.tag_source,
            config.offline.as_deref().unwrap_or_default()
        ));
        None
    } else if newest {
        // A build would ask the API too; say what it would find.
        fetcher
            .resolve_tag(&spec, &target, &variant)
            .map_err(|e| r.problems.push(e.to_string()))
            .ok()
    } else {
        asset::check_tag(&spec)
            .map(|_| spec.clone())
            .map_err(|e| r.problems.push(e.to_string()))
            .ok()
    };
    r.tag = tag.clone();
    let (Some(tag), Some(_)) = (tag, &r.platform) else {
        return finish(r);
    };

    let host = Target::host();
    match fetcher.auto_variant(&tag, &target, &host.triple, || probe.clone()) {
        Ok(choice) => {
            r.gpu.auto_variant = Some(choice.variant);
            r.gpu.auto_reasons = choice.reasons;
        }
        Err(e) if variant == "auto" => {
            r.problems.push(e.to_string());
            return finish(r);
        }
        Err(e) => r.gpu.auto_reasons = vec![e.to_string()],
    }
    let variant = match (&*variant, &r.gpu.auto_variant) {
        ("auto", Some(chosen)) => {
            r.variant_resolved = Some(chosen.clone());
            chosen.clone()
        }
        _ => variant,
    };
    let req = Request {
        tag: tag.clone(),
        target,
        variant,
    };
    let plan = match fetcher.plan(&req) {
        Ok(p) => p,
        Err(e) => {
            r.problems.push(e.to_string());
            return finish(r);
        }
    };
    r.candidates = plan.candidates.clone();
    r.asset = Some(plan.asset.clone());
    r.runtime_asset = plan.runtime.clone();
    r.url = Some(plan.url.clone());
    r.digest = plan.expected.as_ref().map(|e| Digest {
        sha256: e.sha256.clone(),
        size: e.size,
        source: e.source.to_string(),
        label: e.source.label().into(),
    });
    match &plan.cached {
        Some(dir) => {
            let entry = check_cache(&fetcher)
                .into_iter()
                .find(|e| e.tag == tag && e.asset == plan.asset);
            r.cache.entry_dir = Some(dir.clone());
            match entry {
                Some(e) if e.ok => {
                    r.cache.state = EntryState::Cached;
                    r.cache.lib_dir = Some(e.lib_dir);
                }
                Some(e) => {
                    r.cache.state = EntryState::Corrupt;
                    r.cache.problem = e.problem;
                }
                None => r.cache.state = EntryState::Absent,
            }
        }
        None => r.cache.state = EntryState::Absent,
    }
    if !needs_fetch {
        return finish(r);
    }

    let from = r
        .digest
        .as_ref()
        .map(|d| format!("the sha256 from {}", d.source));
    let api = format!(
        "the digest the GitHub release API publishes ({})",
        r.api_base
    );
    r.action = if let Some(archive) = &config.archive {
        format!(
            "verify the local archive {} against {}, then extract it",
            archive.display(),
            from.unwrap_or(api)
        )
    } else if r.cache.state == EntryState::Cached {
        format!(
            "use the cached libraries in {}",
            r.cache
                .lib_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    } else if let Some(reason) = &config.offline {
        r.problems.push(format!(
            "offline ({reason}) and {} is not in the cache; set LLAMA_LIB_DIR, LLAMA_PREBUILT_ARCHIVE or a reachable \
             LLAMA_PREBUILT_MIRROR, or download it first (`llama-prebuilt download` without offline)",
            plan.asset
        ));
        "fail: nothing usable is cached and the network is off".into()
    } else {
        let size = r
            .digest
            .as_ref()
            .and_then(|d| d.size)
            .map(|s| format!(" ({})", human_bytes(s)))
            .unwrap_or_default();
        let verb = if r.cache.state == EntryState::Corrupt {
            "rebuild the corrupt cache entry: download"
        } else {
            "download"
        };
        format!(
            "{verb} {}{size} and verify it against {}",
            plan.url,
            from.unwrap_or(api)
        )
    };
    finish(r)
}

fn finish(mut r: Report) -> Report {
    if r.action.is_empty() {
        r.action = "fail (see the problems)".into();
    }
    r.ok = r.problems.is_empty();
    r
}

/// Every variable the build script reads that is set. The token's value is never shown.
fn overrides() -> BTreeMap<String, String> {
    vars::ALL
        .iter()
        .filter_map(|name| {
            let v = settings::env(name)?;
            Some((
                name.to_string(),
                if *name == vars::GITHUB_TOKEN {
                    "set".to_string()
                } else {
                    v
                },
            ))
        })
        .collect()
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<13} {v}\n"));
    kv(
        "target",
        format!(
            "{} ({}){}",
            r.target,
            r.target_source,
            r.platform
                .as_ref()
                .map(|p| format!(", platform {p}"))
                .unwrap_or_default()
        ),
    );
    kv(
        "tag",
        match &r.tag {
            Some(t) if *t != r.tag_requested => {
                format!("{t} ({} from {})", r.tag_requested, r.tag_source)
            }
            Some(t) => format!("{t} ({})", r.tag_source),
            None => format!("{} ({}), unresolved", r.tag_requested, r.tag_source),
        },
    );
    kv(
        "variant",
        match &r.variant_resolved {
            Some(v) => format!("{} -> {v} ({})", r.variant, r.variant_source),
            None => format!("{} ({})", r.variant, r.variant_source),
        },
    );
    for (i, line) in r.gpu.found.iter().enumerate() {
        kv(if i == 0 { "gpu probe" } else { "" }, line.clone());
    }
    // The probe's own lines are shown just above; the decision adds the rest.
    let why: Vec<&str> = r
        .gpu
        .auto_reasons
        .iter()
        .filter(|x| !r.gpu.found.contains(x))
        .map(String::as_str)
        .collect();
    if let Some(v) = &r.gpu.auto_variant {
        kv("auto picks", format!("{v}: {}", why.join("; ")));
    } else if !r.gpu.auto_reasons.is_empty() {
        kv(
            "auto picks",
            format!("nothing ({})", r.gpu.auto_reasons.join("; ")),
        );
    }
    if let Some(a) = &r.asset {
        kv("asset", a.clone());
    }
    if let Some(rt) = &r.runtime_asset {
        kv(
            "cuda runtime",
            format!("{rt} (staged next to the libraries)"),
        );
    }
    if r.candidates.len() > 1 {
        kv("candidates", r.candidates.join(", "));
    }
    if let Some(u) = &r.url {
        kv("url", u.clone());
    }
    kv(
        "mirror",
        r.mirror
            .clone()
            .unwrap_or_else(|| "none (official GitHub releases)".into()),
    );
    kv("api", r.api_base.clone());
    kv(
        "digest",
        match &r.digest {
            Some(d) => format!("{} from {} [{}]", d.sha256, d.source, d.label),
            None if r.offline => "none known locally (the API cannot be asked offline)".into(),
            None => "none known locally; a build would take the GitHub release API's digest".into(),
        },
    );
    kv(
        "cache root",
        r.cache
            .root
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "?".into()),
    );
    kv(
        "cache state",
        match r.cache.state {
            EntryState::Cached => format!(
                "cached and verified: {}",
                r.cache
                    .lib_dir
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            EntryState::Corrupt => format!(
                "CORRUPT ({}); a build repairs it",
                r.cache.problem.as_deref().unwrap_or("?")
            ),
            EntryState::Absent => "not cached".into(),
            EntryState::Unknown => "unknown".into(),
        },
    );
    kv(
        "network",
        match &r.offline_reason {
            Some(reason) => format!("offline ({reason})"),
            None => "online".into(),
        },
    );
    if r.overrides.is_empty() {
        kv("overrides", "none".into());
    } else {
        for (i, (k, v)) in r.overrides.iter().enumerate() {
            kv(if i == 0 { "overrides" } else { "" }, format!("{k}={v}"));
        }
    }
    kv("a build would", r.action.clone());
    out
}
