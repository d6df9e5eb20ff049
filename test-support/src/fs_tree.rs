//! Listing a directory tree, to assert what a cache or extraction left behind.

use std::path::Path;

/// Every path under `root`, relative and '/'-separated, sorted (symlinks are listed, not
/// followed).
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if let Ok(rel) = p.strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            walk(base, &p, out);
        }
    }
}
