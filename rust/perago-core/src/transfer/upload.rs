//! Parallel streaming uploads of local files to a lakeFS branch.

use std::io::Read;
use std::path::PathBuf;

use super::fsutil::open_for_upload;
use super::progress::TransferProgress;
use super::workers::{run_jobs, DEFAULT_CONCURRENCY};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::lakefs::{upload_object, LakeFsClient};
use crate::retry::with_retries;

/// A local file and the object path it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadItem {
    pub local_path: PathBuf,
    pub object_path: String,
}

#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub concurrency: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    pub files: u64,
    pub bytes: u64,
}

/// Upload every item to `repo`/`branch`. Files are read as they are sent (never whole in
/// memory) and reopened for each retry; symlinks and non-regular files are refused.
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
    let mut sizes = Vec::with_capacity(items.len());
    for item in items {
        let meta = std::fs::symlink_metadata(&item.local_path)
            .map_err(|e| Error::io(&item.local_path, e))?;
        sizes.push(meta.len());
    }
    progress.set_totals(items.len() as u64, sizes.iter().sum());
    let sent = std::sync::atomic::AtomicU64::new(0);
    run_jobs(
        options.concurrency,
        items.len(),
        cancel,
        || (),
        |i, (), stop| {
            let item = &items[i];
            let target = || format!("{repo}@{branch}:{}", item.object_path);
            let bytes = with_retries(client.retry_policy(), stop, "upload", &target, || {
                let file = open_for_upload(&item.local_path)?;
                let len = file
                    .metadata()
                    .map_err(|e| Error::io(&item.local_path, e))?
                    .len();
                let mut body = CountingReader {
                    inner: file,
                    progress,
                    stop,
                    sent: 0,
                };
                let result = upload_object(client, repo, branch, &item.object_path, &mut body, len);
                if result.is_err() {
                    progress.sub_bytes(body.sent);
                }
                stop.check()?;
                result?;
                Ok(len)
            })?;
            sent.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            progress.file_done();
            Ok(())
        },
    )?;
    Ok(UploadReport {
        files: items.len() as u64,
        bytes: sent.into_inner(),
    })
}

/// Feeds a file to the HTTP body while counting progress and honouring cancellation.
struct CountingReader<'a> {
    inner: std::fs::File,
    progress: &'a TransferProgress,
    stop: &'a CancelToken,
    sent: u64,
}

impl Read for CountingReader<'_> {
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
