//! Panics never cross into C.
//!
//! Every `extern "C"` trampoline runs its Rust body through [`wrap`]: a panic is caught, its
//! payload parked in a thread-local slot, and the trampoline returns a neutral value to C. The
//! FFI gate ([`crate::ffi::gate`]) calls [`resume`] after the C call returns, so a panic raised
//! by a callback that ran on the calling thread continues unwinding in Rust, where it started.
//! (A panic on a thread llama.cpp spawned stays parked there and is dropped with the thread.)

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static LAST_PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Runs `f`, catching a panic. Returns `None` if `f` panicked, or if an earlier panic on this
/// thread is still waiting to be resumed (then `f` is not run at all: no Rust code runs on a
/// thread that is unwinding back to its caller).
pub(crate) fn wrap<T>(f: impl FnOnce() -> T) -> Option<T> {
    if LAST_PANIC.with(|slot| slot.borrow().is_some()) {
        return None;
    }
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            LAST_PANIC.with(|slot| *slot.borrow_mut() = Some(payload));
            None
        }
    }
}

/// Re-raises a panic that a callback on this thread caught, if any.
pub(crate) fn resume() {
    if let Some(payload) = LAST_PANIC.with(|slot| slot.borrow_mut().take()) {
        panic::resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_resumes_later() {
        assert_eq!(wrap(|| 3), Some(3));
        assert_eq!(wrap(|| -> i32 { panic!("boom") }), None);
        // A second callback on the same thread does not run while the panic is parked.
        assert_eq!(wrap(|| 4), None);
        let resumed = panic::catch_unwind(resume).unwrap_err();
        assert_eq!(resumed.downcast_ref::<&str>(), Some(&"boom"));
        resume(); // nothing parked any more
        assert_eq!(wrap(|| 5), Some(5));
    }
}
