//! `cargo xtask fixture [--aarch64]`: build or load the fixtures, print where everything is as
//! `key=value` lines (easy to read by eye and by scripts).

use llama_prebuilt_test_support::fixture::{self, Fixture};

pub(crate) struct Options {
    pub(crate) aarch64: bool,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options { aarch64: false };
    for a in args {
        match a.as_str() {
            "--aarch64" => opts.aarch64 = true,
            other => return Err(format!("fixture: unknown argument {other}")),
        }
    }
    Ok(opts)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    for f in load(opts.aarch64)? {
        print_fixture(f);
    }
    Ok(())
}

/// The x64 fixture, then the arm64 one if asked.
pub(crate) fn load(aarch64: bool) -> Result<Vec<&'static Fixture>, String> {
    let mut out = vec![fixture::fixture()?];
    if aarch64 {
        out.push(fixture::fixture_aarch64()?);
    }
    Ok(out)
}

fn print_fixture(f: &Fixture) {
    println!("tag={}", f.tag);
    println!("root={}", f.root.display());
    println!("include_dir={}", f.include_dir.display());
    println!("lib_dir={}", f.lib_dir.display());
    println!("checksums={}", f.checksums_path.display());
    for a in &f.archives {
        println!(
            "archive={} sha256={} size={}",
            a.path.display(),
            a.sha256,
            a.size
        );
    }
}
