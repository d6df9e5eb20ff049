//! `cargo xtask bench build-time`: how long a fresh downstream application that generates
//! text takes to build.
//!
//! - ours: `apps/ours.rs` on the safe crate, cold = empty target dir and empty llama-prebuilt
//!   cache, the binaries downloaded from the local fixture mirror (llama.cpp b10200);
//! - theirs: the same program on crates.io's `llama-cpp-2` (`apps/llama_cpp_2.rs`), whose
//!   llama-cpp-sys-2 = 0.1.154 compiles the same llama.cpp source (b10200) with cmake;
//! - ours again with a warm binary cache and an empty target dir, then a no-op rebuild, and the
//!   build script's own run time when a variable it watches changes (cache warm).
//!
//! Both sides build `--release` with the same `-j`, `--offline` after a `cargo fetch` (the
//! registry download is not timed), with `--timings` so the build-script units can be read
//! off cargo's own report. Each built program is run once on the tiny model to prove it works.

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_prebuilt_test_support::gguf::tiny_model;

use super::stats::{list, median, secs, time};
use super::{apps, bench_dir, report, run_ok, Opts};
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--jobs", "--runs", "--skip-theirs"])?;
    let jobs: usize = opts.num("--jobs", super::machine::ncpus())?;
    let runs: usize = opts.num("--runs", 2)?;
    let world = World::start()?;
    let dir = bench_dir().join("build-time");
    let ours = apps::ours(&dir.join("app-ours"))?;
    let theirs = apps::llama_cpp_2(&dir.join("app-lc2"))?;
    for app in [&ours, &theirs] {
        let mut fetch = world::cargo();
        fetch
            .current_dir(&app.dir)
            .args(["fetch", "--quiet", "--manifest-path"])
            .arg(app.dir.join("Cargo.toml"));
        run_ok(&mut fetch)?;
    }
    let model = tiny_model();
    let load = super::machine::load1();

    // Ours, cold: fresh target dir and fresh binary cache, `runs` times; the first cold run of
    // ours comes before theirs, the others after.
    let mut cold = Vec::new();
    let mut cold_script = Vec::new();
    let mut theirs_line = String::from("skipped (--skip-theirs)");
    let mut theirs_t = f64::NAN;
    for i in 0..runs {
        let target = dir.join("target-ours");
        let cache = dir.join("cache");
        remove(&target)?;
        remove(&cache)?;
        let b = timed_build(&ours, &target, jobs, &world.env(cache.clone()))?;
        eprintln!("xtask bench: ours cold: {}", secs(b.wall));
        cold.push(b.wall);
        cold_script.push(b.script("llama-prebuilt-sys"));
        check_runs(&ours.exe(&target, true), &model)?;
        if i == 0 && !opts.flag("--skip-theirs") {
            let target = dir.join("target-lc2");
            remove(&target)?;
            eprintln!("xtask bench: llama-cpp-2 cold (compiles llama.cpp; ~15 min on 2 cores) ...");
            let b = timed_build(&theirs, &target, jobs, &[])?;
            eprintln!("xtask bench: llama-cpp-2 cold: {}", secs(b.wall));
            check_runs(&theirs.exe(&target, true), &model)?;
            theirs_t = b.wall;
            theirs_line = format!(
                "{} (llama-cpp-sys-2 build script, i.e. the cmake build of llama.cpp: {})",
                secs(b.wall),
                b.script("llama-cpp-sys-2").map_or("?".into(), secs)
            );
            remove(&target)?;
        }
    }

    // Warm binary cache, fresh target dir.
    let cache = dir.join("cache");
    let mut warm = Vec::new();
    let mut warm_script = Vec::new();
    let target = dir.join("target-ours");
    for _ in 0..runs {
        remove(&target)?;
        let b = timed_build(&ours, &target, jobs, &world.env(cache.clone()))?;
        eprintln!("xtask bench: ours warm cache: {}", secs(b.wall));
        warm.push(b.wall);
        warm_script.push(b.script("llama-prebuilt-sys"));
    }
    // No-op rebuild, then the build script alone re-run by a watched variable (warm cache).
    let mut noop = Vec::new();
    for _ in 0..3 {
        noop.push(timed_build(&ours, &target, jobs, &world.env(cache.clone()))?.wall);
    }
    let mut rerun = Vec::new();
    for i in 0..3 {
        let mut env = world.env(cache.clone());
        env.push(("LLAMA_PREBUILT_TIMEOUT".into(), format!("{}", 31 + i)));
        let b = timed_build(&ours, &target, jobs, &env)?;
        rerun.push(b.script("llama-prebuilt-sys").unwrap_or(f64::NAN));
    }
    remove(&target)?;

    let opt = |v: &[Option<f64>]| -> String {
        let v: Vec<f64> = v.iter().flatten().copied().collect();
        if v.is_empty() {
            "?".into()
        } else {
            secs(median(&v))
        }
    };
    let mc = median(&cold);
    let ratio = mc / theirs_t;
    let body = format!(
        "Downstream app = `xtask/src/bench/apps/ours.rs` (safe crate: load a GGUF, stream greedy text) vs \
         `apps/llama_cpp_2.rs` (the same on llama-cpp-2 {} with llama-cpp-sys-2 {}, default features), \
         `cargo build --release -j {jobs} --offline --timings` after `cargo fetch`, 1-min load before the \
         first build {load:.2}. Each binary was run on the tiny model afterwards.\n\n\
         | build | wall time | build script (cargo --timings) |\n|---|---:|---|\n\
         | ours, cold (empty target dir, empty binary cache, archive from the loopback mirror) | {} (runs: {}) | llama-prebuilt-sys: {} |\n\
         | llama-cpp-2, cold (empty target dir; cmake builds llama.cpp) | {theirs_line} | |\n\
         | ours, warm binary cache, empty target dir | {} (runs: {}) | llama-prebuilt-sys: {} |\n\
         | ours, no-op rebuild (`cargo build` again) | {} (runs: {}) | not run |\n\
         | ours, build script re-run with a warm cache (a watched variable changed) | | llama-prebuilt-sys: {} (runs: {}) |\n\n\
         ratio ours cold / llama-cpp-2 cold = **{:.3}** = 1/{:.1} (target ≤ 1/10: {})",
        apps::LLAMA_CPP_2_VERSION,
        apps::LLAMA_CPP_2_VERSION,
        secs(mc),
        list(&cold, 1),
        opt(&cold_script),
        secs(median(&warm)),
        list(&warm, 1),
        opt(&warm_script),
        secs(median(&noop)),
        list(&noop, 2),
        secs(median(&rerun)),
        list(&rerun, 2),
        ratio,
        1.0 / ratio,
        if ratio <= 0.1 {
            "met"
        } else if ratio.is_nan() {
            "not measured"
        } else {
            "NOT met"
        },
    );
    report("bench build-time", &body);
    Ok(())
}

