//! Thin wrappers over `perago_core::transfer`: argument conversion and progress reporting only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use perago_core::lakefs::{self, ClientOptions, Credentials, LakeFsClient, TransferMode};
use perago_core::retry::RetryPolicy;
use perago_core::transfer::{
    self, BeforeWrite, CacheStats, DownloadOptions, DownloadedFiles, TransferProgress, UploadItem,
    UploadOptions,
};
use pyo3::prelude::*;

use crate::cache::PyContentCache;
use crate::errors::into_pyerr;
use crate::interrupt::{run_interruptible, run_reporting, PROGRESS_INTERVAL};

/// A lakeFS endpoint with its credentials. The secret is kept in Rust and never shown.
#[pyclass(frozen, module = "perago._native", name = "LakeFSClient")]
pub struct PyLakeFsClient {
    inner: Arc<LakeFsClient>,
    access_key_id: String,
}

#[pymethods]
impl PyLakeFsClient {
    #[new]
    #[pyo3(signature = (endpoint, access_key_id, secret_access_key, *, max_attempts=None, connect_timeout=None, io_timeout=None, transfer_mode=None))]
    fn new(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
        max_attempts: Option<u32>,
        connect_timeout: Option<f64>,
        io_timeout: Option<f64>,
        transfer_mode: Option<&str>,
    ) -> PyResult<Self> {
        let mut options = ClientOptions::default();
        if let Some(mode) = transfer_mode {
            options.transfer_mode = mode.parse::<TransferMode>().map_err(into_pyerr)?;
        }
        if let Some(attempts) = max_attempts {
            options.retry = RetryPolicy {
                max_attempts: attempts.max(1),
                ..options.retry
            };
        }
        if let Some(seconds) = connect_timeout {
            options.connect_timeout = positive_duration("connect_timeout", seconds)?;
        }
        if let Some(seconds) = io_timeout {
            options.io_timeout = positive_duration("io_timeout", seconds)?;
        }
        let credentials = Credentials::new(access_key_id, secret_access_key);
        let inner = LakeFsClient::new(endpoint, &credentials, options).map_err(into_pyerr)?;
        Ok(Self {
            inner: Arc::new(inner),
            access_key_id: access_key_id.to_owned(),
        })
    }

    #[getter]
    fn api_base(&self) -> &str {
        self.inner.api_base()
    }

    #[getter]
    fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    #[getter]
    fn transfer_mode(&self) -> &'static str {
        self.inner.transfer_mode().name()
    }

    /// The data path transfers take, as `(presign, presign_multipart)`; asks the server once.
    fn data_path(&self, py: Python<'_>) -> PyResult<(bool, bool)> {
        let client = Arc::clone(&self.inner);
        let path = run_interruptible(py, move |cancel| lakefs::data_path(&client, cancel))?;
        Ok((path.presign, path.presign_multipart))
    }

    fn __repr__(&self) -> String {
        format!(
            "LakeFSClient(api_base={:?}, access_key_id={:?}, transfer_mode={:?})",
            self.inner.api_base(),
            self.access_key_id,
            self.inner.transfer_mode().name()
        )
    }
}

fn positive_duration(name: &str, seconds: f64) -> PyResult<Duration> {
    if seconds.is_finite() && seconds > 0.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, got {seconds}"
        )))
    }
}

/// Result of a download: totals plus the per-file (path, size, BLAKE3) list kept in Rust.
#[pyclass(frozen, module = "perago._native")]
pub struct DownloadResult {
    pub(crate) root: PathBuf,
    pub(crate) files: Arc<DownloadedFiles>,
    pub(crate) bytes: u64,
    pub(crate) cache: CacheStats,
}

#[pymethods]
impl DownloadResult {
    #[getter]
    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    #[getter]
    fn file_count(&self) -> usize {
        self.files.len()
    }

    #[getter]
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn __len__(&self) -> usize {
        self.files.len()
    }

