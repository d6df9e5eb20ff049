//! `cargo xtask bench inference`: prompt processing (512 tokens) and generation (128 tokens)
//! through the safe crate versus `test-support/c/reference.c` on the same generated model,
//! the same thread count and the very same library files (the fixture's `lib_dir`: the app is
//! built with `LLAMA_LIB_DIR` pointing there, the reference is linked and rpath'd there).
//! Runs are interleaved and both programs time the same regions (each `llama_decode` call;
//! ours includes the safe crate's batch validation and bookkeeping around it).

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_prebuilt_test_support::gguf::{TinyModelSpec, cached_model};

use super::stats::{list, median};
use super::{Opts, apps, bench_dir, report, run_ok, target_dir};
use crate::world::{self, World};

const N_PROMPT: usize = 512;
const N_GEN: u32 = 128;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--params", "--threads"])?;
    let runs: usize = opts.num("--runs", 15)?;
    let params: u64 = opts.num("--params", 100_000_000)?;
    let threads: u32 = opts.num("--threads", super::machine::ncpus() as u32)?;

    let world = World::start()?;
    let lib_dir = world.fixture.lib_dir.clone();
    let ours = ours_app(&world, &lib_dir)?;
    let reference = compile_reference(&lib_dir, &world.fixture.include_dir)?;

    let spec = TinyModelSpec::bench(params);
    eprintln!(
        "xtask bench: model with {} parameters ({} layers, {:.0} MiB, f16) ...",
        spec.n_params(),
        spec.n_layer,
        spec.file_size() as f64 / 1048576.0
    );
    let model = cached_model(&spec).map_err(|e| format!("writing the bench model: {e}"))?;
    let prompt = prompt_of(&ours, &model, N_PROMPT)?;

    let mut samples: [Vec<f64>; 4] = Default::default(); // ours pp, ref pp, ours tg, ref tg
    let mut tokens_equal = true;
    for i in 0..runs {
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        let mut generator: Vec<Vec<String>> = Vec::new();
        for is_ours in order {
            let mut cmd = if is_ours {
                let mut c = Command::new(&ours);
                c.arg("infer")
                    .arg(&model)
                    .arg(&prompt)
                    .arg(N_GEN.to_string())
                    .arg(threads.to_string());
                c
            } else {
                let mut c = Command::new(&reference);
                c.arg(&model)
                    .arg(&prompt)
                    .arg(N_GEN.to_string())
                    .arg("--threads")
                    .arg(threads.to_string())
                    .arg("--lib-dir")
                    .arg(&lib_dir);
                c
            };
            let out = run_ok(&mut cmd)?;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let get = |key: &str| -> Result<f64, String> {
                stderr
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
                    .ok_or_else(|| format!("no `{key}` in:\n{stderr}"))
            };
            let pp_tokens = get("pp_tokens")?;
            if pp_tokens as usize != N_PROMPT {
                return Err(format!(
                    "expected a {N_PROMPT}-token prompt, got {pp_tokens}"
                ));
            }
            let k = if is_ours { 0 } else { 1 };
            samples[k].push(get("pp_tok_s")?);
            samples[k + 2].push(get("tg_tok_s")?);
            generator.push(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.starts_with("tok "))
                    .map(str::to_string)
                    .collect(),
            );
            eprintln!(
                "xtask bench: run {i} {}: pp {:.2} tok/s, tg {:.2} tok/s",
                if is_ours { "ours" } else { "reference.c" },
                samples[k].last().unwrap(),
                samples[k + 2].last().unwrap()
            );
        }
        tokens_equal &= generator[0] == generator[1];
    }
    let [op, rp, og, rg] = samples.each_ref().map(|s| median(s));
    // Ratios within each run pair (ours and the reference ran back to back), so drift of the
    // machine's speed between pairs cancels out.
    let paired =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x / y).collect() };
    let pp_pairs = paired(&samples[0], &samples[1]);
    let tg_pairs = paired(&samples[2], &samples[3]);
    let verdict = |r: f64| if r >= 0.98 { "met" } else { "NOT met" };
    let body = format!(
        "Model: `TinyModelSpec::bench({params})` = {} parameters ({} layers × 1024 wide, f16 weights, \
         random), {threads} threads, library = the fixture's lib_dir (llama.cpp b10199-fixture, release \
         flags, one CPU backend) for both. Prompt of {N_PROMPT} tokens decoded in one batch \
         (n_batch = n_ubatch = {N_PROMPT}), then {N_GEN} greedy tokens one decode each. {runs} runs \
         interleaved (A B, B A, ...); tok/s as each program measures it around its llama_decode calls.\n\n\
         | | ours (safe crate) median | reference.c median | ratio of medians | median of paired ratios | target ≥ 0.98 |\n|---|---:|---:|---:|---:|---|\n\
         | pp{N_PROMPT} tok/s | {op:.2} | {rp:.2} | {:.3} | **{:.3}** | {} |\n\
         | tg{N_GEN} tok/s | {og:.2} | {rg:.2} | {:.3} | **{:.3}** | {} |\n\n\
         paired ratios pp [{}], tg [{}]\n\n\
         runs: ours pp [{}], reference pp [{}], ours tg [{}], reference tg [{}]\n\n\
         generated tokens identical in every run pair: {tokens_equal}",
        spec.n_params(),
        spec.n_layer,
        op / rp,
        median(&pp_pairs),
        verdict(median(&pp_pairs)),
        og / rg,
        median(&tg_pairs),
        verdict(median(&tg_pairs)),
        list(&pp_pairs, 3),
        list(&tg_pairs, 3),
        list(&samples[0], 2),
        list(&samples[1], 2),
        list(&samples[2], 2),
        list(&samples[3], 2),
    );
    report("bench inference", &body);
    Ok(())
}

/// The safe-crate app, release build, linked against `lib_dir` through `LLAMA_LIB_DIR`.
fn ours_app(world: &World, lib_dir: &Path) -> Result<PathBuf, String> {
    let app = apps::ours(&bench_dir().join("app-ours"))?;
    let mut env = world.env(world::fixture_cache_dir());
    env.push(("LLAMA_LIB_DIR".into(), lib_dir.display().to_string()));
    apps::build(&app, &target_dir().join("bench-app"), true, &env)
}

/// reference.c compiled with -O2 against the fixture's headers and libraries (the same
/// compilation the parity tests use).
pub(crate) fn compile_reference(lib_dir: &Path, include_dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(bench_dir()).map_err(|e| e.to_string())?;
    llama_prebuilt_test_support::reference::compile(
        lib_dir,
        &[include_dir.to_path_buf()],
        &bench_dir(),
    )
}

/// A prompt of exactly `n` tokens (BOS included): digits, one byte token each in the test
/// vocabulary (no merges apply); checked with the app's `count`.
fn prompt_of(app: &Path, model: &Path, n: usize) -> Result<String, String> {
    let prompt: String = "1234567890".chars().cycle().take(n - 1).collect();
    let out = run_ok(Command::new(app).arg("count").arg(model).arg(&prompt))?;
    let count: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "count printed no number".to_string())?;
    if count != n {
        return Err(format!("the digit prompt has {count} tokens, expected {n}"));
    }
    Ok(prompt)
}
