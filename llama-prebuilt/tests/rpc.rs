//! ggml RPC end to end: two `ggml-rpc-server` processes of the fixture release (built from
//! b10199's source with the release flags) on loopback ports; a model split across the local
//! CPU and both servers must generate exactly the greedy tokens of a local-only run, on the
//! tiny random model and on SmolLM2-135M. Then the failure paths: bad endpoint strings, nothing
//! listening, something that is not an RPC server, a busy server, a server killed before load,
//! and (in a child process) a server killed mid-generation, which aborts the process as the
//! README documents.

// The servers are the fixture's Linux executables.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use llama_prebuilt::{
    Backend, ContextParams, Error, GenerateOptions, Model, ModelParams, RpcServer, Sampler,
    SplitMode, Token,
};
use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
use llama_prebuilt_test_support::rpc_servers::{RpcServerProcess, free_port};
use llama_prebuilt_test_support::{fixture, models};

const THREADS: u32 = 2;

/// The release tree holding `ggml-rpc-server` (the fixture's extracted `lib/`).
fn release_dir() -> PathBuf {
    fixture::fixture()
        .unwrap_or_else(|e| panic!("fixture: {e}"))
        .lib_dir
        .clone()
}

/// Starting a process while another test thread is inside a model load that connects to a
/// server would hand the child a copy of that connection before the crate marks it
/// close-on-exec (see the crate's `rpc::cloexec`); the copy would then hold the server's one
/// client slot forever. So processes start under the write lock and loads hold the read lock.
static SPAWN: RwLock<()> = RwLock::new(());

fn start_server() -> RpcServerProcess {
    let _spawning = SPAWN.write().unwrap_or_else(|p| p.into_inner());
    RpcServerProcess::start(&release_dir(), THREADS).unwrap_or_else(|e| panic!("{e}"))
}

fn load(path: impl AsRef<Path>, params: &ModelParams) -> llama_prebuilt::Result<Model> {
    let _loading = SPAWN.read().unwrap_or_else(|p| p.into_inner());
    Model::load(path, params)
}

/// `Backend::add_rpc_server` under the read lock: llama.cpp connects during the call.
fn add(endpoint: &str) -> llama_prebuilt::Result<RpcServer> {
    let _connecting = SPAWN.read().unwrap_or_else(|p| p.into_inner());
    Backend::init()?.add_rpc_server(endpoint)
}

fn spawn_locked(cmd: &mut Command) -> std::process::Child {
    let _spawning = SPAWN.write().unwrap_or_else(|p| p.into_inner());
    cmd.spawn().unwrap()
}

/// The tiny model with 4 layers, so that CPU + 2 servers each get some.
fn four_layer_model() -> PathBuf {
    let spec = TinyModelSpec {
        n_layer: 4,
        ..TinyModelSpec::tiny()
    };
    gguf::cached_model(&spec).expect("write the 4-layer tiny model")
}

/// Log lines of llama.cpp, to see where the layers went.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.args().to_string());
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn capture_log() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

fn logged_both(a: &str, b: &str) -> bool {
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains(a) && l.contains(b))
}

/// Greedy tokens for `prompt` (the C reference's context shape).
fn greedy(model: &Model, prompt: &str, n_predict: usize) -> Vec<Token> {
    common::greedy_like_reference(model, prompt, n_predict, THREADS).0
}

fn local_only() -> ModelParams {
    ModelParams::default().devices(&[])
}

/// CPU + both servers: the last `offloaded` layers split evenly between the two servers.
fn split_params(a: &RpcServer, b: &RpcServer, offloaded: u32) -> ModelParams {
    ModelParams::default()
        .devices(a.devices.iter().chain(&b.devices))
        .split_mode(SplitMode::Layer)
        .tensor_split(&[1.0, 1.0])
        .n_gpu_layers(offloaded)
}

