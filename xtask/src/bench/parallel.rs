//! `cargo xtask bench parallel`: six platform archives through the CLI's
//! `llama-prebuilt download --platforms … --jobs 4` versus `--jobs 1`, with the loopback mirror
//! throttled per connection (a fixed bandwidth per download, like a CDN's per-stream limit).

use std::process::Command;

use llama_prebuilt_test_support::archives::{checksums_toml, sha256_file};
use llama_prebuilt_test_support::mirror::Mirror;

use super::stats::{list, median, secs, time};
use super::synth::{self, Layout};
use super::{Opts, bench_dir, report, run_ok, target_dir};
use crate::world;

const TAG: &str = "b99002";
const PLATFORMS: &[(&str, &str, Layout)] = &[
    ("linux-x64", "ubuntu-x64.tar.gz", Layout::Linux),
    ("linux-arm64", "ubuntu-arm64.tar.gz", Layout::Linux),
    ("macos-arm64", "macos-arm64.tar.gz", Layout::MacOs),
    ("macos-x64", "macos-x64.tar.gz", Layout::MacOs),
    ("windows-x64", "win-cpu-x64.zip", Layout::Windows),
    ("windows-arm64", "win-cpu-arm64.zip", Layout::Windows),
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--mib", "--kib-per-sec"])?;
    let runs: usize = opts.num("--runs", 3)?;
    let mib: u64 = opts.num("--mib", 4)?;
    let kib_per_sec: u64 = opts.num("--kib-per-sec", 1024)?;

    eprintln!("xtask bench: building the CLI (release) ...");
    let mut build = world::cargo();
    build.current_dir(world::workspace_root()).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "llama-prebuilt-cli",
    ]);
    run_ok(&mut build)?;
    let cli = target_dir().join("release").join("llama-prebuilt");

    let dir = bench_dir().join("parallel");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mirror = Mirror::start().map_err(|e| format!("starting the mirror: {e}"))?;
    let mut rows = Vec::new();
    for (i, (_, suffix, layout)) in PLATFORMS.iter().enumerate() {
        let name = format!("llama-{TAG}-bin-{suffix}");
        let path = dir.join(format!("{mib}MiB-{name}"));
        if !path.exists() {
            synth::write(&path, TAG, *layout, mib << 20, 100 + i as u64)
                .map_err(|e| e.to_string())?;
        }
        let sha = sha256_file(&path).map_err(|e| e.to_string())?;
        let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        mirror.add_asset_file(TAG, &name, &path);
        rows.push((name, sha, size));
    }
    let entries: Vec<(&str, &str, &str, u64)> = rows
        .iter()
        .map(|(n, s, z)| (TAG, n.as_str(), s.as_str(), *z))
        .collect();
    let checksums = dir.join("checksums.toml");
    std::fs::write(&checksums, checksums_toml(&entries)).map_err(|e| e.to_string())?;
    mirror.set_throttle(Some(kib_per_sec * 1024));
    let total: u64 = rows.iter().map(|r| r.2).sum();

    let platforms = PLATFORMS.iter().map(|p| p.0).collect::<Vec<_>>().join(",");
    let mut t1 = Vec::new();
    let mut t4 = Vec::new();
    for i in 0..runs {
        let order = if i % 2 == 0 { [4, 1] } else { [1, 4] };
        for jobs in order {
            let cache = dir.join("cache");
            let _ = std::fs::remove_dir_all(&cache);
            let mut cmd = Command::new(&cli);
            cmd.args([
                "download",
                "--version",
                TAG,
                "--platforms",
                &platforms,
                "--jobs",
            ])
            .arg(jobs.to_string())
            .arg("--json")
            .env("LLAMA_PREBUILT_MIRROR", mirror.download_base())
            .env("LLAMA_PREBUILT_API_URL", mirror.api_base())
            .env("LLAMA_PREBUILT_CHECKSUMS", &checksums)
            .env("LLAMA_PREBUILT_CACHE_DIR", &cache);
            let (t, out) = time(|| run_ok(&mut cmd));
            out?;
            eprintln!("xtask bench: --jobs {jobs}: {}", secs(t));
            if jobs == 4 { &mut t4 } else { &mut t1 }.push(t);
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("cache"));
    let (m1, m4) = (median(&t1), median(&t4));
    let body = format!(
        "Six platform archives of tag {TAG} (synthetic, release-shaped, ~{mib} MiB each, \
         {total} bytes in all) from the loopback mirror throttled to {kib_per_sec} KiB/s per \
         connection; release-built CLI, cold cache each run, {runs} runs interleaved:\n\n\
         `llama-prebuilt download --version {TAG} --platforms {platforms} --jobs N --json`\n\n\
         | jobs | median | runs (s) |\n|---|---:|---|\n\
         | 1 | {} | {} |\n| 4 | {} | {} |\n\n\
         speed-up --jobs 4 over --jobs 1 = **{:.2}×** (ideal with 6 equal downloads and a per-connection \
         cap: 6 / ceil(6/4) = 3.0×)",
        secs(m1),
        list(&t1, 2),
        secs(m4),
        list(&t4, 2),
        m1 / m4
    );
    report("bench parallel", &body);
    Ok(())
}
