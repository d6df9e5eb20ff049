//! Process-wide initialisation: log routing, the ABI probe, backend registration.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use llama_prebuilt_sys as sys;

use crate::backend_libs::{self, BackendLibrary, Registered};
use crate::error::{Error, Result};
use crate::{abi, ffi, logging};

/// The initialised llama.cpp runtime. There is one per process, created by [`Backend::init`]
/// (which every constructor in this crate calls, so calling it yourself is only needed to pick
/// the library directory or to look at the devices).
///
/// Initialisation, once:
/// 1. routes llama.cpp's log to the [`log`](https://docs.rs/log) crate (target `llama_cpp`);
/// 2. runs the ABI probe: the loaded library's default parameters must equal the values of
///    the headers the bindings were generated from, else [`Error::AbiMismatch`];
/// 3. registers the ggml backends (CPU, GPU, …) found in the library directory: release builds
///    of llama.cpp load their backends as plugins (`GGML_BACKEND_DL`), so nothing can run
///    before this step. The directory is, in order of preference: the one passed to
///    [`Backend::init_with_lib_dir`], the environment variable `LLAMA_LIB_DIR`, the directory
///    the llama library was actually loaded from (found at run time), and finally the
///    directory the build staged the libraries in;
/// 4. fails with [`Error::NoBackendDevices`] if no device registered.
///
/// ```
/// let backend = llama_prebuilt::Backend::init()?;
/// for device in backend.devices() {
///     println!("{} ({:?}): {}", device.name, device.kind, device.description);
/// }
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
#[derive(Debug)]
pub struct Backend {
    lib_dir: PathBuf,
    lib_dir_source: LibDirSource,
    /// The devices registered at initialisation, then those of each RPC server added.
    devices: Mutex<Vec<Device>>,
    /// The backend modules of `lib_dir` and whether each registered.
    libraries: Vec<BackendLibrary>,
}

/// Where [`Backend`] took the library directory from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LibDirSource {
    /// [`Backend::init_with_lib_dir`].
    Explicit,
    /// The `LLAMA_LIB_DIR` environment variable.
    Environment,
    /// The directory the dynamic loader loaded the llama library from.
    LoadedLibrary,
    /// The directory the build script staged the libraries in (`llama_prebuilt_sys::LIB_DIR`).
    BuildTime,
}

/// A compute device ggml registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// Short name, e.g. `CPU`, `Vulkan0`, `CUDA0`.
    pub name: String,
    /// Human-readable description (CPU model, GPU name).
    pub description: String,
    /// What kind of device it is.
    pub kind: DeviceKind,
    /// Free memory in bytes, as the backend reports it.
    pub memory_free: usize,
    /// Total memory in bytes, as the backend reports it.
    pub memory_total: usize,
    /// The backend that registered the device: `CPU`, `Vulkan`, … or `RPC[host:port]` for
    /// the devices of an RPC server.
    pub backend: String,
    handle: DeviceHandle,
}

/// A `ggml_backend_dev_t`. Registered devices live until the process exits (ggml never frees
/// them), so the address identifies the device and may be passed back to llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DeviceHandle(usize);

impl Device {
    /// Reads a device's properties. For an RPC device this asks the server for its memory.
    ///
    /// # Safety
    /// `dev` is a registered, non-null device.
    pub(crate) unsafe fn from_raw(dev: sys::ggml_backend_dev_t) -> Device {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: as the caller promises; the strings are owned by the device and copied here.
        unsafe {
            sys::ggml_backend_dev_memory(dev, &mut free, &mut total);
            let reg = sys::ggml_backend_dev_backend_reg(dev);
            Device {
                name: ffi::borrowed_string(sys::ggml_backend_dev_name(dev)).unwrap_or_default(),
                description: ffi::borrowed_string(sys::ggml_backend_dev_description(dev))
                    .unwrap_or_default(),
                kind: DeviceKind::from_raw(sys::ggml_backend_dev_type(dev)),
                memory_free: free,
                memory_total: total,
                backend: if reg.is_null() {
                    String::new()
                } else {
                    ffi::borrowed_string(sys::ggml_backend_reg_name(reg)).unwrap_or_default()
                },
                handle: DeviceHandle(dev as usize),
            }
        }
    }

    /// The `ggml_backend_dev_t`, for llama.cpp's device lists.
    pub(crate) fn raw(&self) -> sys::ggml_backend_dev_t {
        self.handle.0 as sys::ggml_backend_dev_t
    }

    /// Whether this is a device of an RPC server.
    pub fn is_rpc(&self) -> bool {
        self.backend.starts_with("RPC")
    }
}

/// The kind of a [`Device`] (ggml's `enum ggml_backend_dev_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceKind {
    /// CPU using system memory.
    Cpu,
    /// GPU with dedicated memory.
    Gpu,
    /// Integrated GPU using host memory.
    IntegratedGpu,
    /// Accelerator used together with the CPU backend (BLAS, AMX).
    Accelerator,
    /// A "meta" device wrapping several others.
    Meta,
    /// A value this crate does not know.
    Other(u32),
}

