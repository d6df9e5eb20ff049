//! Has the server started listening? ggml-rpc-server prints nothing once it listens (and its
//! stdout is block-buffered on a pipe), and it serves a single client at a time, so a probe
//! connection would briefly take the only client slot.
//!
//! On Linux the kernel's socket table answers without connecting: a TCP socket in `LISTEN`
//! state on the port whose inode is one of the child's file descriptors. Elsewhere (or when
//! `/proc` cannot be read) one connection is made and closed at once; the server sees a client
//! that sends nothing, prints `Accepted client connection` / `Client connection closed`, and
//! waits for the next one.

use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

/// Whether process `pid` listens on `host:port`.
pub fn is_listening(pid: u32, host: Ipv4Addr, port: u16) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(answer) = proc_net::listens(pid, port) {
        return answer;
    }
    let _ = pid;
    probe(host, port)
}

/// Connects and closes immediately.
fn probe(host: Ipv4Addr, port: u16) -> bool {
    let host = if host.is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        host
    };
    TcpStream::connect_timeout(
        &SocketAddrV4::new(host, port).into(),
        Duration::from_millis(250),
    )
    .is_ok()
}

#[cfg(target_os = "linux")]
mod proc_net {
    use std::collections::HashSet;

    /// `tcp_states.h`: `TCP_LISTEN`.
    const LISTEN: &str = "0A";

    /// `Some(true)` when a socket of `pid` is in `LISTEN` state on `port`; `None` when the
    /// tables cannot be read.
    pub fn listens(pid: u32, port: u16) -> Option<bool> {
        let inodes = socket_inodes(pid)?;
        // The child's own network namespace (the same as ours unless something moved it).
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
        Some(listening_inodes(&table, port).any(|i| inodes.contains(&i)))
    }

    /// Inodes of the sockets among `pid`'s file descriptors (`socket:[12345]` links).
    fn socket_inodes(pid: u32) -> Option<HashSet<u64>> {
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let inodes = dir
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|target| {
                let t = target.to_str()?;
                t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect();
        Some(inodes)
    }

    /// Inodes of the `LISTEN` sockets on `port` in a `/proc/net/tcp` table:
    /// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`.
    pub(super) fn listening_inodes(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
        table.lines().skip(1).filter_map(move |line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let local_port = u16::from_str_radix(local_port, 16).ok()?;
            (local_port == port && *f.get(3)? == LISTEN)
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_socket_table_is_parsed() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:C364 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:C364 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        let got: Vec<u64> = proc_net::listening_inodes(table, 50020).collect();
        assert_eq!(got, [4242]);
        let got: Vec<u64> = proc_net::listening_inodes(table, 8080).collect();
        assert_eq!(got, [4444]);
    }

    #[test]
    fn a_listener_of_this_process_is_seen() {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(is_listening(std::process::id(), Ipv4Addr::LOCALHOST, port));
        drop(l);
        assert!(!is_listening(std::process::id(), Ipv4Addr::LOCALHOST, port));
    }
}
