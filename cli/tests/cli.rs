//! The `llama-prebuilt` binary end to end, against the fault-injecting loopback mirror.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use llama_prebuilt_test_support::archives::{linux_tar_gz, macos_tar_gz, sha256_hex, windows_zip};
use llama_prebuilt_test_support::mirror::Fault;
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// Serves an asset for each of the six default platforms at `tag`.
fn serve_all_platforms(env: &mut Env, tag: &str) {
    env.serve(
        tag,
        &format!("llama-{tag}-bin-ubuntu-x64.tar.gz"),
        linux_tar_gz(tag),
    );
    env.serve(
        tag,
        &format!("llama-{tag}-bin-ubuntu-arm64.tar.gz"),
        linux_tar_gz(tag),
    );
    env.serve(
        tag,
        &format!("llama-{tag}-bin-macos-arm64.tar.gz"),
        macos_tar_gz(tag),
    );
    env.serve(
        tag,
        &format!("llama-{tag}-bin-macos-x64.tar.gz"),
        macos_tar_gz(tag),
    );
    env.serve(
        tag,
        &format!("llama-{tag}-bin-win-cpu-x64.zip"),
        windows_zip(),
    );
    env.serve(
        tag,
        &format!("llama-{tag}-bin-win-cpu-arm64.zip"),
        windows_zip(),
    );
}

// ---------------------------------------------------------------- download

#[test]
fn download_one_target_reports_the_library_dir_then_hits_the_cache() {
    let mut env = Env::new();
    let sha = env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let run = env.download().run().ok();
    assert!(
        run.stdout.starts_with(&format!(
            "llama.cpp {TAG} (cpu) for {LINUX_X64_TRIPLE}: downloaded"
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains(LINUX_X64) && run.stdout.contains(&sha),
        "{run}"
    );
    assert!(run.stdout.contains("checksums file"), "{run}");
    // Not a terminal: plain progress lines on stderr, nothing else on stdout.
    assert!(
        run.stderr.contains(&format!("{LINUX_X64}: downloading")),
        "{run}"
    );
    assert!(run.stderr.contains("matches checksums file"), "{run}");
    let lib_line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("library dir"))
        .expect("library dir line");
    let lib_dir = PathBuf::from(
        lib_line
            .trim_start()
            .trim_start_matches("library dir")
            .trim(),
    );
    assert!(
        lib_dir.join("libllama.so").is_file(),
        "{}",
        lib_dir.display()
    );
    assert!(
        lib_dir.starts_with(env.cache_dir()),
        "{}",
        lib_dir.display()
    );

    let again = env.download().json().args(&["-q"]).run().ok();
    assert!(
        again.stderr.is_empty(),
        "--quiet prints no progress: {again}"
    );
    let j = again.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["status"], "cached");
    assert_eq!(j["tag"], TAG);
    assert_eq!(j["platform"], "linux-x64");
    assert_eq!(j["asset"], LINUX_X64);
    assert_eq!(j["sha256"], sha.as_str());
    assert_eq!(j["digest_label"], "checksums-file");
    assert_eq!(PathBuf::from(s(&j["lib_dir"])), lib_dir);
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64),
        1,
        "the second run is a cache hit"
    );
}

#[test]
fn download_respects_the_build_script_variables() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    // LLAMA_PREBUILT_VERSION picks the tag like it does for a build.
    let j = env
        .download()
        .without_version()
        .json()
        .vars(&[("LLAMA_PREBUILT_VERSION", TAG)])
        .run()
        .ok()
        .json();
    assert_eq!(j["tag"], TAG);
    assert_eq!(j["status"], "downloaded");
}

