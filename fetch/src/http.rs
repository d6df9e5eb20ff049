//! HTTP(S) with ureq 3: streaming downloads hashed on the fly, bounded retries with backoff for
//! transient failures (5xx, 429, resets, stalls, truncation) and none for final answers (404,
//! 403) — a checksum mismatch is judged by the caller and never retried either.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::config::HttpSettings;
use crate::error::{Error, Result};
pub use crate::hashing::Downloaded;
use crate::hashing::HashingWriter;
use crate::progress::{Event, Progress};

/// The User-Agent every request carries.
pub const USER_AGENT: &str = concat!("llama-prebuilt-fetch/", env!("CARGO_PKG_VERSION"));

/// A client; cheap to share between threads.
pub struct Http {
    https: ureq::Agent,
    plain: ureq::Agent,
    settings: HttpSettings,
    token: Option<String>,
}

/// Why one attempt failed, and whether another may succeed.
enum Attempt {
    Transient(String),
    Final(Box<Error>),
}

impl Http {
    /// A client with these timeouts; `token` is sent to API requests only.
    pub fn new(settings: &HttpSettings, token: Option<String>) -> Http {
        let agent = |https_only: bool| {
            ureq::Agent::config_builder()
                .https_only(https_only)
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .timeout_connect(Some(settings.connect_timeout))
                .timeout_per_read(Some(settings.read_timeout))
                .timeout_recv_response(Some(settings.read_timeout))
                // Release assets are already compressed; never ask for content-encoding.
                .accept_encoding("identity")
                .build()
                .new_agent()
        };
        // An https:// URL must stay https through redirects; plain http is only ever used for a
        // mirror the user named (e.g. one on loopback).
        Http {
            https: agent(true),
            plain: agent(false),
            settings: settings.clone(),
            token,
        }
    }

    fn agent(&self, url: &str) -> &ureq::Agent {
        if url.starts_with("https://") {
            &self.https
        } else {
            &self.plain
        }
    }

