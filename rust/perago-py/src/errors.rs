//! The one place where perago-core errors become Python exceptions.

use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyNotADirectoryError, PyOSError, PyPermissionError,
    PyValueError,
};
use pyo3::PyErr;

use perago_core::Error;

pub fn into_pyerr(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::Vanished { .. } => PyFileNotFoundError::new_err(message),
        Error::NotADirectory { .. } => PyNotADirectoryError::new_err(message),
        Error::InvalidPath { .. } => PyValueError::new_err(message),
        Error::NotAFile { .. } | Error::Limit(_) | Error::Pool(_) => PyOSError::new_err(message),
        Error::Cancelled => PyKeyboardInterrupt::new_err(message),
    }
}
