//! Receiving a whole-object body straight from its socket into the file, hashing each chunk
//! on the way: one copy out of the kernel per byte instead of two (ureq reads into its own
//! buffer and copies out of it), and one `read` per buffer-full.
//!
//! Rejected: `splice` socket → pipe → file with BLAKE3 over a mapping of the page cache. It
//! avoids the copy to user space, but the kernel's pipe-to-page-cache copy ran at a third of the
//! speed of `write` from a user buffer on this machine (misaligned `rep movsb` on AMD EPYC), so
//! it cost more CPU than it saved (ADR 0004).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::fsutil::page_aligned_start;
use super::progress::TransferProgress;
use crate::cancel::CancelToken;
use crate::error::Error;
use crate::lakefs::retry::{AttemptError, Failure};
use crate::lakefs::socket_get::{describe_io, SocketBody};

/// Write the body's `content_length` bytes to `file` from offset 0 and return their BLAKE3.
///
/// Each read lands in the buffer at the file offset's position within a page
/// ([`page_aligned_start`]). What a read returns is written
/// at once: the socket is drained as fast as it fills, and the sender never stalls on a full
/// window while a large block is hashed and written (measured: filling whole 1 MiB blocks
/// first cost more CPU on both sides).
pub(crate) fn receive(
    mut body: SocketBody,
    file: &File,
    path: &Path,
    buffer: &mut [u8],
    progress: &TransferProgress,
    stop: &CancelToken,
) -> Result<blake3::Hash, AttemptError> {
    let mut received = 0u64;
    let outcome = receive_counted(&mut body, file, path, buffer, progress, stop, &mut received);
    if outcome.is_err() {
        progress.sub_bytes(received);
    }
    outcome
}

fn receive_counted(
    body: &mut SocketBody,
    file: &File,
    path: &Path,
    buffer: &mut [u8],
    progress: &TransferProgress,
    stop: &CancelToken,
    received: &mut u64,
) -> Result<blake3::Hash, AttemptError> {
    let local = |e: io::Error| AttemptError::Fatal(Error::io(path, e));
    let expected = body.content_length;
    let mut hasher = blake3::Hasher::new();

    hasher.update(&body.early_bytes);
    file.write_all_at(&body.early_bytes, 0).map_err(local)?;
    *received = body.early_bytes.len() as u64;
    progress.add_bytes(*received);

    while *received < expected {
        stop.check()?;
        let at = page_aligned_start(buffer.len(), *received);
        let want = (expected - *received).min((buffer.len() - at) as u64) as usize;
        let n = match body.socket.read(&mut buffer[at..at + want]) {
            Ok(0) => {
                return Err(Failure::transient(
                    None,
                    format!("connection closed after {} of {expected} bytes", *received),
                )
                .into())
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::transient(None, describe_io(&e)).into()),
        };
        let chunk = &buffer[at..at + n];
        hasher.update(chunk);
        file.write_all_at(chunk, *received).map_err(local)?;
        *received += n as u64;
        progress.add_bytes(n as u64);
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    fn temp_file(name: &str) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "perago-socket-receive-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let file = crate::transfer::fsutil::create_new_file(&path).unwrap();
        (path, file)
    }

    /// A connected socket whose peer writes `bytes` and then closes.
    fn socket_sending(bytes: Vec<u8>) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            // Odd-sized writes, so splice rounds and mapping windows never line up.
            for piece in bytes.chunks(777_777) {
                if peer.write_all(piece).is_err() {
                    return;
                }
            }
        });
        TcpStream::connect(address).unwrap()
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    #[test]
    fn the_body_and_its_early_bytes_land_in_the_file_and_are_hashed() {
        let data = content(10 * 1024 * 1024 + 12_345);
        // (early bytes, buffer): a short head overflow, and one longer than the buffer.
        for (case, (early, buffer_len)) in [(37, 1 << 20), (10_000, 4096)].into_iter().enumerate() {
            let (path, file) = temp_file(&format!("whole-{case}"));
            let body = SocketBody {
                socket: socket_sending(data[early..].to_vec()),
                early_bytes: data[..early].to_vec(),
                content_length: data.len() as u64,
            };
            let progress = TransferProgress::new();
            let mut buffer = vec![0u8; buffer_len];
            let hash = receive(
                body,
                &file,
                &path,
                &mut buffer,
                &progress,
                &CancelToken::new(),
            )
            .unwrap();
            assert_eq!(hash, blake3::hash(&data));
            assert_eq!(std::fs::read(&path).unwrap(), data);
            assert_eq!(progress.snapshot().bytes_done, data.len() as u64);
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn a_body_cut_short_is_a_transient_failure_and_its_progress_is_undone() {
        let data = content(3 * 1024 * 1024);
        let (path, file) = temp_file("short");
        let body = SocketBody {
            socket: socket_sending(data[..data.len() - 10].to_vec()),
            early_bytes: Vec::new(),
            content_length: data.len() as u64,
        };
        let progress = TransferProgress::new();
        let err = receive(
            body,
            &file,
            &path,
            &mut [0u8; 65_536],
            &progress,
            &CancelToken::new(),
        )
        .unwrap_err();
        match err {
            AttemptError::Remote(f) => {
                assert!(f.transient);
                assert!(f.detail.contains("connection closed after"), "{}", f.detail);
            }
            AttemptError::Fatal(e) => panic!("expected a transient failure, got {e}"),
        }
        assert_eq!(progress.snapshot().bytes_done, 0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_cancelled_receive_stops_with_the_cancellation() {
        let data = content(2 * 1024 * 1024);
        let (path, file) = temp_file("cancel");
        let body = SocketBody {
            socket: socket_sending(data.clone()),
            early_bytes: Vec::new(),
            content_length: data.len() as u64,
        };
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = receive(
            body,
            &file,
            &path,
            &mut [0u8; 4096],
            &TransferProgress::new(),
            &cancel,
        )
        .unwrap_err();
        assert!(matches!(err, AttemptError::Fatal(Error::Cancelled)));
        std::fs::remove_file(&path).unwrap();
    }
}
