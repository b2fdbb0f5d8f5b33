//! An explicitly sized set of threads draining a job list, stopping everyone at the first error.
//!
//! Transfers block on the network, so they run on plain threads (one per concurrent request)
//! rather than on the CPU-sized rayon pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Concurrent requests of a download when the caller does not choose (measured:
/// see ADR 0004); uploads use `upload::UPLOAD_CONCURRENCY`.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Run `work(job_index, state, stop)` for every job on `threads` threads. `stop` is cancelled
/// when the caller's token is, or when any job fails; the first failure is returned.
pub(crate) fn run_jobs<S>(
    threads: usize,
    jobs: usize,
    cancel: &CancelToken,
    init: impl Fn() -> S + Sync,
    work: impl Fn(usize, &mut S, &CancelToken) -> Result<()> + Sync,
) -> Result<()> {
    let stop = CancelToken::new();
    let next = AtomicUsize::new(0);
    let running = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let threads = threads.clamp(1, jobs.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            running.fetch_add(1, Ordering::SeqCst);
            scope.spawn(|| {
                let mut state = init();
                while !stop.is_cancelled() {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    if job >= jobs {
                        break;
                    }
                    if let Err(err) = work(job, &mut state, &stop) {
                        let mut slot = first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if slot.is_none() {
                            *slot = Some(err);
                        }
                        stop.cancel();
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // Relay the caller's cancellation into the shared stop token while workers run.
        while running.load(Ordering::SeqCst) > 0 {
            if cancel.is_cancelled() {
                stop.cancel();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    if let Some(err) = first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(err);
    }
    cancel.check()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn all_jobs_run_once() {
        let sum = AtomicU64::new(0);
        run_jobs(
            4,
            100,
            &CancelToken::new(),
            || (),
            |i, (), _| {
                sum.fetch_add(i as u64, Ordering::Relaxed);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sum.load(Ordering::Relaxed), 4950);
    }

    #[test]
    fn first_error_stops_the_rest() {
        let done = AtomicU64::new(0);
        let out = run_jobs(
            2,
            10_000,
            &CancelToken::new(),
            || (),
            |i, (), _| {
                if i == 5 {
                    return Err(Error::InvalidArgument("job 5 failed".into()));
                }
                done.fetch_add(1, Ordering::Relaxed);
                Ok(())
            },
        );
        assert_eq!(out.unwrap_err().to_string(), "job 5 failed");
        assert!(done.load(Ordering::Relaxed) < 9_999);
    }

    #[test]
    fn cancellation_is_reported() {
        let token = CancelToken::new();
        token.cancel();
        let out = run_jobs(2, 10, &token, || (), |_, (), stop| stop.check());
        assert!(matches!(out, Err(Error::Cancelled)));
    }
}
