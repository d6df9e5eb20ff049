//! Finding the library directory inside an extracted release archive.
//!
//! The three layouts of the official assets put the libraries at different depths:
//! `llama-<tag>/` (tar.gz era), `build/bin/` (zip era, Linux/macOS) and the top level
//! (Windows). [`locate`] searches breadth-first, at most [`MAX_DEPTH`] levels below the
//! root, for the first directory holding both libllama and the ggml libraries of the
//! requested OS.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How many directory levels below the root [`locate`] looks.
pub const MAX_DEPTH: usize = 4;

/// The library directory of an extracted release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryDir {
    /// The directory (`root` joined with the relative path where it was found).
    pub dir: PathBuf,
    /// The llama library: `libllama.so` (or the shortest `libllama.so.*` when the
    /// unversioned link is missing), `libllama.dylib`, or `llama.dll`.
    pub libllama: PathBuf,
    /// The ggml libraries: the core library, the base library, then the backend
    /// libraries (`libggml-cpu-haswell.so`, `ggml-vulkan.dll`, ...) in name order.
    pub ggml: Vec<PathBuf>,
}

/// The operating system whose library names to look for (the *target's*, not the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LibOs {
    /// `lib*.so`, with versioned `lib*.so.N...` symlink chains.
    Linux,
    /// `lib*.dylib`.
    MacOs,
    /// `*.dll`.
    Windows,
}

impl LibOs {
    /// From a target OS as in `CARGO_CFG_TARGET_OS` (`linux`, `macos`, `windows`);
    /// `None` for any other.
    pub fn from_target_os(os: &str) -> Option<LibOs> {
        match os {
            "linux" => Some(LibOs::Linux),
            "macos" => Some(LibOs::MacOs),
            "windows" => Some(LibOs::Windows),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            LibOs::Linux | LibOs::MacOs => "lib",
            LibOs::Windows => "",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            LibOs::Linux => ".so",
            LibOs::MacOs => ".dylib",
            LibOs::Windows => ".dll",
        }
    }

    /// The file name of library `stem` (`llama`, `ggml-base`) on this OS.
    pub fn lib_file_name(self, stem: &str) -> String {
        format!("{}{stem}{}", self.prefix(), self.ext())
    }

    /// Whether `name` is a versioned name of library `stem`: `libllama.so.0.0.1` on
    /// Linux, `libllama.0.dylib` on macOS; never on Windows.
    fn is_versioned(self, name: &str, stem: &str) -> bool {
        let Some(rest) = name
            .strip_prefix(self.prefix())
            .and_then(|r| r.strip_prefix(stem))
        else {
            return false;
        };
        match self {
            LibOs::Linux => rest.strip_prefix(".so.").is_some_and(is_version),
            LibOs::MacOs => rest
                .strip_prefix('.')
                .and_then(|r| r.strip_suffix(".dylib"))
                .is_some_and(is_version),
            LibOs::Windows => false,
        }
    }

    /// The backend name of a `ggml-<backend>` library file (`cpu-haswell`, `vulkan`),
    /// excluding `ggml-base` and versioned names.
    fn backend(self, name: &str) -> Option<&str> {
        let backend = name
            .strip_prefix(self.prefix())?
            .strip_prefix("ggml-")?
            .strip_suffix(self.ext())?;
        // `libggml-base.0.dylib`, `libggml-cpu.0.9.dylib`: versioned aliases.
        let versioned = backend
            .split_once('.')
            .is_some_and(|(_, version)| is_version(version));
        if backend.is_empty() || backend == "base" || versioned {
            None
        } else {
            Some(backend)
        }
    }
}

impl fmt::Display for LibOs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibOs::Linux => "Linux",
            LibOs::MacOs => "macOS",
            LibOs::Windows => "Windows",
        })
    }
}

