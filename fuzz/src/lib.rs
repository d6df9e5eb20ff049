//! Fuzz targets for the two parsers of untrusted input: archive extraction
//! (`llama_prebuilt_fetch::extract`, zip and tar.gz) and the GGUF header pre-check
//! (`llama_prebuilt::gguf`). Each target panics when a property fails, which both drivers
//! report as a crash:
//!
//! - extraction: every input either extracts or returns an error — never panics — and never
//!   writes outside the destination: the destination sits four directories deep in a sandbox,
//!   and afterwards each level holds exactly what it held before; every symlink inside the
//!   destination resolves (lexically) inside it; an `Ok` lists only relative, `..`-free paths
//!   that exist, and respects the limits.
//! - GGUF: `parse_header` never panics, agrees with `parse_header_from` over a reader that
//!   returns a few bytes at a time, implies `looks_like_gguf`, and its tensors and data offset
//!   are consistent with the input's length.
//!
//! `seeds` and `mutate` serve the stable driver (`src/bin/fuzz_loop.rs`); libFuzzer brings
//! its own mutations (and can start from the seeds: `fuzz-loop --write-corpus corpus`).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use llama_prebuilt::gguf;
use llama_prebuilt_fetch::extract::{extract, ArchiveKind, Limits};

pub mod mutate;
pub mod seeds;

/// A target: takes the input, returns a short signature of what it did (for the stable
/// driver's pool of inputs), panics when a property fails.
pub type Target = fn(&[u8]) -> String;

/// The fuzz targets by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("extract_targz", extract_targz),
    ("extract_zip", extract_zip),
    ("gguf_header", gguf_header),
];

/// Small caps, so a bomb is cut short quickly.
pub const LIMITS: Limits = Limits {
    max_total_bytes: 4 << 20,
    max_entries: 512,
    max_entry_bytes: 1 << 20,
};

/// Input: one mode byte, then the body. Mode bit 0 clear: the body is a raw tar stream that is
/// gzipped here (so mutations reach the tar parser instead of failing the gzip CRC); set: the
/// body is the `.tar.gz` file itself.
pub fn extract_targz(data: &[u8]) -> String {
    let Some((mode, body)) = data.split_first() else {
        return "empty".into();
    };
    let file = if mode & 1 == 0 {
        gzip(body)
    } else {
        body.to_vec()
    };
    check_extract(&file, ArchiveKind::TarGz)
}

/// Input: the `.zip` file.
pub fn extract_zip(data: &[u8]) -> String {
    check_extract(data, ArchiveKind::Zip)
}

/// `bytes` gzip-compressed in memory (how [`extract_targz`] wraps a raw tar body).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in-memory gzip");
    gz.finish().expect("in-memory gzip")
}

/// Sandbox levels above the destination: `sandbox/l1/l2/l3/root`.
const LEVELS: [&str; 3] = ["l1", "l2", "l3"];

fn check_extract(file: &[u8], kind: ArchiveKind) -> String {
    let sandbox = tempfile::Builder::new()
        .prefix("llama-fuzz-")
        .tempdir()
        .expect("temp dir");
    let mut level = sandbox.path().to_path_buf();
    let mut levels = vec![level.clone()];
    for l in LEVELS {
        level = level.join(l);
        levels.push(level.clone());
    }
    std::fs::create_dir_all(&level).expect("sandbox levels");
    let archive = sandbox.path().join("input.bin");
    std::fs::write(&archive, file).expect("write input");
    let root = level.join("root");

    let result = extract(&archive, kind, &root, &LIMITS);

    // Nothing appeared beside the destination at any level of the sandbox.
    for (i, dir) in levels.iter().enumerate() {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list sandbox level")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        let expected: Vec<&str> = match i {
            0 => vec!["input.bin", LEVELS[0]],
            3 => {
                if root.exists() {
                    vec!["root"]
                } else {
                    vec![]
                }
            }
            _ => vec![LEVELS[i]],
        };
        assert_eq!(
            names, expected,
            "extraction wrote outside the destination (level {i}); result: {result:?}"
        );
    }

    // Everything inside stays inside: walk without following links.
    let mut total = 0u64;
    let mut count = 0u64;
    if root.exists() {
        walk(&root, &root, &mut total, &mut count);
    }
    match &result {
        Ok(entries) => {
            assert!(
                entries.len() as u64 <= LIMITS.max_entries,
                "too many entries listed"
            );
            assert!(
                total <= LIMITS.max_total_bytes,
                "wrote {total} bytes, over the limit"
            );
            for e in entries {
                assert!(
                    e.path
                        .components()
                        .all(|c| matches!(c, Component::Normal(_))),
                    "listed path {} is not a plain relative path",
                    e.path.display()
                );
                assert!(
                    std::fs::symlink_metadata(root.join(&e.path)).is_ok(),
                    "listed {} does not exist",
                    e.path.display()
                );
            }
        }
        Err(e) => {
            // An error must render (Display must not panic either).
            let _ = e.to_string();
        }
    }
    match &result {
        Ok(entries) => format!("ok {} {count}", entries.len().min(16)),
        Err(e) => variant(&format!("{e:?}")),
    }
}

