//! `cargo metadata --format-version 1`, parsed: what the msrv and unused-deps checks read
//! instead of parsing manifests by hand.

use std::path::Path;

use serde_json::Value;

use crate::world;

/// The JSON of `cargo metadata --format-version 1 [extra]` for the manifest at `manifest`.
pub(crate) fn read(manifest: &Path, extra: &[&str]) -> Result<Value, String> {
    let out = world::cargo()
        .args(["metadata", "--format-version", "1"])
        .args(extra)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// A string field of a JSON object (`None` when absent or null).
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An array field of a JSON object (empty when absent).
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
