//! End to end: real downstream crates, created in temp dirs, depend on `llama-prebuilt-sys` by
//! path and are built with `cargo` against the loopback mirror serving the fixture release
//! (llama.cpp b10199's source from its PyPI sdist, built here and labelled `b10199-fixture`).
//! Each scenario asserts what the mirror saw, so "hits the cache" and "offline" are facts, not
//! hopes.
//!
//! These spawn full cargo builds (a fresh target dir compiles ureq, rustls, bindgen, ...), so
//! they run one at a time.

mod committed_bindings;
mod downstream;
mod macos;
mod vulkan;
mod windows_gnu;

use std::sync::Mutex;

use downstream::{Downstream, World};

/// Serialises the scenarios: each one runs cargo, which wants both cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fresh_build_downloads_once_runs_and_a_second_crate_hits_the_cache() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("fresh-app", world);
    let before = world.hits();

    let out = app.cargo(&["build"], &[]);
    out.assert_ok("cargo build");
    assert_eq!(
        world.hits(),
        before + 1,
        "the first build downloads the archive exactly once"
    );
    assert!(
        out.stderr
            .lines()
            .all(|l| !l.contains("warning: llama-prebuilt")),
        "a clean build prints nothing:\n{}",
        out.stderr
    );

    // (a) through cargo: the staged OUT_DIR lib dir is on the dynamic-library path.
    let run = app.cargo(&["run", "--quiet"], &[]);
    run.assert_ok("cargo run");
    // Dependents see the `links = "llama"` metadata.
    assert!(
        run.stdout.contains("version=b10199-fixture") && run.stdout.contains("/out/lib"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("devices: ") && run.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        run.stdout
    );

    // (b) directly from target/debug with no library path: the copies next to the binary and
    // the `$ORIGIN` rpath line of the README make it self-contained.
    let direct = app.run_binary();
    direct.assert_ok("target/debug/fresh-app");
    assert!(
        direct.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        direct.stdout
    );

    // Another fresh crate, fresh target dir, same shared cache: no download.
    let other = Downstream::create("second-app", world);
    other.cargo(&["build"], &[]).assert_ok("second cargo build");
    assert_eq!(
        world.hits(),
        before + 1,
        "the second fresh build is served by the cache"
    );
}

#[test]
fn offline_builds_work_warm_and_fail_cold_with_guidance() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("offline-app", world);
    app.cargo(&["build"], &[]).assert_ok("warm-up build");
    let hits = world.hits();

    app.cargo(&["build"], &[("LLAMA_PREBUILT_OFFLINE", "1")])
        .assert_ok("offline, warm cache");
    app.cargo(&["build"], &[("CARGO_NET_OFFLINE", "true")])
        .assert_ok("cargo offline, warm cache");
    assert_eq!(world.hits(), hits);

    let cold = tempfile::tempdir().unwrap();
    let cold_dir = cold.path().to_str().unwrap();
    let out = app.cargo(
        &["build"],
        &[
            ("LLAMA_PREBUILT_OFFLINE", "1"),
            ("LLAMA_PREBUILT_CACHE_DIR", cold_dir),
        ],
    );
    assert!(!out.ok, "a cold offline build must fail");
    for needle in [
        "offline (LLAMA_PREBUILT_OFFLINE=1",
        "llama-b10199-fixture-bin-ubuntu-x64.tar.gz",
        "LLAMA_LIB_DIR",
        "LLAMA_PREBUILT_ARCHIVE",
        "LLAMA_PREBUILT_MIRROR",
    ] {
        assert!(
            out.stderr.contains(needle),
            "missing `{needle}` in:\n{}",
            out.stderr
        );
    }
    assert_eq!(world.hits(), hits, "offline never touches the network");
}

