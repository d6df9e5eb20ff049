//! The GitHub release API: one release's assets (with their `digest` fields) and the newest
//! `bNNNN` release. "Latest" never means `releases/latest`: since 2026 the `bNNNN` releases are
//! prereleases and `v0.x.y` releases carry no binaries (RELEASES.md).

use serde_json::Value;

use crate::asset::official_build_number;
use crate::error::{Error, Result};
use crate::http::Http;

/// A release as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Tag name (`b10199`).
    pub tag: String,
    /// Marked prerelease (all `bNNNN` releases are since 2026).
    pub prerelease: bool,
    /// Draft releases are never used.
    pub draft: bool,
    /// Its assets.
    pub assets: Vec<ReleaseAsset>,
}

/// One asset of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseAsset {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `browser_download_url`.
    pub url: String,
    /// `sha256:<hex>` when GitHub published it (assets since June 2025).
    pub digest: Option<String>,
}

impl Release {
    /// Parses one element of the API's JSON.
    pub fn from_json(v: &Value) -> Option<Release> {
        let assets = v
            .get("assets")?
            .as_array()?
            .iter()
            .filter_map(|a| {
                Some(ReleaseAsset {
                    name: a.get("name")?.as_str()?.to_string(),
                    size: a.get("size").and_then(Value::as_u64).unwrap_or(0),
                    url: a
                        .get("browser_download_url")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    digest: a.get("digest").and_then(Value::as_str).map(str::to_string),
                })
            })
            .collect();
        Some(Release {
            tag: v.get("tag_name")?.as_str()?.to_string(),
            prerelease: v
                .get("prerelease")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            draft: v.get("draft").and_then(Value::as_bool).unwrap_or(false),
            assets,
        })
    }

    /// The asset with this name.
    pub fn asset(&self, name: &str) -> Option<&ReleaseAsset> {
        self.assets.iter().find(|a| a.name == name)
    }
}

/// Fetches one release by tag.
pub fn fetch_release(http: &Http, api_base: &str, tag: &str) -> Result<Release> {
    let url = format!("{api_base}/releases/tags/{tag}");
    let v = http.get_json(&url)?;
    Release::from_json(&v).ok_or_else(|| Error::Api {
        url,
        detail: "unexpected JSON shape".into(),
    })
}

/// One page of releases, newest first.
pub fn list_releases(
    http: &Http,
    api_base: &str,
    page: u32,
    per_page: u32,
) -> Result<Vec<Release>> {
    let url = format!("{api_base}/releases?per_page={per_page}&page={page}");
    let v = http.get_json(&url)?;
    let arr = v.as_array().ok_or_else(|| Error::Api {
        url: url.clone(),
        detail: "expected a JSON array".into(),
    })?;
    Ok(arr.iter().filter_map(Release::from_json).collect())
}

/// The newest non-draft `bNNNN` release for which `usable` holds, scanning up to `max_pages`.
/// Only official tags count: a suffixed tag (`b10199-fixture`) is never the newest release.
pub fn newest_build_release(
    http: &Http,
    api_base: &str,
    max_pages: u32,
    usable: impl Fn(&Release) -> bool,
) -> Result<Release> {
    let mut best: Option<Release> = None;
    for page in 1..=max_pages {
        let releases = list_releases(http, api_base, page, 50)?;
        let done = releases.is_empty();
        for r in releases {
            let Some(n) = official_build_number(&r.tag) else {
                continue;
            };
            if r.draft || crate::asset::check_tag(&r.tag).is_err() || !usable(&r) {
                continue;
            }
            // Order by build number, not by the API's order, which follows creation dates.
            if best
                .as_ref()
                .and_then(|b| official_build_number(&b.tag))
                .is_none_or(|b| n > b)
            {
                best = Some(r);
            }
        }
        if done || best.is_some() {
            break;
        }
    }
    best.ok_or_else(|| Error::Api {
        url: format!("{api_base}/releases"),
        detail: format!(
            "no bNNNN release with the needed asset in the newest {} releases",
            max_pages * 50
        ),
    })
}
