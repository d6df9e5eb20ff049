//! Starting inputs for each target: valid release-shaped archives, the hostile archives of
//! test-support (traversal, absolute paths, escaping links, many entries), and GGUF headers of
//! the generated test model.

use std::io::Read;

use llama_prebuilt_test_support::archives::{
    linux_tar_gz, linux_zip_era, macos_tar_gz, tar_gz_many_entries, tar_gz_raw,
    tar_gz_with_entry_path, tar_gz_with_symlink, windows_zip, zip_with_entry_path,
    zip_with_symlink, RawEntry,
};
use llama_prebuilt_test_support::gguf::{write_model, TinyModelSpec};

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("seed archives are valid gzip");
    out
}

fn targz() -> Vec<Vec<u8>> {
    let archives = vec![
        linux_tar_gz("b1234"),
        macos_tar_gz("b1234"),
        tar_gz_with_entry_path("../evil"),
        tar_gz_with_entry_path("/tmp/evil"),
        tar_gz_with_entry_path("llama-b1/../../evil"),
        tar_gz_with_symlink("llama-b1/up", "../../outside"),
        tar_gz_with_symlink("llama-b1/abs", "/tmp"),
        tar_gz_raw(&[
            RawEntry::Symlink {
                path: "llama-b1/t".into(),
                target: "..".into(),
            },
            RawEntry::File {
                path: "llama-b1/t/escape".into(),
                mode: 0o644,
                data: b"through a link\n".to_vec(),
            },
        ]),
        tar_gz_raw(&[
            RawEntry::File {
                path: "llama-b1/a".into(),
                mode: 0o755,
                data: b"a\n".to_vec(),
            },
            RawEntry::Hardlink {
                path: "llama-b1/b".into(),
                target: "llama-b1/a".into(),
            },
            RawEntry::Hardlink {
                path: "llama-b1/c".into(),
                target: "../x".into(),
            },
            RawEntry::Dir {
                path: "llama-b1/d/".into(),
            },
        ]),
        tar_gz_many_entries(40),
    ];
    let mut out = Vec::new();
    for gz in archives {
        let mut raw = vec![0u8];
        raw.extend(gunzip(&gz));
        out.push(raw);
        let mut whole = vec![1u8];
        whole.extend(gz);
        out.push(whole);
    }
    out
}

fn zip() -> Vec<Vec<u8>> {
    vec![
        windows_zip(),
        linux_zip_era("b1234"),
        zip_with_entry_path("../evil"),
        zip_with_entry_path("/tmp/evil"),
        zip_with_entry_path("build/bin/../../../evil"),
        zip_with_symlink("build/bin/up", "../../../../outside"),
        zip_with_symlink("abs", "/etc"),
    ]
}

fn gguf() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    write_model(&TinyModelSpec::tiny(), &path).expect("write the tiny model");
    let file = std::fs::read(&path).expect("read the tiny model");
    let header = llama_prebuilt::gguf::parse_header(&file).expect("the tiny model parses");
    let end = header.data_offset as usize;
    let mut minimal = b"GGUF".to_vec();
    minimal.extend_from_slice(&3u32.to_le_bytes());
    minimal.extend_from_slice(&0u64.to_le_bytes()); // tensors
    minimal.extend_from_slice(&1u64.to_le_bytes()); // one kv: general.alignment = 64
    minimal.extend_from_slice(&17u64.to_le_bytes());
    minimal.extend_from_slice(b"general.alignment");
    minimal.extend_from_slice(&4u32.to_le_bytes());
    minimal.extend_from_slice(&64u32.to_le_bytes());
    vec![
        file[..end].to_vec(),
        file[..(end + 4096).min(file.len())].to_vec(),
        minimal,
    ]
}

/// The seeds of `target` (one of [`crate::TARGETS`]).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "extract_targz" => targz(),
        "extract_zip" => zip(),
        "gguf_header" => gguf(),
        other => panic!("unknown target {other}"),
    }
}
