//! The one place where perago-core errors become Python exceptions.

use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyNotADirectoryError,
    PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::PyErr;

use perago_core::Error;

pyo3::create_exception!(
    perago._native,
    LakeFSError,
    PyException,
    "A lakeFS request failed (after retries when the failure looked transient). Attributes: \
     status_code (int | None: None when the server could not be reached), operation, target."
);

pyo3::create_exception!(
    perago._native,
    UnsafeObjectKeyError,
    PyValueError,
    "An object key cannot be represented safely as a relative local path. Attribute: key."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LakeFSError", py.get_type::<LakeFSError>())?;
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
            ..
        } => with_attributes(LakeFSError::new_err(message), |value| {
            value.setattr("status_code", status)?;
            value.setattr("operation", operation)?;
            value.setattr("target", target)
        }),
    }
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
