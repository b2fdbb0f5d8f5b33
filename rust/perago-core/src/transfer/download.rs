//! Download every object under a prefix into a directory: listed, checked, then streamed in
//! parallel with BLAKE3 computed while writing.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use blake3::hazmat::ChainingValue;

use super::cache_use::{CacheStats, CacheUse, FetchCounter};
use super::fsutil::{
    check_free_space, create_directories, create_new_file, page_aligned_start, prepare_destination,
    reserve_blocks,
};
use super::paths::{listing_prefix, normalize_prefix, parent_directories, PlannedFiles};
use super::progress::TransferProgress;
use super::tree_hash;
use super::url_feed::UrlFeed;
use super::workers::{run_jobs, DEFAULT_CONCURRENCY};
use crate::arena::{PathArena, Span};
use crate::cache::{CacheWriter, Claim, ContentCache};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::faults;
use crate::lakefs::presigned::{
    is_refused_signature, open_presigned, presign_download, PresignedUrl,
};
use crate::lakefs::{
    data_path, for_each_listing_page, open_object, resolve_commit, LakeFsClient, ObjectBody,
};
use crate::page_writes;
use crate::retry::{with_retries, AttemptError, Failure};

/// A presigned URL this close to its expiry is replaced before use rather than after a refusal.
const URL_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Another process fetching an object this download wants is waited for while its temp file
/// grows; one that stops growing this long is presumed hung and the object is fetched here.
const CACHE_PEER_STALL: Duration = Duration::from_secs(120);

/// How often a download touches the temp files of claims it holds before their bytes move.
const CLAIM_HEARTBEAT: Duration = Duration::from_secs(5);

/// Called once per download with the canonical destination and the listed total, after the
/// listing and before anything is written (the caller reserves disk space there); an error
/// stops the download before its first byte.
#[derive(Clone)]
pub struct BeforeWrite(pub Arc<BeforeWriteFn>);

/// The function inside a [`BeforeWrite`]: `(canonical destination, listed total bytes)`.
pub type BeforeWriteFn = dyn Fn(&Path, u64) -> Result<()> + Send + Sync;

impl std::fmt::Debug for BeforeWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeWrite(..)")
    }
}

#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Concurrent HTTP requests (threads).
    pub concurrency: usize,
    /// Objects of at least this size are fetched as parallel byte ranges.
    pub ranged_threshold: u64,
    /// Size of one range; a power of two (BLAKE3 subtree alignment), at least 1 KiB.
    pub part_size: u64,
    /// Per-thread copy buffer.
    pub buffer_size: usize,
    /// See [`BeforeWrite`]; `None` checks free space only.
    pub before_write: Option<BeforeWrite>,
    /// The host's content cache: consulted first, filled with what is fetched.
    pub cache: Option<Arc<ContentCache>>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            ranged_threshold: REMOTE_RANGED_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            buffer_size: 256 << 10,
            before_write: None,
            cache: None,
        }
    }
}

/// Ranged parts exist to beat per-connection bandwidth limits (latency, TCP windows) of a
/// remote server. To a server on this machine one stream per object is already CPU-bound, and
/// splitting only adds threads contending for the same file and cores (measured: 0.53x vs 0.95x
/// of `lakectl local clone` on 2 x 1 GiB, ADR 0004), so ranges are used for remote servers only.
pub const REMOTE_RANGED_THRESHOLD: u64 = 64 << 20;

/// Size of one ranged part when the caller does not choose.
pub const DEFAULT_PART_SIZE: u64 = 32 << 20;

/// Prune after a download, to 90 % of the limit: pruning to the limit itself would leave a full
/// cache (its normal state on a busy host) one insert from the next whole-cache scan. Best
/// effort (skipped while another process prunes); the number of entries evicted.
fn prune_after_download(cache: &ContentCache, cancel: &CancelToken) -> u64 {
    let limit = cache.max_size();
    let target = limit - limit / 10;
    cache
        .prune(target, false, &|_, _| {}, cancel)
        .map_or(0, |pruned| pruned.evicted)
}

