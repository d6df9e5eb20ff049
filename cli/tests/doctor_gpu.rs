//! `doctor` shows the host GPU probe, what `LLAMA_PREBUILT_VARIANT=auto` picks and why, and the
//! CUDA runtime archive of a CUDA variant. The assertions never depend on this machine's GPUs:
//! they use targets other than the host (where `auto` means cpu) and only check that the probe
//! is reported, not what it found.

#[allow(unused_imports)] // the shared helpers this file does not use
mod common;

use common::*;
use llama_prebuilt_fetch::Target;

fn not_the_host() -> &'static str {
    if Target::host().triple == LINUX_X64_TRIPLE {
        "aarch64-unknown-linux-gnu"
    } else {
        LINUX_X64_TRIPLE
    }
}

#[test]
fn doctor_reports_the_probe_and_the_auto_choice() {
    let env = Env::new();
    let vars = [
        ("LLAMA_PREBUILT_VERSION", TAG),
        ("LLAMA_PREBUILT_VARIANT", "auto"),
    ];
    let target = not_the_host();
    let run = env.run_env(&["doctor", "--target", target, "--json"], &vars);
    let j = run.json();
    assert_eq!(j["variant"], "auto", "{run}");
    assert_eq!(j["variant_resolved"], "cpu", "{run}");
    let gpu = &j["gpu"];
    assert_eq!(gpu["auto_variant"], "cpu", "{run}");
    assert_eq!(gpu["found"].as_array().map(Vec::len), Some(2), "{run}");
    let why = gpu["auto_reasons"][0].as_str().unwrap_or_default();
    assert!(
        why.contains("cross-compiling") && why.contains(target),
        "{run}"
    );
    assert!(
        j["asset"]
            .as_str()
            .unwrap_or_default()
            .contains("-bin-ubuntu-"),
        "{run}"
    );

    let run = env.run_env(&["doctor", "--target", target], &vars);
    assert!(
        run.stdout.contains("auto -> cpu (LLAMA_PREBUILT_VARIANT)"),
        "{run}"
    );
    assert!(run.stdout.contains("\ngpu probe "), "{run}");
    assert!(
        run.stdout.contains("\nauto picks    cpu: cross-compiling"),
        "{run}"
    );
    assert_eq!(
        run.stdout.matches("auto picks").count(),
        1,
        "one line: {run}"
    );
}

#[test]
fn doctor_shows_what_auto_would_pick_for_any_variant() {
    let env = Env::new();
    let run = env.run_env(
        &["doctor", "--target", "aarch64-apple-darwin", "--json"],
        &[("LLAMA_PREBUILT_VERSION", TAG)],
    );
    let j = run.json();
    assert_eq!(j["variant"], "cpu", "{run}");
    assert!(j["variant_resolved"].is_null(), "{run}");
    assert_eq!(j["gpu"]["auto_variant"], "cpu", "{run}");
    assert!(
        j["gpu"]["auto_reasons"][0]
            .as_str()
            .unwrap_or_default()
            .contains("Metal"),
        "{run}"
    );
}

#[test]
fn doctor_names_the_cuda_runtime_archive() {
    let env = Env::new();
    let vars = [
        ("LLAMA_PREBUILT_VERSION", TAG),
        ("LLAMA_PREBUILT_VARIANT", "cuda-12.4"),
    ];
    let args = ["doctor", "--target", "x86_64-pc-windows-msvc", "--json"];
    let j = env.run_env(&args, &vars).json();
    assert_eq!(
        j["asset"],
        format!("llama-{TAG}-bin-win-cuda-12.4-x64.zip").as_str()
    );
    assert_eq!(j["runtime_asset"], "cudart-llama-bin-win-cuda-12.4-x64.zip");
    let run = env.run_env(&args[..3], &vars);
    assert!(
        run.stdout
            .contains("cuda runtime  cudart-llama-bin-win-cuda-12.4-x64.zip"),
        "{run}"
    );
    let j = env
        .run_env(
            &["doctor", "--target", LINUX_X64_TRIPLE, "--json"],
            &vars[..1],
        )
        .json();
    assert!(j["runtime_asset"].is_null());
}

#[test]
fn auto_on_an_unsupported_target_is_a_problem_naming_lib_dir() {
    let env = Env::new();
    let run = env
        .run_env(
            &[
                "doctor",
                "--target",
                "riscv64gc-unknown-linux-gnu",
                "--json",
            ],
            &[("LLAMA_PREBUILT_VARIANT", "auto")],
        )
        .failed();
    let j = run.json();
    let problems = j["problems"].to_string();
    assert!(
        problems.contains("riscv64gc-unknown-linux-gnu") && problems.contains("LLAMA_LIB_DIR"),
        "{run}"
    );
}
