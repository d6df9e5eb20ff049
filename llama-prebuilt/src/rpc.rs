//! ggml RPC: `ggml-rpc-server` processes on other machines (or other processes) as backend
//! devices, so that a model's layers can be placed across the local CPU and N remote servers.
//!
//! This is llama.cpp's own distributed engine (the `ggml-rpc` backend plugin shipped in every
//! release archive), not a protocol of ours. What this module adds is the part that keeps a
//! Rust process alive: llama.cpp's RPC client aborts the process (`GGML_ABORT("Remote RPC server
//! crashed or returned malformed response")`) or dereferences a null socket when a server is
//! not there or answers something unexpected. So before llama.cpp touches an endpoint, we parse
//! it the way llama.cpp will, connect to it ourselves with a timeout and run the protocol's
//! HELLO handshake, and only then hand it over. Failures become [`Error`] values that name the
//! endpoint.
//!
//! **Security:** the RPC protocol has no authentication and no encryption. Anyone who can reach
//! a server's port can run computations on it and read or write its memory buffers. Only
//! connect to servers on a network you trust; bind servers to `127.0.0.1` or a private
//! interface.
//!
//! **A server that dies while a model uses it** aborts this process: llama.cpp's client has no
//! error path for a failed request once a model is loaded (see the crate's README, "More than
//! one machine", for the supervisor pattern that contains it).

mod cloexec;
mod hello;
mod leases;

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use llama_prebuilt_sys as sys;

use crate::backend::{Backend, Device};
use crate::error::{Error, Result};
use crate::ffi;

pub(crate) use cloexec::mark_rpc_sockets;
pub(crate) use leases::{RpcLease, endpoint_in_use};

/// How long [`Backend::add_rpc_server`] waits for a server to accept the connection and answer
/// the handshake.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The address of a `ggml-rpc-server`: `host:port`, as llama.cpp parses it.
///
/// llama.cpp splits the string at its first `:`, so IPv6 literals cannot be written here; use
/// a host name that resolves to the address instead.
///
/// ```
/// use llama_prebuilt::RpcEndpoint;
///
/// let endpoint: RpcEndpoint = "127.0.0.1:50052".parse()?;
/// assert_eq!(endpoint.port(), 50052);
/// assert!("localhost".parse::<RpcEndpoint>().is_err());
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RpcEndpoint {
    host: String,
    port: u16,
}

impl RpcEndpoint {
    /// Parses `host:port`.
    ///
    /// # Failure
    /// [`Error::RpcEndpoint`] saying what is wrong: no `:`, an empty host, an IPv6 literal,
    /// whitespace or control characters, a port that is not a number in 1..=65535.
    pub fn parse(text: &str) -> Result<RpcEndpoint> {
        let invalid = |reason: &str| Error::RpcEndpoint {
            endpoint: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((host, port_text)) = text.split_once(':') else {
            return Err(invalid("expected host:port, e.g. 127.0.0.1:50052"));
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        if host.starts_with('[') || port_text.contains(':') {
            return Err(invalid(
                "IPv6 literals are not supported (llama.cpp splits at the first ':'); use a host name",
            ));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the host contains whitespace or control characters",
            ));
        }
        // Digits only: llama.cpp's std::stoi would also take "+80", " 80" or "80abc".
        let port = match port_text.parse::<u16>() {
            Ok(0) => return Err(invalid("port 0 is not a server's port; use 1..=65535")),
            Ok(port) if port_is_digits(port_text) => port,
            _ => return Err(invalid("the port must be a number in 1..=65535")),
        };
        Ok(RpcEndpoint {
            host: host.to_owned(),
            port,
        })
    }

    /// The host name or IPv4 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is a loopback name or address (`localhost`, `127.x.x.x`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for RpcEndpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<RpcEndpoint> {
        RpcEndpoint::parse(s)
    }
}

impl fmt::Display for RpcEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A `ggml-rpc-server` registered with the backend: its endpoint, the server's protocol
/// version and the devices it exposes (each with the memory it reported when it was added).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcServer {
    /// Where the server listens.
    pub endpoint: RpcEndpoint,
    /// The RPC protocol version the server speaks (major, minor, patch).
    pub protocol: (u8, u8, u8),
    /// The server's devices, as they appear in [`Backend::devices`] (named `RPC0`, `RPC1`, …).
    pub devices: Vec<Device>,
}

/// Servers added in this process, by endpoint. llama.cpp never forgets a server either.
static SERVERS: Mutex<Vec<RpcServer>> = Mutex::new(Vec::new());

impl Backend {
    /// Adds a `ggml-rpc-server` as backend devices, with [`DEFAULT_RPC_TIMEOUT`]. See
    /// [`Backend::add_rpc_server_with_timeout`].
    pub fn add_rpc_server(&self, endpoint: &str) -> Result<RpcServer> {
        self.add_rpc_server_with_timeout(endpoint, DEFAULT_RPC_TIMEOUT)
    }

