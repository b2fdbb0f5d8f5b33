//! Python wrappers for snapshots and change sets. Per-file data stays in Rust; Python gets
//! counts, single-entry lookups and a lazy iterator of plain tuples.

use std::path::PathBuf;
use std::sync::Arc;

use perago_core::{ChangeSet, DiffOptions, EntryRef, Snapshot, SnapshotOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::interrupt::run_interruptible;
use crate::transfer::DownloadResult;

/// Immutable, shareable snapshot held by Python.
#[pyclass(name = "Snapshot", module = "perago._native", frozen)]
pub struct PySnapshot {
    inner: Arc<Snapshot>,
}

fn entry_tuple<'py>(py: Python<'py>, entry: EntryRef<'_>) -> PyResult<Bound<'py, PyTuple>> {
    let digest = blake3::Hash::from_bytes(entry.hash).to_hex();
    (
        entry.path().as_os_str(),
        entry.kind.name(),
        entry.size,
        entry.mtime_ns,
        entry.ctime_ns,
        entry.ino,
        entry.mode,
        digest.as_str(),
        entry.target().map(std::path::Path::as_os_str),
    )
        .into_pyobject(py)
}

#[pymethods]
impl PySnapshot {
    #[getter]
    fn root<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        let Ok(root) = self.inner.root().as_os_str().into_pyobject(py);
        root
    }

    #[getter]
    fn started_ns(&self) -> i64 {
        self.inner.started_ns()
    }

    #[getter]
    fn file_count(&self) -> usize {
        self.inner.file_count()
    }

    #[getter]
    fn symlink_count(&self) -> usize {
        self.inner.symlink_count()
    }

    #[getter]
    fn total_bytes(&self) -> u64 {
        self.inner.total_bytes()
    }

    #[getter]
    fn heap_bytes(&self) -> usize {
        self.inner.heap_bytes()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, path: &str) -> bool {
        self.inner.get(path.as_bytes()).is_some()
    }

    /// `(path, kind, size, mtime_ns, ctime_ns, inode, mode, digest_hex, target)` or None.
    fn get<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.inner
            .get(path.as_bytes())
            .map(|entry| entry_tuple(py, entry))
            .transpose()
    }

    /// `(path, kind)` for every fifo, socket or device found.
    fn unsupported<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.inner
            .unsupported()
            .map(|(path, kind)| (path.as_os_str(), kind.name()).into_pyobject(py))
            .collect()
    }

    fn entries(&self) -> SnapshotIter {
        SnapshotIter {
            snapshot: Arc::clone(&self.inner),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// Lazy iterator over entry tuples in path order.
#[pyclass(module = "perago._native", frozen)]
pub struct SnapshotIter {
    snapshot: Arc<Snapshot>,
    next: std::sync::atomic::AtomicUsize,
}

#[pymethods]
impl SnapshotIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let index = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.snapshot
            .at(index)
            .map(|entry| entry_tuple(py, entry))
            .transpose()
    }
}

/// Result of change detection.
#[pyclass(name = "ChangeSet", module = "perago._native", frozen)]
pub struct PyChangeSet {
    inner: ChangeSet,
}

fn strings<'py>(
    py: Python<'py>,
    paths: &[std::ffi::OsString],
) -> PyResult<Vec<Bound<'py, PyString>>> {
    paths
        .iter()
        .map(|p| p.as_os_str().into_pyobject(py).map_err(PyErr::from))
        .collect()
}

#[pymethods]
impl PyChangeSet {
    #[getter]
    fn added<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        strings(py, &self.inner.added)
    }
    #[getter]
    fn modified<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        strings(py, &self.inner.modified)
    }
    #[getter]
    fn removed<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        strings(py, &self.inner.removed)
    }
    #[getter]
    fn type_changed<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        strings(py, &self.inner.type_changed)
    }
    #[getter]
    fn added_bytes(&self) -> u64 {
        self.inner.added_bytes
    }
    #[getter]
    fn modified_bytes(&self) -> u64 {
        self.inner.modified_bytes
    }
    #[getter]
    fn removed_bytes(&self) -> u64 {
        self.inner.removed_bytes
    }
    #[getter]
    fn type_changed_bytes(&self) -> u64 {
        self.inner.type_changed_bytes
    }
    #[getter]
    fn scanned(&self) -> u64 {
        self.inner.scanned
    }
    #[getter]
    fn rehashed(&self) -> u64 {
        self.inner.rehashed
    }
    fn unsupported<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.inner
            .unsupported
            .iter()
            .map(|(path, kind)| (path.as_os_str(), kind.name()).into_pyobject(py))
            .collect()
    }
}

