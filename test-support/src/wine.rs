//! Wine for tests that run Windows programs: finds Debian's 64-bit wine (package `wine64`,
//! which puts its loader at `/usr/lib/wine/wine64`, outside `PATH`), creates a wine prefix
//! once and runs programs in it headless, with a timeout.
//!
//! The prefix (`wineboot --init`: about 10 s and 700 MB, since wine 8 copies its builtin DLLs
//! into `drive_c/windows/system32`) is made once per wine version under
//! [`fixtures_root`]`/wineprefix-<hash of the version and loader path>/`, published by the
//! same atomic build-once protocol as the fixtures, so parallel test processes share it.
//! Programs run with:
//! - `WINEPREFIX` set to that prefix (never the user's `~/.wine`);
//! - `WINEDEBUG=-all`, so wine's own diagnostics do not drown the program's stderr;
//! - `WINEDLLOVERRIDES` disabling `mscoree` and `mshtml` ([`BASE_DLL_OVERRIDES`]): otherwise
//!   wine offers to download and install Mono and Gecko, which needs a display or the network;
//! - `DISPLAY` and `WAYLAND_DISPLAY` removed: nothing may open a window;
//! - stdout and stderr sent to files rather than pipes: the `wineserver` a program starts
//!   outlives it and would hold a pipe open, so reading a pipe to its end could wait for it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::fixture::{build_once, fixtures_root};

/// Where Debian's `wine64` package installs the loader (no `wine64` on `PATH` without the
/// `wine` wrapper package, which would pull the 32-bit half too).
pub const DEBIAN_LOADER: &str = "/usr/lib/wine/wine64";

/// DLL overrides every run gets: no Mono (`mscoree`), no Gecko (`mshtml`). Append your own
/// with [`dll_overrides`].
pub const BASE_DLL_OVERRIDES: &str = "mscoree,mshtml=";

/// How long `wineboot --init` may take before prefix creation counts as hung.
const INIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Written last into a finished prefix (holds the wine version and how long init took).
const MARKER: &str = "llama-prebuilt-prefix.txt";

/// A usable wine: the loader, its server, and a ready prefix.
#[derive(Debug)]
pub struct Wine {
    loader: PathBuf,
    server: PathBuf,
    version: String,
    prefix: PathBuf,
}

/// What a program run under wine did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WineOutput {
    /// The exit code (a Windows exit code is reported by wine as the process's exit status;
    /// `None` if it was killed by a signal).
    pub code: Option<i32>,
    /// Everything the program wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it (or wine) wrote to stderr.
    pub stderr: Vec<u8>,
}

impl WineOutput {
    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The process-wide wine, found and its prefix made (or loaded) on first use.
///
/// # Errors
///
/// Wine is not installed (the message names the package; `cargo xtask test` installs it), or
/// the prefix cannot be created.
pub fn wine() -> Result<&'static Wine, String> {
    static WINE: OnceLock<Result<Wine, String>> = OnceLock::new();
    WINE.get_or_init(|| Wine::find(&loader_candidates())?.with_prefix_in(&fixtures_root()?))
        .as_ref()
        .map_err(Clone::clone)
}

/// `WINEDLLOVERRIDES` with `extra` (e.g. `"bcryptprimitives=n"`) after [`BASE_DLL_OVERRIDES`].
pub fn dll_overrides(extra: &str) -> String {
    if extra.is_empty() {
        BASE_DLL_OVERRIDES.to_owned()
    } else {
        format!("{BASE_DLL_OVERRIDES};{extra}")
    }
}

/// `wine64` on `PATH` (a distribution that installs it there), then [`DEBIAN_LOADER`].
fn loader_candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("wine64"))
                .collect()
        })
        .unwrap_or_default();
    out.push(PathBuf::from(DEBIAN_LOADER));
    out
}

impl Wine {
    /// The first of `candidates` that runs `--version`, without a prefix yet.
    fn find(candidates: &[PathBuf]) -> Result<Wine, String> {
        for loader in candidates {
            let Ok(out) = Command::new(loader).arg("--version").output() else {
                continue;
            };
            if !out.status.success() {
                continue;
            }
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let server = loader.with_file_name("wineserver");
            return Ok(Wine {
                loader: loader.clone(),
                server,
                version,
                prefix: PathBuf::new(),
            });
        }
        let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        Err(format!(
            "wine is not installed (tried {}): install Debian's `wine64` package \
             (`apt-get install wine64`; `cargo xtask test` installs it)",
            tried.join(", ")
        ))
    }

