//! `cargo xtask bench batch`: aggregate generation tokens/s of the safe crate's `Batcher` with
//! 1, 4 and 8 sequences in one context (the `batch` example, release build, on the fixture's
//! libraries), interleaved (1, 4, 8, then 8, 4, 1, …). The whole loop is timed: prompt
//! decoding of the sequences included, as a server would see it.

use std::path::PathBuf;
use std::process::Command;

use llama_prebuilt_test_support::gguf::{TinyModelSpec, cached_model};

use super::stats::{list, median};
use super::{Opts, report, run_ok, target_dir};
use crate::world::{self, World};

const SEQUENCES: [usize; 3] = [1, 4, 8];
const MAX_TOKENS: usize = 64;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--params", "--threads"])?;
    let runs: usize = opts.num("--runs", 5)?;
    let params: u64 = opts.num("--params", 30_000_000)?;
    let threads: u32 = opts.num("--threads", super::machine::ncpus() as u32)?;

    let world = World::start()?;
    let example = build_example(&world)?;
    let spec = TinyModelSpec::bench(params);
    let model = cached_model(&spec).map_err(|e| format!("writing the bench model: {e}"))?;

    let mut samples: [Vec<f64>; 3] = Default::default();
    for i in 0..runs {
        let order: [usize; 3] = if i % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for k in order {
            let out = run_ok(
                Command::new(&example)
                    .arg("--model")
                    .arg(&model)
                    .args(["--sequences", &SEQUENCES[k].to_string()])
                    .args(["--max-tokens", &MAX_TOKENS.to_string()])
                    .args(["--threads", &threads.to_string(), "--quiet"])
                    .env("LLAMA_LIB_DIR", &world.fixture.lib_dir),
            )?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tok_s: f64 = stderr
                .lines()
                .find_map(|l| l.strip_prefix("tok_s ")?.trim().parse().ok())
                .ok_or_else(|| format!("no tok_s in:\n{stderr}"))?;
            eprintln!(
                "xtask bench batch: run {i}, {} sequences: {tok_s:.1} tok/s",
                SEQUENCES[k]
            );
            samples[k].push(tok_s);
        }
    }
    let base = median(&samples[0]);
    let mut table = String::from(
        "| sequences | aggregate tok/s (median) | vs 1 sequence | runs |\n|---:|---:|---:|---|\n",
    );
    for k in 0..3 {
        table.push_str(&format!(
            "| {} | {:.1} | {:.2}× | [{}] |\n",
            SEQUENCES[k],
            median(&samples[k]),
            median(&samples[k]) / base,
            list(&samples[k], 1)
        ));
    }
    let body = format!(
        "Model: `TinyModelSpec::bench({params})` = {} parameters ({} layers, f16, random); \
         {threads} threads; the `batch` example (release) on the fixture's libraries (llama.cpp \
         b10199-fixture). Each sequence: its own short prompt, greedy, {MAX_TOKENS} tokens; one \
         decode per step for all sequences. {runs} runs per count, interleaved; the time covers \
         prompt decoding and generation.\n\n{table}",
        spec.n_params(),
        spec.n_layer
    );
    report("bench batch", &body);
    Ok(())
}

/// `cargo build --release -p llama-prebuilt --example batch` with the mirror's environment.
fn build_example(world: &World) -> Result<PathBuf, String> {
    let dir = target_dir().join("bench-examples");
    eprintln!("xtask bench: building the batch example (release) ...");
    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "llama-prebuilt",
            "--example",
            "batch",
        ])
        .env("CARGO_TARGET_DIR", &dir);
    for (k, v) in world.env(world::fixture_cache_dir()) {
        cmd.env(k, v);
    }
    run_ok(&mut cmd)?;
    Ok(dir.join("release").join("examples").join("batch"))
}
