//! libFuzzer entry point; the checks are in `llama_prebuilt_fuzz::extract_zip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = llama_prebuilt_fuzz::extract_zip(data);
});
