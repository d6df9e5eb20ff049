//! A minimal client of ggml's RPC protocol: the `HELLO` handshake, enough to prove that a
//! ggml-rpc-server listens and speaks the protocol (without loading ggml).
//!
//! Request: command byte `14` (`RPC_CMD_HELLO`), the request size as u64 little-endian (24),
//! then `rpc_msg_hello_req` (24 bytes of connection capabilities, zero = plain TCP). Response:
//! its size as u64 little-endian (28), then `rpc_msg_hello_rsp`: major, minor, patch, padding,
//! 24 bytes of capabilities.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `RPC_CMD_HELLO` in ggml-rpc.cpp (pinned there by a `static_assert`).
pub const RPC_CMD_HELLO: u8 = 14;
/// `sizeof(rpc_msg_hello_req)`.
const HELLO_REQ_SIZE: u64 = 24;
/// `sizeof(rpc_msg_hello_rsp)`.
const HELLO_RSP_SIZE: u64 = 28;

/// The protocol version a server answered `HELLO` with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcVersion {
    /// `RPC_PROTO_MAJOR_VERSION` (5 at b10199).
    pub major: u8,
    /// `RPC_PROTO_MINOR_VERSION`.
    pub minor: u8,
    /// `RPC_PROTO_PATCH_VERSION`.
    pub patch: u8,
}

/// Connects to `addr`, sends `HELLO`, reads the answer and closes the connection (the
/// server then waits for its next client). Every step times out after `timeout`.
pub fn hello(addr: SocketAddr, timeout: Duration) -> io::Result<RpcVersion> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = vec![RPC_CMD_HELLO];
    req.extend_from_slice(&HELLO_REQ_SIZE.to_le_bytes());
    req.extend_from_slice(&[0u8; HELLO_REQ_SIZE as usize]);
    s.write_all(&req)?;
    let mut size = [0u8; 8];
    s.read_exact(&mut size)?;
    let size = u64::from_le_bytes(size);
    if size != HELLO_RSP_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HELLO response of {size} bytes, expected {HELLO_RSP_SIZE}"),
        ));
    }
    let mut rsp = [0u8; HELLO_RSP_SIZE as usize];
    s.read_exact(&mut rsp)?;
    Ok(RpcVersion {
        major: rsp[0],
        minor: rsp[1],
        patch: rsp[2],
    })
}
