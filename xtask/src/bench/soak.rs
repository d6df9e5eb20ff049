//! `cargo xtask bench soak`: the soak test (`llama-prebuilt/tests/soak.rs`) in its long form —
//! 1,000 model/context/sampler create-and-drop cycles generating 10,000 tokens, RSS sampled
//! after every cycle — and then under valgrind's memcheck (fewer cycles: memcheck runs the
//! CPU backend ~50× slower) to look for leaks. Both through `cargo test` against the fixture
//! mirror, valgrind as cargo's target runner, so the library path is the one cargo sets.

use std::process::Command;

use super::{Opts, bench_dir, report};
use crate::world::{self, World};

const TEST: &str = "create_drop_cycles_and_generated_tokens_do_not_grow_rss";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Opts::new(
        args,
        &[
            "--cycles",
            "--tokens",
            "--valgrind-cycles",
            "--valgrind-tokens",
            "--no-valgrind",
        ],
    )?;
    let cycles: usize = opts.num("--cycles", 1000)?;
    let tokens: usize = opts.num("--tokens", 10_000)?;
    let vg_cycles: usize = opts.num("--valgrind-cycles", 100)?;
    let vg_tokens: usize = opts.num("--valgrind-tokens", 1000)?;

    let world = World::start()?;
    let env = world.env(world::fixture_cache_dir());
    let test_cmd = || {
        let mut cmd = world::cargo();
        cmd.current_dir(world::workspace_root())
            .args(["test", "-p", "llama-prebuilt", "--test", "soak", "--", TEST])
            .args(["--exact", "--nocapture", "--test-threads=1"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd
    };

    eprintln!("xtask bench: soak, {cycles} cycles / {tokens} tokens, RSS sampled ...");
    let mut native = test_cmd();
    native
        .env("LLAMA_SOAK_CYCLES", cycles.to_string())
        .env("LLAMA_SOAK_TOKENS", tokens.to_string());
    let (ok, out) = output(&mut native)?;
    let mut all_ok = ok;
    let native_line = soak_line(&out);
    let mut body = format!(
        "`LLAMA_SOAK_CYCLES={cycles} LLAMA_SOAK_TOKENS={tokens} cargo test -p llama-prebuilt --test soak -- --nocapture` \
         (tiny model; each cycle: Model::load, Context (n_ctx 256, 2 threads), a penalties/top-k/top-p/temperature/dist \
         sampler chain, generate, drop all; RSS after every cycle following 5 warm-up cycles):\n\n\
         test {}: `{native_line}`\n",
        if ok { "passed" } else { "FAILED" }
    );
    if !ok {
        body.push_str(&format!("\n```\n{}\n```\n", tail(&out, 40)));
    }

    // The same full run with LeakSanitizer preloaded (GCC's standalone liblsan interposes
    // malloc/free for the whole process, C++ included, and checks for leaks at exit).
    let lsan = "/usr/lib/x86_64-linux-gnu/liblsan.so.0";
    if std::path::Path::new(lsan).exists() {
        eprintln!("xtask bench: soak under LeakSanitizer, {cycles} cycles / {tokens} tokens ...");
        let mut cmd = test_cmd();
        cmd.env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
            format!("env LD_PRELOAD={lsan} LSAN_OPTIONS=exitcode=23"),
        )
        .env("LLAMA_SOAK_CYCLES", cycles.to_string())
        .env("LLAMA_SOAK_TOKENS", tokens.to_string())
        .env("LLAMA_SOAK_NO_RSS_CHECK", "1");
        let (ok, out) = output(&mut cmd)?;
        all_ok &= ok;
        let leaks: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("LeakSanitizer"))
            .collect();
        body.push_str(&format!(
            "\nUnder LeakSanitizer (`LD_PRELOAD={lsan}` as cargo's runner), {cycles} cycles / {tokens} tokens: \
             test {} (exit code 23 would mean leaks), `{}`; LeakSanitizer lines: {}\n",
            if ok { "passed" } else { "FAILED" },
            soak_line(&out),
            if leaks.is_empty() { "none (no leak found)".to_string() } else { leaks.join(" / ") }
        ));
        if !ok {
            body.push_str(&format!("\n```\n{}\n```\n", tail(&out, 60)));
        }
    } else {
        body.push_str(&format!(
            "\nLeakSanitizer run skipped: {lsan} not found (Debian: liblsan0)\n"
        ));
    }

    if !opts.flag("--no-valgrind") {
        let log = bench_dir().join(format!("soak-valgrind-{vg_cycles}.log"));
        std::fs::create_dir_all(bench_dir()).map_err(|e| e.to_string())?;
        let runner = format!(
            "valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
             --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 --log-file={}",
            log.display()
        );
        eprintln!("xtask bench: soak under valgrind, {vg_cycles} cycles / {vg_tokens} tokens ...");
        let mut vg = test_cmd();
        vg.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", &runner)
            .env("LLAMA_SOAK_CYCLES", vg_cycles.to_string())
            .env("LLAMA_SOAK_TOKENS", vg_tokens.to_string())
            .env("LLAMA_SOAK_WARMUP", "1")
            .env("LLAMA_SOAK_NO_RSS_CHECK", "1");
        let t0 = std::time::Instant::now();
        let (ok, out) = output(&mut vg)?;
        all_ok &= ok;
        let secs = t0.elapsed().as_secs_f64();
        let vlog = std::fs::read_to_string(&log).unwrap_or_default();
        let pick = |key: &str| {
            vlog.lines()
                .filter_map(|l| l.split_once(key).map(|(_, r)| r.trim().to_string()))
                .next_back()
                .unwrap_or_else(|| "(not in the log)".into())
        };
        body.push_str(&format!(
            "\nUnder valgrind (memcheck, `--leak-check=full`), {vg_cycles} cycles / {vg_tokens} tokens, \
             {secs:.0} s, test {}: `{}`\n\n\
             - definitely lost: {}\n- indirectly lost: {}\n- possibly lost: {}\n- still reachable: {}\n\
             - ERROR SUMMARY: {}\n\nfull log: `{}`\n",
            if ok { "passed" } else { "FAILED" },
            soak_line(&out),
            pick("definitely lost:"),
            pick("indirectly lost:"),
            pick("possibly lost:"),
            pick("still reachable:"),
            pick("ERROR SUMMARY:"),
            log.display()
        ));
    }
    report("bench soak", &body);
    if all_ok {
        Ok(())
    } else {
        Err("a soak run failed (see the report above)".into())
    }
}

/// Runs and returns (success, stdout + stderr).
fn output(cmd: &mut Command) -> Result<(bool, String), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

fn soak_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("soak: "))
        .unwrap_or("(no soak line: the test did not get to the end)")
        .to_string()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
