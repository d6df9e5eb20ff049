//! The tree being extracted: writes entries under the root, enforces the limits and
//! keeps an in-memory map of everything written, against which link targets are
//! resolved. Both archive readers feed it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::hashing::Sha256;

use super::entry_path::{MAX_COMPONENTS, RelPath, check_link_target};
use super::{EntryKind, ExtractError, ExtractedEntry, Limits};

/// How symlinks are put on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkMode {
    /// As real symlinks (unix).
    Native,
    /// As copies of their resolved targets, made once all entries are written.
    Copy,
}

/// Most symlinks followed while resolving one target (the usual `MAXSYMLINKS`).
const MAX_LINK_HOPS: u32 = 40;
/// Most nested directory symlinks expanded when copying links (LinkMode::Copy).
const MAX_COPY_DEPTH: u32 = 8;
const BUF_SIZE: usize = 64 * 1024;

#[derive(Debug)]
enum Node {
    /// A directory; `listed` when the archive had an entry for it.
    Dir {
        listed: bool,
    },
    File {
        entry: usize,
    },
    Symlink {
        entry: usize,
        target: String,
    },
}

#[derive(Debug)]
struct Slot {
    /// The exact path (the map key is folded to ASCII lower case).
    path: RelPath,
    node: Node,
}

/// Why a link target cannot be accepted.
enum LinkProblem {
    Escapes,
    Loop,
}

pub(crate) struct Tree<'a> {
    root: PathBuf,
    limits: &'a Limits,
    mode: LinkMode,
    slots: BTreeMap<String, Slot>,
    entries: Vec<ExtractedEntry>,
    entry_count: u64,
    total_bytes: u64,
    buf: Vec<u8>,
    links_on_disk: Vec<PathBuf>,
}

fn fold(components: &[String]) -> String {
    components.join("/").to_ascii_lowercase()
}

/// A `/`-joined, ASCII-lower-cased path built one component at a time (the key of
/// [`Tree::slots`]), so that walking a path costs its length, not its length squared.
#[derive(Default)]
struct FoldedKey {
    key: String,
    /// Length of `key` before each component was pushed.
    marks: Vec<usize>,
}

impl FoldedKey {
    fn push(&mut self, component: &str) {
        self.marks.push(self.key.len());
        if !self.key.is_empty() {
            self.key.push('/');
        }
        self.key.push_str(&component.to_ascii_lowercase());
    }

    /// Drops the last component; `false` at the root.
    fn pop(&mut self) -> bool {
        match self.marks.pop() {
            Some(len) => {
                self.key.truncate(len);
                true
            }
            None => false,
        }
    }

    fn depth(&self) -> usize {
        self.marks.len()
    }

    fn as_str(&self) -> &str {
        &self.key
    }
}

impl<'a> Tree<'a> {
    pub(crate) fn new(root: &Path, limits: &'a Limits, mode: LinkMode) -> Self {
        Tree {
            root: root.to_path_buf(),
            limits,
            mode,
            slots: BTreeMap::new(),
            entries: Vec::new(),
            entry_count: 0,
            total_bytes: 0,
            buf: vec![0; BUF_SIZE],
            links_on_disk: Vec::new(),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        self.limits
    }

    pub(crate) fn into_entries(self) -> Vec<ExtractedEntry> {
        self.entries
    }

    fn disk_path(&self, path: &RelPath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.components());
        p
    }

    fn io_err(path: PathBuf) -> impl FnOnce(io::Error) -> ExtractError + use<> {
        move |source| ExtractError::Io { path, source }
    }

