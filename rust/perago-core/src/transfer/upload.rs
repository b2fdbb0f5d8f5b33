//! Parallel streaming uploads of local files to a lakeFS branch: through lakeFS, or to
//! presigned staging locations then linked, with large files as presigned multipart uploads.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::fsutil::open_for_upload;
use super::progress::TransferProgress;
use super::workers::run_jobs;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::faults;
use crate::lakefs::presigned::{
    abort_multipart, complete_multipart, create_multipart, get_physical_address,
    is_refused_signature, link_physical_address, physical_address, presign_part, put_presigned,
    BranchObject, MultipartUpload, PresignedUrl,
};
use crate::lakefs::{data_path, upload_object, DataPath, LakeFsClient};
use crate::retry::{with_retries, AttemptError, Failure};

/// A local file and the object path it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadItem {
    pub local_path: PathBuf,
    pub object_path: String,
}

/// Concurrent requests of an upload when the caller does not choose. Twice a download's: small
/// uploads wait on lakeFS's metadata writes, so with 16 in flight client and server together
/// kept only 60 % of two cores busy (ADR 0004, 2026-12-06: 10,000 × 100 KiB on the local
/// blockstore 8.34-8.47 s with 16, 6.19-6.33 s with 32; the s3 topology is CPU-bound, no change).
pub const UPLOAD_CONCURRENCY: usize = 32;
/// Files at least this large go up as presigned multipart uploads (when lakeFS offers them).
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Size of one multipart part when the caller does not choose (grown to stay within S3's
/// 10,000 parts).
pub const MULTIPART_PART_SIZE: u64 = 32 << 20;
/// S3's smallest part (all but the last).
const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's most parts per upload.
const MAX_PARTS: u64 = 10_000;
/// S3's largest single PUT.
const SINGLE_PUT_LIMIT: u64 = 5 << 30;

#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub concurrency: usize,
    /// See [`MULTIPART_THRESHOLD`].
    pub multipart_threshold: u64,
    /// See [`MULTIPART_PART_SIZE`]; at least 5 MiB.
    pub part_size: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            concurrency: UPLOAD_CONCURRENCY,
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: MULTIPART_PART_SIZE,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    pub files: u64,
    pub bytes: u64,
}

enum Job {
    Whole { item: usize },
    Part { upload: usize, part: usize },
}

/// One presigned multipart upload in flight.
struct OpenUpload {
    item: usize,
    size: u64,
    part_size: u64,
    upload: MultipartUpload,
    urls: Vec<Mutex<PresignedUrl>>,
    etags: Vec<OnceLock<String>>,
    remaining: Mutex<usize>,
    completed: AtomicBool,
}

struct Uploader<'a> {
    client: &'a LakeFsClient,
    repo: &'a str,
    branch: &'a str,
    items: &'a [UploadItem],
    path: DataPath,
    progress: &'a TransferProgress,
    sent: AtomicU64,
}

/// Upload every item to `repo`/`branch`. Files are read as they are sent (never whole in
/// memory) and reopened for each retry; symlinks and non-regular files are refused. A failed
/// or cancelled upload aborts every multipart upload it opened.
pub fn upload_files(
    client: &LakeFsClient,
    repo: &str,
    branch: &str,
    items: &[UploadItem],
    options: &UploadOptions,
    progress: &TransferProgress,
    cancel: &CancelToken,
) -> Result<UploadReport> {
    for item in items {
        if item.object_path.is_empty() || item.object_path.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "invalid object path {:?} for {}",
                item.object_path,
                item.local_path.display()
            )));
        }
    }
    if options.part_size < MIN_PART_SIZE {
        return Err(Error::InvalidArgument(format!(
            "multipart part size must be at least {MIN_PART_SIZE} bytes, got {}",
            options.part_size
        )));
    }
    let mut sizes = Vec::with_capacity(items.len());
    for item in items {
        let meta = std::fs::symlink_metadata(&item.local_path)
            .map_err(|e| Error::io(&item.local_path, e))?;
        sizes.push(meta.len());
    }
    progress.set_totals(items.len() as u64, sizes.iter().sum());
    let uploader = Uploader {
        client,
        repo,
        branch,
        items,
        path: if items.is_empty() {
            DataPath::THROUGH_LAKEFS
        } else {
            data_path(client, cancel)?
        },
        progress,
        sent: AtomicU64::new(0),
    };

    let mut open: Vec<OpenUpload> = Vec::new();
    let mut jobs = Vec::with_capacity(items.len());
    let mut whole = Vec::new();
    let outcome = (|| {
        for (index, &size) in sizes.iter().enumerate() {
            let part_size = part_size_for(size, options.part_size);
            if uploader.path.presign_multipart
                && size >= options.multipart_threshold
                && size > part_size
            {
                open.push(uploader.open_multipart(index, size, part_size, cancel)?);
                let parts = open.last().map_or(0, |u| u.urls.len());
                jobs.extend((0..parts).map(|part| Job::Part {
                    upload: open.len() - 1,
                    part,
                }));
            } else {
                whole.push(Job::Whole { item: index });
            }
        }
        // Multipart parts first: they are the long poles.
        jobs.append(&mut whole);
        run_jobs(
            options.concurrency,
            jobs.len(),
            cancel,
            || (),
            |i, (), stop| match jobs[i] {
                Job::Whole { item } => uploader.put_whole(item, stop),
                Job::Part { upload, part } => uploader.put_part(&open[upload], part, stop),
            },
        )
    })();
    if let Err(err) = outcome {
        uploader.abort_open(&open);
        return Err(err);
    }
    Ok(UploadReport {
        files: items.len() as u64,
        bytes: uploader.sent.into_inner(),
    })
}

