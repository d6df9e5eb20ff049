//! Safe extraction of a downloaded release archive (zip or tar.gz).
//!
//! [`extract`] streams every entry of the archive into an empty directory with a fixed
//! buffer, hashing each file as it is written, and refuses anything that could reach
//! outside that directory or exhaust the disk:
//!
//! - entry names that are absolute (`/x`, `\\server\x`, `C:\x`), contain a `..`
//!   component, a NUL byte or a `:`, or are not UTF-8;
//! - symlinks whose target is absolute, or whose resolution from the link's own
//!   directory, following the archive's other symlinks component by component, leaves
//!   the extraction root (checked when the link is met and again once the whole
//!   archive is known, so the order of the entries does not matter);
//! - entries that would be written *through* a symlink, and names given twice
//!   (compared ignoring ASCII case, so a case-insensitive file system sees no clash);
//! - tar hard links, unless their target is a regular file extracted earlier (the
//!   link then becomes a copy); device, FIFO and sparse entries;
//! - more than [`Limits::max_entries`] entries, more than [`Limits::max_entry_bytes`]
//!   in one file or [`Limits::max_total_bytes`] in all: bytes are counted as they are
//!   decompressed, never taken from headers, so a decompression bomb stops at the cap.
//!
//! Relative symlink chains (`libllama.so -> libllama.so.0 -> libllama.so.0.0.10200`) are
//! kept as real symlinks on unix hosts. Elsewhere each link becomes a copy of what it
//! finally resolves to, made after all files are written.
//!
//! Files get mode `0o755` when the archive marks them executable and `0o644`
//! otherwise, directories `0o755`; ownership and modification times are not kept.
//!
//! # Failure and clean-up
//!
//! The destination must be an empty or missing directory. On error, [`extract`] stops
//! at once and returns the error: whatever it had written so far stays in `dest` (links
//! it created are removed). The intended caller extracts into a temporary directory
//! and deletes it on error, and renames it into the cache only on success, so nothing
//! from a rejected archive is ever kept.

use std::error::Error as StdError;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

mod entry_path;
mod source;
mod targz;
mod tree;
mod zip;

use tree::{LinkMode, Tree};

/// The container format of a release asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// A zip archive (`.zip`): Windows assets, and Linux/macOS up to about b7955.
    Zip,
    /// A gzip-compressed tar archive (`.tar.gz`, `.tgz`): Linux/macOS from b7956.
    TarGz,
}

impl ArchiveKind {
    /// The kind of an archive, from its file name's extension (ignoring ASCII case).
    ///
    /// ```
    /// use llama_prebuilt_fetch::extract::ArchiveKind;
    /// assert_eq!(ArchiveKind::from_name("llama-b10199-bin-ubuntu-x64.tar.gz"), Some(ArchiveKind::TarGz));
    /// assert_eq!(ArchiveKind::from_name("llama-b10199-bin-win-cpu-x64.zip"), Some(ArchiveKind::Zip));
    /// assert_eq!(ArchiveKind::from_name("checksums.txt"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ArchiveKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".zip") {
            Some(ArchiveKind::Zip)
        } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Some(ArchiveKind::TarGz)
        } else {
            None
        }
    }
}

impl fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArchiveKind::Zip => "zip",
            ArchiveKind::TarGz => "tar.gz",
        })
    }
}

/// Caps that bound what one archive may put on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes all files together may expand to (default 4 GiB).
    pub max_total_bytes: u64,
    /// Most entries (files, directories, links) the archive may hold (default 10 000).
    pub max_entries: u64,
    /// Most bytes a single file may expand to (default 2 GiB).
    pub max_entry_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 4 << 30,
            max_entries: 10_000,
            max_entry_bytes: 2 << 30,
        }
    }
}

/// One entry written by [`extract`], in archive order.
///
/// Directories that the archive only implies (a file `a/b` without an entry `a/`) are
/// created but not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedEntry {
    /// Path relative to `dest`, built from the entry's `/`-separated components
    /// (`.` and empty components dropped).
    pub path: PathBuf,
    /// What the entry is.
    pub kind: EntryKind,
    /// Bytes written, for files; 0 for directories and symlinks.
    pub size: u64,
    /// Lower-case hex sha256 of the file's contents, computed while it was written;
    /// empty for directories and symlinks.
    pub sha256: String,
}

/// The kind of an [`ExtractedEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (a tar hard link is extracted as a copy and listed as a file).
    File {
        /// Whether the archive marked it executable (written with mode `0o755`).
        executable: bool,
    },
    /// A directory.
    Dir,
    /// A relative symlink that stays inside the extraction root. On unix it is a real
    /// symlink; on other hosts it is a copy of the file or directory it resolves to
    /// (nothing is written for a link whose target does not exist).
    Symlink {
        /// The link target exactly as stored in the archive.
        target: PathBuf,
    },
}

