//! Parallel stat-only directory walk: the shared first phase of snapshots and change detection.
//!
//! Every directory is one rayon task (jwalk-style); large directories split their entries into
//! chunks that are stat'ed in parallel. Entry types come from `d_type`, so directories cost no
//! stat, and leaves are stat'ed relative to their directory (`statx(dirfd, name)`). Symlinks are
//! never followed. The result is sorted by relative path bytes, so output order is deterministic.

use std::ffi::OsStr;
use std::fs::{self, DirEntry};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::arena::{PathArena, Span};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::hash::{hash_open_file, open_in_dir};
use crate::names::ATTEMPT_MARKER;

/// Entries per parallel stat task inside one large directory.
const STAT_CHUNK: usize = 256;

/// What a non-directory entry is. Only `File` and `Symlink` can be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    File,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Symlink => "symlink",
            NodeKind::Fifo => "fifo",
            NodeKind::Socket => "socket",
            NodeKind::CharDevice => "char-device",
            NodeKind::BlockDevice => "block-device",
        }
    }

    fn of(file_type: fs::FileType) -> Option<Self> {
        Some(if file_type.is_file() {
            NodeKind::File
        } else if file_type.is_symlink() {
            NodeKind::Symlink
        } else if file_type.is_fifo() {
            NodeKind::Fifo
        } else if file_type.is_socket() {
            NodeKind::Socket
        } else if file_type.is_char_device() {
            NodeKind::CharDevice
        } else if file_type.is_block_device() {
            NodeKind::BlockDevice
        } else {
            return None;
        })
    }
}

/// The `lstat` fields a snapshot keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: NodeKind,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub mode: u32,
}

impl Stat {
    /// `fstat` of an open descriptor; `None` for a directory.
    pub(crate) fn of_open_file(file: &fs::File) -> std::io::Result<Option<Self>> {
        let mut raw = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `raw` is a valid out-pointer for one `stat`; the descriptor is borrowed open.
        if unsafe { libc::fstat(file.as_raw_fd(), raw.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so it filled the whole struct.
        let raw = unsafe { raw.assume_init() };
        let kind = match raw.st_mode & libc::S_IFMT {
            libc::S_IFREG => NodeKind::File,
            libc::S_IFLNK => NodeKind::Symlink,
            libc::S_IFIFO => NodeKind::Fifo,
            libc::S_IFSOCK => NodeKind::Socket,
            libc::S_IFCHR => NodeKind::CharDevice,
            libc::S_IFBLK => NodeKind::BlockDevice,
            _ => return Ok(None),
        };
        Ok(Some(Stat {
            kind,
            size: u64::try_from(raw.st_size).unwrap_or_default(),
            mtime_ns: raw.st_mtime * 1_000_000_000 + raw.st_mtime_nsec,
            ctime_ns: raw.st_ctime * 1_000_000_000 + raw.st_ctime_nsec,
            ino: raw.st_ino,
            // `mode_t` is u16 on FreeBSD and macOS; the conversion is a no-op on Linux only.
            #[allow(clippy::useless_conversion)]
            mode: u32::from(raw.st_mode),
        }))
    }

    pub fn from_metadata(meta: &fs::Metadata) -> Option<Self> {
        Some(Stat {
            kind: NodeKind::of(meta.file_type())?,
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            mode: meta.mode(),
        })
    }
}

/// One walked entry: its relative path (a span of the listing's arena), stat and — when the
/// walk hashes — the BLAKE3 of a regular file's content (zeros otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub path: Span,
    pub stat: Stat,
    pub hash: [u8; 32],
}

/// All non-directory entries under a root, sorted by relative path bytes.
pub struct Listing {
    pub arena: PathArena,
    pub items: Vec<Item>,
}

impl Listing {
    pub fn path(&self, item: &Item) -> &[u8] {
        self.arena.get(item.path)
    }
}

/// Fail early and clearly when the root is missing or not a directory.
pub fn check_root(root: &Path) -> Result<()> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(Error::NotADirectory {
            path: root.to_path_buf(),
        })
    }
}

