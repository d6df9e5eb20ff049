//! `cargo xtask mirror [--aarch64] [--seconds N]`: the fixture mirror in the foreground, for
//! trying the CLI or a downstream build by hand against an offline "GitHub".

use std::io::Write;
use std::time::{Duration, Instant};

use llama_prebuilt_test_support::fixture;
use llama_prebuilt_test_support::mirror::Mirror;

use crate::fixture_cmd;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut aarch64 = false;
    let mut seconds: Option<u64> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--aarch64" => aarch64 = true,
            "--seconds" => {
                let v = it.next().ok_or("mirror: --seconds needs a value")?;
                seconds = Some(
                    v.parse()
                        .map_err(|_| format!("mirror: bad --seconds {v}"))?,
                );
            }
            other => return Err(format!("mirror: unknown argument {other}")),
        }
    }

    let fixtures = fixture_cmd::load(aarch64)?;
    let mirror = Mirror::start().map_err(|e| format!("starting the mirror: {e}"))?;
    for f in &fixtures {
        f.serve(&mirror);
    }
    // One checksums file for everything served; a single fixture already has one.
    let checksums = if fixtures.len() == 1 {
        fixtures[0].checksums_path.clone()
    } else {
        let path = fixture::fixtures_root()?.join("mirror-checksums.toml");
        fixture::write_checksums(&fixtures, &path)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        path
    };

    println!("download_base={}", mirror.download_base());
    println!("api_base={}", mirror.api_base());
    println!("checksums={}", checksums.display());
    println!(
        "# e.g. LLAMA_PREBUILT_MIRROR={} LLAMA_PREBUILT_CHECKSUMS={} LLAMA_PREBUILT_VERSION={}",
        mirror.download_base(),
        checksums.display(),
        fixtures[0].tag
    );
    let _ = std::io::stdout().flush();

    // Ctrl-C's default action ends the process, which is all the shutdown a loopback server
    // needs; --seconds drops the mirror cleanly.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if seconds.is_some_and(|s| start.elapsed() >= Duration::from_secs(s)) {
            eprintln!("mirror: stopping after {}s", seconds.unwrap_or(0));
            return Ok(());
        }
    }
}
