//! What the build host offers the GPU backends, for `LLAMA_PREBUILT_VARIANT=auto`
//! ([`crate::variant_auto`]) and `llama-prebuilt doctor`.
//!
//! The probe only looks for what the *prebuilt* backends need at run time — a driver, never an
//! SDK:
//!
//! - **NVIDIA** (CUDA variants): `/proc/driver/nvidia/version` on Linux (its `NVRM` line carries
//!   the driver version; under WSL 2, where it does not exist, `/usr/lib/wsl/lib/libcuda.so.1`
//!   proves a driver of unknown version), `nvcuda.dll` in the system directory on Windows (the driver version is
//!   the last five digits of the DLL's file version, `31.0.15.5222` → `552.22`).
//! - **Vulkan**: the loader (`libvulkan.so.1` in the library path, `vulkan-1.dll` in the system
//!   directory) and at least one hardware ICD manifest: the files `VK_DRIVER_FILES` (or the older
//!   `VK_ICD_FILENAMES`) name, else the loader's standard `vulkan/icd.d` directories on Linux
//!   (XDG config and data directories, `/etc`, `/usr/share`, ...) or the drivers registered in
//!   the registry on Windows (`reg query`). Software rasterisers (Mesa's lavapipe, SwiftShader)
//!   are listed but do not count: the CPU backend beats them. On Linux a GPU device node must
//!   also exist (`/dev/dri/renderD*`, `/dev/nvidia<N>`, WSL's `/dev/dxg`): Mesa installs its
//!   hardware ICD manifests on machines without a GPU (a CI runner with lavapipe), and those
//!   drivers find nothing to drive.
//!
//! Every path is read through a [`ProbeEnv`], so tests run the real probe logic on a fake
//! filesystem root and fake environment; nothing here depends on the machine's GPU.

use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variables that change what the probe finds for Vulkan (a build script that
/// resolves `auto` declares them with `rerun-if-env-changed`).
pub const VULKAN_VARS: &[&str] = &["VK_DRIVER_FILES", "VK_ICD_FILENAMES"];

/// A driver version as NVIDIA writes it (`550.54.14` on Linux, `552.22` on Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DriverVersion {
    /// Branch (`550`).
    pub major: u32,
    /// Minor (`54`).
    pub minor: u32,
    /// Patch (`14`); Windows versions have none (0).
    pub patch: u32,
}

impl DriverVersion {
    /// Parses `550.54.14`, `552.22`; `None` for anything else.
    pub fn parse(s: &str) -> Option<DriverVersion> {
        let mut parts = s.trim().split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            Some(p) => num(Some(p))?,
            None => 0,
        };
        parts.next().is_none().then_some(DriverVersion {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for DriverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "{}.{:02}", self.major, self.minor)
        } else {
            write!(f, "{}.{:02}.{:02}", self.major, self.minor, self.patch)
        }
    }
}

/// An NVIDIA driver found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaDriver {
    /// The file that proved it (`/proc/driver/nvidia/version`, `...\System32\nvcuda.dll`).
    pub evidence: PathBuf,
    /// Its version, when it could be read.
    pub version: Option<DriverVersion>,
}

/// What the probe found. Build one by hand (tests), or with [`HostProbe::detect`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostProbe {
    /// The host OS as `target_os` spells it (`linux`, `windows`, `macos`, ...).
    pub os: String,
    /// The NVIDIA driver, if one is installed.
    pub nvidia: Option<NvidiaDriver>,
    /// The Vulkan loader library, if found.
    pub vulkan_loader: Option<PathBuf>,
    /// Hardware ICD manifests found.
    pub vulkan_icds: Vec<PathBuf>,
    /// Software ICD manifests found (lavapipe, SwiftShader); they do not count as a GPU.
    pub software_icds: Vec<PathBuf>,
    /// Where the ICDs were looked for (`VK_DRIVER_FILES`, `standard directories`, ...).
    pub icd_source: String,
    /// Linux only: the GPU device nodes present (`/dev/dri/renderD*`, `/dev/nvidia<N>`,
    /// WSL's `/dev/dxg`). `None` where this is not checked (other systems, hand-built probes).
    /// Installing Mesa puts hardware ICD manifests (Intel, Radeon, ...) on machines without
    /// any GPU; without a device node those drivers find nothing, so they do not count.
    pub gpu_device_nodes: Option<Vec<PathBuf>>,
}

