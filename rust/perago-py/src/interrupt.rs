//! Run engine work with the GIL released while honouring Ctrl-C.
//!
//! The work runs on a helper thread; this thread (with the GIL detached) waits for it in short
//! slices and re-attaches briefly to let Python deliver signals. A pending `KeyboardInterrupt`
//! cancels the token, the work stops at its next safe point, and the Python error is raised.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use perago_core::{CancelToken, Error};
use pyo3::prelude::*;

use crate::errors::into_pyerr;

const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Python progress callbacks are called at most this often (plus once at the end).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

pub fn run_interruptible<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&CancelToken) -> Result<T, Error> + Send + 'static,
{
    run_interruptible_ticking(py, |_| Ok(()), work)
}

/// Like [`run_interruptible`], and calls `on_tick` (with the GIL held) about every
/// [`SIGNAL_POLL`] while the work runs — the hook for rate-limited progress callbacks. An error
/// from `on_tick` cancels the work and is raised once it has stopped.
pub fn run_interruptible_ticking<T, F>(
    py: Python<'_>,
    mut on_tick: impl FnMut(Python<'_>) -> PyResult<()>,
    work: F,
) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&CancelToken) -> Result<T, Error> + Send + 'static,
{
    let token = CancelToken::new();
    let worker_token = token.clone();
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("perago-call".into())
        .spawn(move || {
            // The receiver only disappears if this function itself panicked; nothing to report.
            let _ = sender.send(work(&worker_token));
        })
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot start thread: {e}")))?;

    // Mutex only to make the receiver shareable with the detached closure (Receiver is !Sync).
    let receiver = Mutex::new(receiver);
    let mut interrupted: Option<PyErr> = None;
    loop {
        let next = py.detach(|| {
            receiver
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .recv_timeout(SIGNAL_POLL)
        });
        match next {
            Ok(result) => {
                return match (result, interrupted) {
                    (_, Some(signal_error)) => Err(signal_error),
                    (Ok(value), None) => Ok(value),
                    (Err(err), None) => Err(into_pyerr(err)),
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if interrupted.is_none() {
                    if let Err(error) = py.check_signals().and_then(|()| on_tick(py)) {
                        token.cancel();
                        interrupted = Some(error);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "perago engine call ended without a result (worker thread panicked)",
                ));
            }
        }
    }
}

/// Like [`run_interruptible`], calling `report` (with the GIL held) at most once per `interval`
/// while the work runs, and once more after it succeeded: the shape of every progress callback.
pub fn run_reporting<T, F>(
    py: Python<'_>,
    interval: Duration,
    mut report: impl FnMut(Python<'_>) -> PyResult<()>,
    work: F,
) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&CancelToken) -> Result<T, Error> + Send + 'static,
{
    let mut last = std::time::Instant::now();
    let out = run_interruptible_ticking(
        py,
        |py| {
            if last.elapsed() < interval {
                return Ok(());
            }
            last = std::time::Instant::now();
            report(py)
        },
        work,
    )?;
    report(py)?;
    Ok(out)
}