    /// Adds a `ggml-rpc-server` as backend devices. Its devices then appear in
    /// [`Backend::devices`] and, unless [`ModelParams::devices`](crate::ModelParams::devices)
    /// says otherwise, [`Model::load`](crate::Model::load) places layers on them (llama.cpp
    /// puts RPC devices first, then local GPUs; what is not offloaded stays on the CPU; see
    /// [`ModelParams::gpu_layers`](crate::ModelParams::gpu_layers) and
    /// [`ModelParams::tensor_split`](crate::ModelParams::tensor_split)).
    ///
    /// Before llama.cpp sees the endpoint, it is parsed, connected to within `timeout` and
    /// asked for its protocol version, so that a wrong address is an `Err`, not an abort.
    /// Adding the same endpoint again returns the server added first.
    ///
    /// **No authentication, no encryption:** only connect to servers on a network you trust.
    ///
    /// A `ggml-rpc-server` serves one client at a time: a server busy with another process
    /// does not answer the handshake and is reported as [`Error::RpcUnreachable`] after
    /// `timeout`.
    ///
    /// # Failure
    /// [`Error::RpcEndpoint`] for a malformed endpoint, [`Error::RpcUnavailable`] if the
    /// library directory has no RPC backend (`libggml-rpc`), [`Error::RpcUnreachable`] if
    /// nothing answers there in time, [`Error::RpcProtocol`] if what answers is not a
    /// compatible ggml RPC server.
    pub fn add_rpc_server_with_timeout(
        &self,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<RpcServer> {
        let endpoint = RpcEndpoint::parse(endpoint)?;
        let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = servers.iter().find(|s| s.endpoint == endpoint) {
            return Ok(known.clone());
        }
        let add_server = self.rpc_add_server_fn()?;
        let protocol = hello::handshake(&endpoint, timeout)?;
        let c_endpoint = ffi::c_string("RPC endpoint", &endpoint.to_string())?;
        let (reg, message) = ffi::gate(|| {
            // SAFETY: a NUL-terminated endpoint llama.cpp parses the way we just did; the server
            // answered the handshake a moment ago, so the device-count request it sends gets
            // an answer (a server dying in between is the race documented on the type).
            unsafe { add_server(c_endpoint.as_ptr()) }
        });
        if reg.is_null() {
            return Err(Error::RpcUnreachable {
                endpoint: endpoint.to_string(),
                reason: message.unwrap_or_else(|| "the server reported no device".into()),
            });
        }
        // SAFETY: `reg` is the registry entry llama.cpp just created for this server; it lives
        // for the rest of the process. Registering it adds its devices to the global list.
        unsafe { sys::ggml_backend_register(reg) };
        // SAFETY: queries of the registry entry; the server is up (it just answered).
        let devices: Vec<Device> = unsafe {
            (0..sys::ggml_backend_reg_dev_count(reg))
                .map(|i| sys::ggml_backend_reg_dev_get(reg, i))
                .filter(|dev| !dev.is_null())
                .map(|dev| Device::from_raw(dev))
                .collect()
        };
        self.push_devices(&devices);
        let server = RpcServer {
            endpoint,
            protocol,
            devices,
        };
        servers.push(server.clone());
        Ok(server)
    }

    /// The RPC servers added so far.
    pub fn rpc_servers(&self) -> Vec<RpcServer> {
        SERVERS.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `ggml_backend_rpc_add_server`, looked up through the RPC backend plugin (release builds
    /// load backends as plugins, so the function is not linked directly).
    fn rpc_add_server_fn(&self) -> Result<AddServerFn> {
        let unavailable = || Error::RpcUnavailable {
            lib_dir: self.lib_dir().to_path_buf(),
        };
        // SAFETY: a lookup by a NUL-terminated name in the backend registry.
        let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
        if reg.is_null() {
            return Err(unavailable());
        }
        // SAFETY: `reg` is a registered backend; the name is NUL-terminated.
        let ptr = unsafe {
            sys::ggml_backend_reg_get_proc_address(reg, c"ggml_backend_rpc_add_server".as_ptr())
        };
        if ptr.is_null() {
            return Err(unavailable());
        }
        // SAFETY: the RPC backend returns its `ggml_backend_rpc_add_server`, whose C type
        // (ggml-rpc.h) is exactly AddServerFn.
        Ok(unsafe { std::mem::transmute::<*mut std::ffi::c_void, AddServerFn>(ptr) })
    }
}

type AddServerFn =
    unsafe extern "C" fn(endpoint: *const std::ffi::c_char) -> sys::ggml_backend_reg_t;

/// The endpoints of the RPC servers whose devices are among `devices`, and whether any RPC
/// device is there at all (used by [`Model::load`](crate::Model::load) to check that the
/// servers a model will use still answer).
pub(crate) fn endpoints_of(devices: &[Device]) -> Vec<RpcEndpoint> {
    let servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<RpcEndpoint> = Vec::new();
    for server in servers.iter() {
        if server.devices.iter().any(|d| devices.contains(d)) && !out.contains(&server.endpoint) {
            out.push(server.endpoint.clone());
        }
    }
    out
}

/// Checks that every server in `endpoints` still accepts connections (see
/// [`hello::accepts_connections`]), unless a live model of this process holds a connection
/// to it already. A dead server is then an `Err` instead of llama.cpp's null-socket crash.
pub(crate) fn check_servers(endpoints: &[RpcEndpoint], timeout: Duration) -> Result<()> {
    for endpoint in endpoints {
        if !endpoint_in_use(endpoint) {
            hello::accepts_connections(endpoint, timeout)?;
        }
    }
    Ok(())
}

/// Leases for the endpoints a model uses, grouped by endpoint for [`RpcLease`].
pub(crate) fn lease_all(endpoints: &[RpcEndpoint]) -> Vec<RpcLease> {
    endpoints.iter().cloned().map(RpcLease::new).collect()
}

fn port_is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}
