//! The pseudo-random test data stays the same from version to version: a tiny GGUF model and a
//! large archive, each pinned by its digest.

use llama_prebuilt_test_support::archives::{sha256_file, write_large_tar_gz};
use llama_prebuilt_test_support::gguf::{TinyModelSpec, write_model};

#[test]
fn tiny_model_and_large_archive_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    write_model(&TinyModelSpec::tiny(), &model).unwrap();
    let archive = dir.path().join("large.tar.gz");
    let d = write_large_tar_gz(&archive, "b1", 200_000).unwrap();
    assert_eq!(
        sha256_file(&model).unwrap(),
        "fa23886d7f9c872692fc545328f872211be35456a99f3922943929ecee690669"
    );
    assert_eq!(
        (d.sha256.as_str(), d.size),
        (
            "28299821d84f0189bbe1aed7b0c6042d8bfa5a0e293adc323691bf56b137b528",
            197_168
        )
    );
    assert_eq!(sha256_file(&archive).unwrap(), d.sha256);
}
