//! CUDA variants fetch, verify and unpack the matching CUDA runtime archive
//! (`cudart-llama-…`) through the same trust chain as the main archive, and both archives'
//! libraries stage into one directory. Synthetic archives on the loopback mirror; no GPU.

mod common;

use common::*;
use llama_prebuilt_fetch::libdir::LibOs;
use llama_prebuilt_fetch::{Config, DigestSource, Error, Fetcher, Request, Target, linking};
use llama_prebuilt_test_support::archives::{
    cuda_runtime_tar_gz, cuda_runtime_zip, linux_tar_gz, sha256_hex, windows_zip,
};

const MAIN: &str = "llama-b20001-bin-ubuntu-cuda-13.4-x64.tar.gz";
const CUDART: &str = "cudart-llama-b20001-bin-ubuntu-cuda-13.4-x64.tar.gz";

fn cuda(triple: &str, variant: &str) -> Request {
    Request {
        tag: TAG.into(),
        target: Target::from_triple(triple),
        variant: variant.into(),
    }
}

fn linux_cuda() -> Request {
    cuda("x86_64-unknown-linux-gnu", "cuda-13.4")
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn linux_cuda_variant_fetches_the_runtime_and_both_stage_together() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    let rt_sha = env.serve(TAG, CUDART, cuda_runtime_tar_gz(TAG));
    let got = env.fetcher().ensure(&linux_cuda()).unwrap();
    assert_eq!(got.asset, MAIN);
    let rt = got
        .runtime
        .as_deref()
        .expect("a CUDA variant has a runtime");
    assert_eq!(rt.asset, CUDART);
    assert_eq!(rt.sha256, rt_sha);
    assert!(
        matches!(rt.digest_source, DigestSource::ChecksumsFile(_)),
        "{}",
        rt.digest_source
    );
    assert!(rt.downloaded);
    assert!(rt.lib_dir.join("libcudart.so.13.0.96").is_file());

    let staged = env.dir.path().join("staged");
    linking::stage(&got.lib_dir, &staged, LibOs::Linux).unwrap();
    linking::stage(&rt.lib_dir, &staged, LibOs::Linux).unwrap();
    let all = names(&staged);
    for want in [
        "libllama.so",
        "libggml-cpu-haswell.so",
        "libcudart.so",
        "libcudart.so.0",
        "libcudart.so.13.0.96",
        "libcublas.so.0",
        "libcublasLt.so",
    ] {
        assert!(all.contains(&want.to_string()), "{want} missing: {all:?}");
    }
    assert!(
        staged.join("libcublasLt.so").is_file(),
        "the chain resolves"
    );
    assert!(!all.contains(&"LICENSE".to_string()), "{all:?}");

    // A second build hits the cache for both.
    let again = env.fetcher().ensure(&linux_cuda()).unwrap();
    assert!(!again.downloaded && !again.runtime.as_ref().unwrap().downloaded);
    assert_eq!(again.runtime.unwrap().lib_dir, rt.lib_dir);
    assert_eq!(
        (env.mirror.hits(TAG, MAIN), env.mirror.hits(TAG, CUDART)),
        (1, 1)
    );
}

#[test]
fn windows_cuda_variant_takes_the_untagged_runtime_zip() {
    let mut env = Env::new();
    let main = "llama-b20001-bin-win-cuda-12.4-x64.zip";
    let cudart = "cudart-llama-bin-win-cuda-12.4-x64.zip";
    env.serve(TAG, main, windows_zip());
    env.serve(TAG, cudart, cuda_runtime_zip());
    let got = env
        .fetcher()
        .ensure(&cuda("x86_64-pc-windows-msvc", "cuda-12.4"))
        .unwrap();
    assert!(names(&got.lib_dir).contains(&"llama.dll".to_string()));
    let rt = got.runtime.expect("runtime");
    assert_eq!(rt.asset, cudart);
    assert_eq!(
        names(&rt.lib_dir),
        ["cublas64_12.dll", "cublasLt64_12.dll", "cudart64_12.dll"]
    );
    // Staged next to the main archive's DLLs (no import libraries are made for them).
    let staged = env.dir.path().join("staged");
    let written = linking::stage(&rt.lib_dir, &staged, LibOs::Windows).unwrap();
    assert_eq!(written.len(), 3, "{written:?}");
}

#[test]
fn cpu_and_vulkan_have_no_runtime() {
    let mut env = Env::new();
    env.serve(TAG, LINUX_X64, linux_tar_gz(TAG));
    let got = env.fetcher().ensure(&linux_x64(TAG)).unwrap();
    assert!(got.runtime.is_none());
}

