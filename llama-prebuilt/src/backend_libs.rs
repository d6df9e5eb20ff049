//! Which backend libraries of the library directory loaded, and why the others did not.
//!
//! A release archive carries each ggml backend as a loadable module (`libggml-cpu.so`,
//! `libggml-vulkan.so`, `ggml-cuda.dll`, …). ggml's `ggml_backend_load_all_from_path` tries
//! them all and, in release builds, keeps silent about the ones that fail: a Vulkan build on a
//! machine without a Vulkan loader simply runs on the CPU. This module lists the modules found
//! in the directory after that step and classifies each one. For one that did not register, the
//! reason is found by asking the dynamic loader again (`dlopen` reports a missing dependency
//! such as `libvulkan.so.1` by name); a module that loads but registered nothing failed in its
//! own initialisation (for Vulkan: no driver could create an instance).

use std::fmt;
use std::path::{Path, PathBuf};

/// A backend module found in the library directory, and whether it is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendLibrary {
    /// The backend's name as in the file name, lowercase: `cpu`, `vulkan`, `rpc`, `cuda`, …
    pub name: String,
    /// The variant for backends built in several (`haswell` in `libggml-cpu-haswell.so`).
    pub variant: Option<String>,
    /// The module's path.
    pub path: PathBuf,
    /// Whether it registered, and if not, why.
    pub status: BackendStatus,
}

/// Whether a [`BackendLibrary`] is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendStatus {
    /// Registered with ggml as the backend `registered_as` (`CPU`, `Vulkan`, …) with
    /// `devices` devices.
    Loaded {
        /// The backend's registered name.
        registered_as: String,
        /// How many devices it registered (0 for RPC until a server is added).
        devices: usize,
    },
    /// Not in use; see [`BackendLoadError`].
    NotLoaded(BackendLoadError),
}

/// Why a backend module of the library directory is not in use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendLoadError {
    /// The dynamic loader refused the module, usually because a library it needs is not
    /// installed: the GPU runtime (`libvulkan.so.1` for Vulkan, the CUDA driver's `libcuda.so.1`
    /// for CUDA). `message` is the loader's own text (`dlerror`).
    Library {
        /// The dynamic loader's message.
        message: String,
    },
    /// The module loads, but its backend did not register: its initialisation failed. For
    /// Vulkan this means the loader is installed but no driver (ICD) could create an instance,
    /// e.g. no GPU driver, or `VK_ICD_FILENAMES` points at nothing.
    InitFailed,
    /// Another variant of the same backend was chosen (the CPU variants of a
    /// `GGML_CPU_ALL_VARIANTS` build: ggml loads the best one the CPU supports).
    NotSelected,
    /// The reason could not be determined on this platform.
    Unknown,
}

impl fmt::Display for BackendLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendLoadError::Library { message } => {
                write!(f, "the dynamic loader could not load it: {message}")
            }
            BackendLoadError::InitFailed => f.write_str(
                "it loaded, but its initialisation found nothing to run on (for Vulkan: no driver could create an instance)",
            ),
            BackendLoadError::NotSelected => {
                f.write_str("another variant of the same backend was chosen")
            }
            BackendLoadError::Unknown => f.write_str("the reason is unknown on this platform"),
        }
    }
}

impl BackendLibrary {
    /// Whether the module registered its backend.
    pub fn is_loaded(&self) -> bool {
        matches!(self.status, BackendStatus::Loaded { .. })
    }
}

/// A registered backend: its name, device count and (where the platform can tell) the file
/// its registration lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) devices: usize,
    pub(crate) module: Option<PathBuf>,
}

