//! Vulkan end to end on Mesa's software Vulkan device (lavapipe), and the fallback to the CPU.
//!
//! The backend is initialised from the Vulkan fixture (`ubuntu-vulkan-x64` layout: the CPU
//! fixture's libraries plus `libggml-vulkan.so`, all built from b10199's source). lavapipe is
//! a CPU-type Vulkan device, which ggml only uses when named in `GGML_VK_VISIBLE_DEVICES`.
//!
//! - All layers of the tiny model and of SmolLM2 offloaded to lavapipe give the greedy tokens
//!   of the same build's CPU backend; on a divergence the test prints the first diverging
//!   position and the logit gaps there and fails.
//! - `Model::offload` equals what llama.cpp logs ("offloaded N/M layers to GPU").
//! - Fallback, in child processes of this test binary: with no Vulkan driver
//!   (`VK_ICD_FILENAMES` pointing at nothing) and with no Vulkan loader (`libvulkan.so.1`
//!   hidden in a private mount namespace), the same build runs on the CPU, and the backend
//!   reports that `vulkan` did not load and why; GPU layers then warn, or fail with
//!   `Error::NoGpuDevice` when `require_gpu` is set.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use llama_prebuilt::{
    Backend, BackendLoadError, BackendStatus, Batch, ContextParams, DeviceKind, Error, GpuLayers,
    Model, ModelParams, Token,
};
use llama_prebuilt_test_support::{fixture, gguf, models};

/// What the machine offers this process: set by the fallback tests for their children.
const EXPECT: &str = "LLAMA_PREBUILT_TEST_VULKAN_EXPECT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// lavapipe is there (the normal run).
    Lavapipe,
    /// The loader is there, no driver.
    NoDriver,
    /// No `libvulkan.so.1`.
    NoLoader,
}

fn expect() -> Expect {
    match std::env::var(EXPECT).as_deref() {
        Ok("no-driver") => Expect::NoDriver,
        Ok("no-loader") => Expect::NoLoader,
        _ => Expect::Lavapipe,
    }
}

fn vulkan_lib_dir() -> PathBuf {
    fixture::fixture_vulkan()
        .unwrap_or_else(|e| panic!("Vulkan fixture: {e}"))
        .lib_dir
        .clone()
}

/// The runtime, from the Vulkan fixture, with lavapipe selected.
fn backend() -> &'static Backend {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        if std::env::var_os("GGML_VK_VISIBLE_DEVICES").is_none() {
            // SAFETY: every test of this binary comes through here before anything reads the
            // environment (llama.cpp reads it while registering backends, below).
            unsafe { std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0") };
        }
        capture_log();
        vulkan_lib_dir()
    });
    Backend::init_with_lib_dir(dir).unwrap_or_else(|e| panic!("backend: {e}"))
}

/// llama.cpp's and the crate's log lines.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn capture_log() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
}

/// Log lines containing `needle` logged from now on by `f`.
fn logged_during<T>(needle: &str, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let start = CAPTURE.0.lock().unwrap().len();
    let out = f();
    let lines = CAPTURE.0.lock().unwrap()[start..]
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect();
    (out, lines)
}

/// Model loads are serialised so that each one's log lines are its own.
static LOADS: Mutex<()> = Mutex::new(());

fn load_logged(path: &Path, params: &ModelParams) -> (llama_prebuilt::Result<Model>, Vec<String>) {
    let _one = LOADS.lock().unwrap_or_else(|p| p.into_inner());
    logged_during("", || Model::load(path, params))
}

