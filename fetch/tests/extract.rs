//! Extraction of the three real archive layouts, and rejection of hostile archives.
//!
//! Every archive is built here: tar entries with raw header bytes (the tar crate's
//! `set_path` refuses `..`), zips with `ZipWriter`. Each rejected case also checks
//! that nothing was written next to the destination directory.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use llama_prebuilt_fetch::extract::{
    ArchiveKind, EntryKind, ExtractError, ExtractedEntry, Limits, extract,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

// ---------------------------------------------------------------- tar.gz builder

/// One tar entry, written with raw name bytes.
struct TarItem {
    name: Vec<u8>,
    kind: u8,
    data: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
}

fn tfile(name: &str, data: &[u8]) -> TarItem {
    TarItem {
        name: name.into(),
        kind: b'0',
        data: data.to_vec(),
        link: Vec::new(),
        mode: 0o644,
    }
}

fn texe(name: &str, data: &[u8]) -> TarItem {
    TarItem {
        mode: 0o755,
        ..tfile(name, data)
    }
}

fn tdir(name: &str) -> TarItem {
    TarItem {
        kind: b'5',
        mode: 0o755,
        ..tfile(name, b"")
    }
}

fn tlink(name: &str, target: &str) -> TarItem {
    TarItem {
        kind: b'2',
        link: target.into(),
        mode: 0o777,
        ..tfile(name, b"")
    }
}

fn thard(name: &str, target: &str) -> TarItem {
    TarItem {
        kind: b'1',
        link: target.into(),
        ..tfile(name, b"")
    }
}

fn tspecial(name: &str, kind: u8) -> TarItem {
    TarItem {
        kind,
        ..tfile(name, b"")
    }
}

fn raw_header(name: &[u8], kind: u8, size: u64, mode: u32, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    h
}

fn append_item<W: Write>(b: &mut tar::Builder<W>, item: &TarItem) {
    // Names and targets over 100 bytes get a GNU long-name / long-link entry.
    for (kind, value) in [(b'L', &item.name), (b'K', &item.link)] {
        if value.len() > 100 {
            let mut data = value.clone();
            data.push(0);
            let h = raw_header(b"././@LongLink", kind, data.len() as u64, 0o644, b"");
            b.append(&h, data.as_slice()).unwrap();
        }
    }
    let name = &item.name[..item.name.len().min(100)];
    let link = &item.link[..item.link.len().min(100)];
    let h = raw_header(name, item.kind, item.data.len() as u64, item.mode, link);
    b.append(&h, item.data.as_slice()).unwrap();
}

fn targz(items: &[TarItem]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for item in items {
        append_item(&mut b, item);
    }
    b.into_inner().unwrap().finish().unwrap()
}

// ---------------------------------------------------------------- zip builder

enum ZipItem {
    File(&'static str, &'static [u8], Option<u32>),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
}