#[test]
fn parallel_download_reports_the_failed_platform_and_exits_non_zero() {
    let mut env = Env::new();
    serve_all_platforms(&mut env, TAG);
    let arm = format!("llama-{TAG}-bin-ubuntu-arm64.tar.gz");
    env.mirror
        .inject(TAG, &arm, (0..10).map(|_| Fault::Status(500)));
    let platforms = "linux-x64,linux-arm64,macos-arm64,windows-x64";
    let run = env
        .download()
        .platforms(platforms)
        .args(&["--jobs", "4", "--retries", "1"])
        .run()
        .failed();
    assert!(run.stdout.contains("3 of 4 platforms ready"), "{run}");
    let row = |key: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no row {key}:\n{run}"))
            .to_string()
    };
    assert!(
        row("linux-arm64").contains("FAILED") && row("linux-arm64").contains(&arm),
        "{run}"
    );
    for ok in ["linux-x64", "macos-arm64", "windows-x64"] {
        assert!(
            row(ok).contains("downloaded") && row(ok).contains("checksums-file"),
            "{ok}:\n{run}"
        );
    }
    assert!(
        run.stdout.contains("linux-arm64 failed:") && run.stdout.contains("HTTP 500"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("error: 1 of 4 platforms failed: linux-arm64"),
        "{run}"
    );
    assert!(
        run.stderr.contains("attempt 1 failed (HTTP 500); retrying"),
        "{run}"
    );
    assert_eq!(env.mirror.hits(TAG, &arm), 2, "--retries 1: two attempts");
    let arm_entry = env
        .cache_dir()
        .join(TAG)
        .join(arm.trim_end_matches(".tar.gz"));
    assert!(
        !arm_entry.exists(),
        "nothing cached for the failed platform"
    );

    // Again as JSON: the three good ones are cached now, the failure is still reported.
    let run = env
        .download()
        .platforms(platforms)
        .args(&["--retries", "0"])
        .json()
        .run()
        .failed();
    let j = run.json();
    assert_eq!(j["ok"], false);
    assert_eq!(
        (j["succeeded"].as_u64(), j["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let results = j["results"].as_array().unwrap();
    let keys: Vec<&str> = results.iter().map(|r| s(&r["platform"])).collect();
    assert_eq!(
        keys,
        ["linux-x64", "linux-arm64", "macos-arm64", "windows-x64"],
        "input order is kept"
    );
    assert_eq!(results[1]["status"], "failed");
    assert_eq!(results[1]["asset"], arm.as_str());
    assert!(s(&results[1]["error"]).contains("HTTP 500"), "{run}");
    for i in [0, 2, 3] {
        assert_eq!(results[i]["status"], "cached", "{run}");
        assert!(Path::new(s(&results[i]["lib_dir"])).is_dir());
    }
    assert!(
        run.stderr.contains("error: 1 of 4 platforms failed"),
        "{run}"
    );
}

#[test]
fn download_all_fetches_the_six_default_platforms() {
    let mut env = Env::new();
    serve_all_platforms(&mut env, TAG);
    let run = env.download().all().json().args(&["-j", "3"]).run().ok();
    let j = run.json();
    assert_eq!(j["ok"], true);
    let results = j["results"].as_array().unwrap();
    let keys: Vec<&str> = results.iter().map(|r| s(&r["platform"])).collect();
    assert_eq!(
        keys,
        [
            "linux-x64",
            "linux-arm64",
            "macos-arm64",
            "macos-x64",
            "windows-x64",
            "windows-arm64"
        ]
    );
    for r in results {
        assert_eq!(r["status"], "downloaded", "{run}");
        assert!(Path::new(s(&r["lib_dir"])).is_dir(), "{run}");
    }
    let win = Path::new(s(&results[4]["lib_dir"]));
    assert!(win.join("llama.dll").is_file(), "{}", win.display());
}

#[test]
fn newest_is_resolved_through_the_api_and_verified_with_its_digest() {
    let env = Env::new();
    for tag in ["b20001", "b20003", "b20002"] {
        // Not in the checksums file: the API's digest is the only one.
        env.mirror.add_asset_bytes(
            tag,
            &format!("llama-{tag}-bin-ubuntu-x64.tar.gz"),
            linux_tar_gz(tag),
        );
    }
    let j = env.download().version("newest").json().run().ok().json();
    assert_eq!(j["tag"], "b20003");
    assert_eq!(j["digest_label"], "github-api");
}

#[test]
fn offline_download_with_a_cold_cache_fails_with_guidance() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    for offline in [
        ("LLAMA_PREBUILT_OFFLINE", "1"),
        ("CARGO_NET_OFFLINE", "true"),
    ] {
        let run = env.download().vars(&[offline]).run().failed();
        assert!(run.stderr.starts_with("error: offline ("), "{run}");
        assert!(run.stderr.contains(offline.0), "{run}");
        for way_out in [
            "LLAMA_LIB_DIR",
            "LLAMA_PREBUILT_ARCHIVE",
            "LLAMA_PREBUILT_MIRROR",
            LINUX_X64,
        ] {
            assert!(run.stderr.contains(way_out), "{way_out} missing:\n{run}");
        }
        assert!(run.stdout.is_empty(), "{run}");
    }
    let json = env
        .download()
        .json()
        .vars(&[("LLAMA_PREBUILT_OFFLINE", "1")])
        .run()
        .failed();
    assert_eq!(json.json()["ok"], false);
    assert!(s(&json.json()["error"]).contains("LLAMA_LIB_DIR"));
    assert_eq!(env.mirror.hits(TAG, LINUX_X64), 0);
    assert_eq!(
        env.mirror.api_hits(),
        0,
        "offline touches no network at all"
    );

    // Once cached, offline works.
    env.download().run().ok();
    let run = env
        .download()
        .vars(&[("LLAMA_PREBUILT_OFFLINE", "1")])
        .run()
        .ok();
    assert!(run.stdout.contains(": cached"), "{run}");
}

#[test]
fn argument_and_target_errors_explain_themselves() {
    let env = Env::new();
    let run = env
        .download()
        .without_version()
        .platforms("linux-x64,beos-x86")
        .run()
        .failed();
    assert!(
        run.stderr.contains("error: unknown platform `beos-x86`")
            && run.stderr.contains("macos-arm64"),
        "{run}"
    );
    let run = env
        .download()
        .version("v1.2")
        .without_target()
        .run()
        .failed();
    assert!(run.stderr.contains("not a llama.cpp release tag"), "{run}");
    let run = env
        .download()
        .target("riscv64gc-unknown-linux-gnu")
        .run()
        .failed();
    assert!(
        run.stderr.contains("riscv64gc-unknown-linux-gnu") && run.stderr.contains("LLAMA_LIB_DIR"),
        "{run}"
    );
    let run = env.download().args(&["--variant", "metal"]).run().failed();
    assert!(run.stderr.contains("variant `metal`"), "{run}");
    // Usage errors are clap's (exit code 2).
    let run = env
        .download()
        .without_version()
        .all()
        .target(LINUX_X64_TRIPLE)
        .run();
    assert_eq!(run.code, Some(2), "{run}");
}

#[test]
fn an_interrupted_download_publishes_nothing_and_the_next_run_cleans_up() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.mirror.inject(
        TAG,
        LINUX_X64,
        [Fault::Stall {
            after: 100,
            duration: Duration::from_secs(20),
        }],
    );
    let mut child = env
        .download()
        .vars(&[("LLAMA_PREBUILT_TIMEOUT", "30")])
        .cmd()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tmp = env.cache_dir().join(".tmp");
    let start = Instant::now();
    let partial = || tree(&tmp).into_iter().any(|p| p.starts_with(LINUX_X64));
    while !partial() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the download never started: {:?}",
            tree(&env.cache_dir())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stem = LINUX_X64.trim_end_matches(".tar.gz");
    assert!(
        !env.cache_dir().join(TAG).join(stem).exists(),
        "{:?}",
        tree(&env.cache_dir())
    );
    assert!(
        !env.cache_dir().join(TAG).join(LINUX_X64).exists(),
        "{:?}",
        tree(&env.cache_dir())
    );

    let run = env.download().run().ok();
    assert!(run.stdout.contains("downloaded"), "{run}");
    assert!(
        tree(&tmp).is_empty(),
        "the leftover was swept: {:?}",
        tree(&tmp)
    );
}

// ---------------------------------------------------------------- verify

#[test]
fn verify_a_file_with_and_without_an_expected_digest() {
    let env = Env::new();
    let file = env.dir.path().join("some.bin");
    std::fs::write(&file, b"hello llama").unwrap();
    let sha = sha256_hex(b"hello llama");
    let f = file.to_str().unwrap();

    let run = env.run(&["verify", f]).ok();
    assert!(
        run.stdout.starts_with(&format!("{sha}  {f}\n11 bytes\n")),
        "{run}"
    );
    assert!(run.stdout.contains("pass --sha256"), "{run}");

    let run = env
        .run(&["verify", f, "--sha256", &sha.to_uppercase()])
        .ok();
    assert!(
        run.stdout.contains("OK: matches the sha256 from --sha256"),
        "{run}"
    );
    let j = env
        .run(&["verify", f, "--sha256", &format!("sha256:{sha}"), "--json"])
        .ok()
        .json();
    assert_eq!(
        (j["ok"].clone(), j["matches"].clone(), j["size"].clone()),
        (true.into(), true.into(), 11.into())
    );
    assert_eq!(j["sha256"], sha.as_str());

    let wrong = "0".repeat(64);
    let run = env.run(&["verify", f, "--sha256", &wrong]).failed();
    assert!(run.stdout.contains("MISMATCH"), "{run}");
    assert!(
        run.stderr
            .contains(&format!("error: sha256 mismatch for {f}")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&wrong) && run.stderr.contains(&sha),
        "both digests are shown:\n{run}"
    );
    let run = env
        .run(&["verify", f, "--sha256", &wrong, "--json"])
        .failed();
    let j = run.json();
    assert_eq!(
        (j["ok"].clone(), j["matches"].clone()),
        (false.into(), false.into())
    );
    assert_eq!(j["expected"], wrong.as_str());

    let run = env.run(&["verify", f, "--sha256", "xyz"]).failed();
    assert!(run.stderr.contains("not a 64-digit hex sha256"), "{run}");
    let run = env.run(&["verify", "/no/such/file"]).failed();
    assert!(run.stderr.contains("/no/such/file"), "{run}");
}

#[test]
fn verify_checks_a_release_asset_against_the_checksums_files() {
    let mut env = Env::new();
    let bytes = linux_tar_gz(TAG);
    env.serve(TAG, LINUX_X64, bytes.clone());
    let file = env.dir.path().join(LINUX_X64);
    std::fs::write(&file, &bytes).unwrap();
    let run = env.run(&["verify", file.to_str().unwrap()]).ok();
    assert!(
        run.stdout
            .contains("OK: matches the sha256 from checksums file"),
        "{run}"
    );
    std::fs::write(&file, b"tampered").unwrap();
    let run = env.run(&["verify", file.to_str().unwrap()]).failed();
    assert!(
        run.stderr.contains("sha256 mismatch") && run.stderr.contains("checksums file"),
        "{run}"
    );
}

#[test]
fn verify_cache_finds_a_corrupted_entry_and_download_repairs_it() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let empty = env.run(&["verify", "--cache"]).ok();
    assert!(empty.stdout.contains("holds no assets"), "{empty}");
    let j = env.download().json().run().ok().json();
    let lib_dir = PathBuf::from(s(&j["lib_dir"]));

    let run = env.run(&["verify", "--cache"]).ok();
    assert!(
        run.stdout.contains(LINUX_X64) && run.stdout.contains("1 of 1 cached assets"),
        "{run}"
    );

    let lib = std::fs::canonicalize(lib_dir.join("libllama.so")).unwrap();
    let len = std::fs::metadata(&lib).unwrap().len() as usize;
    std::fs::write(&lib, vec![b'x'; len]).unwrap();
    let run = env.run(&["verify", "--cache"]).failed();
    assert!(run.stdout.contains("CORRUPT"), "{run}");
    assert!(
        run.stderr.contains("1 of 1 cached assets do not match") && run.stderr.contains("repairs"),
        "{run}"
    );
    let j = env.run(&["verify", "--cache", "--json"]).failed().json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["entries"][0]["ok"], false);
    assert!(s(&j["entries"][0]["problem"]).contains("sha256"), "{j}");

    let j = env.download().json().run().ok().json();
    assert_eq!(j["status"], "repaired");
    env.run(&["verify", "--cache"]).ok();
}

