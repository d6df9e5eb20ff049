//! The change report `bump` prints and writes to `docs/bumps/<old>-<new>.md`: what the new
//! tag's C API adds, removes and changes, field by field for structs, and where the safe crate
//! uses what was removed or changed. Deterministic (no dates, sorted), so re-running a bump
//! gives the same file.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::api::{Breaking, Diff, Field};
use super::release::Assets;
use super::usage;

/// What the report is about.
pub(crate) struct Input<'a> {
    pub old: &'a str,
    pub new: &'a str,
    /// The target whose bindings were compared, and the other targets with the same diff.
    pub target: &'a str,
    pub same_on: Vec<&'a str>,
    /// Targets whose differences are not the same as `target`'s (they get their own note).
    pub differ_on: Vec<&'a str>,
    pub diff: &'a Diff,
    pub breaking: &'a [Breaking],
    pub uses: &'a BTreeMap<String, Vec<String>>,
    /// Vendored files whose bytes changed / stayed, by path in the source.
    pub headers_changed: Vec<String>,
    pub assets: &'a Assets,
    /// Which header declares an item (for the function lists), if found.
    pub declared_in: &'a dyn Fn(&str) -> Option<String>,
}

/// The report as Markdown.
pub(crate) fn render(i: &Input) -> String {
    let mut s = String::new();
    let d = i.diff;
    let _ = writeln!(s, "# llama.cpp {} → {}\n", i.old, i.new);
    let _ = writeln!(
        s,
        "Made by `cargo xtask bump {}`: the committed bindings of {} (`bindings/{}.rs`) compared with \
         bindgen's output for {}'s headers{}.\n",
        i.new,
        i.old,
        i.target,
        i.new,
        if i.same_on.is_empty() {
            String::new()
        } else {
            format!(" (the same differences on {})", i.same_on.join(", "))
        }
    );
    for t in &i.differ_on {
        let _ = writeln!(
            s,
            "**Note:** the differences on {t} are not the same as on {}; compare `bindings/{t}.rs` too.\n",
            i.target
        );
    }
    let with_uses = i
        .breaking
        .iter()
        .filter(|b| i.uses.contains_key(&usage::key(b)))
        .count();
    if i.breaking.is_empty() {
        let _ = writeln!(
            s,
            "**No breaking change**: nothing was removed or changed{}.\n",
            if d.is_empty() {
                ", nothing added"
            } else {
                "; only additions"
            }
        );
    } else {
        let _ = writeln!(
            s,
            "**Breaking: {} item(s) removed or changed; the safe crate uses {with_uses} of them.** \
             `bump` refuses this without `--allow-breaking`; fix the safe crate in the same change.\n",
            i.breaking.len()
        );
        for b in i.breaking {
            let _ = writeln!(s, "- {} `{}`{}", b.kind, b.name, uses_suffix(i, b));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Headers whose bytes changed: {}.\n",
        if i.headers_changed.is_empty() {
            "none".to_string()
        } else {
            i.headers_changed
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );

    s.push_str("## Functions\n\n");
    list(&mut s, "Added", &d.fn_added, |(n, f)| {
        format!("`{n}`: `{}`{}", f.render(), decl(i, n))
    });
    list(&mut s, "Removed", &d.fn_removed, |(n, f)| {
        format!(
            "`{n}`: `{}`{}",
            f.render(),
            uses_of(i, "function removed", n)
        )
    });
    list(&mut s, "Changed signature", &d.fn_changed, |(n, o, nw)| {
        format!(
            "`{n}`{}\n  - before: `{}`\n  - after: `{}`{}",
            decl(i, n),
            o.render(),
            nw.render(),
            uses_of(i, "function changed", n).replacen(" — used", "\n  - used", 1)
        )
    });

    s.push_str("## Structs and unions\n\n");
    list(&mut s, "Added", &d.rec_added, |n| format!("`{n}`"));
    list(&mut s, "Removed", &d.rec_removed, |n| {
        format!("`{n}`{}", uses_of(i, "struct removed", n))
    });
    if !d.rec_changed.is_empty() {
        let _ = writeln!(s, "### Layout changed ({})\n", d.rec_changed.len());
        for c in &d.rec_changed {
            let kind = if c.new.union { "union" } else { "struct" };
            let _ = writeln!(
                s,
                "#### {kind} `{}`: size {} → {}, align {} → {}\n",
                c.name,
                opt(c.old.size),
                opt(c.new.size),
                opt(c.old.align),
                opt(c.new.align)
            );
            s.push_str("| field | before | after |\n|---|---|---|\n");
            let cell = |f: &Option<Field>| {
                f.as_ref()
                    .map_or("—".to_string(), |f| format!("`{}`", f.render()))
            };
            for (name, o, n) in &c.fields {
                let _ = writeln!(s, "| `{name}` | {} | {} |", cell(o), cell(n));
            }
            let u = uses_of(i, "struct layout changed", &c.name);
            let _ = writeln!(
                s,
                "\n{}\n",
                if u.is_empty() {
                    "Not used by the safe crate.".to_string()
                } else {
                    format!(
                        "Used by the safe crate:{}",
                        u.trim_start_matches(" — used by the safe crate:")
                    )
                }
            );
        }
    }

    s.push_str("## Enums\n\n");
    list(&mut s, "Added", &d.enum_added, |n| format!("`{n}`"));
    list(&mut s, "Removed", &d.enum_removed, |n| {
        format!("`{n}`{}", uses_of(i, "enum removed", n))
    });
    list(&mut s, "Changed", &d.enum_changed, |c| {
        let mut parts = Vec::new();
        if c.old_repr != c.new_repr {
            parts.push(format!("integer type `{}` → `{}`", c.old_repr, c.new_repr));
        }
        for (k, v) in &c.added {
            parts.push(format!("added `{k}` = {v}"));
        }
        for (k, v) in &c.removed {
            parts.push(format!("removed `{k}` (was {v})"));
        }
        for (k, o, n) in &c.moved {
            parts.push(format!("`{k}` moved {o} → {n}"));
        }
        let u = if c.is_additive() {
            String::new()
        } else {
            uses_of(i, "enum values moved", &c.name)
        };
        format!("`{}`: {}{u}", c.name, parts.join("; "))
    });

    s.push_str("## Types and constants\n\n");
    list(&mut s, "Types added", &d.alias_added, |(n, t)| {
        format!("`{n}` = `{t}`")
    });
    list(&mut s, "Types removed", &d.alias_removed, |(n, t)| {
        format!("`{n}` = `{t}`{}", uses_of(i, "type removed", n))
    });
    list(&mut s, "Types changed", &d.alias_changed, |(n, o, nw)| {
        format!("`{n}`: `{o}` → `{nw}`{}", uses_of(i, "type changed", n))
    });
    list(&mut s, "Constants added", &d.const_added, |(n, v)| {
        format!("`{n}`: `{v}`")
    });
    list(&mut s, "Constants removed", &d.const_removed, |(n, v)| {
        format!("`{n}`: `{v}`{}", uses_of(i, "constant removed", n))
    });
    list(
        &mut s,
        "Constants changed",
        &d.const_changed,
        |(n, o, nw)| format!("`{n}`: `{o}` → `{nw}`{}", uses_of(i, "constant changed", n)),
    );

    s.push_str("## Release assets\n\n");
    let _ = writeln!(
        s,
        "{} asset(s) recorded in `checksums.toml` under `[{}]` (sha256 and size from the release API).",
        i.assets.recorded.len(),
        i.new
    );
    if !i.assets.no_digest.is_empty() {
        let _ = writeln!(
            s,
            "Not recorded, no digest published: {}.",
            i.assets.no_digest.join(", ")
        );
    }
    if !i.assets.ignored.is_empty() {
        let _ = writeln!(
            s,
            "Not recorded, no platform or variant uses them: {}.",
            i.assets.ignored.join(", ")
        );
    }
    s.push_str(
        "\n## Not done by `bump`\n\n\
         - The safe crate's run-time ABI probe (`llama-prebuilt/src/abi.rs`) states the default \
         parameters of the pinned tag; check them against the new `llama.h` (and the layout table above).\n\
         - The offline test fixture (`test-support`) is still built from the previous tag's source; \
         `tests/vendor_headers.rs` compares `vendor-headers/` with it.\n",
    );
    s
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

fn decl(i: &Input, name: &str) -> String {
    (i.declared_in)(name).map_or(String::new(), |h| format!(" ({h})"))
}

fn uses_of(i: &Input, kind: &str, name: &str) -> String {
    let key = format!("{kind} {name}");
    match i.uses.get(&key) {
        Some(lines) => format!(" — used by the safe crate: {}", grouped(lines)),
        None => String::new(),
    }
}

fn uses_suffix(i: &Input, b: &Breaking) -> String {
    match i.uses.get(&usage::key(b)) {
        Some(lines) => format!(": {}", grouped(lines)),
        None => " (not used by the safe crate)".into(),
    }
}

/// `a.rs:1, a.rs:5, b.rs:2` as `a.rs:1,5; b.rs:2` (the lines arrive sorted by file).
pub(crate) fn grouped(lines: &[String]) -> String {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines {
        let (file, line) = l.rsplit_once(':').unwrap_or((l.as_str(), ""));
        match out.last_mut() {
            Some((f, ls)) if f == file => ls.push(line.to_string()),
            _ => out.push((file.to_string(), vec![line.to_string()])),
        }
    }
    out.iter()
        .map(|(f, ls)| format!("{f}:{}", ls.join(",")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn list<T>(s: &mut String, title: &str, items: &[T], line: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(s, "### {title} ({})\n", items.len());
    for item in items {
        let _ = writeln!(s, "- {}", line(item));
    }
    s.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn uses_are_grouped_by_file() {
        let lines: Vec<String> = ["a.rs:1", "a.rs:5", "src/b.rs:2"]
            .map(String::from)
            .to_vec();
        assert_eq!(super::grouped(&lines), "a.rs:1,5; src/b.rs:2");
    }
}