/// `Io { path: .., source: Custom { kind: InvalidData, .. } }` → `Io InvalidData`: the
/// variant names and error kinds of a Debug rendering, without paths and numbers.
fn variant(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 1 && w.starts_with(|c: char| c.is_ascii_uppercase()))
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks every entry under `dir`: symlinks point inside `root`, nothing is a device or fifo.
fn walk(root: &Path, dir: &Path, total: &mut u64, count: &mut u64) {
    for e in std::fs::read_dir(dir).expect("list extracted dir") {
        let e = e.expect("dir entry");
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).expect("stat extracted entry");
        *count += 1;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path).expect("read link");
            assert!(
                target.is_relative(),
                "{} links to absolute {}",
                path.display(),
                target.display()
            );
            let resolved = lexical_join(path.parent().expect("has a parent"), &target);
            assert!(
                resolved.starts_with(root),
                "{} -> {} escapes the destination",
                path.display(),
                target.display()
            );
        } else if ft.is_dir() {
            walk(root, &path, total, count);
        } else {
            assert!(
                ft.is_file(),
                "{} is not a file, dir or link",
                path.display()
            );
            *total += meta.len();
        }
    }
}

/// `base/rel` with `.` and `..` resolved without touching the file system.
fn lexical_join(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A reader that hands out at most `chunk` bytes per call (short reads are legal; a parser
/// must not treat them as the end).
struct Chunky<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Input: the file (or its first bytes).
pub fn gguf_header(data: &[u8]) -> String {
    let whole = gguf::parse_header(data);
    let chunk = 1 + data.first().map_or(0, |b| usize::from(*b) % 7);
    let streamed = gguf::parse_header_from(Chunky { data, chunk });
    assert_eq!(whole, streamed, "slice and short-read parses disagree");
    let _ = gguf::looks_like_gguf(data);
    match whole {
        Ok(h) => {
            let sig = format!("ok {} {}", h.tensors.len().min(4), h.n_kv.min(4));
            assert!(
                gguf::looks_like_gguf(data),
                "parsed without a valid magic/version"
            );
            assert!(
                h.tensors.len() as u64 <= data.len() as u64 / 8,
                "{} tensors from {} bytes",
                h.tensors.len(),
                data.len()
            );
            assert!(h.alignment.is_power_of_two());
            assert!(h.data_offset % h.alignment == 0);
            assert!(
                h.data_offset < data.len() as u64 + h.alignment,
                "data offset {} beyond a header of {} bytes",
                h.data_offset,
                data.len()
            );
            for t in &h.tensors {
                assert!(t.dims.len() <= 4);
                let _ = t.n_elements();
            }
            match h.check_data_bounds(data.len() as u64) {
                Ok(()) => sig,
                Err(e) => format!("{sig} {}", variant(&format!("{e:?}"))),
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let d = format!("{e:?}");
            // Keep the field `what`/`reason` text too: it tells where parsing stopped.
            let text: String = d.chars().filter(|c| !c.is_ascii_digit()).take(80).collect();
            text
        }
    }
}
