//! `cargo xtask bench build-time`: how long a fresh downstream application that generates
//! text takes to build.
//!
//! - ours: `apps/ours.rs` on the safe crate, cold = empty target dir and empty llama-prebuilt
//!   cache, the binaries downloaded from the local fixture mirror (llama.cpp b10199-fixture), twice per
//!   round: with default features and with `default-features = false, features =
//!   ["copy-dylibs"]` (committed bindings, no bindgen);
//! - theirs: the same program on crates.io's `llama-cpp-2` (`apps/llama_cpp_2.rs`), whose
//!   llama-cpp-sys-2 = 0.1.154 compiles llama.cpp's source with cmake (b10200, one commit
//!   after the fixture's b10199; no crates.io release carries b10199);
//! - ours again with a warm binary cache and an empty target dir, then a no-op rebuild, and the
//!   build script's own run time when a variable it watches changes (cache warm).
//!
//! Both sides build `--release` with the same `-j`, `--offline` after a `cargo fetch` (the
//! registry download is not timed), with `--timings` so the build-script units can be read
//! off cargo's own report. Each built program is run once on the tiny model to prove it works.

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_prebuilt_test_support::gguf::tiny_model;

use super::apps::OursFeatures;
use super::stats::{list, median, secs, time};
use super::{Opts, apps, bench_dir, report, run_ok};
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--jobs", "--runs", "--skip-theirs"])?;
    let jobs: usize = opts.num("--jobs", super::machine::ncpus())?;
    let runs: usize = opts.num("--runs", 2)?;
    let world = World::start()?;
    let dir = bench_dir().join("build-time");
    let configs = [OursFeatures::Default, OursFeatures::NoBindgen];
    let ours: Vec<apps::AppCrate> = configs
        .iter()
        .enumerate()
        .map(|(i, &f)| apps::ours_with(&dir.join(format!("app-ours-{i}")), f))
        .collect::<Result<_, _>>()?;
    let theirs = apps::llama_cpp_2(&dir.join("app-lc2"))?;
    for app in ours.iter().chain([&theirs]) {
        let mut fetch = world::cargo();
        fetch
            .current_dir(&app.dir)
            .args(["fetch", "--quiet", "--manifest-path"])
            .arg(app.dir.join("Cargo.toml"));
        run_ok(&mut fetch)?;
    }
    let model = tiny_model();
    let load = super::machine::load1();

    // Cold: fresh target dir and fresh binary cache. Each round builds every configuration of
    // ours in turn (A B A B …); llama-cpp-2 is built once, after the first round.
    let mut cold: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut cold_script: Vec<Vec<Option<f64>>> = vec![Vec::new(); configs.len()];
    let mut theirs_line = String::from("skipped (--skip-theirs)");
    let mut theirs_t = f64::NAN;
    for i in 0..runs {
        for (c, app) in ours.iter().enumerate() {
            let target = dir.join("target-ours");
            let cache = dir.join("cache");
            remove(&target)?;
            remove(&cache)?;
            let b = timed_build(app, &target, jobs, &world.env(cache.clone()))?;
            eprintln!(
                "xtask bench: ours cold, {}: {}",
                configs[c].label(),
                secs(b.wall)
            );
            cold[c].push(b.wall);
            cold_script[c].push(b.script("llama-prebuilt-sys"));
            check_runs(&app.exe(&target, true), &model)?;
        }
        if i == 0 && !opts.flag("--skip-theirs") {
            let target = dir.join("target-lc2");
            remove(&target)?;
            eprintln!("xtask bench: llama-cpp-2 cold (compiles llama.cpp; ~4 min on 2 cores) ...");
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

    // Warm binary cache, fresh target dir (default features).
    let cache = dir.join("cache");
    let mut warm = Vec::new();
    let mut warm_script = Vec::new();
    let target = dir.join("target-ours");
    for _ in 0..runs {
        remove(&target)?;
        let b = timed_build(&ours[0], &target, jobs, &world.env(cache.clone()))?;
        eprintln!("xtask bench: ours warm cache: {}", secs(b.wall));
        warm.push(b.wall);
        warm_script.push(b.script("llama-prebuilt-sys"));
    }
    // No-op rebuild, then the build script alone re-run by a watched variable (warm cache).
    let mut noop = Vec::new();
    for _ in 0..3 {
        noop.push(timed_build(&ours[0], &target, jobs, &world.env(cache.clone()))?.wall);
    }
    let mut rerun = Vec::new();
    for i in 0..3 {
        let mut env = world.env(cache.clone());
        env.push(("LLAMA_PREBUILT_TIMEOUT".into(), format!("{}", 31 + i)));
        let b = timed_build(&ours[0], &target, jobs, &env)?;
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
    let mut rows = String::new();
    let mut verdicts = String::new();
    for (c, feature) in configs.iter().enumerate() {
        let mc = median(&cold[c]);
        let ratio = mc / theirs_t;
        let target_ratio = match feature {
            OursFeatures::Default => 10.0,
            OursFeatures::NoBindgen => 12.0,
        };
        rows += &format!(
            "| ours, {}, cold (empty target dir, empty binary cache, archive from the loopback mirror) | {} (runs: {}) | llama-prebuilt-sys: {} |\n",
            feature.label(),
            secs(mc),
            list(&cold[c], 1),
            opt(&cold_script[c])
        );
        verdicts += &format!(
            "- {}: ours cold / llama-cpp-2 cold = **{ratio:.3}** = 1/{:.1} (target ≤ 1/{target_ratio}: {})\n",
            feature.label(),
            1.0 / ratio,
            if ratio.is_nan() {
                "not measured"
            } else if ratio <= 1.0 / target_ratio {
                "met"
            } else {
                "NOT met"
            },
        );
    }
    let body = format!(
        "Downstream app = `xtask/src/bench/apps/ours.rs` (safe crate: load a GGUF, stream greedy text) vs \
         `apps/llama_cpp_2.rs` (the same on llama-cpp-2 {} with llama-cpp-sys-2 {}, default features), \
         `cargo build --release -j {jobs} --offline --timings` after `cargo fetch`, 1-min load before the \
         first build {load:.2}. The configurations of ours are built in turn in each round; every binary \
         was run on the tiny model afterwards.\n\n\
         | build | wall time | build script (cargo --timings) |\n|---|---:|---|\n\
         {rows}\
         | llama-cpp-2, cold (empty target dir; cmake builds llama.cpp) | {theirs_line} | |\n\
         | ours, default features, warm binary cache, empty target dir | {} (runs: {}) | llama-prebuilt-sys: {} |\n\
         | ours, no-op rebuild (`cargo build` again) | {} (runs: {}) | not run |\n\
         | ours, build script re-run with a warm cache (a watched variable changed) | | llama-prebuilt-sys: {} (runs: {}) |\n\n\
         {verdicts}",
        apps::LLAMA_CPP_2_VERSION,
        apps::LLAMA_CPP_2_VERSION,
        secs(median(&warm)),
        list(&warm, 1),
        opt(&warm_script),
        secs(median(&noop)),
        list(&noop, 2),
        secs(median(&rerun)),
        list(&rerun, 2),
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
