//! The fetch pipeline against the fault-injecting loopback mirror: every outcome is checked
//! together with the state of the cache (nothing half-written, nothing unverified).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use llama_prebuilt_fetch::progress::Recorder;
use llama_prebuilt_fetch::{Config, Error, Event, Fetcher, Request, Target};
use llama_prebuilt_test_support::archives::{self, linux_tar_gz};
use llama_prebuilt_test_support::mirror::Fault;

#[test]
fn downloads_verifies_extracts_and_then_hits_the_cache() {
    let mut env = Env::new();
    let sha = env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let rec = Arc::new(Recorder::default());
    let f = env.fetcher().with_progress(rec.clone());
    let got = f.ensure(&linux_x64(TAG)).unwrap();
    assert!(got.downloaded);
    assert_eq!(got.sha256, sha);
    assert_eq!(got.asset, LINUX_X64);
    assert!(
        got.digest_source.to_string().contains("checksums file"),
        "{}",
        got.digest_source
    );
    assert!(
        got.lib_dir.ends_with("files/llama-b20001"),
        "{}",
        got.lib_dir.display()
    );
    let link = std::fs::read_link(got.lib_dir.join("libllama.so")).unwrap();
    assert_eq!(link.to_str(), Some("libllama.so.0"));
    assert!(
        got.lib_dir.join("libllama.so").is_file(),
        "the chain resolves"
    );
    assert!(got.entry_dir.join("manifest.json").is_file());
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 1);
    let events = rec.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Verified { .. })),
        "{events:?}"
    );

    let again = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    assert!(!again.downloaded);
    assert_eq!(again.lib_dir, got.lib_dir);
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64),
        1,
        "a cache hit makes no request"
    );
}

#[test]
fn checksum_mismatch_shows_both_digests_and_caches_nothing() {
    let mut env = Env::new();
    let good = linux_tar_gz(TAG);
    let wrong = "ab".repeat(32);
    env.mirror.add_asset_bytes(TAG, LINUX_X64, good.clone());
    env.trust(TAG, LINUX_X64, &wrong, good.len() as u64);
    let err = env.fetcher().ensure(&linux_x64(TAG)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{msg}");
    assert!(
        msg.contains(&wrong) && msg.contains(&archives::sha256_hex(&good)),
        "{msg}"
    );
    assert!(msg.contains("nothing was cached"), "{msg}");
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64),
        1,
        "a mismatch is never retried"
    );
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn wrong_bytes_from_the_server_are_rejected() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(TAG, LINUX_X64, [Fault::WrongBytes]);
    let msg = env
        .fetcher()
        .ensure(&linux_x64(TAG))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn not_found_is_final_and_not_retried() {
    let mut env = Env::new();
    env.trust(TAG, LINUX_X64, &"cd".repeat(32), 10);
    let err = env.fetcher().ensure(&linux_x64(TAG)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::HttpStatus { status: 404, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("HTTP 404") && msg.contains(LINUX_X64) && msg.contains("check the tag"),
        "{msg}"
    );
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 1);
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn server_error_is_retried_then_succeeds() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror
        .inject(TAG, LINUX_X64, [Fault::Status(500), Fault::Status(503)]);
    let rec = Arc::new(Recorder::default());
    let got = env
        .fetcher()
        .with_progress(rec.clone())
        .ensure(&linux_x64(TAG))
        .unwrap();
    assert!(got.downloaded);
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 3);
    let retries: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
}

#[test]
fn persistent_server_errors_give_up_after_bounded_attempts() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(
        TAG,
        LINUX_X64,
        [
            Fault::Status(500),
            Fault::Status(500),
            Fault::Status(500),
            Fault::Status(500),
        ],
    );
    let err = env.fetcher().ensure(&linux_x64(TAG)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("failed after 3 attempt(s)") && msg.contains("HTTP 500"),
        "{msg}"
    );
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 3);
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn truncated_and_reset_downloads_are_retried() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(
        TAG,
        LINUX_X64,
        [Fault::Truncate { after: 100 }, Fault::Reset],
    );
    let got = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    assert!(got.downloaded);
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 3);
}

