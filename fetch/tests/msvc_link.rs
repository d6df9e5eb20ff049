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
use llama_prebuilt_test_support::{official, wine};
use object::LittleEndian as LE;
use object::pe::ImageNtHeaders64;
use object::read::pe::{Import, PeFile64};
use object::{Architecture, Object};

/// The program, compiled by this test (it is not a test target of its own).
const PROGRAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/msvc_link/hello_llama.rs"
);

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

const X64: &str = "x86_64-pc-windows-msvc";
const ARM64: &str = "aarch64-pc-windows-msvc";

/// `IMAGE_FILE_MACHINE_ARM64`.
const MACHINE_ARM64: u16 = 0xAA64;

#[test]
fn a_no_crt_msvc_program_links_with_lld_link_against_the_official_dlls_and_runs_under_wine() {
    let wine = wine::wine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let app = dir.path().join("app");
    extract_dlls(&release);

    // What a build script does: stage the release's DLLs, which writes the import libraries.
    let staged = linking::stage(&release, &app, LibOs::Windows).unwrap();
    for stem in ["llama", "ggml", "ggml-base"] {
        assert!(staged.contains(&app.join(format!("{stem}.lib"))), "{stem}");
    }
    // kernel32.lib from wine's kernel32.dll, by the same writer; in a dir of its own so the
    // staged dir holds only what staging made.
    let sys = dir.path().join("sys");
    fs::create_dir_all(&sys).unwrap();
    let kernel32 = wine.system_dlls().unwrap().join("kernel32.dll");
    implib::write_import_library(&kernel32, &sys.join("kernel32.lib")).unwrap();

    let exe = app.join("hello_llama.exe");
    let started = Instant::now();
    link(X64, &[&app, &sys], &exe).unwrap();
    eprintln!("linked {X64} in {:.1?}", started.elapsed());

    let expected_hints = hints(&[
        ("llama.dll", &app.join("llama.dll")),
        ("ggml.dll", &app.join("ggml.dll")),
        ("ggml-base.dll", &app.join("ggml-base.dll")),
        ("kernel32.dll", &kernel32),
    ]);
    check_imports(&exe, Architecture::X86_64, &expected_hints);

    let started = Instant::now();
    let mut cmd = wine.command(&exe);
    // Elsewhere than the exe's folder: the DLLs and backends must be found next to the exe.
    cmd.current_dir(dir.path());
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
    let mut dlls: Vec<(&str, PathBuf)> = ["llama", "ggml", "ggml-base"]
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
    link(ARM64, &[&libs], &exe).unwrap();
    let expected_hints = hints(&[
        ("llama.dll", &release.join("llama.dll")),
        ("ggml.dll", &release.join("ggml.dll")),
        ("ggml-base.dll", &release.join("ggml-base.dll")),
        ("kernel32.dll", &kernel32),
    ]);
    check_imports(&exe, Architecture::Aarch64, &expected_hints);
}

#[test]
fn a_missing_import_library_fails_the_link_naming_it() {
    // The negative control: without ggml-base.lib lld-link must refuse, so the positive tests
    // cannot pass through some other library it found on its own.
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let app = dir.path().join("app");
    extract_dlls(&release);
    linking::stage(&release, &app, LibOs::Windows).unwrap();
    fs::remove_file(app.join("ggml-base.lib")).unwrap();
    let sys = dir.path().join("sys");
    fs::create_dir_all(&sys).unwrap();
    let kernel32 = wine::wine()
        .unwrap()
        .system_dlls()
        .unwrap()
        .join("kernel32.dll");
    implib::write_import_library(&kernel32, &sys.join("kernel32.lib")).unwrap();
    let err = link(X64, &[&app, &sys], &app.join("x.exe")).unwrap_err();
    assert!(
        err.contains("rust-lld: error: could not open 'ggml-base.lib'"),
        "{err}"
    );
}

#[test]
fn a_missing_rust_target_says_how_to_install_it() {
    assert_eq!(
        check_target("x86_64-pc-windows-nosuchenv").unwrap_err(),
        "the Rust target x86_64-pc-windows-nosuchenv is not installed: run \
         `rustup target add x86_64-pc-windows-nosuchenv` (`cargo xtask test` does)"
    );
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

/// Compiles and links [`PROGRAM`] for `target` with `rust-lld -flavor link`, searching only
/// `lib_dirs` for libraries. The error carries rustc's (and the linker's) output.
fn link(target: &str, lib_dirs: &[&Path], exe: &Path) -> Result<(), String> {
    check_target(target)?;
    let lld = rust_lld()?;
    let mut cmd = Command::new("rustc");
    cmd.args(["--edition=2024", "--crate-type=bin", "--target", target])
        .args(["-D", "warnings", "-C", "panic=abort", "-C", "opt-level=1"])
        .arg("-C")
        .arg(format!("linker={}", lld.display()))
        .args(["-C", "linker-flavor=lld-link"])
        // No C runtime: our own entry point, and no default libraries (msvcrt, the SDK's).
        .args(["-C", "link-arg=/ENTRY:mainCRTStartup"])
        .args(["-C", "link-arg=/SUBSYSTEM:CONSOLE"])
        .args(["-C", "link-arg=/NODEFAULTLIB"]);
    for dir in lib_dirs {
        cmd.arg("-L").arg(format!("native={}", dir.display()));
    }
    cmd.arg("-o").arg(exe).arg(PROGRAM);
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
fn hints(dlls: &[(&str, &Path)]) -> BTreeMap<(String, String), u16> {
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

/// The executable's import directory names exactly the DLLs of [`IMPORTS`] and, from each,
/// exactly its functions, by name, with the DLL's hints.
fn check_imports(exe: &Path, arch: Architecture, hints: &BTreeMap<(String, String), u16>) {
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
    assert_eq!(&found, hints, "{}", exe.display());
}
