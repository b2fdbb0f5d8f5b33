//! The one place where perago-core errors become Python exceptions.

use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;

use perago_core::Error;

pyo3::create_exception!(
    perago._native,
    UnsafeObjectKeyError,
    PyValueError,
    "An object key cannot be represented safely as a relative local path. Attribute: key."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add(
        "UnsafeObjectKeyError",
        py.get_type::<UnsafeObjectKeyError>(),
    )?;
    Ok(())
}

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
            with_attributes(UnsafeObjectKeyError::new_err(message), |value| {
                value.setattr("key", key)
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

/// The server's message: `detail` without the `HTTP <status>: ` the core puts in front of it
/// (the Python error shows the status itself).
fn server_message(status: Option<u16>, detail: &str) -> &str {
    status
        .and_then(|code| detail.strip_prefix(&format!("HTTP {code}: ")))
        .unwrap_or(detail)
}

fn with_attributes(
    err: PyErr,
    set: impl FnOnce(&Bound<'_, pyo3::exceptions::PyBaseException>) -> PyResult<()>,
) -> PyErr {
    Python::attach(|py| match set(err.value(py)) {
        Ok(()) => err,
        Err(failure) => failure,
    })
}

/// ENOSPC ("No space left on device") on Linux; OSError(errno, text) keeps it machine-readable.
fn libc_enospc() -> i32 {
    28
}
