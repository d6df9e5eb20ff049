//! The synthetic archives read back with ordinary tar/zip readers.

use std::io::{Cursor, Read};

use flate2::read::GzDecoder;
use llama_prebuilt_test_support::archives::*;
use tar::EntryType;

/// `(path, kind, link target, mode, size)` of every entry, paths as raw header bytes.
fn tar_entries(gz: &[u8]) -> Vec<(String, EntryType, String, u32, u64)> {
    let mut ar = tar::Archive::new(GzDecoder::new(gz));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            (
                path,
                h.entry_type(),
                link,
                h.mode().unwrap(),
                h.size().unwrap(),
            )
        })
        .collect()
}

fn find<'a>(
    entries: &'a [(String, EntryType, String, u32, u64)],
    path: &str,
) -> &'a (String, EntryType, String, u32, u64) {
    entries
        .iter()
        .find(|e| e.0 == path)
        .unwrap_or_else(|| panic!("no {path} in {entries:?}"))
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    z.file_names().map(|n| n.unwrap().into_owned()).collect()
}

#[test]
fn linux_tar_gz_has_the_release_layout() {
    let gz = linux_tar_gz("b20001");
    let e = tar_entries(&gz);
    assert_eq!(e[0].0, "llama-b20001/");
    assert_eq!(e[0].1, EntryType::Directory);
    assert!(e.iter().all(|x| x.0.starts_with("llama-b20001/")));
    assert_eq!(find(&e, "llama-b20001/llama-cli").3, 0o755);
    assert_eq!(find(&e, "llama-b20001/LICENSE").1, EntryType::Regular);
    for (link, target) in [
        ("libllama.so", "libllama.so.0"),
        ("libllama.so.0", "libllama.so.0.0.20001"),
        ("libggml.so", "libggml.so.0"),
        ("libggml.so.0", "libggml.so.0.9.4"),
        ("libggml-base.so", "libggml-base.so.0"),
        ("libggml-base.so.0", "libggml-base.so.0.9.4"),
    ] {
        let x = find(&e, &format!("llama-b20001/{link}"));
        assert_eq!((x.1, x.2.as_str()), (EntryType::Symlink, target), "{link}");
    }
    for file in [
        "libllama.so.0.0.20001",
        "libggml.so.0.9.4",
        "libggml-base.so.0.9.4",
        "libggml-cpu-haswell.so",
    ] {
        let x = find(&e, &format!("llama-b20001/{file}"));
        assert_eq!(x.1, EntryType::Regular, "{file}");
        assert!(x.4 > 0);
    }
    // Deterministic: same tag, same bytes (and digest).
    assert_eq!(sha256_hex(&gz), sha256_hex(&linux_tar_gz("b20001")));
    assert_ne!(sha256_hex(&gz), sha256_hex(&linux_tar_gz("b20002")));
}

#[test]
fn dummy_files_are_distinct() {
    let gz = linux_tar_gz("b7");
    let mut ar = tar::Archive::new(GzDecoder::new(&gz[..]));
    let mut seen = std::collections::HashSet::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() == EntryType::Regular {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert!(seen.insert(data), "duplicate contents");
        }
    }
    assert_eq!(seen.len(), 6);
}

#[test]
fn zip_era_and_windows_layouts() {
    let mut names = zip_names(&linux_zip_era("b6784"));
    names.sort();
    assert_eq!(
        names,
        [
            "build/bin/LICENSE",
            "build/bin/libggml-base.so",
            "build/bin/libggml-cpu.so",
            "build/bin/libggml.so",
            "build/bin/libllama.so"
        ]
    );
    let mut z = zip::ZipArchive::new(Cursor::new(linux_zip_era("b6784"))).unwrap();
    for i in 0..z.len() {
        assert!(!z.by_index(i).unwrap().is_symlink());
    }
    let names = zip_names(&windows_zip());
    for n in [
        "llama.dll",
        "ggml.dll",
        "ggml-base.dll",
        "ggml-cpu-haswell.dll",
        "llama-cli.exe",
    ] {
        assert!(names.contains(&n.to_owned()), "{n}");
    }
    assert!(names.iter().all(|n| !n.contains('/')), "flat");
}

