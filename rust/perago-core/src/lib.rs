//! perago-core: the pure Rust engine behind perago (no pyo3 here).
//!
//! The Python binding lives in `perago-py`; it maps [`Error`] to Python exceptions in one place.

mod arena;
pub mod cache;
pub mod cancel;
pub mod diff;
pub mod error;
pub mod faults;
pub mod hash;
pub mod lakefs;
pub mod names;
mod page_writes;
pub mod pool;
pub mod retry;
pub mod snapshot;
pub mod transfer;
pub mod walk;

pub use cancel::CancelToken;
pub use diff::{detect_changes, ChangeSet, DiffOptions};
pub use error::{Error, Result};
pub use names::ATTEMPT_MARKER;
pub use snapshot::{Entry, EntryKind, EntryRef, Snapshot, SnapshotOptions};
pub use walk::NodeKind;

/// Totals of a bare parallel stat walk (no content reads): the lower bound change detection is
/// measured against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatSummary {
    pub entries: u64,
    pub bytes: u64,
}

pub fn stat_walk(
    root: &std::path::Path,
    threads: Option<usize>,
    cancel: &CancelToken,
) -> Result<StatSummary> {
    let pool = pool::pool(threads)?;
    let listing = walk::stat_walk(root, &pool, cancel)?;
    Ok(StatSummary {
        entries: listing.items.len() as u64,
        bytes: listing.items.iter().map(|i| i.stat.size).sum(),
    })
}
