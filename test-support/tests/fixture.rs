//! The real llama.cpp fixture: built once (minutes, cold) or loaded from the cache.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use llama_prebuilt_test_support::archives::sha256_file;
use llama_prebuilt_test_support::fixture::{self, FIXTURE_TAG, Fixture};
use llama_prebuilt_test_support::mirror::Mirror;
use tar::EntryType;

/// Path -> (kind, link target, first 20 bytes of a regular file).
fn tar_index(path: &Path) -> Vec<(String, EntryType, String, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(GzDecoder::new(file));
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut head = Vec::new();
            (&mut e).take(20).read_to_end(&mut head).unwrap();
            (p, kind, link, head)
        })
        .collect()
}

fn entry<'a>(
    idx: &'a [(String, EntryType, String, Vec<u8>)],
    path: &str,
) -> &'a (String, EntryType, String, Vec<u8>) {
    idx.iter().find(|e| e.0 == path).unwrap_or_else(|| {
        panic!(
            "{path} missing from {:?}",
            idx.iter().map(|e| &e.0).collect::<Vec<_>>()
        )
    })
}

/// Checks the release layout under `llama-<tag>/`: the `libllama.so -> .so.0 -> .so.0.0.10199`
/// chain and the other chains, the run-time loaded backends, the tools, LICENSE. Returns the
/// ELF header of the real libllama.
fn check_linux_tarball(f: &Fixture, name: &str) -> Vec<u8> {
    let a = f.archive(name).unwrap_or_else(|| panic!("no {name}"));
    let idx = tar_index(&a.path);
    let top = format!("llama-{FIXTURE_TAG}");
    let at = |p: &str| entry(&idx, &format!("{top}/{p}"));
    assert_eq!(idx[0].0, format!("{top}/"));
    assert!(idx.iter().all(|e| e.0.starts_with(&format!("{top}/"))));
    let so = at("libllama.so");
    assert_eq!((so.1, so.2.as_str()), (EntryType::Symlink, "libllama.so.0"));
    let so0 = at("libllama.so.0");
    assert_eq!(
        (so0.1, so0.2.as_str()),
        (EntryType::Symlink, "libllama.so.0.0.10199")
    );
    let real = at("libllama.so.0.0.10199");
    assert_eq!(real.1, EntryType::Regular);
    assert_eq!(&real.3[..4], b"\x7fELF");
    for (lib, version) in [
        ("libggml", "0.18.0"),
        ("libggml-base", "0.18.0"),
        ("libmtmd", "0.0.10199"),
        ("libllama-common", "0.0.10199"),
    ] {
        let link = at(&format!("{lib}.so"));
        assert_eq!(
            (link.1, link.2.clone()),
            (EntryType::Symlink, format!("{lib}.so.0"))
        );
        let soname = at(&format!("{lib}.so.0"));
        assert_eq!(
            (soname.1, soname.2.clone()),
            (EntryType::Symlink, format!("{lib}.so.{version}"))
        );
        assert_eq!(at(&format!("{lib}.so.{version}")).1, EntryType::Regular);
    }
    // Backends loaded at run time: no SONAME chain.
    for backend in ["libggml-cpu.so", "libggml-rpc.so"] {
        assert_eq!(at(backend).1, EntryType::Regular, "{backend}");
    }
    for tool in ["ggml-rpc-server", "llama-completion"] {
        let t = at(tool);
        assert_eq!(
            (t.1, &t.3[..4]),
            (EntryType::Regular, &b"\x7fELF"[..]),
            "{tool}"
        );
    }
    let license = at("LICENSE");
    assert_eq!(
        (license.1, &license.3[..11]),
        (EntryType::Regular, &b"MIT License"[..])
    );
    real.3.clone()
}