// ---------------------------------------------------------------- list

#[test]
fn list_shows_the_release_assets_and_the_platform_using_each() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    env.serve(TAG, "llama-b20001-bin-win-cpu-x64.zip", windows_zip());
    env.serve(TAG, "llama-b20001-bin-win-vulkan-x64.zip", windows_zip());
    env.serve(
        TAG,
        "cudart-llama-bin-win-cuda-12.4-x64.zip",
        b"runtime".to_vec(),
    );
    let run = env.run(&["list", "--version", TAG]).ok();
    assert!(
        run.stdout
            .starts_with(&format!("llama.cpp {TAG}: 4 assets (from the release API)")),
        "{run}"
    );
    let row = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{run}"))
            .to_string()
    };
    assert!(row(LINUX_X64).ends_with("linux-x64 (cpu)"), "{run}");
    assert!(
        row("llama-b20001-bin-win-vulkan-x64.zip").ends_with("windows-x64 (vulkan)"),
        "{run}"
    );
    assert!(
        row("cudart-llama-bin-win-cuda-12.4-x64.zip").ends_with(" -"),
        "{run}"
    );
    assert!(row("macos-arm64").contains("not in this listing"), "{run}");

    let j = env.run(&["list", "--version", TAG, "--json"]).ok().json();
    assert_eq!(j["source"], "github-api");
    let assets = j["assets"].as_array().unwrap();
    let linux = assets.iter().find(|a| a["name"] == LINUX_X64).unwrap();
    assert_eq!(linux["used_by"][0]["platform"], "linux-x64");
    assert_eq!(linux["sha256"], sha256_hex(&linux_tar_gz(TAG)).as_str());
    let platforms = j["platforms"].as_array().unwrap();
    let p = |key: &str| {
        platforms
            .iter()
            .find(|p| p["platform"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(p("linux-x64")["asset"], LINUX_X64);
    assert_eq!(
        p("windows-x64")["asset"],
        "llama-b20001-bin-win-cpu-x64.zip"
    );
    assert!(p("macos-arm64")["asset"].is_null());

    let j = env
        .run(&["list", "--version", TAG, "--variant", "vulkan", "--json"])
        .ok()
        .json();
    let platforms = j["platforms"].as_array().unwrap();
    let win = platforms
        .iter()
        .find(|p| p["platform"] == "windows-x64")
        .unwrap();
    assert_eq!(win["asset"], "llama-b20001-bin-win-vulkan-x64.zip");
}

#[test]
fn list_offline_falls_back_to_the_checksums_files() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let run = env
        .run_env(
            &["list", "--version", TAG, "--json"],
            &[("LLAMA_PREBUILT_OFFLINE", "1")],
        )
        .ok();
    let j = run.json();
    assert_eq!(j["source"], "checksums");
    assert_eq!(j["assets"][0]["name"], LINUX_X64);
    assert!(run.stderr.contains("note: offline"), "{run}");
    assert_eq!(env.mirror.api_hits(), 0);
    let run = env
        .run_env(
            &["list", "--version", "b20999"],
            &[("LLAMA_PREBUILT_OFFLINE", "1")],
        )
        .failed();
    assert!(run.stderr.contains("error: offline"), "{run}");
}

// ---------------------------------------------------------------- cache

#[test]
fn cache_path_list_and_clean_touch_only_what_the_tool_created() {
    let mut env = Env::new();
    let cache = env.cache_dir();
    let run = env.run(&["cache", "path"]).ok();
    assert_eq!(run.stdout, format!("{}\n", cache.display()));
    let j = env.run(&["cache", "path", "--json"]).ok().json();
    assert_eq!(PathBuf::from(s(&j["path"])), cache);
    let run = env.run(&["cache", "list"]).ok();
    assert!(run.stdout.starts_with("no cached assets"), "{run}");

    for tag in ["b20001", "b20002"] {
        env.serve(
            tag,
            &format!("llama-{tag}-bin-ubuntu-x64.tar.gz"),
            linux_tar_gz(tag),
        );
        env.download().version(tag).args(&["-q"]).run().ok();
    }
    // Things the tool did not create, at the root and inside a tag directory.
    std::fs::create_dir_all(cache.join("my-models")).unwrap();
    std::fs::write(cache.join("my-models/keep.gguf"), b"precious").unwrap();
    std::fs::write(cache.join("notes.txt"), b"mine").unwrap();
    std::fs::create_dir_all(cache.join("b20001/not-ours")).unwrap();
    std::fs::write(cache.join("b20001/not-ours/file"), b"mine too").unwrap();

    let run = env.run(&["cache", "list"]).ok();
    assert!(
        run.stdout.contains("llama-b20001-bin-ubuntu-x64.tar.gz")
            && run.stdout.contains("llama-b20002-bin-ubuntu-x64.tar.gz"),
        "{run}"
    );
    assert!(run.stdout.contains("2 assets"), "{run}");
    let j = env.run(&["cache", "list", "--json"]).ok().json();
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e["ok"] == true && e["disk_bytes"].as_u64().unwrap() > 0),
        "{j}"
    );
    let b1_bytes = entries[0]["disk_bytes"].as_u64().unwrap();
    assert_eq!(
        j["total_bytes"].as_u64(),
        Some(
            entries
                .iter()
                .map(|e| e["disk_bytes"].as_u64().unwrap())
                .sum()
        )
    );

    let j = env
        .run(&["cache", "clean", "--version", "b20001", "--json"])
        .ok()
        .json();
    assert_eq!(
        j["freed_bytes"].as_u64(),
        Some(b1_bytes),
        "freed = what the entry and its archive used"
    );
    assert_eq!(
        j["removed"].as_array().unwrap().len(),
        2,
        "entry dir + archive: {j}"
    );
    assert!(!cache.join("b20001/llama-b20001-bin-ubuntu-x64").exists());
    assert!(
        cache.join("b20001/not-ours/file").is_file(),
        "foreign dir in a tag dir stays"
    );
    assert!(
        cache
            .join("b20002/llama-b20002-bin-ubuntu-x64/manifest.json")
            .is_file(),
        "other tags stay"
    );

    let run = env.run(&["cache", "clean", "--all"]).ok();
    assert!(
        run.stdout.contains("removed ") && run.stdout.contains("freed "),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "left untouched (not created by llama-prebuilt): b20001, my-models, notes.txt"
        ),
        "{run}"
    );
    assert_eq!(
        std::fs::read(cache.join("my-models/keep.gguf")).unwrap(),
        b"precious"
    );
    assert_eq!(std::fs::read(cache.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read(cache.join("b20001/not-ours/file")).unwrap(),
        b"mine too"
    );
    assert!(
        !cache.join("b20002").exists(),
        "an emptied tag directory goes too"
    );

    let run = env.run(&["cache", "clean", "--all"]).ok();
    assert!(run.stdout.contains("nothing cached"), "{run}");
    let run = env.run(&["cache", "clean", "--version", "latest"]).failed();
    assert!(run.stderr.contains("not a llama.cpp release tag"), "{run}");
}