/// This test runs in every environment and checks that what the backend reports matches it:
/// the lavapipe device in the normal run, the reason Vulkan did not load in the children of
/// the fallback tests (which run exactly this test).
#[test]
fn backend_report_matches_the_machine() {
    let backend = backend();
    let vulkan = backend
        .backend_libraries()
        .iter()
        .find(|l| l.name == "vulkan")
        .unwrap_or_else(|| panic!("no vulkan module in {:?}", backend.backend_libraries()))
        .clone();
    let cpu_loaded = backend.backend_loaded("cpu");
    assert!(cpu_loaded, "{:?}", backend.backend_libraries());
    let vulkan_devices: Vec<_> = backend
        .devices()
        .into_iter()
        .filter(|d| d.backend == "Vulkan")
        .collect();
    println!("expect {:?}; vulkan module: {:?}", expect(), vulkan.status);
    match expect() {
        Expect::Lavapipe => {
            assert_eq!(
                vulkan.status,
                BackendStatus::Loaded {
                    registered_as: "Vulkan".into(),
                    devices: 1
                }
            );
            assert_eq!(vulkan_devices.len(), 1, "{:?}", backend.devices());
            let d = &vulkan_devices[0];
            assert_eq!(d.name, "Vulkan0");
            assert!(
                matches!(d.kind, DeviceKind::Gpu | DeviceKind::IntegratedGpu),
                "{d:?}"
            );
            assert!(d.description.contains("llvmpipe"), "{d:?}");
            assert!(backend.supports_gpu_offload());
        }
        Expect::NoDriver | Expect::NoLoader => {
            assert!(vulkan_devices.is_empty(), "{vulkan_devices:?}");
            let BackendStatus::NotLoaded(why) = &vulkan.status else {
                panic!("Vulkan loaded without a driver: {vulkan:?}");
            };
            if expect() == Expect::NoDriver {
                assert_eq!(*why, BackendLoadError::InitFailed);
                assert_eq!(
                    why.to_string(),
                    "it loaded, but its initialisation found nothing to run on (for Vulkan: no driver could create an instance)"
                );
            } else {
                let BackendLoadError::Library { message } = why else {
                    panic!("{why:?}");
                };
                assert!(message.contains("libvulkan.so.1"), "{message}");
                assert!(
                    why.to_string()
                        .starts_with("the dynamic loader could not load it: "),
                    "{why}"
                );
            }
            // (`supports_gpu_offload` stays true: the RPC backend counts as one.)
            assert!(
                backend
                    .devices()
                    .iter()
                    .all(|d| matches!(d.kind, DeviceKind::Cpu | DeviceKind::Accelerator)),
                "{:?}",
                backend.devices()
            );
            fallback_runs_on_the_cpu(&why.to_string());
        }
    }
}

/// Without a Vulkan device: GPU layers fall back to the CPU with a warning naming why Vulkan
/// did not load, `require_gpu` turns that into `Error::NoGpuDevice`, and generation works.
fn fallback_runs_on_the_cpu(why: &str) {
    let tiny = gguf::tiny_model();
    let (model, warnings) = load_logged(&tiny, &ModelParams::default().n_gpu_layers(5));
    let model = model.expect("the model loads on the CPU");
    let warning = warnings
        .iter()
        .find(|l| l.contains("GPU layers requested"))
        .unwrap_or_else(|| panic!("no fallback warning in {warnings:?}"));
    assert!(
        warning.starts_with(&format!(
            "WARN 5 GPU layers requested, but no GPU device is available; not loaded: vulkan ({why})"
        )) && warning.ends_with("; running on the CPU"),
        "{warning}"
    );
    assert_eq!(model.offload().gpu_layers(), 0);
    assert_eq!(model.offload().cpu_layers(), model.n_layer() + 1);
    let (tokens, _) = common::greedy_like_reference(&model, "hello", 8, 2);
    assert!(!tokens.is_empty());

    for requested in [GpuLayers::All, GpuLayers::Count(3)] {
        let err = Model::load(
            &tiny,
            &ModelParams::default()
                .gpu_layers(requested)
                .require_gpu(true),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoGpuDevice { .. }), "{err:?}");
        let what = match requested {
            GpuLayers::All => "all".to_string(),
            GpuLayers::Count(n) => n.to_string(),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "GPU offload is required ({what} layers), but no GPU device is available; not loaded: vulkan ({why})"
            )
        );
    }
    // The default (all layers, not required) is the plain CPU case: no warning.
    let (model, warnings) = load_logged(&tiny, &ModelParams::default());
    model.unwrap();
    assert!(
        !warnings.iter().any(|l| l.contains("GPU layers requested")),
        "{warnings:?}"
    );
}

