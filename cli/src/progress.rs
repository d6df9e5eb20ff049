//! Progress on stderr: indicatif bars when stderr is a terminal, one plain line per step
//! otherwise (CI logs, pipes), nothing with `--quiet`. stdout is never touched, so `--json`
//! output stays parseable.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use llama_prebuilt_fetch::{Event, Progress};

use crate::output::{human_bytes, short_sha};

enum Mode {
    Quiet,
    Plain,
    Bars(MultiProgress),
}

/// Receives the fetch library's events and shows them.
pub struct Reporter {
    mode: Mode,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Quarter of the download last reported per asset (plain mode).
    quarters: Mutex<HashMap<String, u64>>,
    /// Assets extracted into the cache by this process.
    installed: Mutex<HashSet<String>>,
}

impl Reporter {
    /// Bars if stderr is a terminal, plain lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> Reporter {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Mode::Plain
        };
        Reporter {
            mode,
            bars: Mutex::default(),
            quarters: Mutex::default(),
            installed: Mutex::default(),
        }
    }

    /// Whether `asset` was extracted into the cache by this process (as opposed to found there).
    pub fn installed(&self, asset: &str) -> bool {
        lock(&self.installed).contains(asset)
    }

    /// Removes any bar still drawn (a failed download) before the report is printed.
    pub fn finish(&self) {
        for (_, bar) in lock(&self.bars).drain() {
            bar.finish_and_clear();
        }
        if let Mode::Bars(multi) = &self.mode {
            let _ = multi.clear();
        }
    }

    /// A line on stderr that does not tear the bars.
    pub fn say(&self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
            Mode::Bars(multi) => {
                let _ = multi.println(text);
            }
        }
    }

    fn started(&self, asset: &str, url: &str, total: Option<u64>) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                lock(&self.quarters).insert(asset.to_string(), 0);
                let size = total
                    .map(|t| format!(" ({})", human_bytes(t)))
                    .unwrap_or_default();
                self.say(&format!("{asset}: downloading {url}{size}"));
            }
            Mode::Bars(multi) => {
                let style = match total {
                    Some(_) => {
                        style("{prefix} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                    }
                    None => style("{prefix} {spinner} {bytes} {bytes_per_sec}"),
                };
                let mut bars = lock(&self.bars);
                match bars.get(asset) {
                    // A retry: start the same bar over.
                    Some(bar) => {
                        bar.reset();
                        bar.set_style(style);
                        match total {
                            Some(t) => bar.set_length(t),
                            None => bar.unset_length(),
                        }
                    }
                    None => {
                        // Styled before it is added, so it never draws with the default style.
                        let bar = match total {
                            Some(t) => ProgressBar::new(t),
                            None => ProgressBar::no_length(),
                        }
                        .with_style(style)
                        .with_prefix(asset.to_string());
                        let bar = multi.add(bar);
                        bar.tick();
                        bars.insert(asset.to_string(), bar);
                    }
                }
            }
        }
    }

    fn received(&self, asset: &str, received: u64, total: Option<u64>) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                // A line at each quarter keeps CI logs alive without flooding them.
                let Some(total) = total.filter(|t| *t > 0) else {
                    return;
                };
                let quarter = (received * 4 / total).min(4);
                let mut quarters = lock(&self.quarters);
                let last = quarters.entry(asset.to_string()).or_insert(0);
                if quarter > *last && quarter < 4 {
                    *last = quarter;
                    drop(quarters);
                    self.say(&format!(
                        "{asset}: {}% ({} of {})",
                        quarter * 25,
                        human_bytes(received),
                        human_bytes(total)
                    ));
                }
            }
            Mode::Bars(_) => {
                if let Some(bar) = lock(&self.bars).get(asset) {
                    bar.set_position(received);
                }
            }
        }
    }

    fn done_downloading(&self, asset: &str) {
        if let Some(bar) = lock(&self.bars).remove(asset) {
            bar.finish_and_clear();
            if let Mode::Bars(multi) = &self.mode {
                multi.remove(&bar);
            }
        }
    }
}

impl Progress for Reporter {
    fn event(&self, event: &Event) {
        match event {
            Event::DownloadStarted { asset, url, total } => self.started(asset, url, *total),
            Event::DownloadProgress {
                asset,
                received,
                total,
            } => self.received(asset, *received, *total),
            Event::Retrying {
                asset,
                attempt,
                reason,
            } => {
                self.say(&format!(
                    "{asset}: attempt {attempt} failed ({reason}); retrying"
                ));
            }
            Event::CacheHit { asset, dir } => {
                self.say(&format!("{asset}: verified cache entry {dir}"))
            }
            Event::Repairing { asset, reason } => {
                self.say(&format!("{asset}: repairing the cache entry: {reason}"))
            }
            Event::WaitingForLock { asset } => {
                self.say(&format!(
                    "{asset}: waiting for another process that is fetching it"
                ));
            }
            Event::Verified {
                asset,
                sha256,
                digest_source,
            } => {
                self.done_downloading(asset);
                self.say(&format!(
                    "{asset}: sha256 {} matches {digest_source}",
                    short_sha(sha256)
                ));
            }
            Event::Extracting { asset } => {
                if matches!(self.mode, Mode::Plain) {
                    self.say(&format!("{asset}: extracting"));
                }
            }
            Event::Installed { asset, dir } => {
                lock(&self.installed).insert(asset.clone());
                if matches!(self.mode, Mode::Plain) {
                    self.say(&format!("{asset}: installed in {dir}"));
                }
            }
            Event::Notice { message } => self.say(&format!("note: {message}")),
            // `Resolved` is shown as the download starts; new events are ignored until
            // this tool learns to show them.
            _ => {}
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates above are valid")
        .progress_chars("=> ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
