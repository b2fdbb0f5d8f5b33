"""Workspace snapshots and change sets: the user-facing types over the Rust engine.

Per-file data stays in Rust. A :class:`Snapshot` answers counts, single lookups and iterates
lazily; a :class:`ChangeSet` carries only the changed paths and byte totals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple, cast

from pydantic import BaseModel, ConfigDict

from perago import _native
from perago.engine.cache import FetchStats

NativeSnapshot = _native.Snapshot
NativeChangeSet = _native.ChangeSet
EntryTuple = tuple[str, str, int, int, int, int, int, str, str | None]

MARKER_FILE = _native.ATTEMPT_MARKER
"""The attempt marker; never part of a snapshot or change set (at the workspace root only)."""

DEFAULT_RACY_WINDOW_S = 2.0
"""Files modified this close to the baseline's start are always re-hashed (timestamp ticks)."""

EntryKind = Literal["file", "symlink"]


class SnapshotEntry(NamedTuple):
    """One recorded file or symlink (built on demand, never stored per file in Python)."""

    path: str
    kind: EntryKind
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    mode: int
    digest: str
    """BLAKE3 hex of the content (file) or of the target bytes (symlink)."""
    target: str | None


class UnsupportedEntry(NamedTuple):
    """A fifo, socket or device: recorded so publication can refuse it clearly."""

    path: str
    kind: str


def _entry(raw: EntryTuple) -> SnapshotEntry:
    path, kind, size, mtime_ns, ctime_ns, inode, mode, digest, target = raw
    return SnapshotEntry(
        path, cast(EntryKind, kind), size, mtime_ns, ctime_ns, inode, mode, digest, target
    )


class Snapshot:
    """The recorded state of a workspace tree (immutable; entries sorted by path)."""

    __slots__ = ("_fetch", "_native")

    def __init__(self, native: NativeSnapshot, *, fetch: FetchStats | None = None) -> None:
        self._native = native
        self._fetch = fetch

    @property
    def fetch(self) -> FetchStats | None:
        """For a baseline a download wrote: what came from the content cache and what was
        fetched; ``None`` for a snapshot of a tree as found."""
        return self._fetch

    @property
    def native(self) -> NativeSnapshot:
        return self._native

    @property
    def root(self) -> str:
        return self._native.root

    @property
    def file_count(self) -> int:
        return self._native.file_count

    @property
    def symlink_count(self) -> int:
        return self._native.symlink_count

    @property
    def total_bytes(self) -> int:
        """Sum of regular file sizes."""
        return self._native.total_bytes

    @property
    def memory_bytes(self) -> int:
        """Heap memory the engine holds for this snapshot."""
        return self._native.heap_bytes

    @property
    def unsupported(self) -> list[UnsupportedEntry]:
        return [UnsupportedEntry(path, kind) for path, kind in self._native.unsupported()]

    def __len__(self) -> int:
        return len(self._native)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self._native

    def __iter__(self) -> Iterator[SnapshotEntry]:
        return (_entry(raw) for raw in self._native.entries())

    def entry(self, path: str) -> SnapshotEntry | None:
        """The entry at a relative '/'-separated path, or None."""
        raw = self._native.get(path)
        return None if raw is None else _entry(raw)

    def __repr__(self) -> str:
        return (
            f"Snapshot(root={self.root!r}, files={self.file_count}, "
            f"symlinks={self.symlink_count}, bytes={self.total_bytes})"
        )


class ChangeSet(BaseModel):
    """What changed since a baseline; paths relative, '/'-separated, sorted.

    A change is a difference in content, symlink target or kind; a rewrite with identical
    bytes, a touch or a chmod alone is not a change.
    """

    model_config = ConfigDict(frozen=True)

    added: tuple[str, ...]
    modified: tuple[str, ...]
    removed: tuple[str, ...]
    type_changed: tuple[str, ...]
    added_bytes: int
    modified_bytes: int
    removed_bytes: int
    type_changed_bytes: int
    unsupported: tuple[UnsupportedEntry, ...]
    scanned: int
    """Files and symlinks seen by the stat walk."""
    rehashed: int
    """Candidates whose content had to be read again."""

    @property
    def changed(self) -> bool:
        """Whether anything publishable changed. ``unsupported`` entries (fifos, sockets,
        devices) never count here: the attempt core refuses them separately
        (``perago.attempt.core.refuse_unsupported_entries``), so a change made only of them fails
        instead of completing as a no-op."""
        return bool(self.added or self.modified or self.removed or self.type_changed)

    @classmethod
    def from_native(cls, native: NativeChangeSet) -> ChangeSet:
        return cls(
            added=tuple(native.added),
            modified=tuple(native.modified),
            removed=tuple(native.removed),
            type_changed=tuple(native.type_changed),
            added_bytes=native.added_bytes,
            modified_bytes=native.modified_bytes,
            removed_bytes=native.removed_bytes,
            type_changed_bytes=native.type_changed_bytes,
            unsupported=tuple(UnsupportedEntry(p, k) for p, k in native.unsupported()),
            scanned=native.scanned,
            rehashed=native.rehashed,
        )


def take_snapshot(root: str | os.PathLike[str], *, threads: int | None = None) -> Snapshot:
    """Cold snapshot of ``root``: every regular file hashed with BLAKE3, symlinks recorded."""
    return Snapshot(_native.take_snapshot(root, threads))


def snapshot_from_known_hashes(
    root: str | os.PathLike[str],
    known: Iterable[tuple[str, bytes | str]],
    *,
    threads: int | None = None,
) -> Snapshot:
    """Baseline from hashes computed while writing (digest: 32 bytes or 64 hex chars)."""
    return Snapshot(_native.snapshot_from_known_hashes(root, known, threads))


def snapshot_from_download(
    root: str | os.PathLike[str],
    download: _native.DownloadResult,
    *,
    threads: int | None = None,
) -> Snapshot:
    """Baseline of ``root`` right after ``download`` wrote it: the digests computed while
    downloading, each file stat'ed; the per-file list stays in Rust (no Python object per file)."""
    return Snapshot(
        _native.snapshot_from_download(root, download, threads),
        fetch=FetchStats.from_counters(download.cache_stats()),
    )


def detect_changes(
    root: str | os.PathLike[str],
    baseline: Snapshot,
    *,
    threads: int | None = None,
    racy_window_s: float = DEFAULT_RACY_WINDOW_S,
) -> ChangeSet:
    """Compare ``root`` now with ``baseline``, re-hashing only candidate files."""
    window_ns = round(racy_window_s * 1_000_000_000)
    return ChangeSet.from_native(_native.detect_changes(root, baseline.native, threads, window_ns))


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of one file, computed in Rust with the GIL released."""
    return _native.hash_file(path)


def stat_walk(root: str | os.PathLike[str], threads: int | None = None) -> tuple[int, int]:
    """Bare parallel ``lstat`` walk: ``(entries, bytes)``. Benchmark baseline."""
    return _native.stat_walk(root, threads)
