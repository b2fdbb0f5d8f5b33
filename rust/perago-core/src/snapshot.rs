//! Workspace snapshots: per regular file and symlink its path, kind, size, mtime, ctime, inode,
//! mode and BLAKE3 hash (symlinks: their target, hashed too), sorted by path.
//!
//! Memory is proportional to the number of entries: one fixed-size [`Entry`] per file plus its
//! path bytes in a shared arena (see [`Snapshot::heap_bytes`]).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::arena::{PathArena, Span};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::names::ATTEMPT_MARKER;
use crate::pool::pool;
use crate::walk::{self, NodeKind, Stat};

/// What a snapshot entry is; other node kinds are listed as unsupported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Symlink,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
        }
    }
}

/// One recorded file or symlink. Paths live in the owning [`Snapshot`]; see [`EntryRef`].
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    path: Span,
    target: Span,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    /// BLAKE3 of the content (files) or of the target bytes (symlinks).
    pub hash: [u8; 32],
}

impl Entry {
    fn from_stat(path: Span, stat: &Stat, kind: EntryKind) -> Self {
        Entry {
            path,
            target: Span::default(),
            kind,
            mode: stat.mode,
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            ctime_ns: stat.ctime_ns,
            ino: stat.ino,
            hash: [0; 32],
        }
    }
}

/// A borrowed view of one entry together with its path.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    snapshot: &'a Snapshot,
    entry: &'a Entry,
}

impl<'a> EntryRef<'a> {
    /// Relative, '/'-separated path.
    pub fn path(&self) -> &'a Path {
        Path::new(OsStr::from_bytes(self.snapshot.arena.get(self.entry.path)))
    }

    /// Symlink target as stored in the link (never resolved); `None` for files.
    pub fn target(&self) -> Option<&'a Path> {
        (self.entry.kind == EntryKind::Symlink).then(|| {
            Path::new(OsStr::from_bytes(
                self.snapshot.arena.get(self.entry.target),
            ))
        })
    }

    pub fn entry(&self) -> &'a Entry {
        self.entry
    }
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

/// A fifo, socket or device found in the workspace (cannot be published).
#[derive(Clone, Copy, Debug)]
pub struct Unsupported {
    path: Span,
    pub kind: NodeKind,
}

/// Options shared by snapshot calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotOptions {
    /// Worker threads (`None` = available cores).
    pub threads: Option<usize>,
}

/// The recorded state of a workspace tree.
#[derive(Clone, Debug)]
pub struct Snapshot {
    root: PathBuf,
    started_ns: i64,
    arena: PathArena,
    entries: Vec<Entry>,
    unsupported: Vec<Unsupported>,
}

/// Wall-clock nanoseconds, the clock file timestamps come from.
pub(crate) fn now_ns() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

impl Snapshot {
    /// Cold snapshot: parallel walk of `root`, hashing every regular file.
    pub fn take(root: &Path, options: &SnapshotOptions, cancel: &CancelToken) -> Result<Self> {
        let pool = pool(options.threads)?;
        let started_ns = now_ns();
        let listing = walk::hash_walk(root, &pool, cancel)?;
        let mut arena = listing.arena;
        let mut entries = Vec::with_capacity(listing.items.len());
        let mut unsupported = Vec::new();
        for item in &listing.items {
            let kind = match item.stat.kind {
                NodeKind::File => EntryKind::File,
                NodeKind::Symlink => EntryKind::Symlink,
                kind => {
                    unsupported.push(Unsupported {
                        path: item.path,
                        kind,
                    });
                    continue;
                }
            };
            let mut entry = Entry::from_stat(item.path, &item.stat, kind);
            entry.hash = item.hash;
            entries.push(entry);
        }
        drop(listing.items);
        // Symlinks are rare in workspaces; reading their targets serially keeps one arena.
        for entry in entries.iter_mut().filter(|e| e.kind == EntryKind::Symlink) {
            let abs = root.join(OsStr::from_bytes(arena.get(entry.path)));
            let target = std::fs::read_link(&abs).map_err(|e| Error::io_or_vanished(&abs, e))?;
            let target = target.as_os_str().as_bytes();
            entry.hash = *blake3::hash(target).as_bytes();
            entry.target = arena.push(&[target])?;
        }
        Ok(Self::assemble(
            root,
            started_ns,
            arena,
            entries,
            unsupported,
        ))
    }

