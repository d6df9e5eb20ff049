//! Gzip-compressed tar archives.
//!
//! The tar crate is used in raw mode: GNU long-name (`L`, `K`) and PAX (`x`, `g`)
//! extension headers are read here, each bounded to [`MAX_META`] bytes, instead of
//! letting the crate read them into memory whatever their declared size.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

use super::ExtractError;
use super::entry_path::parse_entry_name;
use super::source::{Source, read_failure};
use super::tree::Tree;

/// Most bytes of one extension header, or of data carried by a non-file entry.
const MAX_META: u64 = 1 << 20;

/// Extension headers seen since the last real entry, applying to the next one.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    pax_seen: bool,
    any: bool,
}

pub(super) fn extract_targz(archive_path: &Path, tree: &mut Tree<'_>) -> Result<(), ExtractError> {
    let file = File::open(archive_path).map_err(|source| ExtractError::Io {
        path: archive_path.to_path_buf(),
        source,
    })?;
    let mut archive = Archive::new(GzDecoder::new(Source(file)));
    let header_context = "reading a tar header";
    let entries = archive
        .entries()
        .map_err(|e| read_failure(archive_path, e, header_context))?
        .raw(true);
    let mut pending = Pending::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| read_failure(archive_path, e, header_context))?;
        let entry_type = entry.header().entry_type();
        let size = entry.size();
        match entry_type {
            EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
                let what = match entry_type {
                    EntryType::GNULongName => "GNU long-name",
                    EntryType::GNULongLink => "GNU long-link",
                    _ => "PAX",
                };
                let data = read_meta(archive_path, &mut entry, size, what)?;
                let duplicate = match entry_type {
                    EntryType::GNULongName => pending.long_name.replace(trim_nuls(data)).is_some(),
                    EntryType::GNULongLink => pending.long_link.replace(trim_nuls(data)).is_some(),
                    _ => {
                        parse_pax(&data, &mut pending)?;
                        std::mem::replace(&mut pending.pax_seen, true)
                    }
                };
                if duplicate {
                    return Err(ExtractError::Corrupt {
                        detail: format!("two {what} headers describe the same tar entry"),
                    });
                }
                pending.any = true;
                continue;
            }
            EntryType::XGlobalHeader => {
                // Global PAX records (comments, `git archive` ids) set nothing we use.
                tree.count_entry()?;
                read_meta(archive_path, &mut entry, size, "PAX global")?;
                continue;
            }
            _ => {}
        }

        tree.count_entry()?;
        let ext = std::mem::take(&mut pending);
        let name_bytes = ext
            .pax_path
            .or(ext.long_name)
            .unwrap_or_else(|| entry.header().path_bytes().into_owned());
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        let path = parse_entry_name(&name_bytes).map_err(|reason| ExtractError::UnsafePath {
            entry: name.clone(),
            reason,
        })?;
        if let Some(pax_size) = ext.pax_size
            && pax_size != size
        {
            return Err(ExtractError::Corrupt {
                detail: format!(
                    "tar entry `{name}`: its PAX size ({pax_size}) differs from its header \
                         size ({size})"
                ),
            });
        }
        let is_file = matches!(entry_type, EntryType::Regular | EntryType::Continuous);
        if !is_file && size > MAX_META {
            return Err(ExtractError::Corrupt {
                detail: format!(
                    "tar entry `{name}` is not a file but carries {size} bytes of data"
                ),
            });
        }
        let link_bytes = ext
            .pax_link
            .or(ext.long_link)
            .or_else(|| entry.header().link_name_bytes().map(|l| l.into_owned()));
        let root_error = || ExtractError::UnsafePath {
            entry: name.clone(),
            reason: "it names the extraction root",
        };
        match entry_type {
            EntryType::Regular | EntryType::Continuous => {
                let path = path.ok_or_else(root_error)?;
                let mode = entry.header().mode().map_err(|e| ExtractError::Corrupt {
                    detail: format!("tar entry `{name}` has an invalid mode: {e}"),
                })?;
                let context = format!("reading tar entry `{name}`");
                let on_read_error = |e| read_failure(archive_path, e, &context);
                tree.add_file(path, &name, mode & 0o111 != 0, &mut entry, &on_read_error)?;
            }
            EntryType::Directory => {
                if let Some(path) = path {
                    tree.add_dir(path, &name)?;
                }
            }
            EntryType::Symlink => {
                let path = path.ok_or_else(root_error)?;
                let target = link_target(&name, link_bytes)?;
                let target = String::from_utf8(target).map_err(|_| ExtractError::UnsafePath {
                    entry: name.clone(),
                    reason: "its symlink target is not valid UTF-8",
                })?;
                tree.add_symlink(path, &name, target)?;
            }
            EntryType::Link => {
                let path = path.ok_or_else(root_error)?;
                let target = link_target(&name, link_bytes)?;
                let target = match parse_entry_name(&target) {
                    Ok(Some(target)) => target,
                    _ => {
                        return Err(ExtractError::UnsafePath {
                            entry: name,
                            reason: "its hard-link target is not a safe path inside the archive",
                        });
                    }
                };
                tree.add_hard_link(path, &name, &target)?;
            }
            other => {
                let kind = match other {
                    EntryType::Char => "character device".to_owned(),
                    EntryType::Block => "block device".to_owned(),
                    EntryType::Fifo => "FIFO".to_owned(),
                    EntryType::GNUSparse => "GNU sparse file".to_owned(),
                    t => format!("tar entry of type `{}`", t.as_byte().escape_ascii()),
                };
                return Err(ExtractError::UnsupportedEntry { entry: name, kind });
            }
        }
    }
    if pending.any {
        return Err(ExtractError::Corrupt {
            detail: "the tar archive ends with an extension header that describes no entry"
                .to_owned(),
        });
    }
    // Read the rest of the gzip stream (end-of-archive blocks, padding) so that its
    // CRC and length trailer is checked; it counts against the total cap.
    let mut decoder = archive.into_inner();
    tree.drain(&mut decoder, &|e| {
        read_failure(archive_path, e, "reading the end of the gzip stream")
    })?;
    if decoder.header().is_none() {
        return Err(ExtractError::Corrupt {
            detail: "the file is not a gzip stream".to_owned(),
        });
    }
    Ok(())
}

