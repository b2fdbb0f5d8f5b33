//! The few system calls the cache needs beyond `std`: advisory locks, extended attributes,
//! extent cloning and setting an access time.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `FICLONE` = `_IOW(0x94, 9, int)`: make `dest` share all of `src`'s extents.
#[cfg(target_os = "linux")]
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Take an exclusive `flock` without waiting; `Ok(false)` when another open file holds it.
pub(super) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: a valid open descriptor; flock only changes that file's lock state.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Read extended attribute `name` of an open file into `buffer`; `Ok(None)` when it is absent.
pub(super) fn get_xattr(file: &File, name: &str, buffer: &mut [u8]) -> io::Result<Option<usize>> {
    let name = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: valid descriptor, NUL-terminated name, and a buffer of the length passed.
    let n = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if let Ok(n) = usize::try_from(n) {
        return Ok(Some(n));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA | libc::ERANGE) => Ok(None),
        _ => Err(err),
    }
}

pub(super) fn set_xattr(file: &File, name: &str, value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: valid descriptor, NUL-terminated name, and a value of the length passed.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make `dest` (an empty file) share `src`'s extents; an error when the file system (or the pair,
/// across file systems) cannot.
#[cfg(target_os = "linux")]
pub(super) fn clone_file(dest: &File, src: &File) -> io::Result<()> {
    // SAFETY: both are valid descriptors; FICLONE takes the source descriptor as its argument.
    let rc = unsafe { libc::ioctl(dest.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn clone_file(_dest: &File, _src: &File) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Set the file's access time to now and leave its modification time alone: the cache's
/// recency, which survives `noatime` mounts because it is set explicitly.
pub(super) fn touch_access_time(file: &File) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    // SAFETY: valid descriptor and a two-element timespec array as futimens requires.
    if unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
