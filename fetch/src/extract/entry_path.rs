//! Validation of entry names and link targets taken from an archive.
//!
//! Names are split on both `/` and `\` (a Windows tool may write either), so the
//! same archive means the same tree on every host. Nothing here touches the disk.

use std::fmt;
use std::path::PathBuf;

/// Longest entry name or symlink target accepted (the usual `PATH_MAX`).
pub(crate) const MAX_NAME_BYTES: usize = 4096;
/// Most components an entry path may have.
pub(crate) const MAX_COMPONENTS: usize = 64;

/// A validated entry path: one or more normal components, relative to the
/// extraction root, with no `.`, `..`, empty, absolute or drive-letter parts.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct RelPath(Vec<String>);

impl RelPath {
    pub(crate) fn components(&self) -> &[String] {
        &self.0
    }

    /// The path as a native relative [`PathBuf`].
    pub(crate) fn to_path_buf(&self) -> PathBuf {
        self.0.iter().collect()
    }

    /// The `/`-joined form, used as the key of the in-memory tree.
    pub(crate) fn key(&self) -> String {
        self.0.join("/")
    }

    pub(crate) fn from_components(components: Vec<String>) -> Option<RelPath> {
        if components.is_empty() {
            None
        } else {
            Some(RelPath(components))
        }
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// Parses a raw entry name.
///
/// Returns `Ok(None)` for names that denote the extraction root itself (`./`, `.`),
/// which a tar made with `tar -C dir .` starts with. The error is the reason the
/// name is unsafe, for [`super::ExtractError::UnsafePath`].
pub(crate) fn parse_entry_name(raw: &[u8]) -> Result<Option<RelPath>, &'static str> {
    let name = std::str::from_utf8(raw).map_err(|_| "its name is not valid UTF-8")?;
    if name.is_empty() {
        return Err("its name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("its name is longer than 4096 bytes");
    }
    if name.contains('\0') {
        return Err("its name contains a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err("it is an absolute path");
    }
    if has_drive_prefix(name) {
        return Err("it starts with a Windows drive letter");
    }
    if name.contains(':') {
        return Err("its name contains `:` (a Windows drive or stream separator)");
    }
    let mut components = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("it contains a `..` component"),
            normal => components.push(normal.to_owned()),
        }
    }
    if components.len() > MAX_COMPONENTS {
        return Err("it is nested more than 64 levels deep");
    }
    Ok(RelPath::from_components(components))
}

/// Checks the text of a symlink target before it is resolved.
///
/// Absolute targets return `Err(None)` (the caller reports an escaping symlink);
/// other malformed targets return `Err(Some(reason))`.
pub(crate) fn check_link_target(target: &str) -> Result<(), Option<&'static str>> {
    if target.is_empty() {
        return Err(Some("its symlink target is empty"));
    }
    if target.len() > MAX_NAME_BYTES {
        return Err(Some("its symlink target is longer than 4096 bytes"));
    }
    if target.contains('\0') {
        return Err(Some("its symlink target contains a NUL byte"));
    }
    if target.starts_with('/') || target.starts_with('\\') || has_drive_prefix(target) {
        return Err(None);
    }
    // On unix a backslash is an ordinary character and on Windows a separator:
    // the two readings resolve differently, so such targets are refused outright.
    if target.contains('\\') {
        return Err(Some("its symlink target contains a backslash"));
    }
    if target.contains(':') {
        return Err(Some("its symlink target contains `:`"));
    }
    Ok(())
}

/// `C:`, `c:foo`, ... : a drive-relative or drive-absolute Windows path.
fn has_drive_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> Vec<String> {
        parse_entry_name(name.as_bytes())
            .expect("safe")
            .expect("not root")
            .components()
            .to_vec()
    }

    #[test]
    fn normalizes_dots_and_separators() {
        assert_eq!(ok("llama-b1/libllama.so"), ["llama-b1", "libllama.so"]);
        assert_eq!(ok("./build/bin/"), ["build", "bin"]);
        assert_eq!(ok("a//b/./c"), ["a", "b", "c"]);
        assert_eq!(ok("a\\b"), ["a", "b"]);
        assert_eq!(parse_entry_name(b"./"), Ok(None));
        assert_eq!(parse_entry_name(b"."), Ok(None));
    }

    #[test]
    fn rejects_unsafe_names() {
        for (name, reason) in [
            ("../evil", "it contains a `..` component"),
            ("llama-b1/../../evil", "it contains a `..` component"),
            ("a\\..\\evil", "it contains a `..` component"),
            ("/etc/evil", "it is an absolute path"),
            ("\\\\server\\share", "it is an absolute path"),
            ("C:\\evil", "it starts with a Windows drive letter"),
            ("c:evil", "it starts with a Windows drive letter"),
            (
                "a/b:stream",
                "its name contains `:` (a Windows drive or stream separator)",
            ),
            ("a\0b", "its name contains a NUL byte"),
            ("", "its name is empty"),
        ] {
            assert_eq!(parse_entry_name(name.as_bytes()), Err(reason), "{name:?}");
        }
        assert_eq!(
            parse_entry_name(b"\xff"),
            Err("its name is not valid UTF-8")
        );
        let deep = "d/".repeat(65);
        assert_eq!(
            parse_entry_name(deep.as_bytes()),
            Err("it is nested more than 64 levels deep")
        );
        let long = "n".repeat(4097);
        assert_eq!(
            parse_entry_name(long.as_bytes()),
            Err("its name is longer than 4096 bytes")
        );
    }

    #[test]
    fn link_targets() {
        assert_eq!(check_link_target("libllama.so.0"), Ok(()));
        assert_eq!(check_link_target("../lib/x"), Ok(()));
        assert_eq!(check_link_target("/etc/passwd"), Err(None));
        assert_eq!(check_link_target("C:/x"), Err(None));
        assert!(check_link_target("a\\..\\..").is_err());
        assert!(check_link_target("").is_err());
        assert!(check_link_target(&"a/".repeat(2049)).is_err());
    }
}