#[test]
fn a_missing_runtime_archive_is_an_error_naming_it() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    // Recorded, but the mirror does not have it.
    env.trust(TAG, CUDART, &"ab".repeat(32), 10);
    let err = env.fetcher().ensure(&linux_cuda()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Runtime { source, .. } if matches!(**source, Error::HttpStatus { status: 404, .. })),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("the CUDA runtime archive {CUDART}"))
            && msg.contains("variant cuda-13.4")
            && msg.contains("HTTP 404"),
        "{msg}"
    );
    assert_nothing_cached(&env.cache_dir(), TAG, CUDART);
}

#[test]
fn a_runtime_archive_not_in_the_release_is_an_error_naming_it() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    let msg = env.fetcher().ensure(&linux_cuda()).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("the CUDA runtime archive {CUDART}"))
            && msg.contains(&format!("release {TAG} has none of {CUDART}"))
            && msg.contains(MAIN),
        "{msg}"
    );
}

#[test]
fn an_unverifiable_runtime_archive_is_refused() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    env.mirror
        .add_asset_bytes(TAG, CUDART, cuda_runtime_tar_gz(TAG));
    env.mirror.set_digest_published(TAG, CUDART, false);
    let err = env.fetcher().ensure(&linux_cuda()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Runtime { source, .. } if matches!(**source, Error::NoDigest { .. })),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("no trusted sha256 is known for `{CUDART}`")),
        "{msg}"
    );
    assert_eq!(
        env.mirror.hits(TAG, CUDART),
        0,
        "nothing unverified is fetched"
    );
    assert_nothing_cached(&env.cache_dir(), TAG, CUDART);
}

#[test]
fn the_release_api_digest_verifies_an_unrecorded_runtime_archive() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    let bytes = cuda_runtime_tar_gz(TAG);
    let sha = sha256_hex(&bytes);
    env.mirror.add_asset_bytes(TAG, CUDART, bytes);
    let rt = env
        .fetcher()
        .ensure(&linux_cuda())
        .unwrap()
        .runtime
        .unwrap();
    assert_eq!(rt.digest_source, DigestSource::GithubApi);
    assert_eq!(rt.sha256, sha);
}

#[test]
fn a_runtime_archive_with_the_wrong_bytes_is_rejected() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    let bytes = cuda_runtime_tar_gz(TAG);
    let wrong = "cd".repeat(32);
    env.mirror.add_asset_bytes(TAG, CUDART, bytes.clone());
    env.trust(TAG, CUDART, &wrong, bytes.len() as u64);
    let err = env.fetcher().ensure(&linux_cuda()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Runtime { source, .. } if matches!(**source, Error::ChecksumMismatch { .. })),
        "{msg}"
    );
    assert!(
        msg.contains(CUDART) && msg.contains(&wrong) && msg.contains(&sha256_hex(&bytes)),
        "{msg}"
    );
    assert_nothing_cached(&env.cache_dir(), TAG, CUDART);
}

#[test]
fn the_env_digest_is_the_main_archives_only() {
    let mut env = Env::new();
    let main_sha = env.serve(TAG, MAIN, linux_tar_gz(TAG));
    env.serve(TAG, CUDART, cuda_runtime_tar_gz(TAG));
    let config = Config {
        sha256: Some(main_sha),
        ..env.config()
    };
    let got = Fetcher::new(config).unwrap().ensure(&linux_cuda()).unwrap();
    let rt = got.runtime.unwrap();
    assert!(
        matches!(rt.digest_source, DigestSource::ChecksumsFile(_)),
        "{}",
        rt.digest_source
    );
}

#[test]
fn a_runtime_archive_without_libraries_is_an_error_naming_it() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    // A tar.gz with only a LICENSE.
    env.serve(
        TAG,
        CUDART,
        llama_prebuilt_test_support::archives::tar_gz_with_entry_path("llama-b20001/LICENSE"),
    );
    let msg = env.fetcher().ensure(&linux_cuda()).unwrap_err().to_string();
    assert!(
        msg.contains(&format!(
            "the CUDA runtime archive {CUDART} holds no shared library"
        )),
        "{msg}"
    );
}

#[test]
fn offline_without_a_cached_runtime_archive_names_it() {
    let mut env = Env::new();
    env.serve(TAG, MAIN, linux_tar_gz(TAG));
    env.trust(TAG, CUDART, &"ab".repeat(32), 10);
    // Online: the main archive is cached, the runtime archive is missing upstream.
    assert!(env.fetcher().ensure(&linux_cuda()).is_err());
    let config = Config {
        offline: Some("LLAMA_PREBUILT_OFFLINE=1".into()),
        ..env.config()
    };
    let err = Fetcher::new(config)
        .unwrap()
        .ensure(&linux_cuda())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Runtime { source, .. } if matches!(**source, Error::OfflineMiss { .. })),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("the CUDA runtime archive {CUDART}")) && msg.contains("offline"),
        "{msg}"
    );
}
