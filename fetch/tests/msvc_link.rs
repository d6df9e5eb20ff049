//! An MSVC-flavoured link against the generated import libraries (issue 13, item 3).
//!
//! A no-CRT program (`tests/msvc_link/hello_llama.rs`) is compiled with `rustc` for
//! `x86_64-pc-windows-msvc` and linked by rustup's own `rust-lld` in its `link` flavour
//! (`-C linker-flavor=lld-link`: lld-link, the LLVM counterpart of link.exe that the official
//! Windows release itself is linked with) against `llama.lib`, `ggml.lib` and `ggml-base.lib`
//! exactly as staging generates them from the official b10605 DLLs, plus a `kernel32.lib`
//! that our import-library writer makes from wine's `kernel32.dll`. Nothing else is on the
//! library path: no Windows SDK, no MSVC runtime (`/NODEFAULTLIB`). The executable's import
//! directory is read back with `object`, then it runs under wine next to the official DLLs
//! and must report the CPU backend.
//!
//! The same calls as a normal `std` program (`hello_llama_std.rs`) link and run too, with
//! import libraries of wine's system DLLs and `crt_stand_in.rs` in place of the static
//! objects of Visual Studio's `msvcrt.lib`, which this machine does not have; and so does a
//! downstream crate (`downstream_main.rs`) built with `cargo build --target
//! x86_64-pc-windows-msvc` through `llama-prebuilt-sys`'s build script.
//!
//! The same program is linked (not run: nothing here executes ARM64 Windows code) for
//! `aarch64-pc-windows-msvc` against ARM64 import libraries, which are made from the same
//! export tables: no ARM64 build of these DLLs is at hand, and the import library depends on
//! the DLL only through its export names, their kinds and hints, and the machine type.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use llama_prebuilt_fetch::implib::{self, DllExports};
use llama_prebuilt_fetch::libdir::LibOs;
use llama_prebuilt_fetch::linking;
use llama_prebuilt_test_support::{fixture, official, second_tag, wine};
use object::LittleEndian as LE;
use object::pe::ImageNtHeaders64;
use object::read::archive::ArchiveFile;
use object::read::coff::{ImportFile, ImportType};
use object::read::pe::{Import, PeFile64};
use object::{Architecture, Object};

/// The programs' sources, compiled by this test (they are not test targets of their own).
const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/msvc_link");

/// Every function the program calls, by the DLL whose import library provides it.
const IMPORTS: &[(&str, &[&str])] = &[
    (
        "llama.dll",
        &["llama_max_devices", "llama_print_system_info"],
    ),
    (
        "ggml.dll",
        &[
            "ggml_backend_dev_count",
            "ggml_backend_dev_get",
            "ggml_backend_load_all",
        ],
    ),
    (
        "ggml-base.dll",
        &["ggml_backend_dev_description", "ggml_backend_dev_name"],
    ),
    (
        "kernel32.dll",
        &["ExitProcess", "GetStdHandle", "WriteFile"],
    ),
];

/// The import libraries staging generates that the program links.
const LLAMA_LIBS: &[&str] = &["llama", "ggml", "ggml-base"];

/// The system DLLs a `std` program imports from (what rustc's std names with `#[link]`, plus
/// the C runtime's DLLs: `msvcrt.lib` is not used).
const SYSTEM_DLLS: &[&str] = &[
    "kernel32",
    "ntdll",
    "userenv",
    "ws2_32",
    "dbghelp",
    "ucrtbase",
    "vcruntime140",
];

const X64: &str = "x86_64-pc-windows-msvc";
const ARM64: &str = "aarch64-pc-windows-msvc";

/// `IMAGE_FILE_MACHINE_ARM64`.
const MACHINE_ARM64: u16 = 0xAA64;

#[test]
fn a_no_crt_msvc_program_links_with_lld_link_against_the_official_dlls_and_runs_under_wine() {
    let dir = tempfile::tempdir().unwrap();
    let app = Staged::new(dir.path());
    let exe = app.dir.join("hello_llama.exe");
    let started = Instant::now();
    link(X64, Program::NoCrt, &[&app.dir, &app.sys], &exe).unwrap();
    eprintln!(
        "linked {X64} without a C runtime in {:.1?}",
        started.elapsed()
    );
    check_imports(&exe, Architecture::X86_64, &app.hints(true), true);
    run_and_check(&exe, dir.path());
}

