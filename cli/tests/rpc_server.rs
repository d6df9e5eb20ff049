//! `llama-prebuilt rpc-server` end to end: the real ggml-rpc-server of the b10199-fixture
//! release (served by the loopback mirror, verified, cached), and synthetic releases whose
//! `ggml-rpc-server` is a shell script, for the failure paths. Linux only (signals, /proc).
#![cfg(target_os = "linux")]

// Shared with the other CLI tests; this file uses part of it.
#[allow(unused_imports)]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use llama_prebuilt_test_support::archives::{RawEntry, linux_tar_gz, tar_gz_raw};
use llama_prebuilt_test_support::fixture::{self, FIXTURE_TAG};
use llama_prebuilt_test_support::rpc_hello::hello;
use serde_json::Value;

/// A mirror serving the real fixture release, its digests trusted.
fn fixture_env() -> Env {
    let f = fixture::fixture().expect("the llama.cpp fixture builds");
    let mut env = Env::new();
    f.serve(&env.mirror);
    for a in &f.archives {
        env.trust(&f.tag, &a.name, &a.sha256, a.size);
    }
    env
}

/// This machine's Linux asset of `tag`.
fn linux_asset(tag: &str) -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "s390x" => "s390x",
        _ => "x64",
    };
    format!("llama-{tag}-bin-ubuntu-{arch}.tar.gz")
}

/// A release tree with dummy libraries and, when given, a `ggml-rpc-server` with these
/// contents and mode.
fn release_with_tool(tag: &str, tool: Option<(&str, u32)>) -> Vec<u8> {
    let top = format!("llama-{tag}");
    let mut entries = vec![RawEntry::Dir {
        path: format!("{top}/"),
    }];
    for lib in [
        "libllama.so",
        "libggml.so",
        "libggml-base.so",
        "libggml-cpu.so",
    ] {
        entries.push(RawEntry::File {
            path: format!("{top}/{lib}"),
            mode: 0o755,
            data: format!("dummy {lib}\n").into_bytes(),
        });
    }
    if let Some((script, mode)) = tool {
        entries.push(RawEntry::File {
            path: format!("{top}/ggml-rpc-server"),
            mode,
            data: script.as_bytes().to_vec(),
        });
    }
    tar_gz_raw(&entries)
}

/// An environment serving `tag` with a scripted `ggml-rpc-server`.
fn scripted_env(tag: &str, script: &str, mode: u32) -> Env {
    let mut env = Env::new();
    env.serve(
        tag,
        &linux_asset(tag),
        release_with_tool(tag, Some((script, mode))),
    );
    env
}

