//! The one gate every fallible C call goes through, and string conversions.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;

use crate::error::{Error, Result};
use crate::{logging, panic};

/// Runs one C call: forgets the thread's last logged error, runs `f`, collects the error line
/// llama.cpp logged meanwhile (if any), and resumes a panic a callback caught during the call.
pub(crate) fn gate<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    logging::clear_last_error();
    let value = f();
    let message = logging::take_last_error();
    panic::resume();
    (value, message)
}

/// A C string for `s`, or [`Error::NulByte`] naming `what`.
pub(crate) fn c_string(what: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|e| Error::NulByte {
        what,
        position: e.nul_position(),
    })
}

/// A C string for a path, in the form llama.cpp's `fopen` expects (the OS bytes on Unix,
/// UTF-8 on Windows, where llama.cpp converts UTF-8 to a wide path).
pub(crate) fn path_c_string(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = match path.to_str() {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not valid UTF-8"),
            ));
        }
    };
    CString::new(bytes).map_err(|e| Error::NulByte {
        what: "path",
        position: e.nul_position(),
    })
}

/// Copies a C string llama.cpp owns; `None` for a null pointer.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn borrowed_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: as the caller promises.
        Some(
            unsafe { CStr::from_ptr(ptr) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The snprintf-style two-call pattern of llama.cpp's metadata getters: `fill(buf, size)`
/// returns the full length (or a negative value for "no such value") and writes a
/// NUL-terminated, possibly truncated, copy.
pub(crate) fn snprintf_string(mut fill: impl FnMut(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = fill(buf.as_mut_ptr().cast(), buf.len());
        let n = usize::try_from(n).ok()?;
        if n < buf.len() {
            buf.truncate(n);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.resize(n + 1, 0);
    }
}
