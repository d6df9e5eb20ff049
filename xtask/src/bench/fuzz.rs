//! `cargo xtask bench fuzz`: the fuzz targets of `fuzz/` (archive extraction, zip and tar.gz;
//! the GGUF header pre-check), with the sys crate's build pointed at the fixture mirror (the
//! fuzz crate depends on the safe crate for its `gguf` module).
//!
//! - default: the stable driver `fuzz-loop` (seeds + PRNG mutations, regressions replayed
//!   first), `--seconds` in all;
//! - `--libfuzzer`: `cargo +nightly fuzz run --features libfuzzer <target>` for each target,
//!   `--seconds` each, starting from the same seeds (needs a nightly toolchain and cargo-fuzz).

use std::process::Command;

use super::{Opts, report, target_dir};
use crate::world::{self, World};

const TARGETS: &[&str] = &["extract_targz", "extract_zip", "gguf_header"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(args, &["--seconds", "--libfuzzer", "--seed", "--no-report"])?;
    let seconds: u64 = opts.num("--seconds", 60)?;
    let world = World::start()?;
    let fuzz = world::workspace_root().join("fuzz");
    let env = world.env(world::fixture_cache_dir());

    let mut driver = world::cargo();
    driver
        .current_dir(&fuzz)
        .args(["run", "--release", "--quiet", "--bin", "fuzz-loop", "--"])
        .env("CARGO_TARGET_DIR", target_dir().join("fuzz"));
    for (k, v) in &env {
        driver.env(k, v);
    }

    if !opts.flag("--libfuzzer") {
        driver.arg("--seconds").arg(seconds.to_string());
        if let Ok(seed) = opts.num::<u64>("--seed", 0)
            && seed != 0
        {
            driver.arg("--seed").arg(seed.to_string());
        }
        let t0 = std::time::Instant::now();
        let out = driver
            .output()
            .map_err(|e| format!("cannot run the fuzz driver: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !opts.flag("--no-report") {
            let lines: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with("fuzz-loop:"))
                .collect();
            report(
                "bench fuzz (stable driver)",
                &format!(
                    "`cargo xtask bench fuzz --seconds {seconds}` ({:.0} s with the build):\n\n```\n{}\n```",
                    t0.elapsed().as_secs_f64(),
                    lines.join("\n")
                ),
            );
        }
        return if out.status.success() {
            Ok(())
        } else {
            Err("the fuzz driver found a crash or a failing regression input".into())
        };
    }

    // libFuzzer: seed the corpus dirs, then one timed run per target.
    driver.arg("--write-corpus").arg(fuzz.join("corpus"));
    super::run_ok(&mut driver)?;
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for target in TARGETS {
        eprintln!("xtask bench: cargo fuzz run {target} for {seconds} s ...");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz)
            .args(["+nightly", "fuzz", "run", "--features", "libfuzzer"])
            .arg("--target-dir")
            .arg(target_dir().join("fuzz-nightly"))
            .arg(target)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-timeout=20", "-rss_limit_mb=2048", "-print_final_stats=1"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run cargo fuzz (nightly + cargo-fuzz installed?): {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let pick = |prefix: &str| {
            stderr
                .lines()
                .rfind(|l| l.contains(prefix))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let done = pick("Done ");
        let cov = pick("cov: ");
        let line = format!(
            "{target}: {} | {} | {} | exit {}",
            done,
            cov,
            pick("stat::number_of_executed_units"),
            out.status
        );
        eprintln!("xtask bench: {line}");
        if !out.status.success() {
            failed.push(target.to_string());
            eprintln!("{}", tail(&stderr, 60));
        }
        summary.push(line);
    }
    report(
        "bench fuzz (cargo fuzz / libFuzzer)",
        &format!(
            "`cargo xtask bench fuzz --libfuzzer --seconds {seconds}` (per target, nightly, AddressSanitizer):\n\n```\n{}\n```\n\ncrashing targets: {}",
            summary.join("\n"),
            if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(", ")
            }
        ),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cargo fuzz found crashes in: {}",
            failed.join(", ")
        ))
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
