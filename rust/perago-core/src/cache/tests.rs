use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "perago-cache-test-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn key(n: u32) -> CacheKey {
    CacheKey::for_object(&format!("s3://bucket/data/{n}"), "etag", 5).unwrap()
}

/// Fetch `bytes` under `key` the way a download does.
fn insert(cache: &ContentCache, key: &CacheKey, bytes: &[u8]) {
    let Claim::Fetch(writer) = cache.claim(key).unwrap() else {
        panic!("expected to fetch");
    };
    writer.file().write_all(bytes).unwrap();
    writer
        .commit(bytes.len() as u64, blake3::hash(bytes))
        .unwrap();
}

fn materialised(cache: &ContentCache, key: &CacheKey, dir: &Path) -> Option<Vec<u8>> {
    let entry = cache.lookup(key).unwrap()?;
    let path = dir.join("out");
    let _ = std::fs::remove_file(&path);
    let dest = File::create(&path).unwrap();
    let ok = entry.copy_verified(&dest, &path, &mut [0u8; 7]).unwrap();
    if !ok {
        cache.evict(&entry);
        return None;
    }
    let mut out = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut out).unwrap();
    Some(out)
}

#[test]
fn keys_name_the_address_checksum_and_size_and_need_the_first_two() {
    let plain = CacheKey::for_object("s3://b/k", "e", 1);
    assert!(plain.is_some());
    assert_ne!(plain, CacheKey::for_object("s3://b/k2", "e", 1));
    assert_ne!(plain, CacheKey::for_object("s3://b/k", "e", 2));
    assert_ne!(plain, CacheKey::for_object("s3://b/k", "f", 1));
    // A literal '?' in an (imported) key is part of the address.
    assert_ne!(CacheKey::for_object("s3://b/k?x", "e", 1), plain);
    assert_eq!(CacheKey::for_object("", "e", 1), None);
    assert_eq!(CacheKey::for_object("local://x", "", 1), None);
}