fn assert_identical_across_local_and_two_servers(path: &Path, offloaded: u32, prompts: &[&str]) {
    capture_log();
    let backend = Backend::init().unwrap();
    let (server_a, server_b) = (start_server(), start_server());
    let a = add(&server_a.endpoint()).unwrap();
    let b = add(&server_b.endpoint()).unwrap();
    assert_eq!(a.devices.len(), 1, "{a:?}");
    assert!(
        a.devices[0].is_rpc() && a.devices[0].memory_total > 0,
        "{a:?}"
    );
    assert_eq!(a.devices[0].description, server_a.endpoint());
    let listed = backend.devices();
    assert!(listed.contains(&a.devices[0]) && listed.contains(&b.devices[0]));

    let local = load(path, &local_only()).unwrap();
    let split = load(path, &split_params(&a, &b, offloaded)).unwrap();
    for endpoint in [&a.endpoint, &b.endpoint] {
        assert!(
            logged_both(&format!("[{endpoint}]"), "model buffer size"),
            "no model buffer on {endpoint}: the layers did not go to the server; log: {:#?}",
            CAPTURE.0.lock().unwrap_or_else(|p| p.into_inner())
        );
    }
    let mut total = 0;
    for prompt in prompts {
        let expected = greedy(&local, prompt, 24);
        let got = greedy(&split, prompt, 24);
        assert_eq!(got, expected, "prompt {prompt:?}");
        total += got.len();
    }
    eprintln!(
        "rpc: {total} greedy tokens identical, local vs CPU + {} + {} ({} layers offloaded)",
        a.endpoint, b.endpoint, offloaded
    );
}

#[test]
fn tiny_model_split_across_cpu_and_two_servers_gives_identical_greedy_tokens() {
    assert_identical_across_local_and_two_servers(
        &four_layer_model(),
        2,
        &["Hello, world", "The quick brown fox", "x"],
    );
}

#[test]
fn smollm2_split_across_cpu_and_two_servers_gives_identical_greedy_tokens() {
    let path = models::smollm2().unwrap_or_else(|e| panic!("SmolLM2: {e}"));
    // 30 layers: 10 on the CPU, 10 on each server.
    assert_identical_across_local_and_two_servers(
        &path,
        20,
        &["The three primary colors are", "def fibonacci(n):"],
    );
}

#[test]
fn a_second_model_on_a_server_in_use_loads_and_generates_the_same() {
    Backend::init().unwrap();
    let server = start_server();
    let rpc = add(&server.endpoint()).unwrap();
    let params = ModelParams::default()
        .devices(&rpc.devices)
        .n_gpu_layers(2)
        .rpc_timeout(Duration::from_secs(2));
    let first = load(four_layer_model(), &params).unwrap();
    // The first model's buffers hold the server's only client slot; the second load shares
    // llama.cpp's connection (a handshake of ours would wait for the slot and time out).
    let second = load(four_layer_model(), &params).unwrap();
    assert_eq!(greedy(&first, "abc", 8), greedy(&second, "abc", 8));
    drop((first, second));
    // Both dropped: the next load checks the server again, and it answers.
    load(four_layer_model(), &params).unwrap();
}

#[test]
fn bad_endpoint_strings_are_rejected_with_the_reason() {
    Backend::init().unwrap();
    for (endpoint, reason) in [
        ("localhost", "expected host:port"),
        (":50052", "the host is empty"),
        ("[::1]:50052", "IPv6 literals are not supported"),
        ("::1:50052", "the host is empty"),
        ("127.0.0.1:", "the port must be a number in 1..=65535"),
        ("127.0.0.1:65536", "the port must be a number in 1..=65535"),
        ("127.0.0.1:+80", "the port must be a number in 1..=65535"),
        ("127.0.0.1:80x", "the port must be a number in 1..=65535"),
        ("127.0.0.1:0", "port 0"),
        ("bad host:50052", "whitespace"),
    ] {
        let err = add(endpoint).unwrap_err();
        assert!(
            matches!(err, Error::RpcEndpoint { .. }),
            "{endpoint}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(reason) && message.contains(&format!("{endpoint:?}")),
            "{endpoint}: {message}"
        );
    }
}

#[test]
fn an_endpoint_where_nothing_listens_is_unreachable_naming_it() {
    let backend = Backend::init().unwrap();
    let endpoint = format!("127.0.0.1:{}", free_port().unwrap());
    let err = add(&endpoint).unwrap_err();
    assert!(matches!(err, Error::RpcUnreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&endpoint) && message.contains("cannot connect"),
        "{message}"
    );
    assert!(
        backend
            .rpc_servers()
            .iter()
            .all(|s| s.endpoint.to_string() != endpoint)
    );
}

#[test]
fn an_unresolvable_host_is_unreachable_naming_it() {
    let backend = Backend::init().unwrap();
    let err = backend
        .add_rpc_server("no-such-host.invalid:50052")
        .unwrap_err();
    assert!(matches!(err, Error::RpcUnreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("cannot resolve no-such-host.invalid"),
        "{err}"
    );
}

/// A listener that answers every connection with `reply` and closes it.
fn fake_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
        }
    });
    endpoint
}

