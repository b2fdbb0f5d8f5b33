//! A per-host content cache of lakeFS objects, shared by every process of the host.
//!
//! An object is keyed by what lakeFS says of it (physical address, checksum, size), so the same
//! bytes in another commit, branch or task hit the same entry. Layout under the cache directory:
//!
//! ```text
//! v1/objects/<2 hex>/<62 hex>            entry: read-only bytes + a `user.perago.cache` record
//! v1/objects/<2 hex>/<62 hex>.partial    an object being fetched, locked by its fetcher
//! v1/clone-mode                          how entries reach workspaces here: reflink | copy
//! v1/prune.lock                          one evictor at a time
//! v1/usage                               bytes held as last measured plus inserts since
//! v1/usage.stale                         some inserts could not be counted: prune
//! ```
//!
//! An entry is complete when it exists: its record is set on the temp file before the rename,
//! and a crash anywhere before that leaves only an unlocked temp file that the next fetcher of the
//! object starts over (or the next prune removes). Workspaces never share an entry's inode (the
//! body may rewrite files in place): entries are cloned (shared extents, copy-on-write) where the
//! file system can, and copied while hashing elsewhere, which also verifies every byte used.

mod entry;
mod maintenance;
mod sys;
mod usage;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use entry::{CacheWriter, Entry};
pub use maintenance::{CacheStatus, PruneReport, VerifyReport};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

const LAYOUT: &str = "v1";
const OBJECTS: &str = "objects";
const PARTIAL_SUFFIX: &str = ".partial";

/// How entries become workspace files on this cache's file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneMode {
    /// `FICLONE`: the workspace file shares the entry's extents until either is written.
    Reflink,
    /// A copy, hashed as it is read (the bytes used are the bytes verified).
    Copy,
}

impl CloneMode {
    pub fn name(self) -> &'static str {
        match self {
            CloneMode::Reflink => "reflink",
            CloneMode::Copy => "copy",
        }
    }
}

/// The identity of one stored object: a keyed BLAKE3 of its physical address (the unsigned one
/// lakeFS records, unique per upload), checksum and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// `None` when lakeFS gave no address or checksum to key on (such objects are not cached).
    pub fn for_object(physical_address: &str, checksum: &str, size: u64) -> Option<Self> {
        let address = physical_address;
        if address.is_empty() || checksum.is_empty() {
            return None;
        }
        let mut hasher = blake3::Hasher::new_derive_key("perago content cache v1 object key");
        hasher.update(address.as_bytes());
        hasher.update(&[0]);
        hasher.update(checksum.as_bytes());
        hasher.update(&[0]);
        hasher.update(&size.to_le_bytes());
        Some(Self(*hasher.finalize().as_bytes()))
    }

    fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

/// What [`ContentCache::claim`] found for a key.
pub enum Claim {
    /// A usable entry.
    Ready(Entry),
    /// This process fetches the object, writing into the writer as it streams.
    Fetch(CacheWriter),
    /// Another process (or thread) is fetching it right now.
    Busy,
}

/// An open cache directory.
#[derive(Debug)]
pub struct ContentCache {
    dir: PathBuf,
    objects: PathBuf,
    max_size: u64,
    mode: CloneMode,
    usage: usage::Usage,
}