impl DownloadOptions {
    /// The defaults for `client`: ranged parts for large objects unless the server is local.
    pub fn for_client(client: &LakeFsClient) -> Self {
        Self {
            ranged_threshold: if client.is_loopback() {
                u64::MAX
            } else {
                REMOTE_RANGED_THRESHOLD
            },
            ..Self::default()
        }
    }
}

/// One downloaded file: relative `/`-separated path, size and BLAKE3 of its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadedFile<'a> {
    pub rel_path: &'a str,
    pub size: u64,
    pub blake3: blake3::Hash,
}

/// Every downloaded file, sorted by relative path; names packed in one arena (about 48 bytes
/// plus the name per file).
#[derive(Clone, Debug, Default)]
pub struct DownloadedFiles {
    arena: PathArena,
    entries: Vec<(Span, u64, [u8; 32])>,
}

impl DownloadedFiles {
    fn new(arena: PathArena, mut entries: Vec<(Span, u64, [u8; 32])>) -> Self {
        // Listing order is path order already; the sort only confirms it.
        entries.sort_by(|a, b| arena.get(a.0).cmp(arena.get(b.0)));
        Self { arena, entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = DownloadedFile<'_>> + '_ {
        self.entries.iter().map(|e| self.file(e))
    }

    /// The file at a relative `/`-separated path (binary search).
    pub fn get(&self, rel_path: &str) -> Option<DownloadedFile<'_>> {
        self.entries
            .binary_search_by(|e| self.arena.get(e.0).cmp(rel_path.as_bytes()))
            .ok()
            .map(|i| self.file(&self.entries[i]))
    }

    fn file(&self, entry: &(Span, u64, [u8; 32])) -> DownloadedFile<'_> {
        DownloadedFile {
            // Planned paths are checked `&str`s (see `PlannedFiles::push`).
            rel_path: std::str::from_utf8(self.arena.get(entry.0)).expect("UTF-8 paths"),
            size: entry.1,
            blake3: blake3::Hash::from_bytes(entry.2),
        }
    }
}

#[derive(Debug)]
pub struct DownloadReport {
    /// Canonical destination directory.
    pub root: PathBuf,
    /// Sorted by relative path.
    pub files: DownloadedFiles,
    pub bytes: u64,
    /// What came from the cache and what was fetched.
    pub cache: CacheStats,
}

/// One unit of work; `u32` indices keep a million-job list at 12 bytes a job.
#[derive(Clone, Copy)]
enum Job {
    Whole { file: u32 },
    Part { file: u32, part: u32 },
}

/// A failure of the cache itself is no failure of the download: `None` (fetch without it).
/// Cancellation still stops everything.
fn optional<T>(outcome: Result<T>) -> Result<Option<T>> {
    match outcome {
        Ok(value) => Ok(Some(value)),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(_) => Ok(None),
    }
}

/// Whether a large file is fetched as parallel ranges, with the cache's temp file to fill.
enum Ranges {
    Yes(Option<CacheWriter>),
    No,
}

/// Shared state of one object fetched as ranges.
struct RangedFile {
    handle: File,
    parts: Vec<OnceLock<ChainingValue>>,
    remaining: Mutex<usize>,
    /// The cache's temp file for this object, written at the same offsets as the workspace
    /// file by every part (shared access), taken on commit.
    cache: RwLock<Option<CacheWriter>>,
    /// A write to the cache's temp file failed: the object is not inserted.
    cache_failed: AtomicBool,
}

