//! `ggml-rpc-server` processes from a release tree (the fixture's `lib/`), on loopback ports,
//! for the RPC tests, example runs and benchmark. Killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ggml-rpc-server` bound to 127.0.0.1.
#[derive(Debug)]
pub struct RpcServerProcess {
    child: Child,
    port: u16,
}

impl RpcServerProcess {
    /// Starts `<lib_dir>/ggml-rpc-server -H 127.0.0.1 -p <free port> -t <threads>` with the
    /// release's libraries on the loader path, and waits until it accepts connections.
    ///
    /// The server has no port-0 mode, so the port is one the OS just handed out for a
    /// listener we closed again; a lost race (another process took it) is retried.
    pub fn start(lib_dir: &Path, threads: u32) -> Result<RpcServerProcess, String> {
        let exe = lib_dir.join(format!("ggml-rpc-server{}", std::env::consts::EXE_SUFFIX));
        if !exe.is_file() {
            return Err(format!("{} does not exist", exe.display()));
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-t"])
                .arg(threads.to_string())
                .env("LD_LIBRARY_PATH", lib_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
            match wait_listening(&mut child, port, Duration::from_secs(30)) {
                Ok(()) => return Ok(RpcServerProcess { child, port }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        Err(format!("ggml-rpc-server did not start: {last}"))
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RpcServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port no listener uses right now: one the OS picks for a listener that is closed again.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// Waits until something accepts connections on the port. The check connects and closes at
/// once: the server takes that as a client that hung up and goes back to `accept`.
fn wait_listening(child: &mut Child, port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status} (port {port} taken?)"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("nothing listens on port {port} after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
