//! `src/main.rs` of the downstream crate `fetch/tests/msvc_link.rs` builds with
//! `cargo build --target x86_64-pc-windows-msvc`: the calls of `hello_llama.rs`, made through
//! `llama-prebuilt-sys`'s bindings and linked through what its build script emits, with the
//! same output.

use std::ffi::{CStr, c_char};

use llama_prebuilt_sys as sys;

fn text(s: *const c_char) -> String {
    if s.is_null() {
        return "(null)".to_owned();
    }
    // SAFETY: llama.cpp returns NUL-terminated strings that live as long as the process.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

fn main() {
    // SAFETY: plain C calls; the backends are found next to the executable (copy-dylibs put
    // them there), device handles and strings come from ggml.
    unsafe {
        sys::ggml_backend_load_all();
        println!("system_info: {}", text(sys::llama_print_system_info()));
        println!("max_devices: {}", sys::llama_max_devices());
        let count = sys::ggml_backend_dev_count();
        println!("devices: {count}");
        for i in 0..count {
            let device = sys::ggml_backend_dev_get(i);
            println!(
                "device: {} | {}",
                text(sys::ggml_backend_dev_name(device)),
                text(sys::ggml_backend_dev_description(device))
            );
        }
    }
}
