//! Which release asset serves a target: one table of platforms and one of variants.
//!
//! Asset names follow `llama-<tag>-bin-<os>[-<backend>[-<version>]]-<arch>.<ext>` (RELEASES.md).
//! The archive extension changed from `.zip` to `.tar.gz` for Linux and macOS somewhere between
//! b7312 and b7956, so both are offered as candidates for every tag, most likely first, and the
//! caller picks the one a checksums file, the release listing or the cache knows.

use crate::error::{Error, Result};
use crate::libdir::LibOs;
use crate::target::Target;

/// A platform that has official prebuilt binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// Short name used by the CLI (`linux-x64`, `macos-arm64`, ...).
    pub key: &'static str,
    /// The Rust target this platform serves.
    pub triple: &'static str,
    arch: &'static str,
    os: &'static str,
    env: &'static str,
    /// `<os>` part of the asset name (`ubuntu`, `macos`, `win`).
    pub asset_os: &'static str,
    /// `<arch>` part of the asset name (`x64`, `arm64`, ...).
    pub asset_arch: &'static str,
}

/// Every platform with official CPU binaries.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        key: "linux-x64",
        triple: "x86_64-unknown-linux-gnu",
        arch: "x86_64",
        os: "linux",
        env: "gnu",
        asset_os: "ubuntu",
        asset_arch: "x64",
    },
    Platform {
        key: "linux-arm64",
        triple: "aarch64-unknown-linux-gnu",
        arch: "aarch64",
        os: "linux",
        env: "gnu",
        asset_os: "ubuntu",
        asset_arch: "arm64",
    },
    Platform {
        key: "linux-s390x",
        triple: "s390x-unknown-linux-gnu",
        arch: "s390x",
        os: "linux",
        env: "gnu",
        asset_os: "ubuntu",
        asset_arch: "s390x",
    },
    Platform {
        key: "macos-arm64",
        triple: "aarch64-apple-darwin",
        arch: "aarch64",
        os: "macos",
        env: "",
        asset_os: "macos",
        asset_arch: "arm64",
    },
    Platform {
        key: "macos-x64",
        triple: "x86_64-apple-darwin",
        arch: "x86_64",
        os: "macos",
        env: "",
        asset_os: "macos",
        asset_arch: "x64",
    },
    Platform {
        key: "windows-x64",
        triple: "x86_64-pc-windows-msvc",
        arch: "x86_64",
        os: "windows",
        env: "msvc",
        asset_os: "win",
        asset_arch: "x64",
    },
    Platform {
        key: "windows-arm64",
        triple: "aarch64-pc-windows-msvc",
        arch: "aarch64",
        os: "windows",
        env: "msvc",
        asset_os: "win",
        asset_arch: "arm64",
    },
];

/// The MinGW target the `windows-x64` assets also serve (see [`Platform::for_target`]).
const WINDOWS_GNU_X64: &str = "x86_64-pc-windows-gnu";

/// The six platforms `download --all` fetches (s390x is opt-in: few users, no Rust tier-1).
pub const DEFAULT_PLATFORMS: &[&str] = &[
    "linux-x64",
    "linux-arm64",
    "macos-arm64",
    "macos-x64",
    "windows-x64",
    "windows-arm64",
];

impl Platform {
    /// The platform serving `target`, or an error listing the supported targets.
    ///
    /// `x86_64-pc-windows-gnu` is served by the MSVC-built `win-…-x64` assets: the DLLs export
    /// a C ABI, and the import libraries staging generates serve GNU ld too.
    pub fn for_target(target: &Target) -> Result<&'static Platform> {
        let env_matches = |p: &Platform| {
            p.env == target.env || (p.os == "windows" && p.arch == "x86_64" && target.env == "gnu")
        };
        PLATFORMS
            .iter()
            .find(|p| p.arch == target.arch && p.os == target.os && env_matches(p))
            .ok_or_else(|| Error::UnsupportedTarget {
                triple: target.triple.clone(),
                supported: PLATFORMS
                    .iter()
                    .map(|p| p.triple.to_string())
                    .chain([WINDOWS_GNU_X64.to_string()])
                    .collect(),
            })
    }

    /// The platform with this CLI key (`linux-x64`, ...).
    pub fn by_key(key: &str) -> Option<&'static Platform> {
        PLATFORMS.iter().find(|p| p.key == key)
    }

    /// The OS family, for locating libraries inside an archive.
    pub fn lib_os(&self) -> LibOs {
        match self.os {
            "macos" => LibOs::MacOs,
            "windows" => LibOs::Windows,
            _ => LibOs::Linux,
        }
    }
}

