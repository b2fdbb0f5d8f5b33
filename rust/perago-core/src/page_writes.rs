//! Writes into the page cache in slices of [`WRITE_SLICE`] bytes.
//!
//! ext4 (Linux 6.16 and later) sizes a new page-cache folio after the write that creates it: a
//! 128 KiB write (a full ureq input buffer) allocates 128 KiB folios, which need free memory of
//! that order. On a VM whose
//! balloon reports free pages to the host (`virtio_balloon` free page reporting: Firecracker
//! here), memory just freed by deleting files is mostly fragmented and what is left in large
//! blocks has been handed back, so every large folio costs host faults. Measured on this machine
//! (`perago bench download --files 0 --repeat 5`, 2 x 1 GiB, perago's median against lakectl's
//! in the same run, six runs of each variant, variants alternating): received chunks written
//! whole, 0.63-1.12x lakectl (median 0.88x); in 64 KiB slices, 0.92-1.44x (median 1.10x); in
//! 32 KiB slices, 0.83-1.18x (median 0.92x).
//! lakectl (Go's 32 KiB copy buffer) never makes large folios. See ADR 0004.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// The largest single write into a file being filled.
pub const WRITE_SLICE: usize = 64 << 10;

/// `file.write_all(data)`, one [`WRITE_SLICE`] at a time.
pub fn write_all(mut file: &File, data: &[u8]) -> io::Result<()> {
    data.chunks(WRITE_SLICE)
        .try_for_each(|slice| file.write_all(slice))
}

/// `file.write_all_at(data, offset)`, one [`WRITE_SLICE`] at a time.
pub fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    data.chunks(WRITE_SLICE)
        .zip((offset..).step_by(WRITE_SLICE))
        .try_for_each(|(slice, at)| file.write_all_at(slice, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// An open file with no name (removed at once), in the system's temp directory.
    fn scratch_file() -> File {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("perago-page-writes-{}-{n}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    fn contents(file: &mut File) -> Vec<u8> {
        let mut out = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn sliced_writes_put_every_byte_in_place() {
        for len in [
            0,
            1,
            WRITE_SLICE - 1,
            WRITE_SLICE,
            WRITE_SLICE + 1,
            5 * WRITE_SLICE + 17,
        ] {
            let data = pattern(len);
            let mut appended = scratch_file();
            write_all(&appended, b"head").unwrap();
            write_all(&appended, &data).unwrap();
            assert_eq!(
                contents(&mut appended),
                [b"head".as_slice(), &data].concat()
            );

            let mut positioned = scratch_file();
            write_all_at(&positioned, &data, 3).unwrap();
            let mut expected = vec![0u8; 3];
            expected.extend_from_slice(&data);
            if len == 0 {
                expected.clear();
            }
            assert_eq!(contents(&mut positioned), expected);
        }
    }
}