impl RangedFile {
    /// Write a received chunk into the cache's temp file too; a failure only stops the insert.
    fn write_to_cache(&self, chunk: &[u8], offset: u64) {
        if self.cache_failed.load(Ordering::Relaxed) {
            return;
        }
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(writer) = cache.as_ref() {
            if page_writes::write_all_at(writer.file(), chunk, offset).is_err() {
                self.cache_failed.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Touch the cache's temp file while the claim is held (see [`CacheWriter::heartbeat`]).
    fn heartbeat(&self) {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(writer) = cache.as_ref() {
            writer.heartbeat();
        }
    }

    /// The cache's temp file once every part is in, unless a write to it failed.
    fn take_cache_writer(&self) -> Option<CacheWriter> {
        let writer = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        if self.cache_failed.load(Ordering::Relaxed) {
            writer.abandon();
            return None;
        }
        Some(writer)
    }
}

struct Plan<'a> {
    client: &'a LakeFsClient,
    repo: &'a str,
    reference: &'a str,
    root: PathBuf,
    files: PlannedFiles,
    /// Boxed: most files are not ranged, and `None` is then one pointer wide.
    ranged: Vec<Option<Box<RangedFile>>>,
    hashes: Vec<OnceLock<blake3::Hash>>,
    /// Presigned GET URLs, handed out while the download runs; `None` when bytes come through
    /// lakeFS.
    urls: Option<UrlFeed>,
    raw_prefix: String,
    options: DownloadOptions,
    progress: &'a TransferProgress,
    cache: Option<CacheUse>,
    fetched: FetchCounter,
}

/// List `repo@reference` under `prefix` and write every object below `dest`.
///
/// All keys are validated before anything is written; `options.before_write` (if any) and a
/// free-space check see the listed total; files are created exclusively (an existing entry is
/// never overwritten or followed).
#[allow(clippy::too_many_arguments)]
pub fn download_prefix(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    prefix: &str,
    dest: &Path,
    options: &DownloadOptions,
    progress: &TransferProgress,
    cancel: &CancelToken,
) -> Result<DownloadReport> {
    if !tree_hash::is_valid_part_size(options.part_size) {
        return Err(Error::InvalidArgument(format!(
            "part size must be a power of two of at least 1024 bytes, got {}",
            options.part_size
        )));
    }
    let raw_prefix = listing_prefix(&normalize_prefix(prefix)?);
    let presign = data_path(client, cancel)?.presign;
    let Listed {
        files,
        mut cache,
        cached_now,
        fetch_bytes,
    } = list_and_plan(client, repo, reference, &raw_prefix, options, cancel)?;
    if u32::try_from(files.len()).is_err() {
        return Err(Error::Limit("more than 4 billion files in one download"));
    }
    let total = files.total_bytes();
    progress.set_totals(files.len() as u64, total);

    if let Some(cache) = cache.as_mut() {
        // Bytes enter the cache only from a commit: on a branch the object fetched could be a
        // newer one than the listing keyed (hits are safe either way: an entry holds the bytes
        // of its own key).
        let commit = optional(resolve_commit(client, repo, reference, cancel))?;
        cache.inserting = commit.is_some_and(|id| id == reference);
    }
    let root = prepare_destination(dest)?;
    let needed = match cache.as_mut() {
        Some(cache) => cache.space_needed(&root, total, fetch_bytes)?,
        None => total,
    };
    if let Some(hook) = &options.before_write {
        (hook.0)(&root, needed)?;
    }
    check_free_space(&root, needed)?;
    create_directories(&root, &parent_directories(&files))?;
    let misses = cached_now.iter().filter(|hit| !**hit).count();

    let mut plan = Plan {
        client,
        repo,
        reference,
        root,
        hashes: (0..files.len()).map(|_| OnceLock::new()).collect(),
        ranged: Vec::with_capacity(files.len()),
        urls: presign.then(|| UrlFeed::new(cached_now)),
        files,
        raw_prefix,
        options: options.clone(),
        progress,
        cache,
        fetched: FetchCounter::default(),
    };
    let jobs = plan.build_jobs(cancel)?;
    let run = || plan.run(&jobs, cancel);
    // Files all in the cache need no feeder; one that vanishes meanwhile gets a URL of its own.
    let transferred = match plan.urls.as_ref().filter(|_| misses > 0) {
        None => run(),
        Some(feed) => std::thread::scope(|scope| {
            let feeder =
                scope.spawn(|| feed.run(client, repo, reference, &plan.raw_prefix, &plan.files));
            let transferred = {
                let _closed = feed.close_on_drop(); // also when a worker panics
                run()
            };
            let listed = feeder
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match (transferred, listed) {
                // Workers saw the feeder stop: its failure is the cause.
                (Err(Error::Cancelled), Err(err)) => Err(err),
                (transferred, _) => transferred,
            }
        }),
    };
    if let Err(err) = transferred {
        plan.count_after_failure(cancel);
        return Err(err);
    }

    let stats = plan.cache_stats(cancel);
    let hashes = std::mem::take(&mut plan.hashes);
    let (arena, spans) = std::mem::take(&mut plan.files).into_parts();
    let entries = spans
        .zip(hashes)
        .map(|((span, size), hash)| {
            let hash = hash.into_inner().expect("every job finished successfully");
            (span, size, *hash.as_bytes())
        })
        .collect();
    Ok(DownloadReport {
        root: plan.root,
        files: DownloadedFiles::new(arena, entries),
        bytes: total,
        cache: stats,
    })
}

/// The checked plan of a download and what the cache already holds of it.
struct Listed {
    files: PlannedFiles,
    cache: Option<CacheUse>,
    /// Files already in the cache (they need no URL); the rest must be fetched.
    cached_now: Vec<bool>,
    fetch_bytes: u64,
}

/// Keys and sizes only, however the bytes travel: presigned URLs are listed again, a page at a
/// time, while the download runs (see `url_feed`). Planned a page at a time, so the listing
/// itself is never held whole.
fn list_and_plan(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    raw_prefix: &str,
    options: &DownloadOptions,
    cancel: &CancelToken,
) -> Result<Listed> {
    let mut planned = PlannedFiles::new(raw_prefix);
    let mut cache = options.cache.clone().map(CacheUse::new);
    let mut cached_now: Vec<bool> = Vec::new();
    let mut fetch_bytes = 0u64;
    for_each_listing_page(client, repo, reference, raw_prefix, false, cancel, |page| {
        page.into_iter().try_for_each(|object| {
            planned.push(&object.path, object.size)?;
            let hit = cache.as_mut().is_some_and(|cache| {
                cache.plan(&object.physical_address, &object.checksum, object.size)
            });
            if !hit {
                fetch_bytes += object.size;
            }
            cached_now.push(hit);
            Ok(())
        })
    })?;
    Ok(Listed {
        files: planned.finish()?,
        cache,
        cached_now,
        fetch_bytes,
    })
}

impl Plan<'_> {
    /// Every job, then the files another process was fetching meanwhile (by now mostly in the
    /// cache).
    fn run(&self, jobs: &[Job], cancel: &CancelToken) -> Result<()> {
        let done = CancelToken::new();
        std::thread::scope(|scope| {
            if self.cache.is_some() && self.ranged.iter().any(Option::is_some) {
                scope.spawn(|| self.heartbeat_claims(&done));
            }
            let outcome = self.run_passes(jobs, cancel);
            done.cancel();
            outcome
        })
    }

    /// Ranged files are claimed when planned, long before their parts may start: touch their
    /// temp files meanwhile so peers waiting on them see this process alive.
    fn heartbeat_claims(&self, done: &CancelToken) {
        let mut last = std::time::Instant::now();
        while !done.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= CLAIM_HEARTBEAT {
                last = std::time::Instant::now();
                self.ranged
                    .iter()
                    .flatten()
                    .for_each(|ranged| ranged.heartbeat());
            }
        }
    }

