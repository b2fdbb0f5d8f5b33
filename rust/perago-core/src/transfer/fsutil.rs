//! Local file-system steps of a download that must never escape the destination directory.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Create `dest` if needed and return its canonical path (so later joins cannot be redirected
/// by a symlink in the given spelling).
pub fn prepare_destination(dest: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let root = dest.canonicalize().map_err(|e| Error::io(dest, e))?;
    if !root.is_dir() {
        return Err(Error::io(
            dest,
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "destination is not a directory",
            ),
        ));
    }
    Ok(root)
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_space(path: &Path) -> Result<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::io(path, io::Error::from(io::ErrorKind::InvalidInput)))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid NUL-terminated string and stats points to writable memory of
    // the right type; statvfs initialises it on success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return Err(Error::io(path, io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::unnecessary_cast)] // field widths differ between libc targets
    Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Fail before downloading when `needed` bytes do not fit under `root`.
pub fn check_free_space(root: &Path, needed: u64) -> Result<()> {
    let available = free_space(root)?;
    if needed > available {
        return Err(Error::InsufficientSpace {
            path: root.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Create the relative directories `dirs` (parents listed first) under `root`. An existing entry
/// is accepted only if it is a real directory: a symlink planted inside the destination could
/// otherwise redirect later writes outside it.
pub fn create_directories(root: &Path, dirs: &[String]) -> Result<()> {
    for rel in dirs {
        let path = root.join(rel);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
                if !meta.file_type().is_dir() {
                    return Err(Error::io(
                        &path,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "exists and is not a directory (symlinks are never followed)",
                        ),
                    ));
                }
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(())
}

/// Create a new file; never follows or replaces an existing entry (`O_CREAT|O_EXCL|O_NOFOLLOW`).
pub fn create_new_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Allocate `len` bytes of blocks for a file about to be written sequentially, without changing
/// its size: one extent allocation up front instead of per-page delayed allocation while the
/// data streams in. Best effort: file systems without `fallocate` just allocate as they write.
#[cfg(target_os = "linux")]
pub fn reserve_blocks(file: &File, len: u64) {
    use std::os::fd::AsRawFd;
    if len >= RESERVE_MIN_BYTES {
        if let Ok(len) = libc::off_t::try_from(len) {
            // SAFETY: a valid open descriptor; the call only touches that file's allocation.
            unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
        }
    }
}

/// Elsewhere there is no size-preserving preallocation (`posix_fallocate` would set the size
/// early), so blocks are allocated as the data is written.
#[cfg(not(target_os = "linux"))]
pub fn reserve_blocks(_file: &File, _len: u64) {}

/// Where in `buffer` to receive bytes destined for file offset `offset`: where the buffer's
/// *address* has the offset's position within a page, so the write's source and destination
/// share their alignment. The kernel's copy into the page cache ran about five times slower when
/// they did not (AMD EPYC, ADR 0004; a heap buffer is 16 bytes off a page boundary, so the
/// address, not the index, must be aligned: ADR 0012). Buffers of a page or less are used whole.
pub fn page_aligned_start(buffer: &[u8], offset: u64) -> usize {
    const PAGE: u64 = 4096;
    let address = buffer.as_ptr() as u64 % PAGE;
    let at = (offset % PAGE + PAGE - address) % PAGE;
    if buffer.len() as u64 > at + PAGE {
        at as usize
    } else {
        0
    }
}

/// Below this size delayed allocation is already cheap and a syscall per file would not be.
#[cfg(target_os = "linux")]
const RESERVE_MIN_BYTES: u64 = 8 << 20;

/// Open an existing regular file for reading without following a final symlink.
pub fn open_for_upload(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("perago-fsutil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn symlinked_directories_inside_the_destination_are_refused() {
        let root = temp_dir("symlink-dir");
        let outside = temp_dir("symlink-outside");
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        let err = create_directories(&root, &["evil".into(), "evil/x".into()]).unwrap_err();
        assert!(err.to_string().contains("evil"), "{err}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn existing_files_and_symlinks_are_never_overwritten() {
        let root = temp_dir("excl");
        let outside = temp_dir("excl-outside");
        std::fs::write(outside.join("target"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.join("target"), root.join("link")).unwrap();
        assert!(create_new_file(&root.join("link")).is_err());
        assert_eq!(std::fs::read(outside.join("target")).unwrap(), b"keep");
        std::fs::write(root.join("plain"), b"x").unwrap();
        assert!(create_new_file(&root.join("plain")).is_err());
        assert!(open_for_upload(&root.join("link")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn free_space_is_reported_and_checked() {
        let root = temp_dir("space");
        assert!(free_space(&root).unwrap() > 0);
        let err = check_free_space(&root, u64::MAX).unwrap_err();
        assert!(matches!(err, Error::InsufficientSpace { .. }));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
