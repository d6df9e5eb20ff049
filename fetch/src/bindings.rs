//! Where the sys crate's Rust bindings come from — every decision except the bindgen call
//! itself, so it can be tested here (the build script has no tests, and this crate has no
//! bindgen dependency).
//!
//! bindgen runs over `wrapper.h` with the headers that match the binaries. When it cannot
//! (libclang missing, or the `bindgen` feature off), the bindings committed for the pinned tag
//! (`bindings/<triple>.rs`, made by `cargo xtask bindings`) are used instead — but only with
//! headers byte-identical to the vendored ones, since the bindings are a function of the
//! headers (and the target) and describe exactly those. Headers of another tag that did not
//! change (`LLAMA_INCLUDE_DIR`, or fetched for that tag) qualify too: a tag bump that leaves
//! `llama.h`/`ggml*.h` alone needs no libclang. Anything else is an error that says how to get
//! libclang or the feature.
//!
//! A target whose C library headers are not on this machine (macOS or Windows built on Linux)
//! reads `bindings/include-shim/` instead ([`SystemHeaders`]): the headers need only `FILE`,
//! behind a pointer, and the bindings declare it opaque on every target.

use std::path::{Path, PathBuf};

use crate::{PINNED_TAG, Target};

/// The bindgen allowlists: every llama/ggml/gguf function, type and constant, and the RPC
/// protocol version (ggml-rpc.h) the safe crate checks servers against.
pub const ALLOW_FUNCTIONS: &str = "(llama|ggml|gguf)_.*";
/// See [`ALLOW_FUNCTIONS`].
pub const ALLOW_TYPES: &str = "(llama|ggml|gguf)_.*";
/// See [`ALLOW_FUNCTIONS`].
pub const ALLOW_VARS: &str = "(LLAMA|GGML|GGUF|RPC_PROTO)_.*";

/// The facts the choice depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingsPlan {
    /// The sys crate's directory (`wrapper.h`, `vendor-headers/`, `bindings/`).
    pub manifest_dir: PathBuf,
    /// The headers bindgen reads (vendored, `LLAMA_INCLUDE_DIR`, or fetched for another tag).
    pub include_dir: PathBuf,
    /// The target triple.
    pub triple: String,
    /// Where the build script writes the bindings.
    pub out_dir: PathBuf,
    /// Whether the `bindgen` feature is on.
    pub bindgen_feature: bool,
    /// Where `<stdio.h>` and the other C library headers come from.
    pub system_headers: SystemHeaders,
}

/// Where clang finds the C library headers `llama.h`/`ggml.h`/`gguf.h` include. The shim is the
/// fallback for a target whose own headers are absent, never a replacement for present ones:
/// the bindings are the same either way (`cargo xtask bindings --check` and the
/// `shim_and_real_headers_give_the_same_bindings` test compare them where both exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemHeaders {
    /// The target's own (the host's, a cross sysroot, the macOS SDK, MSVC's, mingw-w64's), as
    /// clang finds them for `--target`; the shim only after all of them (`-idirafter`), for a
    /// header they lack.
    Target,
    /// `bindings/include-shim/` (`stdio.h` with an opaque `FILE`, and `stddef.h`, `stdint.h`,
    /// `stdbool.h` from clang's predefined type macros for the target) with clang's system
    /// directories turned off (`-nostdlibinc`).
    Shim,
}

impl SystemHeaders {
    /// The target's own headers when this machine can have them: the host's OS, mingw-w64's
    /// headers where Debian-style packages put them (`/usr/<arch>-w64-mingw32/include`, where
    /// clang's MinGW driver looks), or whatever the user points clang at through
    /// `BINDGEN_EXTRA_CLANG_ARGS` (`user_clang_args`, e.g. `--sysroot` of a macOS SDK). Otherwise
    /// the shim: clang would search the *host's* `/usr/include` for a macOS target, and find
    /// nothing at all for MSVC.
    pub fn choose(
        target: &Target,
        host: &Target,
        user_clang_args: bool,
        exists: impl Fn(&Path) -> bool,
    ) -> SystemHeaders {
        let mingw_stdio = Path::new("/usr")
            .join(format!("{}-w64-mingw32", target.arch))
            .join("include")
            .join("stdio.h");
        let own = user_clang_args
            || target.os == host.os
            || (target.os == "windows" && target.env == "gnu" && exists(&mingw_stdio));
        if own {
            SystemHeaders::Target
        } else {
            SystemHeaders::Shim
        }
    }
}