fn zipped(items: &[ZipItem]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for item in items {
        match item {
            ZipItem::File(name, data, mode) => {
                // Stored, so that tests can find and damage the data.
                let mut opts =
                    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
                if let Some(mode) = mode {
                    opts = opts.unix_permissions(*mode);
                }
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            ZipItem::Dir(name) => w
                .add_directory(*name, SimpleFileOptions::default())
                .unwrap(),
            ZipItem::Symlink(name, target) => w
                .add_symlink(*name, *target, SimpleFileOptions::default())
                .unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

// ---------------------------------------------------------------- harness

struct Run {
    archive_dir: TempDir,
    work: TempDir,
    dest: PathBuf,
    result: Result<Vec<ExtractedEntry>, ExtractError>,
}

fn run_with(bytes: &[u8], kind: ArchiveKind, limits: &Limits) -> Run {
    let archive_dir = TempDir::new().unwrap();
    let name = match kind {
        ArchiveKind::Zip => "asset.zip",
        ArchiveKind::TarGz => "asset.tar.gz",
    };
    let archive = archive_dir.path().join(name);
    fs::write(&archive, bytes).unwrap();
    let work = TempDir::new().unwrap();
    let dest = work.path().join("dest");
    let result = extract(&archive, kind, &dest, limits);
    Run {
        archive_dir,
        work,
        dest,
        result,
    }
}

fn run(bytes: &[u8], kind: ArchiveKind) -> Run {
    run_with(bytes, kind, &Limits::default())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Nothing was written beside `dest` or beside the archive, and no symlink that
/// leads outside was left inside `dest`.
fn assert_contained(run: &Run) {
    assert_eq!(names(run.work.path()), ["dest"], "written beside dest");
    assert_eq!(
        names(run.archive_dir.path()).len(),
        1,
        "written beside the archive"
    );
    for entry in walk(&run.dest) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "a symlink was left after a rejection: {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Extracts `bytes`, expects a rejection and checks containment.
fn reject_with(bytes: &[u8], kind: ArchiveKind, limits: &Limits) -> ExtractError {
    let run = run_with(bytes, kind, limits);
    assert_contained(&run);
    match run.result {
        Ok(entries) => panic!("archive was accepted: {entries:#?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("nothing from") && msg.contains("was kept"),
                "message does not say nothing was kept: {msg}"
            );
            e
        }
    }
}

fn reject(bytes: &[u8], kind: ArchiveKind) -> ExtractError {
    reject_with(bytes, kind, &Limits::default())
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn entry<'e>(entries: &'e [ExtractedEntry], path: &str) -> &'e ExtractedEntry {
    let path: PathBuf = path.split('/').collect();
    entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {}", path.display()))
}

#[track_caller]
fn assert_unsafe(err: ExtractError, entry_name: &str, why: &str) {
    let msg = err.to_string();
    match err {
        ExtractError::UnsafePath { entry, reason } => {
            assert_eq!(entry, entry_name);
            assert!(reason.contains(why), "{reason}");
            // Control characters in names are shown escaped.
            let shown = entry_name.replace('\0', "\\u{0}");
            assert!(
                msg.contains(&format!("archive entry `{shown}` is unsafe: ")),
                "{msg}"
            );
            assert!(msg.contains(why), "{msg}");
        }
        other => panic!("expected UnsafePath, got {other:?}"),
    }
}

#[track_caller]
fn assert_escaping(err: ExtractError, entry_name: &str, target_text: &str) {
    let msg = err.to_string();
    match err {
        ExtractError::EscapingSymlink { entry, target } => {
            assert_eq!(entry, entry_name);
            assert_eq!(target, target_text);
            assert!(
                msg.contains(&format!(
                    "`{entry_name}` is a symlink to `{target_text}`, which points outside"
                )),
                "{msg}"
            );
        }
        other => panic!("expected EscapingSymlink, got {other:?}"),
    }
}

#[track_caller]
fn assert_corrupt(err: ExtractError) {
    let msg = err.to_string();
    assert!(
        matches!(err, ExtractError::Corrupt { .. }),
        "expected Corrupt, got {err:?}"
    );
    assert!(
        msg.starts_with("the archive is corrupt or truncated: "),
        "{msg}"
    );
}

// ---------------------------------------------------------------- good layouts

const LIB: &[u8] = b"\x7fELF libllama";
const GGML: &[u8] = b"\x7fELF libggml";
const BASE: &[u8] = b"\x7fELF libggml-base";
const CPU: &[u8] = b"\x7fELF libggml-cpu-haswell";
const TOOL: &[u8] = b"#!/bin/sh\necho llama\n";

fn linux_targz_items() -> Vec<TarItem> {
    vec![
        tdir("llama-b1/"),
        tfile("llama-b1/LICENSE", b"MIT"),
        texe("llama-b1/llama-cli", TOOL),
        texe("llama-b1/libllama.so.0.0.1", LIB),
        tlink("llama-b1/libllama.so.0", "libllama.so.0.0.1"),
        tlink("llama-b1/libllama.so", "libllama.so.0"),
        texe("llama-b1/libggml.so.0.9.4", GGML),
        tlink("llama-b1/libggml.so.0", "libggml.so.0.9.4"),
        tlink("llama-b1/libggml.so", "libggml.so.0"),
        texe("llama-b1/libggml-base.so.0.9.4", BASE),
        tlink("llama-b1/libggml-base.so.0", "libggml-base.so.0.9.4"),
        tlink("llama-b1/libggml-base.so", "libggml-base.so.0"),
        texe("llama-b1/libggml-cpu-haswell.so", CPU),
    ]
}

#[test]
fn targz_with_top_dir_keeps_symlink_chains_modes_and_hashes() {
    let run = run(&targz(&linux_targz_items()), ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries.len(), 13);
    assert_eq!(entries[0].kind, EntryKind::Dir);
    assert_eq!(entries[0].path, Path::new("llama-b1"));

    let lib = entry(entries, "llama-b1/libllama.so.0.0.1");
    assert_eq!(lib.kind, EntryKind::File { executable: true });
    assert_eq!(lib.size, LIB.len() as u64);
    assert_eq!(lib.sha256, sha(LIB));
    let license = entry(entries, "llama-b1/LICENSE");
    assert_eq!(license.kind, EntryKind::File { executable: false });
    assert_eq!(license.sha256, sha(b"MIT"));
    let link = entry(entries, "llama-b1/libllama.so");
    assert_eq!(
        link.kind,
        EntryKind::Symlink {
            target: "libllama.so.0".into()
        }
    );
    assert_eq!((link.size, link.sha256.as_str()), (0, ""));

    let top = run.dest.join("llama-b1");
    assert_eq!(fs::read(top.join("libllama.so")).unwrap(), LIB);
    assert_eq!(fs::read(top.join("libggml-base.so")).unwrap(), BASE);
    #[cfg(unix)]
    {
        for (link, target) in [
            ("libllama.so", "libllama.so.0"),
            ("libllama.so.0", "libllama.so.0.0.1"),
            ("libggml.so", "libggml.so.0"),
        ] {
            let p = top.join(link);
            assert!(fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
            assert_eq!(fs::read_link(&p).unwrap(), Path::new(target));
        }
        assert_eq!(mode(&top.join("llama-cli")), 0o755);
        assert_eq!(mode(&top.join("libllama.so.0.0.1")), 0o755);
        assert_eq!(mode(&top.join("LICENSE")), 0o644);
        assert_eq!(mode(&top), 0o755);
    }
    // Every file's recorded hash matches what is on disk.
    for e in entries {
        if let EntryKind::File { .. } = e.kind {
            assert_eq!(e.sha256, sha(&fs::read(run.dest.join(&e.path)).unwrap()));
        }
    }
}

#[test]
fn zip_with_build_bin_keeps_executable_bits() {
    let bytes = zipped(&[
        ZipItem::Dir("build/"),
        ZipItem::Dir("build/bin/"),
        ZipItem::File("build/bin/libllama.so", LIB, Some(0o755)),
        ZipItem::File("build/bin/libggml.so", GGML, Some(0o755)),
        ZipItem::File("build/bin/libggml-base.so", BASE, Some(0o755)),
        ZipItem::File("build/bin/llama-cli", TOOL, Some(0o755)),
        ZipItem::File("build/bin/LICENSE", b"MIT", Some(0o644)),
    ]);
    let run = run(&bytes, ArchiveKind::Zip);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries.len(), 7);
    assert_eq!(entry(entries, "build/bin").kind, EntryKind::Dir);
    let cli = entry(entries, "build/bin/llama-cli");
    assert_eq!(cli.kind, EntryKind::File { executable: true });
    assert_eq!(cli.sha256, sha(TOOL));
    assert_eq!(
        entry(entries, "build/bin/LICENSE").kind,
        EntryKind::File { executable: false }
    );
    let bin = run.dest.join("build").join("bin");
    assert_eq!(fs::read(bin.join("libllama.so")).unwrap(), LIB);
    #[cfg(unix)]
    {
        assert_eq!(mode(&bin.join("llama-cli")), 0o755);
        assert_eq!(mode(&bin.join("LICENSE")), 0o644);
    }
}

#[test]
fn zip_symlink_entries_become_symlinks() {
    let bytes = zipped(&[
        ZipItem::File("build/bin/libllama.so.0.0.1", LIB, Some(0o755)),
        ZipItem::Symlink("build/bin/libllama.so.0", "libllama.so.0.0.1"),
        ZipItem::Symlink("build/bin/libllama.so", "libllama.so.0"),
    ]);
    let run = run(&bytes, ArchiveKind::Zip);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(
        entry(entries, "build/bin/libllama.so").kind,
        EntryKind::Symlink {
            target: "libllama.so.0".into()
        }
    );
    let link = run.dest.join("build/bin/libllama.so");
    assert_eq!(fs::read(&link).unwrap(), LIB);
    #[cfg(unix)]
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn flat_windows_zip() {
    let opts = SimpleFileOptions::default().system(zip::System::Dos);
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in [
        ("llama.dll", LIB),
        ("ggml.dll", GGML),
        ("ggml-base.dll", BASE),
        ("ggml-cpu-x64.dll", CPU),
        ("llama-cli.exe", TOOL),
    ] {
        w.start_file(name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    let run = run(&bytes, ArchiveKind::Zip);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0].path, Path::new("llama.dll"));
    assert_eq!(entries[0].sha256, sha(LIB));
    assert_eq!(fs::read(run.dest.join("ggml-base.dll")).unwrap(), BASE);
    assert_eq!(names(&run.dest).len(), 5);
}

#[test]
fn long_names_and_root_entry() {
    let long_dir = format!("llama-b1/{}", "d".repeat(120));
    let long_file = format!("{long_dir}/lib.so");
    let long_link = format!("llama-b1/{}", "l".repeat(110));
    let items = vec![
        tdir("./"),
        tdir("llama-b1/"),
        tfile(&long_file, b"long"),
        tlink(&long_link, &format!("{}/lib.so", "d".repeat(120))),
    ];
    let run = run(&targz(&items), ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    // `./` is the root itself and is not listed.
    assert_eq!(entries.len(), 3);
    assert_eq!(fs::read(run.dest.join(&long_file)).unwrap(), b"long");
    assert_eq!(fs::read(run.dest.join(&long_link)).unwrap(), b"long");
}

/// A PAX record: `<len> <key>=<value>\n`, `<len>` counting its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len = len.to_string().len() + body_len;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn pax_then_file(pax: &[u8], name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let h = raw_header(b"PaxHeaders/x", b'x', pax.len() as u64, 0o644, b"");
    b.append(&h, pax).unwrap();
    let h = raw_header(name, b'0', data.len() as u64, 0o644, b"");
    b.append(&h, data).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn pax_path_records_are_honoured() {
    // Like macOS bsdtar: binary xattr values (with newlines) beside the path.
    let mut pax = pax_record("SCHILY.xattr.com.apple.provenance", b"\x01\n\x00\n=x");
    pax.extend(pax_record("path", b"llama-b1/from-pax.txt"));
    pax.extend(pax_record("mtime", b"1700000000.5"));
    let bytes = pax_then_file(&pax, b"llama-b1/truncated-name", b"pax");
    let run = run(&bytes, ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path, Path::new("llama-b1").join("from-pax.txt"));
    assert_eq!(
        fs::read(run.dest.join("llama-b1/from-pax.txt")).unwrap(),
        b"pax"
    );
}

#[test]
fn unsafe_pax_path_is_rejected() {
    let pax = pax_record("path", b"../../evil");
    let err = reject(&pax_then_file(&pax, b"harmless", b"x"), ArchiveKind::TarGz);
    assert_unsafe(err, "../../evil", "`..`");
}

#[test]
fn malformed_pax_is_corrupt() {
    let err = reject(
        &pax_then_file(b"99 path=x\n", b"f", b"x"),
        ArchiveKind::TarGz,
    );
    assert!(
        err.to_string()
            .contains("a PAX header is malformed (a record length does not match the record)"),
        "{err}"
    );
    assert_corrupt(err);
    // A PAX size that disagrees with the header.
    let err = reject(
        &pax_then_file(&pax_record("size", b"5"), b"f", b"x"),
        ArchiveKind::TarGz,
    );
    assert_corrupt(err);
}

/// A GNU long-name header that claims 1 GiB must not be read into memory.
#[test]
fn oversized_extension_header_is_corrupt() {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let h = raw_header(b"././@LongLink", b'L', 1 << 30, 0o644, b"");
    // Only the header: the claimed data is never there.
    b.get_mut().write_all(h.as_bytes()).unwrap();
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let err = reject(&bytes, ArchiveKind::TarGz);
    assert!(
        err.to_string()
            .contains("a GNU long-name header of 1073741824 bytes exceeds the 1048576-byte limit"),
        "{err}"
    );
    assert_corrupt(err);
}

#[test]
fn repeated_directory_entries_are_harmless() {
    let items = [
        tdir("llama-b1/"),
        tfile("llama-b1/x", b"x"),
        tdir("llama-b1/"),
        tdir("llama-b1/sub/"),
    ];
    let run = run(&targz(&items), ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries.len(), 3);
}

#[test]
fn hard_link_to_an_extracted_file_becomes_a_copy() {
    let items = vec![
        texe("llama-b1/libllama.so", LIB),
        thard("llama-b1/libllama-copy.so", "llama-b1/libllama.so"),
    ];
    let run = run(&targz(&items), ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    let copy = entry(entries, "llama-b1/libllama-copy.so");
    assert_eq!(copy.kind, EntryKind::File { executable: true });
    assert_eq!(copy.sha256, sha(LIB));
    assert_eq!(copy.size, LIB.len() as u64);
    let copy_path = run.dest.join("llama-b1/libllama-copy.so");
    assert_eq!(fs::read(&copy_path).unwrap(), LIB);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(&copy_path).unwrap().nlink(),
            1,
            "a copy, not a link"
        );
        assert_eq!(mode(&copy_path), 0o755);
    }
}

#[test]
fn archive_kind_from_name() {
    assert_eq!(
        ArchiveKind::from_name("llama-b10199-bin-ubuntu-x64.tar.gz"),
        Some(ArchiveKind::TarGz)
    );
    assert_eq!(ArchiveKind::from_name("x.TGZ"), Some(ArchiveKind::TarGz));
    assert_eq!(
        ArchiveKind::from_name("llama-b6784-bin-win-cpu-x64.zip"),
        Some(ArchiveKind::Zip)
    );
    assert_eq!(ArchiveKind::from_name("llama.tar"), None);
    assert_eq!(ArchiveKind::from_name("x.gz"), None);
}

#[test]
fn dest_must_be_empty() {
    let work = TempDir::new().unwrap();
    let dest = work.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("old"), b"x").unwrap();
    let archive = work.path().join("a.tar.gz");
    fs::write(&archive, targz(&linux_targz_items())).unwrap();
    let err = extract(&archive, ArchiveKind::TarGz, &dest, &Limits::default()).unwrap_err();
    assert!(matches!(err, ExtractError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the destination directory is not empty"),
        "{err}"
    );
    assert_eq!(names(&dest), ["old"]);
}

#[test]
fn missing_archive_is_an_io_error() {
    let work = TempDir::new().unwrap();
    let archive = work.path().join("missing.zip");
    let err = extract(
        &archive,
        ArchiveKind::Zip,
        &work.path().join("dest"),
        &Limits::default(),
    )
    .unwrap_err();
    match &err {
        ExtractError::Io { path, source } => {
            assert_eq!(path, &archive);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().starts_with("I/O error on `"), "{err}");
}

// ---------------------------------------------------------------- unsafe names

#[test]
fn zip_slip_is_rejected() {
    let err = reject(&targz(&[tfile("../evil", b"x")]), ArchiveKind::TarGz);
    assert_unsafe(err, "../evil", "it contains a `..` component");

    let bytes = zipped(&[ZipItem::File("../evil", b"x", None)]);
    let err = reject(&bytes, ArchiveKind::Zip);
    assert_unsafe(err, "../evil", "it contains a `..` component");
}

#[test]
fn dotdot_inside_the_top_dir_is_rejected() {
    let items = [tdir("llama-b1/"), tfile("llama-b1/../../evil", b"x")];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/../../evil", "`..`");

    let bytes = zipped(&[ZipItem::File("build\\..\\..\\evil", b"x", None)]);
    let err = reject(&bytes, ArchiveKind::Zip);
    assert_unsafe(err, "build\\..\\..\\evil", "`..`");
}

#[test]
fn absolute_paths_are_rejected() {
    let err = reject(&targz(&[tfile("/etc/evil", b"x")]), ArchiveKind::TarGz);
    assert_unsafe(err, "/etc/evil", "it is an absolute path");

    let err = reject(
        &zipped(&[ZipItem::File("/etc/evil", b"x", None)]),
        ArchiveKind::Zip,
    );
    assert_unsafe(err, "/etc/evil", "it is an absolute path");

    let err = reject(
        &zipped(&[ZipItem::File("C:\\evil.dll", b"x", None)]),
        ArchiveKind::Zip,
    );
    assert_unsafe(err, "C:\\evil.dll", "Windows drive letter");

    let err = reject(
        &zipped(&[ZipItem::File("\\\\server\\share\\evil", b"x", None)]),
        ArchiveKind::Zip,
    );
    assert_unsafe(err, "\\\\server\\share\\evil", "it is an absolute path");
}

#[test]
fn nul_in_a_long_name_is_rejected() {
    let name = format!("llama-b1/{}\0/evil", "n".repeat(120));
    let items = [TarItem {
        name: name.clone().into_bytes(),
        ..tfile("x", b"x")
    }];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, &name, "NUL");
}

#[test]
fn writing_through_a_symlink_is_rejected() {
    let items = [
        tdir("llama-b1/sub/"),
        tlink("llama-b1/dir", "sub"),
        tfile("llama-b1/dir/x", b"x"),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/dir/x", "written through a symlink");
}

#[test]
fn duplicate_entries_are_rejected() {
    let items = [
        tfile("llama-b1/libllama.so", LIB),
        tlink("llama-b1/libllama.so", "/etc/passwd"),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_escaping(err, "llama-b1/libllama.so", "/etc/passwd");

    let items = [
        tlink("llama-b1/libllama.so", "libllama.so.0"),
        tfile("llama-b1/libllama.so", LIB),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/libllama.so", "more than once");

    let items = [tfile("llama-b1/a.so", LIB), tfile("llama-b1/A.so", LIB)];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/A.so", "letter case");
}

// ---------------------------------------------------------------- symlinks

#[test]
fn symlink_to_parent_of_root_is_rejected() {
    let items = [
        tdir("llama-b1/"),
        tlink("llama-b1/link", "../../outside"),
        tfile("llama-b1/link/pwned", b"x"),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_escaping(err, "llama-b1/link", "../../outside");

    let bytes = zipped(&[ZipItem::Symlink("build/bin/link", "../../../outside")]);
    let err = reject(&bytes, ArchiveKind::Zip);
    assert_escaping(err, "build/bin/link", "../../../outside");
}

#[test]
fn absolute_symlink_is_rejected() {
    let err = reject(
        &targz(&[tlink("llama-b1/passwd", "/etc/passwd")]),
        ArchiveKind::TarGz,
    );
    assert_escaping(err, "llama-b1/passwd", "/etc/passwd");

    let bytes = zipped(&[ZipItem::Symlink("passwd", "/etc/passwd")]);
    let err = reject(&bytes, ArchiveKind::Zip);
    assert_escaping(err, "passwd", "/etc/passwd");

    let bytes = zipped(&[ZipItem::Symlink("win", "C:\\Windows\\System32")]);
    let err = reject(&bytes, ArchiveKind::Zip);
    assert_escaping(err, "win", "C:\\Windows\\System32");
}

#[test]
fn symlink_chain_escaping_through_an_intermediate_link_is_rejected() {
    // `up` -> the root (inside); `esc` -> up/../outside = the root's parent.
    let items = [
        tdir("llama-b1/"),
        tlink("llama-b1/up", ".."),
        tlink("llama-b1/esc", "up/../outside"),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_escaping(err, "llama-b1/esc", "up/../outside");

    // Same links in the other order: `esc` looks harmless until `up` exists.
    let items = [
        tdir("llama-b1/"),
        tlink("llama-b1/esc", "up/../outside"),
        tlink("llama-b1/up", ".."),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_escaping(err, "llama-b1/esc", "up/../outside");
}

#[test]
fn symlink_loops_are_rejected() {
    // Found when the second link closes the loop.
    let items = [tlink("llama-b1/a", "b"), tlink("llama-b1/b", "a")];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/b", "symlink loop");
}

#[test]
fn inside_links_up_and_across_are_accepted() {
    #[allow(unused_mut)]
    let mut items = vec![
        texe("llama-b1/lib/libllama.so.1", LIB),
        tlink("llama-b1/bin/libllama.so", "../lib/libllama.so.1"),
        tlink("llama-b1/dangling", "missing.so"),
    ];
    // A link to an ancestor directory is fine as a symlink; as a copy (non-unix
    // hosts) it would contain itself and is refused.
    #[cfg(unix)]
    items.push(tlink("llama-b1/root", ".."));
    let run = run(&targz(&items), ArchiveKind::TarGz);
    run.result.as_ref().expect("extracts");
    assert_eq!(
        fs::read(run.dest.join("llama-b1/bin/libllama.so")).unwrap(),
        LIB
    );
}

// ---------------------------------------------------------------- other entry kinds

#[test]
fn hard_links_outside_or_to_unknown_targets_are_rejected() {
    let err = reject(
        &targz(&[thard("llama-b1/h", "/etc/passwd")]),
        ArchiveKind::TarGz,
    );
    assert_unsafe(err, "llama-b1/h", "hard-link target");

    let err = reject(&targz(&[thard("llama-b1/h", "../x")]), ArchiveKind::TarGz);
    assert_unsafe(err, "llama-b1/h", "hard-link target");

    // Target inside, but not extracted before the link.
    let items = [
        thard("llama-b1/h", "llama-b1/later"),
        tfile("llama-b1/later", b"x"),
    ];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    let msg = err.to_string();
    match err {
        ExtractError::UnsupportedEntry { entry, kind } => {
            assert_eq!(entry, "llama-b1/h");
            assert!(kind.contains("hard link to `llama-b1/later`"), "{kind}");
        }
        other => panic!("{other:?}"),
    }
    assert!(msg.contains("which is not supported"), "{msg}");

    // A hard link to a symlink is not a regular file either.
    let items = [tlink("llama-b1/s", "x"), thard("llama-b1/h", "llama-b1/s")];
    let err = reject(&targz(&items), ArchiveKind::TarGz);
    assert!(
        matches!(err, ExtractError::UnsupportedEntry { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(
            "archive entry `llama-b1/h` is a hard link to `llama-b1/s` (a hard link must name \
             a regular file extracted before it), which is not supported"
        ),
        "{err}"
    );
}

#[test]
fn devices_and_fifos_are_rejected() {
    for (kind, what) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "FIFO"),
    ] {
        let err = reject(
            &targz(&[tspecial("llama-b1/dev", kind)]),
            ArchiveKind::TarGz,
        );
        let msg = err.to_string();
        match err {
            ExtractError::UnsupportedEntry { entry, kind } => {
                assert_eq!(entry, "llama-b1/dev");
                assert_eq!(kind, what);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            msg.contains(&format!(
                "`llama-b1/dev` is a {what}, which is not supported"
            )),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------- limits

#[test]
fn too_many_entries() {
    let items: Vec<TarItem> = (0..20)
        .map(|i| tfile(&format!("llama-b1/f{i}"), b"x"))
        .collect();
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = reject_with(&targz(&items), ArchiveKind::TarGz, &limits);
    assert!(
        matches!(err, ExtractError::TooManyEntries { limit: 10 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 10 entries"), "{err}");

    let files: Vec<ZipItem> = (0..20)
        .map(|i| ZipItem::File(Box::leak(format!("f{i}").into_boxed_str()), b"x", None))
        .collect();
    let err = reject_with(&zipped(&files), ArchiveKind::Zip, &limits);
    assert!(
        matches!(err, ExtractError::TooManyEntries { limit: 10 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 10 entries"), "{err}");
}

/// A tar.gz whose only file is `size` zero bytes (`size` a multiple of 1 MiB).
///
/// Compressing that much in a debug build is slow, so the deflate stream is put
/// together from pieces: 1 MiB of zeros compressed once with a full flush (which makes
/// the piece independent of what precedes it) is repeated. The gzip trailer's CRC and
/// length are those of the whole decompressed stream, so the result is a valid archive.
fn zeros_targz(size: u64) -> Vec<u8> {
    const MIB: usize = 1 << 20;
    assert_eq!(size % MIB as u64, 0);
    let header = raw_header(b"llama-b1/zeros", b'0', size, 0o644, b"");
    let deflate = |data: &[u8], flush| {
        let mut c = flate2::Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(64 * 1024);
        c.compress_vec(data, &mut out, flush).unwrap();
        assert_eq!(c.total_in(), data.len() as u64);
        out
    };
    let zeros = vec![0u8; MIB];
    let mib_of_zeros = deflate(&zeros, flate2::FlushCompress::Full);
    let end_blocks = &zeros[..1024]; // the tar end-of-archive marker

    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend(deflate(header.as_bytes(), flate2::FlushCompress::Full));
    let mut crc = flate2::Crc::new();
    crc.update(header.as_bytes());
    let mut mib_crc = flate2::Crc::new();
    mib_crc.update(&zeros);
    for _ in 0..size / MIB as u64 {
        gz.extend_from_slice(&mib_of_zeros);
        crc.combine(&mib_crc);
    }
    gz.extend(deflate(end_blocks, flate2::FlushCompress::Finish));
    crc.update(end_blocks);
    gz.extend(crc.sum().to_le_bytes());
    gz.extend(crc.amount().to_le_bytes());
    gz
}

#[test]
fn zeros_targz_is_a_valid_archive() {
    let run = run(&zeros_targz(2 << 20), ArchiveKind::TarGz);
    let entries = run.result.as_ref().expect("extracts");
    assert_eq!(entries[0].size, 2 << 20);
    assert_eq!(entries[0].sha256, sha(&vec![0; 2 << 20]));
}

#[test]
fn gzip_bomb_stops_at_the_total_cap() {
    let bomb = zeros_targz(200 << 20);
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    let limits = Limits {
        max_total_bytes: 10 << 20,
        ..Limits::default()
    };
    let start = Instant::now();
    let err = reject_with(&bomb, ArchiveKind::TarGz, &limits);
    let took = start.elapsed();
    assert!(
        matches!(err, ExtractError::TooLarge { limit } if limit == 10 << 20),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("expands to more than 10485760 bytes (the limit for all files together)"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn the_total_cap_counts_every_file() {
    let items: Vec<TarItem> = (0..8)
        .map(|i| tfile(&format!("llama-b1/f{i}"), &[7u8; 1000]))
        .collect();
    let limits = Limits {
        max_total_bytes: 5000,
        ..Limits::default()
    };
    let err = reject_with(&targz(&items), ArchiveKind::TarGz, &limits);
    assert!(
        matches!(err, ExtractError::TooLarge { limit: 5000 }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the archive expands to more than 5000 bytes"),
        "{err}"
    );
}

#[test]
fn one_file_over_the_entry_cap() {
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = reject_with(&zeros_targz(3 << 20), ArchiveKind::TarGz, &limits);
    let msg = err.to_string();
    match err {
        ExtractError::EntryTooLarge { entry, limit } => {
            assert_eq!(entry, "llama-b1/zeros");
            assert_eq!(limit, 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        msg.contains(
            "`llama-b1/zeros` expands to more than 1048576 bytes (the limit for one file)"
        ),
        "{msg}"
    );

    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("big", SimpleFileOptions::default()).unwrap();
    io::copy(&mut io::repeat(0).take(3 << 20), &mut w).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let err = reject_with(&bytes, ArchiveKind::Zip, &limits);
    assert!(matches!(err, ExtractError::EntryTooLarge { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("archive entry `big` expands to more than 1048576 bytes"),
        "{err}"
    );
}

// ---------------------------------------------------------------- corruption

#[test]
fn truncated_gzip_is_corrupt() {
    let good = targz(&linux_targz_items());
    for cut in [good.len() / 2, good.len() - 4, 5] {
        let err = reject(&good[..cut], ArchiveKind::TarGz);
        assert_corrupt(err);
    }
}

#[test]
fn damaged_gzip_is_corrupt() {
    let mut bad = targz(&linux_targz_items());
    let n = bad.len();
    bad[n - 6] ^= 0xff; // inside the CRC trailer
    assert_corrupt(reject(&bad, ArchiveKind::TarGz));

    assert_corrupt(reject(b"this is not gzip at all", ArchiveKind::TarGz));
    assert_corrupt(reject(b"", ArchiveKind::TarGz));
}

#[test]
fn truncated_or_damaged_zip_is_corrupt() {
    let good = zipped(&[
        ZipItem::File("build/bin/libllama.so", LIB, Some(0o755)),
        ZipItem::File("build/bin/llama-cli", TOOL, Some(0o755)),
    ]);
    assert_corrupt(reject(&good[..good.len() - 10], ArchiveKind::Zip));
    assert_corrupt(reject(&good[..good.len() / 2], ArchiveKind::Zip));
    assert_corrupt(reject(b"PK\x03\x04 not really", ArchiveKind::Zip));

    // Flip a byte of the first file's data: the CRC check fails.
    let mut bad = good.clone();
    let at = bad
        .windows(LIB.len())
        .position(|w| w == LIB)
        .expect("stored uncompressed");
    bad[at + 3] ^= 0x20;
    assert_corrupt(reject(&bad, ArchiveKind::Zip));
}
