//! Cancelling a context's decoding from another thread.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::panic;

/// A handle that cancels the decoding of a [`Context`](crate::Context) from any thread: a
/// running [`Context::decode`](crate::Context::decode) stops with
/// [`Error::Aborted`](crate::Error::Aborted) (on the CPU backend), and a
/// [`Generator`](crate::Generator) ends with
/// [`StopReason::Cancelled`](crate::StopReason::Cancelled).
/// The request stays in force until [`CancelHandle::reset`].
#[derive(Debug, Clone)]
pub struct CancelHandle(pub(crate) Arc<AtomicBool>);

impl CancelHandle {
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Withdraws the request, so decoding works again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

pub(crate) unsafe extern "C" fn abort_trampoline(data: *mut c_void) -> bool {
    // SAFETY: `data` is the AtomicBool inside the Arc the Context keeps alive.
    let flag = unsafe { &*(data as *const AtomicBool) };
    panic::wrap(|| flag.load(Ordering::SeqCst)).unwrap_or(true)
}
