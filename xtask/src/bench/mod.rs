//! `cargo xtask bench <what>`: the benchmarks and robustness runs of BENCHMARKS.md.
//!
//! Every benchmark measures ours and the baseline side by side in one run, interleaved
//! (A B A B …), and reports medians, so the noise of this shared machine hits both alike.
//! Results are printed and also appended to `<target>/xtask/bench/results.md`.

mod apps;
mod batch;
mod build_time;
mod embed;
mod fetch;
mod fuzz;
mod inference;
mod machine;
mod parallel;
mod rpc;
mod soak;
mod stats;
mod sweep;
mod synth;

use std::io::Write;
use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
usage: cargo xtask bench <what> [options]

  build-time [--jobs N] [--skip-theirs]   cold build of a downstream app on llama-prebuilt vs
                                          llama-cpp-2 (compiles llama.cpp), warm cache, no-op
  fetch [--runs N] [--rss-mib M]          download+sha256+extract vs curl+sha256sum+tar, and
                                          peak RSS while fetching a synthetic M MiB archive
  parallel [--runs N] [--mib M] [--kib-per-sec K]
                                          six platforms with --jobs 4 vs --jobs 1 (throttled)
  inference [--runs N] [--params P] [--threads T]
                                          pp512/tg128 tok/s, safe crate vs reference.c
  embed [--runs N] [--params P] [--threads T] [--texts N]
                                          texts/s: Embedder batches vs one text at a time vs
                                          test-support/c/embed_bench.c (same packing)
  batch [--runs N] [--params P] [--threads T]
                                          aggregate tok/s of the Batcher with 1, 4, 8 sequences
  rpc [--runs N] [--params P] [--threads T]
                                          pp/tg tok/s: all layers local vs on 1 and on 2 loopback
                                          ggml-rpc-servers (the fixture release's own)
  soak [--cycles N] [--tokens N] [--valgrind-cycles N] [--valgrind-tokens N]
                                          create/drop cycles and tokens: RSS, and valgrind memcheck
  fuzz [--seconds S] [--libfuzzer]        fuzz targets: stable PRNG-mutation loop (default) or
                                          cargo-fuzz/libFuzzer (needs nightly + cargo-fuzz)
  sweep [--cases N] [--seed S] [--jobs J]  ContextParams x ModelParams on the tiny models, each
                                          case in a child process: 0 aborts required
  machine                                 print the machine description
";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("build-time") => build_time::run(rest),
        Some("fetch") => fetch::run(rest),
        Some("parallel") => parallel::run(rest),
        Some("inference") => inference::run(rest),
        Some("embed") => embed::run(rest),
        Some("batch") => batch::run(rest),
        Some("rpc") => rpc::run(rest),
        Some("soak") => soak::run(rest),
        Some("fuzz") => fuzz::run(rest),
        Some("sweep") => sweep::run(rest),
        Some("machine") => {
            println!("{}", machine::describe());
            Ok(())
        }
        _ => Err(format!("unknown or missing bench\n\n{USAGE}")),
    }
}

/// `<target>/xtask/bench`: scratch space for generated crates, archives, caches.
pub(crate) fn bench_dir() -> PathBuf {
    crate::world::fixture_cache_dir()
        .parent()
        .expect("the fixture cache dir has a parent")
        .join("bench")
}

/// Prints a report and appends it (with the machine and the time) to the results file.
pub(crate) fn report(title: &str, body: &str) {
    let text = format!(
        "\n### {title}\n\n{}\n\n{}\n",
        machine::describe_short(),
        body.trim_end()
    );
    println!("{text}");
    let path = bench_dir().join("results.md");
    let _ = std::fs::create_dir_all(bench_dir());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(text.as_bytes());
        eprintln!("xtask bench: appended to {}", path.display());
    }
}

/// A tiny option parser: `--name value` pairs and `--flag`s.
pub(crate) struct Opts<'a>(&'a [String]);

impl<'a> Opts<'a> {
    pub(crate) fn new(args: &'a [String], known: &[&str]) -> Result<Self, String> {
        for a in args.iter().filter(|a| a.starts_with("--")) {
            if !known.contains(&a.as_str()) {
                return Err(format!("unknown option {a} (known: {})", known.join(" ")));
            }
        }
        Ok(Opts(args))
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    pub(crate) fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => self
                .0
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number")),
        }
    }
}

/// Runs a command, failing with its output when it does not succeed.
pub(crate) fn run_ok(cmd: &mut std::process::Command) -> Result<std::process::Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// The target dir xtask itself builds into (the benches build their probes there too, so
/// shared dependencies compile once).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::world::workspace_root().join("target"))
}
