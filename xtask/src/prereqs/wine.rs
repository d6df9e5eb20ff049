//! Running Windows programs in the tests: Debian bookworm's 64-bit wine 8 (`test_support::wine`
//! finds it and makes the prefix), and the Rust targets of the MSVC-flavoured link test
//! (`fetch/tests/msvc_link.rs`), which links with rustup's own `rust-lld` and so needs no other
//! package.

use super::Tool;

/// Debian installs the loader outside `PATH` (no `wine` wrapper without the `wine` package,
/// which would also want the 32-bit half).
pub(crate) const WINE: &[Tool] = &[Tool {
    program: "/usr/lib/wine/wine64",
    package: "wine64",
    probe: &[],
}];

/// The link test builds a no-CRT program for both (only the x86-64 one runs, under wine).
pub(crate) const MSVC_TARGETS: &[&str] = &["x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc"];

/// Installs wine and the MSVC Rust targets where missing.
pub(crate) fn ensure() -> Result<(), String> {
    let tools: Vec<&Tool> = WINE.iter().collect();
    super::ensure(&tools)?;
    for triple in MSVC_TARGETS {
        super::ensure_rust_target(triple)?;
    }
    Ok(())
}