fn read_meta(
    archive_path: &Path,
    entry: &mut impl Read,
    size: u64,
    what: &str,
) -> Result<Vec<u8>, ExtractError> {
    if size > MAX_META {
        return Err(ExtractError::Corrupt {
            detail: format!("a {what} header of {size} bytes exceeds the {MAX_META}-byte limit"),
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .take(MAX_META)
        .read_to_end(&mut data)
        .map_err(|e| read_failure(archive_path, e, &format!("reading a {what} header")))?;
    Ok(data)
}

fn trim_nuls(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

/// Reads the records of a PAX header: `<len> <key>=<value>\n`, where `<len>` counts
/// the whole record. Values may hold any byte (binary `SCHILY.xattr.*` values from
/// macOS `bsdtar` included), so records are split by length, never at newlines.
fn parse_pax(data: &[u8], pending: &mut Pending) -> Result<(), ExtractError> {
    let malformed = |what: &str| ExtractError::Corrupt {
        detail: format!("a PAX header is malformed ({what})"),
    };
    let mut rest = data;
    // Some writers pad the header's data with NULs.
    while !rest.iter().all(|&b| b == 0) {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| malformed("a record has no length"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| malformed("a record length is not a number"))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(malformed("a record length does not match the record"));
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| malformed("a record has no `=`"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pending.pax_path = Some(value.to_vec()),
            b"linkpath" => pending.pax_link = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| malformed("its `size` is not a number"))?;
                pending.pax_size = Some(size);
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

fn link_target(name: &str, target: Option<Vec<u8>>) -> Result<Vec<u8>, ExtractError> {
    match target {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(ExtractError::Corrupt {
            detail: format!("tar link entry `{name}` has no target"),
        }),
    }
}
