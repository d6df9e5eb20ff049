//! Synthetic archives shaped like each era/platform of official release assets (see
//! RELEASES.md "What is inside"), with small dummy files instead of real libraries. For tests
//! of asset layout handling that need no C++ build.

use flate2::Compression;

use super::tarball::TarGz;
use super::zipfile::zip_bytes;

/// ggml's own version in the synthetic versioned names (`libggml.so.0.9.4`).
const GGML_VERSION: &str = "0.9.4";

/// The build number of `bNNNN`, used in `libllama.so.0.0.<n>`; 0 for other tag shapes.
pub fn tag_number(tag: &str) -> u64 {
    tag.strip_prefix('b')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Distinct, recognisable contents for each dummy file.
pub fn dummy_contents(tag: &str, name: &str) -> Vec<u8> {
    format!("dummy {name} of llama.cpp {tag} (llama-prebuilt test archive)\n").into_bytes()
}

/// One `lib<base>.so -> lib<base>.so.0 -> lib<base>.so.0.<version>` chain. The links come
/// before their target in libllama's case, as a readdir-ordered `tar` may do, so extractors
/// are exercised on forward references.
fn so_chain(
    t: &mut TarGz<Vec<u8>>,
    top: &str,
    tag: &str,
    base: &str,
    version: &str,
    links_first: bool,
) {
    let real = format!("lib{base}.so.{version}");
    let file = |t: &mut TarGz<Vec<u8>>| {
        t.file(&format!("{top}/{real}"), 0o755, &dummy_contents(tag, &real))
            .expect("in-memory tar")
    };
    if !links_first {
        file(t);
    }
    t.symlink(&format!("{top}/lib{base}.so.0"), &real)
        .expect("in-memory tar");
    t.symlink(&format!("{top}/lib{base}.so"), &format!("lib{base}.so.0"))
        .expect("in-memory tar");
    if links_first {
        file(t);
    }
}

/// The common start of the tar.gz-era archives: the `llama-<tag>/` top dir (returned) with
/// LICENSE (0644) and `llama-cli` (0755).
fn begin_tar_gz(tag: &str) -> (String, TarGz<Vec<u8>>) {
    let top = format!("llama-{tag}");
    let mut t = TarGz::new(Vec::new(), Compression::default());
    t.dir(&format!("{top}/")).expect("in-memory tar");
    t.file(
        &format!("{top}/LICENSE"),
        0o644,
        &dummy_contents(tag, "LICENSE"),
    )
    .expect("in-memory tar");
    t.file(
        &format!("{top}/llama-cli"),
        0o755,
        &dummy_contents(tag, "llama-cli"),
    )
    .expect("in-memory tar");
    (top, t)
}

/// tar.gz era Linux (`llama-<tag>/` top dir): LICENSE, `llama-cli` (0755), the symlink chains
/// of libllama (`.so.0.0.<n>`), libggml and libggml-base (`.so.0.9.4`), and
/// `libggml-cpu-haswell.so` (a run-time loaded backend, no chain).
pub fn linux_tar_gz(tag: &str) -> Vec<u8> {
    let (top, mut t) = begin_tar_gz(tag);
    let llama_version = format!("0.0.{}", tag_number(tag));
    so_chain(&mut t, &top, tag, "llama", &llama_version, true);
    so_chain(&mut t, &top, tag, "ggml", GGML_VERSION, false);
    so_chain(&mut t, &top, tag, "ggml-base", GGML_VERSION, false);
    let cpu = "libggml-cpu-haswell.so";
    t.file(&format!("{top}/{cpu}"), 0o755, &dummy_contents(tag, cpu))
        .expect("in-memory tar");
    t.finish().expect("in-memory tar")
}

/// zip era Linux: entries under `build/bin/`, unversioned names, no symlinks.
pub fn linux_zip_era(tag: &str) -> Vec<u8> {
    let names = [
        "libllama.so",
        "libggml.so",
        "libggml-base.so",
        "libggml-cpu.so",
        "LICENSE",
    ];
    let contents: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (format!("build/bin/{n}"), dummy_contents(tag, n)))
        .collect();
    let entries: Vec<(&str, u32, &[u8])> = contents
        .iter()
        .map(|(path, data)| {
            let mode = if path.ends_with("LICENSE") {
                0o644
            } else {
                0o755
            };
            (path.as_str(), mode, data.as_slice())
        })
        .collect();
    zip_bytes(&entries)
}

