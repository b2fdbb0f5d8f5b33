//! The one place where perago-core errors become Python exceptions.

use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;

use perago_core::Error;

pub fn into_pyerr(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::Vanished { .. } => PyFileNotFoundError::new_err(message),
        Error::NotADirectory { .. } => PyNotADirectoryError::new_err(message),
        Error::NotAFile { .. } | Error::Limit(_) | Error::Pool(_) => PyOSError::new_err(message),
        Error::Cancelled => PyKeyboardInterrupt::new_err(message),
        Error::InsufficientSpace { .. } => PyOSError::new_err((libc_enospc(), message)),
        Error::InvalidPath { .. } | Error::InvalidArgument(_) => PyValueError::new_err(message),
        Error::UnsafeObjectKey { key, .. } => {
            unsafe_key_error(&key, &message).unwrap_or_else(|failure| {
                PyValueError::new_err(format!(
                    "{message} (perago.errors.UnsafeObjectKeyError: {failure})"
                ))
            })
        }
        Error::LakeFs {
            operation,
            target,
            status,
            detail,
        } => lakefs_error(operation, &target, status, &detail).unwrap_or_else(|failure| {
            PyRuntimeError::new_err(format!("{message} (perago.errors.LakeFSError: {failure})"))
        }),
    }
}

/// perago's one lakeFS error type, `perago.errors.LakeFSError(operation, status, message,
/// target=...)`: the same class the lakefs-sdk control plane raises, so callers catch one type.
fn lakefs_error(
    operation: &str,
    target: &str,
    status: Option<u16>,
    detail: &str,
) -> PyResult<PyErr> {
    Python::attach(|py| {
        let class = py.import("perago.errors")?.getattr("LakeFSError")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("target", target)?;
        let value = class.call(
            (operation, status, server_message(status, detail)),
            Some(&kwargs),
        )?;
        Ok(PyErr::from_value(value))
    })
}

/// `perago.errors.UnsafeObjectKeyError(message, key)`: a `ValueError` rooted at `PeragoError`.
fn unsafe_key_error(key: &str, message: &str) -> PyResult<PyErr> {
    Python::attach(|py| {
        let class = py
            .import("perago.errors")?
            .getattr("UnsafeObjectKeyError")?;
        Ok(PyErr::from_value(class.call1((message, key))?))
    })
}

/// The server's message: `detail` without the `HTTP <status>: ` the core puts in front of it
/// (the Python error shows the status itself).
fn server_message(status: Option<u16>, detail: &str) -> &str {
    status
        .and_then(|code| detail.strip_prefix(&format!("HTTP {code}: ")))
        .unwrap_or(detail)
}

/// ENOSPC ("No space left on device") on Linux; OSError(errno, text) keeps it machine-readable.
fn libc_enospc() -> i32 {
    28
}
