//! fetch-probe TAG [TRIPLE]: one `Fetcher::ensure` (download, sha256 while streaming, extract,
//! cache) with the configuration from the environment, then its own peak RSS.
//! NOT a module of xtask: `cargo xtask bench fetch` writes it into a fresh crate and builds it
//! in release mode.

use llama_prebuilt_fetch::{Config, Fetcher, Request, Target};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(tag) = args.first() else {
        eprintln!("usage: fetch-probe TAG [TRIPLE]");
        std::process::exit(2);
    };
    let target = args
        .get(1)
        .map(|t| Target::from_triple(t))
        .unwrap_or_else(Target::host);
    let fetcher = Fetcher::new(Config::from_env()).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    match fetcher.ensure(&Request::new(tag.clone(), target)) {
        Ok(installed) => {
            println!("downloaded {}", installed.downloaded);
            println!("lib_dir {}", installed.lib_dir.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kib) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|r| r.split_whitespace().next())
    {
        println!("vmhwm_kib {kib}");
    }
}
