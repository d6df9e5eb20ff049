//! The address the server will listen on, checked before anything is downloaded or started.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use crate::error::CliError;

/// Checks that `host:port` can be listened on by binding it once and releasing it, so a port
/// in use, a foreign address or a privileged port is a clear error instead of
/// ggml-rpc-server's `Failed to create server socket`. Returns the port to use.
///
/// ggml-rpc-server refuses port 0 and has no way to report a port the system chose, so for
/// port 0 the free port is picked here: the system assigns one to this bind, the listener is
/// released, and the server is told that port. Another process could take it in between;
/// the server would then fail to bind and the command says so.
pub fn check(host: Ipv4Addr, port: u16) -> Result<u16, CliError> {
    let listener = TcpListener::bind(SocketAddrV4::new(host, port)).map_err(|e| {
        let shown = if port == 0 {
            format!("{host}")
        } else {
            format!("{host}:{port}")
        };
        let why = match e.kind() {
            ErrorKind::AddrInUse => format!(
                "cannot listen on {shown}: port {port} is already in use (another server?)\n\
                 help: choose another --port, or --port 0 for a free one"
            ),
            ErrorKind::AddrNotAvailable => format!(
                "cannot listen on {shown}: {host} is not an address of this machine\n\
                 help: use 127.0.0.1 (this machine only), the address of one of its network \
                 interfaces, or 0.0.0.0 (all of them)"
            ),
            ErrorKind::PermissionDenied => format!(
                "cannot listen on {shown}: permission denied (ports below 1024 need privileges)\n\
                 help: choose a --port from 1024 up"
            ),
            _ => format!("cannot listen on {shown}: {e}"),
        };
        CliError::new(why)
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::new(format!("cannot read the port chosen for {host}: {e}")))?
        .port();
    drop(listener);
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_becomes_a_free_port() {
        let port = check(Ipv4Addr::LOCALHOST, 0).unwrap();
        assert_ne!(port, 0);
        // Released again: it can be bound.
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn a_port_in_use_is_named() {
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let msg = check(Ipv4Addr::LOCALHOST, port).unwrap_err().message;
        assert!(
            msg.contains("already in use") && msg.contains(&port.to_string()),
            "{msg}"
        );
    }
}