#[test]
fn a_std_msvc_program_links_with_lld_link_and_a_crt_stand_in_and_runs_under_wine() {
    let dir = tempfile::tempdir().unwrap();
    let app = Staged::new(dir.path());
    let exe = app.dir.join("hello_llama_std.exe");
    let started = Instant::now();
    link(X64, Program::Std, &[&app.dir, &app.sys], &exe).unwrap();
    eprintln!("linked {X64} with std in {:.1?}", started.elapsed());
    // std imports much from the system DLLs; only the llama/ggml imports are pinned down.
    check_imports(&exe, Architecture::X86_64, &app.hints(false), false);
    run_and_check(&exe, dir.path());
}

#[test]
fn cargo_build_for_x86_64_msvc_links_through_the_build_script_and_runs_under_wine() {
    // A downstream crate depending on llama-prebuilt-sys, built the way a user builds it:
    // the build script stages the official DLLs (LLAMA_LIB_DIR: the download path of the same
    // zip is the windows-gnu e2e's), writes the import libraries, generates bindings for the
    // target and emits `rustc-link-lib=dylib=llama` etc.; copy-dylibs puts the DLLs next to
    // the exe. b10605's headers are not the vendored ones, so bindgen runs, for the target
    // (MSVC's C headers are not here: the build script gives clang bindings/include-shim/).
    // What differs from a Windows machine: lld-link for link.exe, and the CRT stand-in with
    // import libraries of wine's DLLs for Visual Studio's runtime.
    let dir = tempfile::tempdir().unwrap();
    let app = Staged::new(dir.path());
    let include = b10605_include_dir(&dir.path().join("include"));
    let stand_in = dir.path().join("crt_stand_in.obj");
    compile_crt_stand_in(X64, &stand_in).unwrap();

    let crate_dir = dir.path().join("downstream");
    fs::create_dir_all(crate_dir.join("src")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"msvc-downstream\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nllama-prebuilt-sys = {{ path = {:?} }}\n\n[workspace]\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
    // The workspace's versions, resolved without the registry.
    fs::copy(repo.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    fs::copy(
        Path::new(SOURCES).join("downstream_main.rs"),
        crate_dir.join("src/main.rs"),
    )
    .unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--target", X64]).current_dir(&crate_dir);
    // Only the environment stated here (not the outer test run's mirror, tag, flags).
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("LLAMA_")
            || key.starts_with("CARGO_TARGET_")
            || key.contains("RUSTFLAGS")
        {
            cmd.env_remove(&*key);
        }
    }
    let rustflags = format!(
        "-C linker-flavor=lld-link -C link-arg=/NODEFAULTLIB -L native={} \
         -C link-arg=ucrtbase.lib -C link-arg=vcruntime140.lib -C link-arg={}",
        app.sys.display(),
        stand_in.display()
    );
    // Kept between runs (cargo locks it against concurrent builds): a fresh one compiles the
    // build script's dependencies (bindgen, ureq, rustls, ...) for minutes every time.
    let target_dir = fixture::fixtures_root()
        .unwrap()
        .join("cargo-target-msvc-downstream");
    cmd.env("CARGO_TARGET_DIR", &target_dir)
        .env("LLAMA_LIB_DIR", &app.release)
        .env("LLAMA_INCLUDE_DIR", &include)
        .env("LLAMA_PREBUILT_VERSION", "b10605")
        .env("LLAMA_PREBUILT_CACHE_DIR", dir.path().join("cache"))
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER",
            rust_lld().unwrap(),
        )
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_RUSTFLAGS", rustflags);
    let started = Instant::now();
    run(cmd).unwrap();
    eprintln!("cargo build --target {X64}: {:.0?}", started.elapsed());

    let out = target_dir.join(X64).join("debug");
    let exe = out.join("msvc-downstream.exe");
    for stem in LLAMA_LIBS {
        assert!(
            out.join(format!("{stem}.dll")).is_file(),
            "copy-dylibs: {stem}"
        );
    }
    // The DLLs' hints: the import libraries came from these very DLLs.
    check_imports(&exe, Architecture::X86_64, &app.hints(false), false);
    run_and_check(&exe, dir.path());
}