#[test]
fn an_inserted_entry_is_found_read_only_with_its_hash() {
    let dir = temp_dir("insert");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    insert(&cache, &key(1), b"hello");
    let entry = cache.lookup(&key(1)).unwrap().unwrap();
    assert_eq!(entry.size(), 5);
    assert_eq!(entry.blake3(), blake3::hash(b"hello"));
    let mode = entry.file.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    assert_eq!(materialised(&cache, &key(1), &dir).unwrap(), b"hello");
    assert!(cache.lookup(&key(2)).unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_claimant_is_busy_until_the_first_commits() {
    let dir = temp_dir("busy");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let Claim::Fetch(writer) = cache.claim(&key(1)).unwrap() else {
        panic!("first claim fetches");
    };
    // Another open of the temp file (as another process would) cannot take the lock.
    assert!(matches!(cache.claim(&key(1)).unwrap(), Claim::Busy));
    writer.file().write_all(b"abcde").unwrap();
    writer.commit(5, blake3::hash(b"abcde")).unwrap();
    assert!(matches!(cache.claim(&key(1)).unwrap(), Claim::Ready(_)));
    assert_eq!(cache.status(&CancelToken::new()).unwrap().partials, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fetcher_that_died_leaves_a_temp_file_the_next_claimant_starts_over() {
    let dir = temp_dir("crash");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let Claim::Fetch(writer) = cache.claim(&key(1)).unwrap() else {
        panic!("first claim fetches");
    };
    writer.file().write_all(b"par").unwrap();
    drop(writer); // the process died: its lock is gone, its half-written file stays
    assert!(cache.lookup(&key(1)).unwrap().is_none());
    let Claim::Fetch(writer) = cache.claim(&key(1)).unwrap() else {
        panic!("the abandoned fetch is taken over");
    };
    assert_eq!(writer.file().metadata().unwrap().len(), 0, "started over");
    writer.file().write_all(b"whole").unwrap();
    writer.commit(5, blake3::hash(b"whole")).unwrap();
    assert_eq!(materialised(&cache, &key(1), &dir).unwrap(), b"whole");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_commit_of_the_wrong_size_publishes_nothing() {
    let dir = temp_dir("size");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let Claim::Fetch(writer) = cache.claim(&key(1)).unwrap() else {
        panic!("first claim fetches");
    };
    writer.file().write_all(b"abc").unwrap();
    assert!(writer.commit(5, blake3::hash(b"abc")).is_err());
    assert!(cache.lookup(&key(1)).unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_changed_byte_is_caught_and_the_entry_evicted() {
    let dir = temp_dir("flip");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    insert(&cache, &key(1), b"hello");
    let path = cache.entry_path(&key(1));
    // Flip a byte in place and put the modification time back: only the bytes tell.
    let before = std::fs::metadata(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all(b"j").unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    assert_eq!(materialised(&cache, &key(1), &dir), None);
    assert!(!cache.contains(&key(1)), "evicted");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_written_entry_no_longer_matches_its_record() {
    let dir = temp_dir("written");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    insert(&cache, &key(1), b"hello");
    let path = cache.entry_path(&key(1));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"!")
        .unwrap();
    assert!(cache.lookup(&key(1)).unwrap().is_none());
    assert!(!cache.contains(&key(1)), "evicted on lookup");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prune_evicts_least_recently_used_first_and_removes_abandoned_temp_files() {
    let dir = temp_dir("prune");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    for n in 0..4 {
        insert(&cache, &key(n), b"12345");
        let entry = cache.lookup(&key(n)).unwrap().unwrap();
        let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + u64::from(n));
        entry
            .file
            .set_times(std::fs::FileTimes::new().set_accessed(when))
            .unwrap();
    }
    // Key 0 is used now: the most recent.
    cache.lookup(&key(0)).unwrap().unwrap().touch();
    let Claim::Fetch(abandoned) = cache.claim(&key(9)).unwrap() else {
        panic!("fetch");
    };
    drop(abandoned);
    let report = cache
        .prune(10, true, &|_, _| {}, &CancelToken::new())
        .unwrap();
    assert_eq!(report.evicted, 2);
    assert_eq!(report.partials_removed, 1);
    assert_eq!((report.entries, report.bytes), (2, 10));
    assert!(cache.contains(&key(0)) && cache.contains(&key(3)));
    assert!(!cache.contains(&key(1)) && !cache.contains(&key(2)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_download_prunes_only_when_the_count_may_exceed_the_size() {
    let dir = temp_dir("usage");
    let cache = ContentCache::open(&dir, 12).unwrap();
    insert(&cache, &key(1), b"12345");
    assert!(
        cache.count_inserted(5),
        "no scan has measured the cache yet"
    );
    let cancel = CancelToken::new();
    let report = cache.prune(12, true, &|_, _| {}, &cancel).unwrap();
    assert_eq!((report.evicted, report.bytes), (0, 5));
    insert(&cache, &key(2), b"12345");
    assert!(!cache.count_inserted(5), "10 of 12 bytes: no scan needed");
    insert(&cache, &key(3), b"12345");
    assert!(cache.count_inserted(5), "15 of 12 bytes");
    let report = cache.prune(12, true, &|_, _| {}, &cancel).unwrap();
    assert_eq!((report.evicted, report.bytes), (1, 10));
    assert!(!cache.count_inserted(0), "the prune measured 10 bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn what_is_counted_while_a_prune_scans_stays_counted() {
    let dir = temp_dir("usage-meanwhile");
    let cache = ContentCache::open(&dir, 12).unwrap();
    insert(&cache, &key(1), b"12345");
    let cancel = CancelToken::new();
    cache.prune(12, true, &|_, _| {}, &cancel).unwrap();
    // Another download inserts and counts after this prune's scan, before it settles the count
    // (its progress runs in between): the scan did not see those bytes, the count must keep them.
    let once = std::sync::atomic::AtomicBool::new(false);
    let report = cache
        .prune(
            12,
            true,
            &|_, _| {
                if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    insert(&cache, &key(2), b"12345");
                    cache.count_inserted(5);
                }
            },
            &cancel,
        )
        .unwrap();
    assert_eq!(report.bytes, 5, "the scan saw only the first entry");
    insert(&cache, &key(3), b"12345");
    assert!(
        cache.count_inserted(5),
        "15 bytes held: the insert made during the scan was kept in the count"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_count_asks_for_a_prune() {
    let dir = temp_dir("usage-damaged");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    cache
        .prune(1 << 20, true, &|_, _| {}, &CancelToken::new())
        .unwrap();
    assert!(!cache.count_inserted(1));
    let usage = dir.join("v1").join("usage");
    let mut raw = std::fs::read(&usage).unwrap();
    raw[5] ^= 0xff;
    std::fs::write(&usage, raw).unwrap();
    assert!(cache.count_inserted(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_count_that_cannot_be_locked_keeps_a_prune_due_until_a_later_prune_settles() {
    let dir = temp_dir("usage-locked");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let cancel = CancelToken::new();
    cache.prune(1 << 20, true, &|_, _| {}, &cancel).unwrap();
    assert!(!cache.count_inserted(1));
    // Another process holds the count's lock and does not let go (stopped).
    let holder = File::options()
        .read(true)
        .write(true)
        .open(dir.join("v1").join("usage"))
        .unwrap();
    assert!(sys::try_lock_exclusive(&holder).unwrap());
    assert!(cache.count_inserted(5), "the bytes could not be counted");
    drop(holder);
    assert!(
        cache.count_inserted(0),
        "the lost count still asks for a prune"
    );
    // A mark made while a prune scans is not cleared by that prune.
    let once = std::sync::atomic::AtomicBool::new(false);
    cache
        .prune(
            1 << 20,
            true,
            &|_, _| {
                if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    cache.usage.mark_stale();
                }
            },
            &cancel,
        )
        .unwrap();
    assert!(cache.count_inserted(0), "marked during the scan: still due");
    cache.prune(1 << 20, true, &|_, _| {}, &cancel).unwrap();
    assert!(
        !cache.count_inserted(0),
        "a prune that started after the mark settled it"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mark_taken_by_a_prune_that_died_is_not_lost() {
    let dir = temp_dir("usage-claim");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let cancel = CancelToken::new();
    cache.prune(1 << 20, true, &|_, _| {}, &cancel).unwrap();
    cache.usage.mark_stale();
    // A prune took the mark and was killed before it settled the count.
    let claim = cache.usage.claim_stale();
    std::mem::forget(claim);
    assert!(!dir.join("v1").join("usage.stale").exists());
    assert!(
        cache.count_inserted(0),
        "the claim a dead prune left still asks for a prune"
    );
    cache.prune(1 << 20, true, &|_, _| {}, &cancel).unwrap();
    assert!(
        !cache.count_inserted(0),
        "the next prune took it over and settled"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_count_file_of_the_wrong_length_is_rewritten_whole() {
    let dir = temp_dir("usage-long");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    let usage = dir.join("v1").join("usage");
    std::fs::write(&usage, [7u8; 40]).unwrap();
    assert!(cache.count_inserted(3));
    assert_eq!(std::fs::metadata(&usage).unwrap().len(), 28);
    assert_eq!(cache.counted_bytes(), Some(3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_entry_being_read_survives_its_eviction() {
    let dir = temp_dir("evict-read");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    insert(&cache, &key(1), b"hello");
    let entry = cache.lookup(&key(1)).unwrap().unwrap();
    cache
        .prune(0, true, &|_, _| {}, &CancelToken::new())
        .unwrap();
    assert!(!cache.contains(&key(1)));
    let path = dir.join("out");
    let dest = File::create(&path).unwrap();
    assert!(entry.copy_verified(&dest, &path, &mut [0u8; 64]).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_evicts_exactly_the_corrupt_entries() {
    let dir = temp_dir("verify");
    let cache = ContentCache::open(&dir, 1 << 20).unwrap();
    insert(&cache, &key(1), b"hello");
    insert(&cache, &key(2), b"world");
    let path = cache.entry_path(&key(2));
    let before = std::fs::metadata(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all(b"W").unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let report = cache
        .verify(Some(2), &|_, _| {}, &CancelToken::new())
        .unwrap();
    assert_eq!((report.checked, report.corrupt, report.bytes), (2, 1, 5));
    assert!(cache.contains(&key(1)) && !cache.contains(&key(2)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_clone_mode_is_detected_once_and_kept() {
    let dir = temp_dir("mode");
    let cache = ContentCache::open(&dir, 1).unwrap();
    let recorded = std::fs::read_to_string(dir.join("v1/clone-mode")).unwrap();
    assert_eq!(recorded.trim(), cache.mode().name());
    std::fs::write(dir.join("v1/clone-mode"), "copy\n").unwrap();
    assert_eq!(ContentCache::open(&dir, 1).unwrap().mode(), CloneMode::Copy);
    std::fs::remove_dir_all(&dir).unwrap();
}