/// Entries of one directory chunk; merged and sorted once the walk ends.
struct Batch {
    prefix: std::sync::Arc<[u8]>,
    names: Vec<u8>,
    items: Vec<(u32, u32, Stat, [u8; 32])>,
}

/// A directory being read: its absolute path (for errors) and, when hashing, an open handle
/// so files are opened relative to it (`openat`) instead of resolving the full path each time.
struct DirContext {
    abs: PathBuf,
    prefix: std::sync::Arc<[u8]>,
    handle: Option<fs::File>,
}

struct Walker<'a> {
    hash_files: bool,
    batches: Mutex<Vec<Batch>>,
    error: Mutex<Option<Error>>,
    failed: AtomicBool,
    cancel: &'a CancelToken,
}

impl Walker<'_> {
    fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.cancel.is_cancelled()
    }

    fn fail(&self, err: Error) {
        let mut slot = self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(err);
        }
        self.failed.store(true, Ordering::Relaxed);
    }

    fn walk_dir<'s>(&'s self, scope: &rayon::Scope<'s>, abs: PathBuf, rel: Vec<u8>) {
        if self.stopped() {
            return;
        }
        let reader = match fs::read_dir(&abs) {
            Ok(reader) => reader,
            Err(e) => return self.fail(Error::io_or_vanished(abs, e)),
        };
        let prefix: std::sync::Arc<[u8]> = rel.into();
        let at_root = prefix.is_empty();
        let handle = if self.hash_files {
            match fs::File::open(&abs) {
                Ok(handle) => Some(handle),
                Err(e) => return self.fail(Error::io_or_vanished(abs, e)),
            }
        } else {
            None
        };
        let mut leaves: Vec<DirEntry> = Vec::new();
        for entry in reader {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return self.fail(Error::io_or_vanished(&abs, e)),
            };
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => return self.fail(Error::io_or_vanished(entry.path(), e)),
            };
            if file_type.is_dir() {
                let name = entry.file_name();
                let mut child_rel = Vec::with_capacity(prefix.len() + name.len() + 1);
                child_rel.extend_from_slice(&prefix);
                child_rel.extend_from_slice(name.as_bytes());
                child_rel.push(b'/');
                let child_abs = abs.join(&name);
                scope.spawn(move |scope| self.walk_dir(scope, child_abs, child_rel));
            } else if !(at_root && entry.file_name() == OsStr::new(ATTEMPT_MARKER)) {
                leaves.push(entry);
            }
        }
        let dir = std::sync::Arc::new(DirContext {
            abs,
            prefix,
            handle,
        });
        // Big directories fan out so one huge folder does not serialise the stat phase.
        while leaves.len() > STAT_CHUNK {
            let chunk = leaves.split_off(leaves.len() - STAT_CHUNK);
            let dir = std::sync::Arc::clone(&dir);
            scope.spawn(move |_| self.stat_chunk(&dir, chunk));
        }
        self.stat_chunk(&dir, leaves);
    }

    fn stat_chunk(&self, dir: &DirContext, entries: Vec<DirEntry>) {
        if entries.is_empty() || self.stopped() {
            return;
        }
        let mut batch = Batch {
            prefix: std::sync::Arc::clone(&dir.prefix),
            names: Vec::with_capacity(entries.len() * 16),
            items: Vec::with_capacity(entries.len()),
        };
        for entry in entries {
            if self.stopped() {
                return;
            }
            let name = entry.file_name();
            let opened = match (&dir.handle, entry.file_type()) {
                (Some(handle), Ok(file_type)) if file_type.is_file() => {
                    match self.open_and_hash(handle, &dir.abs, &name) {
                        Ok(found) => found,
                        Err(err) => return self.fail(err),
                    }
                }
                _ => None,
            };
            let (stat, hash) = match opened {
                Some(found) => found,
                None => match self.lstat_and_hash(&entry, dir) {
                    Ok(Some(found)) => found,
                    Ok(None) => continue, // a directory raced in; nothing to record
                    Err(err) => return self.fail(err),
                },
            };
            let name_start = batch.names.len() as u32;
            batch.names.extend_from_slice(name.as_bytes());
            batch
                .items
                .push((name_start, name.len() as u32, stat, hash));
        }
        self.batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(batch);
    }

    /// The fast path for an entry listed as a regular file: `openat` + `fstat` + read, so the
    /// recorded stat is the one of the bytes hashed and no path is resolved twice. `None` when
    /// the name turned into a symlink or directory meanwhile (the caller falls back to lstat).
    fn open_and_hash(
        &self,
        dir: &fs::File,
        abs: &Path,
        name: &OsStr,
    ) -> Result<Option<(Stat, [u8; 32])>> {
        let path = || abs.join(name);
        let file = match open_in_dir(dir, name) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
            Err(e) => return Err(Error::io_or_vanished(path(), e)),
        };
        let Some(stat) = Stat::of_open_file(&file).map_err(|e| Error::io(path(), e))? else {
            return Ok(None);
        };
        let mut hash = [0u8; 32];
        if stat.kind == NodeKind::File {
            hash = *hash_open_file(&file, stat.size, self.cancel, &path)?.as_bytes();
        }
        Ok(Some((stat, hash)))
    }

    /// The general path: `lstat` relative to the directory, then hash when it is a file and
    /// this walk hashes. `None` for a directory (raced in between readdir and stat).
    fn lstat_and_hash(
        &self,
        entry: &DirEntry,
        dir: &DirContext,
    ) -> Result<Option<(Stat, [u8; 32])>> {
        let meta = entry
            .metadata()
            .map_err(|e| Error::io_or_vanished(entry.path(), e))?;
        let Some(stat) = Stat::from_metadata(&meta) else {
            return Ok(None);
        };
        let mut hash = [0u8; 32];
        if let (NodeKind::File, Some(handle)) = (stat.kind, &dir.handle) {
            let name = entry.file_name();
            let path = || dir.abs.join(&name);
            let file = open_in_dir(handle, &name).map_err(|e| Error::io_or_vanished(path(), e))?;
            hash = *hash_open_file(&file, stat.size, self.cancel, &path)?.as_bytes();
        }
        Ok(Some((stat, hash)))
    }
}

