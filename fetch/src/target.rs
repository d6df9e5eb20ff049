//! The compilation *target* a build is for, read from a triple or from cargo's build-script
//! environment. Never `cfg!`: a build script runs on the host, and a cross build needs the
//! target's libraries.

/// A target as llama-prebuilt needs it: architecture, OS and environment, plus the triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// `target_arch` as cargo spells it (`x86_64`, `aarch64`, `s390x`, ...).
    pub arch: String,
    /// `target_os` as cargo spells it (`linux`, `macos`, `windows`, ...).
    pub os: String,
    /// `target_env` as cargo spells it (`gnu`, `msvc`, `musl`, or empty).
    pub env: String,
}

impl Target {
    /// Parses a Rust target triple (`<arch>-<vendor>-<os>[-<env>]`).
    ///
    /// Only the parts llama-prebuilt needs are interpreted; an unknown OS is kept verbatim so the
    /// asset table can reject it with the list of supported targets.
    pub fn from_triple(triple: &str) -> Target {
        let parts: Vec<&str> = triple.split('-').collect();
        let arch = match parts.first().copied().unwrap_or("") {
            "arm64" => "aarch64",
            "amd64" => "x86_64",
            other => other,
        }
        .to_string();
        let (os, env) = if triple.contains("-apple-darwin") {
            ("macos".to_string(), String::new())
        } else if triple.contains("-windows-") {
            (
                "windows".to_string(),
                parts.last().copied().unwrap_or("").to_string(),
            )
        } else if triple.contains("-linux-") {
            let env = parts.last().copied().unwrap_or("");
            // `gnueabihf`, `gnux32` ... are all glibc flavours; keep the base name.
            let env = if env.starts_with("gnu") {
                "gnu"
            } else if env.starts_with("musl") {
                "musl"
            } else {
                env
            };
            ("linux".to_string(), env.to_string())
        } else {
            (
                parts.get(2).copied().unwrap_or("").to_string(),
                parts.get(3).copied().unwrap_or("").to_string(),
            )
        };
        Target {
            triple: triple.to_string(),
            arch,
            os,
            env,
        }
    }

    /// The target of the current build script, from `TARGET` and `CARGO_CFG_TARGET_*`.
    ///
    /// Returns `None` outside a build script.
    pub fn from_cargo_env() -> Option<Target> {
        let triple = std::env::var("TARGET").ok()?;
        let mut t = Target::from_triple(&triple);
        if let Ok(arch) = std::env::var("CARGO_CFG_TARGET_ARCH") {
            t.arch = arch;
        }
        if let Ok(os) = std::env::var("CARGO_CFG_TARGET_OS") {
            t.os = os;
        }
        if let Ok(env) = std::env::var("CARGO_CFG_TARGET_ENV") {
            t.env = env;
        }
        Some(t)
    }

    /// The machine this program was compiled for (what the CLI downloads by default).
    pub fn host() -> Target {
        let triple = host_triple();
        Target::from_triple(&triple)
    }
}

fn host_triple() -> String {
    use std::env::consts::{ARCH, OS};
    match OS {
        "linux" => format!(
            "{ARCH}-unknown-linux-{}",
            if cfg!(target_env = "musl") {
                "musl"
            } else {
                "gnu"
            }
        ),
        "macos" => format!("{ARCH}-apple-darwin"),
        "windows" => format!(
            "{ARCH}-pc-windows-{}",
            if cfg!(target_env = "gnu") {
                "gnu"
            } else {
                "msvc"
            }
        ),
        other => format!("{ARCH}-unknown-{other}"),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.triple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_triples() {
        let t = Target::from_triple("x86_64-unknown-linux-gnu");
        assert_eq!(
            (t.arch.as_str(), t.os.as_str(), t.env.as_str()),
            ("x86_64", "linux", "gnu")
        );
        let t = Target::from_triple("aarch64-apple-darwin");
        assert_eq!(
            (t.arch.as_str(), t.os.as_str(), t.env.as_str()),
            ("aarch64", "macos", "")
        );
        let t = Target::from_triple("aarch64-pc-windows-msvc");
        assert_eq!(
            (t.arch.as_str(), t.os.as_str(), t.env.as_str()),
            ("aarch64", "windows", "msvc")
        );
        let t = Target::from_triple("x86_64-unknown-linux-musl");
        assert_eq!(t.env, "musl");
        let t = Target::from_triple("wasm32-unknown-unknown");
        assert_eq!((t.arch.as_str(), t.os.as_str()), ("wasm32", "unknown"));
    }

    #[test]
    fn host_is_parseable() {
        let h = Target::host();
        assert!(!h.arch.is_empty() && !h.os.is_empty());
    }
}
