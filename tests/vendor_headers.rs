//! `vendor-headers/` is exactly the pinned tag's: every header byte-identical to the one in the
//! fixture's llama.cpp source tree (b10199, from its verified PyPI sdist), the LICENSE too, and
//! ORIGIN.md's sha256 list is the files' own.

use std::path::Path;

use llama_prebuilt_test_support::archives::sha256_file;
use llama_prebuilt_test_support::fixture;

/// Where a vendored file lives in the llama.cpp source tree.
fn source_path(name: &str) -> String {
    match name {
        "llama.h" => "include/llama.h".into(),
        "mtmd.h" | "mtmd-helper.h" => format!("tools/mtmd/{name}"),
        "LICENSE" => "LICENSE".into(),
        _ => format!("ggml/include/{name}"),
    }
}

#[test]
fn vendored_headers_are_the_fixture_sources() {
    let src = fixture::source_tree().expect("the fixture's source tree");
    let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor-headers");
    let origin = std::fs::read_to_string(vendored.join("ORIGIN.md")).unwrap();
    let mut compared = Vec::new();
    for entry in std::fs::read_dir(&vendored).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "ORIGIN.md" {
            continue;
        }
        let ours = std::fs::read(entry.path()).unwrap();
        let theirs_path = src.join(source_path(&name));
        let theirs = std::fs::read(&theirs_path)
            .unwrap_or_else(|e| panic!("{}: {e}", theirs_path.display()));
        assert!(
            ours == theirs,
            "vendor-headers/{name} differs from {}",
            theirs_path.display()
        );
        if name.ends_with(".h") {
            let line = format!("{}  {name}", sha256_file(&entry.path()).unwrap());
            assert!(origin.contains(&line), "ORIGIN.md lacks `{line}`");
        }
        compared.push(name);
    }
    compared.sort();
    assert_eq!(
        compared,
        [
            "LICENSE",
            "ggml-alloc.h",
            "ggml-backend.h",
            "ggml-cpu.h",
            "ggml-opt.h",
            "ggml-rpc.h",
            "ggml.h",
            "gguf.h",
            "llama.h",
            "mtmd-helper.h",
            "mtmd.h"
        ]
    );
}
