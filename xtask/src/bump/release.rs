//! The new tag as GitHub (or a mirror) describes it: the release and its digests through the
//! fetch library's release API client, which assets the fetch library's asset table would use,
//! and the tag's headers from its source tree.

use std::path::{Path, PathBuf};

use llama_prebuilt_fetch::checksums::normalize_sha256;
use llama_prebuilt_fetch::http::Http;
use llama_prebuilt_fetch::release::{self, Release};
use llama_prebuilt_fetch::{PLATFORMS, Platform, asset};

/// How many pages of 50 releases `newest` looks through.
const NEWEST_PAGES: u32 = 3;

/// The release for `spec` (`b<digits>`, or `newest`: the newest official release with a CPU
/// asset for every supported target).
pub(crate) fn resolve(http: &Http, api_base: &str, spec: &str) -> Result<Release, String> {
    if spec == "newest" || spec == "latest" {
        return release::newest_build_release(http, api_base, NEWEST_PAGES, |r| {
            missing_cpu(r).is_empty()
        })
        .map_err(|e| {
            format!(
                "cannot find the newest release with CPU assets for every supported target: {e}"
            )
        });
    }
    if asset::official_build_number(spec).is_none() {
        return Err(format!(
            "`{spec}` is not an official llama.cpp release tag: bump pins `b<digits>` tags (or `newest`); \
             suffixed tags such as `b10199-fixture` are non-official builds and never pinned"
        ));
    }
    asset::check_tag(spec).map_err(|e| e.to_string())?;
    release::fetch_release(http, api_base, spec).map_err(|e| {
        format!("cannot resolve {spec} through the release API (is it a published release?): {e}")
    })
}

/// Supported platforms whose CPU asset the release lacks: `(platform, expected asset name)`.
pub(crate) fn missing_cpu(r: &Release) -> Vec<(&'static Platform, String)> {
    PLATFORMS
        .iter()
        .filter_map(|p| {
            let names = asset::candidates(&r.tag, p, "cpu").ok()?;
            (!names.iter().any(|n| r.asset(n).is_some())).then(|| (p, names[0].clone()))
        })
        .collect()
}

/// Refuses a release that lacks a CPU asset for any supported target, naming each.
pub(crate) fn check_cpu_assets(r: &Release) -> Result<(), String> {
    let missing = missing_cpu(r);
    if missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = missing
        .iter()
        .map(|(p, name)| format!("  {} ({}): no {name}", p.key, p.triple))
        .collect();
    Err(format!(
        "{} lacks a CPU asset for {} supported target(s):\n{}\nrefusing to pin it: a build for those targets would fail",
        r.tag,
        missing.len(),
        lines.join("\n")
    ))
}

/// One `checksums.toml` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// What the release offers, sorted out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Assets {
    /// Assets the asset table would use (any platform, any variant), with their digests.
    pub recorded: Vec<Entry>,
    /// Such assets without a published digest (not recorded).
    pub no_digest: Vec<String>,
    /// Assets the table does not know (tools bundles, runtimes of other kinds, ...).
    pub ignored: Vec<String>,
}

/// Sorts the release's assets into those to record and the rest. A CPU asset without a
/// digest is an error: it is what every default build downloads.
pub(crate) fn assets(r: &Release) -> Result<Assets, String> {
    let mut out = Assets::default();
    let mut cpu_without_digest = Vec::new();
    for a in &r.assets {
        let users = used_by(&r.tag, &a.name);
        if users.is_empty() {
            out.ignored.push(a.name.clone());
            continue;
        }
        match a.digest.as_deref().and_then(normalize_sha256) {
            Some(sha256) => out.recorded.push(Entry {
                name: a.name.clone(),
                sha256,
                size: a.size,
            }),
            None => {
                if users.iter().any(|(_, v)| v == "cpu") && !a.name.starts_with("cudart-") {
                    cpu_without_digest.push(a.name.clone());
                }
                out.no_digest.push(a.name.clone());
            }
        }
    }
    if !cpu_without_digest.is_empty() {
        return Err(format!(
            "the release API publishes no digest for {} CPU asset(s) of {}: {}\nrefusing to pin them unverified",
            cpu_without_digest.len(),
            r.tag,
            cpu_without_digest.join(", ")
        ));
    }
    out.recorded.sort_by(|a, b| a.name.cmp(&b.name));
    out.ignored.sort();
    out.no_digest.sort();
    Ok(out)
}

/// The platforms and variants whose candidates include `name` (read the name's
/// `<os>[-<backend>]-<arch>` part and ask the asset table whether it would pick it). A CUDA
/// runtime archive (`cudart-llama-<tag>-bin-…`, or `cudart-llama-bin-…` without the tag) counts
/// as used by the variant it belongs to.
pub(crate) fn used_by(tag: &str, name: &str) -> Vec<(&'static str, String)> {
    let bare = match name.strip_prefix("cudart-") {
        Some(rest) => match rest.strip_prefix("llama-bin-") {
            Some(r) => format!("llama-{tag}-bin-{r}"),
            None => rest.to_string(),
        },
        None => name.to_string(),
    };
    let prefix = format!("llama-{tag}-bin-");
    let Some(middle) = bare.strip_prefix(&prefix).map(asset::asset_stem) else {
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
            let ok = asset::candidates(tag, p, variant).is_ok_and(|c| c.contains(&bare));
            ok.then(|| (p.key, variant.to_string()))
        })
        .collect()
}

