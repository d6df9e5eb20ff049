//! Text edits of the repository's files: the new `checksums.toml` table, every place the pinned
//! tag is written, `vendor-headers/ORIGIN.md`. Pure functions on strings, so they are tested
//! without a repository.

use super::release::{Entry, Headers};

/// `checksums.toml` with a `[tag]` table of `entries` placed before the first table (after the
/// header comment), replacing an existing table of that tag. Other tags stay as they are.
pub(crate) fn checksums(text: &str, tag: &str, entries: &[Entry]) -> String {
    let header = format!("[{tag}]");
    let mut kept: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == header;
        }
        if !skipping {
            kept.push(line);
        }
    }
    // A removed table leaves its separating blank line behind; collapse doubles.
    let mut lines: Vec<&str> = Vec::new();
    for l in kept {
        if l.trim().is_empty() && lines.last().is_some_and(|p: &&str| p.trim().is_empty()) {
            continue;
        }
        lines.push(l);
    }
    let mut table = vec![header.clone()];
    for e in entries {
        table.push(format!(
            "\"{}\" = {{ sha256 = \"{}\", size = {} }}",
            e.name, e.sha256, e.size
        ));
    }
    table.push(String::new());
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let mut out: Vec<String> = lines[..at].iter().map(|s| s.to_string()).collect();
    if out.last().is_some_and(|l| !l.trim().is_empty()) {
        out.push(String::new());
    }
    out.extend(table);
    out.extend(lines[at..].iter().map(|s| s.to_string()));
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n") + "\n"
}

/// One place the pinned tag is written: a file and the text around the tag (`{}` = the tag).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PinSite {
    pub file: &'static str,
    pub template: &'static str,
    /// A missing required site fails the bump (the pin would be half-moved); an optional one
    /// (prose) is reported.
    pub required: bool,
}

/// Everywhere the pin lives. `checksums.toml` and `vendor-headers/` are handled on their own.
pub(crate) const PIN_SITES: &[PinSite] = &[
    PinSite {
        file: "fetch/src/lib.rs",
        template: "pub const PINNED_TAG: &str = \"{}\";",
        required: true,
    },
    PinSite {
        file: "Cargo.toml",
        template: "+{}\"",
        required: true,
    },
    PinSite {
        file: "README.md",
        template: "The pinned release is **{}**.",
        required: true,
    },
    PinSite {
        file: "README.md",
        template: "instead of the pinned `{}`",
        required: false,
    },
    PinSite {
        file: "src/lib.rs",
        template: "(`{}` unless overridden",
        required: false,
    },
    PinSite {
        file: "build.rs",
        template: "`vendor-headers/`: exactly {}'s",
        required: false,
    },
];

/// `text` with the site's old tag replaced by the new one (first occurrence only), or `None`
/// when the site is not there.
pub(crate) fn pin(text: &str, site: &PinSite, old: &str, new: &str) -> Option<String> {
    let from = site.template.replace("{}", old);
    let to = site.template.replace("{}", new);
    text.contains(&from).then(|| text.replacen(&from, &to, 1))
}

