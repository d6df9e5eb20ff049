//! Progress reporting: the library emits events, the caller decides how to show them (a build
//! script stays silent, the CLI draws bars, tests record them).

use std::sync::Mutex;

use crate::digest::DigestSource;

/// Something that happened while fetching.
// Field names say what they hold (asset = file name, dir = a cache path).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An asset and its digest source were chosen.
    Resolved {
        asset: String,
        url: String,
        digest_source: DigestSource,
    },
    /// A verified cache entry was found.
    CacheHit { asset: String, dir: String },
    /// A cache entry did not match its manifest and is being rebuilt.
    Repairing { asset: String, reason: String },
    /// Another process holds the lock for this asset; waiting for it.
    WaitingForLock { asset: String },
    /// A download began (`total` from `Content-Length` when sent).
    DownloadStarted {
        asset: String,
        url: String,
        total: Option<u64>,
    },
    /// Bytes received so far.
    DownloadProgress {
        asset: String,
        received: u64,
        total: Option<u64>,
    },
    /// A transient failure; the download will be retried.
    Retrying {
        asset: String,
        attempt: u32,
        reason: String,
    },
    /// The archive's digest matched.
    Verified {
        asset: String,
        sha256: String,
        digest_source: DigestSource,
    },
    /// The archive is being unpacked.
    Extracting { asset: String },
    /// The extracted tree was published into the cache.
    Installed { asset: String, dir: String },
    /// Anything else worth telling (cache fallback, ...).
    Notice { message: String },
}

/// Receives events. Must be cheap: `DownloadProgress` arrives many times a second.
pub trait Progress: Send + Sync {
    /// Called for every event.
    fn event(&self, event: &Event);
}

/// Ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// Keeps every event except byte counts (for tests and for the build script's summary).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// The recorded events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Progress for Recorder {
    fn event(&self, event: &Event) {
        if !matches!(event, Event::DownloadProgress { .. }) {
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event.clone());
        }
    }
}

impl<F: Fn(&Event) + Send + Sync> Progress for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}