/// A `llama-prebuilt rpc-server` that is running (or failed to start).
struct Cli {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Cli {
    /// `rpc-server --version <fixture> --port 0 --threads 1 <args>`, stdout and stderr piped.
    fn start(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Cli {
        let mut c = env.cmd();
        c.args([
            "rpc-server",
            "--version",
            FIXTURE_TAG,
            "--port",
            "0",
            "--threads",
            "1",
        ])
        .args(args)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("the binary runs");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Cli { child, stdout }
    }

    /// The first line on stdout (the report printed once the server listens); panics with
    /// everything the command printed if it ends first.
    fn first_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        if line.is_empty() {
            let (status, stderr) = self.finish();
            panic!("rpc-server ended before listening ({status}):\n{stderr}");
        }
        line
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the command to end (at most 30 s) and returns its status and stderr.
    fn finish(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("rpc-server did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, stderr)
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
        }
    }
}

/// Waits up to 10 s for `pid` to end.
fn assert_ends(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ended(pid) {
        assert!(
            Instant::now() < deadline,
            "ggml-rpc-server (pid {pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"))
}

// ------------------------------------------------------------ the real server

#[test]
fn json_prints_the_loopback_endpoint_once_listening_and_a_client_gets_hello() {
    let env = fixture_env();
    let mut cli = Cli::start(&env, &["--json"], &[]);
    let j = json_line(&cli.first_line());
    assert_eq!(j["ok"], true);
    assert_eq!(j["host"], "127.0.0.1", "the default host is loopback");
    assert_eq!(j["loopback"], true);
    assert_eq!(j["tag"], FIXTURE_TAG);
    assert_eq!(j["variant"], "cpu");
    let port = j["port"].as_u64().unwrap() as u16;
    assert_ne!(port, 0, "port 0 becomes a real port");
    assert_eq!(j["endpoint"], format!("127.0.0.1:{port}"));
    let binary = Path::new(j["binary"].as_str().unwrap());
    assert!(
        binary.starts_with(env.cache_dir()),
        "run from the cache: {}",
        binary.display()
    );
    assert!(binary.ends_with("ggml-rpc-server"));

    let v = hello(loopback(port), Duration::from_secs(10)).expect("HELLO answered");
    assert_eq!(v.major, 5, "{v:?}");
    // One client at a time, but the next one is served after the first closed.
    let again = hello(loopback(port), Duration::from_secs(10)).expect("second HELLO answered");
    assert_eq!(again, v);

    let server = j["pid"].as_u64().unwrap() as u32;
    cli.signal(libc::SIGTERM);
    let (status, stderr) = cli.finish();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "dies of the signal it forwarded: {status}\n{stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "no warning for loopback:\n{stderr}"
    );
    assert!(
        stderr.contains(": downloading") && stderr.contains("matches checksums file"),
        "not cached yet: fetched and verified first:\n{stderr}"
    );
    assert_ends(server);
}

#[test]
fn a_tampered_server_in_the_cache_is_repaired_before_it_runs() {
    let env = fixture_env();
    let mut cli = Cli::start(&env, &["--json"], &[]);
    let j = json_line(&cli.first_line());
    cli.signal(libc::SIGTERM);
    cli.finish();
    let binary = Path::new(j["binary"].as_str().unwrap());
    std::fs::write(binary, "#!/bin/sh\necho TAMPERED >&2\nexit 7\n").unwrap();

    let mut cli = Cli::start(&env, &["--json"], &[]);
    let j = json_line(&cli.first_line());
    let port = j["port"].as_u64().unwrap() as u16;
    assert_eq!(
        hello(loopback(port), Duration::from_secs(10))
            .unwrap()
            .major,
        5
    );
    cli.signal(libc::SIGTERM);
    let (_, stderr) = cli.finish();
    assert!(
        stderr.contains("repairing the cache entry") && !stderr.contains("TAMPERED"),
        "{stderr}"
    );
}

#[test]
fn text_mode_names_the_endpoint_passes_cache_through_and_sigkill_leaves_no_server() {
    let env = fixture_env();
    let llama_cache = env.dir.path().join("llama-cache");
    let mut cli = Cli::start(
        &env,
        &["--cache"],
        &[("LLAMA_CACHE", llama_cache.to_str().unwrap())],
    );
    let line = cli.first_line();
    let prefix =
        format!("ggml-rpc-server of llama.cpp {FIXTURE_TAG} (cpu) is listening on 127.0.0.1:");
    let port: u16 = line
        .trim_end()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert_eq!(
        cli.first_line(),
        format!("  clients connect with: --rpc 127.0.0.1:{port}\n")
    );
    hello(loopback(port), Duration::from_secs(10)).expect("HELLO answered");
    assert!(
        llama_cache.join("rpc").is_dir(),
        "--cache reached the server: it made $LLAMA_CACHE/rpc/"
    );

    let server = server_pid_on(port);
    cli.signal(libc::SIGKILL);
    let (status, _) = cli.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_ends(server);
    assert!(
        hello(loopback(port), Duration::from_secs(2)).is_err(),
        "nothing serves the port any more"
    );
}

/// The pid of the process listening on 127.0.0.1:`port` (from /proc, as the CLI does).
fn server_pid_on(port: u16) -> u32 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = table
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let p = u16::from_str_radix(f[1].rsplit_once(':')?.1, 16).ok()?;
            (p == port && f[3] == "0A").then(|| f[9].to_string())
        })
        .expect("a listening socket on the port");
    let link = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = proc_dir.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == link) {
                return pid;
            }
        }
    }
    panic!("no process owns {link}");
}

#[test]
fn a_non_loopback_host_warns_that_rpc_has_no_authentication() {
    let env = fixture_env();
    let mut cli = Cli::start(&env, &["--json", "--host", "0.0.0.0", "--quiet"], &[]);
    let j = json_line(&cli.first_line());
    assert_eq!(j["host"], "0.0.0.0");
    assert_eq!(j["loopback"], false);
    let port = j["port"].as_u64().unwrap() as u16;
    hello(loopback(port), Duration::from_secs(10)).expect("reachable on loopback too");
    let server = j["pid"].as_u64().unwrap() as u32;
    cli.signal(libc::SIGINT);
    let (status, stderr) = cli.finish();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{stderr}");
    assert!(
        stderr.contains("warning: ggml-rpc-server will listen on every network interface")
            && stderr.contains("NO authentication and NO encryption"),
        "a loud warning, even with --quiet:\n{stderr}"
    );
    assert_ends(server);
}