// ---------------------------------------------------------------- doctor

#[test]
fn doctor_json_lists_the_set_overrides_and_hides_the_token() {
    let mut env = Env::new();
    let sha = env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let token = "ghp_doNotPrintThisSecret123";
    let vars = [
        ("GITHUB_TOKEN", token),
        ("LLAMA_PREBUILT_VERSION", TAG),
        ("LLAMA_PREBUILT_VARIANT", "cpu"),
    ];
    let args = ["doctor", "--target", LINUX_X64_TRIPLE, "--json"];
    let run = env.run_env(&args, &vars).ok();
    assert!(
        !run.stdout.contains(token) && !run.stderr.contains(token),
        "{run}"
    );
    let j = run.json();
    let o = &j["overrides"];
    assert_eq!(o["GITHUB_TOKEN"], "set");
    assert_eq!(o["LLAMA_PREBUILT_VERSION"], TAG);
    assert_eq!(
        o["LLAMA_PREBUILT_MIRROR"],
        env.mirror.download_base().as_str()
    );
    assert_eq!(
        PathBuf::from(s(&o["LLAMA_PREBUILT_CACHE_DIR"])),
        env.cache_dir()
    );
    assert_eq!(
        PathBuf::from(s(&o["LLAMA_PREBUILT_CHECKSUMS"])),
        env.checksums_path()
    );
    assert!(
        o.get("LLAMA_LIB_DIR").is_none(),
        "unset variables are not listed: {o}"
    );
    assert_eq!(j["tag"], TAG);
    assert_eq!(j["tag_source"], "LLAMA_PREBUILT_VERSION");
    assert_eq!(j["target"], LINUX_X64_TRIPLE);
    assert_eq!(j["platform"], "linux-x64");
    assert_eq!(j["asset"], LINUX_X64);
    assert_eq!(
        j["url"],
        format!("{}/{TAG}/{LINUX_X64}", env.mirror.download_base()).as_str()
    );
    assert_eq!(j["digest"]["sha256"], sha.as_str());
    assert_eq!(j["digest"]["label"], "checksums-file");
    assert_eq!(j["cache"]["state"], "absent");
    assert_eq!(j["offline"], false);
    assert!(s(&j["action"]).starts_with("download "), "{j}");
    assert_eq!(j["ok"], true);
    assert_eq!(
        env.mirror.hits(TAG, LINUX_X64),
        0,
        "doctor downloads nothing"
    );

    let human = env
        .run_env(&["doctor", "--target", LINUX_X64_TRIPLE], &vars)
        .ok();
    assert!(
        human.stdout.contains("GITHUB_TOKEN=set") && !human.stdout.contains(token),
        "{human}"
    );
    assert!(
        human
            .stdout
            .contains(&format!("tag           {TAG} (LLAMA_PREBUILT_VERSION)")),
        "{human}"
    );

    env.download().without_version().vars(&vars).run().ok();
    let j = env.run_env(&args, &vars).ok().json();
    assert_eq!(j["cache"]["state"], "cached");
    assert!(
        s(&j["action"]).starts_with("use the cached libraries"),
        "{j}"
    );
}

