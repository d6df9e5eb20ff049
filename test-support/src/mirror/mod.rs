//! A loopback HTTP mirror of GitHub's release downloads and releases API, with fault injection.
//!
//! Tests point `LLAMA_PREBUILT_MIRROR` at [`Mirror::download_base`] and the API base at
//! [`Mirror::api_base`], then assert on what the client did ([`Mirror::hits`]). One thread
//! accepts; each connection gets its own short-lived thread that serves exactly one request and
//! closes (`Connection: close`). Every connection thread ends by itself: reads and writes have
//! timeouts, and stalls end early when the mirror is dropped.
//!
//! URL layout (all on `http://127.0.0.1:PORT`):
//! - `/download/{tag}/{asset}`: the asset; each GET counts a hit and pops one queued [`Fault`];
//! - `/redirected/{tag}/{asset}`: where [`Fault::Redirect`] points; serves the same asset with
//!   no faults, counted by [`Mirror::redirect_hits`], not by [`Mirror::hits`];
//! - `/api/repos/ggml-org/llama.cpp/releases/tags/{tag}`, `.../releases?per_page=N&page=P`
//!   (newest first = most recently added first), `.../releases/latest` (newest non-prerelease).

mod api;
mod http;
mod routes;
mod state;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use state::RequestLog;
use state::{Asset, State, key};

pub(crate) const DOWNLOAD_PATH: &str = "/download";
pub(crate) const REDIRECT_PATH: &str = "/redirected";
pub(crate) const API_PATH: &str = "/api/repos/ggml-org/llama.cpp";
/// Like raw.githubusercontent.com/ggml-org/llama.cpp: `/raw/{tag}/{path within the source}`.
pub(crate) const RAW_PATH: &str = "/raw";

/// A misbehaviour for one GET of one asset (queued with [`Mirror::inject`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 404, as for a missing asset.
    NotFound,
    /// Any status with a short text body, e.g. 500, 503, 429.
    Status(u16),
    /// 200 headers with the full `Content-Length`, then the connection closes with no body.
    Reset,
    /// Full `Content-Length`, but only the first `after` bytes, then close.
    Truncate {
        /// Bytes of the body sent before closing.
        after: u64,
    },
    /// Send `after` bytes, go silent for `duration`, then close (for read-timeout tests).
    Stall {
        /// Bytes of the body sent before going silent.
        after: u64,
        /// How long to stay silent before closing.
        duration: Duration,
    },
    /// Same length, different content (every byte flipped): a checksum mismatch.
    WrongBytes,
    /// 302 to `/redirected/{tag}/{asset}` on this mirror, which serves the asset normally.
    Redirect,
}

/// State shared by the accept thread and the connection threads.
pub(crate) struct Inner {
    state: Mutex<State>,
    port: u16,
    pub(crate) shutdown: AtomicBool,
}

