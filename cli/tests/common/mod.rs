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

    /// `download --version TAG --target x86_64-unknown-linux-gnu`, to be changed where a test
    /// differs (see [`Download`]).
    fn download(&self) -> Download<'_>;
}

/// One run of `llama-prebuilt download`. It starts as the common case, the Linux x64 asset of
/// [`TAG`]; a test states only what differs, then [`Download::run`]s it.
pub struct Download<'e> {
    env: &'e Env,
    version: Option<String>,
    target: Option<String>,
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

impl Download<'_> {
    /// `--version v` instead of [`TAG`].
    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(v.into());
        self
    }

    /// No `--version` (the tag comes from the environment or the default).
    pub fn without_version(mut self) -> Self {
        self.version = None;
        self
    }

    /// `--target t` instead of [`LINUX_X64_TRIPLE`].
    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    /// No `--target`.
    pub fn without_target(mut self) -> Self {
        self.target = None;
        self
    }

    /// `--platforms list` instead of a target.
    pub fn platforms(self, list: &str) -> Self {
        self.without_target().args(&["--platforms", list])
    }

    /// `--all` (every default platform) instead of a target.
    pub fn all(self) -> Self {
        self.without_target().args(&["--all"])
    }

    /// `--json`.
    pub fn json(self) -> Self {
        self.args(&["--json"])
    }

    /// More arguments, after the others.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Extra environment variables.
    pub fn vars(mut self, vars: &[(&str, &str)]) -> Self {
        self.vars
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// The full argument list, `download` first.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["download".to_string()];
        for (flag, value) in [("--version", &self.version), ("--target", &self.target)] {
            if let Some(v) = value {
                argv.extend([flag.to_string(), v.clone()]);
            }
        }
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// The process, not started yet (to spawn and kill it).
    pub fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.args(self.argv()).envs(self.vars.iter().cloned());
        c
    }

    /// Runs it to the end.
    pub fn run(&self) -> Run {
        Run::from(self.cmd().output().expect("the binary runs"))
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

    fn download(&self) -> Download<'_> {
        Download {
            env: self,
            version: Some(TAG.into()),
            target: Some(LINUX_X64_TRIPLE.into()),
            args: Vec::new(),
            vars: Vec::new(),
        }
    }
}

pub use llama_prebuilt_test_support::fs_tree::tree;