    /// This wine with its prefix under `root`, created there first if needed.
    fn with_prefix_in(mut self, root: &Path) -> Result<Wine, String> {
        let key = self.prefix_key();
        let load = |dir: &Path| {
            (dir.join(MARKER).is_file() && dir.join("system.reg").is_file())
                .then(|| dir.to_path_buf())
        };
        self.prefix = build_once(root, &key, load, |staging, _scratch| {
            self.init_prefix(staging)
        })?;
        Ok(self)
    }

    /// Prefixes are keyed by the wine version and the loader's path: another wine may not
    /// accept (or would silently upgrade) a prefix made by this one.
    fn prefix_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.version.as_bytes());
        h.update([0]);
        h.update(self.loader.as_os_str().as_encoded_bytes());
        format!("wineprefix-{}", &hex::encode(h.finalize())[..16])
    }

    /// `wineboot --init` into `dir`, then waits for the prefix's wineserver to exit, so the
    /// directory is quiet when it is renamed into place (wine stores no absolute path of the
    /// prefix inside it: `dosdevices/c:` is the relative link `../drive_c`).
    fn init_prefix(&self, dir: &Path) -> Result<(), String> {
        let started = Instant::now();
        eprintln!(
            "creating a wine prefix for {} in {} (first run, ~10 s)…",
            self.version,
            dir.display()
        );
        let mut boot = self.bare_command(&self.loader, dir);
        boot.args(["wineboot", "--init"]).env("WINEARCH", "win64");
        let out = run_with_timeout(boot, INIT_TIMEOUT, dir)?;
        if out.code != Some(0) {
            return Err(format!(
                "`wine64 wineboot --init` failed ({:?}): {}",
                out.code,
                out.stderr_text()
            ));
        }
        let mut wait = self.bare_command(&self.server, dir);
        wait.arg("-w");
        run_with_timeout(wait, INIT_TIMEOUT, dir)?;
        let took = started.elapsed();
        eprintln!("wine prefix ready in {took:.1?}");
        fs::write(
            dir.join(MARKER),
            format!("{}\ninit {:.1} s\n", self.version, took.as_secs_f64()),
        )
        .map_err(|e| format!("writing {}: {e}", dir.join(MARKER).display()))
    }

    /// A command for `program` with the prefix and the headless environment set.
    fn bare_command(&self, program: &Path, prefix: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("WINEPREFIX", prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", BASE_DLL_OVERRIDES)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        cmd
    }

    /// `wine64 <exe>` in the shared prefix with the headless environment (see the module
    /// docs); add arguments, a working directory, more environment (e.g.
    /// `WINEDLLOVERRIDES` = [`dll_overrides`]`("x=n")`), then [`Wine::run`] it.
    pub fn command(&self, exe: &Path) -> Command {
        let mut cmd = self.bare_command(&self.loader, &self.prefix);
        cmd.arg(exe);
        cmd
    }

    /// Runs `cmd` (from [`Wine::command`]) to completion, killing it after `timeout`.
    ///
    /// # Errors
    ///
    /// It cannot be started, or it ran longer than `timeout` (the message carries what it
    /// wrote so far). A non-zero exit is not an error: see [`WineOutput::code`].
    pub fn run(&self, cmd: Command, timeout: Duration) -> Result<WineOutput, String> {
        let scratch = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
        run_with_timeout(cmd, timeout, scratch.path())
    }

    /// `wine64 --version`, e.g. `wine-8.0 (Debian 8.0~repack-4)`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The prefix programs run in.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Wine's own 64-bit PE DLLs (`kernel32.dll`, `msvcp140.dll`, ...), e.g. to make import
    /// libraries from. Found next to the loader's installation.
    ///
    /// # Errors
    ///
    /// No directory with a `kernel32.dll` in the places wine installs them.
    pub fn system_dlls(&self) -> Result<PathBuf, String> {
        let mut candidates = vec![
            PathBuf::from("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"),
            PathBuf::from("/usr/lib64/wine/x86_64-windows"),
            PathBuf::from("/usr/lib/wine/x86_64-windows"),
        ];
        // A wine under a prefix of its own: <prefix>/bin/wine64 → <prefix>/lib/wine/...
        if let Some(root) = self.loader.parent().and_then(Path::parent) {
            candidates.push(root.join("lib/wine/x86_64-windows"));
            candidates.push(root.join("lib64/wine/x86_64-windows"));
        }
        first_with_kernel32(&candidates)
    }
}

