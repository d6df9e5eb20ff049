//! The program of `hello_llama.rs` as a normal `std` Rust program: same calls, same output
//! (`key: value` lines, then `device: <name> | <description>` per device). Linked by
//! `fetch/tests/msvc_link.rs` with lld-link against the generated import libraries, import
//! libraries of wine's system DLLs and `crt_stand_in.rs` in place of Visual Studio's static
//! C runtime. The devices are listed from a second thread, so std's threads and thread-locals
//! (the TLS directory of the stand-in) are exercised too.

use std::ffi::{CStr, c_char, c_void};

#[link(name = "llama")]
unsafe extern "C" {
    fn llama_print_system_info() -> *const c_char;
    fn llama_max_devices() -> usize;
}

#[link(name = "ggml")]
unsafe extern "C" {
    fn ggml_backend_load_all();
    fn ggml_backend_dev_count() -> usize;
    fn ggml_backend_dev_get(index: usize) -> *mut c_void;
}

#[link(name = "ggml-base")]
unsafe extern "C" {
    fn ggml_backend_dev_name(device: *mut c_void) -> *const c_char;
    fn ggml_backend_dev_description(device: *mut c_void) -> *const c_char;
}

fn text(s: *const c_char) -> String {
    if s.is_null() {
        return "(null)".to_owned();
    }
    // SAFETY: llama.cpp returns NUL-terminated strings that live as long as the process.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

fn main() {
    // SAFETY: no preconditions; the backends are found next to the executable.
    unsafe { ggml_backend_load_all() };
    let devices = std::thread::spawn(|| {
        // SAFETY: indices below the count; handles and strings come from ggml.
        unsafe {
            (0..ggml_backend_dev_count())
                .map(|i| {
                    let device = ggml_backend_dev_get(i);
                    let name = text(ggml_backend_dev_name(device));
                    let description = text(ggml_backend_dev_description(device));
                    format!("{name} | {description}")
                })
                .collect::<Vec<_>>()
        }
    })
    .join()
    .expect("the device thread panicked");
    // SAFETY: plain C calls without preconditions.
    let (info, max) = unsafe { (text(llama_print_system_info()), llama_max_devices()) };
    println!("system_info: {info}");
    println!("max_devices: {max}");
    println!("devices: {}", devices.len());
    for device in devices {
        println!("device: {device}");
    }
}
