//! How one download uses the host's content cache: which files it already holds, materialising
//! them, and the counters the attempt reports.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache::{CacheKey, CloneMode, ContentCache, Entry};
use crate::error::Result;

/// What a download took from the cache and what it fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Files materialised from cache entries, and their bytes.
    pub hits: u64,
    pub hit_bytes: u64,
    /// Files fetched from lakeFS or the object store, and their bytes.
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Fetched files that entered the cache.
    pub inserted: u64,
    /// Files another process was fetching when this one wanted them (waited for, not fetched).
    pub waited: u64,
    /// Entries whose bytes no longer matched their record: evicted and fetched again.
    pub corrupt: u64,
    /// Entries the download's prune evicted to keep the cache within its size.
    pub evicted: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    hit_bytes: AtomicU64,
    inserted: AtomicU64,
    inserted_bytes: AtomicU64,
    waited: AtomicU64,
    corrupt: AtomicU64,
}

/// The cache side of one download.
pub(super) struct CacheUse {
    pub(super) cache: Arc<ContentCache>,
    /// One key per planned file (`None`: lakeFS gave nothing to key on).
    keys: Vec<Option<CacheKey>>,
    /// Fetched objects enter the cache (off when it cannot hold them).
    pub(super) inserting: bool,
    reflink: AtomicBool,
    counters: Counters,
    /// Files another process was fetching on the first pass, revisited at the end.
    pub(super) deferred: Mutex<Vec<u32>>,
    /// Whether the inserts were counted into the cache's usage (see the `Drop`).
    counted: AtomicBool,
}

impl Drop for CacheUse {
    /// A download that ended early (an error before its transfers, a panic) counts what it
    /// inserted too; one that ran counted already, and pruned if due (`count_after_failure`).
    fn drop(&mut self) {
        if self.counters.inserted_bytes.load(Ordering::Relaxed) > 0 {
            let _ = self.count_inserts();
        }
    }
}

impl CacheUse {
    pub(super) fn new(cache: Arc<ContentCache>) -> Self {
        Self {
            reflink: AtomicBool::new(cache.mode() == CloneMode::Reflink),
            cache,
            keys: Vec::new(),
            inserting: true,
            counters: Counters::default(),
            deferred: Mutex::new(Vec::new()),
            counted: AtomicBool::new(false),
        }
    }

    /// Record the next planned file's key; whether an entry exists for it now.
    pub(super) fn plan(&mut self, physical_address: &str, checksum: &str, size: u64) -> bool {
        let key = CacheKey::for_object(physical_address, checksum, size)
            .filter(|_| size <= self.cache.max_size());
        self.keys.push(key);
        key.is_some_and(|key| self.cache.contains(&key))
    }

    pub(super) fn key(&self, index: usize) -> Option<&CacheKey> {
        self.keys.get(index).and_then(Option::as_ref)
    }

    /// Write `entry` into `dest` (new and empty): cloned where the file system shares extents,
    /// else copied and verified as it is read. `Ok(None)` when the entry turned out corrupt (it
    /// is evicted and `dest` left empty); else the BLAKE3 of what `dest` now holds.
    pub(super) fn materialise(
        &self,
        entry: &Entry,
        dest: &File,
        dest_path: &Path,
        buffer: &mut [u8],
    ) -> Result<Option<blake3::Hash>> {
        if self.reflink.load(Ordering::Relaxed) {
            match entry.clone_to(dest) {
                Ok(()) => return Ok(Some(self.hit(entry))),
                // Another file system (workspace and cache apart), or one that refuses this
                // file: copy from now on.
                Err(_) => self.reflink.store(false, Ordering::Relaxed),
            }
        }
        if entry.copy_verified(dest, dest_path, buffer)? {
            Ok(Some(self.hit(entry)))
        } else {
            self.cache.evict(entry);
            self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
    }

    fn hit(&self, entry: &Entry) -> blake3::Hash {
        entry.touch();
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .hit_bytes
            .fetch_add(entry.size(), Ordering::Relaxed);
        entry.blake3()
    }

    pub(super) fn waited(&self) {
        self.counters.waited.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn inserted(&self, bytes: u64) {
        self.counters.inserted.fetch_add(1, Ordering::Relaxed);
        self.counters
            .inserted_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Count what this download inserted into the cache's usage (once, nothing included: the
    /// count may be due for its hourly scan or marked stale); whether a prune is due.
    pub(super) fn count_inserts(&self) -> bool {
        if self.counted.swap(true, Ordering::AcqRel) {
            return false;
        }
        let bytes = self.counters.inserted_bytes.load(Ordering::Relaxed);
        self.cache.count_inserted(bytes)
    }

    pub(super) fn defer(&self, index: usize) {
        self.deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(index as u32);
    }

    pub(super) fn stats(&self, fetched: &FetchCounter) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            hit_bytes: c.hit_bytes.load(Ordering::Relaxed),
            inserted: c.inserted.load(Ordering::Relaxed),
            waited: c.waited.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            ..fetched.stats()
        }
    }
}

/// Files and bytes a download fetched over the network (with or without a cache).
#[derive(Default)]
pub(super) struct FetchCounter {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl FetchCounter {
    pub(super) fn add(&self, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            fetched: self.files.load(Ordering::Relaxed),
            fetched_bytes: self.bytes.load(Ordering::Relaxed),
            ..CacheStats::default()
        }
    }
}

impl CacheUse {
    /// Disk space the download needs under `root`: the workspace bytes, plus what it will
    /// insert when the cache shares the file system. A cache that cannot also hold what is
    /// fetched is left alone (nothing inserted) rather than failing the download.
    pub(super) fn space_needed(
        &mut self,
        root: &Path,
        total: u64,
        fetch_bytes: u64,
    ) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let device = |path: &Path| std::fs::metadata(path).map(|m| m.dev()).ok();
        if device(root).is_some() && device(root) == device(self.cache.dir()) {
            let with_cache = total.saturating_add(fetch_bytes);
            if super::fsutil::check_free_space(root, with_cache).is_ok() {
                return Ok(with_cache);
            }
            self.inserting = false;
        } else if super::fsutil::free_space(self.cache.dir())? < fetch_bytes {
            self.inserting = false;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_that_ends_without_its_report_still_counts_its_inserts() {
        let dir = std::env::temp_dir().join(format!("perago-cache-use-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = Arc::new(ContentCache::open(&dir, 1 << 20).unwrap());
        let cancel = crate::cancel::CancelToken::new();
        cache.prune(1 << 20, true, &|_, _| {}, &cancel).unwrap();
        assert_eq!(cache.counted_bytes(), Some(0));
        let failed = CacheUse::new(Arc::clone(&cache));
        failed.inserted(7);
        failed.inserted(5);
        drop(failed); // a download that failed or was cancelled after two inserts
        assert_eq!(cache.counted_bytes(), Some(12));
        let reported = CacheUse::new(Arc::clone(&cache));
        reported.inserted(1);
        assert!(!reported.count_inserts());
        drop(reported); // counted once, not again
        assert_eq!(cache.counted_bytes(), Some(13));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
