//! Process-wide initialisation (its own test binary: the backend is global state).

use std::path::Path;

use llama_prebuilt::{Backend, DeviceKind, Error, LibDirSource};

#[test]
fn backend_initialises_once_from_the_library_directory() {
    assert!(Backend::get().is_none(), "nothing initialised yet");
    let backend = Backend::init().unwrap();
    assert!(
        std::ptr::eq(backend, Backend::init().unwrap()),
        "one instance per process"
    );
    assert!(std::ptr::eq(backend, Backend::get().unwrap()));

    // The directory: LLAMA_LIB_DIR if set (as in this repository's test runs), else where the
    // library was loaded from.
    match std::env::var_os("LLAMA_LIB_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            assert_eq!(backend.lib_dir_source(), LibDirSource::Environment);
            assert_eq!(backend.lib_dir(), Path::new(&dir));
        }
        None => assert_eq!(backend.lib_dir_source(), LibDirSource::LoadedLibrary),
    }
    assert!(backend.lib_dir().is_dir());

    let cpu = backend
        .devices()
        .into_iter()
        .find(|d| d.kind == DeviceKind::Cpu)
        .expect("the CPU backend registers");
    assert!(!cpu.name.is_empty());
    assert!(
        backend.system_info().contains("CPU"),
        "{}",
        backend.system_info()
    );
    assert!(backend.supports_mmap());

    // Asking for another directory afterwards is an error; the same one is fine.
    let err = Backend::init_with_lib_dir("/somewhere/else").unwrap_err();
    assert!(
        matches!(&err, Error::BackendAlreadyInitialized { current, .. } if current == backend.lib_dir()),
        "{err:?}"
    );
    assert!(Backend::init_with_lib_dir(backend.lib_dir()).is_ok());
}
