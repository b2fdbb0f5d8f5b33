//! perago._native: thin `PyO3` wrappers over perago-core. No engine logic lives here.

mod cache;
mod errors;
mod interrupt;
mod snapshot;
mod transfer;

use std::path::PathBuf;

use pyo3::prelude::*;

use interrupt::run_interruptible;

/// BLAKE3 hex digest of one file. Releases the GIL while hashing; Ctrl-C interrupts the wait.
#[pyfunction]
fn hash_file(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    run_interruptible(py, move |_cancel| perago_core::hash::hash_file(&path))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Constants defined once in perago-core; Python reads them from here.
    m.add("ATTEMPT_MARKER", perago_core::ATTEMPT_MARKER)?;
    m.add(
        "DEFAULT_CONCURRENCY",
        perago_core::transfer::DEFAULT_CONCURRENCY,
    )?;
    m.add(
        "UPLOAD_CONCURRENCY",
        perago_core::transfer::UPLOAD_CONCURRENCY,
    )?;
    m.add(
        "DEFAULT_PART_SIZE",
        perago_core::transfer::DEFAULT_PART_SIZE,
    )?;
    m.add(
        "REMOTE_RANGED_THRESHOLD",
        perago_core::transfer::REMOTE_RANGED_THRESHOLD,
    )?;
    m.add("LAKEFS_PAGE_SIZE", perago_core::lakefs::PAGE_SIZE)?;
    m.add_function(wrap_pyfunction!(hash_file, m)?)?;
    m.add_class::<snapshot::PySnapshot>()?;
    m.add_class::<snapshot::SnapshotIter>()?;
    m.add_class::<snapshot::PyChangeSet>()?;
    m.add_function(wrap_pyfunction!(snapshot::take_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::snapshot_from_known_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::snapshot_from_download, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::detect_changes, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::stat_walk, m)?)?;
    m.add_class::<cache::PyContentCache>()?;
    m.add_class::<transfer::PyLakeFsClient>()?;
    m.add_class::<transfer::DownloadResult>()?;
    m.add_function(wrap_pyfunction!(transfer::list_objects, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::download_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::upload_files, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::delete_objects, m)?)?;
    Ok(())
}
