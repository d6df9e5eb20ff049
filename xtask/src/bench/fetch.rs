//! `cargo xtask bench fetch`: the fetch pipeline (download, sha256 while streaming, extract,
//! cache) of the fetch library, built in release mode, versus `curl -o` + `sha256sum` +
//! `tar xzf` on the same file from the same loopback mirror; then the peak RSS of the library
//! while it fetches a synthetic archive of about 1 GiB.

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_prebuilt_test_support::archives::{checksums_toml, sha256_file};
use llama_prebuilt_test_support::mirror::Mirror;

use super::stats::{list, median, secs, time};
use super::synth::{self, Layout};
use super::{Opts, apps, bench_dir, report, run_ok, target_dir};
use crate::world::World;

const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";
/// A tag nobody pins, for the synthetic large archive.
const LARGE_TAG: &str = "b99001";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--runs", "--rss-mib"])?;
    let runs: usize = opts.num("--runs", 11)?;
    let rss_mib: u64 = opts.num("--rss-mib", 1024)?;

    let world = World::start()?;
    let dir = bench_dir().join("fetch");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let probe = apps::fetch_probe(&bench_dir().join("fetch-probe"))?;
    let probe = apps::build(&probe, &target_dir(), true, &[])?;

    // --- the fixture archive, side by side --------------------------------------------------
    let archive = world
        .fixture
        .archives
        .iter()
        .find(|a| a.name.ends_with("ubuntu-x64.tar.gz"))
        .ok_or("the fixture has no ubuntu-x64.tar.gz")?;
    let url = format!(
        "{}/{}/{}",
        world.mirror.download_base(),
        world.fixture.tag,
        archive.name
    );
    let env = |cache: &Path| world.env(cache.to_path_buf());
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for i in 0..runs {
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_ours in order {
            let scratch = dir.join("scratch");
            let _ = std::fs::remove_dir_all(&scratch);
            std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
            if is_ours {
                let mut cmd = Command::new(&probe);
                cmd.arg(&world.fixture.tag).arg(HOST_TRIPLE);
                for (k, v) in env(&scratch.join("cache")) {
                    cmd.env(k, v);
                }
                let (t, out) = time(|| run_ok(&mut cmd));
                let out = out?;
                if !String::from_utf8_lossy(&out.stdout).contains("downloaded true") {
                    return Err("the probe did not download (cache not cold?)".into());
                }
                ours.push(t);
            } else {
                let (t, out) = time(|| run_ok(&mut baseline_cmd(&url, &scratch, &archive.name)));
                out?;
                base.push(t);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("scratch"));
    let (mo, mb) = (median(&ours), median(&base));

    // --- peak RSS on a large archive ---------------------------------------------------------
    let (rss_line, large_times) = large(&world.mirror, &probe, &dir, rss_mib)?;

    let body = format!(
        "Fixture archive `{}` ({} bytes) from the loopback mirror, cold cache each run, {runs} runs \
         interleaved (A B, B A, ...), wall time of the whole process:\n\n\
         | pipeline | median | runs (s) |\n|---|---:|---|\n\
         | ours: `fetch-probe` = `Fetcher::ensure` (release build) | {} | {} |\n\
         | baseline: `curl -sS -o F URL && sha256sum F && tar xzf F -C D` | {} | {} |\n\n\
         ratio ours / baseline = **{:.2}** (target ≤ 1.2: {})\n\n{rss_line}\n\n{large_times}",
        archive.name,
        archive.size,
        secs(mo),
        list(&ours, 4),
        secs(mb),
        list(&base, 4),
        mo / mb,
        if mo / mb <= 1.2 { "met" } else { "NOT met" },
    );
    report("bench fetch", &body);
    Ok(())
}

fn baseline_cmd(url: &str, scratch: &Path, name: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"set -e; curl -sS -o "$2/$3" "$1"; sha256sum "$2/$3" >/dev/null; mkdir -p "$2/x"; tar xzf "$2/$3" -C "$2/x""#)
        .arg("sh")
        .arg(url)
        .arg(scratch)
        .arg(name);
    cmd
}

/// Writes (once; cached in the bench dir) a ~`mib` MiB archive, serves it, fetches it with the
/// probe into a fresh cache and reads the probe's VmHWM; then times the baseline on it once.
fn large(mirror: &Mirror, probe: &Path, dir: &Path, mib: u64) -> Result<(String, String), String> {
    let name = format!("llama-{LARGE_TAG}-bin-ubuntu-x64.tar.gz");
    let path = dir.join(format!("large-{mib}MiB-{name}"));
    let sha_path = path.with_extension("sha256");
    if !path.exists() || !sha_path.exists() {
        eprintln!("xtask bench: writing a {mib} MiB synthetic archive ...");
        synth::write(&path, LARGE_TAG, Layout::Linux, mib << 20, 7).map_err(|e| e.to_string())?;
        let sha = sha256_file(&path).map_err(|e| e.to_string())?;
        std::fs::write(&sha_path, &sha).map_err(|e| e.to_string())?;
    }
    let sha = std::fs::read_to_string(&sha_path).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    mirror.add_asset_file(LARGE_TAG, &name, &path);
    let checksums = dir.join("large-checksums.toml");
    std::fs::write(
        &checksums,
        checksums_toml(&[(LARGE_TAG, &name, sha.trim(), size)]),
    )
    .map_err(|e| e.to_string())?;

    let scratch: PathBuf = dir.join("scratch-large");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(probe);
    cmd.arg(LARGE_TAG)
        .arg(HOST_TRIPLE)
        .env("LLAMA_PREBUILT_MIRROR", mirror.download_base())
        .env("LLAMA_PREBUILT_API_URL", mirror.api_base())
        .env("LLAMA_PREBUILT_CHECKSUMS", &checksums)
        .env("LLAMA_PREBUILT_CACHE_DIR", scratch.join("cache"));
    let (t_ours, out) = time(|| run_ok(&mut cmd));
    let out = String::from_utf8_lossy(&out?.stdout).into_owned();
    let kib: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("vmhwm_kib "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no vmhwm_kib in the probe's output:\n{out}"))?;
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let url = format!("{}/{LARGE_TAG}/{name}", mirror.download_base());
    let (t_base, out) = time(|| run_ok(&mut baseline_cmd(&url, &scratch, &name)));
    out?;
    let _ = std::fs::remove_dir_all(&scratch);
    let mib_f = kib as f64 / 1024.0;
    Ok((
        format!(
            "Peak RSS (VmHWM read by the probe from /proc/self/status at exit) of `Fetcher::ensure` on a \
             synthetic {size}-byte archive (one incompressible {mib} MiB file, gzip stored): \
             **{mib_f:.1} MiB** (target < 64 MiB: {})",
            if mib_f < 64.0 { "met" } else { "NOT met" }
        ),
        format!(
            "Same {mib} MiB archive, one run each: ours {} ({:.0} MiB/s), baseline {} ({:.0} MiB/s), ratio {:.2}",
            secs(t_ours),
            size as f64 / 1048576.0 / t_ours,
            secs(t_base),
            size as f64 / 1048576.0 / t_base,
            t_ours / t_base
        ),
    ))
}
