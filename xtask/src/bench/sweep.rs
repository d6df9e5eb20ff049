//! `cargo xtask bench sweep`: the parameter sweep (`llama-prebuilt/tests/param_sweep.rs`) in
//! its long form — N seeded cases of `ContextParams` × `ModelParams` on the tiny models, each
//! in a child process, through `cargo test` against the fixture mirror. Reports how many
//! cases ran, how many were rejected with an `Err`, and how many aborts (must be 0).

use std::process::Command;

use super::{Opts, report};
use crate::world::{self, World};

const TEST: &str = "no_parameter_combination_aborts_the_process";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--cases", "--seed", "--jobs"])?;
    let cases: u64 = opts.num("--cases", 3000)?;
    let seed: u64 = opts.num("--seed", 0x5eed_0014)?;
    let jobs: u64 = opts.num("--jobs", 2)?;

    let world = World::start()?;
    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root())
        .args([
            "test",
            "-p",
            "llama-prebuilt",
            "--test",
            "param_sweep",
            "--",
            TEST,
        ])
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .env("LLAMA_PREBUILT_SWEEP_CASES", cases.to_string())
        .env("LLAMA_PREBUILT_SWEEP_SEED", seed.to_string())
        .env("LLAMA_PREBUILT_SWEEP_JOBS", jobs.to_string());
    for (k, v) in world.env(world::fixture_cache_dir()) {
        cmd.env(k, v);
    }
    eprintln!(
        "xtask bench: parameter sweep, {cases} cases, seed {seed}, {jobs} children at a time ..."
    );
    let (ok, out) = output(&mut cmd)?;
    let summary: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("param sweep:"))
        .take_while(|l| l.starts_with("param sweep:") || l.starts_with("  "))
        .collect();
    let mut body = format!(
        "`LLAMA_PREBUILT_SWEEP_CASES={cases} LLAMA_PREBUILT_SWEEP_SEED={seed} cargo test -p llama-prebuilt \
         --test param_sweep -- {TEST}` (each case: load a tiny model, create a context, decode a prompt, \
         read logits or embeddings, decode on more sequences and single tokens; one child process per \
         batch of cases): test {}\n\n```\n{}\n```\n",
        if ok { "passed" } else { "FAILED" },
        if summary.is_empty() {
            tail(&out, 60)
        } else {
            summary.join("\n")
        }
    );
    if !ok && !summary.is_empty() {
        body.push_str(&format!("\n```\n{}\n```\n", tail(&out, 60)));
    }
    report("bench sweep", &body);
    if ok {
        Ok(())
    } else {
        Err("the parameter sweep failed (see above)".into())
    }
}

fn output(cmd: &mut Command) -> Result<(bool, String), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