struct Built {
    wall: f64,
    /// (package name, seconds) of each build-script run, from cargo's timing report.
    scripts: Vec<(String, f64)>,
}

impl Built {
    fn script(&self, package: &str) -> Option<f64> {
        self.scripts
            .iter()
            .find(|(n, _)| n == package)
            .map(|(_, t)| *t)
    }
}

fn remove(p: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", p.display())),
    }
}

fn timed_build(
    app: &apps::AppCrate,
    target: &Path,
    jobs: usize,
    env: &[(String, String)],
) -> Result<Built, String> {
    let mut cmd = apps::build_cmd(app, target, true, Some(jobs), env);
    cmd.args(["--offline", "--timings", "--quiet"]);
    let (wall, out) = time(|| run_ok(&mut cmd));
    out?;
    Ok(Built {
        wall,
        scripts: build_script_runs(&target.join("cargo-timings").join("cargo-timing.html")),
    })
}

/// The `run-custom-build` units of cargo's `--timings` report.
fn build_script_runs(html: &Path) -> Vec<(String, f64)> {
    let Ok(text) = std::fs::read_to_string(html) else {
        return Vec::new();
    };
    let Some(start) = text.find("UNIT_DATA = ") else {
        return Vec::new();
    };
    let json = &text[start + "UNIT_DATA = ".len()..];
    let Some(Ok(serde_json::Value::Array(units))) = serde_json::Deserializer::from_str(json)
        .into_iter::<serde_json::Value>()
        .next()
    else {
        return Vec::new();
    };
    units
        .iter()
        .filter(|u| u["mode"] == "run-custom-build")
        .filter_map(|u| Some((u["name"].as_str()?.to_string(), u["duration"].as_f64()?)))
        .collect()
}

/// Runs the built app once: it must print generated text.
fn check_runs(exe: &PathBuf, model: &Path) -> Result<(), String> {
    let out = run_ok(
        Command::new(exe)
            .arg("generate")
            .arg(model)
            .arg("Hello")
            .arg("16"),
    )?;
    if out
        .stdout
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .count()
        == 0
    {
        return Err(format!("{} generated no text", exe.display()));
    }
    Ok(())
}