fn check_common(f: &Fixture) {
    assert_eq!(f.tag, FIXTURE_TAG);
    assert_eq!(
        FIXTURE_TAG, "b10199-fixture",
        "never the official tag b10199"
    );
    for h in [
        "llama.h",
        "ggml.h",
        "ggml-backend.h",
        "ggml-cpu.h",
        "ggml-rpc.h",
        "gguf.h",
        "mtmd.h",
        "mtmd-helper.h",
    ] {
        assert!(f.include_dir.join(h).is_file(), "{h}");
    }
    let chain = std::fs::read_link(f.lib_dir.join("libllama.so")).unwrap();
    assert_eq!(chain, Path::new("libllama.so.0"));
    assert!(f.lib_dir.join("libllama.so.0.0.10199").is_file());
    let src = fixture::source_tree().unwrap();
    assert_eq!(
        std::fs::read(f.lib_dir.join("LICENSE")).unwrap(),
        std::fs::read(src.join("LICENSE")).unwrap(),
        "LICENSE is the source's, as in the release"
    );
    let checksums = std::fs::read_to_string(&f.checksums_path).unwrap();
    assert!(checksums.contains("[b10199-fixture]"));
    assert!(
        !checksums.contains("[b10199]"),
        "never the official tag's table"
    );
    assert!(checksums.contains("NOT official release digests"));
    for a in &f.archives {
        assert!(
            a.name.starts_with("llama-b10199-fixture-bin-"),
            "{}",
            a.name
        );
        assert_eq!(a.sha256, sha256_file(&a.path).unwrap(), "{}", a.name);
        assert_eq!(a.size, std::fs::metadata(&a.path).unwrap().len());
        let line = format!(
            "\"{}\" = {{ sha256 = \"{}\", size = {} }}",
            a.name, a.sha256, a.size
        );
        assert!(checksums.contains(&line), "{line} not in {checksums}");
    }
}

#[test]
fn x64_fixture_has_the_release_layout() {
    let f = fixture::fixture().unwrap();
    assert!(
        std::ptr::eq(f, fixture::fixture().unwrap()),
        "built or loaded once"
    );
    check_common(f);
    let elf = check_linux_tarball(f, "llama-b10199-fixture-bin-ubuntu-x64.tar.gz");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "EM_X86_64");

    let zip = f
        .archive("llama-b10199-fixture-bin-ubuntu-x64.zip")
        .unwrap();
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip.path).unwrap()).unwrap();
    let mut lib = z.by_name("build/bin/libllama.so").unwrap();
    assert!(!lib.is_symlink(), "zip era stores copies");
    let mut magic = [0u8; 4];
    lib.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"\x7fELF");
    assert!(
        f.archive("llama-b10199-fixture-bin-win-cpu-x64.zip")
            .is_some()
    );
    assert_eq!(f.archives.len(), 3);
}

#[test]
fn fixture_is_served_by_the_mirror() {
    let f = fixture::fixture().unwrap();
    let m = Mirror::start().unwrap();
    f.serve(&m);
    for a in &f.archives {
        let url = format!("{}/{}/{}", m.download_base(), f.tag, a.name);
        let mut resp = ureq::get(&url).call().unwrap();
        let mut body = Vec::new();
        resp.body_mut().as_reader().read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, a.size);
        assert_eq!(
            llama_prebuilt_test_support::archives::sha256_hex(&body),
            a.sha256
        );
        assert_eq!(m.hits(&f.tag, &a.name), 1);
    }
}

#[test]
fn aarch64_fixture_is_a_cross_build() {
    let f = fixture::fixture_aarch64().unwrap();
    check_common(f);
    let elf = check_linux_tarball(f, "llama-b10199-fixture-bin-ubuntu-arm64.tar.gz");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "EM_AARCH64");
    assert_eq!(f.archives.len(), 1);
    let combined = tempfile::NamedTempFile::new().unwrap();
    let x64 = fixture::fixture().unwrap();
    fixture::write_checksums(&[x64, f], combined.path()).unwrap();
    let text = std::fs::read_to_string(combined.path()).unwrap();
    assert_eq!(
        text.matches("[b10199-fixture]").count(),
        1,
        "one table per tag"
    );
    assert_eq!(text.matches(" = { sha256 = ").count(), 4);
}