impl HostProbe {
    /// Probes this machine.
    pub fn detect() -> HostProbe {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        HostProbe::detect_in(&ProbeEnv {
            os: std::env::consts::OS,
            root: PathBuf::from("/"),
            var: &var,
            registry: &reg_query,
        })
    }

    /// Probes through `env` (a fake root and environment in tests).
    pub fn detect_in(env: &ProbeEnv<'_>) -> HostProbe {
        let mut p = HostProbe {
            os: env.os.to_string(),
            ..HostProbe::default()
        };
        match env.os {
            "linux" => {
                let version_file = env.rooted("/proc/driver/nvidia/version");
                let wsl = env.rooted("/usr/lib/wsl/lib/libcuda.so.1");
                if let Ok(text) = std::fs::read_to_string(&version_file) {
                    p.nvidia = Some(NvidiaDriver {
                        version: parse_proc_version(&text),
                        evidence: version_file,
                    });
                } else if wsl.exists() {
                    p.nvidia = Some(NvidiaDriver {
                        version: None,
                        evidence: wsl,
                    });
                }
                p.vulkan_loader = linux_lib_dirs(env)
                    .into_iter()
                    .map(|d| d.join("libvulkan.so.1"))
                    .find(|f| f.exists());
                p.gpu_device_nodes = Some(gpu_device_nodes(env));
            }
            "windows" => {
                let system = env.system_dir();
                let nvcuda = system.join("nvcuda.dll");
                if nvcuda.is_file() {
                    p.nvidia = Some(NvidiaDriver {
                        version: std::fs::read(&nvcuda)
                            .ok()
                            .and_then(|b| dll_file_version(&b))
                            .and_then(windows_driver_version),
                        evidence: nvcuda,
                    });
                }
                let loader = system.join("vulkan-1.dll");
                p.vulkan_loader = loader.is_file().then_some(loader);
            }
            _ => return p,
        }
        let (source, icds) = icd_manifests(env);
        p.icd_source = source;
        for icd in icds {
            if is_software_icd(&icd) {
                p.software_icds.push(icd);
            } else {
                p.vulkan_icds.push(icd);
            }
        }
        p
    }

    /// A Vulkan loader, at least one hardware ICD and (where checked) a GPU device node.
    pub fn has_vulkan(&self) -> bool {
        self.vulkan_loader.is_some()
            && !self.vulkan_icds.is_empty()
            && self.gpu_device_nodes.as_ref().is_none_or(|n| !n.is_empty())
    }

    /// One line each for the NVIDIA driver and Vulkan, as doctor and the build warning show them.
    pub fn describe(&self) -> Vec<String> {
        let nvidia = match &self.nvidia {
            Some(d) => format!(
                "NVIDIA driver {} ({})",
                d.version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "of unknown version".into()),
                d.evidence.display()
            ),
            None => format!("no NVIDIA driver ({})", nvidia_place(&self.os)),
        };
        let loader = match &self.vulkan_loader {
            Some(l) => format!("Vulkan loader {}", l.display()),
            None => format!("no Vulkan loader ({})", loader_name(&self.os)),
        };
        let mut icds = if self.vulkan_icds.is_empty() && self.icd_source.is_empty() {
            "no hardware Vulkan ICD".to_string()
        } else if self.vulkan_icds.is_empty() {
            format!("no hardware Vulkan ICD ({})", self.icd_source)
        } else {
            format!(
                "Vulkan ICDs {} ({})",
                join_paths(&self.vulkan_icds),
                self.icd_source
            )
        };
        if !self.software_icds.is_empty() {
            icds.push_str(&format!(
                "; software ICDs ignored: {}",
                join_paths(&self.software_icds)
            ));
        }
        if self.gpu_device_nodes.as_ref().is_some_and(Vec::is_empty) && !self.vulkan_icds.is_empty()
        {
            icds.push_str(&format!(
                "; no GPU device node ({GPU_NODES}), so the hardware ICDs have nothing to drive"
            ));
        }
        vec![nvidia, format!("{loader}; {icds}")]
    }
}