/// How libraries are named on `target`, for libraries the user brings (`LLAMA_LIB_DIR`): the
/// release table's platform when the target has one, else the target OS. `None` when neither
/// knows the OS; guessing (say, Linux naming for a Windows triple missing from the table) would
/// make the search fail with a misleading "no libllama" message.
pub fn lib_os_for(target: &Target) -> Option<LibOs> {
    Platform::for_target(target)
        .map(Platform::lib_os)
        .ok()
        .or_else(|| LibOs::from_target_os(&target.os))
}

/// One backend flavour of a platform's asset.
struct VariantRule {
    /// Variant name as the user writes it; a trailing `-*` takes a version (`cuda-12.4`).
    name: &'static str,
    /// Platforms (keys) that have it.
    platforms: &'static [&'static str],
    /// Backend part of the asset name; `{v}` is replaced by the version.
    infix: &'static str,
}

/// Variants and where they exist (RELEASES.md, "Other backends"). `cpu` on Windows is spelled
/// `win-cpu-<arch>`; on Linux and macOS the CPU asset has no backend part (macOS arm64's includes
/// Metal).
const VARIANTS: &[VariantRule] = &[
    VariantRule {
        name: "cpu",
        platforms: &[
            "linux-x64",
            "linux-arm64",
            "linux-s390x",
            "macos-arm64",
            "macos-x64",
        ],
        infix: "",
    },
    VariantRule {
        name: "cpu",
        platforms: &["windows-x64", "windows-arm64"],
        infix: "cpu",
    },
    VariantRule {
        name: "vulkan",
        platforms: &["linux-x64", "linux-arm64", "windows-x64"],
        infix: "vulkan",
    },
    VariantRule {
        name: "cuda-*",
        platforms: &["windows-x64", "linux-x64", "linux-arm64"],
        infix: "cuda-{v}",
    },
    VariantRule {
        name: "rocm-*",
        platforms: &["linux-x64"],
        infix: "rocm-{v}",
    },
    VariantRule {
        name: "openvino-*",
        platforms: &["linux-x64"],
        infix: "openvino-{v}",
    },
    VariantRule {
        name: "sycl-fp16",
        platforms: &["linux-x64"],
        infix: "sycl-fp16",
    },
    VariantRule {
        name: "sycl",
        platforms: &["windows-x64"],
        infix: "sycl",
    },
    VariantRule {
        name: "hip-radeon",
        platforms: &["windows-x64"],
        infix: "hip-radeon",
    },
    VariantRule {
        name: "opencl-adreno",
        platforms: &["windows-arm64"],
        infix: "opencl-adreno",
    },
];

/// Variant names (with `<ver>` placeholders) available on a platform.
pub fn variants_for(platform: &Platform) -> Vec<String> {
    let mut names: Vec<String> = VARIANTS
        .iter()
        .filter(|r| r.platforms.contains(&platform.key))
        .map(|r| r.name.replace('*', "<ver>"))
        .collect();
    names.dedup();
    names
}

/// Parses a tag into its build number: `b<digits>` (an official release, e.g. `b10199`), or
/// `b<digits>-<suffix>` with a suffix of `[a-z0-9.]` (e.g. `b10199-fixture`): a build of tag
/// `b<digits>`'s source that is **not** the official release bytes (a test fixture, a patched
/// or in-house build served from a mirror with its own checksums file).
pub fn build_number(tag: &str) -> Option<u64> {
    parse_tag(tag).map(|(n, _)| n)
}