/// The configured part size, grown (in whole MiB) until `size` fits in [`MAX_PARTS`] parts.
fn part_size_for(size: u64, configured: u64) -> u64 {
    let smallest = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    configured.max(smallest)
}

impl Uploader<'_> {
    fn object(&self, item: usize) -> BranchObject<'_> {
        BranchObject {
            repo: self.repo,
            branch: self.branch,
            path: &self.items[item].object_path,
        }
    }

    fn target(&self, item: usize) -> String {
        format!(
            "{}@{}:{}",
            self.repo, self.branch, self.items[item].object_path
        )
    }

    fn local(&self, item: usize) -> &Path {
        &self.items[item].local_path
    }

    fn done(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        self.progress.file_done();
    }

    /// One whole object: through lakeFS, or PUT to a fresh presigned staging location then
    /// linked. A failed PUT retries with a new location; a lost link answer relinks the same
    /// address (idempotent).
    fn put_whole(&self, item: usize, stop: &CancelToken) -> Result<()> {
        let target = || self.target(item);
        let policy = self.client.retry_policy();
        if !self.path.presign {
            let bytes = with_retries(policy, stop, "upload", &target, || {
                let (file, len) = self.open_source(item)?;
                self.send(file, len, stop, |body| {
                    upload_object(
                        self.client,
                        self.repo,
                        self.branch,
                        &self.items[item].object_path,
                        body,
                        len,
                    )
                })?;
                Ok(len)
            })?;
            self.done(bytes);
            return Ok(());
        }
        let object = self.object(item);
        let (address, etag, len) = with_retries(policy, stop, "upload", &target, || {
            let location = get_physical_address(self.client, object)?;
            let (file, len) = self.open_source(item)?;
            if len > SINGLE_PUT_LIMIT {
                return Err(AttemptError::Fatal(Error::InvalidArgument(format!(
                    "{}: {len} bytes exceed the object store's single-PUT limit and this \
                     lakeFS offers no presigned multipart upload; use transfer mode lakefs",
                    self.local(item).display()
                ))));
            }
            let etag = self.send(file, len, stop, |body| {
                put_presigned(self.client, &location.url, body, len)
            })?;
            Ok((location.physical_address, etag, len))
        })?;
        with_retries(policy, stop, "link", &target, || {
            Ok(link_physical_address(
                self.client,
                object,
                &address,
                &etag,
                len,
            )?)
        })?;
        self.done(len);
        Ok(())
    }

    fn open_source(&self, item: usize) -> std::result::Result<(File, u64), AttemptError> {
        let file = open_for_upload(self.local(item))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(self.local(item), e))?
            .len();
        Ok((file, len))
    }

    /// Feed `source` to `request`, counting progress (taken back if the try fails) and
    /// stopping at cancellation.
    fn send<R: Read, T>(
        &self,
        source: R,
        len: u64,
        stop: &CancelToken,
        request: impl FnOnce(&mut dyn Read) -> std::result::Result<T, Failure>,
    ) -> std::result::Result<T, AttemptError> {
        let mut body = CountingReader {
            inner: source.take(len),
            progress: self.progress,
            stop,
            sent: 0,
        };
        let result = request(&mut body);
        if result.is_err() {
            self.progress.sub_bytes(body.sent);
        }
        stop.check()?;
        Ok(result?)
    }

    fn open_multipart(
        &self,
        item: usize,
        size: u64,
        part_size: u64,
        cancel: &CancelToken,
    ) -> Result<OpenUpload> {
        let parts = size.div_ceil(part_size) as usize;
        let upload = with_retries(
            self.client.retry_policy(),
            cancel,
            "start multipart upload",
            &|| self.target(item),
            || Ok(create_multipart(self.client, self.object(item), parts)?),
        )?;
        Ok(OpenUpload {
            item,
            size,
            part_size,
            urls: upload.part_urls.iter().cloned().map(Mutex::new).collect(),
            etags: (0..parts).map(|_| OnceLock::new()).collect(),
            remaining: Mutex::new(parts),
            completed: AtomicBool::new(false),
            upload,
        })
    }

    /// One part of a multipart upload; a transient failure retries this part only. The last
    /// part to finish completes the upload.
    fn put_part(&self, open: &OpenUpload, part: usize, stop: &CancelToken) -> Result<()> {
        let item = open.item;
        let start = part as u64 * open.part_size;
        let len = open.part_size.min(open.size - start);
        let mut tries = 0u32;
        let etag = with_retries(
            self.client.retry_policy(),
            stop,
            "upload part",
            &|| {
                format!(
                    "{} (part {} of {})",
                    self.target(item),
                    part + 1,
                    open.urls.len()
                )
            },
            || {
                // A retry gets a fresh URL: the old one may have expired, or been refused
                // after its body went up (a reset connection carries no 403).
                tries += 1;
                if tries > 1 {
                    let fresh =
                        presign_part(self.client, self.object(item), &open.upload, part + 1)?;
                    *open.urls[part]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = fresh;
                }
                let url = open.urls[part]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let file = open_for_upload(self.local(item))?;
                let source = RangeReader {
                    file,
                    offset: start,
                };
                match self.send(source, len, stop, |body| {
                    put_presigned(self.client, &url, body, len)
                }) {
                    // An expired URL is refused with 403: worth a retry with a new one.
                    Err(AttemptError::Remote(failure)) if is_refused_signature(&failure) => {
                        Err(Failure::transient(failure.status, failure.detail).into())
                    }
                    other => other,
                }
            },
        )?;
        let _ = open.etags[part].set(etag);
        faults::reach("upload.part_uploaded", stop);
        let last = {
            let mut remaining = open
                .remaining
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *remaining -= 1;
            *remaining == 0
        };
        if last {
            self.complete(open, stop)?;
        }
        Ok(())
    }

    /// Complete the upload. A retry after an answer that never arrived finds the upload gone;
    /// the branch then already names its address, which counts as done.
    fn complete(&self, open: &OpenUpload, stop: &CancelToken) -> Result<()> {
        let item = open.item;
        let etags: Vec<String> = open
            .etags
            .iter()
            .map(|e| e.get().expect("every part finished").clone())
            .collect();
        let mut tried = false;
        with_retries(
            self.client.retry_policy(),
            stop,
            "complete multipart upload",
            &|| self.target(item),
            || match complete_multipart(self.client, self.object(item), &open.upload, &etags) {
                Ok(()) => Ok(()),
                Err(failure) if std::mem::replace(&mut tried, true) && !failure.transient => {
                    let linked = physical_address(
                        self.client,
                        self.repo,
                        self.branch,
                        &self.items[item].object_path,
                    )
                    .is_ok_and(|address| address == open.upload.physical_address);
                    if linked {
                        Ok(())
                    } else {
                        Err(failure.into())
                    }
                }
                Err(failure) => {
                    tried = true;
                    Err(failure.into())
                }
            },
        )?;
        open.completed.store(true, Ordering::SeqCst);
        self.done(open.size);
        Ok(())
    }

    /// Abort every upload not completed, even when the transfer was cancelled: parts left on
    /// the object store are invisible and billed until a lifecycle rule removes them.
    fn abort_open(&self, open: &[OpenUpload]) {
        let cleanup = CancelToken::new();
        for upload in open.iter().filter(|u| !u.completed.load(Ordering::SeqCst)) {
            let _ = with_retries(
                self.client.retry_policy(),
                &cleanup,
                "abort multipart upload",
                &|| self.target(upload.item),
                || {
                    Ok(abort_multipart(
                        self.client,
                        self.object(upload.item),
                        &upload.upload,
                    )?)
                },
            );
        }
    }
}

/// Reads a file from `offset` on (positioned reads: parts of one file share nothing).
struct RangeReader {
    file: File,
    offset: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Feeds a file to the HTTP body while counting progress and honouring cancellation.
struct CountingReader<'a, R> {
    inner: R,
    progress: &'a TransferProgress,
    stop: &'a CancelToken,
    sent: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other("upload cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        self.progress.add_bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_to_fit_the_part_limit() {
        assert_eq!(
            part_size_for(1 << 30, MULTIPART_PART_SIZE),
            MULTIPART_PART_SIZE
        );
        let huge = 5u64 << 40; // 5 TiB, S3's largest object
        let size = part_size_for(huge, MULTIPART_PART_SIZE);
        assert!(huge.div_ceil(size) <= MAX_PARTS, "{size}");
        assert_eq!(size % (1 << 20), 0);
    }

    #[test]
    fn uploads_default_to_their_own_concurrency() {
        let options = UploadOptions::default();
        assert_eq!(options.concurrency, UPLOAD_CONCURRENCY);
    }
}