/// Windows: a flat zip of DLLs and a tool, no import libraries (like the real ones).
pub fn windows_zip() -> Vec<u8> {
    let names = [
        "llama.dll",
        "ggml.dll",
        "ggml-base.dll",
        "ggml-cpu-haswell.dll",
        "llama-cli.exe",
    ];
    let contents: Vec<Vec<u8>> = names.iter().map(|n| dummy_contents("win", n)).collect();
    let entries: Vec<(&str, u32, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (*n, 0o644, c.as_slice()))
        .collect();
    zip_bytes(&entries)
}

/// macOS (`llama-<tag>/`): `libllama.dylib -> libllama.0.dylib -> libllama.0.0.<n>.dylib`, the
/// same for libggml and libggml-base (`0.9.4`), and the directly linked backends
/// (`libggml-cpu`, `-metal`, `-blas`, `-rpc`) without chains.
pub fn macos_tar_gz(tag: &str) -> Vec<u8> {
    let (top, mut t) = begin_tar_gz(tag);
    let llama_version = format!("0.0.{}", tag_number(tag));
    for (base, version) in [
        ("llama", llama_version.as_str()),
        ("ggml", GGML_VERSION),
        ("ggml-base", GGML_VERSION),
    ] {
        let real = format!("lib{base}.{version}.dylib");
        t.file(&format!("{top}/{real}"), 0o755, &dummy_contents(tag, &real))
            .expect("in-memory tar");
        t.symlink(&format!("{top}/lib{base}.0.dylib"), &real)
            .expect("in-memory tar");
        t.symlink(
            &format!("{top}/lib{base}.dylib"),
            &format!("lib{base}.0.dylib"),
        )
        .expect("in-memory tar");
    }
    for backend in ["cpu", "metal", "blas", "rpc"] {
        let name = format!("libggml-{backend}.dylib");
        t.file(&format!("{top}/{name}"), 0o755, &dummy_contents(tag, &name))
            .expect("in-memory tar");
    }
    t.finish().expect("in-memory tar")
}

/// A CUDA runtime archive of the tar.gz era (`cudart-llama-<tag>-bin-ubuntu-cuda-<ver>-<arch>.tar.gz`,
/// layout inferred: the main archive's `llama-<tag>/` top dir): LICENSE and the chains of
/// libcudart (`libcudart.so -> libcudart.so.0 -> libcudart.so.13.0.96`), libcublas and
/// libcublasLt (`.so.13.1.0.3`).
pub fn cuda_runtime_tar_gz(tag: &str) -> Vec<u8> {
    let top = format!("llama-{tag}");
    let mut t = TarGz::new(Vec::new(), Compression::default());
    t.dir(&format!("{top}/")).expect("in-memory tar");
    t.file(
        &format!("{top}/LICENSE"),
        0o644,
        &dummy_contents(tag, "cudart LICENSE"),
    )
    .expect("in-memory tar");
    so_chain(&mut t, &top, tag, "cudart", "13.0.96", false);
    so_chain(&mut t, &top, tag, "cublas", "13.1.0.3", false);
    so_chain(&mut t, &top, tag, "cublasLt", "13.1.0.3", true);
    t.finish().expect("in-memory tar")
}

/// A Windows CUDA runtime archive (`cudart-llama-bin-win-cuda-<ver>-x64.zip`): a flat zip of
/// `cudart64_12.dll`, `cublas64_12.dll` and `cublasLt64_12.dll`.
pub fn cuda_runtime_zip() -> Vec<u8> {
    let names = ["cudart64_12.dll", "cublas64_12.dll", "cublasLt64_12.dll"];
    let contents: Vec<Vec<u8>> = names.iter().map(|n| dummy_contents("cudart", n)).collect();
    let entries: Vec<(&str, u32, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (*n, 0o644, c.as_slice()))
        .collect();
    zip_bytes(&entries)
}
