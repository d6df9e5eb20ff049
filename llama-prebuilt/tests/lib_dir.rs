//! Without `LLAMA_LIB_DIR`, the backends come from the directory the dynamic loader loaded
//! the llama library from (found with `dladdr`). Its own test binary: the backend is global.

use llama_prebuilt::{Backend, LibDirSource};

#[test]
#[cfg(unix)]
fn the_loaded_library_directory_is_found_at_run_time() {
    // SAFETY: no other thread of this test binary reads the environment yet.
    unsafe { std::env::remove_var("LLAMA_LIB_DIR") };
    let backend = Backend::init().unwrap();
    assert_eq!(backend.lib_dir_source(), LibDirSource::LoadedLibrary);
    // Wherever the loader found it (the staged build directory, a copy next to the binary),
    // the directory holds the llama library and its backends registered from there.
    let has_llama = std::fs::read_dir(backend.lib_dir())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("libllama"));
    assert!(has_llama, "{}", backend.lib_dir().display());
    assert!(backend.lib_dir().is_absolute());
    assert!(!backend.devices().is_empty());
}
