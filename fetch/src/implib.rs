//! Import libraries (`.lib`) for the official Windows release DLLs, generated from the DLLs'
//! export tables.
//!
//! The Windows release zips carry DLLs but no import libraries, and both MSVC-flavoured
//! linkers (link.exe, lld-link) and `cargo:rustc-link-lib=dylib=llama` need `llama.lib`. When
//! a Windows lib dir is staged ([`crate::linking::stage`]), [`write_for_dir`] writes
//! `<stem>.lib` next to each of [`IMPORT_LIBRARIES`] present as a DLL, unless the archive
//! brought its own `.lib`.
//!
//! Written by hand (about 800 lines with docs, [`pe`] and the archive writer included) rather
//! than with a crate: this library is a build dependency of every downstream build, whose cold
//! compile time is a tracked budget. The formats followed are those of Microsoft's "PE Format"
//! specification (export directory; archive and import library format; short import
//! members) and what link.exe and lld/llvm-dlltool put in an import library (the import
//! descriptor, null import descriptor and null thunk objects). The output is reproducible
//! (all timestamps 0) and serves x86_64/aarch64-pc-windows-msvc and x86_64-pc-windows-gnu
//! (GNU ld reads short import members).

mod archive;
pub mod pe;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use archive::import_library;
pub use pe::{DllExports, Export, ExportKind, read_exports};

/// The libraries that get an import library when their DLL is present: the stems of
/// `llama.dll`, `ggml.dll`, `ggml-base.dll`, `mtmd.dll` and `ggml-rpc.dll`.
pub const IMPORT_LIBRARIES: &[&str] = &["llama", "ggml", "ggml-base", "mtmd", "ggml-rpc"];

/// Why no import library could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImplibError {
    /// The DLL is not a well-formed PE image (what was wrong).
    Malformed(&'static str),
    /// The image has no export directory.
    NoExports,
    /// A machine type other than x86-64 (`0x8664`) and ARM64 (`0xAA64`).
    UnsupportedMachine(u16),
    /// A DLL or symbol name that cannot be written (empty or holding a NUL byte).
    BadName(String),
    /// More exports than an archive's 16-bit member indices can address.
    TooManyExports(usize),
}

impl fmt::Display for ImplibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImplibError::Malformed(what) => write!(f, "malformed PE image: {what}"),
            ImplibError::NoExports => write!(f, "the image has no export directory"),
            ImplibError::UnsupportedMachine(m) => write!(
                f,
                "machine type {m:#06x} is not supported (only x86-64 and ARM64 DLLs get import libraries)"
            ),
            ImplibError::BadName(name) => write!(f, "cannot write the name {name:?}"),
            ImplibError::TooManyExports(n) => {
                write!(f, "{n} exports are more than an import library can hold")
            }
        }
    }
}

impl std::error::Error for ImplibError {}

/// Reads `dll` and writes its import library to `lib`, named for the loader by `dll`'s file
/// name. An existing `lib` with the same contents is left untouched (so a no-op rebuild
/// writes nothing); otherwise it is replaced. Returns whether the file was written.
///
/// # Errors
///
/// I/O errors, and [`ImplibError`]s as [`io::ErrorKind::InvalidData`] naming the DLL.
pub fn write_import_library(dll: &Path, lib: &Path) -> io::Result<bool> {
    let contents = generate(dll)?.map_err(|e| invalid(dll, e))?;
    write_if_changed(lib, &contents)
}

/// The import library of the DLL at `dll` (outer error: reading it).
fn generate(dll: &Path) -> io::Result<Result<Vec<u8>, ImplibError>> {
    let dll_name = dll.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "DLL path without a UTF-8 file name",
        )
    })?;
    let image = fs::read(dll)?;
    Ok(read_exports(&image).and_then(|exports| import_library(dll_name, &exports)))
}

fn invalid(dll: &Path, e: ImplibError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot make an import library from {}: {e}", dll.display()),
    )
}

fn write_if_changed(lib: &Path, contents: &[u8]) -> io::Result<bool> {
    if fs::read(lib).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    // Replace rather than write through: `lib` may be a hard link to a file elsewhere.
    match fs::remove_file(lib) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::write(lib, contents)?;
    Ok(true)
}

/// Writes `<stem>.lib` in `dir` for each of [`IMPORT_LIBRARIES`] whose DLL is in `dir`
/// (names compared ignoring ASCII case), skipping stems listed in `provided` (import
/// libraries the release archive brought itself, lower-case file names) and DLLs of a
/// machine other than x86-64 and ARM64 (a 32-bit x86 build brought by `LLAMA_LIB_DIR`: GNU ld
/// links such DLLs directly, MSVC needs the user's own `.lib`). Returns the paths of the
/// import libraries now in place (written or already up to date).
///
/// # Errors
///
/// As [`write_import_library`]; a directory that cannot be listed.
pub fn write_for_dir(dir: &Path, provided: &[String]) -> io::Result<Vec<PathBuf>> {
    let names: Vec<String> = fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let mut written = Vec::new();
    for stem in IMPORT_LIBRARIES {
        let lib_name = format!("{stem}.lib");
        if provided.iter().any(|p| p.eq_ignore_ascii_case(&lib_name)) {
            continue;
        }
        let dll_name = format!("{stem}.dll");
        let Some(dll) = names.iter().find(|n| n.eq_ignore_ascii_case(&dll_name)) else {
            continue;
        };
        let dll = dir.join(dll);
        let lib = dir.join(&lib_name);
        match generate(&dll)? {
            Ok(contents) => {
                write_if_changed(&lib, &contents)?;
                written.push(lib);
            }
            Err(ImplibError::UnsupportedMachine(_)) => {}
            Err(e) => return Err(invalid(&dll, e)),
        }
    }
    Ok(written)
}

#[cfg(test)]
pub(crate) mod tests;