impl Registered {
    /// Whether this registration came from the module `path` named `name` (without a known
    /// module file: by name, for a module that is the only variant).
    fn is_from(&self, path: &Path, name: &str, variant: Option<&str>) -> bool {
        match &self.module {
            Some(module) => same_file(module, path),
            None => variant.is_none() && self.name.eq_ignore_ascii_case(name),
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The file name's backend name and variant: `libggml-cpu-haswell.so` is `("cpu",
/// Some("haswell"))`, `ggml-vulkan.dll` is `("vulkan", None)`. `None` for files that are not
/// backend modules (`libggml-base.so`, `libggml.so`, versioned names, other files).
pub(crate) fn parse_module_name(file_name: &str) -> Option<(String, Option<String>)> {
    let stem = if cfg!(windows) {
        file_name.strip_prefix("ggml-")?.strip_suffix(".dll")?
    } else {
        // ggml names its modules `.so` on macOS too.
        file_name.strip_prefix("libggml-")?.strip_suffix(".so")?
    };
    if stem.is_empty() || stem == "base" || stem.contains('.') {
        return None;
    }
    let stem = stem.to_ascii_lowercase();
    Some(match stem.split_once('-') {
        Some((name, variant)) => (name.to_string(), Some(variant.to_string())),
        None => (stem, None),
    })
}

/// Classifies the modules of `dir` given what registered. `probe` tells why one did not:
/// `Err(message)` if the dynamic loader refuses it, `Ok(())` if it loads.
pub(crate) fn classify(
    dir: &Path,
    registered: &[Registered],
    probe: impl Fn(&Path) -> Option<Result<(), String>>,
) -> Vec<BackendLibrary> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for file in names {
        let Some((name, variant)) = parse_module_name(&file) else {
            continue;
        };
        let path = dir.join(&file);
        let reg = registered
            .iter()
            .find(|r| r.is_from(&path, &name, variant.as_deref()));
        let same_backend_loaded = registered
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(&name));
        let status = match reg {
            Some(r) => BackendStatus::Loaded {
                registered_as: r.name.clone(),
                devices: r.devices,
            },
            None if variant.is_some() && same_backend_loaded => {
                BackendStatus::NotLoaded(BackendLoadError::NotSelected)
            }
            None => BackendStatus::NotLoaded(match probe(&path) {
                Some(Err(message)) => BackendLoadError::Library { message },
                Some(Ok(())) => BackendLoadError::InitFailed,
                None => BackendLoadError::Unknown,
            }),
        };
        out.push(BackendLibrary {
            name,
            variant,
            path,
            status,
        });
    }
    out
}

/// Asks the dynamic loader whether `path` loads, and unloads it again. Only called for a
/// module ggml already tried and dropped, so its initialisers have run once before.
#[cfg(unix)]
pub(crate) fn probe_dlopen(path: &Path) -> Option<Result<(), String>> {
    use std::ffi::CStr;
    let c_path = crate::ffi::path_c_string(path).ok()?;
    // SAFETY: a NUL-terminated path. RTLD_LOCAL keeps the module's symbols out of the global
    // namespace; it is closed again right away.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns the thread's last loader error, a NUL-terminated string
        // valid until the next loader call on this thread.
        let err = unsafe { libc::dlerror() };
        let message = if err.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: as above.
            unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned()
        };
        return Some(Err(message));
    }
    // SAFETY: the handle we just opened.
    unsafe { libc::dlclose(handle) };
    Some(Ok(()))
}

/// The file a registered backend's `ggml_backend_reg` lives in (it is a static of the module).
#[cfg(unix)]
pub(crate) fn module_of(reg: *const std::ffi::c_void) -> Option<PathBuf> {
    use std::ffi::{CStr, OsStr};
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: Dl_info is plain data; dladdr only reads the address and fills our struct.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::dladdr(reg, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the loader.
    let bytes = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    Some(PathBuf::from(OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
pub(crate) fn module_of(_reg: *const std::ffi::c_void) -> Option<PathBuf> {
    None
}

#[cfg(not(unix))]
pub(crate) fn probe_dlopen(_path: &Path) -> Option<Result<(), String>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn module_names() {
        assert_eq!(
            parse_module_name("libggml-cpu.so"),
            Some(("cpu".into(), None))
        );
        assert_eq!(
            parse_module_name("libggml-cpu-haswell.so"),
            Some(("cpu".into(), Some("haswell".into())))
        );
        assert_eq!(
            parse_module_name("libggml-vulkan.so"),
            Some(("vulkan".into(), None))
        );
        assert_eq!(parse_module_name("libggml-base.so"), None);
        assert_eq!(parse_module_name("libggml.so"), None);
        assert_eq!(parse_module_name("libggml-base.so.0"), None);
        assert_eq!(parse_module_name("libllama.so"), None);
    }

    #[cfg(unix)]
    #[test]
    fn modules_are_classified_by_what_registered_and_what_the_loader_says() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "libggml-cpu.so",
            "libggml-cpu-haswell.so",
            "libggml-vulkan.so",
            "libggml-cuda.so",
            "libggml-base.so",
            "libllama.so",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let registered = [Registered {
            name: "CPU".into(),
            devices: 1,
            module: Some(dir.path().join("libggml-cpu.so")),
        }];
        let libs = classify(dir.path(), &registered, |p| {
            Some(if p.ends_with("libggml-vulkan.so") {
                Err(
                    "libvulkan.so.1: cannot open shared object file: No such file or directory"
                        .into(),
                )
            } else {
                Ok(())
            })
        });
        let names: Vec<&str> = libs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu", "cuda", "vulkan"]);
        assert_eq!(libs[0].variant.as_deref(), Some("haswell"));
        assert_eq!(
            libs[0].status,
            BackendStatus::NotLoaded(BackendLoadError::NotSelected)
        );
        assert_eq!(
            libs[1].status,
            BackendStatus::Loaded {
                registered_as: "CPU".into(),
                devices: 1
            }
        );
        assert_eq!(
            libs[2].status,
            BackendStatus::NotLoaded(BackendLoadError::InitFailed)
        );
        let BackendStatus::NotLoaded(err) = &libs[3].status else {
            panic!("{:?}", libs[3]);
        };
        assert_eq!(
            err.to_string(),
            "the dynamic loader could not load it: libvulkan.so.1: cannot open shared object file: No such file or directory"
        );
    }
}
