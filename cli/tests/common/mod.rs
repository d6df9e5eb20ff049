//! Runs the built `llama-prebuilt` binary against the loopback mirror, with an environment
//! that cannot leak the developer's own settings (every LLAMA_* variable, the token, proxies).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use llama_prebuilt_fetch::vars;
use llama_prebuilt_test_support::archives::{checksums_toml, sha256_hex};
use llama_prebuilt_test_support::mirror::Mirror;

pub const TAG: &str = "b20001";
pub const LINUX_X64: &str = "llama-b20001-bin-ubuntu-x64.tar.gz";
pub const LINUX_X64_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// A mirror, a temporary directory (cache, checksums file, scratch files) and the binary.
pub struct Env {
    pub mirror: Mirror,
    pub dir: tempfile::TempDir,
    entries: Vec<(String, String, String, u64)>,
}

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

impl Env {
    pub fn new() -> Env {
        let env = Env {
            mirror: Mirror::start().expect("mirror starts"),
            dir: tempfile::tempdir().unwrap(),
            entries: Vec::new(),
        };
        env.write_checksums();
        env
    }

    /// Serves `bytes` as `asset` of `tag` and records its digest in the checksums file.
    pub fn serve(&mut self, tag: &str, asset: &str, bytes: Vec<u8>) -> String {
        let sha = sha256_hex(&bytes);
        self.entries
            .push((tag.into(), asset.into(), sha.clone(), bytes.len() as u64));
        self.mirror.add_asset_bytes(tag, asset, bytes);
        self.write_checksums();
        sha
    }

    fn write_checksums(&self) {
        let rows: Vec<(&str, &str, &str, u64)> = self
            .entries
            .iter()
            .map(|(t, a, s, n)| (t.as_str(), a.as_str(), s.as_str(), *n))
            .collect();
        std::fs::write(self.checksums_path(), checksums_toml(&rows)).unwrap();
    }

    pub fn checksums_path(&self) -> PathBuf {
        self.dir.path().join("checksums.toml")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The binary with a clean environment pointing at the mirror, the cache and the checksums.
    pub fn cmd(&self) -> Command {
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
            .env(vars::MIRROR, self.mirror.download_base())
            .env(vars::API_URL, self.mirror.api_base())
            .env(vars::CACHE_DIR, self.cache_dir())
            .env(vars::CHECKSUMS, self.checksums_path())
            .env(vars::TIMEOUT, "5");
        c
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs the binary with `args` and extra environment variables.
    pub fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args).envs(vars.iter().copied());
        Run::from(c.output().expect("the binary runs"))
    }
}

pub use llama_prebuilt_test_support::fs_tree::tree;
