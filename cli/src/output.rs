//! Everything that reaches stdout: plain text, aligned tables and JSON documents. A closed
//! stdout (`llama-prebuilt cache list | head -1`) is not an error: output stops quietly and the
//! command still finishes with its own exit code.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::CliError;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout as is.
pub fn write(text: &str) -> Result<(), CliError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(CliError::new(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes `text` and a newline.
pub fn line(text: &str) -> Result<(), CliError> {
    write(&format!("{text}\n"))
}

/// Writes `value` as one pretty-printed JSON document.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))?;
    write(&format!("{text}\n"))
}

/// `error: <message>` on stderr (continuation lines are printed as they are).
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// A table with a header row; columns are padded to their widest cell, the last one is not.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[i] - width(cell) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `a/b/` -> `a/b`: a library dir at the root of an archive is `files/` joined with an empty
/// relative path, whose trailing separator is noise in a report.
pub fn tidy_path(p: &std::path::Path) -> std::path::PathBuf {
    p.components().collect()
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The first 12 hex digits, enough to tell digests apart in a table.
pub fn short_sha(sha: &str) -> String {
    sha.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["A", "LONG HEADER", "LAST"]);
        t.row(vec!["xxxx".into(), "y".into(), "z z".into()]);
        t.row(vec!["".into(), "".into(), "".into()]);
        assert_eq!(
            t.render(),
            "A     LONG HEADER  LAST\nxxxx  y            z z\n\n"
        );
    }

    #[test]
    fn tidy_paths_lose_the_trailing_separator() {
        let p = std::path::Path::new("/c/e").join("files").join("");
        assert_eq!(tidy_path(&p), std::path::Path::new("/c/e/files"));
        assert!(!tidy_path(&p).to_string_lossy().ends_with('/'));
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(16_434_223), "15.7 MiB");
    }
}