#[test]
fn a_server_that_dies_after_listening_is_an_error() {
    let env = fixture_env();
    let mut cli = Cli::start(&env, &["--json"], &[]);
    let j = json_line(&cli.first_line());
    let server = j["pid"].as_u64().unwrap() as i32;
    // SAFETY: kill has no memory-safety preconditions; the pid is the server's.
    assert_eq!(unsafe { libc::kill(server, libc::SIGKILL) }, 0);
    let (status, stderr) = cli.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: ggml-rpc-server stopped (signal: 9 (SIGKILL))"),
        "{stderr}"
    );
    let mut rest = String::new();
    cli.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout holds one JSON document");
}

// ------------------------------------------------------------ failures

#[test]
fn a_release_without_the_tool_is_a_clear_error() {
    let mut env = Env::new();
    env.serve("b20001", &linux_asset("b20001"), linux_tar_gz("b20001"));
    let run = env.run(&["rpc-server", "--version", "b20001"]).failed();
    assert!(
        run.stderr.contains(&format!(
            "error: the llama.cpp b20001 (cpu) release for {} has no ggml-rpc-server (asset {}",
            llama_prebuilt_fetch::Target::host().triple,
            linux_asset("b20001")
        )) && run
            .stderr
            .contains("help: choose a release that ships the RPC server"),
        "{run}"
    );
    let run = env
        .run(&["rpc-server", "--version", "b20001", "--json"])
        .failed();
    let j = run.json();
    assert_eq!(j["ok"], false);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("has no ggml-rpc-server"),
        "{run}"
    );
}

#[test]
fn options_reach_the_server_and_an_early_exit_quotes_its_stderr() {
    let script = "#!/bin/sh\n\
                  echo \"args: $*\" >&2\n\
                  echo \"loader: $LD_LIBRARY_PATH\" >&2\n\
                  echo 'No devices found' >&2\n\
                  exit 3\n";
    let env = scripted_env("b20002", script, 0o755);
    let run = env
        .run(&[
            "rpc-server",
            "--version",
            "b20002",
            "--port",
            "0",
            "-t",
            "3",
            "--device",
            "CPU,Vulkan0",
            "--cache",
        ])
        .failed();
    let args_line = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("args: --host 127.0.0.1 --port "))
        .unwrap_or_else(|| panic!("{run}"));
    assert!(
        args_line.ends_with(" --threads 3 --device CPU,Vulkan0 --cache"),
        "{run}"
    );
    let loader = run
        .stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("loader: "))
        .unwrap_or_else(|| panic!("{run}"));
    let first = loader.split(':').next().unwrap();
    assert!(
        Path::new(first).starts_with(env.cache_dir())
            && Path::new(first).join("libllama.so").is_file(),
        "the library dir comes first on LD_LIBRARY_PATH: {run}"
    );
    assert!(
        run.stderr
            .contains("error: ggml-rpc-server exited before it listened on 127.0.0.1:")
            && run
                .stderr
                .contains("(exit status: 3):\n  ggml-rpc-server said:\n")
            && run.stderr.contains("\n    No devices found"),
        "{run}"
    );
}

#[test]
fn a_tool_that_cannot_be_executed_is_a_clear_error() {
    let env = scripted_env("b20003", "#!/bin/sh\nexit 0\n", 0o644);
    let run = env.run(&["rpc-server", "--version", "b20003"]).failed();
    assert!(
        run.stderr.contains("error: cannot start ")
            && run.stderr.contains("ggml-rpc-server: Permission denied"),
        "{run}"
    );
}

#[test]
fn a_server_that_never_listens_is_stopped_after_the_start_timeout() {
    let script = "#!/bin/sh\necho \"pid $$\" >&2\nexec sleep 60\n";
    let env = scripted_env("b20004", script, 0o755);
    let started = Instant::now();
    let run = env
        .run(&[
            "rpc-server",
            "--version",
            "b20004",
            "--port",
            "0",
            "--start-timeout",
            "1",
        ])
        .failed();
    assert!(started.elapsed() < Duration::from_secs(30), "{run}");
    assert!(
        run.stderr
            .contains("error: ggml-rpc-server did not listen on 127.0.0.1:")
            && run.stderr.contains(" within 1 s, so it was stopped")
            && run
                .stderr
                .contains("help: a slow device may need a longer --start-timeout"),
        "{run}"
    );
    let pid: u32 = run
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid "))
        .unwrap_or_else(|| panic!("{run}"))
        .parse()
        .unwrap();
    assert_ends(pid);
}