impl Inner {
    /// The state, even if a connection thread panicked while holding it (tests go on).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The running server. Dropping it stops accepting and ends in-flight stalls.
pub struct Mirror {
    inner: Arc<Inner>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Mirror {
    /// Binds `127.0.0.1:0` and starts serving (nothing yet: add assets and releases).
    pub fn start() -> std::io::Result<Mirror> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            port: listener.local_addr()?.port(),
            shutdown: AtomicBool::new(false),
        });
        let accept_inner = inner.clone();
        let accept_thread = std::thread::Builder::new()
            .name("mirror-accept".into())
            .spawn(move || accept_loop(listener, accept_inner))?;
        Ok(Mirror {
            inner,
            accept_thread: Some(accept_thread),
        })
    }

    /// `http://127.0.0.1:PORT/download`; an asset is at `{download_base}/{tag}/{asset}`.
    pub fn download_base(&self) -> String {
        self.inner.url(DOWNLOAD_PATH)
    }

    /// `http://127.0.0.1:PORT/api/repos/ggml-org/llama.cpp`.
    pub fn api_base(&self) -> String {
        self.inner.url(API_PATH)
    }

    /// `http://127.0.0.1:PORT/raw`, standing in for raw.githubusercontent.com/ggml-org/llama.cpp:
    /// source files at `{raw_base}/{tag}/{path}`.
    pub fn raw_base(&self) -> String {
        self.inner.url(RAW_PATH)
    }

    /// Serves one source file (e.g. `include/llama.h`) of `tag` under [`Mirror::raw_base`]. It is
    /// not a release asset: the API does not list it. Hits and faults use the name `raw:{path}`.
    pub fn add_raw_file(&self, tag: &str, path: &str, bytes: Vec<u8>) {
        let k = state::key(tag, &format!("raw:{path}"));
        self.inner
            .state()
            .assets
            .insert(k, std::sync::Arc::new(state::Asset::from_bytes(bytes)));
    }

    /// Serves `bytes` as `{tag}/{name}`, creating the release (as a prerelease) if needed.
    pub fn add_asset_bytes(&self, tag: &str, name: &str, bytes: Vec<u8>) {
        self.inner
            .state()
            .put_asset(tag, name, Asset::from_bytes(bytes));
    }

    /// Serves the file at `path`, streamed from disk on each request (never loaded whole).
    /// Panics if the file cannot be stat'ed: a test set-up error.
    pub fn add_asset_file(&self, tag: &str, name: &str, path: &Path) {
        let asset = Asset::from_file(path.to_owned())
            .unwrap_or_else(|e| panic!("mirror: cannot serve {}: {e}", path.display()));
        self.inner.state().put_asset(tag, name, asset);
    }

    /// Makes `tag` appear in the API (with no assets unless some are added); updates the
    /// prerelease flag of an existing release.
    pub fn add_release(&self, tag: &str, prerelease: bool) {
        self.inner.state().release_mut(tag, prerelease).prerelease = prerelease;
    }

    /// Whether the API's `digest` field is filled (`true`, the default) or `null` for an asset.
    pub fn set_digest_published(&self, tag: &str, name: &str, published: bool) {
        let mut st = self.inner.state();
        if published {
            st.unpublished_digests.remove(&key(tag, name));
        } else {
            st.unpublished_digests.insert(key(tag, name));
        }
    }

    /// Queues faults for `{tag}/{name}`: each GET pops one; an empty queue serves normally.
    /// Works for assets that do not exist too (e.g. a 503 before the 404).
    pub fn inject(&self, tag: &str, name: &str, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .state()
            .faults
            .entry(key(tag, name))
            .or_default()
            .extend(faults);
    }

    /// Per-connection bandwidth cap for every asset body from now on (`None`: unlimited).
    pub fn set_throttle(&self, bytes_per_sec: Option<u64>) {
        self.inner.state().throttle = bytes_per_sec;
    }

    /// GET requests received at `/download/{tag}/{name}` (HEAD and redirect targets excluded).
    pub fn hits(&self, tag: &str, name: &str) -> usize {
        let st = self.inner.state();
        st.hits.get(&key(tag, name)).copied().unwrap_or(0)
    }

    /// GET requests received at the redirect target of `{tag}/{name}`.
    pub fn redirect_hits(&self, tag: &str, name: &str) -> usize {
        let st = self.inner.state();
        st.redirect_hits.get(&key(tag, name)).copied().unwrap_or(0)
    }

    /// Requests of any kind under [`Mirror::api_base`].
    pub fn api_hits(&self) -> usize {
        self.inner.state().api_hits
    }

    /// Every request received so far, in order (method, target, `Authorization`, `User-Agent`).
    pub fn requests(&self) -> Vec<RequestLog> {
        self.inner.state().log.clone()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        // `accept` blocks; one connection to ourselves lets the loop see the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.inner.port));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    for conn in listener.incoming() {
        if inner.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            // e.g. too many open files: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let conn_inner = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("mirror-conn".into())
            .spawn(move || routes::serve_connection(stream, &conn_inner));
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
