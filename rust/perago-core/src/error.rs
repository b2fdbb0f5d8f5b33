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
}

pub type Result<T> = std::result::Result<T, Error>;
