//! Zip archives, read with the `zip` crate's [`ZipArchive`] one entry at a time.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use ::zip::ZipArchive;
use ::zip::result::ZipError;

use super::ExtractError;
use super::entry_path::{MAX_NAME_BYTES, parse_entry_name};
use super::source::{Source, read_failure};
use super::tree::Tree;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFIFO: u32 = 0o010_000;
const S_IFSOCK: u32 = 0o140_000;

pub(super) fn extract_zip(archive_path: &Path, tree: &mut Tree<'_>) -> Result<(), ExtractError> {
    let file = File::open(archive_path).map_err(|source| ExtractError::Io {
        path: archive_path.to_path_buf(),
        source,
    })?;
    let mut zip = ZipArchive::new(BufReader::new(Source(file)))
        .map_err(|e| zip_failure(archive_path, e, "reading the zip central directory", None))?;
    // The central directory lists every entry that will be read: refuse early.
    if zip.len() as u64 > tree.limits().max_entries {
        return Err(ExtractError::TooManyEntries {
            limit: tree.limits().max_entries,
        });
    }
    for index in 0..zip.len() {
        let name: String = match zip.name_for_index(index) {
            Some(Ok(name)) => name.into_owned(),
            Some(Err(e)) => {
                return Err(zip_failure(
                    archive_path,
                    e,
                    &format!("reading the name of zip entry #{index}"),
                    None,
                ));
            }
            None => {
                return Err(ExtractError::Corrupt {
                    detail: format!("zip entry #{index} is missing"),
                });
            }
        };
        let context = format!("reading zip entry `{name}`");
        let mut entry = zip
            .by_index(index)
            .map_err(|e| zip_failure(archive_path, e, &context, Some(&name)))?;
        tree.count_entry()?;
        let path =
            parse_entry_name(name.as_bytes()).map_err(|reason| ExtractError::UnsafePath {
                entry: name.clone(),
                reason,
            })?;
        let mode = entry.unix_mode();
        let file_type = mode.map_or(0, |m| m & S_IFMT);
        let named_as_dir = name.ends_with('/') || name.ends_with('\\');
        let on_read_error = |e| read_failure(archive_path, e, &context);
        match file_type {
            S_IFLNK => {
                let mut raw = Vec::new();
                (&mut entry)
                    .take(MAX_NAME_BYTES as u64 + 1)
                    .read_to_end(&mut raw)
                    .map_err(on_read_error)?;
                if raw.len() > MAX_NAME_BYTES {
                    return Err(unsafe_path(
                        &name,
                        "its symlink target is longer than 4096 bytes",
                    ));
                }
                let target = String::from_utf8(raw)
                    .map_err(|_| unsafe_path(&name, "its symlink target is not valid UTF-8"))?;
                let path =
                    path.ok_or_else(|| unsafe_path(&name, "it names the extraction root"))?;
                tree.add_symlink(path, &name, target)?;
            }
            S_IFDIR => {
                if let Some(path) = path {
                    tree.add_dir(path, &name)?;
                }
            }
            0 | S_IFREG if named_as_dir => {
                if let Some(path) = path {
                    tree.add_dir(path, &name)?;
                }
            }
            0 | S_IFREG => {
                let path =
                    path.ok_or_else(|| unsafe_path(&name, "it names the extraction root"))?;
                let executable = mode.is_some_and(|m| m & 0o111 != 0);
                tree.add_file(path, &name, executable, &mut entry, &on_read_error)?;
            }
            other => {
                let kind = match other {
                    S_IFCHR => "character device".to_owned(),
                    S_IFBLK => "block device".to_owned(),
                    S_IFIFO => "FIFO".to_owned(),
                    S_IFSOCK => "socket".to_owned(),
                    t => format!("zip entry of unix file type {t:#o}"),
                };
                return Err(ExtractError::UnsupportedEntry { entry: name, kind });
            }
        }
    }
    Ok(())
}

fn unsafe_path(name: &str, reason: &'static str) -> ExtractError {
    ExtractError::UnsafePath {
        entry: name.to_owned(),
        reason,
    }
}

fn zip_failure(archive: &Path, err: ZipError, context: &str, entry: Option<&str>) -> ExtractError {
    match (err, entry) {
        (ZipError::Io(e), _) => read_failure(archive, e, context),
        (ZipError::CompressionMethodNotSupported(method), Some(entry)) => {
            ExtractError::UnsupportedEntry {
                entry: entry.to_owned(),
                kind: format!(
                    "file compressed with zip method {method} (only deflate and stored are supported)"
                ),
            }
        }
        (ZipError::UnsupportedArchive(what), Some(entry)) => ExtractError::UnsupportedEntry {
            entry: entry.to_owned(),
            kind: format!("zip entry this reader cannot extract ({what})"),
        },
        (e, _) => ExtractError::Corrupt {
            detail: format!("{context}: {e}"),
        },
    }
}
