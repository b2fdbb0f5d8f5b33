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
}

pub type Result<T> = std::result::Result<T, Error>;
