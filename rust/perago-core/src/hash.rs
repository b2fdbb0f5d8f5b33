//! BLAKE3 content hashing of single files.
//!
//! Small files are read with one `read` into a thread-local buffer (no per-file allocation);
//! large files are memory-mapped and hashed with rayon in chunks, checking for cancellation
//! between chunks so Ctrl-C stays prompt even on multi-GiB files.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Files at least this large are memory-mapped and hashed with rayon; smaller ones are read.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// Bytes hashed between two cancellation checks on the mmap path.
const MMAP_CHUNK: usize = 64 << 20;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Open for hashing without following symlinks and, where permitted, without touching atime.
fn open_for_hash(path: &Path) -> Result<File> {
    let base = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    open_without_atime(base, |flags| {
        OpenOptions::new().read(true).custom_flags(flags).open(path)
    })
    .map_err(|e| Error::io_or_vanished(path, e))
}

/// `open(base | O_NOATIME)`, falling back to `open(base)` where `O_NOATIME` is refused (`EPERM`
/// on files owned by another user); after the first refusal only the plain open is tried.
fn open_without_atime(
    base: libc::c_int,
    open: impl Fn(libc::c_int) -> std::io::Result<File>,
) -> std::io::Result<File> {
    if O_NOATIME != 0 && !NOATIME_REFUSED.load(Ordering::Relaxed) {
        match open(base | O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                NOATIME_REFUSED.store(true, Ordering::Relaxed);
            }
            opened => return opened,
        }
    }
    open(base)
}

/// BLAKE3 of a regular file whose size was just observed as `size_hint` (it may still change).
pub fn hash_path(path: &Path, size_hint: u64, cancel: &CancelToken) -> Result<blake3::Hash> {
    let file = open_for_hash(path)?;
    hash_open_file(&file, size_hint, cancel, &|| path.to_path_buf())
}

/// `O_NOATIME` is Linux's; elsewhere reads update atime as the mount options say.
#[cfg(target_os = "linux")]
const O_NOATIME: libc::c_int = libc::O_NOATIME;
#[cfg(not(target_os = "linux"))]
const O_NOATIME: libc::c_int = 0;

/// Set once `O_NOATIME` was refused (files owned by another user): later opens skip the
/// doomed first attempt instead of paying two `openat`s per file.
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Open `name` inside the directory `dir` for reading: no path resolution from the root, no
/// symlink following (`ELOOP` if `name` is a link), no atime update where permitted, and never
/// blocking (a fifo raced in place of a file opens instead of waiting for a writer).
pub(crate) fn open_in_dir(dir: &File, name: &OsStr) -> std::io::Result<File> {
    let bytes = name.as_bytes();
    let mut c_name = [0u8; 256];
    if bytes.len() >= c_name.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    c_name[..bytes.len()].copy_from_slice(bytes);
    let open = |flags: libc::c_int| {
        // SAFETY: `c_name` is NUL-terminated (names contain no NUL) and outlives the call;
        // `dir` is an open directory descriptor borrowed for the call.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr().cast(), flags) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: `fd` was just returned by openat and is owned by nobody else.
            Ok(unsafe { File::from_raw_fd(fd) })
        }
    };
    let base = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    open_without_atime(base, open)
}

/// Hash an opened regular file; `path` names it in errors only (built lazily).
pub(crate) fn hash_open_file(
    file: &File,
    size_hint: u64,
    cancel: &CancelToken,
    path: &dyn Fn() -> PathBuf,
) -> Result<blake3::Hash> {
    if size_hint >= MMAP_THRESHOLD {
        return hash_mapped(file, &path(), cancel);
    }
    READ_BUFFER.with(|cell| {
        let mut buf = cell.borrow_mut();
        // One spare byte detects a file that grew since it was stat'ed.
        let want = size_hint as usize + 1;
        if buf.len() < want {
            buf.resize(want.max(64 << 10), 0);
        }
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                let grown = buf.len() * 2;
                buf.resize(grown, 0);
            }
            let requested = buf.len() - filled;
            match (&*file).read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    // A short read that lands exactly on the stat'ed size is EOF for a regular
                    // file: skip the extra read(2) that would return 0.
                    if n < requested && filled as u64 == size_hint {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path(), e)),
            }
        }
        Ok(blake3::hash(&buf[..filled]))
    })
}

fn hash_mapped(file: &File, path: &Path, cancel: &CancelToken) -> Result<blake3::Hash> {
    // SAFETY: the map is read-only and dropped before returning. A file truncated concurrently
    // by another process could fault (SIGBUS); the same trade-off as b3sum's and blake3's
    // mmap paths, accepted for large files where reading would cost a copy.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    for chunk in map.chunks(MMAP_CHUNK) {
        cancel.check()?;
        hasher.update_rayon(chunk);
    }
    Ok(hasher.finalize())
}

/// Hash one regular file with BLAKE3 and return the lowercase hex digest.
pub fn hash_file(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let digest = hash_path(path, len, &CancelToken::new())?;
    Ok(digest.to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hashes_match_reference_digest() {
        let dir = std::env::temp_dir().join(format!("perago-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"abc")
            .unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            blake3::hash(b"abc").to_hex().to_string()
        );
        // A stale (too small or too large) size hint still hashes the real content.
        for hint in [0, 1, 2 << 20] {
            let digest = hash_path(&path, hint, &CancelToken::new()).unwrap();
            assert_eq!(digest, blake3::hash(b"abc"));
        }
        let missing = hash_file(&dir.join("missing"));
        assert!(matches!(missing, Err(Error::Io { .. })));
        let vanished = hash_path(&dir.join("missing"), 3, &CancelToken::new());
        assert!(matches!(vanished, Err(Error::Vanished { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_files_hash_like_small_ones_and_cancel() {
        let dir = std::env::temp_dir().join(format!("perago-hash-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big");
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let digest = hash_path(&path, data.len() as u64, &CancelToken::new()).unwrap();
        assert_eq!(digest, blake3::hash(&data));
        let cancel = CancelToken::new();
        cancel.cancel();
        let cancelled = hash_path(&path, data.len() as u64, &cancel);
        assert!(matches!(cancelled, Err(Error::Cancelled)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
