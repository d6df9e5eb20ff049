//! llama.cpp's (and ggml's) log, routed to the [`log`] crate under the target `llama_cpp`.
//!
//! llama.cpp logs in fragments (a line can arrive in several calls, continuation pieces carry
//! `GGML_LOG_LEVEL_CONT`); fragments are collected per thread and each complete line becomes
//! one `log` record. Levels: ggml's `ERROR` → `error`, `WARN` → `warn`, `INFO` (load-time
//! diagnostics, very chatty) → `debug`, `DEBUG` → `trace`.
//!
//! The last `ERROR` line logged on a thread is also kept, so that the FFI gate can put
//! llama.cpp's own explanation into the [`Error`](crate::Error) of a failing call.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};

use llama_prebuilt_sys as sys;

use crate::panic;

/// The `log` target of every record from llama.cpp.
pub const LOG_TARGET: &str = "llama_cpp";

#[derive(Default)]
struct Pending {
    level: sys::ggml_log_level,
    text: String,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Makes [`trampoline`] llama.cpp's (and ggml's) log callback.
pub(crate) fn install() {
    // SAFETY: the trampoline is a plain function valid for the whole program and ignores its
    // user data. Called once, under the backend's init lock.
    unsafe { sys::llama_log_set(Some(trampoline), std::ptr::null_mut()) };
}

/// Forgets the last error line of this thread (called before a C call).
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().take());
}

/// The last error line llama.cpp logged on this thread since [`clear_last_error`].
pub(crate) fn take_last_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

unsafe extern "C" fn trampoline(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the duration of the call.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    panic::wrap(|| receive(level, bytes));
}

fn receive(level: sys::ggml_log_level, bytes: &[u8]) {
    let mut lines = Vec::new();
    PENDING.with(|pending| {
        let mut p = pending.borrow_mut();
        let level = if level == sys::GGML_LOG_LEVEL_CONT {
            p.level
        } else {
            level
        };
        if level != p.level && !p.text.is_empty() {
            // A new record of another level starts before the previous line ended.
            let text = std::mem::take(&mut p.text);
            lines.push((p.level, text));
        }
        p.level = level;
        p.text.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = p.text.find('\n') {
            let line: String = p.text.drain(..=end).collect();
            lines.push((level, line));
        }
    });
    for (level, line) in lines {
        emit(level, line.trim_end());
    }
}

fn emit(level: sys::ggml_log_level, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    let level = match level {
        sys::GGML_LOG_LEVEL_ERROR => {
            LAST_ERROR.with(|e| *e.borrow_mut() = Some(line.trim().to_string()));
            log::Level::Error
        }
        sys::GGML_LOG_LEVEL_WARN => log::Level::Warn,
        sys::GGML_LOG_LEVEL_DEBUG => log::Level::Trace,
        _ => log::Level::Debug,
    };
    log::log!(target: LOG_TARGET, level, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_make_lines_and_errors_are_kept() {
        clear_last_error();
        receive(sys::GGML_LOG_LEVEL_ERROR, b"failed to ");
        assert_eq!(take_last_error(), None, "no complete line yet");
        receive(sys::GGML_LOG_LEVEL_CONT, b"load\n");
        assert_eq!(take_last_error().as_deref(), Some("failed to load"));
        receive(sys::GGML_LOG_LEVEL_INFO, b"a\nb\n");
        assert_eq!(take_last_error(), None);
        // An unterminated error line is flushed when a record of another level starts.
        receive(sys::GGML_LOG_LEVEL_ERROR, b"dangling");
        receive(sys::GGML_LOG_LEVEL_INFO, b"next\n");
        assert_eq!(take_last_error().as_deref(), Some("dangling"));
    }
}
