//! The raw bindings link and call into the real library: system info, backend loading from the
//! staged library directory, and the default-params functions.

use std::ffi::{CStr, CString};

use llama_prebuilt_sys as sys;

/// Registers the backends once: ggml's backend registry is not safe to populate from several
/// threads at once (the test harness runs tests in parallel).
fn load_backends() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = CString::new(sys::LIB_DIR).unwrap();
        // SAFETY: a valid NUL-terminated path; ggml copies what it needs.
        unsafe { sys::ggml_backend_load_all_from_path(dir.as_ptr()) };
    });
}

#[test]
fn constants_name_the_tag_and_the_staged_directory() {
    assert!(sys::VERSION.starts_with('b'), "{}", sys::VERSION);
    let lib_dir = std::path::Path::new(sys::LIB_DIR);
    assert!(lib_dir.is_dir(), "{}", sys::LIB_DIR);
    let has_llama = std::fs::read_dir(lib_dir).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("libllama") || e.file_name() == "llama.dll"
    });
    assert!(has_llama);
}

#[test]
fn backends_load_from_the_library_directory() {
    load_backends();
    // SAFETY: plain queries of the backend registry after loading.
    let (devices, cpu) = unsafe {
        let n = sys::ggml_backend_dev_count();
        let cpu = sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU);
        (n, cpu)
    };
    assert!(devices >= 1, "at least the CPU backend registers");
    assert!(!cpu.is_null());
}

#[test]
fn system_info_is_a_c_string() {
    load_backends();
    // SAFETY: returns a pointer to a static NUL-terminated buffer.
    let info = unsafe { CStr::from_ptr(sys::llama_print_system_info()) }
        .to_string_lossy()
        .into_owned();
    assert!(info.contains("CPU"), "{info}");
}

#[test]
fn default_params_match_what_llama_h_documents() {
    // SAFETY: the default-params functions return plain structs by value.
    let (m, c) = unsafe {
        (
            sys::llama_model_default_params(),
            sys::llama_context_default_params(),
        )
    };
    assert_eq!(m.load_mode, sys::LLAMA_LOAD_MODE_MMAP);
    assert_eq!(m.n_gpu_layers, -1);
    assert!(!m.vocab_only);
    assert_eq!(c.n_batch, 2048);
    assert!(c.n_ubatch > 0 && c.n_ubatch <= c.n_batch);
    assert!(c.n_seq_max >= 1);
    // SAFETY: as above.
    let s = unsafe { sys::llama_sampler_chain_default_params() };
    assert!(
        s.no_perf,
        "llama.cpp disables sampler perf counters by default"
    );
}

#[test]
fn max_devices_and_time() {
    // SAFETY: trivial queries.
    unsafe {
        assert!(sys::llama_max_devices() >= 1);
        assert!(sys::llama_time_us() > 0);
        assert!(sys::llama_supports_mmap());
    }
}
