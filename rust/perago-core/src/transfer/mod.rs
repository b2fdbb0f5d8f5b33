//! Parallel, streaming, path-safe transfers between lakeFS and a local directory.

pub mod download;
pub mod fsutil;
pub mod paths;
pub mod progress;
mod socket_receive;
pub mod tree_hash;
pub mod upload;
mod workers;

pub use download::{download_prefix, BeforeWrite, DownloadOptions, DownloadReport, DownloadedFile};
pub use paths::{listing_prefix, normalize_prefix, plan_local_paths, PlannedFile, MARKER_NAME};
pub use progress::{ProgressSnapshot, TransferProgress};
pub use upload::{upload_files, UploadItem, UploadOptions, UploadReport};

/// Concurrent requests when the caller does not choose (measured: see ADR 0004).
pub const DEFAULT_CONCURRENCY: usize = 16;