/// Where [`HostProbe::gpu_device_nodes`] looks, for messages.
const GPU_NODES: &str = "/dev/dri/renderD*, /dev/nvidia<N>, /dev/dxg";

/// The GPU device nodes under the probe's root `/dev`: DRM render nodes (every Mesa and AMD/Intel
/// driver opens one), NVIDIA's numbered device files, and WSL's paravirtual GPU.
fn gpu_device_nodes(env: &ProbeEnv<'_>) -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = Vec::new();
    let mut add_matching = |dir: &str, keep: &dyn Fn(&str) -> bool| {
        if let Ok(entries) = std::fs::read_dir(env.rooted(dir)) {
            for entry in entries.flatten() {
                if keep(&entry.file_name().to_string_lossy()) {
                    nodes.push(entry.path());
                }
            }
        }
    };
    add_matching("/dev/dri", &|n| n.starts_with("renderD"));
    add_matching("/dev", &|n| {
        n == "dxg"
            || n.strip_prefix("nvidia")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    });
    nodes.sort();
    nodes
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn nvidia_place(os: &str) -> &'static str {
    match os {
        "windows" => "no nvcuda.dll in the system directory",
        _ => "no /proc/driver/nvidia/version",
    }
}

fn loader_name(os: &str) -> &'static str {
    match os {
        "windows" => "vulkan-1.dll",
        _ => "libvulkan.so.1",
    }
}

/// Where the probe reads from: the OS, a filesystem root for the fixed system paths, the
/// environment, and the Windows registry (`reg query` output for a key).
pub struct ProbeEnv<'a> {
    /// `linux`, `windows`, ...
    pub os: &'a str,
    /// Prefix of fixed system paths (`/` for the real machine).
    pub root: PathBuf,
    /// Environment lookup; empty values should be `None`.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// `reg query <key> /s` output, `None` when it cannot be run.
    pub registry: &'a dyn Fn(&str) -> Option<String>,
}

impl ProbeEnv<'_> {
    fn rooted(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    fn system_dir(&self) -> PathBuf {
        let root = (self.var)("SystemRoot")
            .or_else(|| (self.var)("windir"))
            .unwrap_or_else(|| r"C:\Windows".into());
        Path::new(&root).join("System32")
    }
}

