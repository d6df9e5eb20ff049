//! `rpc-server`: runs llama.cpp's own RPC server (`ggml-rpc-server`, from the same release
//! archive as the libraries) so that a client on another machine can use this machine's
//! devices through ggml's RPC backend.
//!
//! The binary is executed only from a verified cache entry: the release is resolved and
//! obtained through the fetch library exactly like `download` does (trust chain, cache,
//! re-hash of the entry against its manifest on every use), then the tool next to the
//! libraries is started with the library dir on its loader path.
//!
//! ggml's RPC protocol has no authentication and no encryption. The server therefore binds
//! 127.0.0.1 unless told otherwise, and a non-loopback address gets a loud warning.
//!
//! What ggml-rpc-server (b10199, `tools/rpc/rpc-server.cpp` and `ggml-rpc.cpp`) does, and what
//! that means here:
//! - its options are `-H host` (an IPv4 literal: it uses `inet_addr`), `-p port` (1..=65535:
//!   it refuses 0, so it has no ephemeral port; [`address::check`] picks one), `-t threads`,
//!   `-d dev1,dev2` and `-c` (tensor cache in `$LLAMA_CACHE/rpc/`, else the user cache dir's
//!   `llama.cpp/rpc/`);
//! - it prints `Starting RPC server v5.0.0`, the endpoint, devices and `  transport      : TCP`
//!   with `printf` *before* it binds, and nothing once it listens; on a pipe that output is
//!   block-buffered and only appears at its first `fflush` (after a client connects). So its
//!   stdout cannot tell when it listens: [`listening`] watches the socket table instead
//!   (Linux), or makes one connection and closes it at once (elsewhere);
//! - when it cannot bind it prints `Failed to create server socket` on stderr and exits with 0;
//! - it serves one client at a time (listen backlog 1), forever.

mod address;
mod child;
mod listening;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llama_prebuilt_fetch::{Fetcher, Request};
use serde::Serialize;

use crate::args::RpcServerArgs;
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use crate::output;
use crate::progress::Reporter;
use crate::settings;

/// The tool's file name in the release archives (at these tags; older ones called it
/// `rpc-server`).
pub const TOOL: &str = "ggml-rpc-server";

/// The tool's file name on this platform (`ggml-rpc-server.exe` on Windows).
fn tool_file_name() -> String {
    format!("{TOOL}{}", std::env::consts::EXE_SUFFIX)
}

/// What `--json` prints (one line) once the server listens.
#[derive(Serialize)]
struct Listening<'a> {
    ok: bool,
    /// `host:port`, what a client passes to `--rpc`.
    endpoint: String,
    host: String,
    port: u16,
    /// Whether only this machine can connect.
    loopback: bool,
    /// The server's process id.
    pid: u32,
    tag: &'a str,
    variant: &'a str,
    asset: &'a str,
    sha256: &'a str,
    digest_source: String,
    binary: &'a Path,
    lib_dir: &'a Path,
}

pub fn run(ctx: Ctx, args: &RpcServerArgs) -> CmdResult {
    // The address first: a port in use or a foreign address fails before any download.
    let port = address::check(args.host, args.port)?;

    let mut config = settings::config();
    config.http.retries = args.retries;
    let variant = settings::variant(args.variant.as_deref()).value;
    let spec = settings::version(args.version.as_deref()).value;
    let reporter = Arc::new(Reporter::new(ctx.quiet));
    let fetcher = Fetcher::new(config)?.with_progress(reporter.clone());
    let (target, _) = settings::target(None);
    let tag = fetcher.resolve_tag(&spec, &target, &variant)?;
    let req = Request {
        tag: tag.clone(),
        target,
        variant: variant.clone(),
    };
    let installed = fetcher.ensure(&req)?;
    reporter.finish();
    let lib_dir = output::tidy_path(&installed.lib_dir);
    let binary = find_tool(&lib_dir).ok_or_else(|| {
        CliError::new(format!(
            "the llama.cpp {tag} ({variant}) release for {} has no {} (asset {}, looked in {})\n\
             help: choose a release that ships the RPC server with --version or --variant",
            req.target.triple,
            tool_file_name(),
            installed.asset,
            lib_dir.display()
        ))
    })?;

    if !args.host.is_loopback() {
        warn_exposed(args.host, port);
    }

    let mut port = port;
    let mut attempts = 0;
    let mut server = loop {
        attempts += 1;
        match start_listening(&binary, &lib_dir, args, port, ctx)? {
            Started::Listening(server) => break server,
            // A port picked for `--port 0` was taken by another process before the server
            // bound it: pick another.
            Started::LostPort(_) if args.port == 0 && attempts < 3 => {
                port = address::check(args.host, 0)?;
            }
            Started::LostPort(e) | Started::Failed(e) => return Err(e),
        }
    };
    let endpoint = format!("{}:{port}", args.host);

    let connect = if args.host.is_unspecified() {
        format!("<an address of this machine>:{port} (127.0.0.1:{port} from here)")
    } else {
        endpoint.clone()
    };
    if ctx.json {
        let doc = Listening {
            ok: true,
            endpoint: endpoint.clone(),
            host: args.host.to_string(),
            port,
            loopback: args.host.is_loopback(),
            pid: server.pid(),
            tag: &tag,
            variant: &variant,
            asset: &installed.asset,
            sha256: &installed.sha256,
            digest_source: installed.digest_source.to_string(),
            binary: &binary,
            lib_dir: &lib_dir,
        };
        let line = serde_json::to_string(&doc)
            .map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))?;
        output::line(&line)?;
    } else {
        output::write(&format!(
            "{TOOL} of llama.cpp {tag} ({variant}) is listening on {endpoint}\n  \
             clients connect with: --rpc {connect}\n  \
             binary: {}\n\
             It serves one client at a time; Ctrl-C stops it.\n",
            binary.display()
        ))?;
    }

    let status = server.wait()?;
    Err(CliError::after_report(format!(
        "{TOOL} stopped ({status}){}",
        indented(&server.stderr_tail())
    )))
}

