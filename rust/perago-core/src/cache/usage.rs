//! The cache's running byte count (`v1/usage`), so that a download learns whether the cache may
//! be over its size without listing every entry: a prune scans the whole cache, which on a host
//! holding a million entries costs seconds, and used to run after every download that inserted
//! anything.
//!
//! The count may be too high (an entry evicted as corrupt, or removed by hand, is not
//! subtracted; an entry a prune's scan saw is also carried over if it was counted during that
//! scan): that only makes the next prune come sooner, and the prune measures the real size. It
//! is too low only after a download died between inserting and counting, or a count could not
//! be written; a count older than [`RESCAN_AFTER`] is therefore not trusted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sys;

/// How long a measured size is trusted, counting inserts on top of it, before a prune rescans.
pub(super) const RESCAN_AFTER: Duration = Duration::from_secs(3600);
/// How long to try for the count's lock, held by its owners for one read and one write: a holder
/// that is stopped (SIGSTOP, a paused VM) must not stop every download of the host with it.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);
const TAG: &[u8; 4] = b"pcu1";
const LEN: usize = 4 + 8 + 8 + 8;
const CHECK: u64 = 0x7065_7261_676f_7573;

/// Bytes held, as last measured plus what was inserted since, and when that measure was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub bytes: u64,
    /// Unix seconds of the scan the count rests on; 0: none (the count is only inserts).
    pub scanned_at: u64,
}

impl Tally {
    fn encode(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(TAG);
        out[4..12].copy_from_slice(&self.bytes.to_le_bytes());
        out[12..20].copy_from_slice(&self.scanned_at.to_le_bytes());
        out[20..].copy_from_slice(&(self.bytes ^ self.scanned_at ^ CHECK).to_le_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != LEN || &raw[..4] != TAG {
            return None;
        }
        let field = |at: usize| raw[at..at + 8].try_into().ok().map(u64::from_le_bytes);
        let tally = Self {
            bytes: field(4)?,
            scanned_at: field(12)?,
        };
        (field(20)? == tally.bytes ^ tally.scanned_at ^ CHECK).then_some(tally)
    }

    /// Whether the cache may hold more than `limit` bytes by this count (or the count is too
    /// old, or rests on no scan, to say), `now` in Unix seconds.
    pub(super) fn prune_due(self, limit: u64, now: u64) -> bool {
        self.bytes > limit
            || self.scanned_at == 0
            || now.saturating_sub(self.scanned_at) >= RESCAN_AFTER.as_secs()
    }

    /// The count after a prune: `remaining` bytes measured, plus what was counted in while it
    /// scanned (`before` when it started, `now` when it finished).
    pub(super) fn settled(
        remaining: u64,
        before: Option<Self>,
        now: Option<Self>,
        at: u64,
    ) -> Self {
        let counted_meanwhile = match (before, now) {
            (Some(before), Some(now)) => now.bytes.saturating_sub(before.bytes),
            (None, Some(now)) => now.bytes,
            (_, None) => 0,
        };
        Self {
            bytes: remaining.saturating_add(counted_meanwhile),
            scanned_at: at,
        }
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The count's file, opened and locked for one read-modify-write.
#[derive(Debug)]
pub(super) struct Usage {
    path: PathBuf,
}

impl Usage {
    pub(super) fn new(layout: &Path) -> Self {
        Self {
            path: layout.join("usage"),
        }
    }

    /// Read the count, then write what `change` makes of it (nothing when it returns `None`),
    /// holding the count's lock throughout; the count as read. When the file cannot be opened
    /// or locked in time, `change` is not called and the count is unknown (`None`).
    pub(super) fn update(
        &self,
        change: impl FnOnce(Option<Tally>) -> Option<Tally>,
    ) -> Option<Tally> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
            .ok()?;
        lock(&file)?;
        let mut raw = [0u8; LEN + 1];
        let n = file.read_at(&mut raw, 0).ok()?;
        let current = Tally::decode(&raw[..n]);
        if let Some(next) = change(current) {
            // One write of 28 bytes at offset 0 under the lock; a torn one fails its check and
            // reads as unknown (a prune is then due).
            let _ = file.write_all_at(&next.encode(), 0);
        }
        current
    }

    pub(super) fn read(&self) -> Option<Tally> {
        self.update(|_| None)
    }
}

/// The exclusive `flock` of the count (released when the file is closed).
fn lock(file: &File) -> Option<()> {
    let start = Instant::now();
    loop {
        match sys::try_lock_exclusive(file) {
            Ok(true) => return Some(()),
            Ok(false) if start.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(Duration::from_millis(2));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_round_trip_and_reject_other_bytes() {
        let tally = Tally {
            bytes: 1 << 40,
            scanned_at: 1_796_000_000,
        };
        assert_eq!(Tally::decode(&tally.encode()), Some(tally));
        let mut torn = tally.encode();
        torn[6] ^= 1;
        assert_eq!(Tally::decode(&torn), None);
        assert_eq!(Tally::decode(&tally.encode()[..LEN - 1]), None);
    }

    #[test]
    fn a_prune_is_due_over_the_limit_without_a_scan_or_after_an_hour() {
        let now = 1_796_000_000;
        let fresh = Tally {
            bytes: 100,
            scanned_at: now - 10,
        };
        assert!(!fresh.prune_due(100, now));
        assert!(fresh.prune_due(99, now));
        assert!(Tally {
            scanned_at: 0,
            ..fresh
        }
        .prune_due(1000, now));
        let old = Tally {
            scanned_at: now - RESCAN_AFTER.as_secs(),
            ..fresh
        };
        assert!(old.prune_due(1000, now));
    }

    #[test]
    fn a_prune_keeps_what_was_counted_while_it_scanned() {
        let before = Tally {
            bytes: 500,
            scanned_at: 1,
        };
        let now = Tally {
            bytes: 700,
            scanned_at: 1,
        };
        let settled = Tally::settled(300, Some(before), Some(now), 9);
        assert_eq!(
            settled,
            Tally {
                bytes: 500,
                scanned_at: 9
            }
        );
        assert_eq!(Tally::settled(300, None, Some(now), 9).bytes, 1000);
        assert_eq!(Tally::settled(300, Some(now), None, 9).bytes, 300);
        // A count that shrank meanwhile (rewritten by hand) adds nothing.
        assert_eq!(Tally::settled(300, Some(now), Some(before), 9).bytes, 300);
    }
}
