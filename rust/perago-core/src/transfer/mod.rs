//! Parallel, streaming, path-safe transfers between lakeFS and a local directory.

mod cache_use;
pub mod download;
pub mod fsutil;
pub mod paths;
pub mod progress;
pub mod tree_hash;
pub mod upload;
mod url_feed;
mod workers;

pub use cache_use::CacheStats;
pub use download::{
    download_prefix, BeforeWrite, DownloadOptions, DownloadReport, DownloadedFile, DownloadedFiles,
    DEFAULT_PART_SIZE, REMOTE_RANGED_THRESHOLD,
};
pub use paths::{listing_prefix, normalize_prefix, plan_local_paths, PlannedFiles};
pub use progress::{ProgressSnapshot, TransferProgress};
pub use upload::{
    upload_files, UploadItem, UploadOptions, UploadReport, MULTIPART_PART_SIZE,
    MULTIPART_THRESHOLD, UPLOAD_CONCURRENCY,
};
pub use workers::DEFAULT_CONCURRENCY;