impl DeviceKind {
    // The C enum is `c_uint` on most targets but `c_int` on Windows.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(raw: sys::ggml_backend_dev_type) -> Self {
        match raw {
            sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceKind::Cpu,
            sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceKind::Gpu,
            sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceKind::IntegratedGpu,
            sys::GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceKind::Accelerator,
            sys::GGML_BACKEND_DEVICE_TYPE_META => DeviceKind::Meta,
            other => DeviceKind::Other(other as u32),
        }
    }
}

static BACKEND: OnceLock<Backend> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

impl Backend {
    /// Initialises the runtime (once per process) and returns it; later calls return the same
    /// instance. See the type's documentation for what happens.
    ///
    /// # Failure
    /// [`Error::AbiMismatch`] if the library does not match the bindings,
    /// [`Error::NoBackendDevices`] if no backend could be loaded from the library directory.
    /// A failed initialisation is retried by the next call.
    pub fn init() -> Result<&'static Backend> {
        Self::init_impl(None)
    }

    /// Like [`Backend::init`], with the directory holding the llama.cpp libraries (and their
    /// `ggml-*` backend plugins) given explicitly.
    ///
    /// # Failure
    /// As [`Backend::init`]; [`Error::BackendAlreadyInitialized`] if the runtime was already
    /// initialised from another directory.
    pub fn init_with_lib_dir(dir: impl AsRef<Path>) -> Result<&'static Backend> {
        Self::init_impl(Some(dir.as_ref().to_path_buf()))
    }

    /// The runtime, if it has been initialised.
    pub fn get() -> Option<&'static Backend> {
        BACKEND.get()
    }

    fn init_impl(explicit: Option<PathBuf>) -> Result<&'static Backend> {
        if let Some(backend) = BACKEND.get() {
            return backend.same_dir(explicit);
        }
        let _guard = INIT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(backend) = BACKEND.get() {
            return backend.same_dir(explicit);
        }
        logging::install();
        abi::probe()?;
        let (lib_dir, lib_dir_source) = resolve_lib_dir(explicit);
        let c_dir = ffi::path_c_string(&lib_dir)?;
        ffi::gate(|| {
            // SAFETY: a valid NUL-terminated path; ggml copies what it needs. Serialised by
            // INIT_LOCK, and done once per process unless it found nothing.
            unsafe { sys::ggml_backend_load_all_from_path(c_dir.as_ptr()) };
        });
        let devices = list_devices();
        if devices.is_empty() {
            return Err(Error::NoBackendDevices { lib_dir });
        }
        let libraries =
            backend_libs::classify(&lib_dir, &registered_backends(), backend_libs::probe_dlopen);
        for l in &libraries {
            if let backend_libs::BackendStatus::NotLoaded(why) = &l.status {
                log::info!(target: logging::LOG_TARGET, "backend {} ({}) not in use: {why}", l.name, l.path.display());
            }
        }
        // SAFETY: initialises llama.cpp's global tables; idempotent.
        unsafe { sys::llama_backend_init() };
        for d in &devices {
            log::debug!(target: logging::LOG_TARGET, "device {} ({:?}): {}", d.name, d.kind, d.description);
        }
        let backend = Backend {
            lib_dir,
            lib_dir_source,
            devices: Mutex::new(devices),
            libraries,
        };
        Ok(BACKEND.get_or_init(|| backend))
    }

    fn same_dir(&'static self, explicit: Option<PathBuf>) -> Result<&'static Backend> {
        match explicit {
            Some(dir) if dir != self.lib_dir => Err(Error::BackendAlreadyInitialized {
                current: self.lib_dir.clone(),
                requested: dir,
            }),
            _ => Ok(self),
        }
    }

    /// The directory the backends were loaded from.
    pub fn lib_dir(&self) -> &Path {
        &self.lib_dir
    }

    /// Where [`Backend::lib_dir`] came from.
    pub fn lib_dir_source(&self) -> LibDirSource {
        self.lib_dir_source
    }

    /// The devices that registered, in ggml's order (the CPU comes last), followed by the
    /// devices of the RPC servers added with [`Backend::add_rpc_server`]. Memory figures are
    /// those reported when the device registered.
    pub fn devices(&self) -> Vec<Device> {
        self.devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The backend modules found in [`Backend::lib_dir`] (`libggml-cpu.so`,
    /// `libggml-vulkan.so`, …), each with whether it registered and, if not, why: e.g. a
    /// Vulkan build on a machine without the Vulkan loader lists `vulkan` as
    /// [`BackendLoadError::Library`](crate::BackendLoadError::Library) with the loader's
    /// message naming `libvulkan.so.1`, and runs on the CPU.
    pub fn backend_libraries(&self) -> &[BackendLibrary] {
        &self.libraries
    }

    /// Whether a backend module named `name` (`vulkan`, `cuda`, … as in
    /// [`BackendLibrary::name`]) registered.
    pub fn backend_loaded(&self, name: &str) -> bool {
        self.libraries
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(name) && l.is_loaded())
    }

    /// Appends devices registered after initialisation (an RPC server's).
    pub(crate) fn push_devices(&self, new: &[Device]) {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        for d in new {
            if !devices.contains(d) {
                devices.push(d.clone());
            }
        }
    }

    /// llama.cpp's system information line (CPU features the backend uses).
    pub fn system_info(&self) -> String {
        // SAFETY: returns a pointer to a static buffer.
        unsafe { ffi::borrowed_string(sys::llama_print_system_info()) }.unwrap_or_default()
    }

    /// Whether any registered backend can hold model layers off the CPU.
    pub fn supports_gpu_offload(&self) -> bool {
        // SAFETY: a query of the backend registry.
        unsafe { sys::llama_supports_gpu_offload() }
    }

    /// Whether memory-mapped model loading is available.
    pub fn supports_mmap(&self) -> bool {
        // SAFETY: a constant query.
        unsafe { sys::llama_supports_mmap() }
    }
}

fn list_devices() -> Vec<Device> {
    // SAFETY: queries of the backend registry; each returned device pointer stays valid for
    // the life of the process. No RPC server is registered yet, so no query goes to a network.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .filter(|dev| !dev.is_null())
            .map(|dev| Device::from_raw(dev))
            .collect()
    }
}