/// The version on the `NVRM version:` line of `/proc/driver/nvidia/version`, e.g.
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024`
/// or the open kernel module's `NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build ...`.
pub fn parse_proc_version(text: &str) -> Option<DriverVersion> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    line.split_whitespace().find_map(DriverVersion::parse)
}

/// The file version (`[31, 0, 15, 5222]`) of a PE file's `VS_FIXEDFILEINFO`, found by its
/// signature `0xFEEF04BD`.
pub fn dll_file_version(bytes: &[u8]) -> Option<[u16; 4]> {
    const SIG: [u8; 4] = 0xFEEF_04BDu32.to_le_bytes();
    let at = bytes.windows(4).position(|w| w == SIG)?;
    let word = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(at + o..at + o + 4)?.try_into().ok()?,
        ))
    };
    let (ms, ls) = (word(8)?, word(12)?);
    Some([
        (ms >> 16) as u16,
        (ms & 0xFFFF) as u16,
        (ls >> 16) as u16,
        (ls & 0xFFFF) as u16,
    ])
}

/// NVIDIA's Windows driver version from the DLL file version: the last five digits of the last
/// two parts (`31.0.15.5222` → `155222` → `55222` → `552.22`).
pub fn windows_driver_version(file: [u16; 4]) -> Option<DriverVersion> {
    let digits = format!("{}{:04}", file[2], file[3]);
    let last5 = digits.get(digits.len().checked_sub(5)?..)?;
    Some(DriverVersion {
        major: last5[..3].parse().ok()?,
        minor: last5[3..].parse().ok()?,
        patch: 0,
    })
}

/// Directories searched for `libvulkan.so.1`: `LD_LIBRARY_PATH`, then the usual system ones.
fn linux_lib_dirs(env: &ProbeEnv<'_>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = (env.var)("LD_LIBRARY_PATH")
        .map(|v| {
            v.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
        "/lib",
        "/usr/local/lib",
    ] {
        dirs.push(env.rooted(d));
    }
    dirs
}

/// The ICD manifests and where they came from. `VK_DRIVER_FILES` (files or directories) wins
/// over `VK_ICD_FILENAMES` (files), which wins over the standard places, as in the loader.
fn icd_manifests(env: &ProbeEnv<'_>) -> (String, Vec<PathBuf>) {
    let sep = if env.os == "windows" { ';' } else { ':' };
    for name in VULKAN_VARS {
        if let Some(v) = (env.var)(name) {
            let mut found = Vec::new();
            for item in v.split(sep).filter(|s| !s.is_empty()) {
                let p = PathBuf::from(item);
                if p.is_dir() {
                    found.extend(json_files(&p));
                } else if p.is_file() {
                    found.push(p);
                }
            }
            return (name.to_string(), found);
        }
    }
    if env.os == "windows" {
        let mut found = Vec::new();
        for key in [
            r"HKLM\SOFTWARE\Khronos\Vulkan\Drivers",
            r"HKLM\SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}",
        ] {
            if let Some(out) = (env.registry)(key) {
                for p in parse_reg_icds(&out) {
                    if !found.contains(&p) {
                        found.push(p);
                    }
                }
            }
        }
        return ("registry".into(), found);
    }
    let mut dirs = Vec::new();
    let home = (env.var)("HOME").map(PathBuf::from);
    let xdg = |var: &str, home_default: &str| -> Option<PathBuf> {
        (env.var)(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(home_default)))
    };
    if let Some(d) = xdg("XDG_CONFIG_HOME", ".config") {
        dirs.push(d);
    }
    match (env.var)("XDG_CONFIG_DIRS") {
        Some(v) => dirs.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from)),
        None => dirs.push(env.rooted("/etc/xdg")),
    }
    dirs.push(env.rooted("/usr/local/etc"));
    dirs.push(env.rooted("/etc"));
    if let Some(d) = xdg("XDG_DATA_HOME", ".local/share") {
        dirs.push(d);
    }
    match (env.var)("XDG_DATA_DIRS") {
        Some(v) => dirs.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from)),
        None => {
            dirs.push(env.rooted("/usr/local/share"));
            dirs.push(env.rooted("/usr/share"));
        }
    }
    let found = dirs
        .iter()
        .flat_map(|d| json_files(&d.join("vulkan").join("icd.d")))
        .collect();
    ("standard directories".into(), found)
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    v.sort();
    v
}

/// Lavapipe (`lvp_icd.*.json`, `libvulkan_lvp.so`) and SwiftShader run Vulkan on the CPU.
fn is_software_icd(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path)
        .unwrap_or_default()
        .to_ascii_lowercase();
    name.starts_with("lvp_icd")
        || name.contains("swiftshader")
        || text.contains("vulkan_lvp")
        || text.contains("swiftshader")
}

/// ICD manifest paths in `reg query ... /s` output: values of the `Khronos\Vulkan\Drivers` key
/// (the value *name* is the path; data 0 means enabled) and `VulkanDriverName` values of the
/// display adapters' keys (the data is the path).
pub fn parse_reg_icds(out: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if let Some((name, data)) = line.split_once("REG_DWORD") {
            let name = name.trim();
            if name.to_ascii_lowercase().ends_with(".json")
                && u32::from_str_radix(data.trim().trim_start_matches("0x"), 16) == Ok(0)
            {
                found.push(PathBuf::from(name));
            }
        } else if line.starts_with("VulkanDriverName") {
            let data = line
                .split_once("REG_MULTI_SZ")
                .or_else(|| line.split_once("REG_SZ"))
                .map(|(_, d)| d.trim())
                .unwrap_or("");
            found.extend(
                data.split("\\0")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
            );
        }
    }
    found
}

/// `reg query <key> /s` on Windows; `None` elsewhere or when it fails.
fn reg_query(key: &str) -> Option<String> {
    if !cfg!(windows) {
        return None;
    }
    let out = std::process::Command::new("reg")
        .args(["query", key, "/s"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake {
        dir: tempfile::TempDir,
        vars: HashMap<String, String>,
        reg: HashMap<String, String>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                dir: tempfile::tempdir().unwrap(),
                vars: HashMap::new(),
                reg: HashMap::new(),
            }
        }
        fn root(&self) -> &Path {
            self.dir.path()
        }
        fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
            let p = self.root().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
            p
        }
        fn probe(&self, os: &str) -> HostProbe {
            let var = |n: &str| self.vars.get(n).cloned();
            let reg = |k: &str| self.reg.get(k).cloned();
            HostProbe::detect_in(&ProbeEnv {
                os,
                root: self.root().to_path_buf(),
                var: &var,
                registry: &reg,
            })
        }
    }

    const PROC: &str = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n";

    #[test]
    fn proc_version_lines() {
        assert_eq!(
            parse_proc_version(PROC),
            Some(DriverVersion {
                major: 550,
                minor: 54,
                patch: 14
            })
        );
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Jan 16 2025\n";
        assert_eq!(
            parse_proc_version(open).map(|v| v.to_string()).as_deref(),
            Some("570.86.15")
        );
        assert_eq!(parse_proc_version("garbage\n"), None);
        assert_eq!(parse_proc_version("NVRM version: weird\n"), None);
    }

    #[test]
    fn driver_versions_parse_and_print() {
        assert_eq!(
            DriverVersion::parse("552.22").unwrap().to_string(),
            "552.22"
        );
        assert_eq!(
            DriverVersion::parse("525.60.13").unwrap().to_string(),
            "525.60.13"
        );
        for bad in ["", "552", "a.b", "1.2.3.4", "1..2"] {
            assert_eq!(DriverVersion::parse(bad), None, "{bad}");
        }
        assert!(DriverVersion::parse("580.65.06") > DriverVersion::parse("580.00"));
    }

    #[test]
    fn windows_file_version_gives_the_driver_version() {
        let mut dll = b"MZ....VS_VERSION_INFO....".to_vec();
        dll.extend_from_slice(&0xFEEF_04BDu32.to_le_bytes());
        dll.extend_from_slice(&0x0001_0000u32.to_le_bytes());
        dll.extend_from_slice(&(31u32 << 16).to_le_bytes());
        dll.extend_from_slice(&((15u32 << 16) | 5222).to_le_bytes());
        assert_eq!(dll_file_version(&dll), Some([31, 0, 15, 5222]));
        let v = windows_driver_version([31, 0, 15, 5222]).unwrap();
        assert_eq!(v.to_string(), "552.22");
        assert_eq!(
            windows_driver_version([32, 0, 15, 8088])
                .unwrap()
                .to_string(),
            "580.88"
        );
        assert_eq!(dll_file_version(b"MZ no version"), None);
    }

    #[test]
    fn linux_probe_on_a_fake_root() {
        let mut fake = Fake::new();
        fake.vars.insert("HOME".into(), "/nonexistent-home".into());
        let p = fake.probe("linux");
        assert_eq!(p.nvidia, None);
        assert!(!p.has_vulkan());
        assert_eq!(p.icd_source, "standard directories");
        let lines = p.describe();
        assert!(lines[0].contains("no NVIDIA driver"), "{lines:?}");
        assert!(
            lines[1].contains("no Vulkan loader (libvulkan.so.1)"),
            "{lines:?}"
        );

        fake.write("proc/driver/nvidia/version", PROC.as_bytes());
        let loader = fake.write("usr/lib/x86_64-linux-gnu/libvulkan.so.1", b"elf");
        let lvp = fake.write(
            "usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
            br#"{"ICD":{"library_path":"libvulkan_lvp.so"}}"#,
        );
        let p = fake.probe("linux");
        assert_eq!(
            p.nvidia
                .as_ref()
                .and_then(|n| n.version)
                .map(|v| v.to_string()),
            Some("550.54.14".into())
        );
        assert_eq!(p.vulkan_loader.as_deref(), Some(loader.as_path()));
        assert_eq!(p.software_icds, [lvp]);
        assert!(!p.has_vulkan(), "lavapipe alone is not a GPU");
        assert!(p.describe()[1].contains("software ICDs ignored"));

        let nv = fake.write(
            "etc/vulkan/icd.d/nvidia_icd.json",
            br#"{"ICD":{"library_path":"libGLX_nvidia.so.0"}}"#,
        );
        let p = fake.probe("linux");
        assert_eq!(p.vulkan_icds, [nv]);
        assert!(
            !p.has_vulkan(),
            "an ICD manifest without a GPU device node is not a GPU"
        );
        assert!(
            p.describe()[1].contains("no GPU device node (/dev/dri/renderD*"),
            "{:?}",
            p.describe()
        );
        let node = fake.write("dev/nvidia0", b"");
        fake.write("dev/nvidiactl", b"");
        let p = fake.probe("linux");
        assert_eq!(p.gpu_device_nodes, Some(vec![node]));
        assert!(p.has_vulkan());
        assert!(!p.describe()[1].contains("no GPU device node"));

        // An unreadable version is still a driver.
        fake.write("proc/driver/nvidia/version", b"something else\n");
        let p = fake.probe("linux");
        assert!(p.nvidia.as_ref().is_some_and(|n| n.version.is_none()));
        assert!(p.describe()[0].contains("of unknown version"));
    }

    #[test]
    fn wsl_driver_without_proc_file() {
        let fake = Fake::new();
        let lib = fake.write("usr/lib/wsl/lib/libcuda.so.1", b"elf");
        let p = fake.probe("linux");
        assert_eq!(
            p.nvidia,
            Some(NvidiaDriver {
                evidence: lib,
                version: None
            })
        );
    }

    #[test]
    fn icd_environment_variables_win_over_the_directories() {
        let mut fake = Fake::new();
        fake.write("etc/vulkan/icd.d/nvidia_icd.json", b"{}");
        let mine = fake.write("mine/radeon_icd.x86_64.json", b"{}");
        let dir_icd = fake.write("dir/intel_icd.json", b"{}");
        fake.vars
            .insert("VK_ICD_FILENAMES".into(), mine.display().to_string());
        let p = fake.probe("linux");
        assert_eq!(
            (p.icd_source.as_str(), p.vulkan_icds.clone()),
            ("VK_ICD_FILENAMES", vec![mine.clone()])
        );
        fake.vars.insert(
            "VK_DRIVER_FILES".into(),
            format!("{}:{}", fake.root().join("dir").display(), "/missing.json"),
        );
        let p = fake.probe("linux");
        assert_eq!(
            (p.icd_source.as_str(), p.vulkan_icds),
            ("VK_DRIVER_FILES", vec![dir_icd])
        );
        // XDG directories replace the defaults.
        fake.vars.clear();
        let xdg = fake.write("xdg/vulkan/icd.d/a.json", b"{}");
        fake.vars.insert(
            "XDG_DATA_DIRS".into(),
            fake.root().join("xdg").display().to_string(),
        );
        let p = fake.probe("linux");
        assert!(p.vulkan_icds.contains(&xdg), "{:?}", p.vulkan_icds);
    }

    #[test]
    fn windows_probe_on_a_fake_system_directory() {
        let mut fake = Fake::new();
        fake.vars.insert(
            "SystemRoot".into(),
            fake.root().join("Windows").display().to_string(),
        );
        let p = fake.probe("windows");
        assert!(p.nvidia.is_none() && p.vulkan_loader.is_none());
        assert!(p.describe()[0].contains("nvcuda.dll"));

        let mut dll = b"MZ".to_vec();
        dll.extend_from_slice(&0xFEEF_04BDu32.to_le_bytes());
        dll.extend_from_slice(&[0; 4]);
        dll.extend_from_slice(&(32u32 << 16).to_le_bytes());
        dll.extend_from_slice(&((15u32 << 16) | 8088).to_le_bytes());
        fake.write("Windows/System32/nvcuda.dll", &dll);
        fake.write("Windows/System32/vulkan-1.dll", b"MZ");
        fake.reg.insert(
            r"HKLM\SOFTWARE\Khronos\Vulkan\Drivers".into(),
            "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Khronos\\Vulkan\\Drivers\r\n    C:\\Drivers\\nv-vk64.json    REG_DWORD    0x0\r\n    C:\\Drivers\\off.json    REG_DWORD    0x1\r\n".into(),
        );
        let p = fake.probe("windows");
        assert_eq!(
            p.nvidia
                .as_ref()
                .and_then(|n| n.version)
                .map(|v| v.to_string()),
            Some("580.88".into())
        );
        assert!(p.has_vulkan());
        assert_eq!(p.icd_source, "registry");
        assert_eq!(p.vulkan_icds, [PathBuf::from(r"C:\Drivers\nv-vk64.json")]);
    }

    #[test]
    fn registry_output_of_display_adapters() {
        let out = "HKEY_LOCAL_MACHINE\\SYSTEM\\...\\0000\r\n    VulkanDriverName    REG_MULTI_SZ    C:\\DriverStore\\nv-vk64.json\\0C:\\DriverStore\\nv-vk32.json\r\n    Other    REG_SZ    x\r\n";
        assert_eq!(
            parse_reg_icds(out),
            [
                PathBuf::from(r"C:\DriverStore\nv-vk64.json"),
                PathBuf::from(r"C:\DriverStore\nv-vk32.json")
            ]
        );
    }

    /// Mesa's hardware ICDs are installed with `mesa-vulkan-drivers` even on a machine without
    /// a GPU (a CI runner): they count once a DRM render node or WSL's GPU is there.
    #[test]
    fn mesa_icds_count_only_with_a_render_node() {
        let mut fake = Fake::new();
        fake.vars.insert("HOME".into(), "/nonexistent-home".into());
        fake.write("usr/lib/x86_64-linux-gnu/libvulkan.so.1", b"elf");
        fake.write("usr/share/vulkan/icd.d/radeon_icd.x86_64.json", b"{}");
        fake.write("dev/dri/card0", b"");
        assert!(!fake.probe("linux").has_vulkan());
        let render = fake.write("dev/dri/renderD128", b"");
        let p = fake.probe("linux");
        assert_eq!(p.gpu_device_nodes, Some(vec![render]));
        assert!(p.has_vulkan());
        std::fs::remove_dir_all(fake.root().join("dev")).unwrap();
        fake.write("dev/dxg", b"");
        assert!(fake.probe("linux").has_vulkan());
    }

    #[test]
    fn other_systems_are_not_probed() {
        let p = Fake::new().probe("macos");
        assert_eq!(p.os, "macos");
        assert!(p.nvidia.is_none() && !p.has_vulkan());
    }
}
