//! `cargo xtask bench rpc`: prompt processing and generation tokens/s of the safe crate with
//! every layer on the local CPU, on one loopback `ggml-rpc-server`, and split over two, on the
//! same generated model, interleaved (local, 1, 2, then 2, 1, local, …). The servers are the
//! fixture release's own `ggml-rpc-server` (b10199 source, release flags), started once per
//! run of the bench with the same thread count as the local run.
//!
//! It measures what RPC costs on one machine: with every layer remote, each decode serialises
//! the graph to the server(s) and waits for the result; the weights cross the socket once, at
//! load (not timed). Two servers add one hop per token (layers split in two halves).

use std::path::Path;
use std::process::Command;

use llama_prebuilt_test_support::gguf::{TinyModelSpec, cached_model};
use llama_prebuilt_test_support::rpc_servers::RpcServerProcess;

use super::stats::{list, median};
use super::{Opts, apps, bench_dir, report, run_ok, target_dir};
use crate::world::{self, World};

const N_PROMPT: usize = 128;
const N_GEN: u32 = 64;
const MODES: [&str; 3] = ["local", "1 server", "2 servers"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--params", "--threads"])?;
    let runs: usize = opts.num("--runs", 5)?;
    let params: u64 = opts.num("--params", 30_000_000)?;
    let threads: u32 = opts.num("--threads", super::machine::ncpus() as u32)?;

    let world = World::start()?;
    let lib_dir = world.fixture.lib_dir.clone();
    let app = ours_app(&world, &lib_dir)?;
    let spec = TinyModelSpec::bench(params);
    eprintln!(
        "xtask bench rpc: model with {} parameters ({} layers, {:.0} MiB, f16) ...",
        spec.n_params(),
        spec.n_layer,
        spec.file_size() as f64 / 1048576.0
    );
    let model = cached_model(&spec).map_err(|e| format!("writing the bench model: {e}"))?;
    let prompt: String = "1234567890".chars().cycle().take(N_PROMPT - 1).collect();

    // pp and tg samples per mode; the generated tokens of each mode's last run.
    let mut pp: [Vec<f64>; 3] = Default::default();
    let mut tg: [Vec<f64>; 3] = Default::default();
    let mut tokens: [Vec<String>; 3] = Default::default();
    for i in 0..runs {
        let order: [usize; 3] = if i % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for mode in order {
            // Fresh servers per run: a server keeps no state between clients, but starting
            // them anew keeps runs independent of each other's allocations.
            let servers: Vec<RpcServerProcess> = (0..mode)
                .map(|_| RpcServerProcess::start(&lib_dir, threads))
                .collect::<Result<_, _>>()?;
            let mut cmd = Command::new(&app);
            cmd.arg("infer")
                .arg(&model)
                .arg(&prompt)
                .arg(N_GEN.to_string())
                .arg(threads.to_string())
                .args(servers.iter().map(RpcServerProcess::endpoint));
            let out = run_ok(&mut cmd)?;
            drop(servers);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let get = |key: &str| -> Result<f64, String> {
                stderr
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
                    .ok_or_else(|| format!("no `{key}` in:\n{stderr}"))
            };
            pp[mode].push(get("pp_tok_s")?);
            tg[mode].push(get("tg_tok_s")?);
            tokens[mode] = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("tok "))
                .map(str::to_string)
                .collect();
            eprintln!(
                "xtask bench rpc: run {i} {}: pp {:.1} tok/s, tg {:.1} tok/s",
                MODES[mode],
                pp[mode].last().unwrap(),
                tg[mode].last().unwrap()
            );
        }
    }
    let identical = tokens[0] == tokens[1] && tokens[0] == tokens[2];
    let per_token: Vec<String> = [1usize, 2]
        .iter()
        .map(|&n| {
            bytes_per_token(&app, &model, &prompt, threads, &lib_dir, n)
                .map(|b| format!("{} server(s): {:.1} KiB", n, b / 1024.0))
        })
        .collect::<Result<_, _>>()?;
    let mut table = String::from(
        "| | pp tok/s (median) | tg tok/s (median) | tg vs local | ms per generated token |\n|---|---:|---:|---:|---:|\n",
    );
    for mode in 0..3 {
        let (p, g) = (median(&pp[mode]), median(&tg[mode]));
        table.push_str(&format!(
            "| {} | {p:.1} | {g:.1} | {:.2}× | {:.2} |\n",
            MODES[mode],
            g / median(&tg[0]),
            1000.0 / g
        ));
    }
    let body = format!(
        "Model: `TinyModelSpec::bench({params})` = {} parameters ({} layers, f16, random). \
         {threads} threads locally and in each server; library and servers = the fixture release \
         (llama.cpp b10199-fixture). Prompt {N_PROMPT} tokens in one decode, then {N_GEN} greedy \
         tokens one decode each. With servers, all layers are on them (split evenly over two); \
         the servers run on this same machine, over loopback TCP. {runs} runs per mode, \
         interleaved.\n\n{table}\n\
         runs pp: local [{}], 1 server [{}], 2 servers [{}]\n\n\
         runs tg: local [{}], 1 server [{}], 2 servers [{}]\n\n\
         loopback traffic per generated token (`lo` tx_bytes, packet headers included, \
         difference of a 1- and a {N_BYTES_GEN}-token run): {}\n\n\
         generated tokens identical across the three modes: {identical}",
        spec.n_params(),
        spec.n_layer,
        list(&pp[0], 1),
        list(&pp[1], 1),
        list(&pp[2], 1),
        list(&tg[0], 1),
        list(&tg[1], 1),
        list(&tg[2], 1),
        per_token.join(", "),
    );
    report("bench rpc", &body);
    if !identical {
        return Err("the generated tokens differ between local and RPC runs".into());
    }
    Ok(())
}

