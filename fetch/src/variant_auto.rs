//! `LLAMA_PREBUILT_VARIANT=auto`: the best variant the build host can run.
//!
//! The rule, in order:
//!
//! 1. **macOS** targets always use the default archive (`cpu`): Metal is built into it.
//! 2. **Cross-compiling** (target ≠ host): `cpu`. The host's GPU says nothing about the machine
//!    the program will run on; name a variant in `LLAMA_PREBUILT_VARIANT` to get a GPU build.
//! 3. **CUDA** when an NVIDIA driver is present ([`HostProbe::nvidia`]) and the release has
//!    CUDA assets for the target. Which one:
//!    - driver version known: the newest CUDA version the driver supports. A driver supports a
//!      CUDA version when it is at least the minimum driver of that CUDA *major* release
//!      (NVIDIA's minor-version compatibility: CUDA 12.x needs ≥ 525.60.13 on Linux, ≥ 528.33
//!      on Windows; 13.x needs ≥ 580); an unknown major is not assumed to be supported.
//!    - driver version unreadable: the newest CUDA asset (the runtime comes with it; a driver
//!      too old for it makes ggml skip the CUDA backend and fall back to the CPU, see below).
//! 4. **Vulkan** when a Vulkan loader and a hardware ICD are present and the release has a
//!    Vulkan asset for the target.
//! 5. **CPU** otherwise.
//!
//! Choosing a GPU variant never loses the CPU: the release archives are built with ggml's
//! backend plugins (`GGML_BACKEND_DL`), so a GPU backend that cannot load is skipped and the CPU
//! backends in the same archive run.
//!
//! Which assets the release has comes from a [`Listing`] (the release API, else the checksums
//! files and the cache), asked for only when the probe found a GPU.

use crate::asset::{self, Platform};
use crate::error::Result;
use crate::host_probe::{DriverVersion, HostProbe};
use crate::target::Target;

/// The asset names a release is known to have, and where that knowledge came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Asset file names.
    pub names: Vec<String>,
    /// `the release API`, `checksums files and cache`, ...
    pub source: String,
}

/// The variant `auto` resolved to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoChoice {
    /// `cpu`, `vulkan`, `cuda-12.4`, ...
    pub variant: String,
    /// The facts behind the choice, in the order they were considered.
    pub reasons: Vec<String>,
}

impl AutoChoice {
    /// One line: `auto chose cuda-12.4: reason; reason`.
    pub fn summary(&self) -> String {
        format!(
            "LLAMA_PREBUILT_VARIANT=auto chose {}: {}",
            self.variant,
            self.reasons.join("; ")
        )
    }
}

/// A CUDA version as it appears in asset names (`12.4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CudaVersion {
    /// Major (`12`).
    pub major: u32,
    /// Minor (`4`).
    pub minor: u32,
}

