//! `cargo xtask bench embed`: batch embeddings in texts per second. Three programs embed the
//! same texts (mean pooling) with the same model, thread count and library files (the
//! fixture's `lib_dir`):
//!
//! - ours, batched: `Embedder::embed_tokens` (many sequences per decode, unified KV cache);
//! - ours, one text at a time: `Context::embed` per text;
//! - `test-support/c/embed_bench.c`: the same packing written straight against `llama.h`.
//!
//! Each program tokenizes first and times only the embedding loop (decodes and copying the
//! pooled vectors out). Runs are interleaved (the order rotates each run) and medians reported;
//! the checksums (sum of all embedding values) of the batched programs must agree.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use llama_prebuilt_test_support::gguf::{TinyModelSpec, cached_model};

use super::stats::{list, median};
use super::{Opts, apps, bench_dir, report, run_ok, target_dir};
use crate::world::{self, World};

const N_SEQ_MAX: u32 = 64;
const N_UBATCH: u32 = 2048;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--params", "--threads", "--texts"])?;
    let runs: usize = opts.num("--runs", 5)?;
    let params: u64 = opts.num("--params", 30_000_000)?;
    let threads: u32 = opts.num("--threads", super::machine::ncpus() as u32)?;
    let n_texts: usize = opts.num("--texts", 256)?;

    let world = World::start()?;
    let lib_dir = world.fixture.lib_dir.clone();
    let ours = {
        let app = apps::ours(&bench_dir().join("app-ours"))?;
        let mut env = world.env(world::fixture_cache_dir());
        env.push(("LLAMA_LIB_DIR".into(), lib_dir.display().to_string()));
        apps::build(&app, &target_dir().join("bench-app"), true, &env)?
    };
    let c_exe = compile_embed_bench(&lib_dir, &world.fixture.include_dir)?;

    let spec = TinyModelSpec::bench(params);
    let model = cached_model(&spec).map_err(|e| format!("writing the bench model: {e}"))?;
    let texts_path = bench_dir().join("embed-texts.txt");
    let texts = texts(n_texts);
    let n_bytes: usize = texts.iter().map(|t| t.len() + 1).sum();
    std::fs::write(&texts_path, texts.join("\n") + "\n").map_err(|e| e.to_string())?;

    let names = [
        "ours, batched",
        "ours, one at a time",
        "embed_bench.c, batched",
    ];
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut checksums: [Vec<f64>; 3] = Default::default();
    let mut n_tokens = 0usize;
    for i in 0..runs {
        for k in (0..3).map(|j| (i + j) % 3) {
            let mut cmd = match k {
                0 | 1 => {
                    let mut c = Command::new(&ours);
                    c.arg("embed")
                        .arg(&model)
                        .arg(&texts_path)
                        .arg(N_SEQ_MAX.to_string())
                        .arg(N_UBATCH.to_string())
                        .arg(threads.to_string());
                    if k == 1 {
                        c.arg("--one");
                    }
                    c
                }
                _ => {
                    let mut c = Command::new(&c_exe);
                    c.arg(&model)
                        .arg(&texts_path)
                        .arg(N_SEQ_MAX.to_string())
                        .arg(N_UBATCH.to_string())
                        .arg(threads.to_string())
                        .arg("--lib-dir")
                        .arg(&lib_dir);
                    c
                }
            };
            let out = run_ok(&mut cmd)?;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let get = |text: &str, key: &str| -> Result<f64, String> {
                text.lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
                    .ok_or_else(|| format!("no `{key}` in:\n{stdout}\n{stderr}"))
            };
            if get(&stdout, "texts")? as usize != n_texts {
                return Err(format!("{}: wrong number of texts:\n{stdout}", names[k]));
            }
            n_tokens = get(&stdout, "tokens")? as usize;
            samples[k].push(get(&stderr, "texts_s")?);
            checksums[k].push(get(&stdout, "checksum")?);
            eprintln!(
                "xtask bench: run {i} {}: {:.2} texts/s",
                names[k],
                samples[k].last().unwrap()
            );
        }
    }

    let [ob, oo, cb] = samples.each_ref().map(|s| median(s));
    let paired: Vec<f64> = samples[0]
        .iter()
        .zip(&samples[2])
        .map(|(a, b)| a / b)
        .collect();
    let ratio = median(&paired);
    let agree = checksums[0]
        .iter()
        .chain(&checksums[1])
        .chain(&checksums[2])
        .all(|c| (c - checksums[2][0]).abs() <= 1e-3 * checksums[2][0].abs().max(1.0));
    let body = format!(
        "Model: `TinyModelSpec::bench({params})` = {} parameters ({} layers × 1024 wide, f16 \
         weights, random), mean pooling, {threads} threads, library = the fixture's lib_dir \
         (llama.cpp b10199-fixture) for all. {n_texts} texts ({n_bytes} bytes, {n_tokens} tokens \
         with BOS, 8 to 200 tokens each), tokenized before the timed region. Batched: up to \
         {N_SEQ_MAX} texts and {N_UBATCH} tokens per decode (n_ctx = n_batch = n_ubatch = \
         {N_UBATCH}, unified KV cache); one at a time: `Context::embed` per text in the same \
         context shape with one sequence. {runs} runs, order rotated each run.\n\n\
         | program | texts/s median | runs |\n|---|---:|---|\n\
         | ours, `Embedder::embed_tokens` | {ob:.2} | {} |\n\
         | ours, `Context::embed` one at a time | {oo:.2} | {} |\n\
         | embed_bench.c (llama.h, same packing) | {cb:.2} | {} |\n\n\
         batched / one at a time: **{:.2}×**; ours batched / C loop: ratio of medians {:.3}, \
         median of paired ratios **{ratio:.3}** (target ≥ 0.98: {}); paired ratios [{}]. \
         Embedding checksums agree across the three programs: {agree}.",
        spec.n_params(),
        spec.n_layer,
        list(&samples[0], 2),
        list(&samples[1], 2),
        list(&samples[2], 2),
        ob / oo,
        ob / cb,
        if ratio >= 0.98 { "met" } else { "NOT met" },
        list(&paired, 3),
    );
    report("bench embed", &body);
    Ok(())
}

