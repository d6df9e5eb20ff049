//! The RPC protocol's HELLO handshake, spoken from Rust with timeouts, so that an endpoint is
//! known to be a compatible `ggml-rpc-server` before llama.cpp's client (which aborts on any
//! failed request) talks to it.
//!
//! Wire format (ggml-rpc.cpp, protocol 5.x): the client sends the command byte
//! `RPC_CMD_HELLO` (14, fixed across versions), the request size as a little-endian `u64` and
//! a 24-byte `conn_caps` block (all zero: plain TCP, no transport upgrade). The server answers
//! with the response size (`u64`, 28) and `major, minor, patch, padding, conn_caps[24]`.
//! llama.cpp accepts a server whose major version equals its own and whose minor version is
//! not newer; so do we, against the headers the bindings were generated from.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use llama_prebuilt_sys as sys;

use super::RpcEndpoint;
use crate::error::{Error, Result};

const RPC_CMD_HELLO: u8 = 14;
const CONN_CAPS_SIZE: usize = 24;
const HELLO_RESPONSE_SIZE: usize = 4 + CONN_CAPS_SIZE;

/// Connects to `endpoint`, runs the handshake within `timeout` in total, closes the connection
/// and returns the server's protocol version.
pub(crate) fn handshake(endpoint: &RpcEndpoint, timeout: Duration) -> Result<(u8, u8, u8)> {
    let unreachable = |reason: String| Error::RpcUnreachable {
        endpoint: endpoint.to_string(),
        reason,
    };
    let deadline = Instant::now() + timeout;
    let addr = resolve_ipv4(endpoint).map_err(unreachable)?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| unreachable(format!("cannot connect to {addr}: {e}")))?;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(1))
    };
    let mut request = Vec::with_capacity(1 + 8 + CONN_CAPS_SIZE);
    request.push(RPC_CMD_HELLO);
    request.extend_from_slice(&(CONN_CAPS_SIZE as u64).to_le_bytes());
    request.extend_from_slice(&[0; CONN_CAPS_SIZE]);
    let io = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            unreachable(format!(
                "no answer to the RPC handshake within {timeout:?} (a ggml-rpc-server serves one client at a time: is another process connected to it?)"
            ))
        } else {
            unreachable(format!(
                "the connection failed during the RPC handshake: {e}"
            ))
        }
    };
    stream.set_write_timeout(Some(remaining())).map_err(io)?;
    stream.write_all(&request).map_err(io)?;

    let mut size = [0u8; 8];
    stream.set_read_timeout(Some(remaining())).map_err(io)?;
    read_exact_or_protocol(&mut stream, &mut size, endpoint, io)?;
    let size = u64::from_le_bytes(size);
    if size != HELLO_RESPONSE_SIZE as u64 {
        return Err(protocol(
            endpoint,
            format!(
                "the HELLO response has {size} bytes, a ggml RPC 5.x server sends {HELLO_RESPONSE_SIZE}"
            ),
        ));
    }
    let mut response = [0u8; HELLO_RESPONSE_SIZE];
    stream.set_read_timeout(Some(remaining())).map_err(io)?;
    read_exact_or_protocol(&mut stream, &mut response, endpoint, io)?;
    let version = (response[0], response[1], response[2]);
    let (major, minor) = (
        sys::RPC_PROTO_MAJOR_VERSION as u8,
        sys::RPC_PROTO_MINOR_VERSION as u8,
    );
    if version.0 != major || version.1 > minor {
        return Err(protocol(
            endpoint,
            format!(
                "the server speaks RPC protocol {}.{}.{}, this llama.cpp speaks {major}.{minor}.x: run a ggml-rpc-server from the same llama.cpp release",
                version.0, version.1, version.2
            ),
        ));
    }
    Ok(version)
}

/// Checks that something accepts connections at `endpoint` within `timeout`, and closes the
/// connection at once (a `ggml-rpc-server` reads end-of-file and goes back to `accept`).
///
/// This is the check before a model load, not the handshake: the server may be serving
/// another connection of this very process (llama.cpp shares one socket per endpoint among
/// all buffers, whoever allocated them), and then a handshake would wait for that connection
/// to close, while a connection still lands in the server's listen queue.
pub(crate) fn accepts_connections(endpoint: &RpcEndpoint, timeout: Duration) -> Result<()> {
    let unreachable = |reason: String| Error::RpcUnreachable {
        endpoint: endpoint.to_string(),
        reason,
    };
    let addr = resolve_ipv4(endpoint).map_err(unreachable)?;
    TcpStream::connect_timeout(&addr, timeout)
        .map(drop)
        .map_err(|e| unreachable(format!("cannot connect to {addr}: {e}")))
}

fn protocol(endpoint: &RpcEndpoint, reason: String) -> Error {
    Error::RpcProtocol {
        endpoint: endpoint.to_string(),
        reason,
    }
}

/// `read_exact`, where a connection closed before the answer is complete means "not a ggml
/// RPC server" (or one that rejected our handshake), and other errors go through `io`.
fn read_exact_or_protocol(
    stream: &mut TcpStream,
    buf: &mut [u8],
    endpoint: &RpcEndpoint,
    io: impl Fn(std::io::Error) -> Error,
) -> Result<()> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(protocol(
            endpoint,
            "the connection was closed without a complete HELLO answer: not a ggml RPC server, or one of another protocol version".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(protocol(
            endpoint,
            "the connection was reset during the handshake: not a ggml RPC server, or one of another protocol version".into(),
        )),
        Err(e) => Err(io(e)),
    }
}

/// The first IPv4 address of the host: llama.cpp's client connects over IPv4 only
/// (`gethostbyname`).
fn resolve_ipv4(endpoint: &RpcEndpoint) -> std::result::Result<SocketAddr, String> {
    let addrs = (endpoint.host(), endpoint.port())
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host()))?;
    let mut saw_v6 = false;
    for addr in addrs {
        if addr.is_ipv4() {
            return Ok(addr);
        }
        saw_v6 = true;
    }
    Err(if saw_v6 {
        format!(
            "{} has only IPv6 addresses; llama.cpp's RPC client connects over IPv4",
            endpoint.host()
        )
    } else {
        format!("{} resolves to no address", endpoint.host())
    })
}