const N_BYTES_GEN: u32 = 257;

/// Bytes over loopback per generated token: two runs of the app that differ only in the number
/// of generated tokens (loading the weights, the bulk of the traffic, cancels). Counted on the
/// `lo` interface (a socket's send/recv do not show in `/proc/<pid>/io`), so other loopback
/// traffic on the machine during the runs would count too.
fn bytes_per_token(
    app: &Path,
    model: &Path,
    prompt: &str,
    threads: u32,
    lib_dir: &Path,
    n_servers: usize,
) -> Result<f64, String> {
    let mut totals = Vec::new();
    for n_gen in [1, N_BYTES_GEN] {
        let servers: Vec<RpcServerProcess> = (0..n_servers)
            .map(|_| RpcServerProcess::start(lib_dir, threads))
            .collect::<Result<_, _>>()?;
        let before = loopback_bytes()?;
        run_ok(
            Command::new(app)
                .arg("infer")
                .arg(model)
                .arg(prompt)
                .arg(n_gen.to_string())
                .arg(threads.to_string())
                .args(servers.iter().map(RpcServerProcess::endpoint)),
        )?;
        totals.push(loopback_bytes()? - before);
    }
    // n_gen = 1 decodes only the prompt; N_BYTES_GEN decodes N_BYTES_GEN - 1 more tokens.
    Ok((totals[1] as f64 - totals[0] as f64) / f64::from(N_BYTES_GEN - 1))
}

/// Bytes sent on the loopback interface since boot.
fn loopback_bytes() -> Result<u64, String> {
    let path = "/sys/class/net/lo/statistics/tx_bytes";
    std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

/// The safe-crate bench app (release build), linked against `lib_dir`.
fn ours_app(world: &World, lib_dir: &Path) -> Result<std::path::PathBuf, String> {
    let app = apps::ours(&bench_dir().join("app-ours"))?;
    let mut env = world.env(world::fixture_cache_dir());
    env.push(("LLAMA_LIB_DIR".into(), lib_dir.display().to_string()));
    apps::build(&app, &target_dir().join("bench-app"), true, &env)
}
