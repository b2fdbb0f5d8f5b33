//! One cache entry: a read-only file whose extended attribute records its size, modification
//! time and BLAKE3, written under a locked temp name and renamed into place when complete.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::sys;
use crate::error::{Error, Result};
use crate::page_writes;

/// The attribute holding an entry's [`Record`]. It is set on the temp file before the rename, so
/// an entry never exists without it.
pub(super) const RECORD_ATTRIBUTE: &str = "user.perago.cache";
const RECORD_TAG: &[u8; 4] = b"pcv1";
const RECORD_LEN: usize = 4 + 8 + 8 + 32;

/// What the cache knows of an entry's bytes, recorded when they were verified on the way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub size: u64,
    /// Modification time (ns) when recorded: any later write through the file system moves it.
    pub mtime_ns: i64,
    pub blake3: [u8; 32],
}

impl Record {
    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..4].copy_from_slice(RECORD_TAG);
        out[4..12].copy_from_slice(&self.size.to_le_bytes());
        out[12..20].copy_from_slice(&self.mtime_ns.to_le_bytes());
        out[20..].copy_from_slice(&self.blake3);
        out
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != RECORD_LEN || &raw[..4] != RECORD_TAG {
            return None;
        }
        Some(Self {
            size: u64::from_le_bytes(raw[4..12].try_into().ok()?),
            mtime_ns: i64::from_le_bytes(raw[12..20].try_into().ok()?),
            blake3: raw[20..].try_into().ok()?,
        })
    }

    /// The record of an open entry, if it has one that still matches the file's size and
    /// modification time (anything else is not a usable entry).
    pub(super) fn read(file: &File) -> std::io::Result<Option<Self>> {
        let mut raw = [0u8; RECORD_LEN + 1];
        let Some(n) = sys::get_xattr(file, RECORD_ATTRIBUTE, &mut raw)? else {
            return Ok(None);
        };
        let Some(record) = Self::decode(&raw[..n]) else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        let unchanged =
            meta.is_file() && meta.len() == record.size && mtime_ns(&meta) == record.mtime_ns;
        Ok(unchanged.then_some(record))
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// The largest page-aligned, whole-pages part of `buffer`: the kernel's copy into the page
/// cache is several times slower from a source that is not page-aligned (measured here: 71 %
/// of a warm materialisation's time in `copy_folio_from_iter_atomic` with a heap buffer 16
/// bytes off a page boundary).
fn page_aligned(buffer: &mut [u8]) -> &mut [u8] {
    const PAGE: usize = 4096;
    let skip = buffer.as_ptr().align_offset(PAGE);
    if buffer.len() < skip + PAGE {
        return buffer;
    }
    let pages = (buffer.len() - skip) / PAGE;
    &mut buffer[skip..skip + pages * PAGE]
}

/// An entry opened for reading. The open file keeps its bytes readable even if the entry is
/// evicted meanwhile (eviction is an unlink), so a materialisation in progress is never cut short.
pub struct Entry {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) record: Record,
}

impl Entry {
    pub fn size(&self) -> u64 {
        self.record.size
    }

    pub fn blake3(&self) -> blake3::Hash {
        blake3::Hash::from_bytes(self.record.blake3)
    }

    /// Copy the entry into `dest` (an empty file) while hashing what is read; `Ok(false)` when
    /// the bytes no longer match the record (`dest` is then left empty).
    pub(crate) fn copy_verified(
        &self,
        dest: &File,
        dest_path: &Path,
        buffer: &mut [u8],
    ) -> Result<bool> {
        let mut src = &self.file;
        src.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut out = dest;
        let buffer = page_aligned(buffer);
        let mut hasher = blake3::Hasher::new();
        let mut copied = 0u64;
        loop {
            let n = match src.read(buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&self.path, e)),
            };
            hasher.update(&buffer[..n]);
            page_writes::write_all(dest, &buffer[..n]).map_err(|e| Error::io(dest_path, e))?;
            copied += n as u64;
        }
        if copied == self.record.size && *hasher.finalize().as_bytes() == self.record.blake3 {
            return Ok(true);
        }
        dest.set_len(0)
            .and_then(|()| out.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|e| Error::io(dest_path, e))?;
        Ok(false)
    }

    /// Share the entry's extents with `dest` (an empty file on the same file system).
    pub(crate) fn clone_to(&self, dest: &File) -> std::io::Result<()> {
        sys::clone_file(dest, &self.file)
    }

    /// Mark the entry recently used (its access time), for eviction order. Best effort.
    pub(crate) fn touch(&self) {
        let _ = sys::touch_access_time(&self.file);
    }
}

/// The right, held as an exclusive lock on the temp file, to fetch one object into the cache.
/// Dropped without [`CacheWriter::commit`], the temp file stays behind unlocked and the next
/// claimant starts it over.
pub struct CacheWriter {
    pub(super) file: File,
    pub(super) partial: PathBuf,
    pub(super) entry: PathBuf,
}

impl CacheWriter {
    /// The temp file being written (positioned writes are fine: parts of a ranged fetch).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Show waiting claimants that this fetcher is alive (a claim held before its bytes move:
    /// a ranged file queued behind others). Best effort.
    pub fn heartbeat(&self) {
        let _ = self
            .file
            .set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()));
    }

    /// Start over (a retried fetch).
    pub fn reset(&self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        (&self.file).seek(SeekFrom::Start(0)).map(|_| ())
    }

    /// Publish the temp file as the entry for its key: its size must be `size`, and `blake3`
    /// must be the hash of exactly the bytes written (the caller hashed them as they streamed).
    /// On failure the temp file is removed (and the claim released).
    pub fn commit(self, size: u64, blake3: blake3::Hash) -> Result<()> {
        let outcome = self.publish(size, blake3);
        if outcome.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        outcome
    }

    fn publish(&self, size: u64, blake3: blake3::Hash) -> Result<()> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.partial, e))?;
        if meta.len() != size {
            return Err(Error::InvalidArgument(format!(
                "cache entry {} has {} bytes, expected {size}",
                self.partial.display(),
                meta.len()
            )));
        }
        let record = Record {
            size,
            mtime_ns: mtime_ns(&meta),
            blake3: *blake3.as_bytes(),
        };
        sys::set_xattr(&self.file, RECORD_ATTRIBUTE, &record.encode())
            .map_err(|e| Error::io(&self.partial, e))?;
        std::fs::rename(&self.partial, &self.entry).map_err(|e| Error::io(&self.entry, e))?;
        // Read-only once it is an entry (a temp file left read-only by a crash would refuse
        // the next claimant's read-write open). Best effort: the record guards the bytes.
        let _ = self
            .file
            .set_permissions(std::fs::Permissions::from_mode(0o400));
        Ok(())
    }

    /// Give the fetch up and remove the temp file (a failed or abandoned insert).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_other_bytes() {
        let record = Record {
            size: 123,
            mtime_ns: -5,
            blake3: [7; 32],
        };
        assert_eq!(Record::decode(&record.encode()), Some(record));
        assert_eq!(Record::decode(&record.encode()[..RECORD_LEN - 1]), None);
        let mut other = record.encode();
        other[0] = b'x';
        assert_eq!(Record::decode(&other), None);
    }
}
