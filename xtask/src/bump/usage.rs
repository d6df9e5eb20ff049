//! Where the safe crate uses an item: `file:line` of every line of `llama-prebuilt/**/*.rs`
//! that names it.
//!
//! A lexical search, on purpose: it needs no build and finds uses in code that no longer
//! compiles against the new bindings. A line counts when one of its identifiers is the item's
//! name (`sys::llama_sampler_init_penalties(` matches, `my_llama_sampler_init_penalties` does
//! not); comment lines (`//`, `///`, `//!`) are skipped. For a struct, a removed or retyped
//! field also counts as `.field` on lines of files that name the struct (uses such as
//! `params.n_threads` rarely repeat the type's name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::api::Breaking;

/// `file:line` references per breaking item (`kind name` as key), relative to `repo`.
pub(crate) fn find(
    repo: &Path,
    crate_dir: &str,
    items: &[Breaking],
) -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    collect(&repo.join(crate_dir), &mut files);
    files.sort();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let rel = file
            .strip_prefix(repo)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let code: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .collect();
        for item in items {
            let names_item = code.iter().any(|(_, l)| has_ident(l, &item.name));
            let hits = code.iter().filter(|(_, l)| {
                (names_item && has_ident(l, &item.name))
                    || item.members.iter().any(|m| match m.strip_prefix('.') {
                        Some(field) => names_item && has_field(l, field),
                        None => has_ident(l, m),
                    })
            });
            for (i, _) in hits {
                out.entry(key(item))
                    .or_default()
                    .push(format!("{rel}:{}", i + 1));
            }
        }
    }
    out
}

/// The map key of an item.
pub(crate) fn key(item: &Breaking) -> String {
    format!("{} {}", item.kind, item.name)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn idents(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let start = i;
            if bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                return Some((start, &line[start..i]));
            }
            i += 1;
        }
        None
    })
}

fn has_ident(line: &str, name: &str) -> bool {
    idents(line).any(|(_, w)| w == name)
}

fn has_field(line: &str, field: &str) -> bool {
    idents(line).any(|(at, w)| w == field && at > 0 && line.as_bytes()[at - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_identifiers_and_fields_but_not_comments_or_longer_names() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("safe/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("a.rs"),
            "// sys::f_changed( in a comment\nlet s = unsafe { sys::f_changed(1) };\nlet t = my_f_changed_x();\nfn g(p: &sys::params) { p.b; }\nlet x = other.b;\n",
        )
        .unwrap();
        std::fs::write(src.join("b.rs"), "let y = q.b; let m = sys::MODE_C;\n").unwrap();
        let items = [
            Breaking {
                kind: "function changed",
                name: "f_changed".into(),
                members: vec![],
            },
            Breaking {
                kind: "struct layout changed",
                name: "params".into(),
                members: vec![".b".into()],
            },
            Breaking {
                kind: "enum values moved",
                name: "mode".into(),
                members: vec!["MODE_C".into()],
            },
        ];
        let uses = find(tmp.path(), "safe", &items);
        assert_eq!(uses["function changed f_changed"], ["safe/src/a.rs:2"]);
        // `.b` counts only in the file that names `params`.
        assert_eq!(
            uses["struct layout changed params"],
            ["safe/src/a.rs:4", "safe/src/a.rs:5"]
        );
        assert_eq!(uses["enum values moved mode"], ["safe/src/b.rs:1"]);
    }
}
