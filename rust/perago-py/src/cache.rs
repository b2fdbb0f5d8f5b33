//! Thin wrapper over `perago_core::cache`: the host's content cache as a Python object.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use perago_core::cache::ContentCache;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::into_pyerr;
use crate::interrupt::{run_interruptible, run_reporting, PROGRESS_INTERVAL};

#[pyclass(frozen, module = "perago._native", name = "ContentCache")]
pub struct PyContentCache {
    pub(crate) inner: Arc<ContentCache>,
}

#[pymethods]
impl PyContentCache {
    /// Open (creating) the cache at `dir`, kept within `max_size` bytes by pruning.
    #[new]
    #[allow(clippy::needless_pass_by_value)] // pyo3 extracts owned arguments
    fn new(py: Python<'_>, dir: PathBuf, max_size: u64) -> PyResult<Self> {
        let inner = py
            .detach(|| ContentCache::open(&dir, max_size))
            .map_err(into_pyerr)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    #[getter]
    fn dir(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }

    #[getter]
    fn max_size(&self) -> u64 {
        self.inner.max_size()
    }

    /// `"reflink"` or `"copy"`: how entries reach workspaces on this file system.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().name()
    }

    /// `{"entries", "bytes", "partials", "partial_bytes"}`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let cache = Arc::clone(&self.inner);
        let s = run_interruptible(py, move |cancel| cache.status(cancel))?;
        let out = PyDict::new(py);
        out.set_item("entries", s.entries)?;
        out.set_item("bytes", s.bytes)?;
        out.set_item("partials", s.partials)?;
        out.set_item("partial_bytes", s.partial_bytes)?;
        Ok(out)
    }

    /// Evict least recently used entries down to `target` bytes (default: the size limit).
    #[pyo3(signature = (target=None, *, progress=None))]
    fn prune<'py>(
        &self,
        py: Python<'py>,
        target: Option<u64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cache = Arc::clone(&self.inner);
        let target = target.unwrap_or(cache.max_size());
        let r = with_progress(py, progress, move |report, cancel| {
            cache.prune(target, true, report, cancel)
        })?;
        let out = PyDict::new(py);
        out.set_item("evicted", r.evicted)?;
        out.set_item("evicted_bytes", r.evicted_bytes)?;
        out.set_item("partials_removed", r.partials_removed)?;
        out.set_item("entries", r.entries)?;
        out.set_item("bytes", r.bytes)?;
        Ok(out)
    }

    /// Re-hash every entry; evict those whose bytes no longer match.
    #[pyo3(signature = (*, threads=None, progress=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        threads: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cache = Arc::clone(&self.inner);
        let r = with_progress(py, progress, move |report, cancel| {
            cache.verify(threads, report, cancel)
        })?;
        let out = PyDict::new(py);
        out.set_item("checked", r.checked)?;
        out.set_item("bytes", r.bytes)?;
        out.set_item("corrupt", r.corrupt)?;
        Ok(out)
    }

    // `{:?}` on purpose: the path is shown quoted and escaped, as a repr should.
    #[allow(clippy::unnecessary_debug_formatting)]
    fn __repr__(&self) -> String {
        format!(
            "ContentCache(dir={:?}, max_size={}, mode={:?})",
            self.inner.dir(),
            self.inner.max_size(),
            self.inner.mode().name()
        )
    }
}

/// Run a whole-cache operation interruptibly, calling `progress(done, total)` at most ten
/// times a second and once at the end.
fn with_progress<T, F>(py: Python<'_>, progress: Option<Py<PyAny>>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&(dyn Fn(u64, u64) + Sync), &perago_core::CancelToken) -> perago_core::Result<T>
        + Send
        + 'static,
{
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let worker_counters = Arc::clone(&counters);
    let run = move |cancel: &perago_core::CancelToken| {
        let report = move |done: u64, total: u64| {
            worker_counters.0.store(done, Ordering::Relaxed);
            worker_counters.1.store(total, Ordering::Relaxed);
        };
        work(&report, cancel)
    };
    let Some(callback) = progress else {
        return run_interruptible(py, run);
    };
    let call = |py: Python<'_>| -> PyResult<()> {
        let (done, total) = (
            counters.0.load(Ordering::Relaxed),
            counters.1.load(Ordering::Relaxed),
        );
        callback.call1(py, (done, total)).map(|_| ())
    };
    run_reporting(py, PROGRESS_INTERVAL, call, run)
}
