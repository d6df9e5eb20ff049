//! Many processes fetching into one cold cache at once, some of them SIGKILLed mid-download
//! (issue 7, item 7, in the form two cores can run: processes running the fetch library, not
//! 16 full cargo builds).
//!
//! 16 child processes (this test binary re-run with an environment variable, each one a
//! "build" wanting one or two assets, in different orders) start together against one cold
//! cache and a mirror throttled per connection, so a download takes seconds. Whenever a child
//! reports that the body of an asset is streaming in, the parent SIGKILLs it 0.3 s later, until three
//! downloaders are dead; one child waiting for a lock is killed too. Afterwards:
//! - every surviving child got both assets verified (a killed download never poisons others);
//! - each asset was requested once per download attempt that actually started (the lock
//!   makes the waiters reuse the winner's result, they never download it again);
//! - every cache entry verifies (`Fetcher::verify_cache`) and no partial file is left;
//! - a fresh process (a rebuild) gets both from the cache with no request to the mirror.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use llama_prebuilt_fetch::{Config, Event, Fetcher, HttpSettings, Progress, Request, Target};
use llama_prebuilt_test_support::rng::SplitMix64;

/// Set in the children: `cache|mirror|api|checksums|triple,triple`.
const CHILD_ENV: &str = "LLAMA_PREBUILT_TEST_CONCURRENCY_CHILD";
const CHILDREN: usize = 16;
const DOWNLOADERS_TO_KILL: usize = 3;
/// Filler per archive and per-connection bandwidth: a download takes about 3 s.
const FILLER_BYTES: u64 = 384 * 1024;
const BYTES_PER_SEC: u64 = 128 * 1024;
const LINUX_TRIPLE: &str = "x86_64-unknown-linux-gnu";
const WINDOWS_TRIPLE: &str = "x86_64-pc-windows-msvc";
const WINDOWS_X64: &str = "llama-b20001-bin-win-cpu-x64.zip";

/// Prints one line per interesting event, for the parent to act on.
struct Announce;

impl Progress for Announce {
    fn event(&self, event: &Event) {
        let line = match event {
            // After the response headers: the request is in and the body is streaming.
            Event::DownloadStarted { asset, .. } => format!("@@ receiving {asset}"),
            Event::WaitingForLock { asset } => format!("@@ waiting {asset}"),
            // A transient failure retried (a stall on a loaded machine): one more request.
            Event::Retrying { asset, .. } => format!("@@ retrying {asset}"),
            _ => return,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The child's body; a no-op test in a normal run.
#[test]
fn concurrency_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [cache, mirror, api, checksums, triples] = parts[..] else {
        panic!("bad child spec {spec}");
    };
    let config = Config {
        cache_dir: Some(PathBuf::from(cache)),
        mirror: Some(mirror.to_string()),
        api_base: Some(api.to_string()),
        checksums_file: Some(PathBuf::from(checksums)),
        http: HttpSettings {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            retries: 2,
            backoff: Duration::from_millis(50),
        },
        ..Config::default()
    };
    let fetcher = Fetcher::new(config)
        .expect("fetcher opens")
        .with_progress(Arc::new(Announce));
    for triple in triples.split(',') {
        let installed = fetcher
            .ensure(&Request::new(TAG, Target::from_triple(triple)))
            .unwrap_or_else(|e| panic!("child {}: {triple}: {e}", std::process::id()));
        assert!(installed.lib_dir.is_dir());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "@@ ok {} downloaded={}",
            installed.asset, installed.downloaded
        );
        let _ = out.flush();
    }
}

/// A release-shaped archive with `FILLER_BYTES` of incompressible filler.
fn linux_archive() -> Vec<u8> {
    let mut t = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::none()));
    let top = format!("llama-{TAG}");
    let add = |t: &mut tar::Builder<GzEncoder<Vec<u8>>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        t.append_data(&mut h, format!("{top}/{name}"), data)
            .unwrap();
    };
    for lib in [
        "libllama.so",
        "libggml.so",
        "libggml-base.so",
        "libggml-cpu.so",
    ] {
        add(&mut t, lib, format!("dummy {lib}").as_bytes());
    }
    add(&mut t, "llama-server", &filler(1));
    t.into_inner().unwrap().finish().unwrap()
}