/// The first of `candidates` holding a `kernel32.dll`.
fn first_with_kernel32(candidates: &[PathBuf]) -> Result<PathBuf, String> {
    candidates
        .iter()
        .find(|d| d.join("kernel32.dll").is_file())
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            format!(
                "wine's 64-bit PE DLLs (kernel32.dll) are in none of {}",
                tried.join(", ")
            )
        })
}

/// Runs `cmd` with stdout/stderr in files under `scratch`, killing it after `timeout`.
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    scratch: &Path,
) -> Result<WineOutput, String> {
    let out_path = scratch.join("wine-stdout.txt");
    let err_path = scratch.join("wine-stderr.txt");
    let create = |p: &Path| File::create(p).map_err(|e| format!("creating {}: {e}", p.display()));
    cmd.stdout(create(&out_path)?).stderr(create(&err_path)?);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    };
    let read = |p: &Path| fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let output = WineOutput {
        code: status.and_then(|s| s.code()),
        stdout: read(&out_path)?,
        stderr: read(&err_path)?,
    };
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    match status {
        Some(_) => Ok(output),
        None => Err(format!(
            "{cmd:?} did not finish within {timeout:?} and was killed\nstdout so far:\n{}\nstderr so far:\n{}",
            output.stdout_text(),
            output.stderr_text()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_wine_names_the_package_to_install() {
        let err = Wine::find(&[PathBuf::from("/nonexistent/wine64")]).unwrap_err();
        assert_eq!(
            err,
            "wine is not installed (tried /nonexistent/wine64): install Debian's `wine64` package \
             (`apt-get install wine64`; `cargo xtask test` installs it)"
        );
    }

    #[test]
    fn a_failed_prefix_init_says_so_and_publishes_nothing() {
        let root = tempfile::tempdir().unwrap();
        // A "loader" that fails whatever it is asked.
        let wine = Wine::find(&[PathBuf::from("/bin/false")]);
        assert!(wine.is_err(), "/bin/false --version fails too");
        let broken = Wine {
            loader: PathBuf::from("/bin/false"),
            server: PathBuf::from("/bin/false"),
            version: "wine-0.0 (broken)".to_owned(),
            prefix: PathBuf::new(),
        };
        let key = broken.prefix_key();
        let err = broken.with_prefix_in(root.path()).unwrap_err();
        assert_eq!(err, "`wine64 wineboot --init` failed (Some(1)): ");
        assert!(!root.path().join(&key).exists());
    }

    #[test]
    fn missing_system_dlls_name_the_places_searched() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        let full = dir.path().join("full");
        fs::create_dir_all(&empty).unwrap();
        fs::create_dir_all(&full).unwrap();
        let err = first_with_kernel32(std::slice::from_ref(&empty)).unwrap_err();
        assert_eq!(
            err,
            format!(
                "wine's 64-bit PE DLLs (kernel32.dll) are in none of {}",
                empty.display()
            )
        );
        fs::write(full.join("kernel32.dll"), b"MZ").unwrap();
        assert_eq!(first_with_kernel32(&[empty, full.clone()]).unwrap(), full);
    }

    #[test]
    fn extra_dll_overrides_follow_the_base_ones() {
        assert_eq!(dll_overrides(""), "mscoree,mshtml=");
        assert_eq!(
            dll_overrides("bcryptprimitives=n"),
            "mscoree,mshtml=;bcryptprimitives=n"
        );
    }

    #[test]
    fn a_program_running_past_its_timeout_is_killed_with_its_output() {
        let scratch = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30"]);
        let started = Instant::now();
        let err = run_with_timeout(cmd, Duration::from_millis(300), scratch.path()).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            err.contains("did not finish within 300ms and was killed")
                && err.contains("stdout so far:\nstarted\n"),
            "{err}"
        );
    }

    #[test]
    fn runs_a_windows_program_in_the_shared_prefix() {
        // `cmd.exe` is one of wine's builtin programs: no Windows binary of our own needed.
        let wine = wine().unwrap();
        assert!(wine.prefix().join("drive_c/windows/system32").is_dir());
        assert!(wine.system_dlls().unwrap().join("kernel32.dll").is_file());
        let mut cmd = wine.command(Path::new("cmd.exe"));
        cmd.args(["/c", "echo", "hello-from-wine"]);
        let out = wine.run(cmd, Duration::from_secs(120)).unwrap();
        assert_eq!(out.code, Some(0), "{}", out.stderr_text());
        assert_eq!(out.stdout_text().trim_end(), "hello-from-wine");
    }
}
