//! The cache's running byte count (`v1/usage`), so that a download learns whether the cache may
//! be over its size without listing every entry: a prune scans the whole cache, which on a host
//! holding a million entries costs seconds, and used to run after every download that inserted
//! anything.
//!
//! The count may be too high (an entry evicted as corrupt, or removed by hand, is not
//! subtracted; an entry a prune's scan saw is also carried over if it was counted during that
//! scan): that only makes the next prune come sooner, and the prune measures the real size. It
//! is too low only after a download died between inserting and counting (a download that fails
//! or is cancelled still counts), and a count older than [`RESCAN_AFTER`] is therefore not
//! trusted. A count that could not be locked or written sets a mark (`v1/usage.stale`, made
//! without the lock) that keeps a prune due until a prune that started after it has settled.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sys;

/// How long a measured size is trusted, counting inserts on top of it, before a prune rescans.
pub(super) const RESCAN_AFTER: Duration = Duration::from_secs(3600);
/// How far ahead of now a scan's time may be (clocks of processes stepping) before the count's
/// age counts as unknown.
const CLOCK_SLACK: Duration = Duration::from_secs(300);
/// How long to try for the count's lock, held by its owners for one read and one write: a holder
/// that is stopped (SIGSTOP, a paused VM) must not stop every download of the host with it.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);
const TAG: &[u8; 4] = b"pcu1";
/// A stale mark taken by a prune: `usage.stale.<pid>.<ns>`.
const CLAIM_PREFIX: &str = "usage.stale.";
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
            // A scan "in the future": the clock was set back, and its age cannot be told.
            || self.scanned_at > now.saturating_add(CLOCK_SLACK.as_secs())
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
            (Some(before), Some(now)) if now.scanned_at == before.scanned_at => {
                now.bytes.saturating_sub(before.bytes)
            }
            // Started afresh meanwhile (the file damaged or removed): all of it is new.
            (_, Some(now)) => now.bytes,
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
    /// holding the count's lock throughout. When the file cannot be opened or locked in time,
    /// `change` is not called: the count is unknown and nothing is stored.
    pub(super) fn update(&self, change: impl FnOnce(Option<Tally>) -> Option<Tally>) -> Updated {
        let unknown = Updated {
            current: None,
            stored: false,
        };
        let Ok(file) = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
        else {
            return unknown;
        };
        if lock(&file).is_none() {
            return unknown;
        }
        let mut raw = [0u8; LEN + 1];
        let current = file
            .read_at(&mut raw, 0)
            .ok()
            .and_then(|n| Tally::decode(&raw[..n]));
        let stored = match change(current) {
            None => true,
            // One write of 28 bytes at offset 0 under the lock (a torn one fails its check and
            // reads as unknown), and the file cut to that length (a longer one never decodes).
            Some(next) => file
                .write_all_at(&next.encode(), 0)
                .and_then(|()| file.set_len(LEN as u64))
                .is_ok(),
        };
        Updated { current, stored }
    }

    pub(super) fn read(&self) -> Option<Tally> {
        self.update(|_| None).current
    }

    /// Say, without the count's lock, that some inserts could not be counted: a prune is due
    /// until one that started after this settles the count. Best effort.
    pub(super) fn mark_stale(&self) {
        let _ = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.stale_path());
    }

    /// Whether a stale mark is set, or a prune that had taken one died before settling (its
    /// claimed mark is left behind: prunes run one at a time, so any claim but a running
    /// prune's is such a one).
    pub(super) fn is_stale(&self) -> bool {
        self.stale_path().exists() || !self.claims().is_empty()
    }

    /// Take the stale mark, and any claim left by a prune that died, for a prune about to scan:
    /// a mark set after this stays for the next prune.
    pub(super) fn claim_stale(&self) -> StaleClaim<'_> {
        let mut claimed = self.claims();
        let fresh = self.path.with_file_name(format!(
            "{CLAIM_PREFIX}{}.{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        if std::fs::rename(self.stale_path(), &fresh).is_ok() {
            claimed.push(fresh);
        }
        StaleClaim {
            usage: self,
            claimed,
            settled: false,
        }
    }

    fn claims(&self) -> Vec<PathBuf> {
        let Some(layout) = self.path.parent() else {
            return Vec::new();
        };
        let Ok(names) = std::fs::read_dir(layout) else {
            return Vec::new();
        };
        names
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(CLAIM_PREFIX))
            .map(|e| e.path())
            .collect()
    }

    fn stale_path(&self) -> PathBuf {
        self.path.with_file_name("usage.stale")
    }
}

/// What [`Usage::update`] found and did.
pub(super) struct Updated {
    /// The count as read (`None`: none, damaged, or not readable).
    pub current: Option<Tally>,
    /// Whether what the change asked for is on disk (vacuously, when it asked for nothing).
    pub stored: bool,
}

/// Stale marks taken by a prune: removed once the prune settled the count, else put back.
pub(super) struct StaleClaim<'a> {
    usage: &'a Usage,
    claimed: Vec<PathBuf>,
    settled: bool,
}

impl StaleClaim<'_> {
    pub(super) fn settled(mut self) {
        self.settled = true;
    }
}

impl Drop for StaleClaim<'_> {
    fn drop(&mut self) {
        if self.claimed.is_empty() {
            return;
        }
        if !self.settled {
            self.usage.mark_stale(); // before the claims go: never a moment without a mark
        }
        for claimed in self.claimed.drain(..) {
            let _ = std::fs::remove_file(claimed);
        }
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
        let ahead = Tally {
            scanned_at: now + 3 * 3600,
            ..fresh
        };
        assert!(
            ahead.prune_due(1000, now),
            "a clock set back: the count's age is unknown"
        );
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
        // A count started afresh meanwhile (damaged or removed, then counted into): all of it.
        let afresh = Tally {
            bytes: 40,
            scanned_at: 0,
        };
        assert_eq!(
            Tally::settled(300, Some(before), Some(afresh), 9).bytes,
            340
        );
    }
}
