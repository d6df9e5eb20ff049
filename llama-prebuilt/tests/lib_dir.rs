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
    // The binary's rpath points at the staged directory of the build.
    let staged = std::fs::canonicalize(llama_prebuilt::sys::LIB_DIR).unwrap();
    assert_eq!(std::fs::canonicalize(backend.lib_dir()).unwrap(), staged);
    assert!(!backend.devices().is_empty());
}
