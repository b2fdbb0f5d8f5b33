"""Typed facade over the Rust engine: the only module that imports ``perago._native``.

Everything else in perago calls these functions, so the native boundary (argument
conversion, GIL release, error mapping) has exactly one Python-side entry point. Every call
below releases the GIL, runs on an explicitly sized, fork-safe pool (``threads=None`` means
all available cores) and turns Ctrl-C into ``KeyboardInterrupt`` promptly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

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