impl ContentCache {
    /// Open (creating if needed) the cache at `dir`, holding at most `max_size` bytes once
    /// pruned. Fails with a one-line reason when the directory cannot hold a cache (not
    /// writable, or a file system without user extended attributes).
    pub fn open(dir: &Path, max_size: u64) -> Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(dir).map_err(|e| Error::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let layout = dir.join(LAYOUT);
        let objects = layout.join(OBJECTS);
        builder
            .create(&objects)
            .map_err(|e| Error::io(&objects, e))?;
        let mode = if let Some(mode) = read_mode(&layout) {
            mode
        } else {
            let mode = detect_mode(&layout)?;
            write_mode(&layout, mode)?;
            mode
        };
        Ok(Self {
            usage: usage::Usage::new(&layout),
            dir,
            objects,
            max_size,
            mode,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    pub fn mode(&self) -> CloneMode {
        self.mode
    }

    fn shard(&self, key: &CacheKey) -> (PathBuf, String) {
        let hex = key.hex();
        (self.objects.join(&hex[..2]), hex[2..].to_owned())
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        let (shard, name) = self.shard(key);
        shard.join(name)
    }

    fn partial_path(&self, key: &CacheKey) -> PathBuf {
        let (shard, name) = self.shard(key);
        shard.join(name + PARTIAL_SUFFIX)
    }

    /// Count `bytes` a download just inserted; whether a prune is due: the cache may now exceed
    /// its size, or its count is too old (or could not be read or written) to tell.
    pub fn count_inserted(&self, bytes: u64) -> bool {
        let now = usage::unix_now();
        let mut due = self.usage.is_stale();
        let updated = self.usage.update(|current| {
            let next = usage::Tally {
                bytes: current.map_or(0, |t| t.bytes).saturating_add(bytes),
                scanned_at: current.map_or(0, |t| t.scanned_at),
            };
            due |= next.prune_due(self.max_size, now);
            Some(next)
        });
        if !updated.stored {
            self.usage.mark_stale();
            due = true;
        }
        due
    }

    /// The bytes the usage count holds now (tests of the downloads that count into it).
    #[cfg(test)]
    pub(crate) fn counted_bytes(&self) -> Option<u64> {
        self.usage.read().map(|t| t.bytes)
    }

    /// Whether an entry exists (one `stat`; not a promise that it is usable).
    pub fn contains(&self, key: &CacheKey) -> bool {
        std::fs::symlink_metadata(self.entry_path(key)).is_ok_and(|m| m.is_file())
    }

    /// The entry for `key` if there is a usable one. One whose record is missing or no longer
    /// matches its file (written to since) is evicted.
    pub fn lookup(&self, key: &CacheKey) -> Result<Option<Entry>> {
        let path = self.entry_path(key);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if let Some(record) = entry::Record::read(&file).map_err(|e| Error::io(&path, e))? {
            return Ok(Some(Entry { file, path, record }));
        }
        evict_if_same(&path, &file);
        Ok(None)
    }

    /// Evict an entry found corrupt while it was being used.
    pub fn evict(&self, entry: &Entry) {
        evict_if_same(&entry.path, &entry.file);
    }

    /// Find the entry for `key` or take the right to fetch it; [`Claim::Busy`] while another
    /// fetcher holds that right.
    pub fn claim(&self, key: &CacheKey) -> Result<Claim> {
        let partial = self.partial_path(key);
        loop {
            if let Some(entry) = self.lookup(key)? {
                return Ok(Claim::Ready(entry));
            }
            if let Some(shard) = partial.parent() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(shard)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .map_err(|e| Error::io(shard, e))?;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&partial)
                .map_err(|e| Error::io(&partial, e))?;
            if !sys::try_lock_exclusive(&file).map_err(|e| Error::io(&partial, e))? {
                return Ok(Claim::Busy);
            }
            // Locked, but the name may meanwhile have been renamed into an entry or removed by
            // the previous holder: only the file still at the temp name is the right to fetch.
            if !same_file(&partial, &file) {
                continue;
            }
            let entry = self.entry_path(key);
            if entry.exists() {
                // Completed between our lookup and our lock; our fresh temp file is litter.
                let _ = std::fs::remove_file(&partial);
                continue;
            }
            file.set_len(0).map_err(|e| Error::io(&partial, e))?;
            return Ok(Claim::Fetch(CacheWriter {
                file,
                partial,
                entry,
            }));
        }
    }

    /// Wait while another fetcher works on `key`: the entry once it is there, or the right to
    /// fetch when the other gave up (crashed, failed). `Ok(None)` when its temp file stopped
    /// growing for `stall` (a hung peer): the caller fetches without the cache.
    pub fn wait_for(
        &self,
        key: &CacheKey,
        stall: Duration,
        stop: &CancelToken,
    ) -> Result<Option<Claim>> {
        let partial = self.partial_path(key);
        let mut last_seen = None;
        let mut last_change = Instant::now();
        loop {
            match self.claim(key)? {
                Claim::Busy => {}
                other => return Ok(Some(other)),
            }
            stop.check()?;
            // A live fetcher writes, or touches the file while its claim waits (see
            // `CacheWriter::heartbeat`): either moves the size or the modification time.
            let seen = std::fs::metadata(&partial)
                .ok()
                .map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
            if seen != last_seen {
                last_seen = seen;
                last_change = Instant::now();
            } else if last_change.elapsed() >= stall {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Unlink `path` if it is still the file `file` is (an entry replaced since is left alone).
fn evict_if_same(path: &Path, file: &File) {
    if same_file(path, file) {
        let _ = std::fs::remove_file(path);
    }
}

fn same_file(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
        _ => false,
    }
}

fn read_mode(layout: &Path) -> Option<CloneMode> {
    match std::fs::read_to_string(layout.join("clone-mode"))
        .ok()?
        .trim()
    {
        "reflink" => Some(CloneMode::Reflink),
        "copy" => Some(CloneMode::Copy),
        _ => None,
    }
}

fn write_mode(layout: &Path, mode: CloneMode) -> Result<()> {
    let tmp = layout.join(format!("clone-mode.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", mode.name())).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, layout.join("clone-mode")).map_err(|e| Error::io(&tmp, e))
}

/// Probe the directory once: extended attributes are required (they hold each entry's record);
/// extent cloning decides the clone mode.
fn detect_mode(layout: &Path) -> Result<CloneMode> {
    let src_path = layout.join(format!("probe.{}.src", std::process::id()));
    let dest_path = layout.join(format!("probe.{}.dest", std::process::id()));
    let probe = || -> Result<CloneMode> {
        // The clone's source must be open for reading.
        let mut src = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&src_path)
            .map_err(|e| Error::io(&src_path, e))?;
        src.write_all(&[0x5a; 8192])
            .and_then(|()| src.sync_all())
            .map_err(|e| Error::io(&src_path, e))?;
        if let Err(e) = sys::set_xattr(&src, entry::RECORD_ATTRIBUTE, b"probe") {
            return Err(Error::InvalidArgument(format!(
                "content cache directory {}: its file system does not keep user extended \
                 attributes ({e}); choose another PERAGO_CACHE_DIR",
                layout.parent().unwrap_or(layout).display()
            )));
        }
        let dest = File::create(&dest_path).map_err(|e| Error::io(&dest_path, e))?;
        Ok(match sys::clone_file(&dest, &src) {
            Ok(()) => CloneMode::Reflink,
            Err(_) => CloneMode::Copy,
        })
    };
    let mode = probe();
    let _ = std::fs::remove_file(&src_path);
    let _ = std::fs::remove_file(&dest_path);
    mode
}

#[cfg(test)]
mod tests;
