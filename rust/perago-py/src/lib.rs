//! perago._native: thin PyO3 wrappers over perago-core. No engine logic lives here.

mod errors;

use std::path::PathBuf;

use pyo3::prelude::*;

use errors::into_pyerr;

/// BLAKE3 hex digest of one file. Releases the GIL while hashing.
#[pyfunction]
fn hash_file(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| perago_core::hash::hash_file(&path))
        .map_err(into_pyerr)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(hash_file, m)?)?;
    Ok(())
}