/// What to do after bindgen ran (or could not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// bindgen wrote [`BindingsPlan::out_file`].
    Generated,
    /// Copy the committed bindings `from` to [`BindingsPlan::out_file`], printing `warning`
    /// (set when the user asked for bindgen and should learn how to get libclang).
    UseCommitted {
        /// The committed file.
        from: PathBuf,
        /// A `cargo::warning` line, if any.
        warning: Option<String>,
    },
    /// Stop the build with this message (its first line is the error, then `help:`).
    Fail(String),
}

impl BindingsPlan {
    /// The header bindgen reads.
    pub fn header(&self) -> PathBuf {
        self.manifest_dir.join("wrapper.h")
    }

    /// The generated (or copied) bindings the sys crate `include!`s.
    pub fn out_file(&self) -> PathBuf {
        self.out_dir.join("bindings.rs")
    }

    /// The committed bindings for this target.
    pub fn committed_file(&self) -> PathBuf {
        self.manifest_dir
            .join("bindings")
            .join(format!("{}.rs", self.triple))
    }

    /// Whether bindgen reads the vendored headers, or headers byte-identical to them: the only
    /// ones the committed bindings describe. Every vendored header that `wrapper.h` reads (the
    /// file names of [`SOURCE_HEADERS`](crate::headers::SOURCE_HEADERS)) must exist in the
    /// include dir with the same bytes; other headers on either side (`mtmd.h` vendored for
    /// later, `ggml-cuda.h`, …) are not read and do not matter.
    pub fn uses_vendored_headers(&self) -> bool {
        let vendored = self.manifest_dir.join("vendor-headers");
        if self.include_dir == vendored {
            return true;
        }
        let Ok(entries) = std::fs::read_dir(&vendored) else {
            return false;
        };
        let mut compared = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let read_by_wrapper = crate::headers::SOURCE_HEADERS
                .iter()
                .any(|p| p.rsplit('/').next() == Some(&*name.to_string_lossy()));
            if !read_by_wrapper {
                continue;
            }
            let same = match (
                std::fs::read(entry.path()),
                std::fs::read(self.include_dir.join(&name)),
            ) {
                (Ok(ours), Ok(theirs)) => ours == theirs,
                _ => false,
            };
            if !same {
                return false;
            }
            compared += 1;
        }
        compared > 0
    }

    /// The stand-in for missing C library headers ([`SystemHeaders::Shim`]).
    pub fn shim_dir(&self) -> PathBuf {
        self.manifest_dir.join("bindings").join("include-shim")
    }

    /// clang arguments: the header directory, the *target* (never the host), and the shim
    /// when the target's C library headers are missing.
    pub fn clang_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("-I{}", self.include_dir.display()),
            format!("--target={}", self.triple),
        ];
        match self.system_headers {
            SystemHeaders::Shim => {
                args.push("-nostdlibinc".into());
                args.push(format!("-isystem{}", self.shim_dir().display()));
            }
            // Searched after every system directory, so it only fills a gap: mingw-w64 ships
            // no <stdbool.h> (GCC does), and libclang's MinGW driver adds no resource dir.
            SystemHeaders::Target => {
                args.push(format!("-idirafter{}", self.shim_dir().display()));
            }
        }
        args
    }

    /// Decides from bindgen's result (`Err(why)` when it could not run).
    pub fn decide(&self, generated: Result<(), String>) -> Decision {
        let why = match generated {
            Ok(()) => return Decision::Generated,
            Err(why) => why,
        };
        let committed = self.committed_file();
        let vendored = self.uses_vendored_headers();
        if vendored && committed.is_file() {
            let warning = self.bindgen_feature.then(|| {
                format!(
                    "llama-prebuilt-sys: {why}; using the pre-generated bindings of {PINNED_TAG}. \
                     Install libclang (Debian/Ubuntu: apt-get install libclang-dev) or set LIBCLANG_PATH to generate them"
                )
            });
            return Decision::UseCommitted {
                from: committed,
                warning,
            };
        }
        let help = if self.bindgen_feature {
            "install libclang (Debian/Ubuntu: apt-get install libclang-dev; macOS: \
             xcode-select --install) or set LIBCLANG_PATH"
        } else {
            "enable the `bindgen` feature (of llama-prebuilt-sys, or of llama-prebuilt) \
             and have libclang installed"
        };
        let scope = if vendored {
            format!(
                "pre-generated bindings exist for {}",
                committed_targets(&self.manifest_dir.join("bindings"))
            )
        } else {
            "pre-generated bindings exist only for headers identical to the vendored ones"
                .to_string()
        };
        Decision::Fail(format!(
            "cannot generate bindings for {}: {why}\nhelp: {help}; {scope}",
            self.triple
        ))
    }
}

