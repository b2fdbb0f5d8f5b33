//! Bounded retries with exponential backoff and jitter for transient remote failures.
//!
//! Knows nothing about HTTP: `lakefs` classifies its failures into [`Failure`]s, and `transfer`
//! wraps whole attempts (a request plus the file writes it feeds) in [`with_retries`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// How often and how patiently a request is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Upper bound of a single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts spread over roughly 15 s: enough to ride out a lakeFS restart, short enough
    /// that a dead server fails the attempt quickly.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based), given a uniform random `unit` in [0, 1):
    /// "equal jitter" — half the exponential step is fixed, half is random — so concurrent
    /// workers spread out but never retry instantly.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// One failed try, classified by the caller.
#[derive(Debug)]
pub struct Failure {
    pub transient: bool,
    pub status: Option<u16>,
    pub detail: String,
}

impl Failure {
    pub fn transient(status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            transient: true,
            status,
            detail: detail.into(),
        }
    }

    pub fn permanent(status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            transient: false,
            status,
            detail: detail.into(),
        }
    }
}

/// An attempt either fails in a retry-classified way or with a final engine error
/// (local I/O, cancellation) that must not be retried.
#[derive(Debug)]
pub enum AttemptError {
    Remote(Failure),
    Fatal(Error),
}

impl From<Failure> for AttemptError {
    fn from(f: Failure) -> Self {
        AttemptError::Remote(f)
    }
}

impl From<Error> for AttemptError {
    fn from(e: Error) -> Self {
        AttemptError::Fatal(e)
    }
}

/// Run `attempt` until it succeeds, fails permanently, runs out of attempts, or is cancelled.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    cancel: &CancelToken,
    operation: &'static str,
    target: &dyn Fn() -> String,
    mut attempt: impl FnMut() -> std::result::Result<T, AttemptError>,
) -> Result<T> {
    let mut rng = Jitter::seeded();
    let max_attempts = policy.max_attempts.max(1);
    for n in 0..max_attempts {
        cancel.check()?;
        match attempt() {
            Ok(value) => return Ok(value),
            Err(AttemptError::Fatal(err)) => return Err(err),
            Err(AttemptError::Remote(failure)) => {
                let last = n + 1 == max_attempts;
                if !failure.transient || last {
                    let detail = if failure.transient {
                        format!("{} (gave up after {} attempts)", failure.detail, n + 1)
                    } else {
                        failure.detail
                    };
                    return Err(Error::LakeFs {
                        operation,
                        target: target(),
                        status: failure.status,
                        detail,
                    });
                }
                sleep_cancellable(policy.delay(n, rng.next_unit()), cancel)?;
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

fn sleep_cancellable(total: Duration, cancel: &CancelToken) -> Result<()> {
    const SLICE: Duration = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() {
        cancel.check()?;
        let step = left.min(SLICE);
        std::thread::sleep(step);
        left -= step;
    }
    cancel.check()
}

/// Tiny xorshift generator: jitter needs spread, not cryptographic quality.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
        let local = &raw const nanos as u64; // differs per thread stack
        Self((nanos ^ local.rotate_left(32)) | 1)
    }

    fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(3),
        }
    }

    #[test]
    fn delay_grows_exponentially_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(2, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(10, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(10, 0.0), Duration::from_millis(2500));
        assert_eq!(p.delay(u32::MAX, 0.5), Duration::from_millis(3750));
    }

    #[test]
    fn jitter_stays_in_unit_interval() {
        let mut j = Jitter::seeded();
        for _ in 0..10_000 {
            let u = j.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let calls = Cell::new(0);
        let out = with_retries(
            &policy(),
            &CancelToken::new(),
            "GET",
            &|| "x".into(),
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(Failure::transient(Some(503), "busy").into())
                } else {
                    Ok(7)
                }
            },
        );
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn attempts_are_bounded_and_error_names_target() {
        let calls = Cell::new(0);
        let out: Result<()> = with_retries(
            &policy(),
            &CancelToken::new(),
            "GET",
            &|| "repo@main:a.txt".into(),
            || {
                calls.set(calls.get() + 1);
                Err(Failure::transient(None, "connection refused").into())
            },
        );
        assert_eq!(calls.get(), 4);
        let err = out.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("repo@main:a.txt"), "{text}");
        assert!(text.contains("gave up after 4 attempts"), "{text}");
        assert!(matches!(err, Error::LakeFs { status: None, .. }));
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let calls = Cell::new(0);
        let out: Result<()> = with_retries(
            &policy(),
            &CancelToken::new(),
            "GET",
            &|| "t".into(),
            || {
                calls.set(calls.get() + 1);
                Err(Failure::permanent(Some(404), "not found").into())
            },
        );
        assert_eq!(calls.get(), 1);
        assert!(matches!(
            out,
            Err(Error::LakeFs {
                status: Some(404),
                ..
            })
        ));
    }

    #[test]
    fn cancellation_stops_retrying() {
        let token = CancelToken::new();
        let calls = Cell::new(0);
        let out: Result<()> = with_retries(&policy(), &token, "GET", &|| "t".into(), || {
            calls.set(calls.get() + 1);
            token.cancel();
            Err(Failure::transient(Some(500), "boom").into())
        });
        assert_eq!(calls.get(), 1);
        assert!(matches!(out, Err(Error::Cancelled)));
    }
}
