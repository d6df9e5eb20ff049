//! `bcryptprimitives.dll` for Rust programs under wine 8: Rust's std imports `ProcessPrng`
//! from it, wine 8 has no such DLL, and the loader refuses the program before `main`.
//! `c/bcryptprimitives.c` exports `ProcessPrng` on top of advapi32's `RtlGenRandom`; it is
//! compiled here with the MinGW-w64 cross compiler (Debian: `gcc-mingw-w64-x86-64`) and put
//! next to the program, and the program runs with [`DLL_OVERRIDE`] (native first).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `WINEDLLOVERRIDES` entry making wine load the stub beside the program (the native DLL),
/// falling back to a builtin if a later wine has one.
pub const DLL_OVERRIDE: &str = "bcryptprimitives=n,b";

/// The MinGW-w64 C compiler for x86-64 Windows.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Compiles the stub into `dir/bcryptprimitives.dll` and returns its path (well under a
/// second; not cached).
///
/// # Errors
///
/// The compiler is missing (the message names the Debian package; `cargo xtask test`
/// installs it) or fails.
pub fn bcryptprimitives_dll(dir: &Path) -> Result<PathBuf, String> {
    let c_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let out = dir.join("bcryptprimitives.dll");
    let result = Command::new(MINGW_GCC)
        .args(["-shared", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(c_dir.join("bcryptprimitives.c"))
        .arg(c_dir.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {MINGW_GCC} ({e}): install the Debian package gcc-mingw-w64-x86-64 \
                 (cargo xtask test does)"
            )
        })?;
    if !result.status.success() {
        return Err(format!(
            "{MINGW_GCC} failed to build the bcryptprimitives.dll stub:\n{}",
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(out)
}