#[test]
fn the_same_program_links_for_aarch64_msvc_against_arm64_import_libraries() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    extract_dlls(&release);
    let kernel32 = wine::wine()
        .unwrap()
        .system_dlls()
        .unwrap()
        .join("kernel32.dll");
    let libs = dir.path().join("arm64");
    fs::create_dir_all(&libs).unwrap();
    let mut dlls: Vec<(&str, PathBuf)> = LLAMA_LIBS
        .iter()
        .map(|stem| (*stem, release.join(format!("{stem}.dll"))))
        .collect();
    dlls.push(("kernel32", kernel32.clone()));
    for (stem, dll) in &dlls {
        let mut exports = implib::read_exports(&fs::read(dll).unwrap()).unwrap();
        assert_eq!(exports.machine, 0x8664, "{}", dll.display());
        exports.machine = MACHINE_ARM64;
        let lib = implib::import_library(&format!("{stem}.dll"), &exports).unwrap();
        fs::write(libs.join(format!("{stem}.lib")), lib).unwrap();
    }

    let exe = dir.path().join("hello_llama_arm64.exe");
    link(ARM64, Program::NoCrt, &[&libs], &exe).unwrap();
    let dlls: Vec<(String, PathBuf)> = dlls
        .into_iter()
        .map(|(stem, path)| (format!("{stem}.dll"), path))
        .collect();
    check_imports(&exe, Architecture::Aarch64, &hints(&dlls), true);
}

#[test]
fn arm64_dlls_made_by_lld_link_give_import_libraries_equal_to_its_own() {
    // No ARM64 build of llama.cpp is at hand, so ARM64 DLLs exporting the functions the
    // program calls are made here by lld-link itself: their export tables are read by our PE
    // reader from a real linker's ARM64 image (not a synthetic one), and lld-link's own import
    // library of each (`/IMPLIB`) is the reference for ours.
    let dir = tempfile::tempdir().unwrap();
    let dlls = dir.path().join("dlls");
    let libs = dir.path().join("libs");
    fs::create_dir_all(&dlls).unwrap();
    fs::create_dir_all(&libs).unwrap();
    let mut for_hints = Vec::new();
    for (dll_name, functions) in IMPORTS {
        let dll = dlls.join(dll_name);
        stub_dll(ARM64, functions, &dll).unwrap();
        let exports = implib::read_exports(&fs::read(&dll).unwrap()).unwrap();
        assert_eq!(exports.machine, MACHINE_ARM64, "{dll_name}");
        assert_eq!(exports.name.as_deref(), Some(*dll_name));
        let stem = dll_name.strip_suffix(".dll").unwrap();
        let ours = libs.join(format!("{stem}.lib"));
        implib::write_import_library(&dll, &ours).unwrap();
        let theirs = dlls.join(format!("{dll_name}.lib"));
        let members = import_members(&fs::read(&ours).unwrap());
        assert_eq!(members.len(), functions.len(), "{dll_name}: {members:?}");
        assert_eq!(
            members,
            import_members(&fs::read(&theirs).unwrap()),
            "{dll_name}: our import members vs lld-link's"
        );
        for_hints.push((dll_name.to_string(), dll));
    }
    let exe = dir.path().join("hello_llama_arm64.exe");
    link(ARM64, Program::NoCrt, &[&libs], &exe).unwrap();
    check_imports(&exe, Architecture::Aarch64, &hints(&for_hints), true);
}