fn windows_archive() -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for dll in [
        "llama.dll",
        "ggml.dll",
        "ggml-base.dll",
        "ggml-cpu-haswell.dll",
    ] {
        z.start_file(dll, opts).unwrap();
        z.write_all(format!("dummy {dll}").as_bytes()).unwrap();
    }
    z.start_file("llama-server.exe", opts).unwrap();
    z.write_all(&filler(2)).unwrap();
    z.finish().unwrap().into_inner()
}

fn filler(seed: u64) -> Vec<u8> {
    SplitMix64::new(seed).bytes_vec(FILLER_BYTES as usize)
}

struct Kid {
    child: Child,
    killed: bool,
}

fn spawn_child(env: &Env, triples: &str) -> Child {
    let spec = format!(
        "{}|{}|{}|{}|{triples}",
        env.cache_dir().display(),
        env.mirror.download_base(),
        env.mirror.api_base(),
        env.checksums_path().display()
    );
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "concurrency_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a child")
}

/// Runs one more child to completion and returns its `@@` lines.
fn run_child(env: &Env, triples: &str) -> Vec<String> {
    let out = spawn_child(env, triples).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(marker)
        .map(str::to_string)
        .collect()
}

/// The `@@ …` part of a line: libtest prints `test concurrency_child ... ` without a newline
/// before the test runs, so the first line of ours follows it.
fn marker(line: &str) -> Option<&str> {
    line.find("@@ ").map(|i| &line[i..])
}

