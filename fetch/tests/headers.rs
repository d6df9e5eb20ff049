//! Headers of a tag other than the pinned one, fetched from the (mirrored) source tree.

mod common;

use common::*;
use llama_prebuilt_fetch::headers::SOURCE_HEADERS;
use llama_prebuilt_fetch::{Config, Error, Fetcher};
use llama_prebuilt_test_support::archives::sha256_hex;

fn header_bytes(path: &str) -> Vec<u8> {
    format!("/* {path} of {TAG} */\n").into_bytes()
}

fn serve_headers(env: &Env) {
    for path in SOURCE_HEADERS {
        env.mirror.add_raw_file(TAG, path, header_bytes(path));
    }
}

fn config(env: &Env) -> Config {
    Config {
        headers_base: Some(env.mirror.raw_base()),
        checksums_file: None,
        ..env.config()
    }
}

#[test]
fn headers_are_fetched_once_then_cached_and_marked_unpinned() {
    let env = Env::new();
    serve_headers(&env);
    let f = Fetcher::new(config(&env)).unwrap();
    let h = f.ensure_headers(TAG).unwrap();
    assert!(h.downloaded && !h.pinned);
    assert_eq!(
        std::fs::read(h.dir.join("llama.h")).unwrap(),
        header_bytes("include/llama.h")
    );
    assert_eq!(
        std::fs::read(h.dir.join("gguf.h")).unwrap(),
        header_bytes("ggml/include/gguf.h")
    );
    let again = f.ensure_headers(TAG).unwrap();
    assert!(!again.downloaded);
    assert_eq!(again.dir, h.dir);
    assert_eq!(env.mirror.hits(TAG, "raw:include/llama.h"), 1);
    // Listed (and cleanable) like any cache entry.
    assert!(
        f.cache()
            .entries()
            .iter()
            .any(|e| e.manifest.asset == "headers")
    );
}

#[test]
fn recorded_header_digests_are_enforced() {
    let mut env = Env::new();
    serve_headers(&env);
    for path in SOURCE_HEADERS {
        let b = header_bytes(path);
        env.trust(TAG, path, &sha256_hex(&b), b.len() as u64);
    }
    let f = Fetcher::new(Config {
        checksums_file: Some(env.checksums_path()),
        ..config(&env)
    })
    .unwrap();
    assert!(f.ensure_headers(TAG).unwrap().pinned);

    let mut env = Env::new();
    serve_headers(&env);
    env.trust(TAG, "ggml/include/ggml.h", &"0".repeat(64), 1);
    let f = Fetcher::new(Config {
        checksums_file: Some(env.checksums_path()),
        ..config(&env)
    })
    .unwrap();
    let err = f.ensure_headers(TAG).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::ChecksumMismatch { .. }) && msg.contains("ggml/include/ggml.h"),
        "{msg}"
    );
    assert!(
        f.cache().entries().is_empty(),
        "nothing cached after a mismatch"
    );
}

#[test]
fn a_missing_header_names_the_url_and_llama_include_dir() {
    let env = Env::new();
    env.mirror
        .add_raw_file(TAG, "include/llama.h", header_bytes("include/llama.h"));
    let msg = Fetcher::new(config(&env))
        .unwrap()
        .ensure_headers(TAG)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("C headers of llama.cpp b20001")
            && msg.contains("/raw/b20001/ggml/include/ggml.h"),
        "{msg}"
    );
    assert!(
        msg.contains("LLAMA_INCLUDE_DIR") && msg.contains("LLAMA_PREBUILT_HEADERS_URL"),
        "{msg}"
    );
}

#[test]
fn offline_uses_cached_headers_and_fails_clearly_when_cold() {
    let env = Env::new();
    serve_headers(&env);
    let offline = || {
        Fetcher::new(Config {
            offline: Some("LLAMA_PREBUILT_OFFLINE=1".into()),
            ..config(&env)
        })
        .unwrap()
    };
    let msg = offline().ensure_headers(TAG).unwrap_err().to_string();
    assert!(
        msg.contains("offline (LLAMA_PREBUILT_OFFLINE=1)") && msg.contains("LLAMA_INCLUDE_DIR"),
        "{msg}"
    );
    Fetcher::new(config(&env))
        .unwrap()
        .ensure_headers(TAG)
        .unwrap();
    assert!(!offline().ensure_headers(TAG).unwrap().downloaded);
}

#[test]
fn a_file_url_source_tree_works() {
    let env = Env::new();
    let root = env.dir.path().join("src-tree");
    for path in SOURCE_HEADERS {
        let p = root.join(TAG).join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, header_bytes(path)).unwrap();
    }
    let cfg = Config {
        headers_base: Some(format!("file://{}", root.display())),
        ..config(&env)
    };
    let h = Fetcher::new(cfg).unwrap().ensure_headers(TAG).unwrap();
    assert!(h.dir.join("ggml-backend.h").is_file());
}