/// Runs this binary's `backend_report_matches_the_machine` in a child with `env` and, if
/// given, inside `wrapper` (a program and its arguments before ours).
fn run_child(expect: &str, env: &[(&str, &str)], wrapper: &[&str]) {
    // Built (or loaded) here first: a child must never be the one that builds the fixture (the
    // no-loader child cannot link the Vulkan backend).
    let _ = vulkan_lib_dir();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args([
        "backend_report_matches_the_machine",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(EXPECT, expect)
    .env("GGML_VK_VISIBLE_DEVICES", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child ({expect}) stdout:\n{stdout}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child ({expect}) failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

#[test]
fn without_a_vulkan_driver_the_same_build_runs_on_the_cpu() {
    // The loader is installed but finds no driver manifest.
    let none = "/nonexistent/vulkan-icd.json";
    run_child(
        "no-driver",
        &[("VK_ICD_FILENAMES", none), ("VK_DRIVER_FILES", none)],
        &[],
    );
}

/// `libvulkan.so.1` is made unfindable for the child only: in a private mount namespace
/// (`unshare -m`, root), the system library directory is replaced by a directory of links to
/// everything in it except the Vulkan loader.
const HIDE_LOADER: &str = r#"set -e
lib="$1"; orig="$2"; farm="$3"; shift 3
mount --bind "$lib" "$orig"
for f in "$orig"/*; do
  n="${f##*/}"
  case "$n" in libvulkan.so*) ;; *) ln -s "$f" "$farm/$n" ;; esac
done
mount --bind "$farm" "$lib"
exec "$@"
"#;

#[test]
fn without_the_vulkan_loader_the_same_build_runs_on_the_cpu() {
    let lib = "/usr/lib/x86_64-linux-gnu";
    assert!(
        Path::new(lib).join("libvulkan.so.1").exists(),
        "libvulkan.so.1 is not installed in {lib}: run `cargo xtask test` (it installs libvulkan1)"
    );
    let probe = Command::new("unshare").args(["-m", "true"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test hides the Vulkan loader in a mount namespace and needs `unshare -m` (util-linux, as root): {probe:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (orig, farm) = (tmp.path().join("orig"), tmp.path().join("farm"));
    std::fs::create_dir(&orig).unwrap();
    std::fs::create_dir(&farm).unwrap();
    let (orig, farm) = (orig.to_str().unwrap(), farm.to_str().unwrap());
    run_child(
        "no-loader",
        &[],
        &[
            "unshare",
            "-m",
            "sh",
            "-c",
            HIDE_LOADER,
            "hide-loader",
            lib,
            orig,
            farm,
        ],
    );
}

/// Greedy tokens, and at each generated position the logits' top two and the logit of the
/// token the other run chose, for explaining a divergence.
struct Run {
    tokens: Vec<Token>,
    logits: Vec<Vec<f32>>,
}

/// Greedy generation of `n` tokens after `prompt`, one decode per token.
fn greedy_with_logits(model: &Model, prompt: &[Token], n: usize) -> Run {
    let params = ContextParams::default()
        .n_ctx(prompt.len() as u32 + n as u32 + 1)
        .n_batch(prompt.len() as u32)
        .n_ubatch(prompt.len() as u32)
        .n_threads(2);
    let mut ctx = model.new_context(&params).unwrap();
    ctx.decode(&Batch::for_sequence(prompt, 0, 0).unwrap())
        .unwrap();
    let mut tokens = Vec::new();
    let mut logits = Vec::new();
    let start = prompt.len() as i32;
    for pos in start..start + n as i32 {
        let l = ctx.last_logits().unwrap().to_vec();
        let best = argmax(&l);
        logits.push(l);
        let token = Token::from(best as i32);
        tokens.push(token);
        ctx.decode(&Batch::for_sequence(&[token], pos, 0).unwrap())
            .unwrap();
    }
    Run { tokens, logits }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

/// Offloads every layer of `path` to lavapipe and compares with the CPU backend of the same
/// build, token by token; prints the figures either way. Unless `identical_required`, a
/// divergence passes when it is explained: at the first differing position both runs' choices
/// are closer than the two backends' logits are apart there (a near tie that rounding swaps).
fn parity(name: &str, path: &Path, prompt: &str, n: usize, identical_required: bool) {
    let backend = backend();
    let vulkan0 = backend
        .devices()
        .into_iter()
        .find(|d| d.backend == "Vulkan")
        .expect("lavapipe is registered");

    let (cpu_model, _) = load_logged(path, &ModelParams::default().n_gpu_layers(0));
    let cpu_model = cpu_model.unwrap();
    let (gpu_model, log) = load_logged(path, &ModelParams::default().gpu_layers(GpuLayers::All));
    let gpu_model = gpu_model.unwrap();

    // The offload report against llama.cpp's own log line.
    let offload = gpu_model.offload();
    let total = gpu_model.n_layer() + 1;
    assert_eq!(offload.total_layers, total);
    assert_eq!(offload.devices.len(), 1, "{offload:?}");
    assert_eq!(offload.devices[0].0, vulkan0);
    assert_eq!(offload.devices[0].1, total);
    assert_eq!(offload.cpu_layers(), 0);
    let line = format!("offloaded {}/{} layers to GPU", offload.gpu_layers(), total);
    assert!(
        log.iter().any(|l| l.contains(&line)),
        "no {line:?} in the load log"
    );
    let cpu_offload = cpu_model.offload();
    assert_eq!(
        (cpu_offload.gpu_layers(), cpu_offload.cpu_layers()),
        (0, total)
    );
    let cpu_line = format!("offloaded 0/{total} layers to GPU");
    println!("{name}: {line} (CPU run: {cpu_line})");

    let prompt_tokens = cpu_model.tokenize(prompt, true).unwrap();
    let cpu = greedy_with_logits(&cpu_model, &prompt_tokens, n);
    let gpu = greedy_with_logits(&gpu_model, &prompt_tokens, n);
    let max_diff = cpu
        .logits
        .iter()
        .zip(&gpu.logits)
        .take_while(|(a, b)| argmax(a) == argmax(b))
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0f32, f32::max);
    let Some(at) = cpu.tokens.iter().zip(&gpu.tokens).position(|(a, b)| a != b) else {
        println!(
            "{name}: {n} greedy tokens identical on lavapipe and the CPU; largest logit difference {max_diff:.3e}"
        );
        return;
    };
    let (c, g) = (&cpu.logits[at], &gpu.logits[at]);
    let (tc, tg) = (cpu.tokens[at].id() as usize, gpu.tokens[at].id() as usize);
    // How far the two backends' logits are apart at that position: the noise band.
    let noise = c
        .iter()
        .zip(g)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let (cpu_margin, gpu_margin) = (c[tc] - c[tg], g[tg] - g[tc]);
    let figures = format!(
        "{name}: greedy tokens diverge at generated position {at} of {n} (the {at} before are identical): CPU picks {tc} (logit {:.4}; lavapipe gives it {:.4}), lavapipe picks {tg} (logit {:.4}; CPU gives it {:.4}); CPU margin {cpu_margin:.4}, lavapipe margin {gpu_margin:.4}; largest logit difference there {noise:.4}, before it {max_diff:.4}",
        c[tc], g[tc], g[tg], c[tg]
    );
    println!("{figures}");
    assert!(
        !identical_required,
        "{figures}; this model must give identical tokens"
    );
    // Explained: a near tie, the two candidates closer in both runs than the backends' logits
    // differ at that position, so rounding alone can swap them.
    assert!(
        cpu_margin < noise && gpu_margin < noise,
        "{figures}: not explained by rounding"
    );
}

#[test]
fn tiny_model_offloaded_to_lavapipe_matches_the_cpu() {
    // f32 weights: the two backends round alike closely enough for every token to agree.
    parity("tiny", &gguf::tiny_model(), "Hello, Vulkan", 32, true);
}

#[test]
fn smollm2_offloaded_to_lavapipe_matches_the_cpu() {
    let path = models::smollm2().unwrap_or_else(|e| panic!("SmolLM2: {e}"));
    parity("SmolLM2-135M", &path, "The capital of France is", 32, false);
}

#[test]
fn require_gpu_with_no_offload_device_listed_is_an_error_naming_it() {
    let _ = backend();
    let err = Model::load(
        gguf::tiny_model(),
        &ModelParams::default()
            .devices(Vec::<&llama_prebuilt::Device>::new())
            .n_gpu_layers(4)
            .require_gpu(true),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GPU offload is required (4 layers), but no GPU device is available (every backend module loaded; none of the devices to use is a GPU)"
    );
}
