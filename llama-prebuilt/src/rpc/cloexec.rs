//! Keeps llama.cpp's RPC connections out of child processes.
//!
//! llama.cpp opens its RPC sockets without `SOCK_CLOEXEC`. A process that starts a child
//! (`std::process::Command`) while a model holds a connection hands the child a copy of it; the
//! copy survives the child's `exec`, so the connection stays open after the model is dropped.
//! A `ggml-rpc-server` serves one client at a time, so it keeps serving that dead connection,
//! and the next model load of this process then waits for it forever, inside llama.cpp, while
//! holding the RPC client's global lock. (Found by this crate's tests, which start servers
//! while other tests load models.) So after every load that may have connected, we mark the
//! sockets whose peer is a registered RPC server close-on-exec.
//!
//! What remains: a child started by another thread *during* such a call (`Model::load` with
//! RPC devices, `Backend::add_rpc_server`), before the marking, still inherits the socket. Do
//! not start processes concurrently with those calls.

#[cfg(unix)]
use std::net::SocketAddr;

use super::RpcEndpoint;

/// Marks close-on-exec every socket of this process connected to one of `endpoints`.
#[cfg(unix)]
pub(crate) fn mark_rpc_sockets(endpoints: &[RpcEndpoint]) {
    use std::net::ToSocketAddrs;

    let peers: Vec<SocketAddr> = endpoints
        .iter()
        .filter_map(|e| (e.host(), e.port()).to_socket_addrs().ok())
        .flatten()
        .filter(SocketAddr::is_ipv4)
        .collect();
    if peers.is_empty() {
        return;
    }
    for fd in open_fds() {
        if peer_of(fd).is_some_and(|peer| peers.contains(&peer)) {
            // SAFETY: F_GETFD/F_SETFD only change the descriptor's close-on-exec flag; a
            // descriptor closed meanwhile makes them fail harmlessly with EBADF.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn mark_rpc_sockets(_endpoints: &[RpcEndpoint]) {}

/// The descriptors open in this process (`/proc/self/fd` on Linux, `/dev/fd` elsewhere).
#[cfg(unix)]
fn open_fds() -> Vec<i32> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The IPv4 peer of a connected TCP socket, `None` for anything else.
#[cfg(unix)]
fn peer_of(fd: i32) -> Option<SocketAddr> {
    // SAFETY: sockaddr_in is plain data; getpeername writes at most `len` bytes into it and
    // fails (ENOTSOCK, ENOTCONN, EBADF) for descriptors that are not connected sockets.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0
            || i32::from(addr.sin_family) != libc::AF_INET
        {
            return None;
        }
        let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        Some(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn only_sockets_to_the_endpoints_are_marked() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let theirs = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        for s in [&ours, &theirs] {
            // SAFETY: clears the flag std sets, to stand in for llama.cpp's sockets.
            unsafe { libc::fcntl(s.as_raw_fd(), libc::F_SETFD, 0) };
        }
        mark_rpc_sockets(&[RpcEndpoint::parse(&format!("127.0.0.1:{port}")).unwrap()]);
        // SAFETY: reads the descriptor flags.
        let flags = |s: &TcpStream| unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags(&ours) & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        assert_eq!(flags(&theirs) & libc::FD_CLOEXEC, 0);
    }
}