    /// Counts one archive entry against [`Limits::max_entries`].
    pub(crate) fn count_entry(&mut self) -> Result<(), ExtractError> {
        self.entry_count += 1;
        if self.entry_count > self.limits.max_entries {
            return Err(ExtractError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Makes sure every parent of `path` is a directory this extraction created,
    /// creating missing ones. Never lets an entry be written through a symlink.
    fn prepare_parents(&mut self, path: &RelPath, entry: &str) -> Result<(), ExtractError> {
        let comps = path.components();
        let mut key = FoldedKey::default();
        for depth in 1..comps.len() {
            let prefix = &comps[..depth];
            key.push(&comps[depth - 1]);
            let problem = match self.slots.get(key.as_str()) {
                Some(slot) if slot.path.components() != prefix => {
                    "a parent directory's name differs only in letter case from an earlier entry"
                }
                Some(Slot {
                    node: Node::Dir { .. },
                    ..
                }) => continue,
                Some(Slot {
                    node: Node::File { .. },
                    ..
                }) => "one of its parents is a file, not a directory",
                Some(Slot {
                    node: Node::Symlink { .. },
                    ..
                }) => "it would be written through a symlink",
                None => {
                    let dir =
                        RelPath::from_components(prefix.to_vec()).expect("prefix is not empty");
                    self.create_dir(&dir)?;
                    self.slots.insert(
                        key.as_str().to_owned(),
                        Slot {
                            path: dir,
                            node: Node::Dir { listed: false },
                        },
                    );
                    continue;
                }
            };
            return Err(ExtractError::UnsafePath {
                entry: entry.to_owned(),
                reason: problem,
            });
        }
        Ok(())
    }

    fn create_dir(&self, dir: &RelPath) -> Result<(), ExtractError> {
        let disk = self.disk_path(dir);
        fs::create_dir(&disk).map_err(Self::io_err(disk.clone()))?;
        set_mode(&disk, 0o755).map_err(Self::io_err(disk))
    }

    /// Fails if `path` is taken; `Ok(true)` if it is a directory that exists already
    /// and the new entry is a directory too (a repeated directory entry is harmless).
    fn check_free(&self, path: &RelPath, entry: &str, is_dir: bool) -> Result<bool, ExtractError> {
        match self.slots.get(&fold(path.components())) {
            None => Ok(false),
            Some(slot) if slot.path != *path => Err(ExtractError::UnsafePath {
                entry: entry.to_owned(),
                reason: "its name differs only in letter case from an earlier entry",
            }),
            Some(Slot {
                node: Node::Dir { .. },
                ..
            }) if is_dir => Ok(true),
            Some(_) => Err(Self::duplicate(entry)),
        }
    }

    fn duplicate(entry: &str) -> ExtractError {
        ExtractError::UnsafePath {
            entry: entry.to_owned(),
            reason: "it appears more than once in the archive",
        }
    }

    pub(crate) fn add_dir(&mut self, path: RelPath, entry: &str) -> Result<(), ExtractError> {
        self.prepare_parents(&path, entry)?;
        if !self.check_free(&path, entry, true)? {
            self.create_dir(&path)?;
        }
        let previous = self.slots.insert(
            fold(path.components()),
            Slot {
                path: path.clone(),
                node: Node::Dir { listed: true },
            },
        );
        let listed_before = matches!(
            previous,
            Some(Slot {
                node: Node::Dir { listed: true },
                ..
            })
        );
        if !listed_before {
            self.entries.push(ExtractedEntry {
                path: path.to_path_buf(),
                kind: EntryKind::Dir,
                size: 0,
                sha256: String::new(),
            });
        }
        Ok(())
    }

    /// Streams `data` into a new file at `path`, hashing and counting as it goes.
    /// Errors from `data` are mapped with `on_read_error`.
    pub(crate) fn add_file(
        &mut self,
        path: RelPath,
        entry: &str,
        executable: bool,
        data: &mut dyn Read,
        on_read_error: &dyn Fn(io::Error) -> ExtractError,
    ) -> Result<(), ExtractError> {
        self.prepare_parents(&path, entry)?;
        self.check_free(&path, entry, false)?;
        let disk = self.disk_path(&path);
        // `create_new` refuses anything already there, a dangling symlink included.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&disk)
            .map_err(Self::io_err(disk.clone()))?;
        // Registered before writing so that a failure leaves a consistent map.
        let index = self.entries.len();
        self.slots.insert(
            fold(path.components()),
            Slot {
                path: path.clone(),
                node: Node::File { entry: index },
            },
        );
        let (size, sha256) = self.copy_capped(data, &mut file, &disk, entry, on_read_error)?;
        file.flush().map_err(Self::io_err(disk.clone()))?;
        set_file_mode(&file, executable).map_err(Self::io_err(disk))?;
        self.entries.push(ExtractedEntry {
            path: path.to_path_buf(),
            kind: EntryKind::File { executable },
            size,
            sha256,
        });
        Ok(())
    }

    fn copy_capped(
        &mut self,
        data: &mut dyn Read,
        out: &mut File,
        disk: &Path,
        entry: &str,
        on_read_error: &dyn Fn(io::Error) -> ExtractError,
    ) -> Result<(u64, String), ExtractError> {
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(on_read_error(e)),
            };
            size += n as u64;
            if size > self.limits.max_entry_bytes {
                return Err(ExtractError::EntryTooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_entry_bytes,
                });
            }
            self.add_total(n as u64)?;
            hasher.update(&self.buf[..n]);
            out.write_all(&self.buf[..n])
                .map_err(Self::io_err(disk.to_path_buf()))?;
        }
        Ok((size, hasher.finish_hex()))
    }