#[test]
fn macos_layout_has_dylib_chains() {
    let e = tar_entries(&macos_tar_gz("b11194"));
    for (link, target) in [
        ("libllama.dylib", "libllama.0.dylib"),
        ("libllama.0.dylib", "libllama.0.0.11194.dylib"),
        ("libggml.dylib", "libggml.0.dylib"),
        ("libggml.0.dylib", "libggml.0.9.4.dylib"),
        ("libggml-base.0.dylib", "libggml-base.0.9.4.dylib"),
    ] {
        let x = find(&e, &format!("llama-b11194/{link}"));
        assert_eq!((x.1, x.2.as_str()), (EntryType::Symlink, target));
    }
    assert_eq!(
        find(&e, "llama-b11194/libggml-metal.dylib").1,
        EntryType::Regular
    );
}

#[test]
fn hostile_tar_names_are_written_verbatim() {
    for path in ["../evil", "/etc/evil", "llama-b1/../../evil"] {
        let e = tar_entries(&tar_gz_with_entry_path(path));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, path);
    }
    let e = tar_entries(&tar_gz_with_symlink("llama-b1/libggml.so", "../../outside"));
    let x = find(&e, "llama-b1/libggml.so");
    assert_eq!((x.1, x.2.as_str()), (EntryType::Symlink, "../../outside"));
    let e = tar_entries(&tar_gz_raw(&[
        RawEntry::Symlink {
            path: "llama-b1/d".into(),
            target: "/tmp".into(),
        },
        RawEntry::File {
            path: "llama-b1/d/evil".into(),
            mode: 0o644,
            data: b"x".to_vec(),
        },
        RawEntry::Hardlink {
            path: "llama-b1/h".into(),
            target: "/etc/passwd".into(),
        },
    ]));
    assert_eq!(e[1].0, "llama-b1/d/evil");
    assert_eq!((e[2].1, e[2].2.as_str()), (EntryType::Link, "/etc/passwd"));
}

#[test]
fn hostile_zip_names_are_written_verbatim() {
    for path in ["../evil", "/evil", "build/bin/../../evil"] {
        assert_eq!(zip_names(&zip_with_entry_path(path)), [path]);
    }
    let bytes = zip_with_symlink("build/bin/libggml.so", "../../../etc/passwd");
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut link = z.by_name("build/bin/libggml.so").unwrap();
    assert!(link.is_symlink());
    let mut target = String::new();
    link.read_to_string(&mut target).unwrap();
    assert_eq!(target, "../../../etc/passwd");
}

#[test]
fn bombs_are_cheap_to_make() {
    let e = tar_entries(&tar_gz_many_entries(20_000));
    assert_eq!(e.len(), 20_001);
    assert!(
        e.iter()
            .skip(1)
            .all(|x| x.0.starts_with("llama-b1/f") && x.4 == 0)
    );
    // Read back a small one fully (inflating is slow in debug builds)...
    let e = tar_entries(&tar_gz_large_entry(2 << 20 | 3));
    assert_eq!(e.len(), 2);
    assert_eq!(find(&e, "llama-b1/big.bin").4, 2 << 20 | 3);
    // ...and check that a big one is cheap and declares its size in the first header.
    let t = std::time::Instant::now();
    let gz = tar_gz_large_entry(4 << 30);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert!(gz.len() < 40 << 20, "{}", gz.len());
    let mut ar = tar::Archive::new(GzDecoder::new(&gz[..]));
    let mut entries = ar.entries().unwrap();
    assert_eq!(
        entries.next().unwrap().unwrap().header().entry_type(),
        EntryType::Directory
    );
    let big = entries.next().unwrap().unwrap();
    assert_eq!(big.header().size().unwrap(), 4 << 30);
}

#[test]
fn large_tar_gz_is_about_the_requested_size_and_its_digest_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llama-b5-bin-ubuntu-x64.tar.gz");
    let want = 8 << 20;
    let d = write_large_tar_gz(&path, "b5", want).unwrap();
    assert_eq!(d.size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(d.sha256, sha256_file(&path).unwrap());
    assert!(d.size.abs_diff(want) < 64 * 1024, "{} vs {want}", d.size);
    let gz = std::fs::read(&path).unwrap();
    let e = tar_entries(&gz);
    assert_eq!(find(&e, "llama-b5/libllama.so").2, "libllama.so.0");
    assert_eq!(find(&e, "llama-b5/libllama.so.0").2, "libllama.so.0.0.5");
}