/// How one attempt to start the server ended.
enum Started {
    Listening(child::Server),
    /// It could not bind the port (ggml-rpc-server's `Failed to create server socket`).
    LostPort(CliError),
    Failed(CliError),
}

/// Starts the server on `port` and waits until it listens, exits, or the start timeout passes.
fn start_listening(
    binary: &Path,
    lib_dir: &Path,
    args: &RpcServerArgs,
    port: u16,
    ctx: Ctx,
) -> Result<Started, CliError> {
    let mut tool_args: Vec<String> = vec![
        "--host".into(),
        args.host.to_string(),
        "--port".into(),
        port.to_string(),
    ];
    if let Some(n) = args.threads {
        tool_args.extend(["--threads".into(), n.to_string()]);
    }
    if let Some(d) = &args.device {
        tool_args.extend(["--device".into(), d.clone()]);
    }
    if args.cache {
        tool_args.push("--cache".into());
    }

    let mut server = child::Server::start(binary, lib_dir, &tool_args, ctx)?;
    let endpoint = format!("{}:{port}", args.host);
    let deadline = Instant::now() + Duration::from_secs(args.start_timeout);
    loop {
        if let Some(status) = server.try_wait()? {
            let tail = server.stderr_tail();
            let e = CliError::new(format!(
                "{TOOL} exited before it listened on {endpoint} ({status}){}",
                indented(&tail)
            ));
            return Ok(
                if tail
                    .iter()
                    .any(|l| l.contains("Failed to create server socket"))
                {
                    Started::LostPort(e)
                } else {
                    Started::Failed(e)
                },
            );
        }
        if listening::is_listening(server.pid(), args.host, port) {
            return Ok(Started::Listening(server));
        }
        if Instant::now() >= deadline {
            server.stop();
            return Ok(Started::Failed(CliError::new(format!(
                "{TOOL} did not listen on {endpoint} within {} s, so it was stopped{}\n\
                 help: a slow device may need a longer --start-timeout",
                args.start_timeout,
                indented(&server.stderr_tail())
            ))));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tool next to the libraries (every release layout puts tools and libraries in one
/// directory).
fn find_tool(lib_dir: &Path) -> Option<PathBuf> {
    let path = lib_dir.join(tool_file_name());
    path.is_file().then_some(path)
}

/// The warning for an address other machines may reach. Printed even with `--quiet`.
fn warn_exposed(host: Ipv4Addr, port: u16) {
    let what = if host.is_unspecified() {
        format!("every network interface of this machine (port {port})")
    } else {
        format!("{host}:{port}, which is not a loopback address")
    };
    eprintln!(
        "warning: !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         warning: {TOOL} will listen on {what}.\n\
         warning: RPC has NO authentication and NO encryption: anyone who can reach this\n\
         warning: port can use this machine's devices, read and write its tensors, and see\n\
         warning: all the traffic. Only do this on a network you trust, or reach the server\n\
         warning: through an SSH tunnel or VPN and keep --host 127.0.0.1.\n\
         warning: !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    );
}

/// `lines` as continuation lines of an error message (nothing when empty).
fn indented(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!(":\n  {TOOL} said:");
    for l in lines {
        out.push_str("\n    ");
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_name_follows_the_platform() {
        let name = tool_file_name();
        if cfg!(windows) {
            assert_eq!(name, "ggml-rpc-server.exe");
        } else {
            assert_eq!(name, "ggml-rpc-server");
        }
    }

    #[test]
    fn stderr_lines_are_indented_under_a_heading() {
        assert_eq!(indented(&[]), "");
        assert_eq!(
            indented(&["a".into(), "b".into()]),
            ":\n  ggml-rpc-server said:\n    a\n    b"
        );
    }
}