impl CudaVersion {
    fn parse(s: &str) -> Option<CudaVersion> {
        let (a, b) = s.split_once('.')?;
        Some(CudaVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

impl std::fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest driver that runs every CUDA `major`.x build (minor-version compatibility), or
/// `None` for a major this table does not know.
pub fn min_driver(major: u32, windows: bool) -> Option<DriverVersion> {
    let v = |major, minor, patch| DriverVersion {
        major,
        minor,
        patch,
    };
    match (major, windows) {
        (11, false) => Some(v(450, 80, 2)),
        (11, true) => Some(v(452, 39, 0)),
        (12, false) => Some(v(525, 60, 13)),
        (12, true) => Some(v(528, 33, 0)),
        (13, _) => Some(v(580, 0, 0)),
        _ => None,
    }
}

/// The CUDA versions `listing` has main assets of for `platform` at `tag`, oldest first.
pub fn cuda_versions(tag: &str, platform: &Platform, listing: &Listing) -> Vec<CudaVersion> {
    let prefix = format!("llama-{tag}-bin-{}-cuda-", platform.asset_os);
    let suffix = format!("-{}", platform.asset_arch);
    let mut found: Vec<CudaVersion> = listing
        .names
        .iter()
        .filter_map(|n| {
            let stem = asset::asset_stem(n);
            let ver = stem.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
            CudaVersion::parse(ver)
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Resolves `auto` for `target` at `tag` by the rule in this module's documentation (macOS and
/// cross builds cpu; else the newest CUDA the driver supports; else Vulkan; else cpu). `host_triple` is the machine running the build
/// (`HOST` in a build script); `probe` and `listing` are called only when needed, so tests
/// inject fakes and a cross build neither probes nor asks the network.
pub fn select(
    tag: &str,
    target: &Target,
    host_triple: &str,
    probe: impl FnOnce() -> HostProbe,
    listing: impl FnOnce() -> Listing,
) -> Result<AutoChoice> {
    let platform = Platform::for_target(target)?;
    let cpu = |reasons: Vec<String>| AutoChoice {
        variant: "cpu".into(),
        reasons,
    };
    if target.os == "macos" {
        return Ok(cpu(vec![
            "macOS: the default archive has Metal built in".into(),
        ]));
    }
    if target.triple != host_triple {
        return Ok(cpu(vec![format!(
            "cross-compiling (host {host_triple}, target {}): auto means cpu; set {} to a GPU variant to use one",
            target.triple,
            crate::config::vars::VARIANT
        )]));
    }
    let probe = probe();
    let mut reasons = probe.describe();
    if probe.nvidia.is_none() && !probe.has_vulkan() {
        reasons.push("no GPU runtime found".into());
        return Ok(cpu(reasons));
    }
    let listing = listing();
    if let Some(driver) = &probe.nvidia {
        let versions = cuda_versions(tag, platform, &listing);
        let windows = target.os == "windows";
        if versions.is_empty() {
            reasons.push(format!(
                "release {tag} has no CUDA asset for {} (per {})",
                platform.key, listing.source
            ));
        } else {
            let shown = format!(
                "{} (per {})",
                versions
                    .iter()
                    .map(|v| format!("cuda-{v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                listing.source
            );
            let pick = match driver.version {
                Some(dv) => versions
                    .iter()
                    .rev()
                    .find(|cv| min_driver(cv.major, windows).is_some_and(|m| dv >= m))
                    .copied(),
                None => versions.last().copied(),
            };
            match (pick, driver.version) {
                (Some(cv), Some(dv)) => {
                    reasons.push(format!(
                        "release {tag} has {shown}; driver {dv} supports CUDA {}.x (needs {} or newer): newest supported is cuda-{cv}",
                        cv.major,
                        min_driver(cv.major, windows).expect("picked versions have a minimum")
                    ));
                    return Ok(AutoChoice {
                        variant: format!("cuda-{cv}"),
                        reasons,
                    });
                }
                (Some(cv), None) => {
                    reasons.push(format!(
                        "release {tag} has {shown}; the driver version is unreadable, so the newest: cuda-{cv}"
                    ));
                    return Ok(AutoChoice {
                        variant: format!("cuda-{cv}"),
                        reasons,
                    });
                }
                (None, dv) => reasons.push(format!(
                    "release {tag} has {shown}, but driver {} is too old for all of them",
                    dv.map(|v| v.to_string()).unwrap_or_default()
                )),
            }
        }
    }
    if probe.has_vulkan() {
        let candidates = asset::candidates(tag, platform, "vulkan").unwrap_or_default();
        if candidates.iter().any(|c| listing.names.contains(c)) {
            reasons.push(format!(
                "release {tag} has a Vulkan asset for {}",
                platform.key
            ));
            return Ok(AutoChoice {
                variant: "vulkan".into(),
                reasons,
            });
        }
        reasons.push(format!(
            "release {tag} has no Vulkan asset for {} (per {})",
            platform.key, listing.source
        ));
    }
    Ok(cpu(reasons))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_probe::NvidiaDriver;
    use std::path::PathBuf;

    const LINUX: &str = "x86_64-unknown-linux-gnu";
    const WINDOWS: &str = "x86_64-pc-windows-msvc";

    fn nvidia(version: Option<&str>) -> HostProbe {
        HostProbe {
            os: "linux".into(),
            nvidia: Some(NvidiaDriver {
                evidence: "/proc/driver/nvidia/version".into(),
                version: version.map(|v| DriverVersion::parse(v).unwrap()),
            }),
            ..HostProbe::default()
        }
    }

    fn vulkan() -> HostProbe {
        HostProbe {
            os: "linux".into(),
            vulkan_loader: Some("/usr/lib/libvulkan.so.1".into()),
            vulkan_icds: vec![PathBuf::from("/usr/share/vulkan/icd.d/radeon_icd.json")],
            icd_source: "standard directories".into(),
            ..HostProbe::default()
        }
    }

    fn listing(names: &[&str]) -> Listing {
        Listing {
            names: names.iter().map(|s| s.to_string()).collect(),
            source: "a test listing".into(),
        }
    }

    fn linux_b11194() -> Listing {
        listing(&[
            "llama-b11194-bin-ubuntu-x64.tar.gz",
            "llama-b11194-bin-ubuntu-vulkan-x64.tar.gz",
            "llama-b11194-bin-ubuntu-cuda-12.8-x64.tar.gz",
            "llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz",
            "llama-b11194-bin-ubuntu-cuda-13.4-arm64.tar.gz",
            "cudart-llama-b11194-bin-ubuntu-cuda-13.4-x64.tar.gz",
        ])
    }

    fn run(triple: &str, host: &str, probe: HostProbe, l: Listing) -> AutoChoice {
        select("b11194", &Target::from_triple(triple), host, || probe, || l).unwrap()
    }

    #[test]
    fn newest_cuda_the_driver_supports() {
        let c = run(LINUX, LINUX, nvidia(Some("580.65.06")), linux_b11194());
        assert_eq!(c.variant, "cuda-13.4", "{c:?}");
        let c = run(LINUX, LINUX, nvidia(Some("550.54.14")), linux_b11194());
        assert_eq!(c.variant, "cuda-12.8", "{c:?}");
        assert!(
            c.summary().contains("driver 550.54.14 supports CUDA 12.x"),
            "{}",
            c.summary()
        );
        // Too old for every asset: Vulkan if present, else CPU.
        let c = run(LINUX, LINUX, nvidia(Some("470.199.02")), linux_b11194());
        assert_eq!(c.variant, "cpu");
        assert!(c.summary().contains("too old"), "{}", c.summary());
        let mut both = nvidia(Some("470.199.02"));
        let v = vulkan();
        both.vulkan_loader = v.vulkan_loader;
        both.vulkan_icds = v.vulkan_icds;
        assert_eq!(run(LINUX, LINUX, both, linux_b11194()).variant, "vulkan");
    }

    #[test]
    fn unreadable_driver_version_takes_the_newest_cuda() {
        let c = run(LINUX, LINUX, nvidia(None), linux_b11194());
        assert_eq!(c.variant, "cuda-13.4");
        assert!(c.summary().contains("unreadable"), "{}", c.summary());
    }

    #[test]
    fn windows_thresholds_and_names() {
        let l = listing(&[
            "llama-b11194-bin-win-cpu-x64.zip",
            "llama-b11194-bin-win-cuda-12.4-x64.zip",
            "llama-b11194-bin-win-cuda-13.3-x64.zip",
            "cudart-llama-bin-win-cuda-12.4-x64.zip",
        ]);
        let mut p = nvidia(Some("528.33"));
        p.os = "windows".into();
        assert_eq!(
            run(WINDOWS, WINDOWS, p.clone(), l.clone()).variant,
            "cuda-12.4"
        );
        p.nvidia.as_mut().unwrap().version = DriverVersion::parse("527.41");
        assert_eq!(run(WINDOWS, WINDOWS, p.clone(), l.clone()).variant, "cpu");
        p.nvidia.as_mut().unwrap().version = DriverVersion::parse("581.57");
        assert_eq!(run(WINDOWS, WINDOWS, p, l).variant, "cuda-13.3");
    }

    #[test]
    fn arm64_linux_only_sees_its_own_assets() {
        let arm = "aarch64-unknown-linux-gnu";
        let c = run(arm, arm, nvidia(Some("580.65.06")), linux_b11194());
        assert_eq!(c.variant, "cuda-13.4");
        // No arm64 Vulkan asset in this listing.
        let c = run(arm, arm, vulkan(), linux_b11194());
        assert_eq!(c.variant, "cpu");
        assert!(
            c.summary().contains("no Vulkan asset for linux-arm64"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn vulkan_when_no_nvidia() {
        let c = run(LINUX, LINUX, vulkan(), linux_b11194());
        assert_eq!(c.variant, "vulkan");
        assert!(
            c.summary().contains("has a Vulkan asset"),
            "{}",
            c.summary()
        );
        // A release without CUDA assets, NVIDIA driver and Vulkan: Vulkan.
        let mut p = vulkan();
        p.nvidia = nvidia(Some("580.65.06")).nvidia;
        let c = run(
            LINUX,
            LINUX,
            p,
            listing(&["llama-b11194-bin-ubuntu-vulkan-x64.tar.gz"]),
        );
        assert_eq!(c.variant, "vulkan");
        assert!(
            c.summary().contains("no CUDA asset for linux-x64"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn nothing_found_is_cpu_without_asking_for_a_listing() {
        let c = select(
            "b11194",
            &Target::from_triple(LINUX),
            LINUX,
            || HostProbe {
                os: "linux".into(),
                icd_source: "standard directories".into(),
                ..HostProbe::default()
            },
            || panic!("no listing is needed without a GPU"),
        )
        .unwrap();
        assert_eq!(c.variant, "cpu");
        assert!(
            c.summary().contains("no GPU runtime found"),
            "{}",
            c.summary()
        );
        assert!(!c.summary().contains('\n'));
    }

    #[test]
    fn cross_and_macos_never_probe() {
        let c = select(
            "b11194",
            &Target::from_triple("aarch64-unknown-linux-gnu"),
            LINUX,
            || panic!("a cross build does not probe"),
            || panic!("nor list"),
        )
        .unwrap();
        assert_eq!(c.variant, "cpu");
        assert!(c.summary().contains("cross-compiling"), "{}", c.summary());
        let mac = "aarch64-apple-darwin";
        let c = select(
            "b11194",
            &Target::from_triple(mac),
            mac,
            || panic!("macOS does not probe"),
            || panic!("nor list"),
        )
        .unwrap();
        assert_eq!(c.variant, "cpu");
        assert!(c.summary().contains("Metal"), "{}", c.summary());
    }

    #[test]
    fn unsupported_target_is_an_error() {
        let t = "riscv64gc-unknown-linux-gnu";
        let err = select(
            "b1",
            &Target::from_triple(t),
            t,
            HostProbe::default,
            Listing::default,
        )
        .unwrap_err();
        assert!(err.to_string().contains("LLAMA_LIB_DIR"), "{err}");
    }
}
