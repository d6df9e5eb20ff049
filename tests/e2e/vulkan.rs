//! `LLAMA_PREBUILT_VARIANT=vulkan` end to end: a downstream crate that depends on the safe
//! crate builds through the normal build-script path against a loopback mirror serving the
//! Vulkan fixture archive (`llama-b10199-fixture-bin-ubuntu-vulkan-x64.tar.gz`), then runs on
//! Mesa's software Vulkan device (lavapipe): it lists the Vulkan device and generates with
//! every layer of the tiny model offloaded to it.

use std::path::Path;
use std::process::Command;

use llama_prebuilt_test_support::fixture::{self, VULKAN_PLATFORM};
use llama_prebuilt_test_support::gguf;
use llama_prebuilt_test_support::mirror::Mirror;

const MAIN_RS: &str = r#"
use llama_prebuilt::{Backend, BackendStatus, ContextParams, GenerateOptions, Model, ModelParams, Sampler};

fn main() {
    let backend = Backend::init().expect("backend");
    for d in backend.devices() {
        println!("device: {} {:?} {} [{}]", d.name, d.kind, d.description, d.backend);
    }
    for l in backend.backend_libraries() {
        match &l.status {
            BackendStatus::Loaded { registered_as, devices } => println!("module: {} loaded as {registered_as} ({devices} devices)", l.name),
            BackendStatus::NotLoaded(why) => println!("module: {} not loaded: {why}", l.name),
            _ => println!("module: {} ?", l.name),
        }
    }
    let path = std::env::args().nth(1).expect("model path");
    let model = Model::load(&path, &ModelParams::default().require_gpu(true)).expect("load");
    let o = model.offload();
    println!("offload: {}/{} layers on {}", o.gpu_layers(), o.total_layers, o.devices.iter().map(|(d, n)| format!("{}={n}", d.name)).collect::<Vec<_>>().join(","));
    let tokens = model.tokenize("hello", true).unwrap();
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(64).n_threads(2)).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let mut g = ctx.generate(&tokens, &mut sampler, GenerateOptions::default().max_tokens(6));
    g.collect_text().unwrap();
    println!("generated {} tokens on lavapipe", g.tokens().len());
}
"#;

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn vulkan_variant_builds_lists_lavapipe_and_offloads_every_layer() {
    let _g = crate::serial();
    let cpu = fixture::fixture().expect("the llama.cpp fixture builds");
    let vulkan = fixture::fixture_vulkan().expect("the Vulkan fixture builds");
    let asset = format!("llama-{}-bin-{VULKAN_PLATFORM}.tar.gz", vulkan.tag);
    assert!(vulkan.archive(&asset).is_some(), "{:?}", vulkan.archives);
    let mirror = Mirror::start().expect("mirror starts");
    cpu.serve(&mirror);
    vulkan.serve(&mirror);
    let dir = tempfile::tempdir().unwrap();
    let checksums = dir.path().join("checksums.toml");
    fixture::write_checksums(&[cpu, vulkan], &checksums).unwrap();

    let app = dir.path().join("vulkan-app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"vulkan-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nllama-prebuilt = {{ path = {:?} }}\n\n[workspace]\n",
            repo.join("llama-prebuilt").display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), app.join("Cargo.lock")).unwrap();
    std::fs::write(app.join("src/main.rs"), MAIN_RS).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&app)
        .args(["run", "--quiet", "--"])
        .arg(gguf::tiny_model());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LLAMA_") || k == "CARGO_TARGET_DIR" || k == "LD_LIBRARY_PATH" {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", app.join("target"))
        .env("LLAMA_PREBUILT_MIRROR", mirror.download_base())
        .env("LLAMA_PREBUILT_API_URL", mirror.api_base())
        .env("LLAMA_PREBUILT_HEADERS_URL", mirror.raw_base())
        .env("LLAMA_PREBUILT_CHECKSUMS", &checksums)
        .env("LLAMA_PREBUILT_CACHE_DIR", dir.path().join("cache"))
        .env("LLAMA_PREBUILT_VERSION", &vulkan.tag)
        .env("LLAMA_INCLUDE_DIR", &vulkan.include_dir)
        .env("LLAMA_PREBUILT_VARIANT", "vulkan")
        .env("GGML_VK_VISIBLE_DEVICES", "0");
    let (ok, stdout, stderr) = output(&mut cmd);
    println!("{stdout}");
    assert!(
        ok,
        "cargo run failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert_eq!(
        mirror.hits(&vulkan.tag, &asset),
        1,
        "the Vulkan asset was downloaded once"
    );
    let cpu_asset = format!("llama-{}-bin-ubuntu-x64.tar.gz", cpu.tag);
    assert_eq!(
        mirror.hits(&cpu.tag, &cpu_asset),
        0,
        "the CPU asset was not"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("device: Vulkan0 ")
            && l.contains("llvmpipe")
            && l.ends_with("[Vulkan]")),
        "{stdout}"
    );
    assert!(
        stdout.contains("module: vulkan loaded as Vulkan (1 devices)"),
        "{stdout}"
    );
    let offload = stdout
        .lines()
        .find(|l| l.starts_with("offload: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    // The tiny model: 2 blocks + output, all on lavapipe.
    assert!(
        offload.ends_with(" layers on Vulkan0=3") && offload.starts_with("offload: 3/3"),
        "{offload}"
    );
    assert!(
        stdout.contains("generated 6 tokens on lavapipe"),
        "{stdout}"
    );
}