/// The files `vendor-headers/` holds, by their path in the llama.cpp source tree: what
/// `wrapper.h` reads (the fetch library's list) and the multimodal headers vendored for later.
pub(crate) fn vendored_paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = llama_prebuilt_fetch::headers::SOURCE_HEADERS.to_vec();
    paths.extend(["tools/mtmd/mtmd.h", "tools/mtmd/mtmd-helper.h"]);
    paths
}

/// A tag's headers, downloaded into one flat directory.
pub(crate) struct Headers {
    pub dir: PathBuf,
    /// `(path in the source, file name)`.
    pub files: Vec<(&'static str, String)>,
    /// Whether the source tree's `LICENSE` was downloaded too.
    pub license: bool,
    /// `<base>/<tag>`.
    pub source: String,
}

/// Downloads `tag`'s headers (and its LICENSE, if the source serves it) from `base` (the
/// raw.githubusercontent.com layout: `<base>/<tag>/<path>`; `file://` works too) into `dir`.
pub(crate) fn fetch_headers(
    http: &Http,
    base: &str,
    tag: &str,
    dir: &Path,
) -> Result<Headers, String> {
    let mut files = Vec::new();
    for path in vendored_paths() {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        get(http, base, tag, path, &dir.join(&name))
            .map_err(|e| format!("cannot fetch the headers of {tag}: {e}"))?;
        files.push((path, name));
    }
    let license = match get(http, base, tag, "LICENSE", &dir.join("LICENSE")) {
        Ok(()) => true,
        Err(e) if e.contains("404") || e.contains("No such file") => false,
        Err(e) => return Err(format!("cannot fetch the LICENSE of {tag}: {e}")),
    };
    Ok(Headers {
        dir: dir.to_path_buf(),
        files,
        license,
        source: format!("{base}/{tag}"),
    })
}

fn get(http: &Http, base: &str, tag: &str, path: &str, dest: &Path) -> Result<(), String> {
    let url = format!("{base}/{tag}/{path}");
    match llama_prebuilt_fetch::file_url_path(base) {
        Some(root) => {
            let from = root.join(tag).join(path);
            std::fs::copy(&from, dest)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", from.display()))
        }
        None => http
            .download(&url, dest, path, &llama_prebuilt_fetch::progress::Silent)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llama_prebuilt_fetch::release::ReleaseAsset;

    fn rel(tag: &str, names: &[&str]) -> Release {
        Release {
            tag: tag.into(),
            prerelease: true,
            draft: false,
            assets: names
                .iter()
                .map(|n| ReleaseAsset {
                    name: n.to_string(),
                    size: 3,
                    url: String::new(),
                    digest: Some(format!("sha256:{}", "ab".repeat(32))),
                })
                .collect(),
        }
    }

    #[test]
    fn the_table_decides_what_is_recorded() {
        let t = "b10605";
        let users = |n: &str| used_by(t, n);
        assert_eq!(
            users("llama-b10605-bin-ubuntu-x64.tar.gz"),
            [("linux-x64", "cpu".to_string())]
        );
        assert_eq!(
            users("llama-b10605-bin-win-cuda-12.4-x64.zip"),
            [("windows-x64", "cuda-12.4".to_string())]
        );
        assert_eq!(
            users("cudart-llama-bin-win-cuda-12.4-x64.zip"),
            [("windows-x64", "cuda-12.4".to_string())]
        );
        assert!(users("llama-b10605-xcframework.zip").is_empty());
        assert!(users("llama-b10605-bin-macos-vulkan-arm64.tar.gz").is_empty());
        assert!(
            users("llama-b10604-bin-ubuntu-x64.tar.gz").is_empty(),
            "another tag"
        );
    }

    #[test]
    fn missing_cpu_assets_are_named_with_their_platforms() {
        let r = rel(
            "b10605",
            &[
                "llama-b10605-bin-ubuntu-x64.tar.gz",
                "llama-b10605-bin-ubuntu-arm64.tar.gz",
                "llama-b10605-bin-macos-arm64.tar.gz",
                "llama-b10605-bin-macos-x64.tar.gz",
                "llama-b10605-bin-win-cpu-x64.zip",
                "llama-b10605-bin-win-vulkan-x64.zip",
            ],
        );
        let err = check_cpu_assets(&r).unwrap_err();
        assert!(
            err.starts_with("b10605 lacks a CPU asset for 2 supported target(s)"),
            "{err}"
        );
        assert!(
            err.contains(
                "linux-s390x (s390x-unknown-linux-gnu): no llama-b10605-bin-ubuntu-s390x.tar.gz"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "windows-arm64 (aarch64-pc-windows-msvc): no llama-b10605-bin-win-cpu-arm64.zip"
            ),
            "{err}"
        );
        let a = assets(&r).unwrap();
        assert_eq!(a.recorded.len(), 6);
    }

    #[test]
    fn a_cpu_asset_without_digest_is_refused_other_variants_are_skipped() {
        let mut r = rel(
            "b10605",
            &[
                "llama-b10605-bin-ubuntu-x64.tar.gz",
                "llama-b10605-bin-ubuntu-vulkan-x64.tar.gz",
                "notes.txt",
            ],
        );
        r.assets[1].digest = None;
        let a = assets(&r).unwrap();
        assert_eq!(a.recorded.len(), 1);
        assert_eq!(a.no_digest, ["llama-b10605-bin-ubuntu-vulkan-x64.tar.gz"]);
        assert_eq!(a.ignored, ["notes.txt"]);
        r.assets[0].digest = None;
        let err = assets(&r).unwrap_err();
        assert!(
            err.contains(
                "no digest for 1 CPU asset(s) of b10605: llama-b10605-bin-ubuntu-x64.tar.gz"
            ),
            "{err}"
        );
    }
}