#[test]
fn lib_dir_uses_a_local_build_without_network() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("libdir-app", world);
    let hits = world.hits();
    let lib = world.fixture.lib_dir.to_str().unwrap().to_string();
    // A dead mirror proves nothing is fetched.
    let env = [
        ("LLAMA_LIB_DIR", lib.as_str()),
        ("LLAMA_PREBUILT_MIRROR", "http://127.0.0.1:9/nothing"),
    ];
    app.cargo(&["build"], &env).assert_ok("LLAMA_LIB_DIR build");
    let run = app.cargo(&["run", "--quiet"], &env);
    run.assert_ok("LLAMA_LIB_DIR run");
    assert!(
        run.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        run.stdout
    );
    assert_eq!(world.hits(), hits);

    let bad = app.cargo(&["build"], &[("LLAMA_LIB_DIR", "/nonexistent/llama")]);
    assert!(
        !bad.ok && bad.stderr.contains("LLAMA_LIB_DIR=/nonexistent/llama"),
        "{}",
        bad.stderr
    );
}

#[test]
fn another_tag_builds_with_its_own_headers_fetched_from_the_source_tree() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("tag-app", world);
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    // Cold and offline: the headers of b10199-fixture cannot be had, and the error says what to do.
    let out = app.cargo(
        &["build"],
        &[
            ("LLAMA_INCLUDE_DIR", ""),
            ("LLAMA_PREBUILT_OFFLINE", "1"),
            ("LLAMA_PREBUILT_CACHE_DIR", cache_dir),
        ],
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("C headers of llama.cpp b10199-fixture")
            && out.stderr.contains("LLAMA_INCLUDE_DIR"),
        "{}",
        out.stderr
    );
    // Online: fetched from the (mirrored) source tree of exactly that tag, never the vendored ones.
    let hits = world.mirror.hits("b10199-fixture", "raw:include/llama.h");
    let out = app.cargo(
        &["build"],
        &[
            ("LLAMA_INCLUDE_DIR", ""),
            ("LLAMA_PREBUILT_CACHE_DIR", cache_dir),
        ],
    );
    out.assert_ok("build with fetched headers");
    assert_eq!(
        world.mirror.hits("b10199-fixture", "raw:include/llama.h"),
        hits + 1
    );
    assert!(
        out.stderr
            .contains("headers of b10199-fixture fetched from"),
        "the trust-on-first-use is said:\n{}",
        out.stderr
    );
    let run = app.cargo(
        &["run", "--quiet"],
        &[
            ("LLAMA_INCLUDE_DIR", ""),
            ("LLAMA_PREBUILT_CACHE_DIR", cache_dir),
        ],
    );
    run.assert_ok("run with fetched headers");
    assert!(
        run.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        run.stdout
    );

    let out = app.cargo(&["build"], &[("LLAMA_INCLUDE_DIR", "/nonexistent")]);
    assert!(
        !out.ok && out.stderr.contains("has no llama.h"),
        "{}",
        out.stderr
    );
}

#[test]
fn checksum_mismatch_fails_the_build_with_both_digests() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("mismatch-app", world);
    let sums = tempfile::NamedTempFile::new().unwrap();
    let wrong = "0".repeat(64);
    std::fs::write(
        sums.path(),
        format!("[b10199-fixture]\n\"llama-b10199-fixture-bin-ubuntu-x64.tar.gz\" = {{ sha256 = \"{wrong}\" }}\n"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = app.cargo(
        &["build"],
        &[
            ("LLAMA_PREBUILT_CHECKSUMS", sums.path().to_str().unwrap()),
            ("LLAMA_PREBUILT_CACHE_DIR", cache.path().to_str().unwrap()),
        ],
    );
    assert!(!out.ok);
    let actual = &world
        .fixture
        .archive("llama-b10199-fixture-bin-ubuntu-x64.tar.gz")
        .unwrap()
        .sha256;
    assert!(
        out.stderr.contains("checksum mismatch")
            && out.stderr.contains(&wrong)
            && out.stderr.contains(actual.as_str()),
        "{}",
        out.stderr
    );
}

#[test]
fn docs_rs_builds_docs_without_network() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create("docs-app", world);
    let hits = world.hits();
    let cache = tempfile::tempdir().unwrap();
    let out = app.cargo(
        &["doc", "-p", "llama-prebuilt-sys", "--no-deps"],
        &[
            ("DOCS_RS", "1"),
            ("LLAMA_PREBUILT_VERSION", ""),
            ("LLAMA_INCLUDE_DIR", ""),
            ("LLAMA_PREBUILT_MIRROR", "http://127.0.0.1:9/nothing"),
            ("LLAMA_PREBUILT_CACHE_DIR", cache.path().to_str().unwrap()),
        ],
    );
    out.assert_ok("DOCS_RS=1 cargo doc");
    assert!(
        app.target_dir()
            .join("doc/llama_prebuilt_sys/index.html")
            .is_file()
    );
    assert_eq!(world.hits(), hits);
    assert!(
        std::fs::read_dir(cache.path())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "docs.rs builds cache nothing"
    );
}

