//! Presigned GET URLs for a download, listed page by page while the download runs.
//!
//! A presigned URL is several hundred bytes; a million-file download cannot hold them all. The
//! plan is made from a compact listing first (every key checked before anything is written); a
//! feeder thread then lists again with `presign=true` and hands each file its URL just ahead of
//! the workers, at most [`LOOKAHEAD`] files ahead, and a finished file drops its URL.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::paths::PlannedFiles;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::lakefs::presigned::PresignedUrl;
use crate::lakefs::{for_each_listing_page, LakeFsClient, PAGE_SIZE};

/// URLs listed ahead of the furthest file a worker asked for.
const LOOKAHEAD: usize = 2 * PAGE_SIZE;

#[derive(Default)]
struct FeedState {
    /// Files `0..filled` have been given their URL (or had one already).
    filled: usize,
    /// One past the furthest file a worker waited for.
    wanted: usize,
    /// The feeder stopped early (failed or was closed); waiting workers give up.
    stopped: bool,
}

pub(super) struct UrlFeed {
    /// The URLs handed out and not yet released, by file index: about [`LOOKAHEAD`] plus the
    /// files in flight, never one slot per file.
    urls: Mutex<HashMap<usize, PresignedUrl>>,
    /// Files the feeder gives no URL: those already in the content cache, and those given
    /// theirs before it started (ranged files), so a URL released once its parts are written is
    /// not handed out again. One byte per file.
    skip: Vec<bool>,
    files: usize,
    state: Mutex<FeedState>,
    changed: Condvar,
    stop: CancelToken,
}

impl UrlFeed {
    /// A feed for `skip.len()` files, leaving out those marked `true`.
    pub(super) fn new(skip: Vec<bool>) -> Self {
        Self {
            urls: Mutex::new(HashMap::with_capacity(LOOKAHEAD)),
            files: skip.len(),
            skip,
            state: Mutex::new(FeedState::default()),
            changed: Condvar::new(),
            stop: CancelToken::new(),
        }
    }

    fn urls(&self) -> MutexGuard<'_, HashMap<usize, PresignedUrl>> {
        self.urls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL file `index` was given, if any (a copy: the lock is never held across a request).
    pub(super) fn url(&self, index: usize) -> Option<PresignedUrl> {
        self.urls().get(&index).cloned()
    }

    /// Give `index` a replacement URL (its own expired or was refused).
    pub(super) fn preset(&self, index: usize, url: PresignedUrl) {
        self.urls().insert(index, url);
    }

    /// Give `index` its URL before the feeder starts (a ranged file, whose parts start before the
    /// feeder gets there); the feeder then leaves it alone.
    pub(super) fn pin(&mut self, index: usize, url: PresignedUrl) {
        self.skip[index] = true;
        self.preset(index, url);
    }

    /// The file is written: its URL is no longer needed.
    pub(super) fn release(&self, index: usize) {
        self.urls().remove(&index);
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a change, waking regularly: cancellation is a flag, not a notification.
    fn wait<'a>(&self, state: MutexGuard<'a, FeedState>) -> MutexGuard<'a, FeedState> {
        self.changed
            .wait_timeout(state, Duration::from_millis(50))
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Wait until file `index` has its URL; `Err(Cancelled)` if `stop` fires or the feeder
    /// stopped first (the feeder's own error is what the download reports).
    pub(super) fn wait_for(&self, index: usize, stop: &CancelToken) -> Result<()> {
        if self.skip[index] {
            return Ok(()); // given its URL up front, or asks for one itself (see `skip`)
        }
        let mut state = self.state();
        if state.wanted <= index {
            state.wanted = index + 1;
            self.changed.notify_all();
        }
        while state.filled <= index {
            if state.stopped || stop.is_cancelled() {
                return Err(Error::Cancelled);
            }
            state = self.wait(state);
        }
        Ok(())
    }

    /// Stop the feeder (the workers are done, or gave up).
    pub(super) fn close(&self) {
        self.stop.cancel();
        self.state().stopped = true;
        self.changed.notify_all();
    }

    /// [`UrlFeed::close`] when the guard drops, on return or unwinding alike.
    pub(super) fn close_on_drop(&self) -> impl Drop + '_ {
        struct Close<'a>(&'a UrlFeed);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        Close(self)
    }

    /// The feeder: list `repo@reference` under `raw_prefix` with presigned URLs and hand them
    /// out in listing order, which must be the plan's order (the same keys as the first pass).
    pub(super) fn run(
        &self,
        client: &LakeFsClient,
        repo: &str,
        reference: &str,
        raw_prefix: &str,
        files: &PlannedFiles,
    ) -> Result<()> {
        let changed = || Error::LakeFs {
            operation: "list objects",
            target: format!("{repo}@{reference}:{raw_prefix}"),
            status: None,
            detail: "the listing changed between its two passes (a branch that moved?); \
                     download a commit id"
                .into(),
        };
        // Waiting workers give up however the feeder ends (error or panic included).
        let _stopped = StopOnDrop(self);
        let outcome = for_each_listing_page(
            client,
            repo,
            reference,
            raw_prefix,
            true,
            &self.stop,
            |page| {
                let start = {
                    let mut state = self.state();
                    while state.filled >= state.wanted + LOOKAHEAD {
                        if state.stopped {
                            return Err(Error::Cancelled);
                        }
                        state = self.wait(state);
                    }
                    state.filled
                };
                let count = page.len();
                if start + count > files.len() {
                    return Err(changed());
                }
                let mut urls = self.urls();
                for (offset, object) in page.into_iter().enumerate() {
                    let index = start + offset;
                    if !files.is_key(index, &object.path) || object.size != files.size(index) {
                        return Err(changed());
                    }
                    if let Some(url) = object.presigned.filter(|_| !self.skip[index]) {
                        urls.entry(index).or_insert(url);
                    }
                }
                drop(urls);
                self.state().filled = start + count;
                self.changed.notify_all();
                Ok(())
            },
        );
        let outcome = outcome.and_then(|()| {
            if self.state().filled == files.len() {
                Ok(())
            } else {
                Err(changed())
            }
        });
        outcome
    }
}

/// Marks the feed stopped when the feeder ends; workers still waiting then give up. After a
/// complete feed nobody waits any more, so this changes nothing.
struct StopOnDrop<'a>(&'a UrlFeed);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            if state.filled < self.0.files {
                state.stopped = true;
            }
        }
        self.0.changed.notify_all();
    }
}
