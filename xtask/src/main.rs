//! Dev-only automation for llama-prebuilt (never published). Each subcommand is a function in
//! its own module; this file only parses the command line and dispatches.

mod bench;
mod bindings_cmd;
mod bump_cmd;
mod demo_cmd;
mod doc_cmd;
mod fixture_cmd;
mod lint_cmd;
mod metadata;
mod mirror_cmd;
mod msrv_cmd;
mod prereqs;
mod test_cmd;
mod unused_deps_cmd;
mod world;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  bench <what> [options]               benchmarks, fuzzing and soak runs (BENCHMARKS.md);
                                       `cargo xtask bench` lists them
  bindings [--check]                   regenerate the committed bindings (bindings/<triple>.rs) of
                                       the pinned tag, or check that they are up to date
  bump <tag|newest> [--allow-breaking] move the pinned llama.cpp tag: checksums from the release
                                       API, headers, bindings, PINNED_TAG, version; prints the
                                       API/ABI change report (docs/bumps/<old>-<new>.md) and
                                       refuses breaking changes without --allow-breaking
  demo [--prompt T] [--model P]        install what is missing, build, fetch the llama.cpp binaries
       [--max-tokens N]                (GitHub, or the local fixture mirror when unreachable) and
                                       stream text from a model (default: a generated tiny one)
  lint                                 cargo fmt --check, and clippy -D warnings on every target
                                       (against the fixture mirror, as the build needs it)
  msrv                                 no dependency of the published crates needs a newer Rust
                                       than the workspace rust-version, and nothing turns off
                                       clippy's incompatible_msrv lint
  doc                                  cargo doc --no-deps --workspace with -D warnings (against
                                       the fixture mirror)
  unused-deps                          every dependency entry of every member is used by its
                                       sources
  test [ARGS...]                       the whole test suite offline: prerequisites, fixture,
                                       mirror, then `cargo test --workspace ARGS`
  fixture [--aarch64]                  build (first run) or load the llama.cpp fixture and
                                       print its paths; --aarch64 also the arm64 cross build
  mirror [--aarch64] [--seconds N]     serve the fixture archives on a loopback mirror in the
                                       foreground; prints its URLs and a checksums file; stops
                                       on Ctrl-C or after N seconds
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("bindings") => bindings_cmd::run(&args[1..]),
        Some("bump") => bump_cmd::run(&args[1..]),
        Some("demo") => demo_cmd::run(&args[1..]),
        Some("test") => test_cmd::run(&args[1..]),
        Some("lint") => lint_cmd::run(&args[1..]),
        Some("msrv") => msrv_cmd::run(&args[1..]),
        Some("doc") => doc_cmd::run(&args[1..]),
        Some("unused-deps") => unused_deps_cmd::run(&args[1..]),
        Some("fixture") => fixture_cmd::run(&args[1..]),
        Some("mirror") => mirror_cmd::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing command\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