#[test]
fn always_truncated_fails_and_leaves_no_partial_file() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(
        TAG,
        LINUX_X64,
        (0..3).map(|_| Fault::Truncate { after: 64 }),
    );
    let msg = env
        .fetcher()
        .ensure(&linux_x64(TAG))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("failed after 3 attempt(s)"), "{msg}");
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn a_stalled_server_times_out_in_bounded_time() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let stall = Fault::Stall {
        after: 32,
        duration: Duration::from_secs(30),
    };
    env.mirror
        .inject(TAG, LINUX_X64, [stall.clone(), stall.clone(), stall]);
    let start = Instant::now();
    let msg = env
        .fetcher()
        .ensure(&linux_x64(TAG))
        .unwrap_err()
        .to_string();
    let took = start.elapsed();
    // 3 attempts x 0.8 s read timeout + backoff, far below the 30 s stall.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(msg.contains("failed after 3 attempt(s)"), "{msg}");
    assert_nothing_cached(&env.cache_dir(), TAG, LINUX_X64);
}

#[test]
fn redirects_are_followed() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(TAG, LINUX_X64, [Fault::Redirect]);
    env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    assert_eq!(env.mirror.redirect_hits(TAG, LINUX_X64), 1);
}

fn assert_rejected(bytes: Vec<u8>, expect: &str) {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, bytes);
    let err = env.fetcher().ensure(&linux_x64(TAG)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Extract { .. }), "{msg}");
    assert!(msg.contains("rejected") && msg.contains(expect), "{msg}");
    // The verified archive may stay (its bytes are what the trust anchor says), but no
    // extracted entry and no temporary tree.
    let stem = LINUX_X64.trim_end_matches(".tar.gz");
    assert!(!env.cache_dir().join(TAG).join(stem).exists());
    assert!(
        tree(&env.cache_dir())
            .iter()
            .all(|p| !p.starts_with(".tmp/")),
        "{:?}",
        tree(&env.cache_dir())
    );
    assert!(
        !env.dir.path().join("evil").exists()
            && !std::path::Path::new("/tmp/llama-prebuilt-evil").exists()
    );
}

#[test]
fn zip_slip_absolute_and_escaping_symlinks_are_rejected() {
    assert_rejected(
        archives::tar_gz_with_entry_path("llama-b20001/../../evil"),
        "..",
    );
    assert_rejected(
        archives::tar_gz_with_entry_path("/tmp/llama-prebuilt-evil"),
        "absolute",
    );
    assert_rejected(
        archives::tar_gz_with_symlink("llama-b20001/libllama.so", "../../../outside"),
        "outside",
    );
    assert_rejected(
        archives::tar_gz_with_symlink("llama-b20001/libllama.so", "/etc/passwd"),
        "/etc/passwd",
    );
}

#[test]
fn zip_slip_in_a_zip_is_rejected() {
    let mut env = Env::new();
    let asset = "llama-b20001-bin-win-cpu-x64.zip";
    env.serve(TAG, asset, archives::zip_with_entry_path("../evil.dll"));
    let req = Request::new(TAG, Target::from_triple("x86_64-pc-windows-msvc"));
    let msg = env.fetcher().ensure(&req).unwrap_err().to_string();
    assert!(msg.contains("rejected") && msg.contains(".."), "{msg}");
}

#[test]
fn a_corrupted_cache_file_is_detected_and_repaired_without_download() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let got = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    let lib = got.lib_dir.join("libllama.so.0.0.20001");
    let len = std::fs::metadata(&lib).unwrap().len() as usize;
    std::fs::write(&lib, vec![b'x'; len]).unwrap(); // same size, other bytes

    let rec = Arc::new(Recorder::default());
    let again = env
        .fetcher()
        .with_progress(rec.clone())
        .ensure(&linux_x64(TAG))
        .unwrap();
    let reason = again
        .repaired
        .as_ref()
        .expect("reported as repaired")
        .to_string();
    assert!(
        reason.contains("libllama.so.0.0.20001") && reason.contains("sha256"),
        "{reason}"
    );
    assert!(
        !again.downloaded,
        "the kept verified archive is re-extracted"
    );
    assert_ne!(std::fs::read(&lib).unwrap(), vec![b'x'; len]);
    assert!(
        rec.events()
            .iter()
            .any(|e| matches!(e, Event::Repairing { .. }))
    );
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 1);
}

#[test]
fn a_corrupted_entry_and_archive_are_downloaded_again() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let got = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    std::fs::remove_file(got.lib_dir.join("libggml.so.0")).unwrap();
    std::fs::write(env.cache_dir().join(TAG).join(LINUX_X64), b"garbage").unwrap();
    let again = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    assert!(again.repaired.unwrap().to_string().contains("libggml.so.0"));
    assert!(again.downloaded);
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 2);
    assert!(again.lib_dir.join("libggml.so").is_file());
}