    fn run_passes(&self, jobs: &[Job], cancel: &CancelToken) -> Result<()> {
        let buffer_size = self.options.buffer_size.max(4096);
        run_jobs(
            self.options.concurrency,
            jobs.len(),
            cancel,
            || vec![0u8; buffer_size],
            |i, buffer, stop| match jobs[i] {
                Job::Whole { file } => self.fetch_whole(file as usize, true, buffer, stop),
                Job::Part { file, part } => {
                    self.fetch_part(file as usize, part as usize, buffer, stop)
                }
            },
        )?;
        let deferred = self.cache.as_ref().map(|cache| {
            std::mem::take(
                &mut *cache
                    .deferred
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        });
        let deferred = deferred.unwrap_or_default();
        run_jobs(
            self.options.concurrency,
            deferred.len(),
            cancel,
            || vec![0u8; buffer_size],
            |i, buffer, stop| self.fetch_whole(deferred[i] as usize, false, buffer, stop),
        )
    }

    /// What the download took from the cache and fetched; a download that inserted anything
    /// counts it into the cache's usage and, when that may put the cache over its size, prunes
    /// it back (best effort: a failed or skipped prune leaves it over until the next).
    fn cache_stats(&self, cancel: &CancelToken) -> CacheStats {
        let Some(cache) = &self.cache else {
            return self.fetched.stats();
        };
        let mut stats = cache.stats(&self.fetched);
        if cache.count_inserts() {
            stats.evicted = prune_after_download(&cache.cache, cancel);
        }
        stats
    }

    /// A download that failed still counts what it inserted and, unless it was cancelled (the
    /// caller is leaving), prunes when that is due: failing downloads of new commits must not
    /// grow the cache without bound.
    fn count_after_failure(&self, cancel: &CancelToken) {
        if let Some(cache) = &self.cache {
            if cache.count_inserts() && !cancel.is_cancelled() {
                prune_after_download(&cache.cache, cancel);
            }
        }
    }

    /// Ranged parts first (they are the long poles), then whole objects in listing order.
    fn build_jobs(&mut self, cancel: &CancelToken) -> Result<Vec<Job>> {
        let mut ranged_jobs = Vec::new();
        let mut whole_jobs = Vec::new();
        for index in 0..self.files.len() {
            let size = self.files.size(index);
            let parts = size.div_ceil(self.options.part_size) as usize;
            let ranges = if size >= self.options.ranged_threshold && parts >= 2 {
                self.claim_for_ranges(index)?
            } else {
                Ranges::No
            };
            if let Ranges::Yes(writer) = ranges {
                let parts_u32 = u32::try_from(parts)
                    .map_err(|_| Error::Limit("more than 4 billion parts in one file"))?;
                if self.urls.is_some() {
                    let url = with_retries(
                        self.client.retry_policy(),
                        cancel,
                        "presign download",
                        &|| self.target(index),
                        || self.fresh_url(index),
                    )?;
                    if let Some(feed) = self.urls.as_mut() {
                        feed.pin(index, url);
                    }
                }
                let path = self.root.join(self.files.rel_path(index));
                let handle = create_new_file(&path)?;
                handle.set_len(size).map_err(|e| Error::io(&path, e))?;
                self.ranged.push(Some(Box::new(RangedFile {
                    handle,
                    parts: (0..parts).map(|_| OnceLock::new()).collect(),
                    remaining: Mutex::new(parts),
                    cache_failed: AtomicBool::new(false),
                    cache: RwLock::new(writer),
                })));
                // `index` fits: the plan was checked to hold fewer than 2^32 files.
                let file = index as u32;
                ranged_jobs.extend((0..parts_u32).map(|part| Job::Part { file, part }));
            } else {
                self.ranged.push(None);
                whole_jobs.push(Job::Whole { file: index as u32 });
            }
        }
        ranged_jobs.extend(whole_jobs);
        Ok(ranged_jobs)
    }

    /// Whether a large file is fetched as ranges: `Some` with the cache's temp file to fill
    /// alongside (if any), `None` when it comes whole (from the cache, or after another
    /// process's fetch of it).
    fn claim_for_ranges(&self, index: usize) -> Result<Ranges> {
        let Some((cache, key)) = self.cache_key(index) else {
            return Ok(Ranges::Yes(None));
        };
        if !cache.inserting {
            return Ok(if cache.cache.contains(key) {
                Ranges::No
            } else {
                Ranges::Yes(None)
            });
        }
        Ok(match optional(cache.cache.claim(key))? {
            Some(Claim::Fetch(writer)) => Ranges::Yes(Some(writer)),
            Some(Claim::Ready(_) | Claim::Busy) => Ranges::No,
            None => Ranges::Yes(None),
        })
    }

    fn cache_key(&self, index: usize) -> Option<(&CacheUse, &crate::cache::CacheKey)> {
        let cache = self.cache.as_ref()?;
        Some((cache, cache.key(index)?))
    }

    /// One try at opening the object (or a range of it): through lakeFS, or from its presigned
    /// URL. A URL about to expire is replaced first; one the object store refuses is replaced
    /// once and the try counts as transient.
    fn open(
        &self,
        index: usize,
        range: Option<(u64, u64)>,
        refreshed: &mut bool,
    ) -> std::result::Result<ObjectBody, AttemptError> {
        let Some(feed) = &self.urls else {
            return Ok(open_object(
                self.client,
                self.repo,
                self.reference,
                &self.files.key(index),
                range,
            )?);
        };
        let url = match feed.url(index) {
            Some(url) if !url.expires_within(URL_REFRESH_MARGIN) => url,
            _ => {
                let url = self.fresh_url(index)?;
                feed.preset(index, url.clone());
                url
            }
        };
        match open_presigned(self.client, &url, range) {
            Err(failure) if is_refused_signature(&failure) && !*refreshed => {
                *refreshed = true;
                feed.preset(index, self.fresh_url(index)?);
                Err(Failure::transient(failure.status, failure.detail).into())
            }
            other => Ok(other?),
        }
    }

    /// A new presigned URL for the file; the object must still be the one planned (a ref that
    /// moved mid-download would mix versions into one file).
    fn fresh_url(&self, index: usize) -> std::result::Result<PresignedUrl, AttemptError> {
        let planned = self.files.size(index);
        let (url, size) = presign_download(
            self.client,
            self.repo,
            self.reference,
            &self.files.key(index),
        )?;
        if size.is_some_and(|size| size != planned) {
            return Err(AttemptError::Fatal(Error::LakeFs {
                operation: "download",
                target: self.target(index),
                status: None,
                detail: format!(
                    "the object changed since it was listed ({} bytes, now {}); download a \
                     commit id",
                    planned,
                    size.unwrap_or_default()
                ),
            }));
        }
        Ok(url)
    }

    fn target(&self, file: usize) -> String {
        format!("{}@{}:{}", self.repo, self.reference, self.files.key(file))
    }

    /// One whole file: from the cache when it holds it, else fetched (and inserted). On the
    /// first pass (`may_defer`) a file another process is fetching is put off to the end; on
    /// the second it is waited for. Any failure of the cache itself only means fetching
    /// without it.
    fn fetch_whole(
        &self,
        index: usize,
        may_defer: bool,
        buffer: &mut [u8],
        stop: &CancelToken,
    ) -> Result<()> {
        let path = self.root.join(self.files.rel_path(index));
        let Some((cache, key)) = self.cache_key(index) else {
            let handle = create_new_file(&path)?;
            return self.download_whole(index, handle, &path, None, buffer, stop);
        };
        // Claim only with the URL at hand: a claim held means bytes are moving, and peers
        // waiting on it judge the fetcher alive by them.
        if let Some(feed) = &self.urls {
            feed.wait_for(index, stop)?;
        }
        let mut dest = None;
        // An entry found corrupt is evicted and claimed again once, then the object is fetched
        // without the cache.
        for _ in 0..2 {
            let claim = if cache.inserting {
                match optional(cache.cache.claim(key))? {
                    // Not once a file exists here: the second pass creates it anew.
                    Some(Claim::Busy) if may_defer && dest.is_none() => {
                        if let Some(feed) = &self.urls {
                            feed.release(index); // the second pass asks for a fresh one
                        }
                        cache.defer(index);
                        return Ok(());
                    }
                    Some(Claim::Busy) => {
                        cache.waited();
                        faults::reach("download.cache_waiting", stop);
                        optional(cache.cache.wait_for(key, CACHE_PEER_STALL, stop))?.flatten()
                    }
                    claim => claim,
                }
            } else {
                optional(cache.cache.lookup(key))?
                    .flatten()
                    .map(Claim::Ready)
            };
            let handle = match dest.take() {
                Some(handle) => handle,
                None => create_new_file(&path)?,
            };
            match claim {
                Some(Claim::Ready(entry)) => {
                    if let Some(hash) = cache.materialise(&entry, &handle, &path, buffer)? {
                        self.progress.add_bytes(entry.size());
                        self.finish(index, hash);
                        return Ok(());
                    }
                    dest = Some(handle);
                }
                Some(Claim::Fetch(writer)) => {
                    return self.download_whole(index, handle, &path, Some(writer), buffer, stop)
                }
                Some(Claim::Busy) | None => {
                    return self.download_whole(index, handle, &path, None, buffer, stop)
                }
            }
        }
        let handle = match dest {
            Some(handle) => handle,
            None => create_new_file(&path)?,
        };
        self.download_whole(index, handle, &path, None, buffer, stop)
    }

    /// Fetch one whole object into `handle` (a new file at `path`), and into the cache's temp
    /// file when `writer` is given (committed once the bytes are complete and hashed).
    fn download_whole(
        &self,
        index: usize,
        mut handle: File,
        path: &Path,
        mut writer: Option<CacheWriter>,
        buffer: &mut [u8],
        stop: &CancelToken,
    ) -> Result<()> {
        let size = self.files.size(index);
        if let Some(feed) = &self.urls {
            feed.wait_for(index, stop)?;
        }
        reserve_blocks(&handle, size);
        let mut first_try = true;
        let mut refreshed = false;
        let outcome = with_retries(
            self.client.retry_policy(),
            stop,
            "download",
            &|| self.target(index),
            || {
                if !std::mem::take(&mut first_try) {
                    handle
                        .set_len(0)
                        .and_then(|()| handle.seek(SeekFrom::Start(0)))
                        .map_err(|e| Error::io(path, e))?;
                    if writer.as_ref().is_some_and(|w| w.reset().is_err()) {
                        if let Some(writer) = writer.take() {
                            writer.abandon();
                        }
                    }
                }
                let mut body = self.open(index, None, &mut refreshed)?;
                let mut hasher = blake3::Hasher::new();
                let mut cache_failed = false;
                self.copy(&mut body, 0, size, buffer, stop, path, |chunk, offset| {
                    hasher.update(chunk);
                    page_writes::write_all(&handle, chunk)?;
                    if let Some(writer) = writer.as_ref().filter(|_| !cache_failed) {
                        // The cache is an optimisation: failing to fill it fails nothing else.
                        cache_failed = page_writes::write_all(writer.file(), chunk).is_err();
                        if offset == 0 {
                            faults::reach("download.cache_partial", stop);
                        }
                    }
                    Ok(())
                })?;
                if cache_failed {
                    if let Some(writer) = writer.take() {
                        writer.abandon();
                    }
                }
                Ok(hasher.finalize())
            },
        );
        let hash = match outcome {
            Ok(hash) => hash,
            Err(err) => {
                if let Some(writer) = writer {
                    writer.abandon();
                }
                return Err(err);
            }
        };
        self.fetched.add(size);
        if let Some(writer) = writer {
            self.commit_to_cache(writer, size, hash);
        }
        self.finish(index, hash);
        Ok(())
    }

    fn commit_to_cache(&self, writer: CacheWriter, size: u64, hash: blake3::Hash) {
        if let Some(cache) = &self.cache {
            if writer.commit(size, hash).is_ok() {
                cache.inserted(size);
            }
        }
    }

    fn fetch_part(
        &self,
        index: usize,
        part: usize,
        buffer: &mut [u8],
        stop: &CancelToken,
    ) -> Result<()> {
        let size = self.files.size(index);
        let ranged = self.ranged[index]
            .as_ref()
            .expect("part jobs exist only for ranged files");
        let path = self.root.join(self.files.rel_path(index));
        let start = part as u64 * self.options.part_size;
        let end = (start + self.options.part_size).min(size);
        let mut refreshed = false;
        let cv = with_retries(
            self.client.retry_policy(),
            stop,
            "download",
            &|| format!("{} (bytes {start}-{})", self.target(index), end - 1),
            || {
                let mut body = self.open(index, Some((start, end)), &mut refreshed)?;
                let mut hasher = tree_hash::part_hasher(start);
                self.copy(
                    &mut body,
                    start,
                    end - start,
                    buffer,
                    stop,
                    &path,
                    |chunk, offset| {
                        hasher.update(chunk);
                        page_writes::write_all_at(&ranged.handle, chunk, start + offset)?;
                        ranged.write_to_cache(chunk, start + offset);
                        Ok(())
                    },
                )?;
                Ok(tree_hash::part_chaining_value(&hasher))
            },
        )?;
        let _ = ranged.parts[part].set(cv);
        let mut remaining = ranged
            .remaining
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *remaining -= 1;
        if *remaining == 0 {
            let cvs: Vec<ChainingValue> = ranged
                .parts
                .iter()
                .map(|cv| *cv.get().expect("all parts finished"))
                .collect();
            let hash = tree_hash::combine(&cvs, self.options.part_size, size);
            self.fetched.add(size);
            if let Some(writer) = ranged.take_cache_writer() {
                self.commit_to_cache(writer, size, hash);
            }
            self.finish(index, hash);
        }
        Ok(())
    }

    fn finish(&self, index: usize, hash: blake3::Hash) {
        if let Some(feed) = &self.urls {
            feed.release(index);
        }
        let _ = self.hashes[index].set(hash);
        self.progress.file_done();
    }

    /// Stream exactly `expected` bytes from `body`, bound for the file at `file_offset`, into
    /// `sink(chunk, offset in body)`, checking for cancellation between chunks. Network errors
    /// are transient; local write errors are not.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        body: &mut dyn Read,
        file_offset: u64,
        expected: u64,
        buffer: &mut [u8],
        stop: &CancelToken,
        path: &Path,
        mut sink: impl FnMut(&[u8], u64) -> std::io::Result<()>,
    ) -> std::result::Result<(), AttemptError> {
        let mut copied = 0u64;
        let outcome = loop {
            if let Err(err) = stop.check() {
                break Err(AttemptError::Fatal(err));
            }
            let at = page_aligned_start(buffer, file_offset + copied);
            let n = match body.read(&mut buffer[at..]) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    break Err(Failure::transient(None, format!("reading response: {e}")).into())
                }
            };
            if copied + n as u64 > expected {
                break Err(Failure::transient(
                    None,
                    format!("server sent more than the listed {expected} bytes"),
                )
                .into());
            }
            if let Err(e) = sink(&buffer[at..at + n], copied) {
                break Err(AttemptError::Fatal(Error::io(path, e)));
            }
            copied += n as u64;
            self.progress.add_bytes(n as u64);
        };
        let outcome = outcome.and_then(|()| {
            if copied == expected {
                Ok(())
            } else {
                Err(Failure::transient(None, format!("got {copied} of {expected} bytes")).into())
            }
        });
        if outcome.is_err() {
            self.progress.sub_bytes(copied);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lakefs::{ClientOptions, Credentials};

    fn client(endpoint: &str) -> LakeFsClient {
        LakeFsClient::new(
            endpoint,
            &Credentials::new("key", "secret"),
            ClientOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn ranged_parts_are_the_default_for_remote_servers_only() {
        let local = DownloadOptions::for_client(&client("http://127.0.0.1:8000"));
        assert_eq!(local.ranged_threshold, u64::MAX);
        let remote = DownloadOptions::for_client(&client("https://lakefs.example.com"));
        assert_eq!(remote.ranged_threshold, REMOTE_RANGED_THRESHOLD);
        assert_eq!(remote.part_size, DownloadOptions::default().part_size);
    }
}

#[cfg(test)]
mod prune_after_download_tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_download_prunes_a_full_cache_to_nine_tenths_of_its_limit() {
        let dir = std::env::temp_dir().join(format!("perago-prune-90-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = ContentCache::open(&dir, 100).unwrap();
        for n in 0..11u32 {
            let key = crate::cache::CacheKey::for_object(&format!("s3://b/{n}"), "e", 10).unwrap();
            let Claim::Fetch(writer) = cache.claim(&key).unwrap() else {
                panic!("expected to fetch");
            };
            writer.file().write_all(&[n as u8; 10]).unwrap();
            writer.commit(10, blake3::hash(&[n as u8; 10])).unwrap();
        }
        assert_eq!(prune_after_download(&cache, &CancelToken::new()), 2);
        let status = cache.status(&CancelToken::new()).unwrap();
        assert_eq!(status.bytes, 90, "room for an insert before the next scan");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