fn leftovers(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join(".tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sixteen_processes_one_cold_cache_some_killed_mid_download() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_archive());
    env.serve(TAG, WINDOWS_X64, windows_archive());
    env.mirror.set_throttle(Some(BYTES_PER_SEC));

    // Each child is a different "build": one asset or both, in either order.
    let wants = [
        LINUX_TRIPLE.to_string(),
        WINDOWS_TRIPLE.to_string(),
        format!("{LINUX_TRIPLE},{WINDOWS_TRIPLE}"),
        format!("{WINDOWS_TRIPLE},{LINUX_TRIPLE}"),
    ];
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut kids: Vec<Kid> = Vec::new();
    let mut stderr_readers = Vec::new();
    for i in 0..CHILDREN {
        let mut child = spawn_child(&env, &wants[i % wants.len()]);
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ours) = marker(&line) {
                    let _ = tx.send((i, ours.to_string()));
                }
            }
        });
        stderr_readers.push(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        }));
        kids.push(Kid {
            child,
            killed: false,
        });
    }
    drop(tx);

    // Kill the first downloaders as soon as they receive bytes, and one lock waiter.
    let mut killed_downloads: Vec<String> = Vec::new();
    let mut killed_waiter = false;
    let mut waiter_asset: Option<String> = None;
    let mut ok_lines: Vec<(usize, String)> = Vec::new();
    let mut retried: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((i, line)) = rx.recv_timeout(left) else {
            break; // every child closed its stdout (or the deadline passed)
        };
        if kids[i].killed {
            continue;
        }
        if let Some(asset) = line.strip_prefix("@@ receiving ") {
            if killed_downloads.len() < DOWNLOADERS_TO_KILL {
                // Let some of the body arrive (about 40 KiB at the throttled rate) first.
                std::thread::sleep(Duration::from_millis(300));
                kids[i].child.kill().unwrap(); // SIGKILL
                kids[i].killed = true;
                killed_downloads.push(asset.to_string());
            }
        } else if let Some(asset) = line.strip_prefix("@@ waiting ")
            && !killed_waiter
        {
            kids[i].child.kill().unwrap();
            kids[i].killed = true;
            killed_waiter = true;
            waiter_asset = Some(asset.to_string());
        } else if line.starts_with("@@ ok ") {
            ok_lines.push((i, line));
        } else if let Some(asset) = line.strip_prefix("@@ retrying ") {
            retried.push(asset.to_string());
        }
    }
    assert!(Instant::now() < deadline, "children did not finish in time");
    let stderrs: Vec<String> = stderr_readers
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (i, kid) in kids.iter_mut().enumerate() {
        let status = kid.child.wait().unwrap();
        if !kid.killed {
            assert!(
                status.success(),
                "child {i} failed ({status}):\n{}",
                stderrs[i]
            );
        }
    }
    assert_eq!(
        killed_downloads.len(),
        DOWNLOADERS_TO_KILL,
        "not enough downloads were seen to kill: {killed_downloads:?}"
    );
    assert!(killed_waiter, "no child was seen waiting for a lock");

    eprintln!(
        "killed mid-download: {killed_downloads:?}; killed one lock waiter; retried: {retried:?}; mirror hits: linux {}, windows {}",
        env.mirror.hits(TAG, LINUX_X64),
        env.mirror.hits(TAG, WINDOWS_X64)
    );

    // Every survivor got each asset it wanted; exactly one download per asset succeeded.
    for (i, kid) in kids.iter().enumerate() {
        if kid.killed {
            continue;
        }
        let wanted = wants[i % wants.len()].split(',').count();
        let got = ok_lines.iter().filter(|(j, _)| *j == i).count();
        assert_eq!(got, wanted, "child {i}: {ok_lines:?}");
    }
    for asset in [LINUX_X64, WINDOWS_X64] {
        let fresh = ok_lines
            .iter()
            .filter(|(_, l)| l.starts_with(&format!("@@ ok {asset} downloaded=true")))
            .count();
        assert_eq!(fresh, 1, "{asset}: one successful download, {ok_lines:?}");
        let killed = killed_downloads.iter().filter(|a| *a == asset).count();
        let retries = retried.iter().filter(|a| *a == asset).count();
        let expected = killed + 1 + retries;
        // The lock waiter is killed when its "waiting" line is read; on a loaded machine it may
        // have got the lock (its holder was killed) and sent its request by then, a request no
        // line of ours reports: at most one more for that asset.
        let waiter_may_have_asked = usize::from(waiter_asset.as_deref() == Some(asset));
        let hits = env.mirror.hits(TAG, asset);
        assert!(
            (expected..=expected + waiter_may_have_asked).contains(&hits),
            "{asset}: {hits} requests; expected one per killed download, plus the one that \
             finished, plus one per reported retry ({retries}) = {expected}, plus at most \
             {waiter_may_have_asked} from the killed lock waiter"
        );
    }

    // The cache verifies, and no partial download or extraction is left behind.
    let fetcher = env.fetcher();
    let report = fetcher.verify_cache();
    assert_eq!(report.len(), 2, "{report:?}");
    for (entry, result) in &report {
        assert!(result.is_ok(), "{}: {result:?}", entry.dir.display());
    }
    let left = leftovers(&env.cache_dir());
    assert!(left.is_empty(), "leftovers in .tmp: {left:?}");

    // A rebuild in a new process: both from the cache, no request to the mirror.
    let hits_before = (
        env.mirror.hits(TAG, LINUX_X64),
        env.mirror.hits(TAG, WINDOWS_X64),
    );
    let lines = run_child(&env, &format!("{LINUX_TRIPLE},{WINDOWS_TRIPLE}"));
    assert_eq!(
        lines,
        [
            format!("@@ ok {LINUX_X64} downloaded=false"),
            format!("@@ ok {WINDOWS_X64} downloaded=false"),
        ]
    );
    assert_eq!(
        (
            env.mirror.hits(TAG, LINUX_X64),
            env.mirror.hits(TAG, WINDOWS_X64)
        ),
        hits_before,
        "the rebuild made no request"
    );
}