    /// Streams `url` into `dest` (truncated at each attempt), hashing as it goes.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        asset: &str,
        progress: &dyn Progress,
    ) -> Result<Downloaded> {
        self.with_retries(url, asset, progress, |http| {
            http.download_once(url, dest, asset, progress)
        })
    }

    /// GETs a JSON document from the release API (with `GITHUB_TOKEN` when set).
    pub fn get_json(&self, url: &str) -> Result<serde_json::Value> {
        let attempt = |http: &Http| -> std::result::Result<serde_json::Value, Attempt> {
            let mut req = http
                .agent(url)
                .get(url)
                .header("Accept", "application/vnd.github+json");
            if let Some(token) = &http.token {
                req = req.header("Authorization", &format!("Bearer {token}"));
            }
            let resp = req.call().map_err(classify_ureq)?;
            check_status(url, resp.status().as_u16(), resp.headers())?;
            let text = resp
                .into_body()
                .with_config()
                .limit(32 * 1024 * 1024)
                .read_to_string()
                .map_err(classify_ureq)?;
            serde_json::from_str(&text).map_err(|e| {
                Attempt::Final(Box::new(Error::Api {
                    url: url.to_string(),
                    detail: format!("invalid JSON: {e}"),
                }))
            })
        };
        self.with_retries(url, "release metadata", &crate::progress::Silent, attempt)
            .map_err(|e| match e {
                Error::HttpStatus { url, status, hint } => Error::Api {
                    url,
                    detail: match hint {
                        Some(hint) => format!("HTTP {status}. {hint}"),
                        None => format!("HTTP {status}"),
                    },
                },
                Error::Network {
                    url,
                    detail,
                    attempts,
                } => Error::Api {
                    url,
                    detail: format!("{detail} (after {attempts} attempts)"),
                },
                other => other,
            })
    }

    fn with_retries<T>(
        &self,
        url: &str,
        what: &str,
        progress: &dyn Progress,
        mut once: impl FnMut(&Http) -> std::result::Result<T, Attempt>,
    ) -> Result<T> {
        let attempts = self.settings.retries + 1;
        let mut delay = self.settings.backoff;
        for attempt in 1..=attempts {
            match once(self) {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => {
                    return Err(match *e {
                        Error::Network {
                            url: u,
                            attempts,
                            detail,
                        } if u.is_empty() => Error::Network {
                            url: url.to_string(),
                            attempts,
                            detail,
                        },
                        other => other,
                    });
                }
                Err(Attempt::Transient(reason)) if attempt < attempts => {
                    progress.event(&Event::Retrying {
                        asset: what.to_string(),
                        attempt,
                        reason,
                    });
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(Attempt::Transient(detail)) => {
                    return Err(Error::Network {
                        url: url.to_string(),
                        attempts,
                        detail,
                    });
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn download_once(
        &self,
        url: &str,
        dest: &Path,
        asset: &str,
        progress: &dyn Progress,
    ) -> std::result::Result<Downloaded, Attempt> {
        let resp = self.agent(url).get(url).call().map_err(classify_ureq)?;
        check_status(url, resp.status().as_u16(), resp.headers())?;
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        progress.event(&Event::DownloadStarted {
            asset: asset.to_string(),
            url: url.to_string(),
            total,
        });
        let file = File::create(dest)
            .map_err(|e| Attempt::Final(Box::new(Error::io("create", dest, e))))?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(256 * 1024, file));
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 128 * 1024];
        let mut last_report = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Attempt::Transient(format!(
                        "{e} after {} bytes",
                        out.written()
                    )));
                }
            };
            out.write_all(&buf[..n])
                .map_err(|e| Attempt::Final(Box::new(Error::io("write", dest, e))))?;
            if out.written() - last_report >= 1 << 20 {
                last_report = out.written();
                progress.event(&Event::DownloadProgress {
                    asset: asset.to_string(),
                    received: last_report,
                    total,
                });
            }
        }
        if let Some(total) = total
            && out.written() != total
        {
            return Err(Attempt::Transient(format!(
                "connection closed after {} of {total} bytes",
                out.written()
            )));
        }
        let (writer, sha256, size) = out.finish();
        let file = writer
            .into_inner()
            .map_err(|e| Attempt::Final(Box::new(Error::io("write", dest, e.into_error()))))?;
        file.sync_all()
            .map_err(|e| Attempt::Final(Box::new(Error::io("sync", dest, e))))?;
        progress.event(&Event::DownloadProgress {
            asset: asset.to_string(),
            received: size,
            total,
        });
        Ok(Downloaded { sha256, size })
    }
}

fn check_status(
    url: &str,
    status: u16,
    headers: &ureq::http::HeaderMap,
) -> std::result::Result<(), Attempt> {
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(Attempt::Transient(format!("HTTP {status}"))),
        _ => {
            let hint = match status {
                404 | 410 => "the release or asset does not exist at that address; check the tag \
                              (`llama-prebuilt list --version <tag>`), the variant, or the mirror's layout \
                              (<mirror>/<tag>/<asset>)"
                    .to_string()
                    .into(),
                401 | 403 => {
                    let limited = headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()) == Some("0");
                    if limited {
                        Some("GitHub API rate limit reached; set GITHUB_TOKEN or pin a tag listed in checksums.toml".into())
                    } else {
                        Some("access denied; check GITHUB_TOKEN or the mirror's permissions".into())
                    }
                }
                _ => None,
            };
            Err(Attempt::Final(Box::new(Error::HttpStatus {
                url: url.to_string(),
                status,
                hint,
            })))
        }
    }
}

fn classify_ureq(e: ureq::Error) -> Attempt {
    match e {
        // Mistakes in the URL or configuration, and refusals to downgrade from HTTPS, will not
        // change on a retry.
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::TooManyRedirects
        | ureq::Error::TlsRequired => Attempt::Final(Box::new(Error::Network {
            url: String::new(),
            attempts: 1,
            detail: e.to_string(),
        })),
        // Resets, timeouts, stalls, DNS hiccups, TLS handshakes cut short: worth another try.
        other => Attempt::Transient(other.to_string()),
    }
}