/// Walk `root` on `pool` with only `lstat`s (no content reads).
pub fn stat_walk(root: &Path, pool: &rayon::ThreadPool, cancel: &CancelToken) -> Result<Listing> {
    walk(root, pool, cancel, false)
}

/// Walk `root` on `pool`, stat every entry and hash every regular file as it is found.
pub fn hash_walk(root: &Path, pool: &rayon::ThreadPool, cancel: &CancelToken) -> Result<Listing> {
    walk(root, pool, cancel, true)
}

fn walk(
    root: &Path,
    pool: &rayon::ThreadPool,
    cancel: &CancelToken,
    hash_files: bool,
) -> Result<Listing> {
    check_root(root)?;
    let walker = Walker {
        hash_files,
        batches: Mutex::new(Vec::new()),
        error: Mutex::new(None),
        failed: AtomicBool::new(false),
        cancel,
    };
    pool.scope(|scope| walker.walk_dir(scope, root.to_path_buf(), Vec::new()));
    cancel.check()?;
    if let Some(err) = walker
        .error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(err);
    }
    let batches = walker
        .batches
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let count: usize = batches.iter().map(|b| b.items.len()).sum();
    let bytes: usize = batches
        .iter()
        .map(|b| b.names.len() + b.prefix.len() * b.items.len())
        .sum();
    let mut arena = PathArena::with_capacity(bytes);
    let mut items = Vec::with_capacity(count);
    for batch in &batches {
        for &(start, len, stat, hash) in &batch.items {
            let name = &batch.names[start as usize..(start + len) as usize];
            let path = arena.push(&[&batch.prefix, name])?;
            items.push(Item { path, stat, hash });
        }
    }
    drop(batches);
    pool.install(|| items.par_sort_unstable_by(|a, b| arena.get(a.path).cmp(arena.get(b.path))));
    Ok(Listing { arena, items })
}
