//! The stable-toolchain fuzz driver: replays every file in `fuzz/regressions/<target>/`, then
//! mutates the seeds (and inputs that produced an outcome not seen before) for a fixed time,
//! each target getting an equal share. A panic is a crash: the input is saved under
//! `fuzz/artifacts/<target>/` and the run exits non-zero. No coverage feedback (that needs
//! nightly and `cargo fuzz`); the outcome signatures are a crude substitute.
//!
//!   fuzz-loop [--seconds S] [--target NAME] [--seed N] [--write-corpus DIR]
//!
//! For the GGUF target a counting allocator also checks that no single allocation exceeds
//! twice the input's length plus 64 KiB (the pre-check reads untrusted lengths).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llama_prebuilt_fuzz::mutate::{mutate, Rng};
use llama_prebuilt_fuzz::{seeds::seeds, Target, TARGETS};

struct Counting;

static TRACK: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the bookkeeping only touches atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`realloc` above, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s size contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one input: its outcome signature, or `Err(message)` on a crash.
fn exec(name: &str, f: Target, input: &[u8]) -> Result<String, String> {
    let gguf = name == "gguf_header";
    if gguf {
        LARGEST.store(0, Ordering::Relaxed);
        TRACK.store(true, Ordering::Relaxed);
    }
    let r = catch_unwind(AssertUnwindSafe(|| f(input)));
    TRACK.store(false, Ordering::Relaxed);
    let sig = match r {
        Ok(sig) => sig,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            return Err(msg);
        }
    };
    if gguf {
        let largest = LARGEST.load(Ordering::Relaxed);
        let bound = 2 * input.len() + (64 << 10);
        if largest > bound {
            return Err(format!(
                "a single allocation of {largest} bytes for a {}-byte input",
                input.len()
            ));
        }
    }
    Ok(sig)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn save_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", fnv(input)));
    let _ = std::fs::write(&path, input);
    path
}

fn replay(name: &str, f: Target) -> (usize, Vec<String>) {
    let dir = fuzz_dir().join("regressions").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut failures = Vec::new();
    for p in &files {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let input = std::fs::read(p).expect("read regression input");
        if let Err(msg) = exec(name, f, &input) {
            failures.push(format!("{}: {msg}", p.display()));
        }
    }
    (files.len(), failures)
}

fn write_corpus(dir: &Path) {
    for (name, _) in TARGETS {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("corpus dir");
        for s in seeds(name) {
            std::fs::write(d.join(format!("seed-{:016x}", fnv(&s))), &s).expect("write seed");
        }
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    Some(
        args.get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a value")),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = arg::<PathBuf>(&args, "--write-corpus") {
        write_corpus(&dir);
        println!("fuzz-loop: seeds written to {}", dir.display());
        return;
    }
    let seconds: f64 = arg(&args, "--seconds").unwrap_or(30.0);
    let seed: u64 = arg(&args, "--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let only: Option<String> = arg(&args, "--target");
    let targets: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n))
        .collect();
    if targets.is_empty() {
        eprintln!("fuzz-loop: no such target {only:?}");
        std::process::exit(2);
    }
    // Keep panic messages short: the crash report below says which input it was.
    std::panic::set_hook(Box::new(|info| eprintln!("fuzz-loop: panic: {info}")));

    let share = Duration::from_secs_f64(seconds / targets.len() as f64);
    let mut crashes = 0usize;
    println!(
        "fuzz-loop: seed {seed}, {seconds} s over {} targets",
        targets.len()
    );
    for (name, f) in targets {
        let (n_reg, failures) = replay(name, *f);
        for fl in &failures {
            println!("fuzz-loop: {name}: REGRESSION FAILS: {fl}");
        }
        crashes += failures.len();

        let base = seeds(name);
        let focus = (*name == "gguf_header").then(|| {
            llama_prebuilt::gguf::parse_header(&base[0])
                .map(|h| h.data_offset as usize)
                .unwrap_or(4096)
        });
        let mut pool: Vec<Vec<u8>> = base.clone();
        let mut seen: HashSet<String> = HashSet::new();
        for s in &base {
            match exec(name, *f, s) {
                Ok(sig) => {
                    seen.insert(sig);
                }
                Err(msg) => {
                    println!("fuzz-loop: {name}: seed crashes: {msg}");
                    crashes += 1;
                }
            }
        }
        let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
        let start = Instant::now();
        let mut execs = 0u64;
        let mut target_crashes = 0usize;
        while start.elapsed() < share {
            let parent = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, parent, &base, focus);
            execs += 1;
            match exec(name, *f, &input) {
                Ok(sig) => {
                    if pool.len() < 4096 && seen.insert(sig) {
                        pool.push(input);
                    }
                }
                Err(msg) => {
                    let path = save_crash(name, &input);
                    println!(
                        "fuzz-loop: {name}: CRASH ({msg}); input saved to {}",
                        path.display()
                    );
                    target_crashes += 1;
                    if target_crashes >= 5 {
                        break;
                    }
                }
            }
        }
        crashes += target_crashes;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "fuzz-loop: {name}: {n_reg} regression inputs replayed, {execs} executions in {secs:.1} s \
             ({:.0}/s), {} distinct outcomes kept, {target_crashes} crashes",
            execs as f64 / secs.max(1e-9),
            pool.len() - base.len()
        );
    }
    if crashes > 0 {
        println!("fuzz-loop: {crashes} crash(es)");
        std::process::exit(1);
    }
    println!("fuzz-loop: no crash");
}
