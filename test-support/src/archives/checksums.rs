//! Digests and the project's trust-anchor format (`checksums.toml`).

use std::fmt::Write as _;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex sha256 of everything `r` yields, read in chunks.
pub fn sha256_reader(mut r: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_reader(std::fs::File::open(path)?)
}

/// [`sha256_file`] and the file's size, with errors naming the file: what a download is
/// checked against its pinned digest with.
pub fn sha256_and_size(path: &Path) -> Result<(String, u64), String> {
    let sha256 = sha256_file(path).map_err(|e| format!("hashing {}: {e}", path.display()))?;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("stat {}: {e}", path.display()))?
        .len();
    Ok((sha256, size))
}

/// Renders `(tag, asset, sha256, size)` entries as `checksums.toml`: one table per tag (in
/// first-seen order), one inline table per asset:
///
/// ```toml
/// [b10199-fixture]
/// "llama-b10199-fixture-bin-ubuntu-x64.tar.gz" = { sha256 = "<64 hex>", size = 123 }
/// ```
pub fn checksums_toml(entries: &[(&str, &str, &str, u64)]) -> String {
    let mut tags: Vec<&str> = Vec::new();
    for (tag, ..) in entries {
        if !tags.contains(tag) {
            tags.push(tag);
        }
    }
    let mut out = String::new();
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "[{}]", toml_key(tag));
        for (_, asset, sha, size) in entries.iter().filter(|e| e.0 == *tag) {
            let _ = writeln!(
                out,
                "{} = {{ sha256 = \"{sha}\", size = {size} }}",
                toml_string(asset)
            );
        }
    }
    out
}

/// Bare key when TOML allows it (tags like `b10199-fixture`), else a quoted one.
fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare { k.to_owned() } else { toml_string(k) }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_reader(&b"abc"[..]).unwrap(), sha256_hex(b"abc"));
    }

    #[test]
    fn toml_format() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let text = checksums_toml(&[
            (
                "b10199-fixture",
                "llama-b10199-fixture-bin-ubuntu-x64.tar.gz",
                &a,
                123,
            ),
            ("b1", "x.zip", &b, 5),
            (
                "b10199-fixture",
                "llama-b10199-fixture-bin-win-cpu-x64.zip",
                &b,
                7,
            ),
        ]);
        let expected = format!(
            "[b10199-fixture]\n\"llama-b10199-fixture-bin-ubuntu-x64.tar.gz\" = {{ sha256 = \"{a}\", size = 123 }}\n\
             \"llama-b10199-fixture-bin-win-cpu-x64.zip\" = {{ sha256 = \"{b}\", size = 7 }}\n\
             \n[b1]\n\"x.zip\" = {{ sha256 = \"{b}\", size = 5 }}\n"
        );
        assert_eq!(text, expected);
        assert_eq!(toml_key("v0.1.2"), "\"v0.1.2\"");
    }
}