#[test]
fn something_that_is_not_an_rpc_server_is_a_protocol_error() {
    Backend::init().unwrap();
    let http = fake_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let err = add(&http).unwrap_err();
    assert!(matches!(err, Error::RpcProtocol { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&http) && err.to_string().contains("HELLO response has"),
        "{err}"
    );

    let closes = fake_server(b"");
    let err = add(&closes).unwrap_err();
    assert!(matches!(err, Error::RpcProtocol { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("closed without a complete HELLO answer"),
        "{err}"
    );

    // A well-formed answer from a server of another major protocol version.
    let mut future = vec![28, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0];
    future.extend_from_slice(&[0; 24]);
    let future: &'static [u8] = Box::leak(future.into_boxed_slice());
    let err = add(&fake_server(future)).unwrap_err();
    assert!(matches!(err, Error::RpcProtocol { .. }), "{err:?}");
    assert!(err.to_string().contains("RPC protocol 9.0.0"), "{err}");
}

#[test]
fn a_server_busy_with_another_client_times_out_with_an_explanation() {
    let backend = Backend::init().unwrap();
    let server = start_server();
    // Another client holds the server's one slot.
    let mut other = TcpStream::connect(server.endpoint()).unwrap();
    let mut hello = vec![14u8, 24, 0, 0, 0, 0, 0, 0, 0];
    hello.extend_from_slice(&[0; 24]);
    other.write_all(&hello).unwrap();
    let mut answer = [0u8; 36];
    other.read_exact(&mut answer).unwrap();
    assert_eq!(answer[8], 5, "the fixture's server speaks protocol 5");

    let err = backend
        .add_rpc_server_with_timeout(&server.endpoint(), Duration::from_millis(500))
        .unwrap_err();
    assert!(matches!(err, Error::RpcUnreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("one client at a time"), "{err}");
    drop(other);
}

#[test]
fn a_server_killed_before_load_is_an_error_naming_it_not_an_abort() {
    Backend::init().unwrap();
    let mut server = start_server();
    let endpoint = server.endpoint();
    let rpc = add(&endpoint).unwrap();
    server.kill();
    let err = load(
        four_layer_model(),
        &ModelParams::default().devices(&rpc.devices).n_gpu_layers(2),
    )
    .unwrap_err();
    assert!(matches!(err, Error::RpcUnreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[test]
fn placement_parameters_are_validated() {
    let backend = Backend::init().unwrap();
    let cpu: Vec<_> = backend
        .devices()
        .into_iter()
        .filter(|d| !d.is_rpc())
        .collect();
    let err = load(four_layer_model(), &ModelParams::default().devices(&cpu)).unwrap_err();
    assert!(
        err.to_string().contains("list only GPU and RPC devices"),
        "{err}"
    );

    let err = load(
        four_layer_model(),
        &ModelParams::default().tensor_split(&[1.0; 17]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("at most 16"), "{err}");
    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        let err = load(
            four_layer_model(),
            &ModelParams::default().devices(&[]).tensor_split(&[bad]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a finite proportion"), "{err}");
    }
}

#[test]
fn split_mode_none_needs_main_gpu_in_range_and_row_is_an_error_on_rpc() {
    capture_log();
    Backend::init().unwrap();
    let server = start_server();
    let rpc = add(&server.endpoint()).unwrap();
    let err = load(
        four_layer_model(),
        &ModelParams::default()
            .devices(&rpc.devices)
            .split_mode(SplitMode::None)
            .main_gpu(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("main_gpu"), "{err}");
    let model = load(
        four_layer_model(),
        &ModelParams::default()
            .devices(&rpc.devices)
            .split_mode(SplitMode::None)
            .main_gpu(0)
            .n_gpu_layers(2),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; log: {:#?}",
            CAPTURE.0.lock().unwrap_or_else(|p| p.into_inner())
        )
    });
    assert_eq!(greedy(&model, "abc", 4).len(), 4);
    drop(model);
    let err = load(
        four_layer_model(),
        &ModelParams::default()
            .devices(&rpc.devices)
            .split_mode(SplitMode::Row)
            .n_gpu_layers(2),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ModelLoad { .. }), "{err:?}");
    // llama.cpp logs the reason before its generic "failed to load model".
    assert!(
        logged_both("does not support split buffers", &rpc.devices[0].name),
        "{err}"
    );
}

/// The child half of the next test: loads the model onto the server named by the environment,
/// says so on stdout, and generates until the parent kills the server.
#[test]
fn child_generating_on_a_server() {
    let Ok(endpoint) = std::env::var("LLAMA_PREBUILT_TEST_RPC_CHILD") else {
        return; // only meaningful when started by the parent test
    };
    Backend::init().unwrap();
    let rpc = add(&endpoint).unwrap();
    let model = load(
        four_layer_model(),
        &ModelParams::default().devices(&rpc.devices).n_gpu_layers(4),
    )
    .unwrap();
    let tokens = model.tokenize("abc", true).unwrap();
    let mut announced = false;
    // A few seconds of work at most; the parent kills the server long before.
    for _ in 0..200 {
        let mut ctx = model
            .new_context(&ContextParams::default().n_ctx(256).n_threads(1))
            .unwrap();
        let mut sampler = Sampler::chain().greedy();
        let generator = ctx.generate(
            &tokens,
            &mut sampler,
            GenerateOptions::default().max_tokens(200),
        );
        for piece in generator {
            piece.unwrap();
            if !announced {
                println!("GENERATING");
                std::io::stdout().flush().unwrap();
                announced = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    println!("FINISHED");
}

/// What llama.cpp does when a server dies while a model uses it: its RPC client has no error
/// path there (`RPC_STATUS_ASSERT` → `GGML_ABORT`), so the process aborts. We document it
/// rather than pretend otherwise; this test keeps the documentation true.
#[test]
fn a_server_killed_mid_generation_aborts_the_client_process() {
    use std::os::unix::process::ExitStatusExt;

    let mut server = start_server();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "child_generating_on_a_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LLAMA_PREBUILT_TEST_RPC_CHILD", server.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_locked(&mut child);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut generating = false;
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.contains("GENERATING") {
            generating = true;
            break;
        }
        line.clear();
    }
    assert!(generating, "the child never started generating");
    server.kill();
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let status = child.wait().unwrap();
    assert!(!rest.contains("FINISHED"), "the child finished: {rest}");
    assert_eq!(
        status.signal(),
        Some(libc_sigabrt()),
        "expected SIGABRT, got {status:?}; stderr: {stderr}"
    );
    assert!(
        stderr.contains("Remote RPC server crashed or returned malformed response"),
        "{stderr}"
    );
}

fn libc_sigabrt() -> i32 {
    6 // SIGABRT on Linux
}

/// The `rpc` example (built next to the test binaries by `cargo test`) through two servers.
#[test]
fn the_rpc_example_streams_text_through_two_servers() {
    let (server_a, server_b) = (start_server(), start_server());
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let mut cmd = Command::new(examples.join("rpc"));
    cmd.args(["--rpc", &server_a.endpoint(), "--rpc", &server_b.endpoint()])
        .args(["--model", four_layer_model().to_str().unwrap()])
        .args(["--prompt", "Hello", "--max-tokens", "8", "--split", "1,1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = spawn_locked(&mut cmd).wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("Hello"), "{stdout}");
    for server in [&server_a, &server_b] {
        assert!(
            stderr.contains(&format!("on {}", server.endpoint())),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("[8 tokens") && stderr.contains("over 2 server(s)"),
        "{stderr}"
    );

    // Without an endpoint it says how to start one.
    let out = Command::new(examples.join("rpc")).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("llama-prebuilt rpc-server"),
        "{out:?}"
    );
}

/// The close-on-exec marking: a child process started while a model holds its connection to a
/// server must not keep that connection (and so the server's one client slot) after the model
/// is dropped.
#[test]
fn a_child_started_while_a_model_is_loaded_does_not_keep_the_server_busy() {
    Backend::init().unwrap();
    let server = start_server();
    let rpc = add(&server.endpoint()).unwrap();
    let model = load(
        four_layer_model(),
        &ModelParams::default().devices(&rpc.devices).n_gpu_layers(2),
    )
    .unwrap();
    let mut sleeper = spawn_locked(Command::new("sleep").arg("30"));
    drop(model);
    // The server takes a new client within a moment: a HELLO of ours gets its answer.
    let mut stream = TcpStream::connect(server.endpoint()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut hello = vec![14u8, 24, 0, 0, 0, 0, 0, 0, 0];
    hello.extend_from_slice(&[0; 24]);
    stream.write_all(&hello).unwrap();
    let mut answer = [0u8; 36];
    let answered = stream.read_exact(&mut answer);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    answered.expect("the server is still busy with a connection the child inherited");
    assert_eq!(answer[8], 5);
}