    /// A baseline from hashes computed elsewhere (e.g. while downloading): every path is
    /// `lstat`ed in parallel, never read. Paths are relative and '/'-separated; each must be a
    /// regular file. The marker file is ignored.
    pub fn from_known_hashes<P, H, I>(
        root: &Path,
        known: I,
        options: &SnapshotOptions,
        cancel: &CancelToken,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = (P, H)>,
        P: AsRef<str>,
        H: Into<[u8; 32]>,
    {
        walk::check_root(root)?;
        let pool = pool(options.threads)?;
        let mut arena = PathArena::default();
        let mut pending: Vec<(Span, [u8; 32])> = Vec::new();
        for (path, hash) in known {
            let path = path.as_ref();
            validate_relative(path)?;
            if path == ATTEMPT_MARKER {
                continue;
            }
            pending.push((arena.push(&[path.as_bytes()])?, hash.into()));
        }
        pending.sort_unstable_by(|a, b| arena.get(a.0).cmp(arena.get(b.0)));
        if let Some(pair) = pending
            .windows(2)
            .find(|w| arena.get(w[0].0) == arena.get(w[1].0))
        {
            return Err(Error::InvalidPath {
                path: String::from_utf8_lossy(arena.get(pair[0].0)).into_owned(),
                reason: "listed twice",
            });
        }
        let started_ns = now_ns();
        let root_bytes = root.as_os_str().as_bytes();
        let entries = pool.install(|| {
            pending
                .par_iter()
                .map_init(Vec::new, |buf, &(span, hash)| {
                    cancel.check()?;
                    let abs = join_into(buf, root_bytes, arena.get(span));
                    let meta = std::fs::symlink_metadata(abs)
                        .map_err(|e| Error::io_or_vanished(abs, e))?;
                    let stat = Stat::from_metadata(&meta)
                        .filter(|s| s.kind == NodeKind::File)
                        .ok_or_else(|| Error::NotAFile {
                            path: abs.to_path_buf(),
                            found: kind_name(&meta),
                        })?;
                    let mut entry = Entry::from_stat(span, &stat, EntryKind::File);
                    entry.hash = hash;
                    Ok(entry)
                })
                .collect::<Result<Vec<Entry>>>()
        })?;
        Ok(Self::assemble(root, started_ns, arena, entries, Vec::new()))
    }

    fn assemble(
        root: &Path,
        started_ns: i64,
        mut arena: PathArena,
        mut entries: Vec<Entry>,
        mut unsupported: Vec<Unsupported>,
    ) -> Self {
        arena.shrink_to_fit();
        entries.shrink_to_fit();
        unsupported.shrink_to_fit();
        Snapshot {
            root: root.to_path_buf(),
            started_ns,
            arena,
            entries,
            unsupported,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Wall-clock time (ns since the epoch) when recording started; drives the racy rule.
    pub fn started_ns(&self) -> i64 {
        self.started_ns
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in path order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntryRef<'_>> + '_ {
        self.entries.iter().map(move |entry| EntryRef {
            snapshot: self,
            entry,
        })
    }

    pub fn at(&self, index: usize) -> Option<EntryRef<'_>> {
        self.entries.get(index).map(|entry| EntryRef {
            snapshot: self,
            entry,
        })
    }

    /// Look up one relative '/'-separated path (binary search).
    pub fn get(&self, path: &[u8]) -> Option<EntryRef<'_>> {
        self.entries
            .binary_search_by(|e| self.arena.get(e.path).cmp(path))
            .ok()
            .and_then(|i| self.at(i))
    }

    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count()
    }

    pub fn symlink_count(&self) -> usize {
        self.entries.len() - self.file_count()
    }

    /// Sum of regular file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum()
    }

    /// Fifos, sockets and devices found (path, kind), in path order.
    pub fn unsupported(&self) -> impl Iterator<Item = (&Path, NodeKind)> + '_ {
        self.unsupported
            .iter()
            .map(|u| (Path::new(OsStr::from_bytes(self.arena.get(u.path))), u.kind))
    }

    /// Heap memory held by this snapshot (entries + path arena).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.unsupported.capacity() * std::mem::size_of::<Unsupported>()
            + self.arena.heap_bytes()
    }

    pub(crate) fn at_entry<'a>(&'a self, entry: &'a Entry) -> EntryRef<'a> {
        EntryRef {
            snapshot: self,
            entry,
        }
    }

    pub(crate) fn entries_raw(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn path_bytes(&self, entry: &Entry) -> &[u8] {
        self.arena.get(entry.path)
    }
}

/// `root + '/' + rel` in a reusable buffer (no allocation per file once warmed up).
pub(crate) fn join_into<'b>(buf: &'b mut Vec<u8>, root: &[u8], rel: &[u8]) -> &'b Path {
    buf.clear();
    buf.extend_from_slice(root);
    if !root.ends_with(b"/") {
        buf.push(b'/');
    }
    buf.extend_from_slice(rel);
    Path::new(OsStr::from_bytes(buf))
}

fn kind_name(meta: &std::fs::Metadata) -> &'static str {
    match Stat::from_metadata(meta) {
        Some(stat) => stat.kind.name(),
        None if meta.is_dir() => "directory",
        None => "special file",
    }
}

fn validate_relative(path: &str) -> Result<()> {
    let reason = if path.is_empty() {
        Some("empty path")
    } else if path.starts_with('/') {
        Some("absolute path")
    } else if path.contains('\0') {
        Some("contains NUL")
    } else if path.contains('\\') {
        Some("contains a backslash")
    } else if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("empty, '.' or '..' segment")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidPath {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