/// Why an archive was rejected.
#[derive(Debug)]
pub enum ExtractError {
    /// Reading the archive or writing the extracted tree failed.
    Io {
        /// The file or directory that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry's name could reach outside the destination, or clash with another entry.
    UnsafePath {
        /// The entry's name as stored in the archive.
        entry: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// A symlink is absolute or resolves to a place outside the destination.
    EscapingSymlink {
        /// The link's name as stored in the archive.
        entry: String,
        /// Its target as stored in the archive.
        target: String,
    },
    /// The archive holds more entries than [`Limits::max_entries`].
    TooManyEntries {
        /// The cap that was exceeded.
        limit: u64,
    },
    /// All files together expand to more than [`Limits::max_total_bytes`].
    TooLarge {
        /// The cap that was exceeded.
        limit: u64,
    },
    /// One file expands to more than [`Limits::max_entry_bytes`].
    EntryTooLarge {
        /// The entry's name as stored in the archive.
        entry: String,
        /// The cap that was exceeded.
        limit: u64,
    },
    /// The archive is not a valid zip / tar.gz, or is truncated, or fails a checksum.
    Corrupt {
        /// What was found wrong.
        detail: String,
    },
    /// An entry of a kind that is never extracted (device, FIFO, sparse file, a hard
    /// link to something not extracted before it, an encrypted zip entry, ...).
    UnsupportedEntry {
        /// The entry's name as stored in the archive.
        entry: String,
        /// What kind of entry it is.
        kind: String,
    },
}

const REJECTED: &str = "the archive was rejected and nothing from it was kept";

/// Shows a name from an archive with control characters escaped, so that a hostile
/// name cannot garble a terminal.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractError::Io { path, source } => write!(
                f,
                "I/O error on `{}` while extracting: {source}; the extraction was abandoned \
                 and nothing from the archive was kept",
                path.display()
            ),
            ExtractError::UnsafePath { entry, reason } => {
                write!(
                    f,
                    "archive entry `{}` is unsafe: {reason}; {REJECTED}",
                    Shown(entry)
                )
            }
            ExtractError::EscapingSymlink { entry, target } => write!(
                f,
                "archive entry `{}` is a symlink to `{}`, which points outside the extraction \
                 directory; {REJECTED}",
                Shown(entry),
                Shown(target)
            ),
            ExtractError::TooManyEntries { limit } => write!(
                f,
                "the archive has more than {limit} entries (the limit); {REJECTED}"
            ),
            ExtractError::TooLarge { limit } => write!(
                f,
                "the archive expands to more than {limit} bytes (the limit for all files \
                 together); {REJECTED}"
            ),
            ExtractError::EntryTooLarge { entry, limit } => write!(
                f,
                "archive entry `{}` expands to more than {limit} bytes (the limit for one \
                 file); {REJECTED}",
                Shown(entry)
            ),
            ExtractError::Corrupt { detail } => {
                write!(
                    f,
                    "the archive is corrupt or truncated: {}; {REJECTED}",
                    Shown(detail)
                )
            }
            ExtractError::UnsupportedEntry { entry, kind } => write!(
                f,
                "archive entry `{}` is a {}, which is not supported; {REJECTED}",
                Shown(entry),
                Shown(kind)
            ),
        }
    }
}

impl StdError for ExtractError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ExtractError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Extracts `archive` (of the given `kind`) into `dest` and lists what was written.
///
/// `dest` must be an empty directory or not exist yet (it is then created, with its
/// parents). See the [module documentation](self) for what is rejected and how links
/// are handled.
///
/// # Errors
///
/// Any [`ExtractError`]; extraction stops at the first problem. **The caller deletes
/// `dest` on error** (it is meant to be a temporary directory that is renamed into
/// the cache only on success); this function does not remove the files it wrote.
///
/// # Example
///
/// ```no_run
/// use llama_prebuilt_fetch::extract::{extract, ArchiveKind, Limits};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let archive = std::path::Path::new("llama-b10199-bin-ubuntu-x64.tar.gz");
/// let tmp = std::path::Path::new("cache/.tmp-extract");
/// let kind = ArchiveKind::from_name("llama-b10199-bin-ubuntu-x64.tar.gz").unwrap();
/// match extract(archive, kind, tmp, &Limits::default()) {
///     Ok(entries) => println!("{} entries", entries.len()),
///     Err(e) => {
///         let _ = std::fs::remove_dir_all(tmp);
///         return Err(e.into());
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub fn extract(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
    limits: &Limits,
) -> Result<Vec<ExtractedEntry>, ExtractError> {
    let mode = if cfg!(unix) {
        LinkMode::Native
    } else {
        LinkMode::Copy
    };
    extract_with_mode(archive, kind, dest, limits, mode)
}