/// The build number of an official release tag (`b<digits>`, no suffix); `None` for suffixed
/// tags, which are never official and so never what `newest` means.
pub fn official_build_number(tag: &str) -> Option<u64> {
    match parse_tag(tag)? {
        (n, None) => Some(n),
        (_, Some(_)) => None,
    }
}

/// `(build number, suffix)` of `b<digits>[-<suffix>]`.
fn parse_tag(tag: &str) -> Option<(u64, Option<&str>)> {
    let rest = tag.strip_prefix('b')?;
    let (digits, suffix) = match rest.split_once('-') {
        Some((d, s)) => (d, Some(s)),
        None => (rest, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(s) = suffix {
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.';
        if s.is_empty() || !s.bytes().all(ok) {
            return None;
        }
    }
    Some((digits.parse().ok()?, suffix))
}

/// Checks that `tag` is a release tag (see [`build_number`]) and that its build number is not
/// one known to be broken (a suffixed tag of a broken number is refused too).
pub fn check_tag(tag: &str) -> Result<u64> {
    let n = build_number(tag).ok_or_else(|| Error::BadTag {
        tag: tag.to_string(),
    })?;
    match n {
        9110 => Err(Error::BrokenTag {
            tag: tag.to_string(),
            why: "its release has missing assets",
        }),
        9165..=9169 => Err(Error::BrokenTag {
            tag: tag.to_string(),
            why: "its tarballs contain broken symlinks",
        }),
        _ => Ok(n),
    }
}

/// First tag believed to ship `.tar.gz` for Linux/macOS; only used to order the candidates.
const FIRST_TAR_GZ_GUESS: u64 = 7956;

/// The asset names that may serve `platform` + `variant` at `tag`, most likely first.
pub fn candidates(tag: &str, platform: &Platform, variant: &str) -> Result<Vec<String>> {
    let n = check_tag(tag)?;
    let (rule, version) = VARIANTS
        .iter()
        .filter(|r| r.platforms.contains(&platform.key))
        .find_map(|r| match r.name.strip_suffix('*') {
            Some(prefix) => variant
                .strip_prefix(prefix)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                .map(|v| (r, v)),
            None => (r.name == variant).then_some((r, "")),
        })
        .ok_or_else(|| Error::UnsupportedVariant {
            variant: variant.to_string(),
            platform: platform.key.to_string(),
            supported: variants_for(platform),
        })?;
    let infix = rule.infix.replace("{v}", version);
    let mut stems = vec![stem(tag, platform, &infix)];
    // One source spells b10199's Windows arm64 CPU asset without `cpu`; accept it second.
    if platform.key == "windows-arm64" && variant == "cpu" {
        stems.push(stem(tag, platform, ""));
    }
    let exts: &[&str] = if platform.os == "windows" {
        &["zip"]
    } else if n >= FIRST_TAR_GZ_GUESS {
        &["tar.gz", "zip"]
    } else {
        &["zip", "tar.gz"]
    };
    Ok(stems
        .iter()
        .flat_map(|s| exts.iter().map(move |e| format!("{s}.{e}")))
        .collect())
}

fn stem(tag: &str, platform: &Platform, infix: &str) -> String {
    if infix.is_empty() {
        format!(
            "llama-{tag}-bin-{}-{}",
            platform.asset_os, platform.asset_arch
        )
    } else {
        format!(
            "llama-{tag}-bin-{}-{infix}-{}",
            platform.asset_os, platform.asset_arch
        )
    }
}

/// The CUDA runtime archive that goes with `main`, a CUDA asset of `tag` (`None` for any other
/// asset). It carries the CUDA runtime libraries (cudart, cuBLAS) the CUDA backend plugin loads
/// from its own directory, and has the main archive's extension. Names (RELEASES.md):
///
/// | main asset | runtime archive |
/// |---|---|
/// | `llama-<tag>-bin-win-cuda-<ver>-<arch>.zip` | `cudart-llama-bin-win-cuda-<ver>-<arch>.zip` (no tag) |
/// | `llama-<tag>-bin-ubuntu-cuda-<ver>-<arch>.<ext>` | `cudart-llama-<tag>-bin-ubuntu-cuda-<ver>-<arch>.<ext>` |
pub fn cudart_asset(tag: &str, main: &str) -> Option<String> {
    let rest = main.strip_prefix(&format!("llama-{tag}-bin-"))?;
    let (os, backend) = rest.split_once('-')?;
    if !backend.starts_with("cuda-") {
        return None;
    }
    Some(match os {
        "win" => format!("cudart-llama-bin-{rest}"),
        _ => format!("cudart-llama-{tag}-bin-{rest}"),
    })
}

/// Whether `asset` is a CUDA runtime archive (see [`cudart_asset`]).
pub fn is_runtime_asset(asset: &str) -> bool {
    asset.starts_with("cudart-llama-")
}

/// The asset name without its archive extension (the cache directory name).
pub fn asset_stem(asset: &str) -> &str {
    asset
        .strip_suffix(".tar.gz")
        .or_else(|| asset.strip_suffix(".zip"))
        .unwrap_or(asset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lib_os_for_uses_the_table_then_the_target_os() {
        let os = |t: &str| lib_os_for(&Target::from_triple(t));
        assert_eq!(os("x86_64-unknown-linux-gnu"), Some(LibOs::Linux));
        assert_eq!(os("aarch64-apple-darwin"), Some(LibOs::MacOs));
        // Not in the release table, but the OS says how its libraries are named.
        assert_eq!(os("i686-pc-windows-gnu"), Some(LibOs::Windows));
        assert_eq!(os("riscv64gc-unknown-linux-musl"), Some(LibOs::Linux));
        // Nobody knows: no guess.
        assert_eq!(os("wasm32-unknown-unknown"), None);
    }

    fn first(triple: &str, tag: &str, variant: &str) -> String {
        let p = Platform::for_target(&Target::from_triple(triple)).unwrap();
        candidates(tag, p, variant).unwrap().remove(0)
    }

    #[test]
    fn pinned_tag_cpu_assets_match_the_release() {
        assert_eq!(
            first("x86_64-unknown-linux-gnu", "b10199", "cpu"),
            "llama-b10199-bin-ubuntu-x64.tar.gz"
        );
        assert_eq!(
            first("aarch64-unknown-linux-gnu", "b10199", "cpu"),
            "llama-b10199-bin-ubuntu-arm64.tar.gz"
        );
        assert_eq!(
            first("aarch64-apple-darwin", "b10199", "cpu"),
            "llama-b10199-bin-macos-arm64.tar.gz"
        );
        assert_eq!(
            first("x86_64-apple-darwin", "b10199", "cpu"),
            "llama-b10199-bin-macos-x64.tar.gz"
        );
        assert_eq!(
            first("x86_64-pc-windows-msvc", "b10199", "cpu"),
            "llama-b10199-bin-win-cpu-x64.zip"
        );
        assert_eq!(
            first("aarch64-pc-windows-msvc", "b10199", "cpu"),
            "llama-b10199-bin-win-cpu-arm64.zip"
        );
        // The MinGW target uses the same (MSVC-built, C ABI) DLLs.
        assert_eq!(
            first("x86_64-pc-windows-gnu", "b10199", "cpu"),
            "llama-b10199-bin-win-cpu-x64.zip"
        );
    }

    #[test]
    fn both_eras_are_candidates_in_likely_order() {
        let p = Platform::by_key("linux-x64").unwrap();
        assert_eq!(
            candidates("b6784", p, "cpu").unwrap(),
            [
                "llama-b6784-bin-ubuntu-x64.zip",
                "llama-b6784-bin-ubuntu-x64.tar.gz"
            ]
        );
        assert_eq!(
            candidates("b11194", p, "cpu").unwrap(),
            [
                "llama-b11194-bin-ubuntu-x64.tar.gz",
                "llama-b11194-bin-ubuntu-x64.zip"
            ]
        );
        let w = Platform::by_key("windows-arm64").unwrap();
        assert_eq!(
            candidates("b10199", w, "cpu").unwrap(),
            [
                "llama-b10199-bin-win-cpu-arm64.zip",
                "llama-b10199-bin-win-arm64.zip"
            ]
        );
    }

    #[test]
    fn gpu_variants() {
        assert_eq!(
            first("x86_64-pc-windows-msvc", "b10199", "vulkan"),
            "llama-b10199-bin-win-vulkan-x64.zip"
        );
        assert_eq!(
            first("x86_64-pc-windows-msvc", "b10199", "cuda-12.4"),
            "llama-b10199-bin-win-cuda-12.4-x64.zip"
        );
        assert_eq!(
            first("x86_64-unknown-linux-gnu", "b11194", "cuda-13.4"),
            "llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz"
        );
        assert_eq!(
            first("x86_64-unknown-linux-gnu", "b11194", "vulkan"),
            "llama-b11194-bin-ubuntu-vulkan-x64.tar.gz"
        );
        assert_eq!(
            first("x86_64-unknown-linux-gnu", "b10199", "rocm-7.2"),
            "llama-b10199-bin-ubuntu-rocm-7.2-x64.tar.gz"
        );
    }

    #[test]
    fn unsupported_target_lists_targets_and_lib_dir() {
        let err =
            Platform::for_target(&Target::from_triple("riscv64gc-unknown-linux-gnu")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("riscv64gc-unknown-linux-gnu"), "{msg}");
        assert!(
            msg.contains("x86_64-unknown-linux-gnu")
                && msg.contains("aarch64-apple-darwin")
                && msg.contains("x86_64-pc-windows-gnu"),
            "{msg}"
        );
        assert!(msg.contains("LLAMA_LIB_DIR"), "{msg}");
    }

    #[test]
    fn unsupported_variant_lists_variants() {
        let p = Platform::by_key("macos-arm64").unwrap();
        let msg = candidates("b10199", p, "cuda-12.4")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("variant `cuda-12.4`") && msg.contains("variants for macos-arm64: cpu"),
            "{msg}"
        );
        assert!(msg.contains("LLAMA_LIB_DIR"), "{msg}");
        let l = Platform::by_key("linux-x64").unwrap();
        assert!(candidates("b10199", l, "cuda-").is_err());
    }

    #[test]
    fn tag_grammar() {
        for (tag, n) in [
            ("b1", 1),
            ("b10199", 10199),
            ("b10199-fixture", 10199),
            ("b10199-fixture.2", 10199),
            ("b7-in.house.9", 7),
            ("b10199-0", 10199),
        ] {
            assert_eq!(build_number(tag), Some(n), "{tag}");
        }
        for tag in [
            "",
            "b",
            "b-x",
            "10199",
            "v0.1.2",
            "B10199",
            "b10199-",
            "b10199-Fixture",
            "b10199-fix_ture",
            "b10199-fix-ture",
            "b10199--x",
            "b1x",
            "b10199 ",
            "b+1",
            "b99999999999999999999999",
        ] {
            assert_eq!(build_number(tag), None, "{tag:?}");
        }
        assert_eq!(official_build_number("b10199"), Some(10199));
        assert_eq!(official_build_number("b10199-fixture"), None);
        assert_eq!(official_build_number("nope"), None);
        assert_eq!(check_tag("b10199-fixture").unwrap(), 10199);
        assert!(matches!(
            check_tag("b9110-patched"),
            Err(Error::BrokenTag { .. })
        ));
        let p = Platform::by_key("linux-x64").unwrap();
        assert_eq!(
            candidates("b10199-fixture", p, "cpu").unwrap()[0],
            "llama-b10199-fixture-bin-ubuntu-x64.tar.gz"
        );
    }

    #[test]
    fn tags_are_checked() {
        let p = Platform::by_key("linux-x64").unwrap();
        assert!(
            candidates("v0.1.2", p, "cpu")
                .unwrap_err()
                .to_string()
                .contains("not a llama.cpp release tag")
        );
        assert!(
            candidates("b9110", p, "cpu")
                .unwrap_err()
                .to_string()
                .contains("known to be broken")
        );
        assert!(
            candidates("b9167", p, "cpu")
                .unwrap_err()
                .to_string()
                .contains("broken symlinks")
        );
    }

    /// Main CUDA asset and runtime archive for every era the table knows.
    #[test]
    fn cudart_pairs_for_windows_and_linux() {
        let pair = |triple: &str, tag: &str, variant: &str| -> Vec<(String, String)> {
            let p = Platform::for_target(&Target::from_triple(triple)).unwrap();
            candidates(tag, p, variant)
                .unwrap()
                .into_iter()
                .map(|m| {
                    let r = cudart_asset(tag, &m).expect("a CUDA asset has a runtime");
                    (m, r)
                })
                .collect()
        };
        let win = "x86_64-pc-windows-msvc";
        for tag in ["b6784", "b10199", "b11194"] {
            assert_eq!(
                pair(win, tag, "cuda-12.4"),
                [(
                    format!("llama-{tag}-bin-win-cuda-12.4-x64.zip"),
                    "cudart-llama-bin-win-cuda-12.4-x64.zip".to_string()
                )]
            );
        }
        assert_eq!(
            pair(win, "b10199", "cuda-13.3")[0].1,
            "cudart-llama-bin-win-cuda-13.3-x64.zip"
        );
        // tar.gz era first, zip era second; the runtime has the main archive's extension.
        assert_eq!(
            pair("x86_64-unknown-linux-gnu", "b11194", "cuda-13.4"),
            [
                (
                    "llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz".to_string(),
                    "cudart-llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz".to_string()
                ),
                (
                    "llama-b11194-bin-ubuntu-cuda-13.4-x64.zip".to_string(),
                    "cudart-llama-b11194-bin-ubuntu-cuda-13.4-x64.zip".to_string()
                ),
            ]
        );
        assert_eq!(
            pair("aarch64-unknown-linux-gnu", "b6784", "cuda-12.8"),
            [
                (
                    "llama-b6784-bin-ubuntu-cuda-12.8-arm64.zip".to_string(),
                    "cudart-llama-b6784-bin-ubuntu-cuda-12.8-arm64.zip".to_string()
                ),
                (
                    "llama-b6784-bin-ubuntu-cuda-12.8-arm64.tar.gz".to_string(),
                    "cudart-llama-b6784-bin-ubuntu-cuda-12.8-arm64.tar.gz".to_string()
                ),
            ]
        );
        // The pair recorded in checksums.toml.
        assert_eq!(
            cudart_asset("b11194", "llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz").as_deref(),
            Some("cudart-llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz")
        );
        // Only CUDA assets have one.
        for other in [
            "llama-b11194-bin-ubuntu-x64.tar.gz",
            "llama-b11194-bin-ubuntu-vulkan-x64.tar.gz",
            "llama-b11194-bin-win-cpu-x64.zip",
            "llama-b11194-bin-ubuntu-rocm-7.2-x64.tar.gz",
            "llama-b1-bin-win-cuda-12.4-x64.zip",
        ] {
            assert_eq!(cudart_asset("b11194", other), None, "{other}");
        }
        assert!(is_runtime_asset("cudart-llama-bin-win-cuda-12.4-x64.zip"));
        assert!(!is_runtime_asset("llama-b1-bin-win-cuda-12.4-x64.zip"));
    }

    #[test]
    fn stems() {
        assert_eq!(
            asset_stem("llama-b1-bin-ubuntu-x64.tar.gz"),
            "llama-b1-bin-ubuntu-x64"
        );
        assert_eq!(
            asset_stem("llama-b1-bin-win-cpu-x64.zip"),
            "llama-b1-bin-win-cpu-x64"
        );
    }
}