#[test]
fn eight_threads_download_once() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.set_throttle(Some(2 * 1024 * 1024));
    let f = env.fetcher();
    let dirs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| f.ensure(&linux_x64(TAG)).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 1);
    assert_eq!(dirs.iter().filter(|d| d.downloaded).count(), 1);
    assert!(dirs.iter().all(|d| d.lib_dir == dirs[0].lib_dir));
}

/// Child half of `four_processes_download_once`: fetches with the configuration in env.
#[test]
fn child_process_fetch() {
    if std::env::var("LLP_CHILD_CACHE").is_err() {
        return; // only meaningful when spawned by the parent test
    }
    let config = Config {
        cache_dir: Some(std::env::var("LLP_CHILD_CACHE").unwrap().into()),
        mirror: Some(std::env::var("LLP_CHILD_MIRROR").unwrap()),
        checksums_file: Some(std::env::var("LLP_CHILD_SUMS").unwrap().into()),
        http: fast_http(),
        ..Config::default()
    };
    let got = Fetcher::new(config)
        .unwrap()
        .ensure(&linux_x64(TAG))
        .unwrap();
    assert!(got.lib_dir.join("libllama.so").is_file());
}

#[test]
fn four_processes_download_once() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.set_throttle(Some(1024 * 1024));
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_process_fetch", "--nocapture"])
                .env("LLP_CHILD_CACHE", env.cache_dir())
                .env("LLP_CHILD_MIRROR", env.mirror.download_base())
                .env("LLP_CHILD_SUMS", env.checksums_path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64),
        1,
        "four processes, one download"
    );
}

#[test]
fn offline_hit_works_and_miss_names_asset_url_and_ways_out() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let offline = |env: &Env| {
        Fetcher::new(Config {
            offline: Some("LLAMA_PREBUILT_OFFLINE=1".into()),
            ..env.config()
        })
        .unwrap()
    };
    let err = offline(&env).ensure(&linux_x64(TAG)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::OfflineMiss { .. }), "{msg}");
    let url = format!("{}/{TAG}/{LINUX_X64}", env.mirror.download_base());
    for needle in [
        "LLAMA_PREBUILT_OFFLINE=1",
        LINUX_X64,
        url.as_str(),
        "LLAMA_LIB_DIR",
        "LLAMA_PREBUILT_ARCHIVE",
        "LLAMA_PREBUILT_MIRROR",
    ] {
        assert!(msg.contains(needle), "missing {needle}: {msg}");
    }
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64) + env.mirror.api_hits(),
        0,
        "offline touches nothing"
    );

    env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    let hit = offline(&env).ensure(&linux_x64(TAG)).unwrap();
    assert!(!hit.downloaded);
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 1);
}

#[test]
fn unwritable_cache_falls_back_or_fails_clearly() {
    let env = Env::new();
    // A path below a regular file can never be created, even by root.
    let blocker = env.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let bad = blocker.join("cache");
    let err = Fetcher::new(Config {
        cache_dir: Some(bad.clone()),
        checksums_file: None,
        ..env.config()
    })
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("no writable cache directory") && msg.contains(&bad.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("LLAMA_PREBUILT_CACHE_DIR"), "{msg}");

    let fallback = env.dir.path().join("out-dir-cache");
    let rec = Arc::new(Recorder::default());
    let f = Fetcher::new(Config {
        cache_dir: Some(bad),
        fallback_cache_dir: Some(fallback.clone()),
        checksums_file: None,
        ..env.config()
    })
    .unwrap()
    .with_progress(rec.clone());
    assert_eq!(f.cache().root(), fallback);
    let notices: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Notice { .. }))
        .collect();
    assert!(
        format!("{notices:?}").contains("not writable"),
        "{notices:?}"
    );
}

#[test]
fn api_digest_is_used_when_no_checksums_file_knows_the_asset() {
    let env = Env::new();
    let bytes = linux_tar_gz(TAG);
    env.mirror.add_asset_bytes(TAG, LINUX_X64, bytes);
    let f = Fetcher::new(Config {
        checksums_file: None,
        ..env.config()
    })
    .unwrap();
    let got = f.ensure(&linux_x64(TAG)).unwrap();
    assert_eq!(
        got.digest_source.to_string(),
        "the GitHub release API digest"
    );
    assert_eq!(env.mirror.api_hits(), 1);
}