pub(crate) fn extract_with_mode(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
    limits: &Limits,
    mode: LinkMode,
) -> Result<Vec<ExtractedEntry>, ExtractError> {
    prepare_dest(dest)?;
    let mut tree = Tree::new(dest, limits, mode);
    let result = match kind {
        ArchiveKind::Zip => zip::extract_zip(archive, &mut tree),
        ArchiveKind::TarGz => targz::extract_targz(archive, &mut tree),
    };
    match result.and_then(|()| tree.finish()) {
        Ok(()) => Ok(tree.into_entries()),
        Err(e) => {
            tree.remove_links();
            Err(e)
        }
    }
}

fn prepare_dest(dest: &Path) -> Result<(), ExtractError> {
    let io_err = |source| ExtractError::Io {
        path: dest.to_path_buf(),
        source,
    };
    match fs::read_dir(dest) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the destination directory is not empty",
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dest).map_err(io_err),
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    //! The copy mode used for symlinks on non-unix hosts, exercised on any host.

    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    enum Item<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Link(&'a str, &'a str),
    }

    fn targz(items: &[Item<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for item in items {
            let mut h = tar::Header::new_gnu();
            let (path, data): (&str, &[u8]) = match *item {
                Item::File(path, data, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(mode);
                    (path, data)
                }
                Item::Dir(path) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (path, b"")
                }
                Item::Link(path, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_link_name(target).unwrap();
                    (path, b"")
                }
            };
            h.set_path(path).unwrap();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn copy_mode(
        items: &[Item<'_>],
        limits: &Limits,
    ) -> (tempfile::TempDir, Result<Vec<ExtractedEntry>, ExtractError>) {
        let dir = tempfile::TempDir::new().unwrap();
        let archive = dir.path().join("a.tar.gz");
        fs::write(&archive, targz(items)).unwrap();
        let dest = dir.path().join("dest");
        let result = extract_with_mode(&archive, ArchiveKind::TarGz, &dest, limits, LinkMode::Copy);
        (dir, result)
    }

    fn no_symlinks(dir: &Path) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            assert!(!ft.is_symlink(), "{}", e.path().display());
            if ft.is_dir() {
                no_symlinks(&e.path());
            }
        }
    }

    #[test]
    fn copy_mode_resolves_chains_and_directory_links() {
        let items = [
            Item::File("llama-b1/libllama.so.0.0.1", b"LIB", 0o755),
            Item::Link("llama-b1/libllama.so", "libllama.so.0"),
            Item::Link("llama-b1/libllama.so.0", "libllama.so.0.0.1"),
            Item::Dir("llama-b1/sub"),
            Item::File("llama-b1/sub/x", b"X", 0o644),
            Item::Link("llama-b1/sub/inner", "../libllama.so"),
            Item::Link("llama-b1/alias", "sub"),
            Item::Link("llama-b1/dangling", "missing.so"),
        ];
        let (dir, result) = copy_mode(&items, &Limits::default());
        let entries = result.expect("extracts");
        let top = dir.path().join("dest").join("llama-b1");
        no_symlinks(&top);
        assert_eq!(fs::read(top.join("libllama.so")).unwrap(), b"LIB");
        assert_eq!(fs::read(top.join("libllama.so.0")).unwrap(), b"LIB");
        assert_eq!(fs::read(top.join("sub/inner")).unwrap(), b"LIB");
        assert_eq!(fs::read(top.join("alias/x")).unwrap(), b"X");
        assert_eq!(fs::read(top.join("alias/inner")).unwrap(), b"LIB");
        assert!(!top.join("dangling").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(top.join("libllama.so"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        // The listing still describes the archive.
        let link = entries
            .iter()
            .find(|e| e.path == Path::new("llama-b1").join("libllama.so"))
            .unwrap();
        assert_eq!(
            link.kind,
            EntryKind::Symlink {
                target: "libllama.so.0".into()
            }
        );
    }

    #[test]
    fn copy_mode_refuses_a_directory_link_into_itself() {
        let items = [
            Item::Dir("llama-b1/sub"),
            Item::Link("llama-b1/sub/again", "."),
        ];
        let (_dir, result) = copy_mode(&items, &Limits::default());
        let err = result.unwrap_err();
        assert!(
            err.to_string()
                .contains("leads into a directory that contains itself"),
            "{err}"
        );
        let items = [Item::Link("top", ".")];
        let (_dir, result) = copy_mode(&items, &Limits::default());
        assert!(matches!(result, Err(ExtractError::UnsafePath { .. })));
    }

    #[test]
    fn copies_count_against_the_total_cap() {
        let mut items = vec![Item::File("lib.so", &[1; 1000], 0o644)];
        let names: Vec<String> = (0..10).map(|i| format!("link{i}")).collect();
        items.extend(names.iter().map(|n| Item::Link(n, "lib.so")));
        let limits = Limits {
            max_total_bytes: 5000,
            ..Limits::default()
        };
        let (_dir, result) = copy_mode(&items, &limits);
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { limit: 5000 }));
        assert!(err.to_string().contains("more than 5000 bytes"), "{err}");
    }
}