/// Deterministic texts of 7 to 199 bytes: words of ASCII letters and digits (one token per
/// byte in the test vocabulary, a few merges).
fn texts(n: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = 7 + (next() % 193) as usize;
            let mut s = String::with_capacity(len);
            while s.len() < len {
                if !s.is_empty() && next() % 6 == 0 {
                    s.push(' ');
                } else {
                    s.push(char::from(
                        b"abcdefghijklmnopqrstuvwxyz0123456789"[(next() % 36) as usize],
                    ));
                }
            }
            s.trim().to_string()
        })
        .collect()
}

/// embed_bench.c compiled like reference.c (see `test-support/src/reference.rs`): -O2 against
/// the fixture's headers, linked and rpath'd to `lib_dir`.
fn compile_embed_bench(lib_dir: &Path, include_dir: &Path) -> Result<PathBuf, String> {
    let source = world::workspace_root().join("test-support/c/embed_bench.c");
    std::fs::create_dir_all(bench_dir()).map_err(|e| e.to_string())?;
    let exe = bench_dir().join("embed-bench-c");
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or_else(|| OsString::from("cc")));
    cc.args(["-std=c11", "-O2", "-Wall", "-Wextra", "-I"])
        .arg(include_dir)
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib_dir)
        .args(["-lllama", "-lggml", "-lggml-base"]);
    let mut rpath = OsString::from("-Wl,-rpath,");
    rpath.push(lib_dir);
    cc.arg(rpath);
    run_ok(&mut cc).map_err(|e| format!("compiling embed_bench.c: {e}"))?;
    Ok(exe)
}