    /// What came from the content cache and what was fetched: `hits`, `hit_bytes`, `fetched`,
    /// `fetched_bytes`, `inserted`, `waited`, `corrupt`, `evicted`.
    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let c = &self.cache;
        let out = pyo3::types::PyDict::new(py);
        for (name, value) in [
            ("hits", c.hits),
            ("hit_bytes", c.hit_bytes),
            ("fetched", c.fetched),
            ("fetched_bytes", c.fetched_bytes),
            ("inserted", c.inserted),
            ("waited", c.waited),
            ("corrupt", c.corrupt),
            ("evicted", c.evicted),
        ] {
            out.set_item(name, value)?;
        }
        Ok(out)
    }

    /// BLAKE3 hex digest of one downloaded file (relative `/`-separated path), or None.
    fn hash_of(&self, rel_path: &str) -> Option<String> {
        self.files
            .get(rel_path)
            .map(|f| f.blake3.to_hex().to_string())
    }

    /// All files as (relative path, size, BLAKE3 hex), sorted by path.
    fn entries(&self) -> Vec<(String, u64, String)> {
        self.files
            .iter()
            .map(|f| (f.rel_path.to_owned(), f.size, f.blake3.to_hex().to_string()))
            .collect()
    }

    // `{:?}` on purpose: the path is shown quoted and escaped, as a repr should.
    #[allow(clippy::unnecessary_debug_formatting)]
    fn __repr__(&self) -> String {
        format!(
            "DownloadResult(root={:?}, file_count={}, bytes={})",
            self.root,
            self.files.len(),
            self.bytes
        )
    }
}

fn report_progress(
    py: Python<'_>,
    callback: &Py<PyAny>,
    progress: &TransferProgress,
) -> PyResult<()> {
    let s = progress.snapshot();
    callback.call1(
        py,
        (s.bytes_done, s.bytes_total, s.files_done, s.files_total),
    )?;
    Ok(())
}

/// Run `work` interruptibly, feeding `progress` to the optional Python callback at a bounded rate.
fn run_with_progress<T, F>(
    py: Python<'_>,
    callback: Option<Py<PyAny>>,
    progress: &TransferProgress,
    work: F,
) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&perago_core::CancelToken) -> perago_core::Result<T> + Send + 'static,
{
    let Some(callback) = callback else {
        return run_interruptible(py, work);
    };
    run_reporting(
        py,
        PROGRESS_INTERVAL,
        |py| report_progress(py, &callback, progress),
        work,
    )
}

/// Objects under `prefix + "/"` (all objects when prefix is empty) as (path, size, checksum).
#[pyfunction]
#[pyo3(signature = (client, repo, reference, prefix))]
pub fn list_objects(
    py: Python<'_>,
    client: &PyLakeFsClient,
    repo: String,
    reference: String,
    prefix: &str,
) -> PyResult<Vec<(String, u64, String)>> {
    let client = Arc::clone(&client.inner);
    let raw_prefix =
        transfer::listing_prefix(&transfer::normalize_prefix(prefix).map_err(into_pyerr)?);
    let objects = run_interruptible(py, move |cancel| {
        lakefs::list_objects(&client, &repo, &reference, &raw_prefix, false, cancel)
    })?;
    Ok(objects
        .into_iter()
        .map(|o| (o.path, o.size, o.checksum))
        .collect())
}

/// A Python `before_write(dest: str, total: int)` as the engine's hook. It runs on the engine's
/// thread with the GIL attached; the exception it raises is kept in `raised` and re-raised as
/// it is (an `OSError(ENOSPC, ...)` from the space ledger stays one).
fn python_before_write(
    callback: Py<PyAny>,
    raised: Arc<std::sync::Mutex<Option<PyErr>>>,
) -> BeforeWrite {
    BeforeWrite(Arc::new(move |root: &std::path::Path, total: u64| {
        Python::attach(|py| {
            callback
                .call1(py, (root.to_string_lossy().into_owned(), total))
                .map(|_| ())
        })
        .map_err(|err| {
            let message = err.to_string();
            *raised
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(err);
            perago_core::Error::InvalidArgument(format!("before_write refused: {message}"))
        })
    }))
}