#[test]
fn bad_ports_hosts_and_counts_are_clear_errors() {
    let env = Env::new();
    for port in ["70000", "-1", "http"] {
        let run = env.run(&["rpc-server", &format!("--port={port}")]);
        assert_eq!(run.code, Some(2), "{run}");
        assert!(
            run.stderr
                .contains(&format!("invalid value '{port}' for '--port <PORT>'")),
            "{run}"
        );
    }
    for (flag, value, range) in [
        ("--threads <N>", "0", "1..=4096"),
        ("--start-timeout <SECS>", "0", "1..=3600"),
    ] {
        let name = flag.split(' ').next().unwrap();
        let run = env.run(&["rpc-server", name, value]);
        assert_eq!(run.code, Some(2), "{run}");
        assert!(
            run.stderr.contains(&format!(
                "invalid value '{value}' for '{flag}': {value} is not in {range}"
            )),
            "{run}"
        );
    }
    let run = env.run(&["rpc-server", "--host", "localhost"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("invalid value 'localhost' for '--host <ADDR>': invalid IPv4 address syntax"),
        "{run}"
    );

    // Checked before anything is downloaded (the mirror serves nothing here).
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let run = env.run(&["rpc-server", "--port", &port]).failed();
    assert!(
        run.stderr.contains(&format!(
            "error: cannot listen on 127.0.0.1:{port}: port {port} is already in use"
        )) && run
            .stderr
            .contains("help: choose another --port, or --port 0"),
        "{run}"
    );
    let run = env
        .run(&["rpc-server", "--host", "192.0.2.1", "--json"])
        .failed();
    assert!(
        run.json()["error"].as_str().unwrap().contains(
            "cannot listen on 192.0.2.1:50052: 192.0.2.1 is not an address of this machine"
        ),
        "{run}"
    );
}

#[test]
fn the_help_says_rpc_is_unauthenticated_where_the_host_is_chosen() {
    let env = Env::new();
    let run = env.run(&["rpc-server", "--help"]).ok();
    let host_help: String = run
        .stdout
        .split("--host <ADDR>")
        .nth(1)
        .and_then(|s| s.split("-p, --port").next())
        .unwrap_or_else(|| panic!("{run}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        host_help.contains("RPC has NO authentication and NO encryption"),
        "{host_help}"
    );
    assert!(host_help.contains("[default: 127.0.0.1]"), "{host_help}");
}

#[test]
fn a_picked_port_lost_to_another_process_is_picked_again_a_fixed_one_is_not() {
    // What ggml-rpc-server prints and does when its bind fails.
    let script = "#!/bin/sh\n\
                  echo \"$*\" >> \"$ATTEMPTS_FILE\"\n\
                  echo 'Failed to create server socket' >&2\n\
                  exit 0\n";
    let env = scripted_env("b20005", script, 0o755);
    let attempts = env.dir.path().join("attempts");
    let attempts_var = ("ATTEMPTS_FILE", attempts.to_str().unwrap());
    let run = env
        .run_env(
            &["rpc-server", "--version", "b20005", "--port", "0"],
            &[attempts_var],
        )
        .failed();
    let tried = std::fs::read_to_string(&attempts).unwrap();
    assert_eq!(
        tried.lines().count(),
        3,
        "three ports tried:\n{tried}\n{run}"
    );
    assert!(
        run.stderr
            .contains("error: ggml-rpc-server exited before it listened on 127.0.0.1:")
            && run.stderr.contains(
                "(exit status: 0):\n  ggml-rpc-server said:\n    Failed to create server socket"
            ),
        "{run}"
    );

    std::fs::remove_file(&attempts).unwrap();
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    env.run_env(
        &["rpc-server", "--version", "b20005", "--port", &port],
        &[attempts_var],
    )
    .failed();
    let tried = std::fs::read_to_string(&attempts).unwrap();
    assert_eq!(tried.lines().count(), 1, "{tried}");
}