/// `Cargo.lock` with the sys crate's version metadata moved (`0.1.0+b10199` -> `+b10605`);
/// `None` if the lock has no such entry.
pub(crate) fn lock(text: &str, old: &str, new: &str) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let i = lines
        .iter()
        .position(|l| l.trim() == "name = \"llama-prebuilt-sys\"")?;
    let v = lines.get_mut(i + 1)?;
    let from = format!("+{old}\"");
    if !v.starts_with("version = ") || !v.contains(&from) {
        return None;
    }
    *v = v.replace(&from, &format!("+{new}\""));
    Some(lines.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

/// `vendor-headers/ORIGIN.md` for headers fetched by `bump`. `sums` = `(sha256, file name)` of
/// every header, sorted by name.
pub(crate) fn origin(tag: &str, old: &str, headers: &Headers, sums: &[(String, String)]) -> String {
    let paths: Vec<String> = headers
        .files
        .iter()
        .map(|(p, _)| format!("`{p}`"))
        .collect();
    let license = if headers.license {
        format!(
            "llama.cpp's own LICENSE file of that tree, downloaded with the headers from `{}/LICENSE`",
            headers.source
        )
    } else {
        format!("llama.cpp's LICENSE file as vendored with {old} (the source did not serve one)")
    };
    let mut s = format!(
        "# Origin of these headers\n\n\
         Copied unmodified from llama.cpp (https://github.com/ggml-org/llama.cpp) at tag **{tag}**, the pinned\n\
         tag, by `cargo xtask bump {tag}` from `{}/<path>`. MIT-licensed: `LICENSE` is\n\
         {license}.\n\n\
         - Files: {}\n  (everything `wrapper.h` includes, and `tools/mtmd/{{mtmd,mtmd-helper}}.h`: the multimodal\n  \
         library's headers, vendored for later, **not** read by `wrapper.h` or the committed bindings).\n\
         - Previous pin: {old}; what changed between the two is in `docs/bumps/{old}-{tag}.md`.\n\n\
         sha256 of each file as copied:\n\n```\n",
        headers.source,
        paths.join(", "),
    );
    for (sha, name) in sums {
        s.push_str(&format!("{sha}  {name}\n"));
    }
    s.push_str("```\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMS: &str = "# The trust anchor.\n# Format: ...\n\n[b10199]\n\"a\" = { sha256 = \"1\" }\n\n[b6089]\n\"b\" = { sha256 = \"2\" }\n";

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            sha256: "ab".repeat(32),
            size: 7,
        }
    }

    #[test]
    fn the_new_table_goes_first_and_replaces_an_old_one_of_the_same_tag() {
        let once = checksums(SUMS, "b10605", &[entry("x"), entry("y")]);
        let table = format!(
            "[b10605]\n\"x\" = {{ sha256 = \"{0}\", size = 7 }}\n\"y\" = {{ sha256 = \"{0}\", size = 7 }}\n",
            "ab".repeat(32)
        );
        assert_eq!(
            once,
            format!(
                "# The trust anchor.\n# Format: ...\n\n{table}\n[b10199]\n\"a\" = {{ sha256 = \"1\" }}\n\n[b6089]\n\"b\" = {{ sha256 = \"2\" }}\n"
            )
        );
        let twice = checksums(&once, "b10605", &[entry("x"), entry("y")]);
        assert_eq!(twice, once, "idempotent");
        let parsed = llama_prebuilt_fetch::checksums::Checksums::parse(
            &checksums(
                SUMS.replace("\"1\"", &format!("\"{}\"", "cd".repeat(32)))
                    .replace("\"2\"", &format!("\"{}\"", "ef".repeat(32)))
                    .as_str(),
                "b10605",
                &[entry("x")],
            ),
            std::path::Path::new("t"),
        )
        .unwrap();
        assert_eq!(parsed.get("b10605", "x").unwrap().size, Some(7));
        assert!(parsed.get("b10199", "a").is_some());
    }

    #[test]
    fn pin_sites_and_the_lock_move_or_say_they_are_missing() {
        let site = &PIN_SITES[0];
        assert_eq!(
            pin(
                "x\npub const PINNED_TAG: &str = \"b10199\";\n",
                site,
                "b10199",
                "b10605"
            )
            .unwrap(),
            "x\npub const PINNED_TAG: &str = \"b10605\";\n"
        );
        assert!(
            pin(
                "pub const PINNED_TAG: &str = \"b1\";",
                site,
                "b10199",
                "b10605"
            )
            .is_none()
        );
        let cargo = &PIN_SITES[1];
        assert_eq!(
            pin("version = \"0.1.0+b10199\"\n", cargo, "b10199", "b10605").unwrap(),
            "version = \"0.1.0+b10605\"\n"
        );
        let lockfile = "[[package]]\nname = \"llama-prebuilt-sys\"\nversion = \"0.1.0+b10199\"\ndependencies = []\n";
        assert_eq!(
            lock(lockfile, "b10199", "b10605").unwrap(),
            lockfile.replace("+b10199", "+b10605")
        );
        assert!(lock("[[package]]\nname = \"other\"\n", "b10199", "b10605").is_none());
    }
}