/// Why bindgen gave up, from a panic payload (bindgen panics when libclang cannot be loaded).
pub fn libclang_failure(panic_message: Option<&str>) -> String {
    format!(
        "libclang could not be loaded ({})",
        panic_message
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
    )
}

/// The targets with committed bindings in `dir`, sorted, for error messages.
pub fn committed_targets(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .strip_suffix(".rs")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "no target".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "x86_64-unknown-linux-gnu";

    /// A sys-crate directory with committed bindings for `LINUX` only.
    fn crate_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bindings")).unwrap();
        std::fs::create_dir_all(dir.path().join("vendor-headers")).unwrap();
        std::fs::write(dir.path().join("bindings").join(format!("{LINUX}.rs")), "").unwrap();
        dir
    }

    fn plan(dir: &Path, include: &str, triple: &str, feature: bool) -> BindingsPlan {
        BindingsPlan {
            manifest_dir: dir.to_path_buf(),
            include_dir: dir.join(include),
            triple: triple.into(),
            out_dir: dir.join("out"),
            bindgen_feature: feature,
            system_headers: SystemHeaders::Target,
        }
    }

    #[test]
    fn file_names_and_clang_args_follow_the_target() {
        let dir = crate_dir();
        let p = plan(dir.path(), "vendor-headers", "aarch64-apple-darwin", true);
        assert_eq!(p.header(), dir.path().join("wrapper.h"));
        assert_eq!(p.out_file(), dir.path().join("out").join("bindings.rs"));
        assert_eq!(
            p.committed_file(),
            dir.path().join("bindings").join("aarch64-apple-darwin.rs")
        );
        assert_eq!(
            p.clang_args(),
            [
                format!("-I{}", dir.path().join("vendor-headers").display()),
                "--target=aarch64-apple-darwin".to_string(),
                format!(
                    "-idirafter{}",
                    dir.path().join("bindings/include-shim").display()
                )
            ]
        );
    }

    #[test]
    fn the_shim_stands_in_only_for_missing_target_headers() {
        let linux = Target::from_triple(LINUX);
        let t = Target::from_triple;
        let none = |_: &Path| false;
        let mingw = |p: &Path| p == Path::new("/usr/x86_64-w64-mingw32/include/stdio.h");
        let choose = |triple: &str, user: bool, exists: &dyn Fn(&Path) -> bool| {
            SystemHeaders::choose(&t(triple), &linux, user, exists)
        };
        assert_eq!(
            choose("aarch64-unknown-linux-gnu", false, &none),
            SystemHeaders::Target
        );
        assert_eq!(
            choose("aarch64-apple-darwin", false, &none),
            SystemHeaders::Shim
        );
        assert_eq!(
            choose("x86_64-pc-windows-msvc", false, &mingw),
            SystemHeaders::Shim
        );
        assert_eq!(
            choose("x86_64-pc-windows-gnu", false, &none),
            SystemHeaders::Shim
        );
        assert_eq!(
            choose("x86_64-pc-windows-gnu", false, &mingw),
            SystemHeaders::Target
        );
        // An SDK the user names through BINDGEN_EXTRA_CLANG_ARGS is never replaced.
        assert_eq!(
            choose("aarch64-apple-darwin", true, &none),
            SystemHeaders::Target
        );
        // On a Mac, the SDK's headers.
        let mac = t("aarch64-apple-darwin");
        assert_eq!(
            SystemHeaders::choose(&t("x86_64-apple-darwin"), &mac, false, none),
            SystemHeaders::Target
        );

        let dir = crate_dir();
        let mut p = plan(dir.path(), "vendor-headers", "aarch64-apple-darwin", true);
        p.system_headers = SystemHeaders::Shim;
        assert_eq!(
            p.clang_args()[2..],
            [
                "-nostdlibinc".to_string(),
                format!(
                    "-isystem{}",
                    dir.path().join("bindings/include-shim").display()
                )
            ]
        );
    }

    #[test]
    fn fresh_bindings_win() {
        let dir = crate_dir();
        let p = plan(dir.path(), "elsewhere", "wasm32-unknown-unknown", true);
        assert_eq!(p.decide(Ok(())), Decision::Generated);
    }

    #[test]
    fn missing_libclang_falls_back_to_committed_bindings_with_a_warning() {
        let dir = crate_dir();
        let p = plan(dir.path(), "vendor-headers", LINUX, true);
        let Decision::UseCommitted { from, warning } =
            p.decide(Err(libclang_failure(Some("Unable to find libclang\nmore"))))
        else {
            panic!("expected the committed bindings");
        };
        assert_eq!(from, p.committed_file());
        let warning = warning.unwrap();
        assert!(
            warning.contains("libclang could not be loaded (Unable to find libclang)")
                && warning.contains(PINNED_TAG)
                && warning.contains("LIBCLANG_PATH"),
            "{warning}"
        );
    }

    #[test]
    fn without_the_feature_committed_bindings_are_used_silently() {
        let dir = crate_dir();
        let p = plan(dir.path(), "vendor-headers", LINUX, false);
        assert!(matches!(
            p.decide(Err("the `bindgen` feature is off".into())),
            Decision::UseCommitted { warning: None, .. }
        ));
    }

    #[test]
    fn other_targets_fail_naming_the_committed_ones() {
        let dir = crate_dir();
        let p = plan(dir.path(), "vendor-headers", "aarch64-apple-darwin", true);
        let Decision::Fail(msg) = p.decide(Err("why".into())) else {
            panic!("expected a failure");
        };
        assert!(
            msg.starts_with(
                "cannot generate bindings for aarch64-apple-darwin: why\nhelp: install libclang"
            ) && msg.ends_with(&format!("pre-generated bindings exist for {LINUX}")),
            "{msg}"
        );
    }

    #[test]
    fn other_headers_never_use_committed_bindings() {
        let dir = crate_dir();
        let p = plan(dir.path(), "fetched-headers", LINUX, false);
        let Decision::Fail(msg) = p.decide(Err("the `bindgen` feature is off".into())) else {
            panic!("expected a failure");
        };
        assert!(
            msg.contains("enable the `bindgen` feature")
                && msg.ends_with(
                    "pre-generated bindings exist only for headers identical to the vendored ones"
                ),
            "{msg}"
        );
    }

    #[test]
    fn headers_identical_to_the_vendored_ones_use_the_committed_bindings() {
        let dir = crate_dir();
        let vendored = dir.path().join("vendor-headers");
        std::fs::write(vendored.join("llama.h"), "int llama_x(void);").unwrap();
        std::fs::write(vendored.join("ggml.h"), "int ggml_x(void);").unwrap();
        std::fs::write(vendored.join("ORIGIN.md"), "not a header").unwrap();
        std::fs::write(vendored.join("mtmd.h"), "vendored, not read by wrapper.h").unwrap();
        let other = dir.path().join("other-tag");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("llama.h"), "int llama_x(void);").unwrap();
        std::fs::write(other.join("ggml.h"), "int ggml_x(void);").unwrap();
        std::fs::write(other.join("ggml-cuda.h"), "not read by wrapper.h").unwrap();
        let p = plan(dir.path(), "other-tag", LINUX, false);
        assert!(p.uses_vendored_headers());
        assert!(matches!(
            p.decide(Err("the `bindgen` feature is off".into())),
            Decision::UseCommitted { warning: None, .. }
        ));
        // One byte changed, or one header missing: another API, so no committed bindings.
        std::fs::write(other.join("ggml.h"), "int ggml_x(int);").unwrap();
        assert!(!p.uses_vendored_headers());
        assert!(matches!(p.decide(Err("off".into())), Decision::Fail(_)));
        std::fs::remove_file(other.join("ggml.h")).unwrap();
        assert!(!p.uses_vendored_headers());
    }

    #[test]
    fn no_committed_bindings_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(committed_targets(&dir.path().join("bindings")), "no target");
    }
}