/// Cold snapshot of `root` (parallel walk + BLAKE3 of every file).
#[pyfunction]
#[pyo3(signature = (root, threads=None))]
pub fn take_snapshot(
    py: Python<'_>,
    root: PathBuf,
    threads: Option<usize>,
) -> PyResult<PySnapshot> {
    let options = SnapshotOptions { threads };
    let snapshot = run_interruptible(py, move |cancel| Snapshot::take(&root, &options, cancel))?;
    Ok(PySnapshot {
        inner: Arc::new(snapshot),
    })
}

fn digest_from_py(path: &str, digest: &Bound<'_, PyAny>) -> PyResult<[u8; 32]> {
    if let Ok(raw) = digest.cast::<PyBytes>() {
        if let Ok(bytes) = <[u8; 32]>::try_from(raw.as_bytes()) {
            return Ok(bytes);
        }
    } else if let Ok(text) = digest.extract::<&str>() {
        if let Ok(hash) = blake3::Hash::from_hex(text) {
            return Ok(*hash.as_bytes());
        }
    }
    Err(PyValueError::new_err(format!(
        "invalid BLAKE3 digest for {path:?}: expected 32 bytes or 64 hex characters"
    )))
}

/// Baseline from `(relative path, digest)` pairs: stats every path, reads none.
#[pyfunction]
#[pyo3(signature = (root, known, threads=None))]
pub fn snapshot_from_known_hashes(
    py: Python<'_>,
    root: PathBuf,
    known: &Bound<'_, PyAny>,
    threads: Option<usize>,
) -> PyResult<PySnapshot> {
    let mut pairs: Vec<(String, [u8; 32])> = Vec::new();
    for item in known.try_iter()? {
        let (path, digest): (String, Bound<'_, PyAny>) = item?.extract()?;
        let digest = digest_from_py(&path, &digest)?;
        pairs.push((path, digest));
    }
    let options = SnapshotOptions { threads };
    let snapshot = run_interruptible(py, move |cancel| {
        Snapshot::from_known_hashes(&root, pairs, &options, cancel)
    })?;
    Ok(PySnapshot {
        inner: Arc::new(snapshot),
    })
}

/// Baseline of `root` right after a download into it: every downloaded file is stat'ed, none
/// read, with the digests computed while downloading. The per-file list never becomes Python
/// objects (a million-file workspace would cost hundreds of MB).
#[pyfunction]
#[pyo3(signature = (root, download, threads=None))]
pub fn snapshot_from_download(
    py: Python<'_>,
    root: PathBuf,
    download: &DownloadResult,
    threads: Option<usize>,
) -> PyResult<PySnapshot> {
    let files = Arc::clone(&download.files);
    let options = SnapshotOptions { threads };
    let snapshot = run_interruptible(py, move |cancel| {
        let known = files.iter().map(|f| (f.rel_path, f.blake3));
        Snapshot::from_known_hashes(&root, known, &options, cancel)
    })?;
    Ok(PySnapshot {
        inner: Arc::new(snapshot),
    })
}

/// Incremental change detection of `root` against `baseline`.
#[pyfunction]
#[pyo3(signature = (root, baseline, threads=None, racy_window_ns=None))]
pub fn detect_changes(
    py: Python<'_>,
    root: PathBuf,
    baseline: &PySnapshot,
    threads: Option<usize>,
    racy_window_ns: Option<i64>,
) -> PyResult<PyChangeSet> {
    let options = DiffOptions {
        threads,
        racy_window_ns: racy_window_ns.unwrap_or(perago_core::diff::DEFAULT_RACY_WINDOW_NS),
    };
    let baseline = Arc::clone(&baseline.inner);
    let changes = run_interruptible(py, move |cancel| {
        perago_core::detect_changes(&root, &baseline, &options, cancel)
    })?;
    Ok(PyChangeSet { inner: changes })
}

/// Bare parallel stat walk: `(entries, bytes)`; the benchmark baseline for change detection.
#[pyfunction]
#[pyo3(signature = (root, threads=None))]
pub fn stat_walk(py: Python<'_>, root: PathBuf, threads: Option<usize>) -> PyResult<(u64, u64)> {
    let summary = run_interruptible(py, move |cancel| {
        perago_core::stat_walk(&root, threads, cancel)
    })?;
    Ok((summary.entries, summary.bytes))
}