    fn add_total(&mut self, n: u64) -> Result<(), ExtractError> {
        self.total_bytes += n;
        if self.total_bytes > self.limits.max_total_bytes {
            return Err(ExtractError::TooLarge {
                limit: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// Reads `data` to its end, counting the bytes against the total cap, and
    /// discards them (used for what follows the last tar entry, so that the gzip
    /// trailer is checked and trailing data cannot be a bomb).
    pub(crate) fn drain(
        &mut self,
        data: &mut dyn Read,
        on_read_error: &dyn Fn(io::Error) -> ExtractError,
    ) -> Result<(), ExtractError> {
        loop {
            match data.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.add_total(n as u64)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(on_read_error(e)),
            }
        }
    }

    /// Adds a symlink `path -> target` after checking that it stays inside.
    pub(crate) fn add_symlink(
        &mut self,
        path: RelPath,
        entry: &str,
        target: String,
    ) -> Result<(), ExtractError> {
        match check_link_target(&target) {
            Ok(()) => {}
            Err(None) => {
                return Err(ExtractError::EscapingSymlink {
                    entry: entry.to_owned(),
                    target,
                });
            }
            Err(Some(reason)) => {
                return Err(ExtractError::UnsafePath {
                    entry: entry.to_owned(),
                    reason,
                });
            }
        }
        self.prepare_parents(&path, entry)?;
        self.check_free(&path, entry, false)?;
        let index = self.entries.len();
        self.slots.insert(
            fold(path.components()),
            Slot {
                path: path.clone(),
                node: Node::Symlink {
                    entry: index,
                    target: target.clone(),
                },
            },
        );
        self.entries.push(ExtractedEntry {
            path: path.to_path_buf(),
            kind: EntryKind::Symlink {
                target: PathBuf::from(&target),
            },
            size: 0,
            sha256: String::new(),
        });
        // Checked with the tree as known so far; `finish` checks again with all of it.
        self.resolve_link(&path, entry, &target)?;
        if self.mode == LinkMode::Native {
            let disk = self.disk_path(&path);
            make_symlink(&target, &disk).map_err(Self::io_err(disk.clone()))?;
            self.links_on_disk.push(disk);
        }
        Ok(())
    }

    /// Adds a tar hard link as a copy of `target`, which must be a regular file
    /// extracted before it.
    pub(crate) fn add_hard_link(
        &mut self,
        path: RelPath,
        entry: &str,
        target: &RelPath,
    ) -> Result<(), ExtractError> {
        let source = match self.slots.get(&fold(target.components())) {
            Some(Slot {
                path: exact,
                node: Node::File { entry: index },
            }) if exact == target => *index,
            _ => {
                return Err(ExtractError::UnsupportedEntry {
                    entry: entry.to_owned(),
                    kind: format!(
                        "hard link to `{target}` (a hard link must name a regular file \
                         extracted before it)"
                    ),
                });
            }
        };
        let executable = matches!(
            self.entries[source].kind,
            EntryKind::File { executable: true }
        );
        let from = self.disk_path(target);
        let mut reader = File::open(&from).map_err(Self::io_err(from.clone()))?;
        let on_err = |source| ExtractError::Io {
            path: from.clone(),
            source,
        };
        self.add_file(path, entry, executable, &mut reader, &on_err)
    }

    /// Resolves `target` as seen from the directory `cur`, following the symlinks of
    /// the tree component by component, as the OS would. `cur` ends as the folded key
    /// of the resolved path (empty for the root).
    fn resolve(
        &self,
        cur: &mut FoldedKey,
        target: &str,
        hops: &mut u32,
    ) -> Result<(), LinkProblem> {
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if !cur.pop() {
                        return Err(LinkProblem::Escapes);
                    }
                }
                name => {
                    cur.push(name);
                    // Nothing is stored deeper than an entry name can reach.
                    if cur.depth() > MAX_COMPONENTS {
                        continue;
                    }
                    if let Some(Slot {
                        node: Node::Symlink { target: next, .. },
                        ..
                    }) = self.slots.get(cur.as_str())
                    {
                        *hops += 1;
                        if *hops > MAX_LINK_HOPS {
                            return Err(LinkProblem::Loop);
                        }
                        if check_link_target(next).is_err() {
                            return Err(LinkProblem::Escapes);
                        }
                        cur.pop();
                        self.resolve(cur, next, hops)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the link at `path` with `target` finally leads: a folded key. Errors
    /// name the link `entry`.
    fn resolve_link(
        &self,
        path: &RelPath,
        entry: &str,
        target: &str,
    ) -> Result<String, ExtractError> {
        let comps = path.components();
        let mut cur = FoldedKey::default();
        for c in &comps[..comps.len() - 1] {
            cur.push(c);
        }
        match self.resolve(&mut cur, target, &mut 0) {
            Ok(()) => Ok(cur.key),
            Err(LinkProblem::Escapes) => Err(ExtractError::EscapingSymlink {
                entry: entry.to_owned(),
                target: target.to_owned(),
            }),
            Err(LinkProblem::Loop) => Err(ExtractError::UnsafePath {
                entry: entry.to_owned(),
                reason: "its symlink target never resolves (a symlink loop)",
            }),
        }
    }

    /// Every symlink of the tree, in archive order.
    fn links(&self) -> Vec<(RelPath, String)> {
        let mut links: Vec<(usize, RelPath, String)> = self
            .slots
            .values()
            .filter_map(|slot| match &slot.node {
                Node::Symlink { entry, target } => {
                    Some((*entry, slot.path.clone(), target.clone()))
                }
                _ => None,
            })
            .collect();
        links.sort_by_key(|(entry, _, _)| *entry);
        links
            .into_iter()
            .map(|(_, path, target)| (path, target))
            .collect()
    }

    /// Re-checks every symlink against the complete tree (a later link can change
    /// where an earlier one leads), then, in copy mode, materializes the links.
    pub(crate) fn finish(&mut self) -> Result<(), ExtractError> {
        let links = self.links();
        let mut resolved = Vec::with_capacity(links.len());
        for (path, target) in &links {
            resolved.push(self.resolve_link(path, &path.key(), target)?);
        }
        if self.mode == LinkMode::Copy {
            for ((path, _), source) in links.iter().zip(&resolved) {
                self.materialize(path, source, 0)?;
            }
        }
        Ok(())
    }

    /// Writes at `dest` a copy of what the folded key `source` names (a file, or a
    /// directory copied recursively, its links resolved in turn).
    fn materialize(
        &mut self,
        dest: &RelPath,
        source: &str,
        depth: u32,
    ) -> Result<(), ExtractError> {
        let entry = dest.key();
        // A link to the root, or nesting this deep, means a directory containing itself.
        if source.is_empty() || depth > MAX_COPY_DEPTH {
            return Err(ExtractError::UnsafePath {
                entry,
                reason: "its symlink leads into a directory that contains itself",
            });
        }
        // `None` for a directory, else whether the file is executable.
        let (exact, file_executable) = match self.slots.get(source) {
            None => return Ok(()), // dangling link: nothing to copy
            Some(slot) => match slot.node {
                Node::File { entry } => (
                    slot.path.clone(),
                    Some(matches!(
                        self.entries[entry].kind,
                        EntryKind::File { executable: true }
                    )),
                ),
                Node::Dir { .. } => (slot.path.clone(), None),
                Node::Symlink { .. } => unreachable!("resolution follows every link"),
            },
        };
        let to = self.disk_path(dest);
        if let Some(executable) = file_executable {
            let from = self.disk_path(&exact);
            let mut reader = File::open(&from).map_err(Self::io_err(from.clone()))?;
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&to)
                .map_err(Self::io_err(to.clone()))?;
            let on_err = |source| ExtractError::Io {
                path: from.clone(),
                source,
            };
            self.copy_capped(&mut reader, &mut out, &to, &entry, &on_err)?;
            return set_file_mode(&out, executable).map_err(Self::io_err(to));
        }
        self.create_dir(dest)?;
        let prefix = format!("{source}/");
        let children: Vec<(RelPath, Option<String>)> = self
            .slots
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .map(|(_, slot)| {
                let link = match &slot.node {
                    Node::Symlink { target, .. } => Some(target.clone()),
                    _ => None,
                };
                (slot.path.clone(), link)
            })
            .collect();
        for (child, link) in children {
            let name = child.components().last().expect("not empty").clone();
            let mut child_dest = dest.components().to_vec();
            child_dest.push(name);
            let child_dest = RelPath::from_components(child_dest).expect("not empty");
            let child_source = match link {
                None => fold(child.components()),
                Some(target) => self.resolve_link(&child, &child.key(), &target)?,
            };
            self.materialize(&child_dest, &child_source, depth + 1)?;
        }
        Ok(())
    }

    /// Removes the symlinks this extraction created (used on error, so that no
    /// link to the outside is left behind even if the caller forgets the clean-up).
    pub(crate) fn remove_links(&self) {
        for link in &self.links_on_disk {
            let _ = fs::remove_file(link);
        }
    }
}

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "native symlinks are only created on unix hosts",
    ))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn set_file_mode(file: &File, executable: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_file_mode(_file: &File, _executable: bool) -> io::Result<()> {
    Ok(())
}