/// `0`, `0.0.10200`: dot-separated runs of digits.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why no library directory was found.
#[derive(Debug)]
pub enum LocateError {
    /// No directory within [`MAX_DEPTH`] levels holds all the required libraries.
    NotFound {
        /// The directory that was searched.
        root: PathBuf,
        /// The OS whose library names were looked for.
        os: LibOs,
        /// Names of the root's entries, directories with a trailing `/`, sorted.
        top_level: Vec<String>,
        /// Directories that hold some of the libraries, with the names missing there.
        partial: Vec<(PathBuf, Vec<String>)>,
    },
    /// A directory could not be listed.
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::NotFound {
                root,
                os,
                top_level,
                partial,
            } => {
                write!(
                    f,
                    "no directory in `{}` (searched {MAX_DEPTH} levels deep) holds the {os} \
                     llama.cpp libraries: looked for {} together with {} and {}",
                    root.display(),
                    wanted(*os, "llama"),
                    wanted(*os, "ggml"),
                    wanted(*os, "ggml-base"),
                )?;
                for (dir, missing) in partial {
                    write!(
                        f,
                        "; `{}` has some of them but lacks {}",
                        dir.display(),
                        missing.join(", ")
                    )?;
                }
                if top_level.is_empty() {
                    write!(f, "; the directory is empty")
                } else {
                    write!(f, "; its top-level entries are: {}", top_level.join(", "))
                }
            }
            LocateError::Io { path, source } => {
                write!(
                    f,
                    "could not list `{}` while looking for the llama.cpp libraries: {source}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for LocateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocateError::Io { source, .. } => Some(source),
            LocateError::NotFound { .. } => None,
        }
    }
}

/// How a required library is described in messages: `` `libllama.so` (or `libllama.so.*`) ``.
fn wanted(os: LibOs, stem: &str) -> String {
    match os {
        LibOs::Linux => format!("`lib{stem}.so` (or `lib{stem}.so.*`)"),
        LibOs::MacOs => format!("`lib{stem}.dylib` (or `lib{stem}.*.dylib`)"),
        LibOs::Windows => format!("`{stem}.dll`"),
    }
}

/// Finds the directory under `root` that holds the llama and ggml libraries for `os`.
///
/// Looks at `root` itself and its subdirectories up to [`MAX_DEPTH`] levels deep,
/// shallowest first and in name order within a level; symlinked directories are not
/// followed. A library counts when a file (or a symlink that resolves to a file) of
/// its name exists. On Windows names are compared ignoring ASCII case.
///
/// # Errors
///
/// [`LocateError::NotFound`], listing what was looked for, the directories that held
/// only some of it and the root's top-level entries; [`LocateError::Io`] when a
/// directory cannot be listed.
pub fn locate(root: &Path, os: LibOs) -> Result<LibraryDir, LocateError> {
    let mut level = vec![root.to_path_buf()];
    let mut partial = Vec::new();
    for depth in 0..=MAX_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            let listing = list(dir)?;
            match check_dir(dir, &listing, os) {
                Ok(found) => return Ok(found),
                Err(Some(missing)) => partial.push((dir.clone(), missing)),
                Err(None) => {}
            }
            if depth < MAX_DEPTH {
                next.extend(
                    listing
                        .iter()
                        .filter(|e| e.is_dir)
                        .map(|e| dir.join(&e.name)),
                );
            }
        }
        level = next;
    }
    let top_level = list(root)?
        .into_iter()
        .map(|e| {
            if e.is_dir {
                format!("{}/", e.name)
            } else {
                e.name
            }
        })
        .collect();
    Err(LocateError::NotFound {
        root: root.to_path_buf(),
        os,
        top_level,
        partial,
    })
}

struct Listed {
    name: String,
    /// A real directory (not a symlink to one).
    is_dir: bool,
}

