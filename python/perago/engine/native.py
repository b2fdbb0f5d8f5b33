"""Typed facade over the Rust engine: the only module that imports ``perago._native``.

Everything else in perago calls these functions, so the native boundary (argument
conversion, GIL release, error mapping) has exactly one Python-side entry point. Every call
below releases the GIL, runs on an explicitly sized, fork-safe pool (``threads=None`` means
all available cores) and turns Ctrl-C into ``KeyboardInterrupt`` promptly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from perago import _native

NativeSnapshot = _native.Snapshot
NativeChangeSet = _native.ChangeSet
EntryTuple = tuple[str, str, int, int, int, int, int, str, str | None]

StrPath = str | os.PathLike[str]


def native_version() -> str:
    """Version of the compiled engine (equals the package version)."""
    return _native.__version__


def hash_file(path: StrPath) -> str:
    """BLAKE3 hex digest of one file, computed in Rust with the GIL released."""
    return _native.hash_file(path)


def take_snapshot(root: StrPath, threads: int | None = None) -> NativeSnapshot:
    """Cold snapshot: parallel walk and BLAKE3 of every regular file under ``root``."""
    return _native.take_snapshot(root, threads)


def snapshot_from_known_hashes(
    root: StrPath, known: Iterable[tuple[str, bytes | str]], threads: int | None = None
) -> NativeSnapshot:
    """Baseline from ``(relative path, BLAKE3 digest)`` pairs; stats files, never reads them."""
    return _native.snapshot_from_known_hashes(root, known, threads)


def detect_changes(
    root: StrPath,
    baseline: NativeSnapshot,
    threads: int | None = None,
    racy_window_ns: int | None = None,
) -> NativeChangeSet:
    """Stat-only walk of ``root``; re-hashes only candidates against ``baseline``."""
    return _native.detect_changes(root, baseline, threads, racy_window_ns)


def stat_walk(root: StrPath, threads: int | None = None) -> tuple[int, int]:
    """Bare parallel ``lstat`` walk: ``(entries, bytes)``. Benchmark baseline."""
    return _native.stat_walk(root, threads)


# --- lakeFS transfers -----------------------------------------------------------------------

LakeFSClient = _native.LakeFSClient
DownloadResult = _native.DownloadResult
UnsafeObjectKeyError = _native.UnsafeObjectKeyError

# (bytes_done, bytes_total, files_done, files_total), called from the calling thread.
RawProgress = Callable[[int, int, int, int], object]


def lakefs_client(
    endpoint: str,
    access_key_id: str,
    secret_access_key: str,
    *,
    max_attempts: int | None = None,
    connect_timeout: float | None = None,
    io_timeout: float | None = None,
) -> _native.LakeFSClient:
    """A native lakeFS client; the secret stays in Rust and never appears in its repr."""
    return _native.LakeFSClient(
        endpoint,
        access_key_id,
        secret_access_key,
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        io_timeout=io_timeout,
    )


def list_objects(
    client: _native.LakeFSClient, repo: str, ref: str, prefix: str
) -> list[tuple[str, int, str]]:
    """(path, size, lakeFS checksum) of every object under ``prefix + "/"``."""
    return _native.list_objects(client, repo, ref, prefix)


def download_prefix(
    client: _native.LakeFSClient,
    repo: str,
    ref: str,
    prefix: str,
    dest: str | os.PathLike[str],
    *,
    concurrency: int | None = None,
    part_size: int | None = None,
    ranged_threshold: int | None = None,
    progress: RawProgress | None = None,
    before_write: Callable[[str, int], object] | None = None,
) -> _native.DownloadResult:
    """Download ``repo@ref`` under ``prefix`` into ``dest`` (GIL released, Ctrl-C cancels).

    ``before_write(canonical dest, listed total bytes)`` runs once after the listing and before
    anything is written; what it raises ends the download as it is."""
    return _native.download_prefix(
        client,
        repo,
        ref,
        prefix,
        dest,
        concurrency=concurrency,
        part_size=part_size,
        ranged_threshold=ranged_threshold,
        progress=progress,
        before_write=before_write,
    )


def upload_files(
    client: _native.LakeFSClient,
    repo: str,
    branch: str,
    items: Sequence[tuple[str | os.PathLike[str], str]],
    *,
    concurrency: int | None = None,
    progress: RawProgress | None = None,
) -> tuple[int, int]:
    """Upload (local path, object path) pairs; returns (files, bytes)."""
    return _native.upload_files(
        client, repo, branch, items, concurrency=concurrency, progress=progress
    )


def delete_objects(
    client: _native.LakeFSClient, repo: str, branch: str, paths: Sequence[str]
) -> int:
    """Delete paths in batches of at most 1000; returns how many were submitted."""
    return _native.delete_objects(client, repo, branch, list(paths))
