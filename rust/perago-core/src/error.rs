//! The single error type of the engine; perago-py maps it to Python exceptions.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory entry disappeared between being listed and being read.
    #[error("{path}: vanished during the walk (deleted or renamed while the workspace was read)")]
    Vanished { path: PathBuf },
    /// The workspace root exists but is not a directory.
    #[error("{path}: workspace root is not a directory")]
    NotADirectory { path: PathBuf },
    /// A caller-supplied relative path is unusable (absolute, `..`, empty segment, duplicate).
    #[error("invalid workspace path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// A path handed over as a regular file is something else on disk.
    #[error("{path}: expected a regular file, found a {found}")]
    NotAFile { path: PathBuf, found: &'static str },
    /// The workspace exceeds a structural limit of the snapshot format.
    #[error("workspace too large: {0}")]
    Limit(&'static str),
    /// The operation was cancelled (Ctrl-C or a cancellation token).
    #[error("operation cancelled")]
    Cancelled,
    /// A worker pool could not be created.
    #[error("cannot start worker pool: {0}")]
    Pool(String),
    /// A lakeFS request failed permanently (after retries when the failure looked transient).
    /// `target` names the repository/ref/object; it never contains credentials.
    #[error("lakeFS {operation} {target} failed: {detail}")]
    LakeFs {
        operation: &'static str,
        target: String,
        /// HTTP status when the server answered; `None` for connection-level failures.
        status: Option<u16>,
        detail: String,
    },
    /// An object key that cannot be represented safely as a relative local path.
    #[error("object key {key:?} cannot be used as a local path: {reason}")]
    UnsafeObjectKey { key: String, reason: String },
    /// The destination file system cannot hold the listed objects.
    #[error(
        "not enough free disk space in {path}: {needed} bytes needed, {available} bytes available"
    )]
    InsufficientSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    /// A caller-supplied argument is invalid (bad endpoint, empty object path, ...).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Like [`Error::io`], but a missing path means the entry vanished mid-walk.
    pub(crate) fn io_or_vanished(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Vanished { path: path.into() }
        } else {
            Error::io(path, source)
        }
    }

    pub fn unsafe_key(key: &str, reason: impl Into<String>) -> Self {
        Error::UnsafeObjectKey {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
