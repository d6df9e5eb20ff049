//! A stand-in for the static part of the MSVC C runtime, so that a normal (`std`) Rust program
//! for `x86_64-pc-windows-msvc` links here without Visual Studio: `fetch/tests/msvc_link.rs`
//! compiles it to an object file (`--emit obj`) and links it with the program, `/NODEFAULTLIB`
//! and import libraries our writer makes from wine's DLLs (`ucrtbase`, `vcruntime140`,
//! `kernel32`, ...).
//!
//! `msvcrt.lib` is not only an import library: it also carries objects linked into every
//! program, and a `std` program needs exactly these of them (what lld-link reports undefined
//! without them):
//! - `mainCRTStartup`, the entry point, which calls the `main` rustc generates (std takes the
//!   command line from `GetCommandLineW`, not from `argc`/`argv`);
//! - `_tls_used`, the TLS directory the linker points the PE header at, with `_tls_index` and
//!   the `.tls` section bounds: std's `#[thread_local]` statics live there, and the thread-local
//!   destructors run from the TLS callbacks between `.CRT$XLA` and `.CRT$XLZ`;
//! - ``type_info::`vftable'``, the vtable of the C++ `type_info` objects in the unwind
//!   tables of `panic=unwind` code (only its address is used);
//! - `_fltused`, MSVC's "floating point is used" marker.
//!
//! This is what tlssup.obj and the startup objects do in the real runtime, reduced to what a
//! Rust program uses; it is a test device, not something a user build needs (they link
//! Visual Studio's runtime).

#![no_std]
#![allow(non_upper_case_globals)]

unsafe extern "C" {
    /// The C `main` rustc generates for a `std` binary (it calls `lang_start`).
    fn main(argc: i32, argv: *const *const u8) -> i32;
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn ExitProcess(code: u32) -> !;
}

#[unsafe(no_mangle)]
pub extern "C" fn mainCRTStartup() -> ! {
    // SAFETY: called once, by the loader, as the process's entry point.
    unsafe { ExitProcess(main(0, core::ptr::null()) as u32) }
}

/// Set by the loader to this module's TLS slot.
#[unsafe(no_mangle)]
pub static mut _tls_index: u32 = 0;

// The linker sorts sections of one name by the part after `$`: `.tls` first, `.tls$ZZZ`
// last, every `#[thread_local]` (`.tls$`) in between; the same for `.CRT$XL*` callbacks.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".tls")]
pub static mut _tls_start: u8 = 0;

#[unsafe(no_mangle)]
#[unsafe(link_section = ".tls$ZZZ")]
pub static mut _tls_end: u8 = 0;

#[unsafe(no_mangle)]
#[unsafe(link_section = ".CRT$XLA")]
pub static __xl_a: usize = 0;

#[unsafe(no_mangle)]
#[unsafe(link_section = ".CRT$XLZ")]
pub static __xl_z: usize = 0;

/// `IMAGE_TLS_DIRECTORY64`.
#[repr(C)]
pub struct TlsDirectory {
    start: *const u8,
    end: *const u8,
    index: *const u32,
    /// The callbacks after `__xl_a`, up to the null `__xl_z`.
    callbacks: *const usize,
    zero_fill: u32,
    characteristics: u32,
}

// SAFETY: read-only data for the loader.
unsafe impl Sync for TlsDirectory {}

#[unsafe(no_mangle)]
#[unsafe(link_section = ".rdata$T")]
pub static _tls_used: TlsDirectory = TlsDirectory {
    start: &raw const _tls_start,
    end: &raw const _tls_end,
    index: &raw const _tls_index,
    // SAFETY: one past `__xl_a`, inside the `.CRT$XL*` run the linker lays out.
    callbacks: unsafe { (&raw const __xl_a).add(1) },
    zero_fill: 0,
    characteristics: 0,
};

#[unsafe(export_name = "??_7type_info@@6B@")]
pub static TYPE_INFO_VFTABLE: [usize; 2] = [0; 2];

#[unsafe(no_mangle)]
pub static _fltused: i32 = 0;
