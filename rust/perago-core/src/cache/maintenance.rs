//! Whole-cache operations: status, pruning to a size (least recently used first) and
//! verification of every entry's bytes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::entry::Record;
use super::{same_file, sys, ContentCache, PARTIAL_SUFFIX};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStatus {
    pub entries: u64,
    pub bytes: u64,
    /// Temp files of fetches in progress, or left by a crashed one.
    pub partials: u64,
    pub partial_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub evicted: u64,
    pub evicted_bytes: u64,
    /// Abandoned temp files removed (their fetcher is gone).
    pub partials_removed: u64,
    pub entries: u64,
    pub bytes: u64,
    /// Another process was pruning: nothing was done.
    pub skipped: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub bytes: u64,
    /// Entries whose bytes, record or size did not match: evicted.
    pub corrupt: u64,
}

struct Listed {
    path: PathBuf,
    size: u64,
    /// Access time (ns): the recency [`super::Entry::touch`] maintains.
    used_ns: i128,
}

/// Progress of a whole-cache operation: `(done, total)` in entries.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

impl ContentCache {
    fn scan(&self, cancel: &CancelToken) -> Result<(Vec<Listed>, Vec<Listed>)> {
        let mut entries = Vec::new();
        let mut partials = Vec::new();
        let shards = match std::fs::read_dir(&self.objects) {
            Ok(shards) => shards,
            Err(e) => return Err(Error::io(&self.objects, e)),
        };
        for shard in shards {
            cancel.check()?;
            let shard = shard.map_err(|e| Error::io(&self.objects, e))?.path();
            let Ok(names) = std::fs::read_dir(&shard) else {
                continue; // removed meanwhile, or not a directory
            };
            for name in names.flatten() {
                let path = name.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let listed = Listed {
                    size: meta.len(),
                    used_ns: i128::from(meta.atime()) * 1_000_000_000
                        + i128::from(meta.atime_nsec()),
                    path,
                };
                if name.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX) {
                    partials.push(listed);
                } else {
                    entries.push(listed);
                }
            }
        }
        Ok((entries, partials))
    }

    pub fn status(&self, cancel: &CancelToken) -> Result<CacheStatus> {
        let (entries, partials) = self.scan(cancel)?;
        Ok(CacheStatus {
            entries: entries.len() as u64,
            bytes: entries.iter().map(|e| e.size).sum(),
            partials: partials.len() as u64,
            partial_bytes: partials.iter().map(|e| e.size).sum(),
        })
    }

    /// Evict least recently used entries until at most `target` bytes remain, and remove temp
    /// files nobody holds. With `wait` false, returns at once (`skipped`) if another process
    /// is pruning. An entry a running attempt is copying stays readable to it: eviction only
    /// unlinks the name.
    pub fn prune(
        &self,
        target: u64,
        wait: bool,
        progress: Progress<'_>,
        cancel: &CancelToken,
    ) -> Result<PruneReport> {
        let lock_path = self.objects.with_file_name("prune.lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        loop {
            if sys::try_lock_exclusive(&lock).map_err(|e| Error::io(&lock_path, e))? {
                break;
            }
            if !wait {
                return Ok(PruneReport {
                    skipped: true,
                    ..PruneReport::default()
                });
            }
            cancel.check()?;
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let started = super::usage::unix_now();
        let stale = self.usage.claim_stale();
        let counted_before = self.usage.read();
        let (mut entries, partials) = self.scan(cancel)?;
        let mut report = PruneReport::default();
        for partial in &partials {
            if remove_if_unheld(&partial.path) {
                report.partials_removed += 1;
            }
        }
        entries.sort_by_key(|e| e.used_ns);
        let mut bytes: u64 = entries.iter().map(|e| e.size).sum();
        let total = entries.len() as u64;
        let mut kept = total;
        for (done, entry) in entries.iter().enumerate() {
            if bytes <= target {
                break;
            }
            cancel.check()?;
            if std::fs::remove_file(&entry.path).is_ok() {
                bytes -= entry.size;
                kept -= 1;
                report.evicted += 1;
                report.evicted_bytes += entry.size;
            }
            progress(done as u64 + 1, total);
        }
        progress(total, total);
        let settled = self.usage.update(|counted_now| {
            Some(super::usage::Tally::settled(
                bytes,
                counted_before,
                counted_now,
                started,
            ))
        });
        if settled.stored {
            stale.settled();
        } else {
            self.usage.mark_stale();
        }
        report.entries = kept;
        report.bytes = bytes;
        Ok(report)
    }

    /// Re-hash every entry and evict each whose bytes no longer match its record.
    pub fn verify(
        &self,
        threads: Option<usize>,
        progress: Progress<'_>,
        cancel: &CancelToken,
    ) -> Result<VerifyReport> {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicU64, Ordering};
        let (entries, _) = self.scan(cancel)?;
        let total = entries.len() as u64;
        let done = AtomicU64::new(0);
        let corrupt = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let pool = crate::pool::pool(threads)?;
        pool.install(|| {
            entries.par_iter().try_for_each(|listed| -> Result<()> {
                cancel.check()?;
                match verify_one(&listed.path) {
                    Ok(Some(size)) => {
                        bytes.fetch_add(size, Ordering::Relaxed);
                    }
                    Ok(None) => {
                        corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {} // vanished (evicted meanwhile)
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok(())
            })
        })?;
        Ok(VerifyReport {
            checked: total,
            bytes: bytes.load(Ordering::Relaxed),
            corrupt: corrupt.load(Ordering::Relaxed),
        })
    }
}

/// `Some(size)` when the entry's bytes match its record; `None` (after evicting it) when not.
fn verify_one(path: &Path) -> std::io::Result<Option<u64>> {
    // Reading every entry must not make them all "recently used" (strictatime, relatime).
    let open = |noatime: libc::c_int| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | noatime)
            .open(path)
    };
    let file = match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0)?, // not the owner
        other => other?,
    };
    let matches = match Record::read(&file)? {
        None => false,
        Some(record) => {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(&file)?;
            *hasher.finalize().as_bytes() == record.blake3 && file.metadata()?.len() == record.size
        }
    };
    if matches {
        return Ok(Some(file.metadata()?.len()));
    }
    if same_file(path, &file) {
        let _ = std::fs::remove_file(path);
    }
    Ok(None)
}

/// Remove a temp file whose fetcher is gone (nobody holds its lock). A fetcher that opened it
/// just before sees, once it holds the lock, that the name no longer points at its file, and
/// starts again under a new one.
fn remove_if_unheld(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match sys::try_lock_exclusive(&file) {
        Ok(true) if same_file(path, &file) => std::fs::remove_file(path).is_ok(),
        _ => false,
    }
}
