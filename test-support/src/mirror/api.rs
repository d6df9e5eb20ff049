//! GitHub-shaped JSON for the mirror's releases API.
//!
//! Only the fields the fetch library reads are promised (`tag_name`, `prerelease`, `draft`,
//! `assets[].{name,size,browser_download_url,digest,content_type}`); a few harmless extras
//! (`id`, `name`, `state`) make it look like the real thing to other clients.

use std::io;

use serde_json::{Value, json};

use super::state::ReleaseSnapshot;

/// GitHub's content type for the archive kinds llama.cpp publishes.
pub(crate) fn content_type(asset_name: &str) -> &'static str {
    if asset_name.ends_with(".tar.gz") || asset_name.ends_with(".tgz") {
        "application/gzip"
    } else if asset_name.ends_with(".zip") {
        "application/zip"
    } else if asset_name.ends_with(".txt") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// One release object. Computing digests may read large files, so this runs outside the lock.
pub(crate) fn release_json(r: &ReleaseSnapshot, download_base: &str) -> io::Result<Value> {
    let mut assets = Vec::with_capacity(r.assets.len());
    for (i, a) in r.assets.iter().enumerate() {
        let digest = if a.digest_published {
            Value::String(format!("sha256:{}", a.asset.sha256_hex()?))
        } else {
            Value::Null
        };
        assets.push(json!({
            "id": r.id * 10_000 + i as u64,
            "name": a.name,
            "label": "",
            "state": "uploaded",
            "size": a.asset.size,
            "content_type": content_type(&a.name),
            "digest": digest,
            "browser_download_url": format!("{download_base}/{}/{}", r.tag, a.name),
        }));
    }
    Ok(json!({
        "id": r.id,
        "tag_name": r.tag,
        "name": r.tag,
        "draft": false,
        "prerelease": r.prerelease,
        "assets": assets,
    }))
}

/// GitHub's error body for an unknown resource.
pub(crate) fn not_found_json() -> Vec<u8> {
    br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#
        .to_vec()
}
