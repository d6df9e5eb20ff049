//! Runs the built `llama-prebuilt` binary against the loopback mirror, with an environment
//! that cannot leak the developer's own settings (every LLAMA_* variable, the token, proxies).
#![allow(dead_code)]

use std::process::{Command, Output};

use llama_prebuilt_fetch::vars;
use llama_prebuilt_test_support::test_env::MirrorEnv;

pub const TAG: &str = "b20001";
pub const LINUX_X64: &str = "llama-b20001-bin-ubuntu-x64.tar.gz";
pub const LINUX_X64_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// A mirror, a temporary directory (cache, checksums file, scratch files), shared with the fetch
/// library's tests; [`CliEnv`] runs the binary against it.
pub type Env = MirrorEnv;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is 0.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    /// Panics with both streams unless the exit code is 1.
    pub fn failed(self) -> Run {
        assert_eq!(self.code, Some(1), "expected exit code 1:\n{self}");
        self
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The mirror environment as the environment of a `llama-prebuilt` process.
pub trait CliEnv {
    /// The binary with a clean environment pointing at the mirror, the cache and the checksums.
    fn cmd(&self) -> Command;

    /// Runs the binary with `args`.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs the binary with `args` and extra environment variables.
    fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args).envs(vars.iter().copied());
        Run::from(c.output().expect("the binary runs"))
    }
}

impl CliEnv for MirrorEnv {
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_llama-prebuilt"));
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("LLAMA_") || n.to_ascii_lowercase().ends_with("_proxy") {
                c.env_remove(&name);
            }
        }
        for name in vars::ALL {
            c.env_remove(name);
        }
        c.env("XDG_CACHE_HOME", self.dir.path().join("xdg"))
            .env(vars::MIRROR, self.download_base())
            .env(vars::API_URL, self.api_base())
            .env(vars::CACHE_DIR, self.cache_dir())
            .env(vars::CHECKSUMS, self.checksums_path())
            .env(vars::TIMEOUT, "5");
        c
    }
}

pub use llama_prebuilt_test_support::fs_tree::tree;