/// The backends registered now, with the module each came from.
fn registered_backends() -> Vec<Registered> {
    // SAFETY: queries of the backend registry; each reg lives for the process.
    unsafe {
        (0..sys::ggml_backend_reg_count())
            .map(|i| sys::ggml_backend_reg_get(i))
            .filter(|reg| !reg.is_null())
            .map(|reg| Registered {
                name: ffi::borrowed_string(sys::ggml_backend_reg_name(reg)).unwrap_or_default(),
                devices: sys::ggml_backend_reg_dev_count(reg),
                module: backend_libs::module_of(reg as *const c_void),
            })
            .collect()
    }
}

/// The library directory to register backends from, and why.
fn resolve_lib_dir(explicit: Option<PathBuf>) -> (PathBuf, LibDirSource) {
    if let Some(dir) = explicit {
        return (dir, LibDirSource::Explicit);
    }
    if let Some(dir) = std::env::var_os("LLAMA_LIB_DIR").filter(|d| !d.is_empty()) {
        return (PathBuf::from(dir), LibDirSource::Environment);
    }
    if let Some(dir) = loaded_library_dir() {
        return (dir, LibDirSource::LoadedLibrary);
    }
    (PathBuf::from(sys::LIB_DIR), LibDirSource::BuildTime)
}

/// The directory of the llama shared library this process loaded.
pub(crate) fn loaded_library_dir() -> Option<PathBuf> {
    let file = loaded_library_file()?;
    let name = file.file_name()?.to_string_lossy().to_ascii_lowercase();
    if !(name.starts_with("libllama") || name.starts_with("llama.")) {
        // Statically linked or otherwise unexpected: not a directory to look for plugins in.
        return None;
    }
    let dir = file.parent()?;
    if dir.as_os_str().is_empty() {
        return std::env::current_dir().ok();
    }
    if dir.is_relative() {
        return std::env::current_dir().ok().map(|cwd| cwd.join(dir));
    }
    Some(dir.to_path_buf())
}

#[cfg(unix)]
fn loaded_library_file() -> Option<PathBuf> {
    use std::ffi::{CStr, OsStr};
    use std::os::unix::ffi::OsStrExt;

    // The symbol's address inside the library (not a PLT stub in the executable).
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let mut addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"llama_backend_init".as_ptr()) };
    if addr.is_null() {
        addr = sys::llama_backend_init as *const () as *mut c_void;
    }
    // SAFETY: Dl_info is plain data; dladdr fills it for an address in a loaded object.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads `addr` (any value is allowed) and writes the Dl_info we own.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    let bytes = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    Some(PathBuf::from(OsStr::from_bytes(bytes)))
}

#[cfg(windows)]
fn loaded_library_file() -> Option<PathBuf> {
    use std::ffi::OsString;
    use std::os::windows::ffi::OsStringExt;

    type Hmodule = *mut c_void;
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetModuleHandleW(name: *const u16) -> Hmodule;
        fn GetModuleFileNameW(module: Hmodule, filename: *mut u16, size: u32) -> u32;
    }
    let name: Vec<u16> = "llama.dll".encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated wide string; the handle is not reference-counted.
    let module = unsafe { GetModuleHandleW(name.as_ptr()) };
    if module.is_null() {
        return None;
    }
    let mut buf = vec![0u16; 1024];
    loop {
        // SAFETY: buf has the length we pass.
        let n = unsafe { GetModuleFileNameW(module, buf.as_mut_ptr(), buf.len() as u32) } as usize;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            return Some(PathBuf::from(OsString::from_wide(&buf[..n])));
        }
        if buf.len() >= 1 << 15 {
            return None;
        }
        buf.resize(buf.len() * 2, 0);
    }
}

#[cfg(not(any(unix, windows)))]
fn loaded_library_file() -> Option<PathBuf> {
    None
}