#[test]
fn doctor_reports_problems_that_would_stop_a_build() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let vars = [
        ("LLAMA_PREBUILT_VERSION", TAG),
        ("LLAMA_PREBUILT_OFFLINE", "1"),
    ];
    let run = env
        .run_env(&["doctor", "--target", LINUX_X64_TRIPLE, "--json"], &vars)
        .failed();
    let j = run.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["offline"], true);
    assert!(s(&j["problems"][0]).contains("LLAMA_LIB_DIR"), "{run}");
    assert!(
        run.stderr.contains("error: doctor found 1 problem(s)"),
        "{run}"
    );

    let run = env
        .run_env(
            &["doctor", "--target", "riscv64gc-unknown-linux-gnu"],
            &vars[..1],
        )
        .failed();
    assert!(
        run.stdout
            .contains("target        riscv64gc-unknown-linux-gnu (--target)"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("no prebuilt llama.cpp release asset exists"),
        "{run}"
    );

    // `newest` needs the API: resolved online, a problem offline.
    env.mirror.add_asset_bytes(
        "b20002",
        "llama-b20002-bin-ubuntu-x64.tar.gz",
        linux_tar_gz("b20002"),
    );
    let newest = [("LLAMA_PREBUILT_VERSION", "newest")];
    let j = env
        .run_env(&["doctor", "--target", LINUX_X64_TRIPLE, "--json"], &newest)
        .ok()
        .json();
    assert_eq!(
        (j["tag"].clone(), j["tag_requested"].clone()),
        ("b20002".into(), "newest".into())
    );
    assert_eq!(
        j["digest"],
        Value::Null,
        "b20002 is only vouched for by the API"
    );
    assert!(s(&j["action"]).contains("GitHub release API"), "{j}");
    let run = env
        .run_env(
            &["doctor", "--target", LINUX_X64_TRIPLE],
            &[newest[0], ("CARGO_NET_OFFLINE", "true")],
        )
        .failed();
    assert!(
        run.stdout
            .contains("newest (LLAMA_PREBUILT_VERSION), unresolved"),
        "{run}"
    );
    assert!(run.stderr.contains("needs the GitHub release API"), "{run}");

    // LLAMA_LIB_DIR means no download at all, offline or not.
    let run = env
        .run_env(
            &["doctor", "--json"],
            &[
                ("LLAMA_LIB_DIR", "/opt/llama/lib"),
                ("LLAMA_PREBUILT_OFFLINE", "1"),
            ],
        )
        .ok();
    assert!(s(&run.json()["action"]).contains("/opt/llama/lib"), "{run}");
}

// ---------------------------------------------------------------- output plumbing

#[cfg(unix)]
#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = Env::new();
    let file = env.dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .cmd()
        .args(["verify", file.to_str().unwrap()])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