#[test]
fn cross_build_for_aarch64_links_and_runs_under_qemu() {
    let _g = serial();
    let world = World::get();
    if let Err(why) = downstream::cross_prerequisites() {
        panic!("the cross test needs its tools ({why}); .ci/run installs them");
    }
    let arm = World::aarch64();
    let app = Downstream::create("cross-app", world);
    let hits = world.arm_hits();
    let out = app.cargo(
        &["build", "--target", "aarch64-unknown-linux-gnu"],
        &downstream::cross_env(),
    );
    out.assert_ok("cross build");
    assert_eq!(
        world.arm_hits(),
        hits + 1,
        "the ubuntu-arm64 asset was selected and downloaded"
    );
    let bin = app
        .target_dir()
        .join("aarch64-unknown-linux-gnu/debug/cross-app");
    let file = std::process::Command::new("file")
        .arg(&bin)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(file.is_empty() || file.contains("aarch64"), "{file}");
    let run = downstream::run_qemu(&bin);
    run.assert_ok("qemu-aarch64 cross-app");
    assert!(
        run.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        run.stdout
    );
    let _ = arm;
}

#[test]
fn without_the_bindgen_feature_the_committed_bindings_are_used() {
    let _g = serial();
    let world = World::get();
    let app = Downstream::create_with("nobindgen-app", world, "default-features = false");
    // The pinned tag on a target with committed bindings: no bindgen, no libclang, no warning.
    let env = [("LLAMA_PREBUILT_VERSION", ""), ("LLAMA_INCLUDE_DIR", "")];
    let out = app.cargo(
        &["build", "-p", "llama-prebuilt-sys"],
        &[("DOCS_RS", "1"), env[0], env[1]],
    );
    out.assert_ok("build without bindgen");
    assert!(
        !out.stderr.contains("Compiling bindgen"),
        "bindgen must not be compiled:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("warning: llama-prebuilt"),
        "{}",
        out.stderr
    );
    // Another tag whose headers are byte-identical to the vendored ones (the fixture's b10199
    // headers, given as LLAMA_INCLUDE_DIR): the committed bindings describe them, so the app
    // builds without bindgen, links the downloaded fixture release and runs.
    let run = app.cargo(&["run", "--quiet"], &[]);
    run.assert_ok("run without bindgen, another tag with identical headers");
    assert!(
        run.stdout.contains("llama.cpp b10199-fixture ok"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains("Compiling bindgen"),
        "bindgen must not be compiled:\n{}",
        run.stderr
    );
    // A target without committed bindings (no release asset either) says how to get them.
    let out = app.cargo(
        &[
            "build",
            "-p",
            "llama-prebuilt-sys",
            "--target",
            "riscv64gc-unknown-linux-gnu",
        ],
        &[("DOCS_RS", "1"), env[0], env[1]],
    );
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("cannot generate bindings for riscv64gc-unknown-linux-gnu")
            && out.stderr.contains("enable the `bindgen` feature")
            && out.stderr.contains("x86_64-unknown-linux-gnu"),
        "{}",
        out.stderr
    );
}
