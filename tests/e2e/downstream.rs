//! A throwaway downstream crate, the mirror "world" it builds against, and how to run cargo
//! for it with a controlled environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use llama_prebuilt_test_support::fixture::{self, Fixture};
use llama_prebuilt_test_support::mirror::Mirror;

pub const X64_ASSET: &str = "llama-b10199-fixture-bin-ubuntu-x64.tar.gz";
pub const ARM64_ASSET: &str = "llama-b10199-fixture-bin-ubuntu-arm64.tar.gz";

/// The mirror serving the fixture release, its checksums file and the shared cache.
pub struct World {
    pub mirror: Mirror,
    pub fixture: &'static Fixture,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(|| {
            let fixture = fixture::fixture().expect("the llama.cpp fixture builds");
            let mirror = Mirror::start().expect("mirror starts");
            fixture.serve(&mirror);
            let world = World {
                mirror,
                fixture,
                dir: tempfile::tempdir().unwrap(),
            };
            fixture::write_checksums(&[fixture], &world.checksums()).unwrap();
            world
        })
    }

    /// Adds the cross-built aarch64 fixture to the mirror and the checksums file.
    pub fn aarch64() -> &'static Fixture {
        let world = World::get();
        let arm = fixture::fixture_aarch64().expect("the aarch64 fixture cross-builds");
        arm.serve(&world.mirror);
        fixture::write_checksums(&[world.fixture, arm], &world.checksums()).unwrap();
        arm
    }

    pub fn checksums(&self) -> PathBuf {
        self.dir.path().join("checksums.toml")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// GETs of the x86_64 archive so far.
    pub fn hits(&self) -> usize {
        self.mirror.hits(&self.fixture.tag, X64_ASSET)
    }

    /// GETs of the aarch64 archive so far.
    pub fn arm_hits(&self) -> usize {
        self.mirror.hits(&self.fixture.tag, ARM64_ASSET)
    }
}

/// The output of one command.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.ok,
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
    }
}

fn output(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A downstream application crate in a temp dir with its own target dir.
pub struct Downstream {
    dir: tempfile::TempDir,
    name: String,
    world: &'static World,
}

const MAIN_RS: &str = r#"
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use llama_prebuilt_sys as sys;

fn has_llama(dir: &Path) -> bool {
    dir.join("libllama.so").exists() || dir.join("libllama.dylib").exists() || dir.join("llama.dll").exists()
}

fn main() {
    // A shipped program loads its backends from beside itself; under cargo the staged dir works too.
    let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = if has_llama(&exe_dir) { exe_dir } else { PathBuf::from(sys::LIB_DIR) };
    let c = CString::new(dir.to_str().unwrap()).unwrap();
    let n = unsafe {
        sys::ggml_backend_load_all_from_path(c.as_ptr());
        sys::ggml_backend_dev_count()
    };
    println!("devices: {n}");
    let info = unsafe { CStr::from_ptr(sys::llama_print_system_info()) };
    println!("{}", info.to_string_lossy());
    assert!(n >= 1, "no backend registered from {}", dir.display());
    println!("metadata: lib_dir={} version={}", env!("DEP_LLAMA_LIB_DIR"), env!("DEP_LLAMA_VERSION"));
    println!("llama.cpp {} ok", sys::VERSION);
}
"#;

/// The one line the README tells applications to add so a binary finds the libraries copied
/// next to it.
/// It also forwards the sys crate's `links` metadata, which the e2e tests check.
const BUILD_RS: &str = r#"fn main() {
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    for key in ["DEP_LLAMA_LIB_DIR", "DEP_LLAMA_VERSION"] {
        println!("cargo:rustc-env={key}={}", std::env::var(key).unwrap_or_default());
    }
}
"#;

impl Downstream {
    pub fn create(name: &str, world: &'static World) -> Downstream {
        Downstream::create_with(name, world, "")
    }

    /// A downstream crate whose dependency line gets `extra` (e.g. `default-features = false`).
    pub fn create_with(name: &str, world: &'static World, extra: &str) -> Downstream {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nllama-prebuilt-sys = {{ path = {:?}{extra} }}\n\n[workspace]\n",
            repo.display().to_string()
        );
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        // Same dependency versions as the workspace, and no registry resolution needed.
        std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
        std::fs::write(dir.path().join("build.rs"), BUILD_RS).unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), MAIN_RS).unwrap();
        Downstream {
            dir,
            name: name.to_string(),
            world,
        }
    }

    pub fn target_dir(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    /// Runs cargo with the world's environment plus `extra` (an empty value unsets).
    pub fn cargo(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(args).current_dir(self.dir.path());
        clean_env(&mut cmd);
        let w = self.world;
        let base = [
            ("CARGO_TARGET_DIR", self.target_dir().display().to_string()),
            ("LLAMA_PREBUILT_MIRROR", w.mirror.download_base()),
            ("LLAMA_PREBUILT_API_URL", w.mirror.api_base()),
            ("LLAMA_PREBUILT_HEADERS_URL", w.mirror.raw_base()),
            (
                "LLAMA_PREBUILT_CHECKSUMS",
                w.checksums().display().to_string(),
            ),
            ("LLAMA_PREBUILT_CACHE_DIR", w.cache().display().to_string()),
            ("LLAMA_PREBUILT_VERSION", w.fixture.tag.clone()),
            (
                "LLAMA_INCLUDE_DIR",
                w.fixture.include_dir.display().to_string(),
            ),
        ];
        for (k, v) in base {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        output(&mut cmd)
    }

    /// Runs `target/debug/<name>` with no dynamic-library path set.
    pub fn run_binary(&self) -> Output {
        let mut cmd = Command::new(self.target_dir().join("debug").join(&self.name));
        clean_env(&mut cmd);
        cmd.env_remove("LD_LIBRARY_PATH")
            .env_remove("DYLD_LIBRARY_PATH");
        output(&mut cmd)
    }
}

/// Removes what the outer `cargo test` (or `cargo xtask test`) set, so each scenario states
/// its whole environment.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LLAMA_")
            || k == "CARGO_NET_OFFLINE"
            || k == "DOCS_RS"
            || k == "CARGO_TARGET_DIR"
            || k == "LD_LIBRARY_PATH"
        {
            cmd.env_remove(&*k);
        }
    }
}

pub fn cross_prerequisites() -> Result<(), String> {
    let has = |prog: &str| {
        Command::new(prog)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for prog in ["aarch64-linux-gnu-gcc", "qemu-aarch64"] {
        if !has(prog) {
            return Err(format!("{prog} is missing"));
        }
    }
    let sysroot = Command::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "aarch64-unknown-linux-gnu",
        ])
        .output();
    match sysroot {
        Ok(o) if Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir() => Ok(()),
        _ => Err("rustup target aarch64-unknown-linux-gnu is not installed".into()),
    }
}

pub fn cross_env() -> Vec<(&'static str, &'static str)> {
    vec![(
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
        "aarch64-linux-gnu-gcc",
    )]
}

pub fn run_qemu(bin: &Path) -> Output {
    let mut cmd = Command::new("qemu-aarch64");
    cmd.args(["-L", "/usr/aarch64-linux-gnu"]).arg(bin);
    clean_env(&mut cmd);
    output(&mut cmd)
}