/// The directory's entries with UTF-8 names, sorted by name.
fn list(dir: &Path) -> Result<Vec<Listed>, LocateError> {
    let io_err = |source| LocateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_dir = entry.file_type().map_err(io_err)?.is_dir();
        out.push(Listed { name, is_dir });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `Ok` when `dir` holds every required library; `Err(Some(missing))` when it holds
/// some; `Err(None)` when it holds none.
fn check_dir(dir: &Path, listing: &[Listed], os: LibOs) -> Result<LibraryDir, Option<Vec<String>>> {
    // Only names that resolve to a file count (a dangling link does not).
    let files: Vec<&str> = listing
        .iter()
        .filter(|e| !e.is_dir && dir.join(&e.name).is_file())
        .map(|e| e.name.as_str())
        .collect();
    let find = |stem: &str| find_lib(&files, os, stem);
    let required = [
        ("llama", find("llama")),
        ("ggml", find("ggml")),
        ("ggml-base", find("ggml-base")),
    ];
    let missing: Vec<String> = required
        .iter()
        .filter(|(_, found)| found.is_none())
        .map(|(stem, _)| format!("`{}`", os.lib_file_name(stem)))
        .collect();
    if missing.len() == required.len() {
        return Err(None);
    }
    if !missing.is_empty() {
        return Err(Some(missing));
    }
    let [(_, Some(llama)), (_, Some(ggml)), (_, Some(ggml_base))] = required else {
        unreachable!("nothing is missing");
    };
    let mut backends: Vec<&str> = files
        .iter()
        .copied()
        .filter(|name| os.backend(&fold(os, name)).is_some())
        .collect();
    backends.sort_unstable();
    let mut ggml_libs = vec![dir.join(ggml), dir.join(ggml_base)];
    ggml_libs.extend(backends.iter().map(|b| dir.join(b)));
    Ok(LibraryDir {
        dir: dir.to_path_buf(),
        libllama: dir.join(llama),
        ggml: ggml_libs,
    })
}

fn fold(os: LibOs, name: &str) -> String {
    match os {
        LibOs::Windows => name.to_ascii_lowercase(),
        LibOs::Linux | LibOs::MacOs => name.to_owned(),
    }
}

/// The file of library `stem`: its unversioned name, else its shortest versioned name
/// (the SONAME link `libllama.so.0` before `libllama.so.0.0.10200`).
fn find_lib<'n>(files: &[&'n str], os: LibOs, stem: &str) -> Option<&'n str> {
    let plain = os.lib_file_name(stem);
    if let Some(name) = files.iter().find(|n| fold(os, n) == plain) {
        return Some(name);
    }
    files
        .iter()
        .copied()
        .filter(|n| os.is_versioned(n, stem))
        .min_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_names() {
        assert!(LibOs::Linux.is_versioned("libllama.so.0", "llama"));
        assert!(LibOs::Linux.is_versioned("libllama.so.0.0.10200", "llama"));
        assert!(!LibOs::Linux.is_versioned("libllama.so.", "llama"));
        assert!(!LibOs::Linux.is_versioned("libllama-common.so.0", "llama"));
        assert!(!LibOs::Linux.is_versioned("libggml-base.so.0", "ggml"));
        assert!(LibOs::MacOs.is_versioned("libllama.0.dylib", "llama"));
        assert!(LibOs::MacOs.is_versioned("libggml-base.0.9.4.dylib", "ggml-base"));
        assert!(!LibOs::MacOs.is_versioned("libggml-base.0.dylib", "ggml"));
        assert!(!LibOs::Windows.is_versioned("llama.dll", "llama"));
    }

    #[test]
    fn backend_names() {
        assert_eq!(
            LibOs::Linux.backend("libggml-cpu-haswell.so"),
            Some("cpu-haswell")
        );
        assert_eq!(
            LibOs::Linux.backend("libggml-cpu-armv8.0_1.so"),
            Some("cpu-armv8.0_1")
        );
        assert_eq!(LibOs::Linux.backend("libggml-base.so"), None);
        assert_eq!(LibOs::Linux.backend("libggml-base.so.0"), None);
        assert_eq!(LibOs::Linux.backend("libggml.so"), None);
        assert_eq!(LibOs::MacOs.backend("libggml-metal.dylib"), Some("metal"));
        assert_eq!(LibOs::MacOs.backend("libggml-base.0.dylib"), None);
        assert_eq!(LibOs::Windows.backend("ggml-cpu-x64.dll"), Some("cpu-x64"));
        assert_eq!(LibOs::Windows.backend("ggml-base.dll"), None);
    }
}
