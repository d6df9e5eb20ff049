//! A model split across this machine's CPU and one or more `ggml-rpc-server`s (ggml RPC).
//!
//! ```text
//! # on each machine that lends its CPU/GPU (the official binary from the verified release):
//! llama-prebuilt rpc-server --host 127.0.0.1 --port 50052
//! # here:
//! cargo run -p llama-prebuilt --example rpc -- --rpc 127.0.0.1:50052 [--rpc HOST:PORT]...
//!     [--model PATH] [--prompt TEXT] [--max-tokens N] [--gpu-layers N] [--split P,P,...]
//! ```
//!
//! The RPC protocol has no authentication and no encryption: use servers on a network you
//! trust only. Without `--model` it uses the tiny random-weights model of the test support code
//! (gibberish text; non-ASCII output suppressed).

use std::io::Write;
use std::path::PathBuf;

use llama_prebuilt::{
    Backend, ContextParams, GenerateOptions, GpuLayers, Model, ModelParams, Sampler, Token,
};

struct Args {
    endpoints: Vec<String>,
    model: Option<PathBuf>,
    prompt: String,
    max_tokens: usize,
    gpu_layers: GpuLayers,
    split: Vec<f32>,
}

const USAGE: &str = "usage: rpc --rpc HOST:PORT [--rpc HOST:PORT]... [--model PATH] [--prompt TEXT] \
                     [--max-tokens N] [--gpu-layers N] [--split P,P,...]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        endpoints: Vec::new(),
        model: None,
        prompt: "Once upon a time".into(),
        max_tokens: 32,
        gpu_layers: GpuLayers::All,
        split: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rpc" => args.endpoints.push(value()?),
            "--model" => args.model = Some(value()?.into()),
            "--prompt" => args.prompt = value()?,
            "--max-tokens" => {
                args.max_tokens = value()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--gpu-layers" => {
                args.gpu_layers =
                    GpuLayers::Count(value()?.parse().map_err(|e| format!("--gpu-layers: {e}"))?)
            }
            "--split" => {
                args.split = value()?
                    .split(',')
                    .map(|p| p.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--split: {e}"))?
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.endpoints.is_empty() {
        return Err(format!(
            "give at least one --rpc HOST:PORT (start a server with `llama-prebuilt rpc-server`)\n{USAGE}"
        ));
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let backend = Backend::init()?;

    // Each server's devices join the backend's list. A wrong address or a dead server is an
    // error here, before llama.cpp (whose RPC client aborts on failures) sees it.
    let mut devices = Vec::new();
    for endpoint in &args.endpoints {
        let server = backend.add_rpc_server(endpoint)?;
        let (major, minor, patch) = server.protocol;
        for d in &server.devices {
            eprintln!(
                "rpc: {} on {} (protocol {major}.{minor}.{patch}): {} MiB free of {} MiB",
                d.name,
                server.endpoint,
                d.memory_free / (1 << 20),
                d.memory_total / (1 << 20)
            );
        }
        devices.extend(server.devices);
    }

    let (path, tiny) = match args.model {
        Some(path) => (path, false),
        None => (llama_prebuilt_test_support::gguf::tiny_model(), true),
    };
    let params = ModelParams::default()
        .devices(&devices)
        .gpu_layers(args.gpu_layers)
        .tensor_split(&args.split);
    let model = Model::load(&path, &params)?;
    eprintln!(
        "model: {} ({} layers; offloaded to {} RPC device(s), the rest on the local CPU)",
        model.description(),
        model.n_layer(),
        devices.len()
    );

    let prompt = model.tokenize(&args.prompt, true)?;
    let n_ctx = prompt.len() as u32 + args.max_tokens as u32;
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(n_ctx))?;
    let mut sampler = Sampler::chain().greedy();
    print!("{}", args.prompt);
    let started = std::time::Instant::now();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(args.max_tokens),
    );
    let mut stdout = std::io::stdout();
    for piece in &mut generator {
        let piece = piece?;
        if tiny && !piece.is_ascii() {
            continue;
        }
        print!("{piece}");
        stdout.flush()?;
    }
    let tokens: &[Token] = generator.tokens();
    println!();
    eprintln!(
        "[{} tokens in {:.2} s over {} server(s)]",
        tokens.len(),
        started.elapsed().as_secs_f64(),
        args.endpoints.len()
    );
    Ok(())
}