#[test]
fn a_missing_import_library_fails_the_link_naming_it() {
    // The negative control: without ggml-base.lib lld-link must refuse, so the positive tests
    // cannot pass through some other library it found on its own.
    let dir = tempfile::tempdir().unwrap();
    let app = Staged::new(dir.path());
    fs::remove_file(app.dir.join("ggml-base.lib")).unwrap();
    for program in [Program::NoCrt, Program::Std] {
        let err = link(X64, program, &[&app.dir, &app.sys], &app.dir.join("x.exe")).unwrap_err();
        assert!(
            err.contains("rust-lld: error: could not open 'ggml-base.lib'"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_rust_target_says_how_to_install_it() {
    assert_eq!(
        check_target("x86_64-pc-windows-nosuchenv").unwrap_err(),
        "the Rust target x86_64-pc-windows-nosuchenv is not installed: run \
         `rustup target add x86_64-pc-windows-nosuchenv` (`cargo xtask test` does)"
    );
}

/// The two builds of the program.
#[derive(Clone, Copy, Debug)]
enum Program {
    /// `hello_llama.rs`: `#![no_std]`, `#![no_main]`, its own entry point, `panic=abort`.
    NoCrt,
    /// `hello_llama_std.rs`, a normal program, with `crt_stand_in.rs` for the static CRT.
    Std,
}

/// The official DLLs staged as a build script stages them (import libraries written), and
/// import libraries of wine's system DLLs in a dir of their own.
struct Staged {
    /// The official DLLs as extracted from the zip.
    release: PathBuf,
    /// The staged release: DLLs, the generated `.lib`s; the executables go here too.
    dir: PathBuf,
    /// `<dll>.lib` for each of [`SYSTEM_DLLS`], made by our writer from wine's DLLs.
    sys: PathBuf,
    /// Wine's `kernel32.dll`.
    kernel32: PathBuf,
}

impl Staged {
    fn new(root: &Path) -> Staged {
        let release = root.join("release");
        let dir = root.join("app");
        extract_dlls(&release);
        let staged = linking::stage(&release, &dir, LibOs::Windows).unwrap();
        for stem in LLAMA_LIBS {
            assert!(staged.contains(&dir.join(format!("{stem}.lib"))), "{stem}");
        }
        let system = wine::wine().unwrap().system_dlls().unwrap();
        let sys = root.join("sys");
        fs::create_dir_all(&sys).unwrap();
        for stem in SYSTEM_DLLS {
            let dll = system.join(format!("{stem}.dll"));
            implib::write_import_library(&dll, &sys.join(format!("{stem}.lib"))).unwrap();
        }
        Staged {
            kernel32: system.join("kernel32.dll"),
            release,
            dir,
            sys,
        }
    }

    /// The expected imports and hints of the llama/ggml DLLs, and of kernel32 if `kernel32`.
    fn hints(&self, kernel32: bool) -> BTreeMap<(String, String), u16> {
        let mut dlls: Vec<(String, PathBuf)> = LLAMA_LIBS
            .iter()
            .map(|stem| (format!("{stem}.dll"), self.dir.join(format!("{stem}.dll"))))
            .collect();
        if kernel32 {
            dlls.push(("kernel32.dll".to_owned(), self.kernel32.clone()));
        }
        hints(&dlls)
    }
}

/// Runs `exe` under wine from `cwd` (not the exe's folder: the DLLs and the backends must be
/// found next to the exe) and checks what it reports.
fn run_and_check(exe: &Path, cwd: &Path) {
    let wine = wine::wine().unwrap();
    let started = Instant::now();
    let mut cmd = wine.command(exe);
    cmd.current_dir(cwd);
    let out = wine.run(cmd, Duration::from_secs(120)).unwrap();
    eprintln!("ran under wine in {:.1?}", started.elapsed());
    let stdout = out.stdout_text();
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        out.stderr_text()
    );
    let report = Report::parse(&stdout);
    assert!(
        report.system_info.contains("CPU : ") && report.system_info.contains("SSE3 = 1"),
        "{stdout}"
    );
    assert!(report.max_devices >= 1, "{stdout}");
    assert_eq!(report.devices.len(), report.device_count, "{stdout}");
    assert!(
        report.devices.iter().any(|(name, _)| name == "CPU"),
        "no CPU device:\n{stdout}"
    );
    eprintln!("{stdout}");
}

/// The program's output, line by line (see its module docs).
struct Report {
    system_info: String,
    max_devices: usize,
    device_count: usize,
    /// (name, description) per device.
    devices: Vec<(String, String)>,
}

impl Report {
    fn parse(stdout: &str) -> Report {
        let mut fields = BTreeMap::new();
        let mut devices = Vec::new();
        for line in stdout.lines() {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{line:?} in\n{stdout}"));
            if key == "device" {
                let (name, description) = value.split_once(" | ").unwrap();
                devices.push((name.to_owned(), description.to_owned()));
            } else {
                fields.insert(key, value);
            }
        }
        let number = |key: &str| -> usize {
            fields
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no number {key} in\n{stdout}"))
        };
        Report {
            system_info: fields["system_info"].to_owned(),
            max_devices: number("max_devices"),
            device_count: number("devices"),
            devices,
        }
    }
}

/// b10605's headers (from its sdist) in one directory, as `LLAMA_INCLUDE_DIR` wants them.
fn b10605_include_dir(dest: &Path) -> PathBuf {
    let tree = second_tag::source_files().unwrap();
    fs::create_dir_all(dest).unwrap();
    for path in second_tag::FILES.iter().filter(|f| f.ends_with(".h")) {
        let name = Path::new(path).file_name().unwrap();
        fs::copy(tree.join(path), dest.join(name)).unwrap();
    }
    dest.to_path_buf()
}

/// Extracts every DLL of the official b10605 Windows x64 CPU zip (the CPU backend variants
/// and `libomp.dll` are loaded at run time) into `dest`.
fn extract_dlls(dest: &Path) {
    let zip_path = official::win_cpu_x64_b10605().unwrap();
    let archive = zip::ZipArchive::new(fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .filter(|n| n.ends_with(".dll") && !n.contains('/'))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(names.contains(&"llama.dll"), "{names:?}");
    official::extract_entries(&zip_path, &names, dest).unwrap();
}

/// rustup ships `rust-lld` with every toolchain, beside the host's target libraries.
fn rust_lld() -> Result<PathBuf, String> {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let lld = libdir.with_file_name("bin").join("rust-lld");
    if lld.is_file() {
        Ok(lld)
    } else {
        Err(format!(
            "{} is missing: this toolchain has no rust-lld (rustup installs it with rustc)",
            lld.display()
        ))
    }
}

/// The standard library of `target` is installed (`rustc` finds `core` there).
fn check_target(target: &str) -> Result<(), String> {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_core = fs::read_dir(&dir).is_ok_and(|mut d| {
        d.any(|e| {
            e.is_ok_and(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("libcore-"))
            })
        })
    });
    if has_core {
        Ok(())
    } else {
        Err(format!(
            "the Rust target {target} is not installed: run `rustup target add {target}` \
             (`cargo xtask test` does)"
        ))
    }
}

/// Compiles and links `program` for `target` with `rust-lld -flavor link`, searching only
/// `lib_dirs` for libraries and with no default libraries (`/NODEFAULTLIB`: no `msvcrt.lib`,
/// nothing of a Windows SDK). The error carries rustc's (and the linker's) output.
fn link(target: &str, program: Program, lib_dirs: &[&Path], exe: &Path) -> Result<(), String> {
    check_target(target)?;
    let lld = rust_lld()?;
    let mut cmd = Command::new("rustc");
    cmd.args(["--edition=2024", "--target", target])
        .args(["-D", "warnings", "-C", "opt-level=1"])
        .arg("-C")
        .arg(format!("linker={}", lld.display()))
        .args([
            "-C",
            "linker-flavor=lld-link",
            "-C",
            "link-arg=/NODEFAULTLIB",
        ]);
    for dir in lib_dirs {
        cmd.arg("-L").arg(format!("native={}", dir.display()));
    }
    let source = match program {
        Program::NoCrt => {
            // Our own entry point; `panic=abort`, so nothing unwinds.
            cmd.args(["-C", "panic=abort"])
                .args(["-C", "link-arg=/ENTRY:mainCRTStartup"])
                .args(["-C", "link-arg=/SUBSYSTEM:CONSOLE"]);
            "hello_llama.rs"
        }
        Program::Std => {
            let stand_in = exe.with_file_name("crt_stand_in.obj");
            compile_crt_stand_in(target, &stand_in)?;
            // What msvcrt.lib would bring: the C runtime's DLLs and its static objects.
            cmd.args([
                "-C",
                "link-arg=ucrtbase.lib",
                "-C",
                "link-arg=vcruntime140.lib",
            ])
            .arg("-C")
            .arg(format!("link-arg={}", stand_in.display()));
            "hello_llama_std.rs"
        }
    };
    cmd.arg("-o").arg(exe).arg(Path::new(SOURCES).join(source));
    run(cmd)
}

/// A `no_std` DLL for `target` exporting `functions` (empty bodies), linked by lld-link with
/// no entry point; lld-link also writes its import library as `<dll>.lib`.
fn stub_dll(target: &str, functions: &[&str], dll: &Path) -> Result<(), String> {
    let mut source = String::from("#![no_std]\n");
    for f in functions {
        source.push_str(&format!(
            "#[unsafe(no_mangle)]\npub extern \"C\" fn {f}() {{}}\n"
        ));
    }
    source.push_str(
        "#[panic_handler]\nfn panic(_: &core::panic::PanicInfo) -> ! {\n    loop {}\n}\n",
    );
    let src = dll.with_extension("rs");
    fs::write(&src, source).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let lld = rust_lld()?;
    let mut cmd = Command::new("rustc");
    cmd.args(["--edition=2024", "--crate-type=cdylib", "--crate-name=stub"])
        .args(["--target", target, "-C", "panic=abort", "-C", "opt-level=1"])
        .arg("-C")
        .arg(format!("linker={}", lld.display()))
        .args([
            "-C",
            "linker-flavor=lld-link",
            "-C",
            "link-arg=/NODEFAULTLIB",
        ])
        .args(["-C", "link-arg=/NOENTRY"])
        .arg("-o")
        .arg(dll)
        .arg(&src);
    run(cmd)
}

/// The short import members of an import library: (symbol, DLL, code or data), sorted.
fn import_members(lib: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    let archive = ArchiveFile::parse(lib).unwrap();
    let mut out: Vec<_> = archive
        .members()
        .filter_map(|m| {
            let data = m.unwrap().data(lib).unwrap();
            let import = ImportFile::parse(data).ok()?;
            assert_eq!(import.architecture(), Architecture::Aarch64);
            Some((
                import.symbol().to_vec(),
                import.dll().to_vec(),
                import.import_type() == ImportType::Code,
            ))
        })
        .collect();
    out.sort();
    out
}

/// `crt_stand_in.rs` as one object file.
fn compile_crt_stand_in(target: &str, obj: &Path) -> Result<(), String> {
    let mut cmd = Command::new("rustc");
    cmd.args([
        "--edition=2024",
        "--crate-type=lib",
        "--emit=obj",
        "--target",
        target,
    ])
    .args(["-D", "warnings", "-C", "panic=abort", "-C", "opt-level=1"])
    .arg("-o")
    .arg(obj)
    .arg(Path::new(SOURCES).join("crt_stand_in.rs"));
    run(cmd)
}

fn run(mut cmd: Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// For each of [`IMPORTS`], the hint the DLL's export table gives it (its index in the name
/// pointer table), which the import library carries into the executable.
fn hints(dlls: &[(String, PathBuf)]) -> BTreeMap<(String, String), u16> {
    let mut out = BTreeMap::new();
    for (dll_name, path) in dlls {
        let exports: DllExports = implib::read_exports(&fs::read(path).unwrap()).unwrap();
        let (_, functions) = IMPORTS.iter().find(|(d, _)| d == dll_name).unwrap();
        for function in *functions {
            let export = exports
                .exports
                .iter()
                .find(|e| e.name == *function)
                .unwrap_or_else(|| panic!("{dll_name} does not export {function}"));
            out.insert((dll_name.to_string(), function.to_string()), export.hint);
        }
    }
    out
}

/// The executable's import directory names, from each DLL in `hints`, exactly the functions
/// there, by name, with the DLL's hints; if `exact`, no other DLL either.
fn check_imports(
    exe: &Path,
    arch: Architecture,
    hints: &BTreeMap<(String, String), u16>,
    exact: bool,
) {
    let data = fs::read(exe).unwrap();
    let pe = PeFile64::parse(&*data).unwrap();
    assert_eq!(pe.architecture(), arch);
    let table = pe.import_table().unwrap().expect("an import directory");
    let mut found = BTreeMap::new();
    let mut descriptors = table.descriptors().unwrap();
    while let Some(descriptor) = descriptors.next().unwrap() {
        let dll = String::from_utf8(table.name(descriptor.name.get(LE)).unwrap().to_vec()).unwrap();
        let mut thunks = table
            .thunks(descriptor.original_first_thunk.get(LE))
            .unwrap();
        while let Some(thunk) = thunks.next::<ImageNtHeaders64>().unwrap() {
            match table.import::<ImageNtHeaders64>(thunk).unwrap() {
                Import::Name(hint, name) => {
                    let name = String::from_utf8(name.to_vec()).unwrap();
                    found.insert((dll.clone(), name), hint);
                }
                Import::Ordinal(n) => panic!("{dll}: import by ordinal {n}"),
            }
        }
    }
    if !exact {
        found.retain(|(dll, _), _| hints.keys().any(|(d, _)| d == dll));
    }
    assert_eq!(&found, hints, "{}", exe.display());
}