#[test]
fn no_digest_anywhere_refuses_to_download() {
    let env = Env::new();
    env.mirror
        .add_asset_bytes(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.set_digest_published(TAG, LINUX_X64, false);
    let err = Fetcher::new(Config {
        checksums_file: None,
        ..env.config()
    })
    .unwrap()
    .ensure(&linux_x64(TAG))
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NoDigest { .. }), "{msg}");
    assert!(
        msg.contains("LLAMA_PREBUILT_SHA256") && msg.contains("never uses an unverified download"),
        "{msg}"
    );
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 0);
}

#[test]
fn env_sha256_pins_an_asset_without_api() {
    let env = Env::new();
    let bytes = linux_tar_gz(TAG);
    let sha = archives::sha256_hex(&bytes);
    env.mirror.add_asset_bytes(TAG, LINUX_X64, bytes);
    let cfg = Config {
        checksums_file: None,
        sha256: Some(sha),
        api_base: Some("http://127.0.0.1:9/none".into()),
        ..env.config()
    };
    let got = Fetcher::new(cfg).unwrap().ensure(&linux_x64(TAG)).unwrap();
    assert_eq!(got.digest_source.to_string(), "LLAMA_PREBUILT_SHA256");
}

#[test]
fn a_local_archive_is_verified_and_used() {
    let env = Env::new();
    let bytes = linux_tar_gz(TAG);
    let path = env.dir.path().join(LINUX_X64);
    std::fs::write(&path, &bytes).unwrap();
    let cfg = Config {
        checksums_file: None,
        mirror: None,
        offline: Some("test".into()),
        archive: Some(path.clone()),
        sha256: Some(archives::sha256_hex(&bytes)),
        ..env.config()
    };
    let got = Fetcher::new(cfg.clone())
        .unwrap()
        .ensure(&linux_x64(TAG))
        .unwrap();
    assert!(got.lib_dir.join("libllama.so").is_file());

    let wrong = Config {
        sha256: Some("00".repeat(32)),
        cache_dir: Some(env.dir.path().join("c2")),
        ..cfg.clone()
    };
    let msg = Fetcher::new(wrong)
        .unwrap()
        .ensure(&linux_x64(TAG))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains(&path.display().to_string()),
        "{msg}"
    );

    let renamed = env.dir.path().join("renamed.tar.gz");
    std::fs::copy(&path, &renamed).unwrap();
    let msg = Fetcher::new(Config {
        archive: Some(renamed),
        ..cfg
    })
    .unwrap()
    .ensure(&linux_x64(TAG))
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("LLAMA_PREBUILT_ARCHIVE") && msg.contains(LINUX_X64),
        "{msg}"
    );
}

#[test]
fn a_file_url_mirror_works_offline() {
    let mut env = Env::new();
    let bytes = linux_tar_gz(TAG);
    env.trust(
        TAG,
        LINUX_X64,
        &archives::sha256_hex(&bytes),
        bytes.len() as u64,
    );
    let dir = env.dir.path().join("mirror");
    std::fs::create_dir_all(dir.join(TAG)).unwrap();
    std::fs::write(dir.join(TAG).join(LINUX_X64), bytes).unwrap();
    let cfg = Config {
        mirror: Some(format!("file://{}", dir.display())),
        offline: Some("test".into()),
        ..env.config()
    };
    let got = Fetcher::new(cfg).unwrap().ensure(&linux_x64(TAG)).unwrap();
    assert!(got.lib_dir.join("libllama.so").is_file());
}

#[test]
fn zip_era_and_windows_layouts_are_located() {
    let mut env = Env::new();
    let zip_asset = "llama-b6000-bin-ubuntu-x64.zip";
    env.serve("b6000", zip_asset, archives::linux_zip_era("b6000"));
    let got = env.fetcher().ensure(&linux_x64("b6000")).unwrap();
    assert!(
        got.lib_dir.ends_with("files/build/bin"),
        "{}",
        got.lib_dir.display()
    );
    assert_eq!(
        got.asset, zip_asset,
        "the zip candidate known to the checksums file is chosen"
    );

    let win = "llama-b20001-bin-win-cpu-x64.zip";
    env.serve(TAG, win, archives::windows_zip());
    let got = env
        .fetcher()
        .ensure(&Request::new(
            TAG,
            Target::from_triple("x86_64-pc-windows-msvc"),
        ))
        .unwrap();
    assert!(got.lib_dir.ends_with("files"), "{}", got.lib_dir.display());
    assert!(got.lib_dir.join("llama.dll").is_file());
}

