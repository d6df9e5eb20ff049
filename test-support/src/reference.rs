//! The C reference program (`test-support/c/reference.c`, written straight against `llama.h`):
//! compiling it against a library directory and reading its output. Shared by the parity tests,
//! the GGUF model tests and the inference benchmark, so all compare against the same program.

use std::ffi::OsString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `test-support/c/reference.c`.
pub fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("c")
        .join("reference.c")
}

/// Compiles reference.c with `cc` (or `$CC`) against the libraries in `lib_dir` (linked with an
/// rpath to it) and the headers in `include_dirs`, into `out_dir`. The executable is named after
/// the library directory, the headers and the source text, and compiled under a temporary name,
/// then renamed into place, so concurrent test processes never run a half-written program, one
/// linked elsewhere or one built from an older reference.c.
pub fn compile(
    lib_dir: &Path,
    include_dirs: &[PathBuf],
    out_dir: &Path,
) -> Result<PathBuf, String> {
    let key = {
        let mut h = DefaultHasher::new();
        lib_dir.hash(&mut h);
        include_dirs.hash(&mut h);
        std::fs::read(source())
            .map_err(|e| format!("cannot read {}: {e}", source().display()))?
            .hash(&mut h);
        h.finish()
    };
    let exe = out_dir.join(format!("llama-reference-{key:016x}"));
    let tmp = exe.with_extension(format!("{}.tmp", std::process::id()));
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or_else(|| OsString::from("cc")));
    cc.args(["-std=c11", "-O2", "-Wall", "-Wextra"]);
    for dir in include_dirs {
        cc.arg("-I").arg(dir);
    }
    cc.arg(source())
        .arg("-o")
        .arg(&tmp)
        .arg("-L")
        .arg(lib_dir)
        .args(["-lllama", "-lggml", "-lggml-base"]);
    let mut rpath = OsString::from("-Wl,-rpath,");
    rpath.push(lib_dir);
    cc.arg(rpath);
    let out = cc
        .output()
        .map_err(|e| format!("cannot run the C compiler (cc, or $CC): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "compiling reference.c failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &exe)
        .map_err(|e| format!("cannot move {} into place: {e}", exe.display()))?;
    Ok(exe)
}

/// What one run of the reference program printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// `tok <id>` lines, `text <hex>`, `emb …`, `tokens …`, `chat <hex>`.
    pub stdout: String,
    /// Timings (`pp_tok_s`, `tg_tok_s`) and llama.cpp's log.
    pub stderr: String,
}

/// Runs `exe MODEL PROMPT N_PREDICT --lib-dir LIB --threads T EXTRA…`; fails unless it exits 0.
/// `EXTRA` may select a sampler chain (`--sampler STEP`…, `--dry-breaker TEXT`…,
/// `--accept-prompt`; the forms are documented at the top of reference.c).
pub fn run(
    exe: &Path,
    model: &Path,
    prompt: &str,
    n_predict: usize,
    lib_dir: &Path,
    threads: u32,
    extra: &[&str],
) -> Result<Output, String> {
    let out = Command::new(exe)
        .arg(model)
        .arg(prompt)
        .arg(n_predict.to_string())
        .arg("--lib-dir")
        .arg(lib_dir)
        .args(["--threads", &threads.to_string()])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let output = Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if out.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "reference failed ({}):\n{}\n{}",
            out.status, output.stdout, output.stderr
        ))
    }
}

impl Output {
    /// The rest of the first stdout line starting with `key `.
    pub fn line(&self, key: &str) -> &str {
        find_value(&self.stdout, key).unwrap_or_else(|| {
            panic!(
                "no `{key}` line in:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The generated token ids (`tok <id>` lines).
    pub fn generated(&self) -> Vec<i32> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("tok "))
            .map(|t| t.parse().expect("token id"))
            .collect()
    }

    /// Whitespace-separated integers after `key`.
    pub fn ids(&self, key: &str) -> Vec<i32> {
        self.line(key)
            .split_whitespace()
            .map(|t| t.parse().expect("token id"))
            .collect()
    }

    /// Whitespace-separated floats after `key`.
    pub fn floats(&self, key: &str) -> Vec<f32> {
        self.line(key)
            .split_whitespace()
            .map(|v| v.parse().expect("float"))
            .collect()
    }

    /// The hex-encoded bytes after `key`.
    pub fn bytes(&self, key: &str) -> Vec<u8> {
        unhex(self.line(key))
    }

    /// A `key value` timing line on stderr.
    pub fn timing(&self, key: &str) -> f64 {
        find_value(&self.stderr, key)
            .unwrap_or_else(|| panic!("no `{key}` on stderr:\n{}", self.stderr))
            .parse()
            .expect("a number")
    }
}

fn find_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

/// Decodes lower- or upper-case hex.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