#[pyfunction]
#[pyo3(signature = (client, repo, reference, prefix, dest, *, concurrency=None, part_size=None, ranged_threshold=None, progress=None, before_write=None, cache=None))]
#[allow(clippy::too_many_arguments)]
pub fn download_prefix(
    py: Python<'_>,
    client: &PyLakeFsClient,
    repo: String,
    reference: String,
    prefix: String,
    dest: PathBuf,
    concurrency: Option<usize>,
    part_size: Option<u64>,
    ranged_threshold: Option<u64>,
    progress: Option<Py<PyAny>>,
    before_write: Option<Py<PyAny>>,
    cache: Option<&PyContentCache>,
) -> PyResult<DownloadResult> {
    let mut options = DownloadOptions::for_client(&client.inner);
    options.cache = cache.map(|cache| Arc::clone(&cache.inner));
    if let Some(n) = concurrency {
        options.concurrency = n.max(1);
    }
    if let Some(size) = part_size {
        options.part_size = size;
    }
    if let Some(threshold) = ranged_threshold {
        options.ranged_threshold = threshold;
    }
    let raised = Arc::new(std::sync::Mutex::new(None));
    if let Some(callback) = before_write {
        options.before_write = Some(python_before_write(callback, Arc::clone(&raised)));
    }
    let client = Arc::clone(&client.inner);
    let counters = Arc::new(TransferProgress::new());
    let worker_counters = Arc::clone(&counters);
    let outcome = run_with_progress(py, progress, &counters, move |cancel| {
        transfer::download_prefix(
            &client,
            &repo,
            &reference,
            &prefix,
            &dest,
            &options,
            &worker_counters,
            cancel,
        )
    });
    let report = match outcome {
        Ok(report) => report,
        Err(err) => {
            let hook_error = raised
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            return Err(hook_error.unwrap_or(err));
        }
    };
    Ok(DownloadResult {
        root: report.root,
        files: Arc::new(report.files),
        bytes: report.bytes,
        cache: report.cache,
    })
}

/// Upload (local path, object path) pairs; returns (files, bytes).
#[pyfunction]
#[pyo3(signature = (client, repo, branch, items, *, concurrency=None, progress=None, multipart_threshold=None, part_size=None))]
#[allow(clippy::too_many_arguments)]
pub fn upload_files(
    py: Python<'_>,
    client: &PyLakeFsClient,
    repo: String,
    branch: String,
    items: Vec<(PathBuf, String)>,
    concurrency: Option<usize>,
    progress: Option<Py<PyAny>>,
    multipart_threshold: Option<u64>,
    part_size: Option<u64>,
) -> PyResult<(u64, u64)> {
    let mut options = UploadOptions::default();
    if let Some(n) = concurrency {
        options.concurrency = n.max(1);
    }
    if let Some(bytes) = multipart_threshold {
        options.multipart_threshold = bytes;
    }
    if let Some(bytes) = part_size {
        options.part_size = bytes;
    }
    let items: Vec<UploadItem> = items
        .into_iter()
        .map(|(local_path, object_path)| UploadItem {
            local_path,
            object_path,
        })
        .collect();
    let client = Arc::clone(&client.inner);
    let counters = Arc::new(TransferProgress::new());
    let worker_counters = Arc::clone(&counters);
    let report = run_with_progress(py, progress, &counters, move |cancel| {
        transfer::upload_files(
            &client,
            &repo,
            &branch,
            &items,
            &options,
            &worker_counters,
            cancel,
        )
    })?;
    Ok((report.files, report.bytes))
}

/// Delete object paths from a branch in batches of at most 1000; returns the number submitted.
#[pyfunction]
#[pyo3(signature = (client, repo, branch, paths))]
pub fn delete_objects(
    py: Python<'_>,
    client: &PyLakeFsClient,
    repo: String,
    branch: String,
    paths: Vec<String>,
) -> PyResult<usize> {
    let client = Arc::clone(&client.inner);
    run_interruptible(py, move |cancel| {
        lakefs::delete_objects(&client, &repo, &branch, &paths, cancel)
    })
}
