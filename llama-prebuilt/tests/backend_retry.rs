//! A wrong library directory is an error, and initialisation can be retried with the right
//! one (its own test binary: the backend is global state).

use llama_prebuilt::{Backend, Error};

#[test]
fn a_directory_without_backends_is_an_error_and_init_can_retry() {
    let empty = tempfile::tempdir().unwrap();
    let err = Backend::init_with_lib_dir(empty.path()).unwrap_err();
    assert!(
        matches!(&err, Error::NoBackendDevices { lib_dir } if lib_dir == empty.path()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("LLAMA_LIB_DIR"),
        "the message says how to fix it: {err}"
    );
    assert!(Backend::get().is_none());
    let backend = Backend::init().unwrap();
    assert!(!backend.devices().is_empty());
}

#[test]
fn errors_are_send_sync_and_static() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();
    assert_error::<llama_prebuilt::gguf::GgufError>();
}