#[test]
fn newest_tag_comes_from_the_release_list() {
    let env = Env::new();
    env.mirror
        .add_asset_bytes("b20001", LINUX_X64, linux_tar_gz("b20001"));
    env.mirror.add_asset_bytes(
        "b20005",
        "llama-b20005-bin-ubuntu-x64.tar.gz",
        linux_tar_gz("b20005"),
    );
    env.mirror.add_asset_bytes(
        "b20009",
        "llama-b20009-bin-win-cpu-x64.zip",
        archives::windows_zip(),
    );
    env.mirror.add_release("v0.9.0", false);
    // A suffixed tag is a non-official build of its number's source: never the newest release.
    env.mirror.add_asset_bytes(
        "b20007-fixture",
        "llama-b20007-fixture-bin-ubuntu-x64.tar.gz",
        linux_tar_gz("b20007-fixture"),
    );
    let f = env.fetcher();
    let t = Target::from_triple("x86_64-unknown-linux-gnu");
    assert_eq!(f.resolve_tag("newest", &t, "cpu").unwrap(), "b20005");
    assert_eq!(
        f.resolve_tag("b20007-fixture", &t, "cpu").unwrap(),
        "b20007-fixture"
    );
    assert_eq!(f.resolve_tag("b1", &t, "cpu").unwrap(), "b1");
}

#[test]
fn many_platforms_in_parallel_report_each_result() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.serve(
        TAG,
        "llama-b20001-bin-macos-arm64.tar.gz",
        archives::macos_tar_gz(TAG),
    );
    env.serve(
        TAG,
        "llama-b20001-bin-win-cpu-x64.zip",
        archives::windows_zip(),
    );
    env.serve(
        TAG,
        "llama-b20001-bin-ubuntu-arm64.tar.gz",
        linux_tar_gz(TAG),
    );
    env.mirror.inject(
        TAG,
        "llama-b20001-bin-ubuntu-arm64.tar.gz",
        (0..3).map(|_| Fault::Status(500)),
    );
    let reqs: Vec<Request> = [
        "x86_64-unknown-linux-gnu",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
        "aarch64-unknown-linux-gnu",
    ]
    .iter()
    .map(|t| Request::new(TAG, Target::from_triple(t)))
    .collect();
    let results = env.fetcher().ensure_many(&reqs, 4);
    assert!(results[0].is_ok() && results[1].is_ok() && results[2].is_ok());
    assert!(
        results[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("HTTP 500")
    );
}

#[test]
fn cache_listing_verification_and_cleaning() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    // A suffixed (non-official) tag is cached and listed like any other.
    let fixture_tag = "b20001-fixture";
    env.serve(
        fixture_tag,
        "llama-b20001-fixture-bin-ubuntu-x64.tar.gz",
        linux_tar_gz(fixture_tag),
    );
    let f = env.fetcher();
    f.ensure(&linux_x64(TAG)).unwrap();
    f.ensure(&linux_x64(fixture_tag)).unwrap();
    let foreign = env.cache_dir().join(TAG).join("my-notes");
    std::fs::create_dir_all(&foreign).unwrap();
    let entries = f.cache().entries();
    let tags: Vec<_> = entries.iter().map(|e| e.manifest.tag.as_str()).collect();
    assert_eq!(tags, [TAG, fixture_tag]);
    assert!(f.verify_cache().iter().all(|(_, r)| r.is_ok()));
    std::fs::write(env.cache_dir().join(TAG).join(LINUX_X64), b"x").unwrap();
    let bad: Vec<_> = f
        .verify_cache()
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .collect();
    assert_eq!(bad.len(), 1);
    let report = f.cache().clean(None).unwrap();
    assert!(report.freed > 0 && report.removed.len() >= 3);
    assert!(foreign.is_dir(), "clean leaves what it did not create");
    assert!(f.cache().entries().is_empty());
}

#[test]
fn offline_newest_and_release_listing_say_they_need_the_api() {
    let env = Env::new();
    let f = Fetcher::new(Config {
        offline: Some("CARGO_NET_OFFLINE=true".into()),
        checksums_file: None,
        ..env.config()
    })
    .unwrap();
    let t = Target::from_triple("x86_64-unknown-linux-gnu");
    let msg = f.resolve_tag("newest", &t, "cpu").unwrap_err().to_string();
    assert!(
        msg.contains("offline (CARGO_NET_OFFLINE=true)")
            && msg.contains("resolve the newest release"),
        "{msg}"
    );
    assert!(msg.contains("name an exact tag"), "{msg}");
    let msg = f.release("b10199").unwrap_err().to_string();
    assert!(
        msg.contains("list the release's assets") && msg.contains("/releases/tags/b10199"),
        "{msg}"
    );
    assert_eq!(env.mirror.api_hits(), 0);
}
